"""Tail bounds used to size the modulus and state the error of distributed DP.

All results are log2 of probabilities (so 2^-40 and smaller do not underflow) and every
bound is an explicit Chernoff argument:

* *subgaussian*: a ``v``-subgaussian ``X`` (``E[e^(sX)] <= e^(s^2 v / 2)``) has
  ``P[|X| >= t] <= 2 exp(-t^2 / (2v))``. The discrete Gaussian ``N_Z(0, sigma^2)`` is
  ``sigma^2``-subgaussian (Canonne, Kamath and Steinke, NeurIPS 2020, section 2), a Rademacher
  sum ``sum_j eps_j a_j`` is ``||a||^2``-subgaussian (Hoeffding), and independent
  subgaussians add their parameters.
* *Skellam plus subgaussian*: ``Sk(m)`` (``Poisson(m) - Poisson(m)``) has
  ``E[e^(sX)] = exp(2m (cosh s - 1))``, so for ``X = S + N`` with ``S`` ``v``-subgaussian,
  ``P[|X| >= t] <= 2 inf_s exp(s^2 v / 2 + 2m (cosh s - 1) - s t)``; the infimum is at the
  root of ``s v + 2m sinh s = t``, found by bisection.
* *norm of a Skellam vector*: ``Sk(m)`` is not subgaussian, so each coordinate is first
  bounded by ``B`` (the tail above, union bound over the ``d`` coordinates); on that event
  the squares are independent, at most ``B^2``, with mean ``V = 2m`` and variance at most
  ``E[Z^4] = 3V^2 + V`` (cumulants of the Skellam law), and Bernstein's inequality gives
  ``||Z||^2 <= d V + sqrt(2 d (3V^2 + V) x) + B^2 x / 3`` except with probability ``e^-x``.
* *norm of a subgaussian vector*: if the ``d`` coordinates of ``Z`` are independent and
  ``v``-subgaussian, then ``E[e^(lambda Z_k^2 / v)] <= (1 - 2 lambda)^(-1/2)``, the same
  bound as for a chi-square, so Laurent and Massart's argument (Annals of Statistics 2000,
  Lemma 1) gives ``P[||Z||^2 >= v (d + 2 sqrt(d x) + 2x)] <= e^-x``.
"""

from __future__ import annotations

import math

__all__ = [
    "log2_skellam_tail",
    "log2_subgaussian_tail",
    "skellam_magnitude_bound",
    "skellam_norm_bound",
    "subgaussian_norm_bound",
]

_LN2 = math.log(2.0)


def log2_subgaussian_tail(t: float, v: float) -> float:
    """``log2`` of ``min(1, 2 exp(-t^2 / (2v)))``: the two-sided tail at ``t``."""
    if t <= 0.0:
        return 0.0
    if v <= 0.0:
        return -math.inf
    return min(0.0, 1.0 - t * t / (2.0 * v * _LN2))


def log2_skellam_tail(t: float, v: float, m: float) -> float:
    """``log2`` of the two-sided Chernoff bound for ``S + N`` at ``t``.

    ``S`` is ``v``-subgaussian and ``N ~ Sk(m)``, independent (see the module docstring).
    """
    if t <= 0.0:
        return 0.0
    if m <= 0.0:
        return log2_subgaussian_tail(t, v)
    # g'(s) = s v + 2 m sinh(s) - t is increasing; its root lies below either term's root.
    hi = math.asinh(t / (2.0 * m))
    if v > 0.0:
        hi = min(hi, t / v)
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid * v + 2.0 * m * math.sinh(mid) < t:
            lo = mid
        else:
            hi = mid
    s = hi
    # 2m (cosh s - 1) = 4m sinh(s/2)^2, which keeps precision for small s.
    exponent = s * s * v / 2.0 + 4.0 * m * math.sinh(s / 2.0) ** 2 - s * t
    return min(0.0, 1.0 + exponent / _LN2)


def skellam_magnitude_bound(m: float, log2_failure: float) -> float:
    """Smallest ``B`` with ``log2_skellam_tail(B, 0, m) <= -log2_failure`` (bisection)."""
    lo, hi = 0.0, 1.0
    while log2_skellam_tail(hi, 0.0, m) > -log2_failure:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if log2_skellam_tail(mid, 0.0, m) > -log2_failure:
            lo = mid
        else:
            hi = mid
    return hi


def subgaussian_norm_bound(v: float, d: int, log2_failure: float) -> float:
    """``sqrt(v (d + 2 sqrt(d x) + 2x))`` with ``x = log2_failure * ln 2``: the L2 norm of ``d``
    independent ``v``-subgaussian coordinates exceeds it with probability <= 2^-log2_failure."""
    x = log2_failure * _LN2
    return math.sqrt(v * (d + 2.0 * math.sqrt(d * x) + 2.0 * x))


def skellam_norm_bound(m: float, d: int, log2_failure: float) -> float:
    """L2 norm of ``d`` independent ``Sk(m)`` coordinates: exceeded with probability at most
    ``2^-log2_failure`` (half for the coordinate bound, half for Bernstein)."""
    half = log2_failure + 1.0
    peak = skellam_magnitude_bound(m, half + math.log2(d))
    v = 2.0 * m
    x = half * _LN2
    squared = d * v + math.sqrt(2.0 * d * (3.0 * v * v + v) * x) + peak * peak * x / 3.0
    return math.sqrt(squared)
