"""Discrete Gaussian samples over the integers from AES-CTR randomness (for noise flooding).

``D_{Z,σ}`` gives ``x`` probability proportional to ``exp(-x² / (2σ²))``.

1. **Base sampler**: a cumulative distribution table of ``D_{Z,σ0}``, ``σ0 = 256``, cut at
   ``±11σ0`` (tail mass about 2^-91), each entry ``floor(2^128 · CDF)`` computed in
   60-digit decimal arithmetic. A uniform 128-bit draw from `AesCtrPrg` is located by
   binary search; every kept probability (at least 2^-97) is exact to a relative 2^-31,
   and no value outside the support of ``D_{Z,σ0}`` is ever produced.
2. **Convolution** (Micciancio and Walter, "Gaussian sampling over the integers: efficient,
   generic, constant-time", CRYPTO 2017, section 5; Peikert, CRYPTO 2010, Theorem 3.1):
   if ``x1 ~ D_{Z,σ1}`` and ``x2 ~ D_{Z,σ2}``, then ``x1 + z·x2`` follows ``D_{Z,σ}`` with
   ``σ² = σ1² + z²σ2²`` up to a pointwise factor in ``[1 - 2ε, 1/(1 - 2ε)]`` whenever
   ``1/σ2² + z²/σ1² <= 1/η_ε(Z)²``: writing ``w = z·x2`` the sum over the lattice ``zZ``
   is a Gaussian of parameter ``σ1·zσ2/σ`` evaluated on a shifted ``zZ``, which is constant
   up to ``(1 ± ε)`` above the smoothing parameter ``z·η_ε(Z)`` (Micciancio and Regev,
   SIAM J. Comput. 2007, Lemma 4.4). With ``ε = 2^-100``, ``η_ε(Z) <= 4.72`` (their Lemma
   3.3), so each stage multiplies σ by up to ~54; a schedule of stages reaches any target
   from above (the last factor is chosen so the overshoot is a few percent at most).

The result is reported with its exact σ; the flooding argument needs σ at least the target
and a distribution close to ``D_{Z,σ}``: here within a pointwise factor ``1 ± 2^-29`` on a
support that misses tail mass of about 2^-90.
"""

from __future__ import annotations

import decimal
import functools
import math

import numpy as np
from numpy.typing import NDArray

from securecomp.crypto import AesCtrPrg
from securecomp.errors import ParameterError

__all__ = ["BASE_SIGMA", "MAX_SIGMA", "DiscreteGaussian"]

#: Standard deviation of the table sampler.
BASE_SIGMA = 256.0
_TAIL = 11  # table covers ±11 σ0: kept probabilities >= 2^-97, cut mass ~2^-91
_SMOOTHING = math.sqrt(math.log(2.0 * (1.0 + 2.0**100)) / math.pi)  # η_ε(Z), ε = 2^-100
#: Largest σ served: samples must stay far inside int64 (11 σ plus carries < 2^62).
MAX_SIGMA = 2.0**57


@functools.cache
def _table() -> tuple[NDArray[np.uint64], NDArray[np.uint64], int]:
    """(hi, lo) 64-bit halves of ``floor(2^128 CDF(x))`` for x in [-T, T), and T."""
    bound = int(_TAIL * BASE_SIGMA)
    with decimal.localcontext() as dctx:
        dctx.prec = 60
        two_var = decimal.Decimal(2) * decimal.Decimal(BASE_SIGMA) ** 2
        rho = [(-decimal.Decimal(x * x) / two_var).exp() for x in range(bound + 1)]
        total = rho[0] + 2 * sum(rho[1:])
        scale = decimal.Decimal(2) ** 128
        hi = np.empty(2 * bound, dtype=np.uint64)
        lo = np.empty(2 * bound, dtype=np.uint64)
        acc = decimal.Decimal(0)
        for i, x in enumerate(range(-bound, bound)):
            acc += rho[abs(x)]
            v = int((acc / total * scale).to_integral_value(rounding=decimal.ROUND_FLOOR))
            v = min(v, (1 << 128) - 1)
            hi[i], lo[i] = v >> 64, v & ((1 << 64) - 1)
    return hi, lo, bound


def _base(prg: AesCtrPrg, size: int) -> NDArray[np.int64]:
    """``size`` samples of ``D_{Z,σ0}`` (128-bit CDT, exact comparisons)."""
    hi, lo, bound = _table()
    draws = prg.random_uint64((size, 2))
    u_hi, u_lo = draws[:, 0], draws[:, 1]
    # The answer is the first entry whose 128-bit CDF exceeds u (the last value otherwise).
    first = np.searchsorted(hi, u_hi, side="left")
    after = np.searchsorted(hi, u_hi, side="right")
    idx = after.copy()
    # Equal high halves (probability ~2^-64 per draw): compare the low halves exactly.
    for n in np.nonzero(first != after)[0].tolist():
        i = int(first[n])
        while i < after[n] and lo[i] <= u_lo[n]:
            i += 1
        idx[n] = i
    return idx.astype(np.int64) - bound


def _schedule(target: float) -> tuple[list[int], float]:
    """Convolution factors ``z_i`` and the exact σ they produce (>= target)."""
    s0 = BASE_SIGMA
    if target <= s0:
        return [], s0

    def zmax(prev: float) -> int:
        return math.floor(s0 * math.sqrt(1.0 / _SMOOTHING**2 - 1.0 / prev**2))

    # Stages needed at the largest factor, then an even factor so that the last stage
    # (chosen exactly) overshoots little.
    stages, sigma = 0, s0
    while sigma < target:
        sigma = math.sqrt(s0**2 + (zmax(sigma) * sigma) ** 2)
        stages += 1
    even = max(1, math.ceil((target / s0) ** (1.0 / stages)))
    zs, sigma = [], s0
    for _ in range(stages - 1):
        z = min(even, zmax(sigma))
        zs.append(z)
        sigma = math.sqrt(s0**2 + (z * sigma) ** 2)
    z_last = max(1, math.ceil(math.sqrt(max(target**2 - s0**2, 0.0)) / sigma))
    z_last = min(z_last, zmax(sigma))
    zs.append(z_last)
    sigma = math.sqrt(s0**2 + (z_last * sigma) ** 2)
    if sigma < target:  # cannot happen: the stage count was computed at the largest factors
        raise ParameterError(f"internal: Gaussian schedule reached {sigma} < {target}")
    return zs, sigma


class DiscreteGaussian:
    """Sampler of ``D_{Z,σ}`` with ``σ >= target`` (see the module docstring).

    Invariant: `sigma` is the exact parameter of the distribution sampled (up to the
    closeness stated in the module docstring), and ``sigma >= target``.

    Parameters
    ----------
    target : float
        Smallest acceptable σ, in integer units; at most `MAX_SIGMA`.
    """

    def __init__(self, target: float) -> None:
        if not isinstance(target, int | float) or not math.isfinite(target) or target <= 0:
            raise ParameterError(f"Gaussian target σ must be a positive number, got {target!r}")
        if target > MAX_SIGMA:
            raise ParameterError(f"Gaussian σ {target:.3g} exceeds the supported {MAX_SIGMA:.3g}")
        self._zs, self.sigma = _schedule(float(target))

    def sample(self, size: int, prg: AesCtrPrg) -> NDArray[np.int64]:
        """``size`` independent samples, drawn from ``prg`` (a CSPRNG keystream)."""
        x = _base(prg, size)
        for z in self._zs:
            x = _base(prg, size) + np.int64(z) * x
        return x
