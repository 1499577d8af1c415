"""L2 clipping of a client's update (the sensitivity bound of distributed DP).

Kairouz, Liu and Steinke (ICML 2021), Algorithm 1, step "clip": ``x <- min(1, c / ||x||_2) x``,
so every client's contribution has L2 norm at most ``c``; the privacy analysis of the sum
(and the norm bound of conditional rounding, `securecomp.dp.rounding`) starts from it.
Clipping is applied after the randomized rotation in `securecomp.dp.mechanism`, which is
equivalent because the rotation is orthogonal. Non-finite inputs are refused rather than
clipped: a diverged update should be found, not hidden.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, ParameterError

__all__ = ["clip_l2"]


def clip_l2(x: npt.ArrayLike, bound: float) -> tuple[npt.NDArray[np.float64], bool]:
    """Scale ``x`` down to L2 norm ``bound`` if it is longer (a new float64 array).

    Parameters
    ----------
    x : array_like of real numbers
        The vector (any shape; the norm is over all entries).
    bound : float
        The clipping norm ``c > 0``.

    Returns
    -------
    (clipped, was_clipped)
        ``min(1, c / ||x||) * x`` (its norm is at most ``c`` up to float64 rounding, relative
        1e-15) and whether the scaling was applied.

    Raises
    ------
    EncodingOverflowError
        If ``x`` holds NaN or infinity.
    ParameterError
        If ``bound`` is not positive and finite, or ``x`` is not real.
    """
    c = float(bound)
    if not (math.isfinite(c) and c > 0.0):
        raise ParameterError(f"the clipping norm must be positive and finite, got {bound!r}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ParameterError(f"cannot clip an array of dtype {arr.dtype}; pass real numbers")
    out = arr.astype(np.float64, copy=True)
    with np.errstate(over="ignore"):  # squares of finite values may overflow: handled below
        norm = float(np.linalg.norm(out.ravel()))
    if not math.isfinite(norm):
        n_bad = int(np.count_nonzero(~np.isfinite(out)))
        if n_bad:
            raise EncodingOverflowError(
                f"{n_bad} of {out.size} values are NaN or infinite; find where the update "
                "diverged (clipping would hide it)"
            )
        # Finite entries whose squares overflow: rescale before taking the norm.
        peak = float(np.abs(out).max())
        norm = peak * float(np.linalg.norm((out / peak).ravel()))
    if norm <= c:
        return out, False
    out *= c / norm
    return out, True
