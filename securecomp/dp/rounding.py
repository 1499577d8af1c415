"""Conditional randomized rounding to the integer grid (distributed DP quantization).

Kairouz, Liu and Steinke (ICML 2021), section 4.1 and Theorem 1 (arXiv:2102.06387).
Randomized (stochastic) rounding maps ``y`` to ``floor(y) + Bernoulli(y - floor(y))`` per
coordinate: unbiased, but it can lengthen the vector, and the privacy analysis needs a
*deterministic* bound on the norm of what is noised. Conditional randomized rounding
resamples until the rounded vector's squared norm is at most

    min( (c + sqrt(d))^2 ,  c^2 + d/4 + sqrt(2 log(1/beta)) (c + sqrt(d)/2) ),

where ``c >= ||y||_2`` and ``d`` is the dimension. The first term always holds (each
coordinate moves by less than 1); the second holds for one unconditional rounding with
probability at least ``1 - beta`` (their Theorem 1), so the expected number of attempts is
at most ``1 / (1 - beta)``. The paper recommends ``beta = exp(-1/2)``; ``beta = 0`` means
the first term alone (plain randomized rounding, no resampling).

The threshold actually enforced is the integer ``floor`` of that expression, compared with
the exact integer squared norm of the candidate, and the accountant uses that same integer:
the sensitivity is guaranteed by the check, not by the float arithmetic of the bound.

Rounding coins come from an `AesCtrPrg` (53-bit uniforms; each coordinate is unbiased up to
2^-53). They protect no secret by themselves, but drawing them from the client's keystream
keeps a client's whole contribution a function of one cryptographic seed.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import numpy.typing as npt

from securecomp.crypto.prg import AesCtrPrg
from securecomp.errors import EncodingOverflowError, ParameterError

__all__ = [
    "MAX_SQUARED_NORM",
    "conditional_round",
    "max_attempts",
    "rounded_norm_bound",
]

#: Largest squared norm a rounded vector may have: its exact int64 evaluation cannot overflow.
MAX_SQUARED_NORM = 1 << 62

_TWO53 = float(1 << 53)


def _check_beta(beta: object) -> float:
    if isinstance(beta, bool) or not isinstance(beta, int | float | np.floating):
        raise ParameterError(f"beta must be a real number, got {type(beta).__name__}")
    b = float(beta)
    if not 0.0 <= b < 1.0:
        raise ParameterError(f"beta must lie in [0, 1), got {beta!r} (exp(-0.5) is typical)")
    return b


def rounded_norm_bound(l2_bound: float, dim: int, beta: float) -> int:
    """The integer threshold on the squared norm of a rounded vector (Theorem 1).

    Parameters
    ----------
    l2_bound : float
        ``c``: the L2 norm bound of the vector before rounding (in integer units).
    dim : int
        ``d``: number of coordinates rounded.
    beta : float
        Allowed failure probability of one rounding attempt, ``0 <= beta < 1``.

    Returns
    -------
    int
        ``floor(min((c + sqrt d)^2, c^2 + d/4 + sqrt(2 log(1/beta)) (c + sqrt(d)/2)))``.

    Raises
    ------
    ParameterError
        For invalid arguments, or a threshold of 2^62 or more (lower the scale).
    """
    c = float(l2_bound)
    d = operator.index(dim)
    b = _check_beta(beta)
    if not (math.isfinite(c) and c >= 0.0) or d < 1:
        raise ParameterError("l2_bound must be finite and >= 0, and dim >= 1")
    bound = (c + math.sqrt(d)) ** 2
    if b > 0.0:
        slack = math.sqrt(2.0 * math.log(1.0 / b)) * (c + math.sqrt(d) / 2.0)
        bound = min(bound, c * c + d / 4.0 + slack)
    if bound >= MAX_SQUARED_NORM:
        raise ParameterError(
            f"rounded vectors could reach squared norm {bound:.3g} >= 2^62; lower the scale"
        )
    return math.floor(bound)


def max_attempts(beta: float) -> int:
    """Attempts before giving up: all fail with probability at most 2^-128 (and >= 64)."""
    b = _check_beta(beta)
    if b == 0.0:
        return 64  # never needed: the first attempt always meets (c + sqrt d)^2
    return max(64, math.ceil(128.0 / -math.log2(b)))


def conditional_round(
    y: npt.ArrayLike, max_squared_norm: int, prg: AesCtrPrg, *, attempts: int = 64
) -> tuple[npt.NDArray[np.int64], int]:
    """Randomized rounding of ``y``, resampled until ``||q||^2 <= max_squared_norm``.

    Parameters
    ----------
    y : array_like of float
        The (scaled) vector.
    max_squared_norm : int
        Threshold on the exact squared norm (see `rounded_norm_bound`).
    prg : AesCtrPrg
        Source of the rounding coins (64 bits per coordinate per attempt).
    attempts : int, optional
        How many roundings to try (see `max_attempts`).

    Returns
    -------
    (q, used)
        The rounded int64 vector and how many attempts it took.

    Raises
    ------
    EncodingOverflowError
        If no attempt met the threshold (probability <= 2^-128 when ``||y||`` is within the
        ``c`` the threshold was computed for), or ``y`` holds NaN or infinity.
    ParameterError
        If ``||y||`` is so large that a squared norm could overflow int64.
    """
    if not isinstance(prg, AesCtrPrg):
        raise ParameterError("prg must be a securecomp.crypto.AesCtrPrg")
    limit = operator.index(max_squared_norm)
    tries = operator.index(attempts)
    if tries < 1:
        raise ParameterError(f"attempts must be >= 1, got {tries}")
    arr = np.asarray(y, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise EncodingOverflowError("the vector holds NaN or infinity; it cannot be rounded")
    worst = float(np.linalg.norm(arr)) + math.sqrt(arr.size)
    if worst * worst >= MAX_SQUARED_NORM:
        raise ParameterError(
            f"a vector of norm {worst:.3g} is too long to round exactly; lower the scale"
        )
    floor = np.floor(arr)
    threshold = (arr - floor) * _TWO53  # exact: fraction times a power of two
    base = floor.astype(np.int64)
    for used in range(1, tries + 1):
        coins = (prg.random_uint64(arr.shape) >> np.uint64(11)).astype(np.float64)
        q = base + (coins < threshold)
        if _squared_norm_at_most(q.ravel(), limit):
            return q, used
    raise EncodingOverflowError(
        f"conditional rounding failed {tries} times in a row (squared-norm threshold {limit}); "
        "for an input within the clipping bound this has probability <= 2^-128: check that "
        "the vector was clipped and scaled with the parameters the threshold came from"
    )


def _squared_norm_at_most(q: npt.NDArray[np.int64], limit: int) -> bool:
    """``sum(q^2) <= limit``, decided exactly.

    A float64 dot product of non-negative terms has relative error below ``len * 2^-53``
    (< 1e-9 here); only when it lands within that margin of the limit is the exact int64
    sum (no overflow: it is below 2^62) computed, which is slower.
    """
    qf = q.astype(np.float64)
    approx = float(np.dot(qf, qf))
    margin = 1e-9 + q.size * 2.0**-52
    if approx <= limit * (1.0 - margin):
        return True
    if approx >= limit * (1.0 + margin) + 1.0:
        return False
    return int(np.dot(q, q)) <= limit
