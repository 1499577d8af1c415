"""The float64 reference protocol: gradient descent and Nesterov's method in plaintext.

This is ``backend="plain"``: the algorithm the encrypted backends implement, computed
exactly, with the exact sigmoid. Nesterov's accelerated gradient follows Kim et al. 2018,
"Logistic regression model training based on the approximate homomorphic encryption",
BMC Med. Genomics 11(Suppl 4):83, §Methods (the "Nesterov's accelerated gradient" update,
which is the schedule of Bubeck 2015, §3.7.1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ParameterError, ShapeMismatchError
from securecomp.models.protocol import (
    FitResult,
    ModelProtocol,
    ScoreResult,
    TrainingSpec,
    register_protocol,
)
from securecomp.models.validation import check_plan_shape, check_spec
from securecomp.net.report import CostReport

__all__ = ["PlainProtocol", "batch_slices", "sigmoid"]

_OWNER = "data owner"


def sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """The logistic function σ(z) = 1 / (1 + e^{−z}) to full relative precision, no overflow."""
    # e^{−|z|} ≤ 1 never overflows; for z < 0 use σ(z) = e^{z} / (1 + e^{z}) so that tiny
    # probabilities keep their relative precision (1 − tanh-style forms cancel).
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def batch_slices(n: int, batch_size: int | None) -> list[slice]:
    """Consecutive mini-batches of ``batch_size`` rows covering ``range(n)`` (last may be short).

    ``None`` (or a size of at least ``n``) gives one full batch.
    """
    if batch_size is None or batch_size >= n:
        return [slice(0, n)]
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


class PlainProtocol(ModelProtocol):
    """Plaintext training and inference in float64: no protection at all.

    Threat model: none. The data owner runs everything locally on its own data; whoever
    runs it learns the features, the labels, every gradient and iterate, the model and the
    scores. Nothing is encrypted, nothing is sent. This is the reference the encrypted
    protocols are checked against, and every run says so in its leakage ledger.

    Training (``spec.task`` picks the loss; Z = [1 | X] when ``fit_intercept``):

    1. If ``batch_size`` is set, rows are permuted once with ``random_state`` and cut into
       fixed consecutive mini-batches, visited in the same order every epoch (as encrypted
       training does, where the batches are packed into ciphertexts once; Han et al. 2019).
    2. Each step takes the gradient at the look-ahead point v on one batch B:
       ``g = Z_Bᵀ(f(Z_B v) − y_B) / |B| + l2·v`` (intercept not penalized), with f the
       identity (least squares) or the exact sigmoid (logistic loss, labels in {0, 1}).
    3. ``w⁺ = v − α g``; with ``optimizer="gd"``, ``v⁺ = w⁺``; with ``"nesterov"``,
       ``v⁺ = (1 − η_t) w⁺ + η_t w`` where ``λ_0 = 0``, ``λ_{t+1} = (1 + √(1 + 4λ_t²)) / 2``
       and ``η_t = (1 − λ_t) / λ_{t+1}`` for steps t = 1, 2, … (so the first step is a
       plain gradient step, and η_t ≤ 0 pushes past w⁺ along w⁺ − w).
    4. ``max_iter`` epochs of steps; the weights start at zero.

    The report's metrics hold the step size, the number of steps, the final training
    loss and, for logistic regression, the largest |logit| met at any look-ahead point
    (the range a polynomial sigmoid would have to cover). Protocol options: none.
    """

    name: ClassVar[str] = "plain"
    supports_simulate: ClassVar[bool] = False

    def __init__(self, spec: TrainingSpec, *, simulate: bool = False) -> None:
        super().__init__(check_spec(spec), simulate=simulate)
        if spec.options:
            raise ParameterError(
                f"backend 'plain' takes no options, got {sorted(spec.options)}; "
                "pass backend_options=None"
            )

    def fit(self, X: NDArray[np.float64], y: NDArray[np.float64]) -> FitResult:
        """Train on ``X`` (n, d) and ``y`` (n,); see the class docstring for the steps."""
        X, y = _check_xy(X, y, self.spec.task)
        spec = self.spec
        report = CostReport(protocol="plain")
        with report.timer("fit"):
            n = X.shape[0]
            Z = np.hstack([np.ones((n, 1)), X]) if spec.fit_intercept else X
            target = y
            if spec.batch_size is not None and spec.batch_size < n:
                # Shuffling is not secret: the seed only makes batches reproducible.
                perm = np.random.default_rng(spec.random_state).permutation(n)
                Z, target = Z[perm], y[perm]
            batches = [(Z[s], target[s]) for s in batch_slices(n, spec.batch_size)]
            # The intercept (column 0 of Z) is not penalized.
            penalty = np.full(Z.shape[1], spec.l2)
            if spec.fit_intercept:
                penalty[0] = 0.0
            w, max_logit, steps = self._descend(batches, penalty, Z.shape[1])
            loss = _loss(Z, target, w, penalty, spec.task)
        coef = w[1:] if spec.fit_intercept else w
        intercept = float(w[0]) if spec.fit_intercept else 0.0
        report.leakage.record(
            _OWNER,
            "features, labels, every gradient and iterate, and the model, in plaintext "
            "(no protection: local float64 computation)",
            "fit",
        )
        report.metrics.update(
            learning_rate=spec.learning_rate,
            optimizer=spec.optimizer,
            epochs=spec.max_iter,
            steps=steps,
            batches_per_epoch=len(batches),
            final_loss=loss,
        )
        # The range a polynomial sigmoid would have to cover (logistic only).
        if spec.task == "logistic":
            report.metrics["max_abs_logit"] = max_logit
        return FitResult(coef=coef.copy(), intercept=intercept, n_iter=spec.max_iter, report=report)

    def _descend(
        self,
        batches: list[tuple[NDArray[np.float64], NDArray[np.float64]]],
        penalty: NDArray[np.float64],
        width: int,
    ) -> tuple[NDArray[np.float64], float, int]:
        spec = self.spec
        alpha = spec.learning_rate
        logistic = spec.task == "logistic"
        w = np.zeros(width)
        v = w.copy()
        lam = 1.0  # λ_1: λ_0 = 0 gives λ_1 = 1, hence η_1 = 0 (the first step is plain GD).
        max_logit = 0.0
        steps = 0
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(spec.max_iter):
                for Zb, yb in batches:
                    logits = Zb @ v
                    max_logit = max(max_logit, float(np.max(np.abs(logits))))
                    resid = (sigmoid(logits) if logistic else logits) - yb
                    grad = Zb.T @ resid / Zb.shape[0] + penalty * v
                    w_next = v - alpha * grad
                    if spec.optimizer == "nesterov":
                        lam_next = (1.0 + math.sqrt(1.0 + 4.0 * lam * lam)) / 2.0
                        eta = (1.0 - lam) / lam_next
                        v = (1.0 - eta) * w_next + eta * w
                        lam = lam_next
                    else:
                        v = w_next
                    w = w_next
                    steps += 1
                    # Refuse to return (or keep iterating on) inf/NaN: say what to change.
                    if not (np.all(np.isfinite(v)) and math.isfinite(max_logit)):
                        raise ParameterError(
                            f"gradient descent diverged at step {steps} with learning_rate="
                            f"{alpha:g}; use learning_rate='auto' (step 1/L) or a smaller "
                            "step, and standardize X"
                        )
        return w, max_logit, steps

    def decision_function(self, fitted: FitResult, X: NDArray[np.float64]) -> ScoreResult:
        """``X @ coef + intercept`` in float64 (logits for logistic regression)."""
        X = _check_matrix(X)
        coef = np.asarray(fitted.coef, dtype=np.float64)
        if X.shape[1] != coef.shape[0]:
            raise ShapeMismatchError(
                f"X has {X.shape[1]} features but the model has {coef.shape[0]}; "
                "pass the same columns as in fit"
            )
        report = CostReport(protocol="plain")
        with report.timer("predict"), np.errstate(over="ignore", invalid="ignore"):
            scores = X @ coef + fitted.intercept
        report.leakage.record(_OWNER, "features and scores in plaintext (no protection)", "predict")
        return ScoreResult(scores=scores, report=report)

    def plan(self, X_shape: tuple[int, int]) -> Mapping[str, Any]:
        """Work of a plaintext fit on data of ``X_shape``: steps and float64 operations.

        Nothing is encrypted, so depth, keys and ciphertexts are all zero; the count of
        multiply-adds (about ``2·n·(d+1)`` per epoch for the two products) is the only cost.
        """
        n, d = check_plan_shape(X_shape)
        width = d + int(self.spec.fit_intercept)
        n_batches = len(batch_slices(n, self.spec.batch_size))
        return {
            "protocol": "plain",
            "n_samples": n,
            "n_features": d,
            "batches_per_epoch": n_batches,
            "steps": n_batches * self.spec.max_iter,
            "multiply_adds": 2 * n * width * self.spec.max_iter,
            "multiplicative_depth": 0,
            "ciphertexts": 0,
            "key_bytes": 0,
        }


def _check_matrix(X: object) -> NDArray[np.float64]:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeMismatchError(f"X must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError("X contains NaN or inf; impute or drop those rows first")
    return arr


def _check_xy(X: object, y: object, task: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    Xa = _check_matrix(X)
    ya = np.asarray(y, dtype=np.float64)
    if ya.shape != (Xa.shape[0],):
        raise ShapeMismatchError(f"y must have shape ({Xa.shape[0]},) to match X, got {ya.shape}")
    if not np.all(np.isfinite(ya)):
        raise ParameterError("y contains NaN or inf; drop those rows first")
    if task == "logistic" and not np.all((ya == 0.0) | (ya == 1.0)):
        raise ParameterError("logistic labels must be 0 or 1; map the two classes first")
    return Xa, ya


def _loss(
    Z: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    penalty: NDArray[np.float64],
    task: str,
) -> float:
    s = Z @ w
    if task == "logistic":
        # log(1 + e^s) − y·s, computed without overflow.
        data = float(np.mean(np.logaddexp(0.0, s) - y * s))
    else:
        data = 0.5 * float(np.mean((s - y) ** 2))
    return data + 0.5 * float(np.sum(penalty * w * w))


register_protocol(PlainProtocol)
