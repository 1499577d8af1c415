"""A user's device in a federated simulation: its data, its update, its personal model.

The device is the only place a user's samples and personal model exist. What it hands to
the outside is exactly one thing per training round: its model update, which goes into
secure aggregation (`securecomp.federated.aggregation`). The personal model
(`securecomp.federated.personalize`) and the samples stay on the device.

Data enter a device through its `FeatureSchema` (GDPR Art. 5(1)(c), data minimisation):
`Device.from_records` validates the raw columns and refuses, before any value is used, a
feature the schema does not declare (`ConsentError`). On a purge of the user's records the
device deletes its data (`Device.erase`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import ConsentError, ParameterError, ShapeMismatchError
from securecomp.federated.local import LocalTraining, ModelKind, local_train, losses, score
from securecomp.federated.schema import FeatureSchema

__all__ = ["Device"]


def _labels(y: ArrayLike, n: int) -> NDArray[np.float64]:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ShapeMismatchError(f"expected {n} labels in a 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ParameterError(f"labels must be numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ParameterError("labels hold NaN or infinity")
    return out


class Device:
    """One user's device: training and test samples, and a personal model that stays here.

    Invariant: after `erase`, the device holds no sample and no personal model, and every
    method that would use them raises `ConsentError`.

    Parameters
    ----------
    pseudonym : the user's pseudonym (the device answers selection with it).
    x, y : training samples (features already validated) and labels.
    x_test, y_test : the user's held-out samples (for the user's own evaluation).
    """

    def __init__(
        self,
        pseudonym: str,
        x: ArrayLike,
        y: ArrayLike,
        x_test: ArrayLike | None = None,
        y_test: ArrayLike | None = None,
    ) -> None:
        if not isinstance(pseudonym, str) or not pseudonym:
            raise ParameterError("a device needs the user's pseudonym (a non-empty string)")
        self.pseudonym = pseudonym
        self._x = self._features(x)
        self._y = _labels(y, self._x.shape[0])
        d = self._x.shape[1]
        xt = np.empty((0, d)) if x_test is None else self._features(x_test)
        if xt.shape[1] != d:
            raise ShapeMismatchError(f"test features have {xt.shape[1]} columns, not {d}")
        self._x_test = xt
        self._y_test = _labels(np.empty(0) if y_test is None else y_test, xt.shape[0])
        self._personal: NDArray[np.float64] | None = None
        self._erased = False

    @staticmethod
    def _features(x: ArrayLike) -> NDArray[np.float64]:
        arr = np.asarray(x)
        if arr.ndim != 2 or arr.dtype.kind not in "biuf":
            raise ShapeMismatchError(
                f"features must be a 2-D array of numbers, got shape {arr.shape}"
            )
        out = arr.astype(np.float64)
        if not np.all(np.isfinite(out)):
            raise ParameterError("features hold NaN or infinity")
        return out

    @classmethod
    def from_records(
        cls,
        pseudonym: str,
        columns: Mapping[str, ArrayLike],
        labels: ArrayLike,
        schema: FeatureSchema,
        *,
        test_fraction: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> Device:
        """A device whose features pass ``schema`` (undeclared features are refused).

        ``test_fraction`` of the rows (shuffled with ``rng``) are kept as held-out data.
        """
        if not isinstance(schema, FeatureSchema):
            raise ParameterError("schema must be a FeatureSchema")
        x = schema.validate(columns)
        y = np.asarray(labels)
        if not 0.0 <= test_fraction < 1.0:
            raise ParameterError(f"test_fraction must lie in [0, 1), got {test_fraction!r}")
        n = x.shape[0]
        order = np.arange(n) if rng is None else rng.permutation(n)
        n_test = round(test_fraction * n)
        test, train = order[:n_test], order[n_test:]
        return cls(pseudonym, x[train], _labels(y, n)[train], x[test], _labels(y, n)[test])

    # --- what the device computes ------------------------------------------------------------

    def _require_data(self) -> None:
        if self._erased:
            raise ConsentError(
                f"the data of {self.pseudonym!r} were erased after withdrawal; "
                "this device no longer takes part"
            )

    @property
    def dim(self) -> int:
        """Number of features."""
        return int(self._x.shape[1])

    @property
    def num_samples(self) -> int:
        """Number of training samples held (0 after `erase`)."""
        return int(self._x.shape[0])

    @property
    def erased(self) -> bool:
        """Whether `erase` ran."""
        return self._erased

    def local_update(
        self, global_params: NDArray[np.float64], spec: LocalTraining
    ) -> NDArray[np.float64]:
        """FedAvg's client step: train from the global model, return ``local - global``.

        The returned update is the only value that leaves the device in a training round.
        """
        self._require_data()
        start = np.asarray(global_params, dtype=np.float64)
        return local_train(start, self._x, self._y, spec) - start

    def personalize(
        self, global_params: NDArray[np.float64], spec: LocalTraining, lam: float
    ) -> None:
        """Fit and keep the personal model (Ditto); see `securecomp.federated.personalize`."""
        from securecomp.federated.personalize import ditto_personal_model

        self._require_data()
        self._personal = ditto_personal_model(global_params, self._x, self._y, spec, lam)

    def fit_local_only(self, spec: LocalTraining) -> NDArray[np.float64]:
        """A model trained on this device's data alone, from zero (the no-federation baseline)."""
        self._require_data()
        return local_train(np.zeros(self.dim + 1), self._x, self._y, spec)

    @property
    def has_personal_model(self) -> bool:
        """Whether `personalize` ran (the model itself is not exposed)."""
        return self._personal is not None

    def score_personal(self, x: ArrayLike) -> NDArray[np.float64]:
        """The personal model's scores of ``x``, computed on the device."""
        self._require_data()
        if self._personal is None:
            raise ParameterError("no personal model yet: call personalize first")
        feats = self._features(x)
        out: NDArray[np.float64] = feats @ self._personal[:-1] + self._personal[-1]
        return out

    def evaluate(
        self, params: NDArray[np.float64] | None, kind: ModelKind = "logistic"
    ) -> float:
        """Accuracy (R^2 for linear) on the user's held-out samples; ``None`` = personal model.

        The user's own measurement, on the device.
        """
        self._require_data()
        model = self._personal if params is None else np.asarray(params, dtype=np.float64)
        if model is None:
            raise ParameterError("no personal model yet: call personalize first")
        return score(model, self._x_test, self._y_test, kind)

    def sample_losses(
        self, params: NDArray[np.float64], kind: ModelKind = "logistic", *, held_out: bool = False
    ) -> NDArray[np.float64]:
        """Per-sample losses of ``params`` on the training (or held-out) samples.

        For privacy-risk evaluation in simulations (`securecomp.federated.membership`).
        """
        self._require_data()
        x, y = (self._x_test, self._y_test) if held_out else (self._x, self._y)
        return losses(np.asarray(params, dtype=np.float64), x, y, kind)

    def test_data(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The user's held-out samples (copies), e.g. to encrypt for encrypted inference."""
        self._require_data()
        return self._x_test.copy(), self._y_test.copy()

    def erase(self) -> None:
        """Delete the samples and the personal model (the user's records were purged)."""
        d = self.dim
        self._x = np.empty((0, d))
        self._y = np.empty(0)
        self._x_test = np.empty((0, d))
        self._y_test = np.empty(0)
        self._personal = None
        self._erased = True

    def __repr__(self) -> str:
        return f"Device({self.pseudonym!r}, samples={self.num_samples}, erased={self._erased})"
