"""The generic training algorithm (`securecomp.models.gd`) on the plain backend.

Checked against an independent float64 implementation (`securecomp.models.plain`) for
least squares, and against a direct numpy transcription for the polynomial sigmoid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from securecomp.errors import DepthExhaustedError, ParameterError, ShapeMismatchError
from securecomp.models.approx import fit_sigmoid
from securecomp.models.ckks.simulate import SimulatedCKKSBackend
from securecomp.models.gd import (
    Batch,
    DepthBudget,
    GDConfig,
    RefreshingOptimizer,
    TensorOptimizer,
    make_batches,
    nesterov_etas,
    schedule,
    train,
)
from securecomp.models.plain import PlainProtocol
from securecomp.models.protocol import TrainingSpec
from securecomp.params import CKKSParameters
from securecomp.tensor import PlainBackend, PlainKey, SecureTensor, plain_keygen


def _data(n: int = 60, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    y_lin = X @ w + 0.3 + 0.1 * rng.normal(size=n)
    y_log = (X @ w + 0.2 * rng.normal(size=n) > 0).astype(float)
    return X, y_lin, y_log


def _tensors(
    backend: PlainBackend, batches: list[tuple[np.ndarray, np.ndarray, int]]
) -> list[Batch]:
    return [Batch(backend.encrypt(Z), backend.encrypt(y), r) for Z, y, r in batches]


def _refreshing(
    backend: PlainBackend, key: PlainKey, width: int, cfg: GDConfig
) -> RefreshingOptimizer:
    return RefreshingOptimizer(
        width, cfg, encrypt=backend.encrypt, decrypt=lambda t: t.decrypt(key)
    )


def test_nesterov_coefficients() -> None:
    etas = nesterov_etas(4)
    lam = [1.0]
    for _ in range(4):
        lam.append((1 + math.sqrt(1 + 4 * lam[-1] ** 2)) / 2)
    assert etas[0] == 0.0  # the first step is a plain gradient step
    assert etas == pytest.approx([(1 - lam[i]) / lam[i + 1] for i in range(4)])
    assert etas[1] == pytest.approx(-0.281754, abs=1e-6)  # (1 - φ) / 2.193527


@pytest.mark.parametrize("optimizer", ["gd", "nesterov"])
@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_least_squares_matches_the_plain_protocol(
    optimizer: str, batch_size: int | None, l2: float
) -> None:
    X, y, _ = _data()
    spec = TrainingSpec(
        "linear",
        optimizer=optimizer,
        learning_rate=0.1,
        max_iter=4,  # type: ignore[arg-type]
        batch_size=batch_size,
        l2=l2,
        random_state=3,
    )
    expected = PlainProtocol(spec).fit(X, y)
    cfg = GDConfig("linear", optimizer, 0.1, 4, l2)  # type: ignore[arg-type]
    batches = make_batches(X, y, batch_size=batch_size, intercept=True, random_state=3)
    backend, key = plain_keygen()
    for opt in (
        _refreshing(backend, key, X.shape[1] + 1, cfg),
        TensorOptimizer(backend.encrypt(np.zeros(5)), backend.encrypt(np.zeros(5)), cfg),
    ):
        steps = train(_tensors(backend, batches), cfg, opt)
        assert len(steps) == 4 * len(batches)
        w = opt.w if isinstance(opt, RefreshingOptimizer) else opt.w.decrypt(key)
        np.testing.assert_allclose(w[1:], expected.coef, rtol=1e-10, atol=1e-12)
        assert w[0] == pytest.approx(expected.intercept, abs=1e-12)


def _numpy_logistic(
    X: np.ndarray, y: np.ndarray, coeffs: tuple[float, ...], lr: float, epochs: int
) -> np.ndarray:
    Z = np.hstack([np.ones((X.shape[0], 1)), X])
    w = np.zeros(Z.shape[1])
    v = w.copy()
    for eta in nesterov_etas(epochs):
        r = np.polynomial.polynomial.polyval(Z @ v, coeffs) - y
        w_next = v - lr * Z.T @ r / Z.shape[0]
        v = (1 - eta) * w_next + eta * w
        w = w_next
    return w


def test_polynomial_logistic_matches_numpy_and_both_optimizers_agree() -> None:
    X, _, y = _data(n=80)
    sig = fit_sigmoid(5, 8.0)
    cfg = GDConfig("logistic", "nesterov", 0.5, 6, sigmoid=sig)
    expected = _numpy_logistic(X, y, sig.coefficients, 0.5, 6)
    backend, key = plain_keygen()
    batches = make_batches(
        X, y, batch_size=None, intercept=True, random_state=None, pad_rows=lambda r: 128
    )
    refreshing = _refreshing(backend, key, 5, cfg)
    assert refreshing.forward_scale == pytest.approx(1 / 8)  # it encrypts v / B
    train(_tensors(backend, batches), cfg, refreshing)
    local = TensorOptimizer(backend.encrypt(np.zeros(5)), backend.encrypt(np.zeros(5)), cfg)
    train(_tensors(backend, batches), cfg, local)
    np.testing.assert_allclose(refreshing.w, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(local.w.decrypt(key), expected, rtol=1e-9, atol=1e-12)
    assert refreshing.refreshes == 6 and local.refreshes == 0


def test_depth_budget_refreshes_or_refuses_before_the_step() -> None:
    X, y, _ = _data(n=16, d=2)
    params = CKKSParameters(8192, (60, 40, 40, 40, 40, 60), 40)  # depth 4: one linear step
    sim = SimulatedCKKSBackend(params, rng=np.random.default_rng(0), noise=False)
    cfg = GDConfig("linear", "nesterov", 0.2, 3)
    batches = [
        Batch(sim.encrypt(Z), sim.encrypt(t), r)
        for Z, t, r in make_batches(X, y, batch_size=None, intercept=True, random_state=None)
    ]
    budget = DepthBudget(lambda t: t.meta.get("level"), max_level=4, step_depth=4)
    zero = sim.encrypt(np.zeros(3))
    with pytest.raises(DepthExhaustedError, match="step 2 needs 4 levels"):
        train(batches, cfg, TensorOptimizer(zero, zero, cfg, budget=budget))

    def refresh(w: SecureTensor, v: SecureTensor) -> tuple[SecureTensor, SecureTensor]:
        return sim.encrypt(w.decrypt(sim.key)), sim.encrypt(v.decrypt(sim.key))

    opt = TensorOptimizer(zero, zero, cfg, budget=budget, refresh=refresh)
    train(batches, cfg, opt)
    assert opt.refreshes == 2
    backend, key = plain_keygen()
    plain = TensorOptimizer(backend.encrypt(np.zeros(3)), backend.encrypt(np.zeros(3)), cfg)
    train(
        _tensors(backend, make_batches(X, y, batch_size=None, intercept=True, random_state=None)),
        cfg,
        plain,
    )
    np.testing.assert_allclose(opt.w.decrypt(sim.key), plain.w.decrypt(key), atol=1e-6)


def test_make_batches_pads_with_zero_rows_and_is_reproducible() -> None:
    X, y, _ = _data(n=10, d=2)
    a = make_batches(X, y, batch_size=4, intercept=True, random_state=7, pad_rows=lambda r: 4)
    b = make_batches(X, y, batch_size=4, intercept=True, random_state=7)
    assert [r for _, _, r in a] == [4, 4, 2]
    assert a[2][0].shape == (4, 3) and np.all(a[2][0][2:] == 0) and np.all(a[2][1][2:] == 0)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    perm = np.random.default_rng(7).permutation(10)
    np.testing.assert_array_equal(a[0][0][:, 1:], X[perm[:4]])
    assert np.all(a[0][0][:, 0] == 1.0)
    whole = make_batches(X, y, batch_size=None, intercept=False, random_state=None)
    np.testing.assert_array_equal(whole[0][0], X)


def test_schedule_from_shapes_matches_schedule_from_batches() -> None:
    X, y, _ = _data(n=10, d=2)
    backend, _ = plain_keygen()
    batches = make_batches(X, y, batch_size=4, intercept=True, random_state=1)
    cfg = GDConfig("linear", epochs=2)
    steps = schedule(_tensors(backend, batches), cfg)
    assert steps == schedule([(r, z.shape[0]) for z, _, r in batches], cfg)
    assert [s.batch for s in steps] == [0, 1, 2, 0, 1, 2]
    assert [s.rows for s in steps[:3]] == [4, 4, 2]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task": "poisson"},
        {"task": "linear", "optimizer": "adam"},
        {"task": "linear", "learning_rate": 0.0},
        {"task": "linear", "learning_rate": float("nan")},
        {"task": "linear", "epochs": 0},
        {"task": "linear", "l2": -1.0},
        {"task": "logistic"},  # no polynomial sigmoid
    ],
)
def test_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        GDConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_batches() -> None:
    backend, _ = plain_keygen()
    X = backend.encrypt(np.zeros((4, 2)))
    with pytest.raises(ShapeMismatchError):
        Batch(X, backend.encrypt(np.zeros(3)), 4)
    with pytest.raises(ShapeMismatchError):
        Batch(X, backend.encrypt(np.zeros(4)), 5)
    with pytest.raises(ShapeMismatchError):
        train(
            [],
            GDConfig("linear"),
            TensorOptimizer(
                backend.encrypt(np.zeros(2)), backend.encrypt(np.zeros(2)), GDConfig("linear")
            ),
        )
