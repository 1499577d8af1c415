"""The data holders' role of Paillier training: `Holder`.

A holder keeps its horizontal partition ``(X_i, y_i)``; at every step it evaluates the
loss gradient at the model the key holder broadcasts, on its batch, in plaintext, and
sends only the quantized gradient encrypted in the packed layout (the protocol and its
threat model are in `securecomp.models.paillier.training`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from securecomp.errors import (
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ShapeMismatchError,
)
from securecomp.he.paillier import PaillierBackend
from securecomp.models.paillier.aggregation import encrypt_update
from securecomp.models.paillier.config import TWO_HOLDERS_DISCLOSURE, PaillierOptions
from securecomp.models.paillier.gradient import quantize_signed, row_gradient_sum
from securecomp.models.paillier.messages import MODEL_KIND, read_control
from securecomp.models.paillier.role import AGGREGATOR, KEY_HOLDER, Role, holder_name
from securecomp.models.paillier.session import MODEL_FIELDS, float_vector, read_setup
from securecomp.net.report import LeakageLedger

__all__ = ["Holder"]

FloatArray = npt.NDArray[np.float64]


def _check_data(X: object, y: object) -> tuple[FloatArray, FloatArray]:
    Xa = np.array(X, dtype=np.float64)
    ya = np.array(y, dtype=np.float64)
    if Xa.ndim != 2 or ya.ndim != 1 or Xa.shape[0] != ya.shape[0] or Xa.shape[0] == 0:
        raise ShapeMismatchError(
            f"a holder needs X of shape (n, d) and y of shape (n,) with n >= 1, got "
            f"{Xa.shape} and {ya.shape}"
        )
    if not (np.isfinite(Xa).all() and np.isfinite(ya).all()):
        raise ParameterError("a holder's X and y must be finite (no NaN or inf)")
    return Xa, ya


class Holder(Role):
    """Holds a horizontal partition ``(X_i, y_i)``; sends only encrypted, quantized gradients.

    Parameters
    ----------
    index : int
        Holder number (its role name is ``holder_<index>``).
    X, y : array_like
        Its rows (copied).
    rng : numpy.random.Generator
        Batch shuffling and stochastic rounding (no secret depends on it).
    ledger : LeakageLedger, optional
    """

    def __init__(
        self,
        index: int,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        rng: np.random.Generator,
        ledger: LeakageLedger | None = None,
    ) -> None:
        super().__init__(holder_name(index), ledger)
        if not isinstance(rng, np.random.Generator):
            raise ParameterError("rng must be a numpy.random.Generator")
        self.index = index
        self._X, self._y = _check_data(X, y)
        self._rng = rng
        self.backend: PaillierBackend | None = None
        self.options: PaillierOptions | None = None
        self.task = "linear"
        self.fit_intercept = True
        self.n_rows = 0
        self.batches_per_epoch = 1
        self._batches: list[npt.NDArray[np.intp]] = []
        self._round = 0
        self.n_clipped = 0
        self.final_params: FloatArray | None = None

    @property
    def n_local(self) -> int:
        """Number of rows this holder holds."""
        return int(self._X.shape[0])

    def configure(
        self, *, task: str, n_features: int, fit_intercept: bool, options: PaillierOptions
    ) -> None:
        """Agree on the task, shape and quantization (from the setup message)."""
        if task not in ("linear", "logistic"):
            raise MalformedMessageError(f"unknown task {task!r}")
        if self._X.shape[1] != n_features:
            raise ShapeMismatchError(
                f"{self.name} holds {self._X.shape[1]} features, the model has {n_features}"
            )
        if task == "logistic" and not np.isin(self._y, (0.0, 1.0)).all():
            raise ParameterError(f"{self.name}: logistic labels must be 0 or 1")
        self.task, self.fit_intercept, self.options = task, fit_intercept, options

    def schedule(self, n_rows: int, batches_per_epoch: int) -> None:
        """The total row count and the number of batches per epoch."""
        if n_rows < self.n_local or batches_per_epoch < 1:
            raise MalformedMessageError(
                f"invalid schedule: n = {n_rows} rows, {batches_per_epoch} batches per epoch"
            )
        self.n_rows, self.batches_per_epoch = n_rows, batches_per_epoch

    def quantized_update(self, theta: FloatArray, step: int) -> npt.NDArray[np.int64]:
        """The integers this holder encrypts at ``step``: quantized gradient, batch size."""
        if self.options is None or not self.n_rows:
            raise ProtocolAbort("update", f"{self.name} has no setup or schedule yet")
        s = self.batches_per_epoch
        if s == 1:
            rows: npt.NDArray[np.intp] | slice = slice(None)
            count = self.n_local
        else:
            k = (step - 1) % s
            if k == 0 or not self._batches:
                self._batches = np.array_split(self._rng.permutation(self.n_local), s)
            rows = self._batches[k]
            count = len(rows)
        grad = row_gradient_sum(
            self.task, self._X[rows], self._y[rows], theta, self.fit_intercept
        ) / (self.n_rows / s)
        ints, clipped = quantize_signed(grad, self.options.quantization, self._rng)
        self.n_clipped += clipped
        return np.append(ints, np.int64(count))

    def _encrypt(self, ints: npt.NDArray[np.int64], round_: int) -> bytes:
        if self.backend is None or self.options is None:
            raise ProtocolAbort("update", f"{self.name} has no public key yet")
        tensor = encrypt_update(
            self.backend,
            ints,
            n_holders=self.options.n_holders,
            value_bits=self.options.value_bits,
        )
        return self.link(AGGREGATOR).seal(tensor.to_bytes(), round=round_)

    def receive_setup(self, data: bytes) -> bytes:
        """Step 0 -> 1: configure from the setup; returns the encrypted row count."""
        with self._busy():
            body, pk, options = read_setup(self.link(KEY_HOLDER), data)
            self.configure(
                task=body["task"],
                n_features=body["n_features"],
                fit_intercept=body["fit_intercept"],
                options=options,
            )
            self.backend = PaillierBackend(pk)
            return self._encrypt(np.array([self.n_local], dtype=np.int64), 0)

    def receive_model(self, data: bytes) -> bytes | None:
        """Step t: returns the encrypted update at the broadcast model, or None when the
        message carries the final model (kept in `final_params`)."""
        if self.options is None:
            raise ProtocolAbort("model", f"{self.name} received a model before the setup")
        with self._busy():
            r = self._round + 1
            env = self.link(KEY_HOLDER).open(data, round=r, kind=MODEL_KIND)
            body = read_control(env, MODEL_KIND, MODEL_FIELDS)
            n_params = self._X.shape[1] + int(self.fit_intercept)
            params = float_vector(body["params"], n_params, "the model")
            if body["step"] != r:
                raise MalformedMessageError(f"model message for step {body['step']}, expected {r}")
            two = self.options.n_holders == 2
            if r == 1:
                self.schedule(body["n_rows"], body["batches_per_epoch"])
                what = f"total number of rows n = {self.n_rows}"
                if two:
                    what += f"; {TWO_HOLDERS_DISCLOSURE}"
                self.ledger.record(self.name, what, "count")
            else:
                # Consecutive models and the public step size give the aggregate; with two
                # holders, minus this holder's own update, the other holder's gradient.
                other = "; with 2 holders, the other holder's quantized gradient" if two else ""
                self.ledger.record(
                    self.name,
                    f"the model after step {r - 1}, which with the previous one determines "
                    f"the aggregate gradient of step {r - 1}{other}",
                    f"step {r}",
                )
            self._round = r
            if body["final"]:
                self.final_params = params
                return None
            return self._encrypt(self.quantized_update(params, r), r)
