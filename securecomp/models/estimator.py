"""The scikit-learn face shared by `LinearRegression` and `LogisticRegression`.

An estimator validates and encodes the input with `sklearn.utils.validation` (so it passes
`sklearn.utils.estimator_checks`), turns its hyper-parameters into a `TrainingSpec`, and
hands the arithmetic to the `ModelProtocol` registered under ``backend``
(`securecomp.models.protocol`). Everything the protocol reports is kept: the `CostReport`
of ``fit`` as ``report_`` and those of later scoring calls in ``inference_reports_``.

Conventions followed: scikit-learn's developer guide ("Developing scikit-learn
estimators": ``__init__`` only stores its arguments, fitted attributes end in ``_``,
``n_features_in_``, ``__sklearn_is_fitted__``, estimator tags).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import (
    NotFittedError,
    ParameterError,
    SecurecompError,
    ShapeMismatchError,
    UnsupportedOperationError,
)
from securecomp.models.protocol import (
    ModelProtocol,
    ScoreResult,
    TrainingSpec,
    get_protocol,
)
from securecomp.models.validation import (
    build_spec,
    check_fit_result,
    check_score_result,
    step_size,
)
from securecomp.net.report import CostReport

try:
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
    from sklearn.utils.validation import check_array, column_or_1d, validate_data
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(
        "securecomp.models.LinearRegression/LogisticRegression need scikit-learn: "
        "pip install scikit-learn"
    ) from exc

__all__ = ["EstimatorNotFittedError", "SecureLinearModel"]

#: Scoring reports kept per estimator (oldest dropped first): bounded so that a model
#: serving many requests does not grow without limit.
INFERENCE_REPORTS_KEPT = 100


class EstimatorNotFittedError(NotFittedError, _SklearnNotFittedError):
    """An estimator was used before ``fit``.

    Both securecomp's `NotFittedError` and scikit-learn's (which model selection tools and
    `sklearn.utils.estimator_checks` catch); it cannot live in `securecomp.errors`, which
    must not import scikit-learn.
    """


@contextmanager
def _input_errors() -> Iterator[None]:
    """Re-raise scikit-learn's input-validation errors as securecomp errors, same message."""
    try:
        yield
    except SecurecompError:
        raise
    except ValueError as exc:  # NaN/inf, wrong dimensionality, empty data, bad labels
        raise ParameterError(str(exc)) from exc
    except TypeError as exc:  # sparse input, unsupported containers
        raise UnsupportedOperationError(str(exc)) from exc


class SecureLinearModel(BaseEstimator):
    """Fit, score and bookkeeping shared by the linear estimators.

    Subclasses define ``__init__`` (explicit keyword arguments, stored unchanged),
    ``_task``, ``_encode_targets`` and the public prediction methods.

    Invariant: after ``fit``, ``coef_``, ``intercept_``, ``n_iter_``, ``report_``,
    ``n_features_in_`` and ``inference_reports_`` exist and describe one model, and
    ``decision`` scores come from the same protocol instance that trained it.
    """

    _task: str = "linear"

    # Declared for type checkers; set by the subclasses' __init__.
    backend: str
    simulate: bool
    optimizer: str
    learning_rate: float | str
    max_iter: int
    batch_size: int | None
    fit_intercept: bool
    l2: float
    random_state: int | None
    backend_options: Mapping[str, Any] | None

    # --- hooks ---------------------------------------------------------------------------

    def _encode_targets(self, y: NDArray[Any]) -> NDArray[np.float64]:
        """Validated targets as float64 (n,) for the protocol; may set ``classes_``."""
        raise NotImplementedError

    def _sigmoid_params(self) -> dict[str, Any]:
        """Sigmoid hyper-parameters (logistic only); defaults of `TrainingSpec` otherwise."""
        return {}

    def _store_model(self, coef: NDArray[np.float64], intercept: float) -> None:
        raise NotImplementedError

    # --- fitting -------------------------------------------------------------------------

    def _spec(self, learning_rate: float) -> TrainingSpec:
        return build_spec(
            self._task,
            optimizer=self.optimizer,
            learning_rate=learning_rate,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            fit_intercept=self.fit_intercept,
            l2=self.l2,
            random_state=self.random_state,
            options=self.backend_options,
            **self._sigmoid_params(),
        )

    def _protocol_class(self) -> type[ModelProtocol]:
        if not isinstance(self.simulate, bool | np.bool_):
            raise ParameterError(f"simulate must be True or False, got {self.simulate!r}")
        return get_protocol(self.backend)

    def _check_learning_rate(self) -> None:
        lr = self.learning_rate
        if isinstance(lr, str):
            if lr != "auto":
                raise ParameterError(f"learning_rate must be 'auto' or a number > 0, got {lr!r}")
        else:
            build_spec(self._task, learning_rate=lr)  # the number check alone

    def fit(self, X: Any, y: Any) -> SecureLinearModel:
        """Train on ``X`` (n_samples, n_features) and ``y`` (n_samples,) with ``backend``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers; standardize them first (e.g. `sklearn.preprocessing.StandardScaler`):
            encrypted backends approximate on a bounded range.
        y : array-like of shape (n_samples,)

        Returns
        -------
        self

        Raises
        ------
        ParameterError
            A bad hyper-parameter, an unknown backend (the message lists the installed
            ones), NaN/inf or empty input, or labels the model cannot fit.
        ShapeMismatchError
            ``X`` and ``y`` have different numbers of rows.
        """
        for attr in ("_fit_result", "_protocol"):
            self.__dict__.pop(attr, None)  # a failed refit must not leave the old model
        # Hyper-parameters first: cheap, and independent of the data.
        self._check_learning_rate()
        self._spec(1.0)
        protocol_cls = self._protocol_class()

        if y is None:
            raise ParameterError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        with _input_errors():
            X_arr = validate_data(self, X, reset=True, dtype=np.float64)
            y_arr = column_or_1d(y, warn=True)
        if y_arr.shape[0] != X_arr.shape[0]:
            raise ShapeMismatchError(
                f"X has {X_arr.shape[0]} rows but y has {y_arr.shape[0]}; pass one label per row"
            )
        target = self._encode_targets(y_arr)

        lr_auto = self.learning_rate == "auto"
        if lr_auto:
            lr = step_size(
                X_arr, task=self._task, fit_intercept=bool(self.fit_intercept), l2=float(self.l2)
            )
        else:
            lr = float(self.learning_rate)
        protocol = protocol_cls(self._spec(lr), simulate=bool(self.simulate))
        result = check_fit_result(protocol.fit(X_arr, target), X_arr.shape[1], self.backend)
        # The step is a scalar function of X (its largest Gram eigenvalue): state it, since
        # an encrypted protocol hands it to whoever runs the optimizer.
        result.report.metrics.setdefault("learning_rate", lr)
        result.report.metrics["learning_rate_rule"] = "auto: 1/L from X" if lr_auto else "given"

        self._protocol = protocol
        self._fit_result = result
        if result.revealed:
            self._store_model(np.asarray(result.coef, dtype=np.float64), float(result.intercept))
        else:  # the model stays hidden (e.g. secret-shared): no coef_ until a release
            for attr in ("coef_", "intercept_"):
                self.__dict__.pop(attr, None)
        self.n_iter_ = int(result.n_iter)
        self.report_: CostReport = result.report
        self.inference_reports_: deque[CostReport] = deque(maxlen=INFERENCE_REPORTS_KEPT)
        return self

    # --- scoring -------------------------------------------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        return "_fit_result" in self.__dict__

    def _check_fitted(self, method: str) -> None:
        if not self.__sklearn_is_fitted__():
            raise EstimatorNotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call fit(X, y) "
                f"before {method}"
            )

    def _validate_rows(self, X: Any) -> NDArray[np.float64]:
        with _input_errors():
            X_arr = check_array(X, dtype=np.float64, input_name="X")
        if X_arr.shape[1] != self.n_features_in_:
            raise ShapeMismatchError(
                f"X has {X_arr.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input; pass the columns used in fit"
            )
        with _input_errors():
            # Feature names only (the array is already checked): warns or raises on a
            # DataFrame whose columns differ from those seen in fit.
            validate_data(self, X, reset=False, skip_check_array=True)
        return X_arr

    def _decision(self, X: Any, method: str) -> NDArray[np.float64]:
        """Scores of ``X`` from the protocol (logits or regression outputs)."""
        return np.asarray(self._evaluate(X, method).scores, dtype=np.float64)

    def _evaluate(self, X: Any, method: str) -> ScoreResult:
        self._check_fitted(method)
        X_arr = self._validate_rows(X)
        result = self._protocol.decision_function(self._fit_result, X_arr)
        scores = check_score_result(result, X_arr.shape[0], self.backend)
        self.inference_reports_.append(result.report)
        return ScoreResult(scores=scores, report=result.report)

    def evaluate(self, X: Any) -> ScoreResult:
        """Scores of ``X`` together with the `CostReport` of computing them.

        The scores are the regression outputs or the logits, as the backend's protocol
        delivers them to the party holding the result; the report is also appended to
        ``inference_reports_`` (as it is by ``predict`` and the other scoring methods).
        """
        return self._evaluate(X, "evaluate")

    @property
    def last_report_(self) -> CostReport | None:
        """The `CostReport` of the latest predict/score call (None before the first)."""
        self._check_fitted("last_report_")
        return self.inference_reports_[-1] if self.inference_reports_ else None

    # --- protocol passthroughs -----------------------------------------------------------

    def plan(self, X_shape: tuple[int, int]) -> Mapping[str, Any]:
        """What training on data of ``X_shape`` would cost under ``backend``.

        Delegates to the protocol's ``plan`` (parameters, depth, refreshes, key and
        ciphertext sizes, estimated time for the encrypted backends). No data is needed:
        with ``learning_rate="auto"`` the step is not known yet, and does not affect the plan.
        """
        self._check_learning_rate()
        lr = 1.0 if self.learning_rate == "auto" else float(self.learning_rate)
        return self._protocol_class()(self._spec(lr), simulate=bool(self.simulate)).plan(X_shape)

    def release(self, **kwargs: Any) -> Any:
        """Release the trained model as the backend's protocol prescribes (e.g. CKKS ``s=``).

        Calls ``release(fitted, **kwargs)`` on the protocol instance that trained the model,
        where ``fitted`` is its `FitResult`, and returns what it returns. The estimator's own
        ``coef_`` (the key holder's decryption) is left unchanged.

        Raises
        ------
        ParameterError
            The backend has no release step (its model is already in the clear).
        """
        self._check_fitted("release")
        release = getattr(self._protocol, "release", None)
        if release is None or not callable(release):
            raise ParameterError(
                f"backend {self.backend!r} has no release step: the model it trains is "
                "already held in plaintext by the data owner (coef_, intercept_)"
            )
        return release(self._fit_result, **kwargs)
