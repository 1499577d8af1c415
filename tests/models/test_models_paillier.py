"""Paillier protocol: accuracy against OLS / scikit-learn, encrypted inference, plan, errors.

Keys are 512-bit through ``insecure_test_parameters()`` (fast); the default and labelled
sizes are checked through `plan`, which generates no key.
"""

from __future__ import annotations

import contextvars
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression as SkLogistic
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from securecomp.encoding import paillier_packing
from securecomp.errors import (
    EncodingOverflowError,
    InsecureParameterError,
    NotFittedError,
    ParameterError,
    ShapeMismatchError,
)
from securecomp.models import FitResult, TrainingSpec, get_protocol
from securecomp.models.paillier import PaillierProtocol
from securecomp.models.paillier.plan import ENVELOPE_ALLOWANCE
from securecomp.net.report import CostReport
from securecomp.params import (
    SMALL_TEST_PAILLIER_BITS,
    InsecureParametersWarning,
    insecure_test_parameters,
)

SMALL = {"key_bits": SMALL_TEST_PAILLIER_BITS}


@pytest.fixture(autouse=True)
def _small_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            yield


def _insecure() -> Any:
    warnings.simplefilter("ignore", InsecureParametersWarning)
    return insecure_test_parameters()


def _spec(task: str, **kw: Any) -> TrainingSpec:
    options = {**SMALL, **kw.pop("options", {})}
    return TrainingSpec(task=task, random_state=0, options=options, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y.astype(np.float64)


@pytest.fixture(scope="module")
def linear_fit(diabetes: tuple[np.ndarray, np.ndarray]) -> FitResult:
    X, y = diabetes
    with warnings.catch_warnings(), _insecure():
        return PaillierProtocol(_spec("linear", learning_rate=0.2, max_iter=60)).fit(X, y)


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr.astype(float), yte.astype(float)


@pytest.fixture(scope="module")
def logistic_fit(cancer: tuple[np.ndarray, ...]) -> FitResult:
    Xtr, _, ytr, _ = cancer
    with warnings.catch_warnings(), _insecure():
        return PaillierProtocol(_spec("logistic", learning_rate=1.0, max_iter=20)).fit(Xtr, ytr)


# --- accuracy -------------------------------------------------------------------------------


def test_linear_diabetes_reaches_ols(
    diabetes: tuple[np.ndarray, np.ndarray], linear_fit: FitResult
) -> None:
    X, y = diabetes
    A = np.c_[X, np.ones(len(X))]
    w_ols = np.linalg.lstsq(A, y, rcond=None)[0]
    mse_ols = float(np.mean((A @ w_ols - y) ** 2))
    mse = float(np.mean((X @ linear_fit.coef + linear_fit.intercept - y) ** 2))
    gap = np.abs(np.append(linear_fit.coef, linear_fit.intercept) - w_ols).max()
    assert mse <= 1.01 * mse_ols or gap <= 0.05
    assert linear_fit.report.metrics["clipped_values"] == 0


def test_logistic_breast_cancer_close_to_sklearn(
    cancer: tuple[np.ndarray, ...], logistic_fit: FitResult
) -> None:
    Xtr, Xte, ytr, yte = cancer
    reference = SkLogistic().fit(Xtr, ytr).score(Xte, yte)
    ours = float(np.mean(((Xte @ logistic_fit.coef + logistic_fit.intercept) > 0) == yte))
    assert abs(ours - reference) <= 0.02


def test_simulate_equals_encrypted_run_exactly(
    diabetes: tuple[np.ndarray, np.ndarray], linear_fit: FitResult
) -> None:
    X, y = diabetes
    sim = PaillierProtocol(_spec("linear", learning_rate=0.2, max_iter=60), simulate=True)
    result = sim.fit(X, y)
    # Same holders, coins and integer sums: decryption of the packed sum is exact.
    np.testing.assert_array_equal(result.coef, linear_fit.coef)
    assert result.intercept == linear_fit.intercept
    assert "plaintext simulation" in result.report.protocol


def test_minibatch_nesterov_and_gd_train(diabetes: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = diabetes
    for optimizer in ("gd", "nesterov"):
        spec = _spec("linear", learning_rate=0.1, max_iter=8, batch_size=64, optimizer=optimizer)
        enc = PaillierProtocol(spec).fit(X[:200], y[:200])
        sim = PaillierProtocol(spec, simulate=True).fit(X[:200], y[:200])
        np.testing.assert_array_equal(enc.coef, sim.coef)
        assert enc.report.metrics["steps"] == 8 * math.ceil(200 / 64)
        mse0 = float(np.mean((y[:200] - 0.0) ** 2))
        assert float(np.mean((X[:200] @ enc.coef + enc.intercept - y[:200]) ** 2)) < mse0 / 4


# --- encrypted inference --------------------------------------------------------------------


def _bound(X: np.ndarray, model: np.ndarray, frac_bits: int, model_frac: int) -> np.ndarray:
    ex, ew = 2.0 ** -(frac_bits + 1), 2.0 ** -(model_frac + 1)
    A = np.c_[np.abs(X), np.ones(len(X))]
    return np.abs(model).sum() * ex + A @ np.full(model.size, ew) + model.size * ex * ew


def test_encrypted_inference_agrees_with_plaintext_logistic(
    cancer: tuple[np.ndarray, ...], logistic_fit: FitResult
) -> None:
    _, Xte, _, _ = cancer
    proto = PaillierProtocol(_spec("logistic", max_iter=20))
    result = proto.decision_function(logistic_fit, Xte)
    plain = Xte @ logistic_fit.coef + logistic_fit.intercept
    assert np.mean((result.scores > 0) == (plain > 0)) >= 0.99
    f = result.report.metrics["model_frac_bits"]
    model = np.append(logistic_fit.coef, logistic_fit.intercept)
    assert (np.abs(result.scores - plain) <= _bound(Xte, model, 16, f) + 1e-12).all()
    # The plaintext simulation is the same fixed-point computation.
    sim = PaillierProtocol(_spec("logistic", max_iter=20), simulate=True)
    np.testing.assert_allclose(
        sim.decision_function(logistic_fit, Xte).scores, result.scores, rtol=0, atol=1e-9
    )
    assert "simulation of roles" in result.report.protocol
    assert result.report.comm is not None and result.report.comm.bytes_sent > 0


def test_encrypted_inference_agrees_with_plaintext_linear(
    diabetes: tuple[np.ndarray, np.ndarray], linear_fit: FitResult
) -> None:
    X, _ = diabetes
    result = PaillierProtocol(_spec("linear")).decision_function(linear_fit, X)
    plain = X @ linear_fit.coef + linear_fit.intercept
    model = np.append(linear_fit.coef, linear_fit.intercept)
    bound = _bound(X, model, 16, result.report.metrics["model_frac_bits"])
    assert np.mean(np.abs(result.scores - plain) <= bound + 1e-12) >= 0.99


def test_unpacked_inference_agrees_with_packed(
    cancer: tuple[np.ndarray, ...], logistic_fit: FitResult
) -> None:
    _, Xte, _, _ = cancer
    rows = Xte[:6]
    unpacked = PaillierProtocol(
        _spec("logistic", options={"inference_layout": "unpacked"})
    ).decision_function(logistic_fit, rows)
    packed = PaillierProtocol(_spec("logistic")).decision_function(logistic_fit, rows)
    plain = rows @ logistic_fit.coef + logistic_fit.intercept
    np.testing.assert_allclose(unpacked.scores, plain, atol=1e-3)
    np.testing.assert_allclose(packed.scores, unpacked.scores, atol=1e-3)
    assert unpacked.report.metrics["layout"] == "unpacked"


# --- reports, ledger, plan --------------------------------------------------------------------


def test_report_and_ledger(linear_fit: FitResult) -> None:
    report = linear_fit.report
    assert isinstance(report, CostReport)
    assert "simulation of roles" in report.protocol
    steps = report.metrics["steps"]
    by_party = report.leakage.by_party()
    kh = [e for e in by_party["key_holder"] if e.stage.startswith("step ")]
    assert [e.stage for e in kh] == [f"step {t}" for t in range(1, steps + 1)]
    assert all("aggregate gradient" in e.what for e in kh)
    assert any("total number of rows n = 442" in e.what for e in by_party["key_holder"])
    for i in range(4):
        assert len(by_party[f"holder_{i}"]) == steps + 1  # n, then every later model
    assert all("only ciphertexts" in e.what or "steps" in e.what for e in by_party["aggregator"])
    assert report.comm is not None and report.rounds == report.comm.rounds > steps
    assert {"key holder", "aggregator", "holders (slowest)"} <= set(report.phases)


def test_ledger_states_the_step_size_is_public(linear_fit: FitResult) -> None:
    setup = [e for e in linear_fit.report.leakage.by_party()["key_holder"] if e.stage == "setup"]
    assert len(setup) == 1
    assert "learning_rate = 0.2" in setup[0].what and "public parameter" in setup[0].what
    assert "'auto'" in setup[0].what and "in advance" in setup[0].what
    doc = PaillierProtocol.threat_model()
    assert "public parameter" in doc and "pooled" in doc and "in advance" in doc


@pytest.mark.parametrize("simulate", [False, True])
def test_two_holders_warn_and_record_what_each_learns(
    diabetes: tuple[np.ndarray, np.ndarray], simulate: bool
) -> None:
    X, y = diabetes
    proto = PaillierProtocol(
        _spec("linear", max_iter=2, learning_rate=0.2, options={"n_holders": 2}),
        simulate=simulate,
    )
    with pytest.warns(UserWarning, match="n_holders=2") as caught:
        fit = proto.fit(X[:40], y[:40])
    assert sum("n_holders=2" in str(w.message) for w in caught) == 1
    by_party = fit.report.leakage.by_party()
    for name in ("holder_0", "holder_1"):
        what = " ".join(e.what for e in by_party[name])
        assert "other holder's row count" in what and "quantized gradient" in what
    assert "n_holders=2" in PaillierProtocol.threat_model()
    # Three or more holders: no such warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", InsecureParametersWarning)
        PaillierProtocol(
            _spec("linear", max_iter=1, options={"n_holders": 3}), simulate=True
        ).fit(X[:40], y[:40])


def test_plan_counts_match_the_run(
    diabetes: tuple[np.ndarray, np.ndarray], linear_fit: FitResult
) -> None:
    X, _ = diabetes
    plan = PaillierProtocol(_spec("linear", max_iter=60)).plan(X.shape)
    packing = paillier_packing(SMALL_TEST_PAILLIER_BITS, 32, 4)
    assert plan["slots_per_ciphertext"] == packing.n_slots
    assert plan["ciphertexts_per_holder_per_step"] == math.ceil(12 / packing.n_slots)
    assert plan["steps"] == linear_fit.report.metrics["steps"] == 60
    assert plan["estimated_seconds"]["fit"] > 0
    comm = linear_fit.report.comm
    assert comm is not None
    update = comm.per_tag["update"]
    per_message = update.bytes_sent / update.messages_sent
    ct = plan["ciphertexts_per_holder_per_step"] * plan["ciphertext_bytes"]
    assert ct < per_message <= ct + ENVELOPE_ALLOWANCE


def test_key_sizes_default_and_labels() -> None:
    spec = TrainingSpec(task="linear", max_iter=2)
    assert PaillierProtocol(spec).options.key_bits == 3072
    plan = PaillierProtocol(spec).plan((100, 5))
    assert plan["key_bits"] == 3072 and "128" in plan["security"]
    plan2048 = PaillierProtocol(
        TrainingSpec(task="linear", options={"key_bits": 2048})
    ).plan((100, 5))
    assert "112" in plan2048["security"]


def test_small_keys_need_the_opt_in() -> None:
    def outside() -> None:
        spec = TrainingSpec(task="linear", options={"key_bits": 1024})
        with pytest.raises(InsecureParameterError):
            PaillierProtocol(spec).plan((10, 2))
        with pytest.raises(InsecureParameterError):
            PaillierProtocol(spec).fit(np.zeros((8, 2)), np.zeros(8))

    # A fresh context is outside the autouse opt-in scope.
    contextvars.Context().run(outside)


# --- errors -----------------------------------------------------------------------------------


def test_option_errors() -> None:
    with pytest.raises(ParameterError, match="unknown option"):
        PaillierProtocol(_spec("linear", options={"n_holder": 3}))
    with pytest.raises(ParameterError):
        PaillierProtocol(_spec("linear", options={"n_holders": 1}))
    with pytest.raises(EncodingOverflowError):
        PaillierProtocol(_spec("linear", options={"clip": 2.0**20}))
    with pytest.raises(ParameterError):
        PaillierProtocol(_spec("linear", options={"inference_layout": "rows"}))
    with pytest.raises(ParameterError, match="cannot be split"):
        PaillierProtocol(_spec("linear")).fit(np.zeros((3, 2)), np.zeros(3))


def test_shape_and_value_errors(linear_fit: FitResult) -> None:
    proto = PaillierProtocol(_spec("linear", max_iter=1))
    with pytest.raises(ShapeMismatchError):
        proto.fit(np.zeros(10), np.zeros(10))
    with pytest.raises(ShapeMismatchError):
        proto.fit(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ParameterError):
        proto.fit(np.full((10, 2), np.nan), np.zeros(10))
    with pytest.raises(ParameterError):
        PaillierProtocol(_spec("logistic", max_iter=1)).fit(np.zeros((10, 2)), np.full(10, 2.0))
    with pytest.raises(ShapeMismatchError):
        proto.decision_function(linear_fit, np.zeros((3, 4)))
    with pytest.raises(ParameterError):
        proto.decision_function(linear_fit, np.full((3, 10), np.inf))
    foreign = FitResult(coef=np.zeros(10), intercept=0.0, n_iter=1, report=CostReport("x"))
    with pytest.raises(NotFittedError):
        proto.decision_function(foreign, np.zeros((3, 10)))
    with pytest.raises(ShapeMismatchError):
        proto.plan((10,))  # type: ignore[arg-type]


def test_registered_under_its_name() -> None:
    assert get_protocol("paillier") is PaillierProtocol
    assert "aggregator" in PaillierProtocol.threat_model()
    assert "not collude" in PaillierProtocol.threat_model()
