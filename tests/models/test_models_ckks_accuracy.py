"""CKKS logistic regression trained encrypted on breast cancer (569 x 30), five splits.

Standardized features, stratified 75/25 splits with seeds 0-4, secure planned parameters
(N = 8192, 128-bit), Nesterov with a degree-5 least-squares sigmoid on [-8, 8], five
epochs (one refresh each). Checked against scikit-learn, against the same algorithm and
polynomial in float64 (`securecomp.models.gd` on the plain backend), against the
plaintext simulation, and through encrypted inference. One key serves the five fits (the
public context, ~80 MB with Galois keys, is made and sent once).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression as SkLogistic
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from securecomp.errors import InsecureParameterError
from securecomp.models.ckks import CKKSProtocol, CKKSSession
from securecomp.models.protocol import FitResult, TrainingSpec
from securecomp.params import insecure_test_parameters

SEEDS = (0, 1, 2, 3, 4)
HYPER = {
    "task": "logistic",
    "optimizer": "nesterov",
    "learning_rate": 0.6,
    "max_iter": 5,
    "sigmoid_degree": 5,
    "sigmoid_interval": 8.0,
}
#: Stated tolerance between the plaintext simulation and the encrypted run (per weight).
SIMULATION_TOLERANCE = 1e-3


@dataclass
class Split:
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    sklearn_accuracy: float
    fit: FitResult
    reference: tuple[np.ndarray, float]
    simulated: FitResult
    protocol: CKKSProtocol
    warnings: list[str]


def _split(seed: int) -> tuple[np.ndarray, ...]:
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr.astype(float), yte.astype(float)


@pytest.fixture(scope="module")
def session() -> CKKSSession:
    Xtr, _, ytr, _ = _split(0)
    params = CKKSProtocol(TrainingSpec(**HYPER)).prepare(Xtr, ytr).plan.params  # type: ignore[arg-type]
    return CKKSSession.establish(params)


@pytest.fixture(scope="module")
def splits(session: CKKSSession) -> dict[int, Split]:
    out = {}
    for seed in SEEDS:
        Xtr, Xte, ytr, yte = _split(seed)
        sk = SkLogistic().fit(Xtr, ytr).score(Xte, yte)
        spec = TrainingSpec(**HYPER, options={"session": session})  # type: ignore[arg-type]
        proto = CKKSProtocol(spec)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            fit = proto.fit(Xtr, ytr)
        sim_spec = TrainingSpec(**HYPER, options={"noise_seed": seed})  # type: ignore[arg-type]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            simulated = CKKSProtocol(sim_spec, simulate=True).fit(Xtr, ytr)
        out[seed] = Split(
            Xtr,
            Xte,
            ytr,
            yte,
            float(sk),
            fit,
            proto.float64_reference(Xtr, ytr),
            simulated,
            proto,
            [str(w.message) for w in caught],
        )
    return out


def _accuracy(X: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: float) -> float:
    return float(np.mean(((X @ coef + intercept) > 0) == (y == 1.0)))


def test_accuracy_is_within_two_points_of_sklearn(splits: dict[int, Split]) -> None:
    gaps = []
    for s in splits.values():
        ours = _accuracy(s.X_test, s.y_test, s.fit.coef, s.fit.intercept)
        gaps.append(s.sklearn_accuracy - ours)
    assert np.mean(gaps) <= 0.02, gaps
    assert max(gaps) <= 0.03, gaps


def test_weights_and_predictions_match_the_float64_algorithm(splits: dict[int, Split]) -> None:
    for s in splits.values():
        coef, intercept = s.reference
        assert np.max(np.abs(s.fit.coef - coef)) <= 1e-2
        assert abs(s.fit.intercept - intercept) <= 1e-2
        for X in (s.X_train, s.X_test):
            agree = np.mean(
                ((X @ s.fit.coef + s.fit.intercept) > 0) == ((X @ coef + intercept) > 0)
            )
            assert agree >= 0.99


def test_encrypted_inference_agrees_with_plaintext_predictions(splits: dict[int, Split]) -> None:
    for s in splits.values():
        result = s.protocol.decision_function(s.fit, s.X_test)
        plain = s.X_test @ s.fit.coef + s.fit.intercept
        assert np.mean((result.scores > 0) == (plain > 0)) >= 0.99
        np.testing.assert_allclose(result.scores, plain, atol=1e-4)
        assert result.report.leakage.by_party()["inference client"]


def test_simulation_agrees_with_the_encrypted_run(splits: dict[int, Split]) -> None:
    for s in splits.values():
        assert np.max(np.abs(s.simulated.coef - s.fit.coef)) <= SIMULATION_TOLERANCE
        assert abs(s.simulated.intercept - s.fit.intercept) <= SIMULATION_TOLERANCE
        a = (s.X_test @ s.simulated.coef + s.simulated.intercept) > 0
        b = (s.X_test @ s.fit.coef + s.fit.intercept) > 0
        assert np.mean(a == b) >= 0.99


def test_reports_count_refreshes_and_out_of_range_logits(splits: dict[int, Split]) -> None:
    for s in splits.values():
        m = s.fit.report.metrics
        assert m["refreshes"] == m["steps"] == 5
        assert m["security_bits"] >= 128 and m["chain"][0] > m["chain"][1]
        assert m["max_abs_gradient_sum"] < m["gradient_capacity"]
        oor = m["logits_out_of_range"]
        if oor["steps"]:
            assert any(f"{oor['worst_fraction']:.1%} of rows" in w for w in s.warnings)
        refreshes = [e for e in s.fit.report.leakage if e.stage.startswith("refresh")]
        assert [e.stage for e in refreshes] == [f"refresh {k}" for k in range(1, 6)]
    assert any(s.warnings for s in splits.values())  # some logits leave [-8, 8]


def test_probabilities_through_the_polynomial(splits: dict[int, Split]) -> None:
    s = splits[0]
    X = s.X_test[:60]
    z = X @ s.fit.coef + s.fit.intercept
    sig = s.fit.state.cfg.sigmoid
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        result = s.protocol.infer(s.fit, X, output="probabilities")
    # Inside [-B, B] the polynomial's slope is small: the encrypted evaluation (depth-4
    # chain, scale 2^40 with the logits folded to z/B) stays within 5e-3 of the float
    # polynomial (typically 1e-5, rarely up to 2e-3 near the interval's ends); outside it the
    # polynomial is steep and amplifies that error, so compare relatively.
    inside = np.abs(z) <= sig.interval
    np.testing.assert_allclose(result.scores[inside], sig(z[inside]), atol=5e-3)
    np.testing.assert_allclose(result.scores[~inside], sig(z[~inside]), rtol=2e-2, atol=5e-3)
    assert np.median(np.abs(result.scores - sig(z))) < 1e-4
    assert result.report.metrics["params"] != s.fit.report.metrics["params"]  # depth 4
    # Rows whose logits leave [-8, 8] show up as probabilities outside [0, 1].
    # (Rows within the CKKS error of the threshold may fall either way.)
    dist = np.abs(sig(z) - 0.5) - (0.5 + sig.max_error + 1e-3)
    surely, maybe = np.mean(dist > 2e-3), np.mean(dist > -2e-3)
    reported = result.report.metrics["probabilities_out_of_range"]
    assert surely <= reported <= maybe
    assert bool(caught) == (reported > 0)
    if surely > 0:
        assert caught


def test_release_floods_the_model_and_reports_its_accuracy(splits: dict[int, Split]) -> None:
    s = splits[1]
    with insecure_test_parameters():  # s = 8 keeps the model usable; the default is 40
        released = s.protocol.release(s.fit, s=8, X=s.X_test, y=s.y_test)
    t = released.error_bound
    assert t == s.fit.state.error_bound["heuristic"] > 0
    width = s.fit.coef.size + 1
    assert released.noise_std == pytest.approx(t * np.sqrt(width / 2) * 2**4, rel=0.1)
    m = released.report.metrics
    assert m["key_holder_accuracy"] == pytest.approx(
        _accuracy(s.X_test, s.y_test, s.fit.coef, s.fit.intercept)
    )
    assert 0.0 <= m["released_accuracy"] <= 1.0
    with pytest.raises(InsecureParameterError):  # below 40 bits without the opt-in
        s.protocol.release(s.fit, s=8)
    assert "noise flooding" in released.report.leakage.by_party()["server"][0].what
    # The server now holds the released model and can score with it.
    scores = s.protocol.infer(s.fit, s.X_test[:20], model="released").scores
    np.testing.assert_allclose(
        scores, s.X_test[:20] @ released.coef + released.intercept, atol=1e-4
    )
    # The key holder's model is unchanged.
    assert np.array_equal(s.fit.coef, s.fit.state.coef)


def test_estimator_with_the_ckks_backend(session: CKKSSession, splits: dict[int, Split]) -> None:
    from securecomp.models import LogisticRegression

    s = splits[2]
    hyper = {**HYPER, "max_iter": 2}
    hyper.pop("task")
    est = LogisticRegression(backend="ckks", **hyper, backend_options={"session": session})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est.fit(s.X_train, s.y_train)
    spec = TrainingSpec(task="logistic", **hyper)  # type: ignore[arg-type]
    coef, intercept = CKKSProtocol(spec).float64_reference(s.X_train, s.y_train)
    np.testing.assert_allclose(est.coef_.ravel(), coef, atol=1e-3)
    assert est.intercept_.item() == pytest.approx(intercept, abs=1e-3)
    assert est.report_.metrics["refreshes"] == 2
    scores = est.decision_function(s.X_test)
    expected = s.X_test @ est.coef_.ravel() + est.intercept_.item()
    np.testing.assert_allclose(scores, expected, atol=1e-4)  # encrypted inference
    assert est.last_report_ is not None and est.last_report_.protocol == "ckks inference"
