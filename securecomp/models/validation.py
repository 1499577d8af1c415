"""Checks shared by the estimators and the protocols: hyper-parameters, results, step size.

The estimators follow scikit-learn's rule that ``__init__`` stores its arguments unchanged,
so every hyper-parameter is checked here, at ``fit``, and turned into a `TrainingSpec`.
`check_spec` applies the same checks to a spec built by hand, so a protocol used without an
estimator refuses the same bad values. `step_size` is the ``learning_rate="auto"`` rule:
the step 1/L of gradient descent on an L-smooth objective (Nesterov, *Introductory Lectures
on Convex Optimization*, 2004, §2.2; Bubeck, *Convex Optimization: Algorithms and
Complexity*, 2015, §3.7).

Nothing here imports scikit-learn, so protocols can use it without the estimator layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError
from securecomp.models.protocol import FitResult, ScoreResult, TrainingSpec

__all__ = [
    "build_spec",
    "check_fit_result",
    "check_plan_shape",
    "check_score_result",
    "check_spec",
    "step_size",
]

_TASKS = ("linear", "logistic")
_OPTIMIZERS = ("gd", "nesterov")
_OUT_OF_RANGE = ("warn", "raise")


def _is_int(value: object) -> bool:
    # bool is an Integral in Python; a flag passed as a count is a bug, not a count.
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _positive_int(name: str, value: object) -> int:
    if not _is_int(value) or int(value) < 1:  # type: ignore[call-overload]
        raise ParameterError(f"{name} must be a positive int, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def _real(name: str, value: object, *, positive: bool) -> float:
    if not _is_real(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise ParameterError(f"{name} must be a finite real number, got {value!r}")
    out = float(value)  # type: ignore[arg-type]
    if positive and out <= 0.0:
        raise ParameterError(f"{name} must be > 0, got {value!r}")
    if not positive and out < 0.0:
        raise ParameterError(f"{name} must be >= 0, got {value!r}")
    return out


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(map(repr, choices))
        raise ParameterError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ParameterError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def build_spec(
    task: str,
    *,
    optimizer: object = "nesterov",
    learning_rate: object = 1.0,
    max_iter: object = 10,
    batch_size: object = None,
    fit_intercept: object = True,
    l2: object = 0.0,
    sigmoid_degree: object = 5,
    sigmoid_interval: object = 8.0,
    out_of_range: object = "warn",
    random_state: object = None,
    options: object = None,
) -> TrainingSpec:
    """Check each hyper-parameter and return the `TrainingSpec` they describe.

    Parameters
    ----------
    task : {"linear", "logistic"}
    optimizer, learning_rate, max_iter, batch_size, fit_intercept, l2, sigmoid_degree,
    sigmoid_interval, out_of_range, random_state
        As in `TrainingSpec`; ``learning_rate`` must already be a number here (resolve
        ``"auto"`` with `step_size` first).
    options : mapping or None
        Protocol-specific options; copied, so the caller's dict is never shared.

    Returns
    -------
    TrainingSpec

    Raises
    ------
    ParameterError
        Naming the first bad value and the accepted range.
    """
    if random_state is not None and not _is_int(random_state):
        raise ParameterError(
            f"random_state must be None or an int seed, got {type(random_state).__name__}; "
            "pass an int for reproducible shuffling"
        )
    if options is None:
        opts: dict[str, Any] = {}
    elif isinstance(options, Mapping):
        opts = dict(options)
    else:
        raise ParameterError(
            f"backend_options must be a dict or None, got {type(options).__name__}"
        )
    if not all(isinstance(k, str) for k in opts):
        raise ParameterError("backend_options keys must be str")
    return TrainingSpec(
        task=_choice("task", task, _TASKS),  # type: ignore[arg-type]
        optimizer=_choice("optimizer", optimizer, _OPTIMIZERS),  # type: ignore[arg-type]
        learning_rate=_real("learning_rate", learning_rate, positive=True),
        max_iter=_positive_int("max_iter", max_iter),
        batch_size=None if batch_size is None else _positive_int("batch_size", batch_size),
        fit_intercept=_bool("fit_intercept", fit_intercept),
        l2=_real("l2", l2, positive=False),
        sigmoid_degree=_positive_int("sigmoid_degree", sigmoid_degree),
        sigmoid_interval=_real("sigmoid_interval", sigmoid_interval, positive=True),
        out_of_range=_choice("out_of_range", out_of_range, _OUT_OF_RANGE),  # type: ignore[arg-type]
        random_state=None if random_state is None else int(random_state),  # type: ignore[call-overload]
        options=opts,
    )


def check_spec(spec: TrainingSpec) -> TrainingSpec:
    """Apply `build_spec`'s checks to an existing spec; return it unchanged if valid."""
    if not isinstance(spec, TrainingSpec):
        raise ParameterError(f"expected a TrainingSpec, got {type(spec).__name__}")
    build_spec(
        spec.task,
        optimizer=spec.optimizer,
        learning_rate=spec.learning_rate,
        max_iter=spec.max_iter,
        batch_size=spec.batch_size,
        fit_intercept=spec.fit_intercept,
        l2=spec.l2,
        sigmoid_degree=spec.sigmoid_degree,
        sigmoid_interval=spec.sigmoid_interval,
        out_of_range=spec.out_of_range,
        random_state=spec.random_state,
        options=spec.options,
    )
    return spec


def step_size(X: NDArray[np.float64], *, task: str, fit_intercept: bool, l2: float) -> float:
    """The step 1/L for the averaged loss on ``X`` (the ``learning_rate="auto"`` rule).

    With Z = [1 | X] (or X without an intercept) and n rows, the gradient of the mean
    squared loss ``(1/2n)||Zw - y||² + (l2/2)||w||²`` is L-Lipschitz with
    ``L = λ_max(ZᵀZ / n) + l2``; for the mean logistic loss the sigmoid's slope is at most
    1/4, so ``L = λ_max(ZᵀZ / n) / 4 + l2``. A step of 1/L makes gradient descent and
    Nesterov's method converge for any scaling of the features, which is why it is the
    default; it depends only on ``X`` (never on ``y``).

    Cost: one Gram matrix of the smaller side, O(n · min(n, d)²).
    """
    _choice("task", task, _TASKS)
    n = X.shape[0]
    if n == 0:
        raise ShapeMismatchError("cannot derive a step size from 0 samples; pass data with rows")
    Z = np.hstack([np.ones((n, 1)), X]) if fit_intercept else X
    # ZᵀZ and ZZᵀ share their non-zero eigenvalues: use whichever is smaller.
    gram = Z.T @ Z if Z.shape[1] <= n else Z @ Z.T
    lam = float(np.linalg.eigvalsh(gram)[-1]) / n if gram.size else 0.0
    curvature = 0.25 if task == "logistic" else 1.0
    lipschitz = curvature * lam + l2
    if not math.isfinite(lipschitz):
        raise EncodingOverflowError(
            "the features are too large for float64 (their Gram matrix overflows); "
            "standardize X before fitting"
        )
    # All-zero features and no penalty: the objective is flat, any step is safe.
    return 1.0 / lipschitz if lipschitz > 0.0 else 1.0


def check_plan_shape(X_shape: object) -> tuple[int, int]:
    """``(n_samples, n_features)`` from the ``X_shape`` given to a protocol's ``plan``.

    Raises
    ------
    ParameterError
        Unless ``X_shape`` is a tuple of two ints > 0.
    """
    if (
        not isinstance(X_shape, tuple)
        or len(X_shape) != 2
        or not all(_is_int(v) and v > 0 for v in X_shape)
    ):
        raise ParameterError(
            f"X_shape must be a tuple (n_samples, n_features) of ints > 0, got {X_shape!r}"
        )
    return int(X_shape[0]), int(X_shape[1])


def check_fit_result(result: object, n_features: int, backend: str) -> FitResult:
    """Refuse a protocol's `FitResult` of the wrong shape or with non-finite weights."""
    if not isinstance(result, FitResult):
        raise ParameterError(
            f"backend {backend!r} returned {type(result).__name__} from fit, not a FitResult"
        )
    coef = np.asarray(result.coef)
    if coef.shape != (n_features,):
        raise ShapeMismatchError(
            f"backend {backend!r} returned coefficients of shape {coef.shape}, "
            f"expected ({n_features},)"
        )
    if not (np.all(np.isfinite(coef)) and math.isfinite(float(result.intercept))):
        raise EncodingOverflowError(
            f"backend {backend!r} produced non-finite weights; standardize X or lower learning_rate"
        )
    return result


def check_score_result(result: object, n_rows: int, backend: str) -> NDArray[np.float64]:
    """The scores of a protocol's `ScoreResult` as float64 (n_rows,), refusing NaN/inf."""
    if not isinstance(result, ScoreResult):
        raise ParameterError(
            f"backend {backend!r} returned {type(result).__name__} from decision_function, "
            "not a ScoreResult"
        )
    scores = np.asarray(result.scores, dtype=np.float64)
    if scores.shape != (n_rows,):
        raise ShapeMismatchError(
            f"backend {backend!r} returned scores of shape {scores.shape}, expected ({n_rows},)"
        )
    if not np.all(np.isfinite(scores)):
        raise EncodingOverflowError(
            f"backend {backend!r} produced non-finite scores (float64 overflow); "
            "standardize X before predicting"
        )
    return scores
