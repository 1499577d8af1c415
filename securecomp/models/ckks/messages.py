"""The messages the CKKS model roles exchange: msgpack maps around tensor envelopes.

Every message is ``msgpack({"v": 1, "kind": ..., fields...})``; encrypted tensors inside are
the CKKS backend's own envelopes (`CKKSBackend.to_bytes`: parameter fingerprint, key id,
digest), so a ciphertext under another key is refused when loaded (`KeyMismatchError`).
Parsing checks the version, the kind, the exact set of fields and every type before
anything is used; anything else is `MalformedMessageError`. No pickle.

Kinds (sender -> receiver):

* ``ckks.fit.data`` (key holder -> server): the public training configuration and the
  encrypted mini-batches;
* ``ckks.fit.weights?`` (server -> key holder): which step needs look-ahead weights;
* ``ckks.fit.weights`` (key holder -> server): the weights, encrypted and replicated;
* ``ckks.fit.gradient`` (server -> key holder): a step's encrypted gradient sum;
* ``ckks.fit.result`` (server -> key holder): the final encrypted weights, when the whole
  run fits one chain (``refresh="never"``);
* ``ckks.fit.ack`` (key holder -> server);
* ``ckks.infer.model`` (key holder -> server): a model encrypted under a client's key;
* ``ckks.infer.query`` (client -> server) and ``ckks.infer.scores`` (server -> client).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgpack

from securecomp.errors import MalformedMessageError
from securecomp.models.approx import DEGREES, PolynomialSigmoid
from securecomp.models.gd import GDConfig, Step

__all__ = [
    "FIT_ACK",
    "FIT_DATA",
    "FIT_GRADIENT",
    "FIT_RESULT",
    "FIT_WEIGHTS",
    "FIT_WEIGHTS_REQUEST",
    "INFER_MODEL",
    "INFER_QUERY",
    "INFER_SCORES",
    "config_from_wire",
    "config_to_wire",
    "kind_of",
    "pack",
    "step_from_wire",
    "step_to_wire",
    "unpack",
]

FIT_DATA = "ckks.fit.data"
FIT_WEIGHTS_REQUEST = "ckks.fit.weights?"
FIT_WEIGHTS = "ckks.fit.weights"
FIT_GRADIENT = "ckks.fit.gradient"
FIT_ACK = "ckks.fit.ack"
FIT_RESULT = "ckks.fit.result"
INFER_MODEL = "ckks.infer.model"
INFER_QUERY = "ckks.infer.query"
INFER_SCORES = "ckks.infer.scores"

_VERSION = 1
#: A message carries at most this many tensors (batches, columns).
_MAX_ITEMS = 1 << 16


def pack(kind: str, **fields: Any) -> bytes:
    """Serialize a message of ``kind`` with ``fields`` (ints, floats, str, bytes, lists, maps)."""
    return msgpack.packb({"v": _VERSION, "kind": kind, **fields}, use_bin_type=True)


def _decode(data: bytes, what: str) -> object:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessageError(f"a {what} message must be bytes, got {type(data).__name__}")
    try:
        return msgpack.unpackb(
            bytes(data),
            raw=False,
            strict_map_key=True,
            max_array_len=_MAX_ITEMS,
            max_map_len=64,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise MalformedMessageError(f"malformed {what} message: {exc}") from None


def kind_of(data: bytes) -> str:
    """The ``kind`` of a message, for dispatch (`unpack` then checks the rest)."""
    raw = _decode(data, "securecomp model")
    kind = raw.get("kind") if type(raw) is dict else None
    if not isinstance(kind, str):
        raise MalformedMessageError("a model message without a kind")
    return kind


def unpack(data: bytes, kind: str, fields: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """Parse a message, checking version, kind, field names and top-level field types.

    Raises
    ------
    MalformedMessageError
        Not msgpack, another version or kind, missing or extra fields, wrong types.
    """
    msg = _decode(data, kind)
    if type(msg) is not dict:
        raise MalformedMessageError(f"a {kind} message must be a map")
    if msg.get("v") != _VERSION:
        raise MalformedMessageError(f"unsupported {kind} message version {msg.get('v')!r}")
    if msg.get("kind") != kind:
        raise MalformedMessageError(
            f"expected a {kind} message, got {msg.get('kind')!r}: the peers are out of step"
        )
    expected = {"v", "kind", *fields}
    if set(msg) != expected:
        raise MalformedMessageError(
            f"{kind} message has fields {sorted(msg)}, expected {sorted(expected)}"
        )
    for name, typ in fields.items():
        value = msg[name]
        if isinstance(value, bool) and typ is not bool:
            raise MalformedMessageError(f"{kind}.{name} has the wrong type")
        if not isinstance(value, typ):
            raise MalformedMessageError(f"{kind}.{name} has the wrong type")
    return msg


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedMessageError(f"{what} must be a finite number")
    return float(value)


def _int(value: object, what: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise MalformedMessageError(f"{what} must be an int >= {low}")
    return value


def step_to_wire(step: Step) -> dict[str, Any]:
    return {
        "index": step.index,
        "epoch": step.epoch,
        "batch": step.batch,
        "rows": step.rows,
        "padded_rows": step.padded_rows,
        "eta": step.eta,
    }


def step_from_wire(raw: object) -> Step:
    """A `Step` from its wire map (types and ranges checked)."""
    keys = {"index", "epoch", "batch", "rows", "padded_rows", "eta"}
    if type(raw) is not dict or set(raw) != keys:
        raise MalformedMessageError("malformed step description")
    step = Step(
        index=_int(raw["index"], "step.index"),
        epoch=_int(raw["epoch"], "step.epoch"),
        batch=_int(raw["batch"], "step.batch"),
        rows=_int(raw["rows"], "step.rows", 1),
        padded_rows=_int(raw["padded_rows"], "step.padded_rows", 1),
        eta=_finite(raw["eta"], "step.eta"),
    )
    if step.padded_rows < step.rows:
        raise MalformedMessageError("a step cannot have fewer padded rows than rows")
    return step


def config_to_wire(cfg: GDConfig) -> dict[str, Any]:
    """The public training configuration (the server learns it; see the ledger)."""
    sig = cfg.sigmoid
    return {
        "task": cfg.task,
        "optimizer": cfg.optimizer,
        "learning_rate": cfg.learning_rate,
        "epochs": cfg.epochs,
        "l2": cfg.l2,
        "intercept": cfg.intercept,
        "sigmoid": None
        if sig is None
        else {
            "degree": sig.degree,
            "interval": sig.interval,
            "coefficients": list(sig.coefficients),
            "max_error": sig.max_error,
            "rms_error": sig.rms_error,
            "weighting": sig.weighting,
        },
    }


def config_from_wire(raw: object) -> GDConfig:
    """A `GDConfig` from its wire map; `MalformedMessageError` on anything unexpected."""
    keys = {"task", "optimizer", "learning_rate", "epochs", "l2", "intercept", "sigmoid"}
    if type(raw) is not dict or set(raw) != keys:
        raise MalformedMessageError("malformed training configuration")
    sig_raw = raw["sigmoid"]
    sigmoid = None
    if sig_raw is not None:
        sig_keys = {"degree", "interval", "coefficients", "max_error", "rms_error", "weighting"}
        if type(sig_raw) is not dict or set(sig_raw) != sig_keys:
            raise MalformedMessageError("malformed polynomial sigmoid")
        degree = _int(sig_raw["degree"], "sigmoid.degree", 1)
        coeffs = sig_raw["coefficients"]
        if degree not in DEGREES or type(coeffs) is not list or len(coeffs) != degree + 1:
            raise MalformedMessageError("malformed polynomial sigmoid coefficients")
        if sig_raw["weighting"] not in ("uniform", "chebyshev"):
            raise MalformedMessageError("malformed polynomial sigmoid weighting")
        sigmoid = PolynomialSigmoid(
            degree=degree,
            interval=_finite(sig_raw["interval"], "sigmoid.interval"),
            coefficients=tuple(_finite(c, "sigmoid coefficient") for c in coeffs),
            max_error=_finite(sig_raw["max_error"], "sigmoid.max_error"),
            rms_error=_finite(sig_raw["rms_error"], "sigmoid.rms_error"),
            weighting=sig_raw["weighting"],
        )
    if type(raw["intercept"]) is not bool:
        raise MalformedMessageError("malformed intercept flag")
    try:
        return GDConfig(
            task=raw["task"],
            optimizer=raw["optimizer"],
            learning_rate=_finite(raw["learning_rate"], "learning_rate"),
            epochs=_int(raw["epochs"], "epochs", 1),
            l2=_finite(raw["l2"], "l2"),
            sigmoid=sigmoid,
            intercept=raw["intercept"],
        )
    except ValueError as exc:  # ParameterError from GDConfig's own checks
        raise MalformedMessageError(f"invalid training configuration: {exc}") from None
