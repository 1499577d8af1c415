"""MPC-trained linear and logistic regression (``backend="mpc"``) against the float64 twin.

Every MPC run here is an in-process simulation (`securecomp.mpc.run_local`); the oracle is
`reference_fit`, the same algorithm (same batches, steps, sigmoid approximation and
`securecomp.models.gd.update`) in float64, and scikit-learn for sanity.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression as SkLogistic
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError
from securecomp.models import LinearRegression, LogisticRegression, register_protocol
from securecomp.models.gd import update
from securecomp.models.protocol import TrainingSpec, get_protocol
from securecomp.models.validation import step_size
from securecomp.mpc.models import MPCProtocol, make_plan, parse_options, reference_fit

Split = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def _split(X: NDArray[Any], y: NDArray[Any], seed: int, stratify: bool) -> Split:
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=y if stratify else None
    )
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr.astype(float), yte.astype(float)


@pytest.fixture(scope="module")
def cancer() -> list[Split]:
    X, y = load_breast_cancer(return_X_y=True)
    return [_split(X, y, seed, stratify=True) for seed in range(5)]


@pytest.fixture(scope="module")
def diabetes() -> Split:
    X, y = load_diabetes(return_X_y=True)
    return _split(X, y, 0, stratify=False)


def _spec(task: str, X: NDArray[np.float64], **kw: Any) -> TrainingSpec:
    lr = step_size(X, task=task, fit_intercept=True, l2=kw.pop("l2", 0.0))
    return TrainingSpec(task=task, learning_rate=lr, **kw)  # type: ignore[arg-type]


def _accuracy(coef: NDArray[np.float64], b: float, X: NDArray[np.float64], y: Any) -> float:
    return float(np.mean(((X @ coef + b) > 0) == (y == 1)))


def _fit_both(spec: TrainingSpec, X: NDArray[np.float64], y: NDArray[np.float64]) -> Any:
    proto = MPCProtocol(spec)
    fitted = proto.fit(X, y)
    ref = reference_fit(proto.make_plan(*X.shape), X, y)
    return proto, fitted, ref


# --- the accuracy bar ----------------------------------------------------------------------------


def test_logistic_breast_cancer_within_one_point_of_float64(cancer: list[Split]) -> None:
    """SecureML-style mini-batch Nesterov, 2 parties, dealer truncation, 5 stratified splits.

    The step is 1/L for a link of slope 1: SecureML's piecewise sigmoid is steeper than the
    logistic function (slope 1/4) that ``learning_rate="auto"`` assumes.
    """
    ours, floats, sk = [], [], []
    for seed, (Xtr, Xte, ytr, yte) in enumerate(cancer):
        lr = step_size(Xtr, task="linear", fit_intercept=True, l2=0.0)
        spec = TrainingSpec(
            task="logistic", learning_rate=lr, batch_size=64, max_iter=10, random_state=seed
        )
        _, fitted, ref = _fit_both(spec, Xtr, ytr)
        acc = _accuracy(fitted.coef, fitted.intercept, Xte, yte)
        acc_ref = _accuracy(ref.coef, ref.intercept, Xte, yte)
        assert abs(acc - acc_ref) <= 0.01, (seed, acc, acc_ref)
        # The same algorithm: the weights differ only by fixed-point rounding.
        assert np.max(np.abs(fitted.coef - ref.coef)) < 0.01
        assert abs(fitted.intercept - ref.intercept) < 0.01
        # The claim the bound tracker relied on held for every iterate.
        assert ref.max_abs_weight <= 256.0
        ours.append(acc)
        floats.append(acc_ref)
        sk.append(SkLogistic().fit(Xtr, ytr).score(Xte, yte))
    assert abs(np.mean(ours) - np.mean(floats)) <= 0.01
    # Sanity: the piecewise sigmoid costs little accuracy against exact logistic regression.
    assert np.mean(ours) >= np.mean(sk) - 0.01


@pytest.mark.parametrize(
    "options",
    [{"truncation": "local"}, {"parties": 3}],
    ids=["local-truncation-2p", "dealer-3p"],
)
def test_logistic_full_batch_variants_match_float64(
    cancer: list[Split], options: dict[str, Any]
) -> None:
    Xtr, Xte, ytr, yte = cancer[1]
    spec = _spec("logistic", Xtr, max_iter=30, random_state=1, options=options)
    _, fitted, ref = _fit_both(spec, Xtr, ytr)
    assert np.max(np.abs(fitted.coef - ref.coef)) < 0.01
    acc = _accuracy(fitted.coef, fitted.intercept, Xte, yte)
    assert abs(acc - _accuracy(ref.coef, ref.intercept, Xte, yte)) <= 0.01
    assert fitted.report.metrics["rows_per_party"] == list(
        MPCProtocol(spec).options.rows_per_party(Xtr.shape[0])
    )


def test_linear_regression_diabetes_close_to_float64(diabetes: Split) -> None:
    Xtr, _, ytr, _ = diabetes
    spec = _spec("linear", Xtr, max_iter=100, random_state=0)
    _, fitted, ref = _fit_both(spec, Xtr, ytr)
    # Coefficients of order 10 (the intercept ~150): agreement to 1e-2 absolute.
    assert np.max(np.abs(fitted.coef - ref.coef)) < 1e-2
    assert abs(fitted.intercept - ref.intercept) < 1e-2

    def mse(coef: NDArray[Any], b: float) -> float:
        return float(np.mean((Xtr @ coef + b - ytr) ** 2))

    assert mse(fitted.coef, fitted.intercept) == pytest.approx(
        mse(ref.coef, ref.intercept), rel=1e-4
    )
    # And the algorithm itself is near least squares after 100 Nesterov steps.
    ols, *_ = np.linalg.lstsq(np.hstack([np.ones((len(Xtr), 1)), Xtr]), ytr, rcond=None)
    assert mse(fitted.coef, fitted.intercept) <= 1.01 * mse(ols[1:], ols[0])


def test_polynomial_sigmoid_matches_float64_and_reports_range(cancer: list[Split]) -> None:
    Xtr, _, ytr, _ = cancer[0]
    spec = _spec("logistic", Xtr, max_iter=20, random_state=0, options={"sigmoid": "poly"})
    with pytest.warns(RuntimeWarning, match="sigmoid's interval"):
        _, fitted, ref = _fit_both(spec, Xtr, ytr)
    assert np.max(np.abs(fitted.coef - ref.coef)) < 0.01
    # The count of out-of-range logits is opened each step: it matches float64's count.
    assert abs(fitted.report.metrics["logits_outside_interval"] - ref.outside) <= 2
    assert any("outside" in e.what for e in fitted.report.leakage)


def test_polynomial_out_of_range_can_raise(cancer: list[Split]) -> None:
    Xtr, _, ytr, _ = cancer[0]
    spec = _spec(
        "logistic",
        Xtr,
        max_iter=20,
        random_state=0,
        out_of_range="raise",
        options={"sigmoid": "poly"},
    )
    with pytest.raises(EncodingOverflowError, match="interval"):
        MPCProtocol(spec).fit(Xtr, ytr)


# --- the optimizer as one truncation -------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    optimizer=st.sampled_from(["gd", "nesterov"]),
    l2=st.sampled_from([0.0, 0.1]),
    steps=st.integers(1, 6),
)
def test_update_coefficients_reproduce_gd_update(
    seed: int, optimizer: Any, l2: float, steps: int
) -> None:
    rng = np.random.default_rng(seed)
    spec = TrainingSpec(
        task="linear", optimizer=optimizer, learning_rate=0.3, max_iter=steps, l2=l2
    )
    plan = make_plan(spec, parse_options({}), (7, 5), 3)
    w, v = rng.normal(size=plan.width), rng.normal(size=plan.width)
    for step in plan.steps():
        g = rng.normal(size=plan.width) * 10
        coeffs = plan.update_coefficients(step)
        outs = np.einsum("rkj,kj->rj", coeffs, np.stack([v, g, w]))
        w_gd, v_gd = update(w, v, g, step, plan.cfg)
        np.testing.assert_allclose(outs[0], w_gd, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(outs[-1], v_gd, rtol=1e-12, atol=1e-12)
        w, v = w_gd, v_gd


# --- inference and the shared model --------------------------------------------------------------


def test_shared_model_scores_on_shares_and_release(cancer: list[Split]) -> None:
    Xtr, Xte, ytr, _ = cancer[2]
    spec = _spec("logistic", Xtr, max_iter=10, random_state=2, options={"model": "shared"})
    proto = MPCProtocol(spec)
    fitted = proto.fit(Xtr, ytr)
    assert not fitted.state.revealed
    assert not fitted.revealed  # the estimator then exposes no coef_
    assert not any("trained model" in e.what for e in fitted.report.leakage)
    scored = proto.decision_function(fitted, Xte)
    coef, intercept, report = proto.release(fitted)
    ref = reference_fit(proto.make_plan(*Xtr.shape), Xtr, ytr)
    assert np.max(np.abs(coef - ref.coef)) < 0.01
    # Scores computed on shares agree with the released model's (two truncations apart).
    np.testing.assert_allclose(scored.scores, Xte @ coef + intercept, atol=1e-3)
    assert any("trained model" in e.what for e in report.leakage)
    # Only the query party (0) learns the scores.
    by_party = scored.report.leakage.by_party()
    assert any("scores" in e.what for e in by_party[0])
    assert all("scores" not in e.what for e in by_party[1])


def test_revealed_model_scores_and_no_release(cancer: list[Split]) -> None:
    Xtr, Xte, ytr, _ = cancer[3]
    spec = _spec("logistic", Xtr, max_iter=5, random_state=3, options={"query_party": 1})
    proto = MPCProtocol(spec)
    fitted = proto.fit(Xtr, ytr)
    scored = proto.decision_function(fitted, Xte)
    np.testing.assert_allclose(scored.scores, Xte @ fitted.coef + fitted.intercept, atol=1e-3)
    assert any("scores" in e.what for e in scored.report.leakage.by_party()[1])
    with pytest.raises(ParameterError, match="revealed"):
        proto.release(fitted)
    with pytest.raises(ShapeMismatchError):
        proto.decision_function(fitted, Xte[:, :5])


# --- the estimator, reports and leakage ----------------------------------------------------------


def test_estimators_with_backend_mpc(cancer: list[Split], diabetes: Split) -> None:
    register_protocol(MPCProtocol)
    assert get_protocol("mpc") is MPCProtocol
    Xtr, Xte, ytr, yte = cancer[4]
    clf = LogisticRegression(backend="mpc", max_iter=20, batch_size=128, random_state=4)
    clf.fit(Xtr, ytr)
    plain = LogisticRegression(backend="plain", max_iter=20, batch_size=128, random_state=4)
    plain.fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= plain.score(Xte, yte) - 0.03
    report = clf.report_
    assert report.comm is not None and report.comm.bytes_sent > 0
    assert {"online", "offline"} <= set(report.comm.per_phase)
    assert report.comm.per_phase["offline"].bytes_sent > 0  # dealer traffic, counted apart
    assert report.rounds is not None and report.rounds >= 14 * report.metrics["steps"]
    assert "simulation" in report.metrics["execution"]
    parties = report.leakage.by_party()
    assert {0, 1, "dealer"} <= set(parties)
    assert any("trained model" in e.what for e in parties[0])
    assert clf.last_report_ is not None and clf.last_report_.comm is not None
    doc = get_protocol("mpc").threat_model()
    assert "semi-honest" in doc and "dealer" in doc and "horizontal" in doc

    Xd, _, yd, _ = diabetes
    reg = LinearRegression(backend="mpc", max_iter=50, random_state=0).fit(Xd, yd)
    ref = LinearRegression(backend="plain", max_iter=50, random_state=0).fit(Xd, yd)
    assert np.max(np.abs(reg.coef_ - ref.coef_)) < 0.05
    assert reg.report_.metrics["sigmoid"].startswith("none")


def test_plan_counts_rounds_and_material(cancer: list[Split]) -> None:
    Xtr, _, ytr, _ = cancer[0]
    spec = _spec("logistic", Xtr, max_iter=2, batch_size=100, random_state=0)
    proto = MPCProtocol(spec)
    plan = proto.plan(Xtr.shape)
    assert plan["steps"] == 2 * 5 and plan["online_rounds_per_step"] == 14
    fitted = proto.fit(Xtr, ytr)
    assert fitted.report.comm is not None
    online = fitted.report.comm.per_phase["online"]
    assert 14 * plan["steps"] <= online.rounds <= plan["online_rounds_estimate"]
    assert plan["material_words_per_party"] > 0


# --- bad input -----------------------------------------------------------------------------------


def test_options_are_checked() -> None:
    with pytest.raises(ParameterError, match="unknown option"):
        parse_options({"partys": 2})
    with pytest.raises(ParameterError, match="parties"):
        parse_options({"parties": 1})
    with pytest.raises(ParameterError, match="2 parties only"):
        parse_options({"parties": 3, "truncation": "local"})
    with pytest.raises(ParameterError, match="truncation"):
        parse_options({"truncation": "exact"})
    with pytest.raises(ParameterError, match="query_party"):
        parse_options({"query_party": 2})
    with pytest.raises(ParameterError, match="partition"):
        parse_options({"partition": [1, 2, 3]})
    with pytest.raises(ParameterError, match="weight_bound"):
        parse_options({"weight_bound": float("nan")})


def test_bad_data_is_refused(cancer: list[Split]) -> None:
    Xtr, _, ytr, _ = cancer[0]
    spec = _spec("logistic", Xtr, max_iter=1)
    with pytest.raises(EncodingOverflowError, match="feature_bound"):
        MPCProtocol(spec).fit(Xtr * 100, ytr)
    with pytest.raises(ParameterError, match="0 or 1"):
        MPCProtocol(spec).fit(Xtr, ytr * 2)
    with pytest.raises(ParameterError, match="NaN"):
        MPCProtocol(spec).fit(np.where(Xtr > 3, np.nan, Xtr), ytr)
    with pytest.raises(ShapeMismatchError):
        MPCProtocol(spec).fit(Xtr, ytr[:-1])
    uneven = _spec("logistic", Xtr, max_iter=1, options={"partition": [10, 20]})
    with pytest.raises(ParameterError, match="partition"):
        MPCProtocol(uneven).fit(Xtr, ytr)


def test_unguaranteed_bounds_are_refused_or_flagged(cancer: list[Split]) -> None:
    Xtr, _, ytr, _ = cancer[0]
    # Bounds too wide for the tracker: refused before any communication of a product.
    huge = _spec("logistic", Xtr, max_iter=1, options={"feature_bound": 2.0**20})
    with pytest.raises(EncodingOverflowError, match="weight_bound"):
        MPCProtocol(huge).fit(Xtr, ytr)
    # A weight claim the model exceeds is flagged on the revealed model.
    tight = _spec("logistic", Xtr, max_iter=5, options={"weight_bound": 0.01})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MPCProtocol(tight).fit(Xtr, ytr)
    assert any("weight_bound" in str(w.message) for w in caught)
