"""The float64 twin of MPC training: the same algorithm, in numpy, without any protection.

`reference_fit` follows the same `TrainPlan` as the parties' program
(`securecomp.mpc.models.program`): the same joint row order and permutation, the same
batches in the same order, the same sigmoid approximation (SecureML's piecewise function
or the same least-squares polynomial) and the optimizer update of
`securecomp.models.gd.update`, in float64. The MPC result differs from it only by
fixed-point rounding (one unbiased ulp per truncation), which is what the accuracy tests
measure. It also records the largest |coefficient| of every iterate, to check the
``weight_bound`` claim the MPC run relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ParameterError, ShapeMismatchError
from securecomp.models.gd import update
from securecomp.mpc.models.plan import TrainPlan, piecewise_sigmoid
from securecomp.mpc.models.program import design

__all__ = ["ReferenceFit", "reference_fit"]


@dataclass(frozen=True)
class ReferenceFit:
    """Result of `reference_fit`.

    Attributes
    ----------
    coef : ndarray (n_features,)
    intercept : float
    max_abs_weight : float
        Largest |entry| of w and v over all iterates (what ``weight_bound`` must cover).
    max_abs_logit : float
        Largest |logit| met at any look-ahead point.
    outside : int
        Logits outside the polynomial sigmoid's interval, summed over steps (0 otherwise).
    steps : int
    """

    coef: NDArray[np.float64]
    intercept: float
    max_abs_weight: float
    max_abs_logit: float
    outside: int
    steps: int


def reference_fit(plan: TrainPlan, X: NDArray[np.float64], y: NDArray[np.float64]) -> ReferenceFit:
    """Train in float64 on ``X``, ``y`` (the parties' rows stacked in party order).

    Raises
    ------
    ShapeMismatchError
        ``X`` or ``y`` does not match the plan's shapes.
    ParameterError
        The iterates became non-finite (diverged).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.shape != (plan.n, plan.n_features) or y.shape != (plan.n,):
        raise ShapeMismatchError(
            f"the plan is for X of shape {(plan.n, plan.n_features)} and y of shape "
            f"({plan.n},); got {X.shape} and {y.shape}"
        )
    Z = design(X, plan.intercept)
    if plan.perm is not None:
        Z, y = Z[plan.perm], y[plan.perm]
    w = np.zeros(plan.width)
    v = w.copy()
    max_w = 0.0
    max_z = 0.0
    outside = 0
    for step in plan.steps():
        start, stop = plan.cuts[step.batch]
        zb, yb = Z[start:stop], y[start:stop]
        z = zb @ v
        max_z = max(max_z, float(np.max(np.abs(z))))
        if plan.task == "logistic":
            if plan.sigmoid == "poly" and plan.poly is not None:
                outside += int(np.count_nonzero(np.abs(z) > plan.poly.interval))
                s = plan.poly(z)
            else:
                s = piecewise_sigmoid(z)
            r = s - yb
        else:
            r = z - yb
        g = zb.T @ r
        w, v = update(w, v, g, step, plan.cfg)
        max_w = max(max_w, float(np.max(np.abs(w))), float(np.max(np.abs(v))))
        if not np.isfinite(max_w):
            raise ParameterError(
                f"float64 training diverged at step {step.index + 1}; lower the learning rate"
            )
    coef = w[1:] if plan.intercept else w
    intercept = float(w[0]) if plan.intercept else 0.0
    return ReferenceFit(coef.copy(), intercept, max_w, max_z, outside, plan.n_steps)
