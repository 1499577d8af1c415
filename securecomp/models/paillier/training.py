"""The training roles `KeyHolder` and `Aggregator` (federated gradient aggregation); the
data holders' role is `securecomp.models.paillier.holder.Holder`.

This is federated gradient aggregation under packed Paillier (Phong et al., "Privacy-
Preserving Deep Learning via Additively Homomorphic Encryption", IEEE TIFS 2018; Zhang
et al., BatchCrypt, USENIX ATC 2020), not model code written against
`SecureTensor`: holders compute their gradients in plaintext on their own rows; only the
sum crosses to the key holder.

Protocol (one session; every message sealed on its link, `messages.Link`)
--------------------------------------------------------------------------
0. *Setup.* The key holder generates the Paillier key and sends the public key, the shape
   and the quantization to the aggregator and the holders.
1. *Count.* Each holder encrypts its row count (packed); the aggregator adds the
   ciphertexts; the key holder decrypts the total ``n`` only, fixes the schedule
   (``S = ceil(n / batch_size)`` steps per epoch) and sends the initial model to the
   holders and the number of steps to the aggregator.
2. *Step t.* Each holder evaluates the loss gradient at the broadcast model on its batch,
   sums it over its rows, divides by the nominal batch ``n / S``, quantizes (clip, scale,
   unbiased stochastic rounding) and encrypts it in the packed layout with its batch size
   appended, headroom sized for ``n_holders`` summands; the aggregator adds the
   ``n_holders`` ciphertexts; the key holder decrypts only this sum and updates the model
   with `securecomp.models.gd.update` on the schedule of `securecomp.models.gd.schedule`
   (gradient descent, or Nesterov with λ_1 = 1: the schedule of ``backend="plain"``),
   then sends it to the holders (the aggregator never receives models: consecutive
   models reveal the aggregate gradient).
3. After the last step the key holder sends the final model to the holders.

Threat model: semi-honest roles; the aggregator and the key holder do not collude (if they
did, the key holder could decrypt each holder's ciphertext). The aggregator holds only the
public key and sees only ciphertexts; the key holder sees only aggregates of all
``n_holders`` (it refuses a tensor whose slot weight says otherwise, which stops mistakes,
not a malicious aggregator forging metadata). Each holder learns ``n`` and every
broadcast model, hence the aggregate gradient of every step. With ``n_holders == 2`` the
aggregate hides nothing between the holders: each learns the other's row count
(``n`` minus its own) and, every step, the other's exact quantized gradient (the
aggregate minus its own contribution); the key holder warns and each holder's ledger says
so. The step size is a public parameter every role agrees on before the session (the
key holder records it): ``learning_rate="auto"`` computes it from the pooled ``X``, which
no party holds in a deployment, so that is a simulation convenience and a deployment must
agree on the step in advance. Messages are authenticated and bound to their step; a
malicious holder could still send an arbitrary (in-range) gradient (proofs of correct
computation are out of scope).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from securecomp.errors import (
    KeyMismatchError,
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
)
from securecomp.he.paillier import PaillierBackend, PaillierSecretKey, paillier_keygen
from securecomp.he.paillier.serialize import CIPHERTEXT_KIND
from securecomp.models.paillier.aggregation import check_update, decrypt_sum, sum_updates
from securecomp.models.paillier.config import PaillierOptions, warn_two_holders
from securecomp.models.paillier.gradient import ModelIterates, update_config
from securecomp.models.paillier.messages import (
    MODEL_KIND,
    SCHEDULE_KIND,
    SETUP_KIND,
    control,
    read_control,
)
from securecomp.models.paillier.role import AGGREGATOR, KEY_HOLDER, Role, holder_name
from securecomp.models.paillier.session import decode_aggregate, read_setup, steps_per_epoch
from securecomp.models.protocol import TrainingSpec
from securecomp.net.report import LeakageLedger
from securecomp.net.wire import encode_array

__all__ = ["Aggregator", "KeyHolder"]

FloatArray = npt.NDArray[np.float64]


def step_size_disclosure(learning_rate: float) -> str:
    """The ledger entry for the step size: a public parameter, and what "auto" means."""
    return (
        f"the step size learning_rate = {learning_rate:g}, a public parameter every role "
        "agrees on before the session (learning_rate='auto' computes it from the pooled X, "
        "1 / the largest eigenvalue of its Gram matrix over n, which no party holds in a "
        "deployment: a simulation convenience; a deployment agrees on the step in advance)"
    )


class KeyHolder(Role):
    """Holds the Paillier secret key; decrypts only aggregates; owns and updates the model.

    Parameters
    ----------
    spec : TrainingSpec
    options : PaillierOptions
    n_features : int
        Number of features ``d`` (the schema, known to the key holder).
    keys : (PaillierBackend, PaillierSecretKey), optional
        An existing key pair; by default one of ``options.key_bits`` bits is generated.
    ledger : LeakageLedger, optional

    Warns
    -----
    UserWarning
        ``options.n_holders == 2`` (each holder then learns the other's gradients).
    """

    def __init__(
        self,
        spec: TrainingSpec,
        options: PaillierOptions,
        n_features: int,
        *,
        keys: tuple[PaillierBackend, PaillierSecretKey] | None = None,
        ledger: LeakageLedger | None = None,
    ) -> None:
        super().__init__(KEY_HOLDER, ledger)
        if spec.task not in ("linear", "logistic"):
            raise ParameterError(f"task must be 'linear' or 'logistic', got {spec.task!r}")
        if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
            raise ParameterError(f"n_features must be a positive int, got {n_features!r}")
        if keys is None:
            backend, secret = paillier_keygen(options.key_bits)
        else:
            backend, secret = keys
            if secret.public_key != backend.key:
                raise KeyMismatchError("the secret key does not belong to the backend's public key")
        self.backend = backend
        self._secret_key = secret
        self.spec, self.options = spec, options
        self.n_features = n_features
        self.n_params = n_features + int(spec.fit_intercept)
        self.holders = [holder_name(i) for i in range(options.n_holders)]
        warn_two_holders(options.n_holders, stacklevel=2)
        update_config(spec)  # refuse a bad step or penalty now, not at the count
        # Created at the count, when the number of steps per epoch is known.
        self._model: ModelIterates | None = None
        self.n_rows: int | None = None
        self.batches_per_epoch = 1
        self.steps = 0
        self._round = 0
        self.done = False

    @property
    def params(self) -> FloatArray:
        """Current model ``(b, w)`` (``w`` alone without an intercept); zeros before the
        count."""
        if self._model is None:
            return np.zeros(self.n_params)
        return self._model.params

    @property
    def coef(self) -> FloatArray:
        """The feature weights ``w`` of the current model, shape ``(n_features,)``."""
        return self.params[self.n_params - self.n_features :]

    @property
    def intercept(self) -> float:
        """The intercept ``b`` of the current model (0.0 when it is not fitted)."""
        return float(self.params[0]) if self.spec.fit_intercept else 0.0

    def setup_messages(self) -> dict[str, bytes]:
        """Step 0: the public key, shapes and quantization, sealed for each other role."""
        pk = self.backend.key
        o = self.options
        body = {
            "public_key": pk.to_bytes(),
            "task": self.spec.task,
            "n_features": self.n_features,
            "fit_intercept": bool(self.spec.fit_intercept),
            "n_holders": o.n_holders,
            "value_bits": o.value_bits,
            "clip": o.clip,
            "scale_bits": o.scale_bits,
        }
        with self._busy():
            env = control(SETUP_KIND, body, fingerprint=pk.fingerprint, key_id=pk.key_id)
            out = {p: self.link(p).seal(env, round=0) for p in (AGGREGATOR, *self.holders)}
        self.ledger.record(KEY_HOLDER, step_size_disclosure(self.spec.learning_rate), "setup")
        return out

    def _open_aggregate(self, data: bytes, length: int) -> npt.NDArray[np.int64]:
        raw = self.link(AGGREGATOR).open_bytes(data, round=self._round, kind=CIPHERTEXT_KIND)
        tensor = self.backend.from_bytes(raw)
        n = self.options.n_holders
        check_update(
            tensor,
            length=length,
            value_bits=self.options.value_bits,
            n_holders=n,
            weight=n,
            who=AGGREGATOR,
        )
        return decrypt_sum(tensor, self._secret_key, n_holders=n)

    def _models(self, final: bool) -> dict[str, bytes]:
        if self.n_rows is None or self._model is None:
            raise ProtocolAbort("model", "no model before the row count is known")
        params = self._model.params if final else self._model.point
        body = {
            "step": self._round,
            "final": final,
            "n_rows": self.n_rows,
            "batches_per_epoch": self.batches_per_epoch,
            "params": encode_array(np.ascontiguousarray(params, dtype="<f8")),
        }
        env = control(MODEL_KIND, body)
        return {h: self.link(h).seal(env, round=self._round) for h in self.holders}

    def receive_count(self, data: bytes) -> dict[str, bytes]:
        """Step 1: decrypt the total row count; returns the initial model for each holder
        and the schedule for the aggregator."""
        if self.n_rows is not None:
            raise ProtocolAbort("count", "the row count was already received", [AGGREGATOR])
        with self._busy():
            n = int(self._open_aggregate(data, 1)[0])
            if n < len(self.holders):
                raise ProtocolAbort(
                    "count", f"{n} rows for {len(self.holders)} holders", [AGGREGATOR]
                )
            self.n_rows = n
            self.batches_per_epoch = steps_per_epoch(n, self.spec.batch_size)
            self._model = ModelIterates(self.spec, self.n_params, self.batches_per_epoch)
            self.steps = self._model.n_steps
            self.ledger.record(
                KEY_HOLDER,
                f"total number of rows n = {n} (the sum of the {len(self.holders)} holders' "
                "counts, not any single count)",
                "count",
            )
            self._round = 1
            out = self._models(final=False)
            out[AGGREGATOR] = self.link(AGGREGATOR).seal(
                control(SCHEDULE_KIND, {"steps": self.steps}), round=0
            )
            return out

    def receive_aggregate(self, data: bytes) -> dict[str, bytes]:
        """Step t: decrypt the sum, update the model; returns the next (or final) model
        for each holder."""
        if self.n_rows is None or self._model is None or self.done:
            raise ProtocolAbort(
                "step", "no aggregate is expected now (before the count, or after the end)",
                [AGGREGATOR],
            )
        with self._busy():
            t = self._round
            sums = self._open_aggregate(data, self.n_params + 1)
            g_sum, batch = decode_aggregate(
                sums, self.options, self.n_rows / self.batches_per_epoch
            )
            self.ledger.record(
                KEY_HOLDER,
                f"aggregate gradient of step {t}: the sum over the {len(self.holders)} holders "
                f"of their quantized gradients ({self.n_params} values) and the step's total "
                f"batch size ({batch} rows)",
                f"step {t}",
            )
            self._model.apply(g_sum, batch)
            self.done = t == self.steps
            self._round = t + 1
            return self._models(final=self.done)


class Aggregator(Role):
    """Adds the holders' ciphertexts; holds only the public key (never a secret key).

    It sees ciphertexts, their sizes and the public packing metadata, and the number of
    steps; it never receives a model or any plaintext of a holder.
    """

    def __init__(self, ledger: LeakageLedger | None = None) -> None:
        super().__init__(AGGREGATOR, ledger)
        self.backend: PaillierBackend | None = None
        self.holders: list[str] = []
        self.steps: int | None = None
        self._round = 0
        self._length = 0
        self._value_bits = 0

    @property
    def done(self) -> bool:
        """True once the last scheduled step has been aggregated."""
        return self.steps is not None and self._round > self.steps

    def receive_setup(self, data: bytes) -> None:
        """Step 0: keep the public key and the shapes."""
        with self._busy():
            body, pk, options = read_setup(self.link(KEY_HOLDER), data)
            if body["n_features"] < 1:
                raise MalformedMessageError("setup: the model needs at least one feature")
            self.backend = PaillierBackend(pk)
            self.holders = [holder_name(i) for i in range(options.n_holders)]
            self._length = body["n_features"] + int(body["fit_intercept"]) + 1
            self._value_bits = options.value_bits
            self.ledger.record(
                AGGREGATOR,
                "the public key, the numbers of holders and parameters and the quantization "
                "(no data; afterwards only ciphertexts)",
                "setup",
            )

    def receive_schedule(self, data: bytes) -> None:
        """After the count: the number of steps."""
        with self._busy():
            env = self.link(KEY_HOLDER).open(data, round=0, kind=SCHEDULE_KIND)
            steps = read_control(env, SCHEDULE_KIND, {"steps": int})["steps"]
            if self.steps is not None or steps < 1:
                raise ProtocolAbort("schedule", "unexpected or invalid schedule", [KEY_HOLDER])
            self.steps = steps
            self.ledger.record(AGGREGATOR, f"the number of steps ({steps})", "count")

    def aggregate(self, messages: Mapping[str, bytes]) -> bytes:
        """Add one ciphertext per holder (the count, then one update per step).

        Raises
        ------
        ProtocolAbort
            Before setup, after the last step, or a holder missing or unknown.
        KeyMismatchError
            A holder encrypted under another key.
        ReplayError, IntegrityError
            A message of another step, or altered.
        """
        if self.backend is None:
            raise ProtocolAbort("aggregate", "no setup received", [KEY_HOLDER])
        r = self._round
        if r > 0 and (self.steps is None or r > self.steps):
            raise ProtocolAbort("aggregate", f"no aggregation step {r} is scheduled")
        missing = sorted(set(self.holders) - set(messages))
        extra = sorted(set(messages) - set(self.holders))
        if missing or extra:
            raise ProtocolAbort(
                "aggregate",
                f"expected one update from each of {self.holders}: missing {missing}, "
                f"unknown {extra}",
                missing + extra,
            )
        with self._busy():
            length = 1 if r == 0 else self._length
            updates = []
            for name in self.holders:
                raw = self.link(name).open_bytes(messages[name], round=r, kind=CIPHERTEXT_KIND)
                tensor = self.backend.from_bytes(raw)
                updates.append(
                    check_update(
                        tensor,
                        length=length,
                        value_bits=self._value_bits,
                        n_holders=len(self.holders),
                        weight=1,
                        who=name,
                    )
                )
            total = sum_updates(self.backend, updates)
            self._round = r + 1
            return self.link(KEY_HOLDER).seal(total.to_bytes(), round=r)
