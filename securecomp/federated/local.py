"""On-device training of binary logistic and linear models (plain float64, no cryptography).

A model is one flat vector ``params = [w_1 .. w_d, b]`` (coefficients, then the intercept),
the shape in which it travels through secure aggregation. The local objective of client
``k`` on its ``n_k`` samples is the mean loss plus an optional ridge term and an optional
proximal term:

    F_k(v) = (1/n_k) sum_i loss(v; x_i, y_i) + (l2/2) ||w||^2 + (mu/2) ||v - anchor||^2

with the logistic loss ``log(1 + e^z) - y z`` (``z = x . w + b``, ``y`` in {0, 1}) or half
the squared error ``(z - y)^2 / 2``. ``local_train`` runs full-batch gradient descent on it
for a fixed number of steps (no early stop: the number of steps must not depend on the data,
as in DP-FedAvg, McMahan et al., ICLR 2018). With ``mu = 0`` this is the local step of
FedAvg (McMahan et al., AISTATS 2017, Algorithm 1); with ``mu > 0`` and the global model as
anchor it is the personal objective of Ditto (Li et al., ICML 2021, eq. (2)).

The logistic loss is evaluated as ``logaddexp(0, z) - y z``, which neither overflows nor
returns NaN for large ``|z|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ParameterError, ShapeMismatchError

__all__ = [
    "LocalTraining",
    "ModelKind",
    "accuracy",
    "gradient",
    "local_train",
    "losses",
    "predict",
    "score",
    "sigmoid",
    "zero_model",
]

#: Binary logistic regression or least-squares linear regression.
ModelKind = Literal["logistic", "linear"]


def _check_kind(kind: object) -> ModelKind:
    if kind not in ("logistic", "linear"):
        raise ParameterError(f"model kind must be 'logistic' or 'linear', got {kind!r}")
    return kind  # type: ignore[return-value]


def _nonneg_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ParameterError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v < 0.0:
        raise ParameterError(f"{name} must be finite and >= 0, got {value!r}")
    return v


@dataclass(frozen=True)
class LocalTraining:
    """How a device trains: model kind, gradient-descent steps, step size and ridge penalty.

    Invariant: ``epochs >= 1``, ``learning_rate > 0``, ``l2 >= 0``, all finite.
    """

    kind: ModelKind = "logistic"
    epochs: int = 5
    learning_rate: float = 0.5
    l2: float = 0.0

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ParameterError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if _nonneg_float("learning_rate", self.learning_rate) == 0.0:
            raise ParameterError("learning_rate must be > 0")
        object.__setattr__(self, "learning_rate", float(self.learning_rate))
        object.__setattr__(self, "l2", _nonneg_float("l2", self.l2))


def zero_model(dim: int) -> NDArray[np.float64]:
    """The all-zero model for ``dim`` features (``dim + 1`` parameters)."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ParameterError(f"dim must be an integer >= 1, got {dim!r}")
    return np.zeros(dim + 1, dtype=np.float64)


def _check(params: NDArray[np.float64], x: NDArray[np.float64]) -> None:
    if params.ndim != 1 or x.ndim != 2 or params.shape[0] != x.shape[1] + 1:
        raise ShapeMismatchError(
            f"a model of {params.shape} parameters needs x of shape (n, {params.shape[0] - 1}),"
            f" got {x.shape}"
        )


def sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """The logistic function, without overflow for large ``|z|``."""
    out: NDArray[np.float64] = np.exp(-np.logaddexp(0.0, -z))
    return out


def predict(params: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The linear score ``x . w + b`` of every row (a logit for logistic models)."""
    _check(params, x)
    out: NDArray[np.float64] = x @ params[:-1] + params[-1]
    return out


def losses(
    params: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[Any], kind: ModelKind
) -> NDArray[np.float64]:
    """Per-sample loss (logistic loss in nats, or half the squared error), shape (n,)."""
    z = predict(params, x)
    t = y.astype(np.float64)
    if _check_kind(kind) == "logistic":
        out: NDArray[np.float64] = np.logaddexp(0.0, z) - t * z
        return out
    return 0.5 * (z - t) ** 2


def gradient(
    params: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[Any],
    kind: ModelKind,
    *,
    l2: float = 0.0,
) -> NDArray[np.float64]:
    """Gradient of the mean loss plus ``(l2/2)||w||^2`` (the intercept is not penalized)."""
    z = predict(params, x)
    t = y.astype(np.float64)
    residual = (sigmoid(z) if _check_kind(kind) == "logistic" else z) - t
    n = max(x.shape[0], 1)
    g = np.empty_like(params)
    g[:-1] = x.T @ residual / n + l2 * params[:-1]
    g[-1] = residual.sum() / n
    return g


def local_train(
    start: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[Any],
    spec: LocalTraining,
    *,
    anchor: NDArray[np.float64] | None = None,
    mu: float = 0.0,
) -> NDArray[np.float64]:
    """``spec.epochs`` full-batch gradient steps on ``F_k`` from ``start`` (a new array).

    Parameters
    ----------
    start : the initial model (not modified).
    x, y : the client's samples.
    spec : model kind, steps, step size and ridge penalty.
    anchor, mu : proximal term ``(mu/2)||v - anchor||^2`` (Ditto's personal objective).

    Raises
    ------
    ParameterError
        The iterates left the finite numbers (step size too large): nothing non-finite is
        returned.
    """
    mu = _nonneg_float("mu", mu)
    if mu > 0.0 and anchor is None:
        raise ParameterError("a proximal term (mu > 0) needs the anchor model")
    v = np.array(start, dtype=np.float64, copy=True)
    _check(v, x)
    if x.shape[0] == 0:
        return v  # no data: nothing to learn from, the model stays where it is
    finite = True
    # A too-large step overflows; that is detected below and refused, so the floating-point
    # warnings on the way there carry no extra information.
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(spec.epochs):
            g = gradient(v, x, y, spec.kind, l2=spec.l2)
            if mu > 0.0 and anchor is not None:
                g += mu * (v - anchor)
            v -= spec.learning_rate * g
            finite = bool(np.all(np.isfinite(v)))
            if not finite:
                break
    if not finite:
        raise ParameterError(
            f"local training diverged with learning_rate={spec.learning_rate:g}: lower it "
            "(for standardized features, 1 / (1 + max squared feature norm) is safe)"
        )
    return v


def accuracy(
    params: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[Any]
) -> float:
    """Fraction of samples whose predicted class ``1[x . w + b > 0]`` equals the label."""
    if y.shape[0] == 0:
        return math.nan
    return float(np.mean((predict(params, x) > 0.0) == (y == 1)))


def score(
    params: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[Any], kind: ModelKind
) -> float:
    """Accuracy for logistic models, the coefficient of determination R^2 for linear ones.

    NaN when there are no samples (callers skip it), and R^2 of a constant target is 0.
    """
    if _check_kind(kind) == "logistic":
        return accuracy(params, x, y)
    if y.shape[0] == 0:
        return math.nan
    t = y.astype(np.float64)
    ss_res = float(np.sum((predict(params, x) - t) ** 2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return 0.0 if ss_tot == 0.0 else 1.0 - ss_res / ss_tot
