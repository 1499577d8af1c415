"""The untrusted server of CKKS training and inference: public context only.

The server trains on the key holder's column-packed ciphertexts with the generic algorithm
(`securecomp.models.gd.train`): forward pass, polynomial sigmoid and gradient sums are
computed on ciphertexts; when a step has used the chain (one step per chain, see
`securecomp.models.ckks.plan`) it hands the encrypted gradient sum to the key holder and
receives fresh look-ahead weights (`RemoteOptimizer`). For inference it evaluates clients'
encrypted features with a model encrypted under the client's key, or with a released
(plaintext, noise-flooded) model, and returns encrypted scores.

What it holds: public contexts (``is_private`` is False, checked at load), ciphertexts,
message headers. What it learns: shapes (rows, padded rows, features), the public training
configuration (task, optimizer, step size, epochs, sigmoid polynomial), the number of steps
and the levels of ciphertexts; nothing about values under RLWE (IND-CPA), as long as the
key holder releases nothing but flooded values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import (
    KeyMismatchError,
    MalformedMessageError,
    NotFittedError,
    ParameterError,
    SecretKeyExportError,
    ShapeMismatchError,
)
from securecomp.he.ckks import COLUMN, VECTOR, CKKSBackend, CKKSContext
from securecomp.models.approx import PolynomialSigmoid
from securecomp.models.ckks import messages as msg
from securecomp.models.gd import (
    Batch,
    DepthBudget,
    GDConfig,
    Optimizer,
    Step,
    TensorOptimizer,
    schedule,
    train,
)
from securecomp.net.wire import DEFAULT_MAX
from securecomp.tensor import SecureTensor

__all__ = ["RemoteOptimizer", "Server", "Transport", "load_public_context"]

#: Sends one message to the key holder and returns its reply.
Transport = Callable[[bytes], bytes]


def load_public_context(data: bytes, *, max_bytes: int = DEFAULT_MAX) -> CKKSContext:
    """Load a context a server may hold: refused if it carries a secret key."""
    ctx = CKKSContext.from_bytes(data, max_bytes=max_bytes)
    if ctx.is_private:
        raise SecretKeyExportError(
            "a server was handed a secret CKKS context; it must hold only the public one "
            "(export with CKKSContext.to_bytes(), never include_secret_key=True)"
        )
    return ctx


class RemoteOptimizer(Optimizer):
    """The server's view of the key holder's optimizer: bytes over a transport.

    One round trip per step: the gradient sum of step t goes out together with the
    description of step t + 1, and the weights for t + 1 come back.
    """

    def __init__(
        self,
        backend: CKKSBackend,
        transport: Transport,
        steps: list[Step],
        width: int,
        forward_scale: float,
    ) -> None:
        self.backend = backend
        self._width = width
        # The key holder encrypts forward_scale * v (GDConfig.forward_scale).
        self.forward_scale = forward_scale
        self.transport = transport
        self.steps = steps
        self._pending: dict[int, SecureTensor] = {}
        self.bytes_sent = 0
        self.bytes_received = 0

    def _send(self, data: bytes) -> bytes:
        self.bytes_sent += len(data)
        reply = self.transport(data)
        self.bytes_received += len(reply)
        return reply

    def _weights(self, reply: bytes, step: Step, width: int) -> SecureTensor:
        m = msg.unpack(reply, msg.FIT_WEIGHTS, {"step": int, "tensor": bytes})
        if m["step"] != step.index:
            raise MalformedMessageError(
                f"weights for step {m['step'] + 1} arrived when step {step.index + 1} needed them"
            )
        t = self.backend.from_bytes(m["tensor"])
        if t.shape != (step.padded_rows, width) or t.layout != COLUMN:
            raise ShapeMismatchError(
                f"look-ahead weights of shape {t.shape} ({t.layout}); expected "
                f"({step.padded_rows}, {width}) column-packed"
            )
        return t

    def forward_weights(self, step: Step) -> SecureTensor:
        t = self._pending.pop(step.index, None)
        if t is None:
            reply = self._send(msg.pack(msg.FIT_WEIGHTS_REQUEST, step=msg.step_to_wire(step)))
            t = self._weights(reply, step, self._width)
        return t

    def apply(self, g_sum: SecureTensor, step: Step) -> None:
        nxt = self.steps[step.index + 1] if step.index + 1 < len(self.steps) else None
        reply = self._send(
            msg.pack(
                msg.FIT_GRADIENT,
                step=msg.step_to_wire(step),
                tensor=g_sum.to_bytes(),
                next=None if nxt is None else msg.step_to_wire(nxt),
            )
        )
        if nxt is None:
            m = msg.unpack(reply, msg.FIT_ACK, {"step": int})
            if m["step"] != step.index:
                raise MalformedMessageError("the key holder acknowledged another step")
        else:
            self._pending[nxt.index] = self._weights(reply, nxt, self._width)


class Server:
    """Evaluator holding public contexts only (training key's and clients').

    Parameters
    ----------
    public_context : bytes
        The key holder's public context (``ckks.context`` envelope, Galois keys included).
    max_bytes : int
        Largest context accepted.
    """

    role = "server"

    def __init__(self, public_context: bytes, *, max_bytes: int = DEFAULT_MAX) -> None:
        self.context = load_public_context(public_context, max_bytes=max_bytes)
        self.backend = CKKSBackend(self.context)
        self.cfg: GDConfig | None = None
        self.batches: list[Batch] = []
        self._clients: dict[str, CKKSBackend] = {}
        self._models: dict[str, tuple[SecureTensor, SecureTensor]] = {}
        self._released: tuple[NDArray[np.float64], float] | None = None
        self.sigmoid: PolynomialSigmoid | None = None
        self._state: tuple[SecureTensor, SecureTensor] | None = None

    # --- training --------------------------------------------------------------------------

    def load_training(self, data: bytes) -> None:
        """Load a ``ckks.fit.data`` message: configuration and encrypted batches.

        Raises
        ------
        KeyMismatchError
            A batch encrypted under another key than the server's public context.
        MalformedMessageError, ShapeMismatchError
            A malformed message or inconsistent shapes.
        """
        m = msg.unpack(
            data, msg.FIT_DATA, {"config": dict, "batches": list, "state": (dict, type(None))}
        )
        cfg = msg.config_from_wire(m["config"])
        batches = []
        for raw in m["batches"]:
            if type(raw) is not dict or set(raw) != {"X", "y", "rows"}:
                raise MalformedMessageError("malformed training batch")
            if type(raw["X"]) is not bytes or type(raw["y"]) is not bytes:
                raise MalformedMessageError("malformed training batch")
            if type(raw["rows"]) is not int:
                raise MalformedMessageError("malformed training batch row count")
            X = self.backend.from_bytes(raw["X"])
            y = self.backend.from_bytes(raw["y"])
            if X.layout != COLUMN or y.layout != VECTOR:
                raise ShapeMismatchError(
                    "training batches must be column-packed (X) and vectors (y)"
                )
            batches.append(Batch(X, y, raw["rows"]))
        if not batches:
            raise MalformedMessageError("a training message without batches")
        width = batches[0].X.shape[1]
        if any(b.X.shape[1] != width for b in batches):
            raise ShapeMismatchError("training batches of different widths")
        state = None
        if m["state"] is not None:
            raw = m["state"]
            if set(raw) != {"w", "v"} or not all(type(raw[k]) is bytes for k in ("w", "v")):
                raise MalformedMessageError("malformed initial weights")
            state = (self.backend.from_bytes(raw["w"]), self.backend.from_bytes(raw["v"]))
            if any(t.shape != (width,) for t in state):
                raise ShapeMismatchError(f"initial weights must have shape ({width},)")
        self.cfg, self.batches, self.sigmoid = cfg, batches, cfg.sigmoid
        self._state = state

    def train(
        self, transport: Transport, *, on_step: Callable[[Step], Any] | None = None
    ) -> Optimizer:
        """Run the training loop, refreshing through ``transport`` (see `RemoteOptimizer`)."""
        if self.cfg is None or not self.batches:
            raise NotFittedError("the server has no training data; call load_training first")
        steps = schedule(self.batches, self.cfg)
        if self._state is not None:
            # The whole run fits the chain: no key holder until the end.
            w, v = self._state
            budget = DepthBudget(
                level_of=lambda t: t.meta.get("level"),
                max_level=self.context.depth,
                step_depth=2 + self.cfg.link_depth + 2,
            )
            local = TensorOptimizer(w, v, self.cfg, budget=budget)
            train(self.batches, self.cfg, local, on_step=on_step)
            reply = transport(msg.pack(msg.FIT_RESULT, tensor=local.w.to_bytes()))
            msg.unpack(reply, msg.FIT_ACK, {"step": int})
            return local
        opt = RemoteOptimizer(
            self.backend, transport, steps, self.batches[0].X.shape[1], self.cfg.forward_scale
        )
        train(self.batches, self.cfg, opt, on_step=on_step)
        return opt

    # --- inference -------------------------------------------------------------------------

    def register_client(self, public_context: bytes) -> str:
        """Accept an inference client's public context; returns its key id (hex)."""
        ctx = load_public_context(public_context)
        key = ctx.key_id.hex()
        self._clients[key] = CKKSBackend(ctx)
        return key

    def _client(self, key: object) -> CKKSBackend:
        if not isinstance(key, str) or key not in self._clients:
            raise KeyMismatchError(
                f"no client registered under key {key!r}; send the public context first"
            )
        return self._clients[key]

    def load_model(self, data: bytes) -> None:
        """Store a model encrypted (by the key holder) under a registered client's key."""
        m = msg.unpack(data, msg.INFER_MODEL, {"client": str, "W": bytes, "b": bytes})
        be = self._client(m["client"])
        W, b = be.from_bytes(m["W"]), be.from_bytes(m["b"])
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise ShapeMismatchError(f"encrypted model of shapes {W.shape} and {b.shape}")
        self._models[m["client"]] = (W, b)

    def set_released_model(self, coef: NDArray[np.float64], intercept: float) -> None:
        """Hold a released (noise-flooded, plaintext) model."""
        self._released = (np.array(coef, dtype=np.float64), float(intercept))

    @property
    def released_model(self) -> tuple[NDArray[np.float64], float] | None:
        return self._released

    def evaluate(self, query: bytes) -> bytes:
        """Scores of an encrypted query, encrypted under the client's key.

        Raises
        ------
        KeyMismatchError
            Features under another key than the client's, or no model under that key.
        """
        m = msg.unpack(
            query,
            msg.INFER_QUERY,
            {"client": str, "model": str, "output": str, "rows": int, "batches": list},
        )
        be = self._client(m["client"])
        if m["output"] not in ("logits", "probabilities"):
            raise MalformedMessageError(f"unknown output {m['output']!r}")
        if m["output"] == "probabilities" and self.sigmoid is None:
            raise ParameterError("this server trained no logistic model: no sigmoid to apply")
        scores = []
        for raw in m["batches"]:
            if type(raw) is not bytes:
                raise MalformedMessageError("malformed query batch")
            X = be.from_bytes(raw)
            scores.append(self._score(be, m["client"], m["model"], X, m["output"]))
        return msg.pack(
            msg.INFER_SCORES,
            client=m["client"],
            rows=m["rows"],
            batches=[s.to_bytes() for s in scores],
        )

    def _score(
        self, be: CKKSBackend, client: str, model: str, X: SecureTensor, output: str
    ) -> SecureTensor:
        if model == "encrypted":
            if client not in self._models:
                raise KeyMismatchError(
                    "no model encrypted under this client's key; the key holder must send "
                    "one (KeyHolder.model_for_client) before encrypted-model inference"
                )
            W, b = self._models[client]
            if X.shape != W.shape:
                raise ShapeMismatchError(
                    f"query batch {X.shape} does not match the model {W.shape}"
                )
            z = (X * W).sum(axis=1) + b  # KeyMismatchError if X is under another key
        elif model == "released":
            if self._released is None:
                raise NotFittedError("no model has been released to the server")
            coef, intercept = self._released
            if X.ndim != 2 or X.shape[1] != coef.shape[0]:
                raise ShapeMismatchError(f"query batch {X.shape} does not match the model")
            z = X @ coef + intercept
        else:
            raise MalformedMessageError(f"unknown model kind {model!r}")
        if output == "probabilities" and self.sigmoid is not None:
            z = z.polyval(self.sigmoid.coefficients)
        return z
