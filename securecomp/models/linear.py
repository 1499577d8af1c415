"""Least-squares linear regression trained by gradient descent under a chosen protocol.

The model and optimizer are those of `securecomp.models.plain` (gradient descent or
Nesterov's accelerated gradient, Kim et al. 2018, §Methods); ``backend`` decides who
computes what, in the clear or encrypted (`securecomp.models.protocol`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_array

from securecomp.models.estimator import SecureLinearModel, _input_errors

__all__ = ["LinearRegression"]


class LinearRegression(RegressorMixin, SecureLinearModel):
    """Linear least squares, ``y ≈ X @ coef_ + intercept_``, trained under ``backend``.

    Minimizes ``(1/2n)·||X w + b − y||² + (l2/2)·||w||²`` by gradient descent. The
    protocol named by ``backend`` states its threat model (who holds the key, who learns
    what) in its docstring (``get_protocol(backend).threat_model()``) and in every run's
    leakage ledger (``report_.leakage``).

    Feature scaling is the caller's job: standardize ``X`` (and, for encrypted backends,
    keep ``y`` on a similar scale). ``learning_rate="auto"`` takes the step 1/L with L the
    smoothness constant of the loss on this ``X`` (see `securecomp.models.validation.step_size`),
    which converges for any scaling, but well-conditioned, standardized features need far
    fewer iterations.

    Parameters
    ----------
    backend : str, default "plain"
        A registered protocol: ``"plain"`` (float64 reference), ``"ckks"``, ``"paillier"``,
        or any other installed in the ``securecomp.models.protocols`` entry-point group.
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
    random_state : int or None, default None
        Seed for shuffling rows into mini-batches (never for secrets).
    backend_options : dict or None, default None
        Protocol-specific options, passed as `TrainingSpec.options`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str, present when ``X`` had column names
    report_ : CostReport
        Time, communication and leakage of ``fit``.
    inference_reports_ : deque of CostReport
        Reports of the latest scoring calls (``predict``, ``score``, ``evaluate``).
    last_report_ : CostReport or None
        The latest of those.

    Examples
    --------
    >>> import numpy as np
    >>> from securecomp.models import LinearRegression
    >>> X = np.array([[-1.0], [0.0], [1.0]])
    >>> model = LinearRegression().fit(X, 2 * X[:, 0] + 1)
    >>> np.round(model.predict([[2.0]]), 6)
    array([5.])
    """

    _task = "linear"

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
        self.random_state = random_state
        self.backend_options = backend_options

    def _encode_targets(self, y: NDArray[Any]) -> NDArray[np.float64]:
        with _input_errors():
            return check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")

    def _store_model(self, coef: NDArray[np.float64], intercept: float) -> None:
        self.coef_ = coef
        self.intercept_ = intercept

    def predict(self, X: Any) -> NDArray[np.float64]:
        """Predicted targets, shape (n_samples,), computed as ``backend`` prescribes.

        Raises
        ------
        NotFittedError
            Before ``fit`` (securecomp's, which is also scikit-learn's).
        ShapeMismatchError
            ``X`` has a different number of features than in ``fit``.
        ParameterError
            NaN/inf or otherwise invalid ``X``.
        """
        return self._decision(X, "predict")
