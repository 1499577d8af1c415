"""Paillier tensors on the wire: the ``paillier.ciphertext`` envelope.

Payload (msgpack map inside the securecomp envelope of `securecomp.net.wire`)::

    {"v": 1, "layout": "unpacked" | "packed", "shape": [d0, d1, ...], "scale": int,
     "bound_bits": int                                # unpacked
     "weight": int, "value_bits": int, "headroom_bits": int,   # packed
     "ct": fixed-width big-endian ciphertexts, C order, width = bytes of n^2}

The envelope fingerprint is the key's (the hash of ``n``): a tensor offered to a backend
under another key is refused with `KeyMismatchError` before its payload is read. On load,
every field is type- and range-checked, the ciphertext count must match the shape exactly,
and every ciphertext must lie in ``Z_{n^2}^*`` (``0 < c < n^2``, ``gcd(c, n) = 1``);
anything else is `MalformedMessageError`. Ciphertexts derived by operations are
re-randomized before they are written (a derived ciphertext such as ``E(a)^k`` would let
whoever saw ``E(a)`` test guesses of ``k``); the tensor itself is not modified.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import gmpy2
import msgpack
import numpy as np

from securecomp.errors import KeyMismatchError, MalformedMessageError, ParameterError
from securecomp.he.paillier.arith import check_ciphertexts, rerandomize
from securecomp.he.paillier.encode import MAX_SCALE
from securecomp.he.paillier.keys import SCHEME
from securecomp.he.paillier.layout import PACKED, UNPACKED, frozen
from securecomp.he.paillier.packed import packed_meta, packing_for, row_shape
from securecomp.he.paillier.unpacked import unpacked_meta
from securecomp.net.wire import (
    DEFAULT_MAX,
    Envelope,
    decode_bigints,
    decode_envelope,
    encode_bigints,
    encode_envelope,
    register_kind,
)
from securecomp.tensor import SecureTensor

if TYPE_CHECKING:
    from securecomp.he.paillier.backend import PaillierBackend

__all__ = ["CIPHERTEXT_KIND", "tensor_from_bytes", "tensor_to_bytes"]

#: Envelope kind of a Paillier tensor (registered by `securecomp.net.wire`).
CIPHERTEXT_KIND = register_kind("paillier.ciphertext")

_VERSION = 1
_MAX_NDIM = 32
_FIELDS = {
    UNPACKED: frozenset({"v", "layout", "shape", "scale", "bound_bits", "ct"}),
    PACKED: frozenset(
        {"v", "layout", "shape", "scale", "weight", "value_bits", "headroom_bits", "ct"}
    ),
}


def tensor_to_bytes(backend: PaillierBackend, tensor: SecureTensor) -> bytes:
    """Serialize ``tensor``, re-randomizing derived ciphertexts first (not in place)."""
    key = backend.key
    meta = tensor.meta
    cts = list(tensor.payload.ravel())
    if not meta.get("randomized", False):
        cts = rerandomize(key, cts)
    body: dict[str, Any] = {
        "v": _VERSION,
        "layout": tensor.layout,
        "shape": list(tensor.shape),
        "scale": int(meta["scale"]),
    }
    if tensor.layout == UNPACKED:
        body["bound_bits"] = int(meta["bound_bits"])
    else:
        body.update(
            weight=int(meta["weight"]),
            value_bits=int(meta["value_bits"]),
            headroom_bits=int(meta["headroom_bits"]),
        )
    body["ct"] = encode_bigints(cts, key.ciphertext_bytes)
    return encode_envelope(
        Envelope(
            kind=CIPHERTEXT_KIND,
            scheme=SCHEME,
            fingerprint=key.fingerprint,
            key_id=key.key_id,
            session=b"",
            round=0,
            sender=0,
            recipient=0,
            payload=msgpack.packb(body, use_bin_type=True),
        )
    )


def _int_field(body: dict[str, Any], name: str, lo: int, hi: int) -> int:
    v = body[name]
    if type(v) is not int or not lo <= v <= hi:
        raise MalformedMessageError(
            f"Paillier tensor field {name!r} must be an int in [{lo}, {hi}], got {v!r}"
        )
    return v


def _body(env: Envelope) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(
            env.payload,
            raw=False,
            strict_map_key=True,
            max_bin_len=len(env.payload),
            max_str_len=16,
            max_array_len=_MAX_NDIM,
            max_map_len=len(_FIELDS[PACKED]),
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"malformed Paillier tensor payload: {exc}") from None
    if type(body) is not dict or body.get("layout") not in _FIELDS:
        raise MalformedMessageError(
            "malformed Paillier tensor payload: expected a map with layout 'packed' or 'unpacked'"
        )
    if set(body) != _FIELDS[body["layout"]]:
        raise MalformedMessageError(
            f"malformed Paillier tensor payload: fields {sorted(body)} are not "
            f"{sorted(_FIELDS[body['layout']])}"
        )
    if type(body["v"]) is not int or body["v"] != _VERSION:
        raise MalformedMessageError(
            f"unsupported Paillier tensor format version {body['v']!r}; this build reads {_VERSION}"
        )
    shape = body["shape"]
    if type(shape) is not list or any(type(d) is not int or d < 0 for d in shape):
        raise MalformedMessageError("Paillier tensor shape must be a list of non-negative ints")
    if type(body["ct"]) is not bytes:
        raise MalformedMessageError("Paillier tensor ciphertexts must be bytes")
    return body


def tensor_from_bytes(backend: PaillierBackend, data: bytes) -> SecureTensor:
    """Load a tensor written by `tensor_to_bytes` under ``backend``'s key, validating it.

    Raises
    ------
    MalformedMessageError
        Not a Paillier tensor envelope, malformed fields, wrong ciphertext count, or a
        ciphertext outside ``Z_{n^2}^*`` (forged or corrupted).
    KeyMismatchError
        The tensor was encrypted under another key.
    """
    env = decode_envelope(data, max_bytes=DEFAULT_MAX)
    if env.kind != CIPHERTEXT_KIND or env.scheme != SCHEME:
        raise MalformedMessageError(
            f"expected a {CIPHERTEXT_KIND!r} envelope of scheme {SCHEME!r}, got {env.kind!r} "
            f"/ {env.scheme!r}"
        )
    if env.sealed:
        raise MalformedMessageError("the tensor envelope is sealed: open it with its key first")
    key = backend.key
    if env.fingerprint != key.fingerprint:
        raise KeyMismatchError(
            "the tensor was encrypted under another Paillier key (fingerprint "
            f"{env.fingerprint.hex()[:8]} vs {key.fingerprint.hex()[:8]}); load it with the "
            "backend of its own public key"
        )
    body = _body(env)
    shape = tuple(body["shape"])
    scale = _int_field(body, "scale", 0, MAX_SCALE)
    if body["layout"] == UNPACKED:
        bound = _int_field(body, "bound_bits", 0, key.bits - 2)
        count = math.prod(shape)
        meta = unpacked_meta(scale, bound)
        payload_shape = shape
    else:
        value_bits = _int_field(body, "value_bits", 2, 64)
        headroom = _int_field(body, "headroom_bits", 0, 64 - value_bits)
        try:
            packing = packing_for(key.bits, value_bits, headroom)
        except ParameterError as exc:
            raise MalformedMessageError(f"invalid packing in a Paillier tensor: {exc}") from None
        weight = _int_field(body, "weight", 0, packing.max_additions)
        rows = row_shape(shape)
        payload_shape = (*rows[:-1], packing.n_plaintexts(rows[-1]))
        count = math.prod(payload_shape)
        meta = packed_meta(scale, weight, value_bits, headroom)
    width = key.ciphertext_bytes
    if len(body["ct"]) != count * width:
        raise MalformedMessageError(
            f"a Paillier tensor of shape {shape} needs {count} ciphertexts of {width} bytes, "
            f"got {len(body['ct'])} bytes"
        )
    ints = decode_bigints(body["ct"], width, count, upper=int(key.nsquare))
    cts = [gmpy2.mpz(c) for c in ints]
    check_ciphertexts(key, cts)
    payload = np.empty(count, dtype=object)
    payload[:] = cts
    return backend.wrap(frozen(payload.reshape(payload_shape)), shape, body["layout"], meta)
