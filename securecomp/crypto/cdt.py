"""Exact cumulative-distribution-table (CDT) sampling of integers from AES-CTR bits.

A distribution on the integers ``offset, offset + 1, ..., offset + L - 1`` is given by exact
non-negative integer weights ``w_0 .. w_{L-1}`` (fixed-point numbers computed with Python's
unbounded integers by the caller). The table stores ``F_i = floor(2^128 * (w_0 + ... + w_i)
/ W)`` for ``i < L - 1`` (``W`` the total; ``F_{L-1} = 2^128`` is implicit) as two uint64
halves. A sample draws a uniform 128-bit ``u`` from an `AesCtrPrg` and returns ``offset``
plus the number of entries ``F_i <= u``, found by a vectorized binary search on the high
halves; the rare draws whose high half equals an entry's (probability at most ``L / 2^64``
each) compare the low halves exactly. Hence value ``offset + i`` has probability exactly
``(F_i - F_{i-1}) / 2^128``, within ``2^-128`` of ``w_i / W``: the total variation distance
to the tabulated distribution is at most ``L * 2^-128``.

It is the base sampler of the CKKS noise-flooding discrete Gaussian
(`securecomp.he.ckks.gaussian`, after Micciancio and Walter, CRYPTO 2017), and with
arbitrary weights it lets the distributed-DP mechanisms (Kairouz et al. 2021; Agarwal et al.
2021) sample the discrete Gaussian of any ``sigma`` *exactly* (not only ``>= 256``) and
the Poisson distribution, both from a cryptographic keystream. Callers truncate an infinite
support to a finite window and report the truncated mass (`tail_mass`); `tv_bound` is then a
bound on the total variation distance between what `sample` produces and the untruncated
distribution, which the privacy accountant adds to delta.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from securecomp.crypto.prg import AesCtrPrg
from securecomp.errors import ParameterError

__all__ = ["CDF_BITS", "WEIGHT_ERROR", "CdtSampler"]

#: Resolution of the stored cumulative distribution.
CDF_BITS = 128

#: Bound on the total variation contributed by the callers' fixed-point weights. They are
#: computed with 320 fractional bits by recurrences of N <= 2^18 steps whose factors are at
#: most 1, so each carries an absolute error of at most N^2 = 2^36 units, while every kept
#: weight is at least 2^-130 of the largest (2^190 units): relative error <= 2^-154, far
#: below this stated 2^-120 (see `securecomp.dp.ddgauss` and `securecomp.dp.skellam`).
WEIGHT_ERROR = 2.0**-120

_MAX_ENTRIES = 1 << 19
_LOW64 = (1 << 64) - 1


class CdtSampler:
    """Sampler of one integer distribution given by exact integer weights.

    Invariant: ``sample`` returns ``offset + i`` with probability ``(F_i - F_{i-1}) / 2^128``
    where ``F`` is the floor of ``2^128`` times the normalized cumulative weights; so the
    output is within total variation ``tv_bound`` of the distribution the weights (and the
    caller's ``tail_mass``) describe.

    Parameters
    ----------
    weights : sequence of int
        Non-negative Python integers (fixed-point weights), at least one positive, at most
        2^19 of them.
    offset : int
        The integer that ``weights[0]`` belongs to.
    tail_mass : float
        Probability mass of the original distribution outside the table (0 if none).
    """

    __slots__ = ("_hi", "_lo", "mean", "offset", "size", "tail_mass", "variance")

    def __init__(self, weights: Sequence[int], offset: int, *, tail_mass: float) -> None:
        if not 1 <= len(weights) <= _MAX_ENTRIES:
            raise ParameterError(
                f"a sampling table needs 1 to {_MAX_ENTRIES} entries, got {len(weights)}"
            )
        if not (0.0 <= tail_mass < 1.0):
            raise ParameterError(f"tail_mass must lie in [0, 1), got {tail_mass!r}")
        total = 0
        first = 0  # sum of i * w_i, for the mean
        second = 0  # sum of i^2 * w_i, for the variance
        cumulative: list[int] = []
        for i, w in enumerate(weights):
            w = operator.index(w)
            if w < 0:
                raise ParameterError(f"weight {i} is negative ({w}); weights must be >= 0")
            total += w
            first += i * w
            second += i * i * w
            cumulative.append(total)
        if total == 0:
            raise ParameterError("all weights are zero: nothing to sample")
        entries = [(c << CDF_BITS) // total for c in cumulative[:-1]]
        self._hi = np.array([e >> 64 for e in entries], dtype=np.uint64)
        self._lo = np.array([e & _LOW64 for e in entries], dtype=np.uint64)
        self._hi.flags.writeable = False
        self._lo.flags.writeable = False
        self.offset = operator.index(offset)
        self.size = len(weights)
        self.tail_mass = float(tail_mass)
        # Moments of the tabulated (truncated) distribution, exact up to the final division.
        mean_num = first  # mean of the index i is first / total
        self.mean = self.offset + mean_num / total
        # Var = E[i^2] - E[i]^2 = (second * total - first^2) / total^2, in exact integers.
        self.variance = (second * total - first * first) / (total * total)

    @property
    def tv_bound(self) -> float:
        """Total variation between `sample`'s output and the untruncated distribution:
        ``tail_mass + size * 2^-128 + WEIGHT_ERROR`` (see the module docstring)."""
        return self.tail_mass + self.size * 2.0**-CDF_BITS + WEIGHT_ERROR

    def sample(self, size: int, prg: AesCtrPrg) -> npt.NDArray[np.int64]:
        """``size`` independent samples drawn with 128 keystream bits each."""
        n = operator.index(size)
        if n < 0:
            raise ParameterError(f"size must be >= 0, got {n}")
        if not isinstance(prg, AesCtrPrg):
            raise ParameterError(
                f"prg must be a securecomp.crypto.AesCtrPrg, got {type(prg).__name__}; noise "
                "for differential privacy must come from a cryptographic keystream"
            )
        draws = prg.random_uint64((n, 2))
        return self.invert(draws[:, 0], draws[:, 1])

    def invert(
        self, u_hi: npt.NDArray[np.uint64], u_lo: npt.NDArray[np.uint64]
    ) -> npt.NDArray[np.int64]:
        """The values for given uniform 128-bit draws ``u = u_hi * 2^64 + u_lo``:
        ``offset`` plus the number of table entries ``F_i <= u`` (inversion)."""
        u_hi = np.asarray(u_hi, dtype=np.uint64)
        u_lo = np.asarray(u_lo, dtype=np.uint64)
        if u_hi.shape != u_lo.shape or u_hi.ndim != 1:
            raise ParameterError("u_hi and u_lo must be 1-D arrays of the same length")
        hi, lo = self._hi, self._lo
        # Entries whose high half is below u's are certainly <= u.
        idx = np.searchsorted(hi, u_hi, side="left")
        if hi.size and u_hi.size:
            at = np.minimum(idx, hi.size - 1)
            tie = (idx < hi.size) & (hi[at] == u_hi)
            # Equal high halves: walk the (tiny) run of equal entries comparing low halves.
            for k in np.flatnonzero(tie).tolist():
                i = int(idx[k])
                while i < hi.size and hi[i] == u_hi[k] and lo[i] <= u_lo[k]:
                    i += 1
                idx[k] = i
        out = idx.astype(np.int64)
        if self.offset:
            out += np.int64(self.offset)
        return out
