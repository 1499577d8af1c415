"""Scale drift: the systematic bias TenSEAL adds at every rescale, and how to cancel it.

In CKKS a product of two values at scale Δ has scale Δ², and rescaling divides it by the
consumed prime p, leaving the *true* scale Δ²/p (Cheon et al., ASIACRYPT 2017, section 3.3).
SEAL tracks that true scale, but TenSEAL's auto-rescale overwrites it with the nominal
Δ = 2^s after every rescale. The ciphertext still holds m·Δ²/p, so decoding with Δ returns
m·(2^s/p): each rescale multiplies the value by

    f_k = 2^s / p_k,      p_k = the prime consumed by the k-th rescale.

SEAL's primes lie just below 2^b (see :mod:`securecomp.params.primes`), so with b = s every
f_k is slightly above 1; primes far from 2^s (small b, large N: few candidates = 1 mod 2N)
drift badly. Measured with TenSEAL 0.3 (x·1.0 repeated with auto-rescale): [31, 26×6, 31]
at N = 8192 drifts +2.8% over 6 levels, 21-bit primes reach ~6×, [60, 40, 40, 60] ~1e-6.

Primes are consumed from the end of the chain: the special prime P (last) is never consumed
and q_0 (first) is kept for decryption, so the k-th rescale consumes ``primes[depth + 1 - k]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from securecomp.errors import ParameterError
from securecomp.params.ckks import CKKSParameters

__all__ = ["DriftReport", "constant_correction", "rescale_primes", "scale_drift"]


@dataclass(frozen=True)
class DriftReport:
    """Per-rescale drift factors of a chain under TenSEAL's scale reset.

    Invariant: ``cumulative[k] == prod(level_factors[: k + 1])``; a value multiplied by
    plaintext constants through ``k + 1`` rescales decrypts as ``value * cumulative[k]``
    (up to noise).

    Attributes
    ----------
    scale_bits : int
        The nominal scale exponent s.
    primes : tuple of int
        Primes consumed, in rescale order (first rescale first).
    level_factors : tuple of float
        ``2**s / p_k`` for each rescale.
    cumulative : tuple of float
        Running products of ``level_factors``.
    """

    scale_bits: int
    primes: tuple[int, ...]
    level_factors: tuple[float, ...]
    cumulative: tuple[float, ...]

    @property
    def depth(self) -> int:
        """Number of rescales covered."""
        return len(self.level_factors)

    @property
    def cumulative_drift(self) -> float:
        """Relative drift after the last rescale covered, ``|prod f_k - 1|`` (0 for none)."""
        return abs(self.cumulative[-1] - 1.0) if self.cumulative else 0.0

    @property
    def max_level_drift(self) -> float:
        """Largest single-rescale relative drift ``max |f_k - 1|`` (0 for none)."""
        return max((abs(f - 1.0) for f in self.level_factors), default=0.0)


def rescale_primes(params: CKKSParameters, depth: int | None = None) -> tuple[int, ...]:
    """The primes consumed by the first ``depth`` rescales, in the order they are consumed.

    Parameters
    ----------
    params : CKKSParameters
        The parameter set.
    depth : int, optional
        Number of rescales (default: all ``params.depth``).

    Raises
    ------
    ParameterError
        If ``depth`` is negative or exceeds the chain, or SEAL cannot build the chain.
    """
    d = params.depth if depth is None else depth
    if isinstance(d, bool) or not isinstance(d, int) or d < 0 or d > params.depth:
        raise ParameterError(
            f"depth must be an int from 0 to {params.depth} (the chain's rescales), got "
            f"{depth!r}; add primes to the chain for more depth"
        )
    primes = params.primes
    # primes[-1] is the special prime P; the data primes q_L .. q_1 go first-to-last.
    return tuple(primes[params.depth + 1 - k] for k in range(1, d + 1))


def scale_drift(params: CKKSParameters, depth: int | None = None) -> DriftReport:
    """Drift factors of the first ``depth`` rescales (default: the whole chain).

    Parameters
    ----------
    params : CKKSParameters
        The parameter set.
    depth : int, optional
        Number of rescales to cover.

    Returns
    -------
    DriftReport

    Raises
    ------
    ParameterError
        If ``depth`` is out of range or SEAL cannot build the chain.

    Examples
    --------
    >>> p = CKKSParameters(8192, (31, 26, 26, 26, 26, 26, 26, 31), 26)
    >>> round(scale_drift(p).cumulative_drift, 3)
    0.028
    """
    consumed = rescale_primes(params, depth)
    # Exact power of two over an int below 2^60: both convert to float exactly.
    factors = tuple(math.ldexp(1.0, params.scale_bits) / p for p in consumed)
    cumulative: list[float] = []
    running = 1.0
    for f in factors:
        running *= f
        cumulative.append(running)
    return DriftReport(
        scale_bits=params.scale_bits,
        primes=consumed,
        level_factors=factors,
        cumulative=tuple(cumulative),
    )


def constant_correction(params: CKKSParameters, level: int) -> float:
    """Factor to fold into a plaintext constant so the following rescale does not drift.

    A ciphertext that has been through ``level`` rescales (0 = fresh) and is multiplied by a
    plaintext constant c is next rescaled by the ``level + 1``-th consumed prime p, which
    multiplies the result by ``2**s / p``. Multiplying by ``c * constant_correction(...)``
    instead, i.e. ``c * p / 2**s``, cancels that factor exactly (up to the encoding
    rounding of the constant, about 2^-s relative). Correcting every constant multiplication
    of a computation removes its drift; drift already present in an operand is not undone.

    Parameters
    ----------
    params : CKKSParameters
        The parameter set.
    level : int
        Rescales the ciphertext has already gone through, ``0 <= level < params.depth``.

    Returns
    -------
    float
        ``p / 2**scale_bits``.

    Raises
    ------
    ParameterError
        If ``level`` is out of range (no rescale is left to correct).
    """
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < params.depth:
        raise ParameterError(
            f"level must be an int from 0 to {params.depth - 1} (rescales already done), got "
            f"{level!r}; at level {params.depth} the chain has no rescale left"
        )
    (p,) = rescale_primes(params, level + 1)[-1:]
    return p / math.ldexp(1.0, params.scale_bits)
