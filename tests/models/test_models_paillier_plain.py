"""Paillier training follows the plain backend: same schedule, weights within quantization.

The oracle is `PlainProtocol` (float64, its own loop and its own Nesterov λ recursion),
not the Paillier code. With full batches, the only difference between the two is the
quantization of the holders' gradients: each of the H holders sends its gradient sum
divided by n, stochastically rounded at ``2^-s`` (``s = scale_bits``), so every step's
mean gradient is off by ``|ε_t| < δ = H · 2^-s`` per coordinate (no clipping happens at
these sizes; the run reports zero clipped values). The bounds on the weights:

* least squares (any optimizer): the error dynamics are linear,
  ``dw⁺ = (I - αA) dv - α ε``, ``dv⁺ = (1 - η) dw⁺ + η dw`` with ``A = ZᵀZ/n + diag(l2)``,
  so ``|dw_T|_i <= δ · Σ_t Σ_j |Φ_t|_ij`` with ``Φ_t`` the exact propagation matrices;
* logistic regression, gradient descent: a gradient step of a convex L-smooth loss with
  ``α <= 2/L`` is non-expansive, so ``|dw_T|_∞ <= ||dw_T||_2 <= α T √p δ``;
* logistic regression, Nesterov: with G non-expansive, ``||dw⁺|| <= ||dv|| + α √p δ`` and
  ``||dv⁺|| <= |1 - η| ||dw⁺|| + |η| ||dw||`` (loose, so only a few steps).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from securecomp.models import FitResult, TrainingSpec
from securecomp.models.gd import nesterov_etas
from securecomp.models.paillier import PaillierOptions, PaillierProtocol
from securecomp.models.plain import PlainProtocol
from securecomp.params import (
    SMALL_TEST_PAILLIER_BITS,
    InsecureParametersWarning,
    insecure_test_parameters,
)

N_HOLDERS = 4
SCALE_BITS = PaillierOptions().scale_bits
DELTA = N_HOLDERS * 2.0**-SCALE_BITS  # bound on each step's mean-gradient error
FLOAT_SLACK = 1e-10  # the two backends round their float64 sums differently


@pytest.fixture(autouse=True)
def _small_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            yield


def _data(task: str, n: int = 60, d: int = 3, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    z = X @ np.linspace(1.0, -1.0, d) + 0.4
    if task == "logistic":
        return X, (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.float64)
    return X, z + 0.1 * rng.normal(size=n)


def _spec(task: str, **kw: Any) -> TrainingSpec:
    return TrainingSpec(task=task, random_state=3, **kw)  # type: ignore[arg-type]


def _theta(fit: FitResult) -> np.ndarray:
    return np.concatenate(([fit.intercept], fit.coef))


def _fits(
    spec: TrainingSpec, X: np.ndarray, y: np.ndarray, *, simulate: bool = True
) -> tuple[np.ndarray, np.ndarray, FitResult]:
    plain = PlainProtocol(dataclasses.replace(spec, options={})).fit(X, y)
    options = {"n_holders": N_HOLDERS, "key_bits": SMALL_TEST_PAILLIER_BITS}
    ours = PaillierProtocol(dataclasses.replace(spec, options=options), simulate=simulate)
    fit = ours.fit(X, y)
    assert fit.report.metrics["clipped_values"] == 0
    assert fit.report.metrics["steps"] == plain.report.metrics["steps"]
    return _theta(fit), _theta(plain), fit


def _gram(X: np.ndarray, spec: TrainingSpec) -> tuple[np.ndarray, np.ndarray]:
    Z = np.c_[np.ones(len(X)), X]
    pen = np.full(Z.shape[1], spec.l2)
    pen[0] = 0.0
    return Z.T @ Z / len(X) + np.diag(pen), pen


def _etas(spec: TrainingSpec, steps: int) -> list[float]:
    return nesterov_etas(steps) if spec.optimizer == "nesterov" else [0.0] * steps


def linear_bound(X: np.ndarray, spec: TrainingSpec, steps: int) -> float:
    """``δ · max_i Σ_t Σ_j |Φ_t|_ij``: the exact worst case of linear error propagation."""
    A, _ = _gram(X, spec)
    p = A.shape[0]
    M = np.eye(p) - spec.learning_rate * A
    # dw, dv as linear maps of the injected errors (ε_0 .. ε_{T-1}), one p×p block each.
    dw = np.zeros((steps, p, p))
    dv = np.zeros((steps, p, p))
    for t, eta in enumerate(_etas(spec, steps)):
        w_next = np.einsum("ij,sjk->sik", M, dv)
        w_next[t] -= spec.learning_rate * np.eye(p)
        dv = (1.0 - eta) * w_next + eta * dw
        dw = w_next
    return float(DELTA * np.abs(dw).sum(axis=(0, 2)).max())


def logistic_bound(X: np.ndarray, spec: TrainingSpec, steps: int) -> float:
    """Non-expansive gradient steps (needs ``α <= 2/L``), errors added in the 2-norm."""
    A, pen = _gram(X, spec)
    L = float(np.linalg.eigvalsh(A - np.diag(pen))[-1]) / 4.0 + spec.l2
    assert spec.learning_rate <= 2.0 / L  # the premise of non-expansiveness
    e = spec.learning_rate * math.sqrt(A.shape[0]) * DELTA
    dw = dv = 0.0
    for eta in _etas(spec, steps):
        w_next = dv + e
        dv, dw = abs(1.0 - eta) * w_next + abs(eta) * dw, w_next
    return dw


@pytest.mark.parametrize(
    "optimizer, l2, max_iter",
    [("nesterov", 0.0, 25), ("nesterov", 0.05, 12), ("gd", 0.0, 25)],
)
def test_linear_simulation_follows_plain(optimizer: str, l2: float, max_iter: int) -> None:
    X, y = _data("linear")
    spec = _spec("linear", optimizer=optimizer, l2=l2, learning_rate=0.4, max_iter=max_iter)
    ours, plain, _ = _fits(spec, X, y)
    bound = linear_bound(X, spec, max_iter)
    assert bound < 1e-3  # the bound says something
    assert np.abs(ours - plain).max() <= bound + FLOAT_SLACK
    assert np.abs(plain).max() > 0.1  # and the models moved far from zero


@pytest.mark.parametrize("optimizer, max_iter", [("gd", 20), ("nesterov", 6)])
def test_logistic_simulation_follows_plain(optimizer: str, max_iter: int) -> None:
    X, y = _data("logistic")
    spec = _spec("logistic", optimizer=optimizer, learning_rate=1.0, max_iter=max_iter)
    ours, plain, _ = _fits(spec, X, y)
    bound = logistic_bound(X, spec, max_iter)
    assert bound < 1e-3
    assert np.abs(ours - plain).max() <= bound + FLOAT_SLACK
    assert np.abs(plain).max() > 0.1


def test_encrypted_run_follows_plain() -> None:
    X, y = _data("linear", n=24, d=2)
    spec = _spec("linear", learning_rate=0.5, max_iter=5)
    ours, plain, fit = _fits(spec, X, y, simulate=False)
    assert "simulation of roles" in fit.report.protocol  # the encrypted roles ran
    assert np.abs(ours - plain).max() <= linear_bound(X, spec, 5) + FLOAT_SLACK


def test_first_nesterov_step_is_a_gradient_step() -> None:
    # λ_1 = 1, so η_1 = 0: after one step Nesterov is gradient descent, and the second
    # step is taken at w_1, not again at the starting point (which would repeat w_1).
    X, y = _data("linear")
    one = {o: _fits(_spec("linear", optimizer=o, max_iter=1), X, y)[0] for o in ("gd", "nesterov")}
    assert np.abs(one["gd"] - one["nesterov"]).max() <= linear_bound(
        X, _spec("linear", max_iter=1), 1
    )
    two, plain_two, _ = _fits(_spec("linear", max_iter=2), X, y)
    assert np.abs(two - one["nesterov"]).max() > 0.05
    assert np.abs(two - plain_two).max() <= linear_bound(X, _spec("linear", max_iter=2), 2) + (
        FLOAT_SLACK
    )


def test_minibatches_follow_the_same_schedule() -> None:
    # Batches hold other rows than the plain backend's (each holder cuts its own rows),
    # but the number of steps and the momentum schedule are the same.
    X, y = _data("linear", n=90)
    spec = _spec("linear", batch_size=32, max_iter=3, learning_rate=0.2)
    ours, plain, fit = _fits(spec, X, y)
    assert fit.report.metrics["steps"] == 3 * math.ceil(90 / 32)
    assert np.abs(ours - plain).max() < 0.2
