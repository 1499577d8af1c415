"""The estimators' plumbing: registry, spec building, labels, validation, reports, passthroughs.

Most tests drive a recording protocol registered here, so they check what the estimator
hands a backend (and does with the answer) independently of any real backend.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, ClassVar

import numpy as np
import pytest
import sklearn.exceptions
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

import securecomp.models as models
from securecomp.errors import (
    EncodingOverflowError,
    NotFittedError,
    ParameterError,
    SecurecompError,
    ShapeMismatchError,
    UnsupportedOperationError,
)
from securecomp.models import (
    FitResult,
    LinearRegression,
    LogisticRegression,
    ModelProtocol,
    ScoreResult,
    TrainingSpec,
    available_protocols,
    get_protocol,
    register_protocol,
)
from securecomp.models.estimator import INFERENCE_REPORTS_KEPT
from securecomp.models.validation import step_size
from securecomp.net.report import CostReport


class RecordingProtocol(ModelProtocol):
    """Test fixture: keeps what it was given; the model is the class means' difference.

    Threat model: none (plaintext test fixture run by the data owner).
    """

    name: ClassVar[str] = "test-recording"
    supports_simulate: ClassVar[bool] = True

    def fit(self, X: np.ndarray, y: np.ndarray) -> FitResult:
        self.seen_X, self.seen_y = X.copy(), y.copy()
        coef = np.arange(1.0, X.shape[1] + 1)
        report = CostReport(protocol=self.name)
        report.leakage.record("server", "nothing (test)", "fit")
        return FitResult(coef=coef, intercept=-0.5, n_iter=3, report=report, state="state")

    def decision_function(self, fitted: FitResult, X: np.ndarray) -> ScoreResult:
        return ScoreResult(X @ fitted.coef + fitted.intercept, CostReport(protocol=self.name))

    def release(self, fitted: FitResult, **kwargs: Any) -> tuple[FitResult, dict[str, Any]]:
        return fitted, kwargs


class BrokenProtocol(ModelProtocol):
    """Test fixture: returns a model or scores of the wrong shape, or NaN scores.

    Threat model: none (plaintext test fixture).
    """

    name: ClassVar[str] = "test-broken"

    def fit(self, X: np.ndarray, y: np.ndarray) -> FitResult:
        width = X.shape[1] + (1 if self.spec.options.get("wide_coef") else 0)
        return FitResult(np.zeros(width), 0.0, 1, CostReport(protocol=self.name))

    def decision_function(self, fitted: FitResult, X: np.ndarray) -> ScoreResult:
        if self.spec.options.get("nan_scores"):
            return ScoreResult(np.full(X.shape[0], np.nan), CostReport(protocol=self.name))
        return ScoreResult(np.zeros(X.shape[0] + 1), CostReport(protocol=self.name))


register_protocol(RecordingProtocol)
register_protocol(BrokenProtocol)

ESTIMATORS = (LinearRegression, LogisticRegression)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    y_bin = (X[:, 0] + 0.3 * rng.normal(size=40) > 0).astype(int)
    return X, X @ np.array([1.0, -1.0, 0.5]), y_bin


def _target(cls: type, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    return data[1] if cls is LinearRegression else data[2]


# --- package and registry -------------------------------------------------------------------


def test_package_import_is_light() -> None:
    code = (
        "import sys, securecomp.models as m; "
        "assert 'sklearn' not in sys.modules and 'tenseal' not in sys.modules; "
        "m.LogisticRegression; assert 'sklearn' in sys.modules and 'tenseal' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_public_api() -> None:
    assert set(models.__all__) == {
        "FitResult",
        "LinearRegression",
        "LogisticRegression",
        "ModelProtocol",
        "ScoreResult",
        "TrainingSpec",
        "available_protocols",
        "get_protocol",
        "register_protocol",
    }
    with pytest.raises(AttributeError):
        _ = models.NoSuchEstimator


def test_registry_lists_installed_and_registered_backends() -> None:
    names = available_protocols()
    assert {"plain", "ckks", "paillier", "test-recording"} <= set(names)
    assert names == sorted(names)
    assert get_protocol("test-recording") is RecordingProtocol


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_unknown_backend_lists_the_choices(cls, data) -> None:
    est = cls(backend="nope")  # accepted at construction, as scikit-learn requires
    with pytest.raises(ParameterError, match=r"unknown model backend 'nope'.*plain"):
        est.fit(data[0], _target(cls, data))
    with pytest.raises(ParameterError, match="backend must be a str"):
        cls(backend=3).fit(data[0], _target(cls, data))


def test_register_refuses_a_second_class_under_a_taken_name() -> None:
    class Impostor(RecordingProtocol):
        """Threat model: none (test)."""

    with pytest.raises(ParameterError, match="already registered"):
        register_protocol(Impostor)
    assert register_protocol(RecordingProtocol) is RecordingProtocol  # idempotent


# --- what the protocol receives ---------------------------------------------------------------


def test_spec_carries_every_hyperparameter(data) -> None:
    X, _, y = data
    options = {"holders": 3}
    est = LogisticRegression(
        backend="test-recording",
        simulate=True,
        optimizer="gd",
        learning_rate=0.25,
        max_iter=7,
        batch_size=16,
        fit_intercept=False,
        l2=0.01,
        sigmoid_degree=7,
        sigmoid_interval=12.0,
        out_of_range="raise",
        random_state=5,
        backend_options=options,
    ).fit(X, y)
    proto = est._protocol
    assert proto.simulate is True
    assert proto.spec == TrainingSpec(
        task="logistic",
        optimizer="gd",
        learning_rate=0.25,
        max_iter=7,
        batch_size=16,
        fit_intercept=False,
        l2=0.01,
        sigmoid_degree=7,
        sigmoid_interval=12.0,
        out_of_range="raise",
        random_state=5,
        options={"holders": 3},
    )
    # The options are copied: the caller's dict is neither shared nor changed.
    assert proto.spec.options is not options and est.backend_options is options
    np.testing.assert_array_equal(proto.seen_X, X)
    assert proto.seen_X.dtype == np.float64


def test_auto_learning_rate_is_resolved_from_X(data) -> None:
    X, y, _ = data
    est = LinearRegression(backend="test-recording", l2=0.1).fit(X, y)
    want = step_size(X, task="linear", fit_intercept=True, l2=0.1)
    assert est._protocol.spec.learning_rate == pytest.approx(want, rel=1e-15)
    assert est.report_.metrics["learning_rate_rule"].startswith("auto")
    assert est.get_params()["learning_rate"] == "auto"  # the parameter itself is unchanged


def test_linear_spec_uses_default_sigmoid_fields(data) -> None:
    X, y, _ = data
    spec = LinearRegression(backend="test-recording").fit(X, y)._protocol.spec
    assert spec.task == "linear"
    assert (spec.sigmoid_degree, spec.sigmoid_interval, spec.out_of_range) == (5, 8.0, "warn")


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        (np.array([0, 1]), [0, 1]),
        (np.array([-1, 1]), [-1, 1]),
        (np.array(["malignant", "benign"]), ["benign", "malignant"]),
        (np.array([True, False]), [False, True]),
    ],
)
def test_labels_map_to_zero_one_and_back(data, labels, classes) -> None:
    X, _, y01 = data
    y = labels[1 - y01]  # y01 == 1 takes labels[0]
    est = LogisticRegression(backend="test-recording").fit(X, y)
    assert list(est.classes_) == classes
    np.testing.assert_array_equal(est._protocol.seen_y, (y == est.classes_[1]).astype(float))
    pred = est.predict(X)
    assert set(pred) <= set(classes)
    np.testing.assert_array_equal(pred == est.classes_[1], est.decision_function(X) > 0)


def test_fitted_attributes_have_sklearn_shapes(data) -> None:
    X, y_lin, y_bin = data
    lin = LinearRegression(backend="test-recording").fit(X, y_lin)
    assert lin.coef_.shape == (3,) and isinstance(lin.intercept_, float)
    log = LogisticRegression(backend="test-recording").fit(X, y_bin)
    assert log.coef_.shape == (1, 3) and log.intercept_.shape == (1,)
    np.testing.assert_array_equal(log.coef_[0], [1.0, 2.0, 3.0])
    assert lin.n_iter_ == log.n_iter_ == 3 and lin.n_features_in_ == 3
    assert log._fit_result.state == "state"


def test_probabilities_are_consistent_with_the_logits(data) -> None:
    X, _, y = data
    est = LogisticRegression(backend="test-recording").fit(X, y)
    Xq = np.vstack([X, [[400.0, 0.0, 0.0]], [[-400.0, 0.0, 0.0]]])
    logits = est.decision_function(Xq)
    proba = est.predict_proba(Xq)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-logits)), rtol=1e-12)
    log_proba = est.predict_log_proba(Xq)
    assert np.all(np.isfinite(log_proba))
    np.testing.assert_allclose(log_proba[:-2], np.log(proba[:-2]), rtol=1e-9)
    np.testing.assert_array_equal(est.predict(Xq), est.classes_[np.argmax(proba, axis=1)])


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_use_before_fit_raises_not_fitted(cls, data) -> None:
    est = cls()
    methods = ["predict", "evaluate"] + (
        ["decision_function", "predict_proba", "predict_log_proba"]
        if cls is LogisticRegression
        else []
    )
    for method in methods:
        with pytest.raises(NotFittedError, match="not fitted yet") as info:
            getattr(est, method)(data[0])
        # Both trees: securecomp's and scikit-learn's.
        assert isinstance(info.value, sklearn.exceptions.NotFittedError)
    with pytest.raises(NotFittedError):
        est.score(data[0], _target(cls, data))
    with pytest.raises(NotFittedError):
        est.release(s=1.0)
    assert not hasattr(est, "last_report_")
    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(est)
    est.fit(data[0], _target(cls, data))
    check_is_fitted(est)
    assert est.last_report_ is None


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_wrong_feature_count_at_predict(cls, data) -> None:
    X = data[0]
    est = cls().fit(X, _target(cls, data))
    with pytest.raises(ShapeMismatchError, match=r"X has 2 features, but .* expecting 3"):
        est.predict(X[:, :2])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_shape_and_value_errors_are_securecomp_errors(cls, data) -> None:
    X, y = data[0], _target(cls, data)
    est = cls()
    with pytest.raises(ShapeMismatchError, match="40 rows but y has 39"):
        est.fit(X, y[:-1])
    with pytest.raises(ParameterError, match="Expected 2D array"):
        est.fit(X[:, 0], y)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        est.fit(bad, y)
    bad[3, 1] = np.inf
    with pytest.raises(ParameterError, match="infinity"):
        est.fit(bad, y)
    with pytest.raises(ParameterError, match="requires y"):
        est.fit(X, None)
    est.fit(X, y)
    with pytest.raises(ParameterError, match="NaN"):
        est.predict(np.where(np.eye(40, 3) > 0, np.nan, X))
    with pytest.raises(ParameterError, match="0 sample"):
        est.predict(np.empty((0, 3)))


def test_nan_labels_are_refused(data) -> None:
    X, y, _ = data
    y = y.copy()
    y[0] = np.nan
    for cls in ESTIMATORS:
        with pytest.raises(ParameterError, match="NaN"):
            cls().fit(X, y)


def test_sparse_input_is_refused_with_the_fix(data) -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y, _ = data
    with pytest.raises(UnsupportedOperationError, match="toarray"):
        LinearRegression().fit(scipy_sparse.csr_matrix(X), y)


def test_classifier_targets(data) -> None:
    X, y_lin, _ = data
    with pytest.raises(ParameterError, match="Only binary classification is supported"):
        LogisticRegression().fit(X, np.arange(40) % 3)
    with pytest.raises(ParameterError, match="only one class"):
        LogisticRegression().fit(X, np.ones(40))
    with pytest.raises(ParameterError, match="Unknown label type"):
        LogisticRegression().fit(X, y_lin)


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("optimizer", "adam", "optimizer must be one of"),
        ("learning_rate", 0.0, "learning_rate must be > 0"),
        ("learning_rate", "fast", "learning_rate must be 'auto'"),
        ("learning_rate", float("nan"), "finite"),
        ("max_iter", 0, "max_iter must be a positive int"),
        ("max_iter", 2.5, "max_iter must be a positive int"),
        ("max_iter", True, "max_iter must be a positive int"),
        ("batch_size", -1, "batch_size"),
        ("fit_intercept", "yes", "fit_intercept must be True or False"),
        ("l2", -0.1, "l2 must be >= 0"),
        ("random_state", np.random.default_rng(0), "int seed"),
        ("backend_options", [("a", 1)], "backend_options must be a dict"),
        ("simulate", "no", "simulate must be True or False"),
        ("sigmoid_degree", 0, "sigmoid_degree"),
        ("sigmoid_interval", -8.0, "sigmoid_interval must be > 0"),
        ("out_of_range", "ignore", "out_of_range must be one of"),
    ],
)
def test_bad_hyperparameters_are_refused_at_fit(data, param: str, value: Any, match: str) -> None:
    X, _, y = data
    est = LogisticRegression(**{param: value})  # construction never validates
    assert est.get_params()[param] is value
    with pytest.raises(ParameterError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "coef_")


def test_plain_refuses_simulation_through_the_estimator(data) -> None:
    X, y, _ = data
    with pytest.raises(ParameterError, match="no plaintext simulation"):
        LinearRegression(simulate=True).fit(X, y)


def test_broken_protocol_results_are_refused(data) -> None:
    X, y, _ = data
    with pytest.raises(ShapeMismatchError, match="coefficients of shape"):
        LinearRegression(backend="test-broken", backend_options={"wide_coef": True}).fit(X, y)
    est = LinearRegression(backend="test-broken").fit(X, y)
    with pytest.raises(ShapeMismatchError, match="scores of shape"):
        est.predict(X)
    est = LinearRegression(backend="test-broken", backend_options={"nan_scores": True}).fit(X, y)
    with pytest.raises(EncodingOverflowError, match="non-finite scores"):
        est.predict(X)


def test_failed_refit_leaves_no_stale_model(data) -> None:
    X, y, _ = data
    est = LinearRegression().fit(X, y)
    est.set_params(backend="nope")
    with pytest.raises(ParameterError):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_every_raised_error_is_a_securecomp_error(data) -> None:
    # Spot check of the contract: nothing escapes as a bare ValueError/TypeError.
    X, y, _ = data
    for bad_call in (
        lambda: LinearRegression().fit([["a", "b", "c"]] * 2, [1.0, 2.0]),
        lambda: LinearRegression().fit(X, y).predict([[1.0, 2.0]]),
        lambda: LinearRegression(max_iter=-3).fit(X, y),
    ):
        with pytest.raises(SecurecompError):
            bad_call()


# --- sklearn conventions ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_clone_and_params_round_trip(cls, data) -> None:
    est = cls(backend="test-recording", max_iter=3, backend_options={"k": 1}, random_state=4)
    params = est.get_params()
    assert params["backend"] == "test-recording" and params["max_iter"] == 3
    twin = clone(est)
    assert twin.get_params()["backend_options"] == {"k": 1}
    assert twin.get_params()["backend_options"] is not params["backend_options"]
    assert est.set_params(max_iter=9, backend="plain", backend_options=None) is est
    assert est.max_iter == 9 and est.backend == "plain"
    est.fit(data[0], _target(cls, data))
    fresh = clone(est)
    assert not hasattr(fresh, "coef_") and fresh.get_params() == est.get_params()


def test_score_uses_the_protocol(data) -> None:
    X, y_lin, y_bin = data
    lin = LinearRegression().fit(X, y_lin)
    assert lin.score(X, y_lin) == pytest.approx(1.0, abs=1e-6)  # y is exactly linear in X
    log = LogisticRegression().fit(X, y_bin)
    assert log.score(X, y_bin) == np.mean(log.predict(X) == y_bin)


# --- reports and passthroughs ------------------------------------------------------------------


def test_reports_are_kept_per_call(data) -> None:
    X, _, y = data
    est = LogisticRegression(backend="test-recording").fit(X, y)
    assert est.report_.protocol == "test-recording" and len(est.report_.leakage) == 1
    est.predict(X)
    first = est.last_report_
    result = est.evaluate(X[:5])
    assert isinstance(result, ScoreResult) and result.scores.shape == (5,)
    assert est.last_report_ is result.report is not first
    assert list(est.inference_reports_) == [first, result.report]
    for _ in range(INFERENCE_REPORTS_KEPT + 5):
        est.predict_proba(X[:1])
    assert len(est.inference_reports_) == INFERENCE_REPORTS_KEPT
    # A refit starts a new log.
    est.fit(X, y)
    assert len(est.inference_reports_) == 0 and est.last_report_ is None


def test_plan_delegates_to_the_protocol() -> None:
    plan = LogisticRegression(max_iter=4, batch_size=100).plan((250, 6))
    assert plan["protocol"] == "plain" and plan["steps"] == 12
    with pytest.raises(ParameterError, match="'test-recording' has nothing to plan"):
        LinearRegression(backend="test-recording").plan((10, 2))
    with pytest.raises(ParameterError, match="max_iter"):
        LinearRegression(max_iter=0).plan((10, 2))


def test_release_passes_through_or_refuses(data) -> None:
    X, _, y = data
    est = LogisticRegression(backend="test-recording").fit(X, y)
    fitted, kwargs = est.release(s=2.0)
    assert fitted is est._fit_result and kwargs == {"s": 2.0}
    plain = LogisticRegression().fit(X, y)
    with pytest.raises(ParameterError, match="'plain' has no release step"):
        plain.release(s=2.0)


def test_unrevealed_model_exposes_no_coef() -> None:
    # A protocol that keeps the model hidden (FitResult.revealed=False): no coef_ leaks out.
    from sklearn.datasets import make_classification

    from securecomp.models import LogisticRegression

    X, y = make_classification(
        n_samples=80, n_features=3, n_informative=2, n_redundant=0, random_state=0
    )
    est = LogisticRegression(backend="mpc", max_iter=2, backend_options={"model": "shared"})
    est.fit(X, y)
    assert not hasattr(est, "coef_") and not hasattr(est, "intercept_")
    assert est.predict(X).shape == (80,)
