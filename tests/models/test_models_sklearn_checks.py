"""scikit-learn's estimator checks: the whole suite, and a named subset for other backends.

`FULL_SUITE_CONFIGS` lists the (backend, simulate) configurations that must pass every
check of `sklearn.utils.estimator_checks`; `SUBSET_CONFIGS` those that must pass the cheap
`NAMED_SUBSET` (clone, get/set_params, not-fitted errors, input validation). A backend adds
itself by appending to a list, and its extra estimator arguments (e.g. test parameters)
to `CONFIG_PARAMS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_dont_overwrite_parameters,
    check_estimator_cloneable,
    check_estimators_empty_data_messages,
    check_estimators_nan_inf,
    check_estimators_overwrite_params,
    check_estimators_unfitted,
    check_fit1d,
    check_fit2d_predict1d,
    check_fit_check_is_fitted,
    check_get_params_invariance,
    check_n_features_in,
    check_n_features_in_after_fitting,
    check_set_params,
    parametrize_with_checks,
)

from securecomp.models import (
    FitResult,
    LinearRegression,
    LogisticRegression,
    ModelProtocol,
    ScoreResult,
    register_protocol,
)
from securecomp.net.report import CostReport
from securecomp.params import insecure_test_parameters

#: (backend, simulate) pairs that must pass scikit-learn's whole check suite.
FULL_SUITE_CONFIGS: list[tuple[str, bool]] = [
    ("plain", False),
    ("paillier", True),
    ("ckks", True),
]

#: (backend, simulate) pairs that must pass `NAMED_SUBSET` only (encrypted backends).
SUBSET_CONFIGS: list[tuple[str, bool]] = [
    ("test-lstsq", False),
    ("paillier", False),
    ("ckks", False),
]

#: Extra constructor arguments per configuration (shared by both estimators).
CONFIG_PARAMS: dict[tuple[str, bool], dict[str, Any]] = {
    # Small keys: only inside `insecure_test_parameters()` (see `test_sklearn_named_subset`).
    ("paillier", False): {"backend_options": {"key_bits": 512}, "max_iter": 3},
    # Real (128-bit) CKKS parameters; two epochs keep the encrypted fits short.
    ("ckks", False): {"max_iter": 2},
}

#: Checks that need few fits (at most two each, on at most a few hundred rows).
NAMED_SUBSET: tuple[Callable[[str, Any], None], ...] = (
    check_estimator_cloneable,
    check_get_params_invariance,
    check_set_params,
    check_estimators_unfitted,
    check_fit_check_is_fitted,
    check_n_features_in,
    check_n_features_in_after_fitting,
    check_fit2d_predict1d,
    check_fit1d,
    check_estimators_empty_data_messages,
    check_estimators_nan_inf,
    check_dont_overwrite_parameters,
    check_estimators_overwrite_params,
)


class LstsqProtocol(ModelProtocol):
    """Test stand-in for an external backend: closed-form least squares, in plaintext.

    Threat model: none (a test fixture; the data owner computes everything locally).
    For logistic regression it fits the labels mapped to ±1, so the sign of the score is
    a (crude) classifier; it exists to exercise the estimator's plumbing, not to be good.
    """

    name: ClassVar[str] = "test-lstsq"

    def fit(self, X: np.ndarray, y: np.ndarray) -> FitResult:
        target = 2.0 * y - 1.0 if self.spec.task == "logistic" else y
        Z = np.hstack([np.ones((X.shape[0], 1)), X]) if self.spec.fit_intercept else X
        w = np.linalg.lstsq(Z, target, rcond=None)[0]
        report = CostReport(protocol=self.name)
        report.leakage.record("data owner", "everything (plaintext test fixture)", "fit")
        coef, b = (w[1:], float(w[0])) if self.spec.fit_intercept else (w, 0.0)
        return FitResult(coef=coef, intercept=b, n_iter=1, report=report)

    def decision_function(self, fitted: FitResult, X: np.ndarray) -> ScoreResult:
        return ScoreResult(X @ fitted.coef + fitted.intercept, CostReport(protocol=self.name))


register_protocol(LstsqProtocol)


def _estimators(configs: list[tuple[str, bool]]) -> list[Any]:
    out = []
    for backend, simulate in configs:
        extra = CONFIG_PARAMS.get((backend, simulate), {})
        for cls in (LinearRegression, LogisticRegression):
            out.append(cls(backend=backend, simulate=simulate, **extra))
    return out


@parametrize_with_checks(_estimators(FULL_SUITE_CONFIGS))
def test_sklearn_check_suite(estimator: Any, check: Callable[[Any], None]) -> None:
    check(estimator)


@pytest.mark.parametrize("check", NAMED_SUBSET, ids=lambda c: c.__name__)
@pytest.mark.parametrize("estimator", _estimators(SUBSET_CONFIGS), ids=repr)
def test_sklearn_named_subset(estimator: Any, check: Callable[[str, Any], None]) -> None:
    with insecure_test_parameters():
        check(type(estimator).__name__, clone(estimator))


def test_full_suite_covers_both_estimators_per_config() -> None:
    # Guards the parametrization itself: every configuration yields both estimators.
    ests = _estimators(FULL_SUITE_CONFIGS)
    assert len(ests) == 2 * len(FULL_SUITE_CONFIGS)
    assert {type(e) for e in ests} == {LinearRegression, LogisticRegression}
