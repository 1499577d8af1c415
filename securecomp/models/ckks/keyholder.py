"""The data owner and key holder of CKKS training: secret key, data, refreshes, the model.

The key holder encrypts its column-packed mini-batches for the server, answers the
server's refresh requests (decrypt the gradient sum, range-check it, update w and v in
float64, re-encrypt the next look-ahead weights replicated over the rows), and keeps the
decrypted model. It sends and receives bytes only (`securecomp.models.ckks.messages`).

Checks made at every refresh (`RefreshChecks`), on the key holder's own plaintext data:

* **logits**: ``Z v`` for the weights about to be encrypted; rows with ``|z| > B`` are
  outside the polynomial sigmoid's interval: counted for the report, or refused with
  `EncodingOverflowError` when ``out_of_range="raise"``;
* **predicted magnitude**: the next gradient sum is at most ``|Z|ᵀ |f(Z v) - y|`` per
  column; above the decryptable range of its level it would wrap, so the step is refused
  before it runs;
* **range of the decryption**: a decrypted gradient sum beyond that bound (plus a 1%
  slack for the CKKS error) means a wrapped or corrupted ciphertext: refused.

These cost one ``n x d`` product in float64 per step, negligible beside the encrypted step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    MalformedMessageError,
    NotFittedError,
    ProtocolAbort,
)
from securecomp.he.ckks import ELEMENT, VECTOR, CKKSBackend, CKKSContext
from securecomp.models.approx import LogitRange, logits_out_of_range
from securecomp.models.ckks import messages as msg
from securecomp.models.ckks.bounds import StepInputs
from securecomp.models.ckks.server import load_public_context
from securecomp.models.gd import GDConfig, RefreshingOptimizer, Step
from securecomp.params import CKKSParameters
from securecomp.tensor import SecureTensor

__all__ = ["KeyHolder", "RefreshChecks"]

PlainBatch = tuple[NDArray[np.float64], NDArray[np.float64], int]

#: Relative slack on a decrypted gradient sum before it counts as out of range (the CKKS
#: error is about 1e-6 relative here; a wrap-around is off by the whole decryptable range).
_RANGE_SLACK = 0.01


@dataclass
class RefreshChecks:
    """The key holder's per-step checks (see the module docstring).

    Attributes
    ----------
    batches : list of (Z, y, rows)
        The key holder's plaintext batches (padded as encrypted).
    cfg : GDConfig
    capacity : float
        Largest magnitude the gradient sum decrypts without wrapping.
    out_of_range : {"warn", "raise"}
    """

    batches: list[PlainBatch]
    cfg: GDConfig
    capacity: float
    out_of_range: Literal["warn", "raise"] = "warn"
    logits: list[LogitRange] = field(default_factory=list)
    bounds: dict[int, NDArray[np.float64]] = field(default_factory=dict)
    inputs: dict[int, StepInputs] = field(default_factory=dict)
    max_gradient: float = 0.0

    def _link(self, z: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.cfg.task == "logistic" and self.cfg.sigmoid is not None:
            return self.cfg.sigmoid(z)
        return z

    def on_weights(self, v: NDArray[np.float64], step: Step) -> None:
        """Before ``v`` is encrypted for ``step``: logits and the predicted magnitude."""
        Z, y, rows = self.batches[step.batch]
        z = Z[:rows] @ v
        if self.cfg.task == "logistic" and self.cfg.sigmoid is not None:
            rng = logits_out_of_range(z, self.cfg.sigmoid.interval)
            self.logits.append(rng)
            if not rng.ok and self.out_of_range == "raise":
                raise EncodingOverflowError(
                    f"before step {step.index + 1}: {rng.fraction:.1%} of rows ({rng.count} of "
                    f"{rng.total}) have logits outside the polynomial sigmoid's interval "
                    f"[-{rng.interval:g}, {rng.interval:g}] (largest |logit| "
                    f"{rng.max_abs:.3g}); widen sigmoid_interval, lower the learning rate or "
                    "add l2 regularization (or pass out_of_range='warn')"
                )
        fz = self._link(z)
        r = fz - y[:rows]
        # Kept to bound the decryption errors of this step (for a later release).
        self.inputs[step.index] = StepInputs(Z[:rows], y[:rows], v.copy(), Z.shape[0])
        bound = np.abs(Z[:rows]).T @ np.abs(r)
        peak = float(np.max(bound)) if bound.size else 0.0
        if not np.isfinite(peak) or peak >= self.capacity:
            raise EncodingOverflowError(
                f"the gradient sum of step {step.index + 1} could reach {peak:.3g}, beyond "
                f"{self.capacity:.3g}, the largest value its ciphertext decrypts without "
                "wrapping; the logits have left the planned range: lower the learning rate, "
                "narrow the mini-batches, or plan a larger first prime"
            )
        self.bounds[step.index] = bound

    def check(self, g: NDArray[np.float64], step: Step) -> None:
        """A decrypted gradient sum must lie within the bound computed for its step."""
        bound = self.bounds.pop(step.index, None)
        if bound is None:
            raise ProtocolAbort(
                "refresh", f"a gradient for step {step.index + 1} arrived before its weights"
            )
        if not np.all(np.isfinite(g)):
            raise EncodingOverflowError(f"the gradient sum of step {step.index + 1} is not finite")
        excess = np.abs(g) - (bound * (1.0 + _RANGE_SLACK) + 1e-3)
        if np.any(excess > 0):
            j = int(np.argmax(excess))
            raise EncodingOverflowError(
                f"decrypted gradient sum of step {step.index + 1} is outside its range "
                f"(column {j}: {g[j]:.6g}, bound {bound[j]:.6g}): the ciphertext wrapped "
                "around or was altered; nothing was updated. Check the parameters (plan) "
                "and the integrity of the channel"
            )
        self.max_gradient = max(self.max_gradient, float(np.max(np.abs(g))))

    def worst_logits(self) -> LogitRange | None:
        """The step with the largest fraction of logits outside the interval, if any."""
        outside = [r for r in self.logits if not r.ok]
        return max(outside, key=lambda r: (r.fraction, r.max_abs)) if outside else None

    def warn_if_outside(self) -> None:
        """One warning for the whole run (fraction of rows at the worst step)."""
        worst = self.worst_logits()
        if worst is None:
            return
        n_steps = sum(1 for r in self.logits if not r.ok)
        warnings.warn(
            f"logits outside the polynomial sigmoid's interval [-{worst.interval:g}, "
            f"{worst.interval:g}] at {n_steps} of {len(self.logits)} steps; at worst "
            f"{worst.fraction:.1%} of rows ({worst.count} of {worst.total}, largest |logit| "
            f"{worst.max_abs:.3g}). There the polynomial diverges from the sigmoid: widen "
            "sigmoid_interval or lower the learning rate if accuracy suffers",
            RuntimeWarning,
            stacklevel=3,
        )


class KeyHolder:
    """Data owner and key holder: the only role with the secret key.

    Invariant: nothing the key holder sends contains its secret key or a plaintext value;
    it sends the public context, ciphertexts, and message headers (step numbers, shapes).

    Parameters
    ----------
    context : CKKSContext
        A secret context (with Galois keys: the server's slot sums need them).
    """

    role = "key holder"

    def __init__(self, context: CKKSContext) -> None:
        if not isinstance(context, CKKSContext) or not context.is_private:
            raise KeyMismatchError("the key holder needs a secret CKKSContext")
        self.context = context
        self.backend = CKKSBackend(context)
        self._optimizer: RefreshingOptimizer | None = None
        self._checks: RefreshChecks | None = None
        self._schedule: list[Step] = []
        self._done: set[int] = set()
        self._final: NDArray[np.float64] | None = None

    @classmethod
    def generate(cls, params: CKKSParameters) -> KeyHolder:
        """A key holder with a fresh key (Galois keys included, for the server's sums)."""
        return cls(CKKSContext.generate(params, galois_keys=True))

    @property
    def params(self) -> CKKSParameters:
        return self.context.params

    def public_context(self) -> bytes:
        """The public context for the server (with Galois keys, never the secret key)."""
        return self.context.to_bytes(galois_keys=True)

    # --- training --------------------------------------------------------------------------

    def begin_fit(
        self,
        batches: list[PlainBatch],
        cfg: GDConfig,
        checks: RefreshChecks,
        schedule: list[Step],
        *,
        refresh: Literal["auto", "never"] = "auto",
    ) -> bytes:
        """Encrypt the batches and return the ``ckks.fit.data`` message for the server.

        With ``refresh="never"`` the message also carries w = v = 0 encrypted one value per
        ciphertext (``element`` layout): the server then runs every step on its own and
        returns the final weights (``ckks.fit.result``).
        """
        width = batches[0][0].shape[1]
        self._checks = checks
        self._schedule = list(schedule)
        self._done = set()
        self._final = None
        state = None
        if refresh == "never":
            zero = self.backend.encrypt(np.zeros(width), layout=ELEMENT).to_bytes()
            state = {"w": zero, "v": zero}
        self._optimizer = RefreshingOptimizer(
            width=width,
            cfg=cfg,
            encrypt=self.backend.encrypt,
            decrypt=lambda t: t.decrypt(self.context),
            check=checks.check,
            on_weights=checks.on_weights,
        )
        wire = [
            {
                "X": self.backend.encrypt(Z).to_bytes(),
                "y": self.backend.encrypt(y, layout=VECTOR).to_bytes(),
                "rows": rows,
            }
            for Z, y, rows in batches
        ]
        return msg.pack(msg.FIT_DATA, config=msg.config_to_wire(cfg), batches=wire, state=state)

    def _expect(self, raw: object) -> Step:
        step = msg.step_from_wire(raw)
        if step.index >= len(self._schedule) or self._schedule[step.index] != step:
            raise ProtocolAbort(
                "refresh",
                f"the server asked about step {step.index + 1} as {step}, which is not the "
                "agreed schedule",
                culprits=("server",),
            )
        return step

    def _weights(self, step: Step) -> bytes:
        if self._optimizer is None:
            raise NotFittedError("no training in progress")
        tensor = self._optimizer.forward_weights(step)
        return msg.pack(msg.FIT_WEIGHTS, step=step.index, tensor=tensor.to_bytes())

    def handle(self, data: bytes) -> bytes:
        """Answer one message from the server (weights request or gradient sum)."""
        if self._optimizer is None:
            raise NotFittedError("the key holder has no training in progress; call begin_fit")
        kind = msg.kind_of(data)
        if kind == msg.FIT_WEIGHTS_REQUEST:
            m = msg.unpack(data, kind, {"step": dict})
            return self._weights(self._expect(m["step"]))
        if kind == msg.FIT_GRADIENT:
            m = msg.unpack(data, kind, {"step": dict, "tensor": bytes, "next": (dict, type(None))})
            step = self._expect(m["step"])
            if step.index in self._done:
                raise ProtocolAbort("refresh", f"step {step.index + 1} sent twice", ("server",))
            g = self.backend.from_bytes(m["tensor"])  # KeyMismatchError under another key
            self._optimizer.apply(g, step)
            self._done.add(step.index)
            if m["next"] is None:
                return msg.pack(msg.FIT_ACK, step=step.index)
            return self._weights(self._expect(m["next"]))
        if kind == msg.FIT_RESULT:
            m = msg.unpack(data, kind, {"tensor": bytes})
            self._finish(self.backend.from_bytes(m["tensor"]))
            return msg.pack(msg.FIT_ACK, step=len(self._schedule) - 1)
        raise MalformedMessageError(f"the key holder does not answer {kind!r} messages")

    def _finish(self, tensor: SecureTensor) -> None:
        """Decrypt the final weights of a run without refreshes (range and logits checked)."""
        checks = self.checks
        w = np.asarray(tensor.decrypt(self.context), dtype=np.float64).reshape(-1)
        width = checks.batches[0][0].shape[1]
        if w.shape != (width,) or not np.all(np.isfinite(w)):
            raise EncodingOverflowError(f"final weights of shape {w.shape} or not finite")
        if float(np.max(np.abs(w))) >= checks.capacity:
            raise EncodingOverflowError(
                f"final weights reach {float(np.max(np.abs(w))):.3g}, at the decryptable "
                f"limit {checks.capacity:.3g}: they wrapped around; lower the learning rate"
            )
        if checks.cfg.task == "logistic" and checks.cfg.sigmoid is not None:
            for Z, _, rows in checks.batches:
                checks.logits.append(logits_out_of_range(Z[:rows] @ w, checks.cfg.sigmoid.interval))
        self._final = w
        self._done = {s.index for s in self._schedule}

    @property
    def refreshes(self) -> int:
        return 0 if self._optimizer is None else self._optimizer.refreshes

    @property
    def checks(self) -> RefreshChecks:
        if self._checks is None:
            raise NotFittedError("no training has started")
        return self._checks

    def weights(self) -> NDArray[np.float64]:
        """The decrypted model w (the key holder keeps it; it never leaves unflooded)."""
        if self._final is not None:
            return self._final.copy()
        if self._optimizer is None or len(self._done) != len(self._schedule):
            raise NotFittedError("training has not finished")
        return self._optimizer.w.copy()

    # --- inference -------------------------------------------------------------------------

    def model_for_client(
        self, client_context: bytes, coef: NDArray[np.float64], intercept: float
    ) -> bytes:
        """The model encrypted under an inference client's public key, for the server.

        The weights are replicated over the ``N/2`` rows of a query block, so the server
        scores a block with one elementwise product and a sum across columns (one level,
        no rotation). Only the client can decrypt what the server computes with it.
        """
        ctx = load_public_context(client_context)
        be = CKKSBackend(ctx)
        w = np.asarray(coef, dtype=np.float64).reshape(-1)
        slots = ctx.params.slot_count
        W = np.ascontiguousarray(np.broadcast_to(w, (slots, w.size)))
        b = np.full(slots, float(intercept))
        return msg.pack(
            msg.INFER_MODEL,
            client=ctx.key_id.hex(),
            W=be.encrypt(W).to_bytes(),
            b=be.encrypt(b, layout=VECTOR).to_bytes(),
        )
