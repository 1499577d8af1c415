"""Binary logistic regression trained by gradient descent under a chosen protocol.

The model and optimizer are those of `securecomp.models.plain` (gradient descent or
Nesterov's accelerated gradient, Kim et al. 2018, §Methods); encrypted backends replace
the sigmoid by a least-squares polynomial of degree ``sigmoid_degree`` on
``[-sigmoid_interval, sigmoid_interval]`` (Kim et al. 2018; Han et al. 2019).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array

from securecomp.errors import ParameterError
from securecomp.models.estimator import SecureLinearModel, _input_errors
from securecomp.models.plain import sigmoid

__all__ = ["LogisticRegression"]


class LogisticRegression(ClassifierMixin, SecureLinearModel):
    """Binary logistic regression, ``P(classes_[1] | x) = σ(x @ coef_ + intercept_)``.

    Minimizes the mean logistic loss plus ``(l2/2)·||w||²`` by gradient descent, with the
    two classes (sorted, as ``classes_``) mapped to 0 and 1. The protocol named by
    ``backend`` states its threat model in its docstring
    (``get_protocol(backend).threat_model()``) and in every run's leakage ledger
    (``report_.leakage``). Multiclass targets are refused.

    Feature scaling is the caller's job: standardize ``X``. Encrypted backends evaluate a
    polynomial sigmoid that is accurate only on ``[-sigmoid_interval, sigmoid_interval]``;
    standardized features keep the logits there. ``learning_rate="auto"`` takes the step
    1/L with L the smoothness constant of the loss on this ``X``
    (`securecomp.models.validation.step_size`).

    Parameters
    ----------
    backend : str, default "plain"
        A registered protocol: ``"plain"`` (float64 reference, exact sigmoid), ``"ckks"``,
        ``"paillier"``, or any other installed in the ``securecomp.models.protocols``
        entry-point group.
    simulate : bool, default False
        Run the backend's plaintext simulation of its encrypted arithmetic instead.
    optimizer : {"nesterov", "gd"}, default "nesterov"
    learning_rate : "auto" or float > 0, default "auto"
    max_iter : int, default 100
        Epochs (passes over the data); there is no early stop, as under encryption.
    batch_size : int or None, default None
        Mini-batch size; None is full-batch gradient descent.
    fit_intercept : bool, default True
    l2 : float, default 0.0
        Ridge penalty on the coefficients (not the intercept).
    sigmoid_degree : int, default 5
        Degree of the polynomial sigmoid of encrypted backends (ignored by ``"plain"``).
    sigmoid_interval : float, default 8.0
        Half-width B of the interval [-B, B] the polynomial is fitted on.
    out_of_range : {"warn", "raise"}, default "warn"
        What an encrypted backend does when logits leave [-B, B].
    random_state : int or None, default None
        Seed for shuffling rows into mini-batches (never for secrets).
    backend_options : dict or None, default None
        Protocol-specific options, passed as `TrainingSpec.options`.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str, present when ``X`` had column names
    report_ : CostReport
        Time, communication and leakage of ``fit``.
    inference_reports_ : deque of CostReport
        Reports of the latest scoring calls.
    last_report_ : CostReport or None
        The latest of those.
    """

    _task = "logistic"

    def __init__(
        self,
        *,
        backend: str = "plain",
        simulate: bool = False,
        optimizer: str = "nesterov",
        learning_rate: float | str = "auto",
        max_iter: int = 100,
        batch_size: int | None = None,
        fit_intercept: bool = True,
        l2: float = 0.0,
        sigmoid_degree: int = 5,
        sigmoid_interval: float = 8.0,
        out_of_range: str = "warn",
        random_state: int | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.simulate = simulate
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.fit_intercept = fit_intercept
        self.l2 = l2
        self.sigmoid_degree = sigmoid_degree
        self.sigmoid_interval = sigmoid_interval
        self.out_of_range = out_of_range
        self.random_state = random_state
        self.backend_options = backend_options

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _sigmoid_params(self) -> dict[str, Any]:
        return {
            "sigmoid_degree": self.sigmoid_degree,
            "sigmoid_interval": self.sigmoid_interval,
            "out_of_range": self.out_of_range,
        }

    def _encode_targets(self, y: NDArray[Any]) -> NDArray[np.float64]:
        with _input_errors():
            # NaN/inf first: type_of_target would otherwise cast them while classifying.
            y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
            check_classification_targets(y)  # refuses continuous targets
            y_type = type_of_target(y, input_name="y")
        if y_type != "binary":
            raise ParameterError(
                f"Only binary classification is supported. The type of the target is "
                f"{y_type}; train one model per class (one-vs-rest) for more classes"
            )
        classes = np.unique(y)
        if classes.shape[0] != 2:
            raise ParameterError(
                f"{type(self).__name__} needs samples of two classes, but y contains only "
                f"one class ({classes[0]!r})"
            )
        self.classes_ = classes
        return (y == classes[1]).astype(np.float64)

    def _store_model(self, coef: NDArray[np.float64], intercept: float) -> None:
        # scikit-learn's shapes for a binary linear classifier.
        self.coef_ = coef.reshape(1, -1)
        self.intercept_ = np.array([intercept])

    def decision_function(self, X: Any) -> NDArray[np.float64]:
        """Logits ``X @ coef_ + intercept_``, shape (n_samples,); > 0 means ``classes_[1]``.

        Raises
        ------
        NotFittedError
            Before ``fit`` (securecomp's, which is also scikit-learn's).
        ShapeMismatchError
            ``X`` has a different number of features than in ``fit``.
        ParameterError
            NaN/inf or otherwise invalid ``X``.
        """
        return self._decision(X, "decision_function")

    def predict(self, X: Any) -> NDArray[Any]:
        """Predicted class labels (values of ``classes_``), shape (n_samples,)."""
        logits = self._decision(X, "predict")
        return self.classes_[(logits > 0).astype(np.intp)]

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Probabilities of ``classes_``, shape (n_samples, 2), through the exact sigmoid.

        The logits come from the backend; the party holding them applies the exact
        sigmoid locally.
        """
        logits = self._decision(X, "predict_proba")
        # σ(−z) rather than 1 − σ(z): no cancellation for large z.
        return np.column_stack([sigmoid(-logits), sigmoid(logits)])

    def predict_log_proba(self, X: Any) -> NDArray[np.float64]:
        """Log-probabilities of ``classes_``, shape (n_samples, 2), without log(0)."""
        logits = self._decision(X, "predict_log_proba")
        # log σ(z) = −log(1 + e^{−z}), finite for every finite z.
        return np.column_stack([-np.logaddexp(0.0, logits), -np.logaddexp(0.0, -logits)])
