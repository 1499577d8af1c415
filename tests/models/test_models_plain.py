"""The float64 reference protocol: known answers, convergence, accuracy against scikit-learn."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from securecomp.errors import ParameterError, ShapeMismatchError
from securecomp.models import LinearRegression, LogisticRegression, TrainingSpec, get_protocol
from securecomp.models.plain import PlainProtocol, batch_slices, sigmoid
from securecomp.models.validation import step_size


def _with_ones(X: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((X.shape[0], 1)), X])


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 4))
    w = np.array([1.5, -2.0, 0.5, 0.0])
    y_lin = X @ w + 0.3 + 0.1 * rng.normal(size=120)
    y_bin = (X @ w + 0.5 * rng.normal(size=120) > 0).astype(float)
    return X, y_lin, y_bin


# --- accuracy bars ------------------------------------------------------------------------


def test_breast_cancer_accuracy_matches_sklearn() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    ours, theirs = [], []
    for seed in range(5):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
        ours.append(LogisticRegression().fit(Xtr, ytr).score(Xte, yte))
        theirs.append(SklearnLogisticRegression().fit(Xtr, ytr).score(Xte, yte))
    diffs = np.array(ours) - np.array(theirs)
    assert abs(diffs.mean()) <= 0.02, (ours, theirs)
    assert diffs.min() >= -0.03, (ours, theirs)
    assert np.mean(ours) >= 0.95


def test_diabetes_training_mse_within_one_percent_of_ols(diabetes) -> None:
    X, y = diabetes
    Z = _with_ones(X)
    w_ols = np.linalg.lstsq(Z, y, rcond=None)[0]
    mse_ols = np.mean((Z @ w_ols - y) ** 2)
    model = LinearRegression().fit(X, y)
    mse = np.mean((model.predict(X) - y) ** 2)
    assert mse <= 1.01 * mse_ols


# --- known answers -------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["linear", "logistic"])
def test_one_gradient_step_from_zero(blobs, task: str) -> None:
    X, y_lin, y_bin = blobs
    y = y_lin if task == "linear" else y_bin
    lr = 0.3
    proto = PlainProtocol(TrainingSpec(task=task, optimizer="gd", learning_rate=lr, max_iter=1))
    fitted = proto.fit(X, y)
    Z = _with_ones(X)
    # At w = 0 the prediction is 0 (linear) or σ(0) = 1/2 (logistic).
    pred0 = np.zeros(len(y)) if task == "linear" else np.full(len(y), 0.5)
    want = -lr * Z.T @ (pred0 - y) / len(y)
    np.testing.assert_allclose(fitted.intercept, want[0], rtol=1e-13)
    np.testing.assert_allclose(fitted.coef, want[1:], rtol=1e-13)


def test_nesterov_three_steps_follow_the_schedule(blobs) -> None:
    X, y, _ = blobs
    Z, n, lr = _with_ones(X), len(y), 0.2

    def grad(v: np.ndarray) -> np.ndarray:
        return Z.T @ (Z @ v - y) / n

    # λ_0 = 0, λ_1 = 1, λ_2 = (1 + √5)/2, λ_3 = (1 + √(1 + 4λ_2²))/2; η_t = (1 − λ_t)/λ_{t+1}.
    lam = [0.0, 1.0]
    for _ in range(3):
        lam.append((1 + math.sqrt(1 + 4 * lam[-1] ** 2)) / 2)
    w = v = np.zeros(Z.shape[1])
    for t in (1, 2, 3):
        w_next = v - lr * grad(v)
        eta = (1 - lam[t]) / lam[t + 1]
        v = (1 - eta) * w_next + eta * w
        w = w_next
    fitted = PlainProtocol(TrainingSpec(task="linear", learning_rate=lr, max_iter=3)).fit(X, y)
    np.testing.assert_allclose(np.r_[fitted.intercept, fitted.coef], w, rtol=1e-12)
    assert fitted.report.metrics["steps"] == 3


def test_linear_converges_to_ridge_closed_form(blobs) -> None:
    X, y, _ = blobs
    l2 = 0.1
    model = LinearRegression(l2=l2, max_iter=400).fit(X, y)
    Z, n = _with_ones(X), len(y)
    penalty = np.diag([0.0] + [l2] * X.shape[1])  # the intercept is not penalized
    want = np.linalg.solve(Z.T @ Z / n + penalty, Z.T @ y / n)
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], want, atol=1e-9)


def test_logistic_with_l2_matches_sklearn_optimum(blobs) -> None:
    X, _, y = blobs
    l2 = 0.05
    ours = LogisticRegression(l2=l2, max_iter=400).fit(X, y)
    # scikit-learn minimizes ½||w||² + C·Σ loss = C·n·(mean loss + ||w||²/(2Cn)).
    ref = SklearnLogisticRegression(C=1.0 / (l2 * len(y)), tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6)


def test_nesterov_reaches_lower_loss_than_gd(diabetes) -> None:
    X, y = diabetes
    losses = {
        opt: LinearRegression(optimizer=opt, max_iter=30).fit(X, y).report_.metrics["final_loss"]
        for opt in ("gd", "nesterov")
    }
    assert losses["nesterov"] < losses["gd"]


def test_no_intercept_fits_through_the_origin(blobs) -> None:
    X, y, _ = blobs
    model = LinearRegression(fit_intercept=False, max_iter=300).fit(X, y)
    assert model.intercept_ == 0.0
    np.testing.assert_allclose(model.coef_, np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-9)


# --- mini-batches ---------------------------------------------------------------------------


def test_batch_of_all_rows_is_full_batch(blobs) -> None:
    X, y, _ = blobs
    full = LinearRegression(max_iter=20).fit(X, y)
    big = LinearRegression(max_iter=20, batch_size=len(y) + 5, random_state=3).fit(X, y)
    np.testing.assert_array_equal(full.coef_, big.coef_)


def test_minibatches_are_seeded_and_counted(blobs) -> None:
    X, _, y = blobs
    a = LogisticRegression(batch_size=50, max_iter=7, random_state=1).fit(X, y)
    b = LogisticRegression(batch_size=50, max_iter=7, random_state=1).fit(X, y)
    c = LogisticRegression(batch_size=50, max_iter=7, random_state=2).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)
    assert a.report_.metrics["batches_per_epoch"] == 3  # 50 + 50 + 20 rows
    assert a.report_.metrics["steps"] == 21
    assert a.n_iter_ == 7
    assert a.score(X, y) >= 0.85


@given(st.integers(1, 500), st.one_of(st.none(), st.integers(1, 600)))
def test_batch_slices_partition_the_rows(n: int, batch_size: int | None) -> None:
    slices = batch_slices(n, batch_size)
    covered = np.concatenate([np.arange(n)[s] for s in slices])
    np.testing.assert_array_equal(covered, np.arange(n))
    size = n if batch_size is None else min(batch_size, n)
    assert all(s.stop - s.start == size for s in slices[:-1])
    assert len(slices) == -(-n // size)


# --- the step-size rule and numerical safety ------------------------------------------------


@pytest.mark.parametrize(("task", "curv"), [("linear", 1.0), ("logistic", 0.25)])
def test_auto_step_is_inverse_smoothness(blobs, task: str, curv: float) -> None:
    X = blobs[0]
    Z = _with_ones(X)
    lam = np.linalg.eigvalsh(Z.T @ Z / len(X))[-1]
    assert step_size(X, task=task, fit_intercept=True, l2=0.2) == pytest.approx(
        1 / (curv * lam + 0.2), rel=1e-12
    )
    # Wide data takes the n×n Gram: same non-zero spectrum.
    wide = np.random.default_rng(0).normal(size=(5, 40))
    Zw = _with_ones(wide)
    lam_w = np.linalg.svd(Zw, compute_uv=False)[0] ** 2 / 5
    assert step_size(wide, task=task, fit_intercept=True, l2=0.0) == pytest.approx(
        1 / (curv * lam_w), rel=1e-10
    )


def test_auto_step_is_stable_on_unscaled_features(blobs) -> None:
    X, y, _ = blobs
    scaled = X * np.array([1e3, 1e-2, 50.0, 1.0])
    model = LinearRegression(max_iter=50).fit(scaled, y)
    # Badly conditioned, so slow, but a step of 1/L never diverges: it only improves.
    assert np.all(np.isfinite(model.coef_))
    assert model.score(scaled, y) > 0.0


def test_divergence_raises_instead_of_returning_nan(blobs) -> None:
    X, y, _ = blobs
    with pytest.raises(ParameterError, match=r"diverged.*learning_rate='auto'"):
        LinearRegression(learning_rate=1e3, max_iter=500).fit(X * 100, y)


def test_sigmoid_is_exact_and_saturates_without_warnings() -> None:
    z = np.linspace(-30, 30, 121)
    np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-13, atol=1e-300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sigmoid(np.array([-1e308, -800.0, 800.0, 1e308]))
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0, 1.0])


@given(st.floats(-50, 50))
def test_sigmoid_symmetry(z: float) -> None:
    a, b = sigmoid(np.array([z])), sigmoid(np.array([-z]))
    assert abs(a[0] + b[0] - 1.0) <= 1e-15


# --- protocol contract ---------------------------------------------------------------------


def test_plain_is_the_registered_reference() -> None:
    assert get_protocol("plain") is PlainProtocol
    doc = PlainProtocol.threat_model()
    assert "Threat model: none" in doc and "learns" in doc


def test_leakage_ledger_records_everything_learned(blobs) -> None:
    X, _, y = blobs
    model = LogisticRegression(max_iter=5).fit(X, y)
    (entry,) = model.report_.leakage.entries
    assert entry.party == "data owner" and entry.stage == "fit"
    assert "plaintext" in entry.what and "labels" in entry.what
    assert model.report_.protocol == "plain" and model.report_.phases["fit"] >= 0.0
    model.predict(X[:3])
    (pred_entry,) = model.last_report_.leakage.entries
    assert pred_entry.stage == "predict" and "scores" in pred_entry.what


def test_max_abs_logit_is_measured(blobs) -> None:
    X, _, y = blobs
    fitted = PlainProtocol(TrainingSpec(task="logistic", max_iter=4, learning_rate=0.5)).fit(X, y)
    # The last look-ahead point is at most as far out as the largest logit recorded.
    assert fitted.report.metrics["max_abs_logit"] > 0.0
    assert (
        "max_abs_logit" not in PlainProtocol(TrainingSpec(task="linear")).fit(X, y).report.metrics
    )


def test_plain_refuses_options_and_simulation() -> None:
    with pytest.raises(ParameterError, match="takes no options"):
        PlainProtocol(TrainingSpec(task="linear", options={"poly_modulus_degree": 8192}))
    with pytest.raises(ParameterError, match="no plaintext simulation"):
        PlainProtocol(TrainingSpec(task="linear"), simulate=True)
    with pytest.raises(ParameterError, match="max_iter"):
        PlainProtocol(TrainingSpec(task="linear", max_iter=0))


def test_plain_checks_its_inputs(blobs) -> None:
    X, y_lin, y_bin = blobs
    proto = PlainProtocol(TrainingSpec(task="logistic", max_iter=2))
    with pytest.raises(ParameterError, match="0 or 1"):
        proto.fit(X, y_lin)
    with pytest.raises(ShapeMismatchError):
        proto.fit(X, y_bin[:-1])
    fitted = proto.fit(X, y_bin)
    with pytest.raises(ShapeMismatchError, match="3 features but the model has 4"):
        proto.decision_function(fitted, X[:, :3])
    with pytest.raises(ParameterError, match="NaN"):
        proto.decision_function(fitted, np.full((2, 4), np.nan))


def test_plain_plan_counts_steps() -> None:
    proto = PlainProtocol(TrainingSpec(task="linear", max_iter=3, batch_size=40))
    plan = proto.plan((100, 9))
    assert plan["steps"] == 9 and plan["batches_per_epoch"] == 3
    assert plan["multiplicative_depth"] == 0 and plan["multiply_adds"] == 2 * 100 * 10 * 3
    with pytest.raises(ParameterError, match="X_shape"):
        proto.plan((100,))  # type: ignore[arg-type]
