"""Discrete Gaussian samples over the integers from AES-CTR randomness (for noise flooding).

``D_{Z,σ}`` gives ``x`` probability proportional to ``exp(-x² / (2σ²))``.

1. **Base sampler**: `securecomp.crypto.CdtSampler` on the weights of ``D_{Z,σ0}``,
   ``σ0 = 256``, cut at ``±11σ0`` (tail mass about 2^-91), each weight ``floor(2^200 ρ(x))``
   computed in 80-digit decimal arithmetic; its 128-bit cumulative table is inverted for a
   uniform 128-bit draw from `AesCtrPrg`. Every kept probability (at least 2^-97) is exact to
   a relative 2^-31, and no value outside the support of ``D_{Z,σ0}`` is ever produced.
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

from securecomp.crypto import AesCtrPrg, CdtSampler
from securecomp.errors import ParameterError

__all__ = ["BASE_SIGMA", "MAX_SIGMA", "DiscreteGaussian"]

#: Standard deviation of the table sampler.
BASE_SIGMA = 256.0
_TAIL = 11  # table covers ±11 σ0: kept probabilities >= 2^-97, cut mass ~2^-91
_SMOOTHING = math.sqrt(math.log(2.0 * (1.0 + 2.0**100)) / math.pi)  # η_ε(Z), ε = 2^-100
#: Largest σ served: samples must stay far inside int64 (11 σ plus carries < 2^62).
MAX_SIGMA = 2.0**57


@functools.cache
def _base_sampler() -> CdtSampler:
    """The table of ``D_{Z,σ0}`` on ``[-T, T]``: weights ``floor(2^200 ρ(x))`` from 80-digit
    decimal arithmetic, inverted by `CdtSampler` (128-bit CDT, exact comparisons)."""
    bound = int(_TAIL * BASE_SIGMA)
    with decimal.localcontext() as dctx:
        dctx.prec = 80
        two_var = decimal.Decimal(2) * decimal.Decimal(BASE_SIGMA) ** 2
        unit = decimal.Decimal(2) ** 200
        half = [int((-decimal.Decimal(x * x) / two_var).exp() * unit) for x in range(bound + 1)]
    weights = half[:0:-1] + half  # x = -T .. T
    tail = 2.0 ** -90  # mass beyond ±11 σ0 (about 2^-91)
    return CdtSampler(weights, -bound, tail_mass=tail)


def _base(prg: AesCtrPrg, size: int) -> NDArray[np.int64]:
    """``size`` samples of ``D_{Z,σ0}``."""
    return _base_sampler().sample(size, prg)


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
