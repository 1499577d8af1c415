"""CKKS tensors on the wire: the securecomp envelope around TenSEAL's ciphertext bytes.

A CKKS envelope (`securecomp.he.ckks.envelope`) of kind ``ckks.ciphertext``: fingerprint =
parameter fingerprint, key id = the key's 16-byte id, payload = digest | body with ``body`` a
msgpack map ``{v, layout, shape, level, gain, cts}``, ``cts`` TenSEAL's serialized vectors
in payload order.

What loading detects
--------------------
* another key or parameter set (header fingerprint / key id): `KeyMismatchError`;
* truncation, bit flips anywhere (header or payload), reordered fields, a foreign kind,
  malformed msgpack or protobuf, a ciphertext of the wrong size, level or scale:
  `MalformedMessageError` (the digest is checked before anything else is parsed).

What it does not detect
-----------------------
The digest is unkeyed: someone who can rewrite the message can recompute it (a different
ciphertext, e.g. an encryption of another value under the same public key, is then
accepted). Against an active adversary pass ``auth_key``: the envelope is sealed with
AES-256-GCM (`seal_envelope`), so any change fails authentication (`IntegrityError`).
The magnitude of the encrypted values is never sent (it would leak information), so a
loaded tensor carries no error bound: the key holder derives one from the plan before a
release.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import msgpack
import tenseal as ts

from securecomp.errors import KeyMismatchError, MalformedMessageError
from securecomp.he.ckks.envelope import pack_message, unpack_message
from securecomp.he.ckks.layouts import ELEMENT, LAYOUTS, base_dims, chunk_sizes
from securecomp.he.ckks.payload import payload_of
from securecomp.net.wire import DEFAULT_MAX, register_kind
from securecomp.tensor import SecureTensor

if TYPE_CHECKING:
    from securecomp.he.ckks.backend import CKKSBackend

__all__ = ["CIPHERTEXT_KIND", "tensor_from_bytes", "tensor_to_bytes"]

#: Envelope kind of a CKKS tensor.
CIPHERTEXT_KIND = register_kind("ckks.ciphertext")

_FORMAT_VERSION = 1
_BODY_KEYS = frozenset({"v", "layout", "shape", "level", "gain", "cts"})
_MAX_CIPHERTEXTS = 1 << 20
# A gain is TenSEAL's drift, within 1e-4 of 1 for any chain validate_ckks accepts.
_GAIN_RANGE = (0.5, 2.0)
_CKKSVector = ts._ts_cpp.CKKSVector


def tensor_to_bytes(
    backend: CKKSBackend,
    tensor: SecureTensor,
    *,
    auth_key: bytes | None = None,
    sender: int | str = 0,
    recipient: int | str = 0,
) -> bytes:
    """Serialize a CKKS tensor (unsealed, or sealed with a 32-byte ``auth_key``)."""
    if tensor.backend.fingerprint != backend.fingerprint:
        raise KeyMismatchError("the tensor belongs to another CKKS key")
    p = payload_of(tensor)
    body = msgpack.packb(
        {
            "v": _FORMAT_VERSION,
            "layout": tensor.layout,
            "shape": list(tensor.shape),
            "level": p.level,
            "gain": p.gain,
            "cts": [ct.serialize() for ct in p.cts],
        },
        use_bin_type=True,
    )
    ctx = backend.context
    return pack_message(
        CIPHERTEXT_KIND,
        ctx.params.fingerprint,
        ctx.key_id,
        body,
        auth_key=auth_key,
        sender=sender,
        recipient=recipient,
    )


def _fields(body: bytes, max_bytes: int) -> dict[str, Any]:
    try:
        fields = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_array_len=_MAX_CIPHERTEXTS,
            max_map_len=8,
            max_str_len=16,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"malformed CKKS ciphertext body: {exc}") from None
    if type(fields) is not dict or set(fields) != _BODY_KEYS:
        raise MalformedMessageError("malformed CKKS ciphertext body: wrong fields")
    ok = (
        fields["v"] == _FORMAT_VERSION
        and fields["layout"] in LAYOUTS
        and type(fields["shape"]) is list
        and len(fields["shape"]) <= 2
        and all(type(d) is int and d > 0 for d in fields["shape"])
        and type(fields["level"]) is int
        and type(fields["gain"]) is float
        and type(fields["cts"]) is list
        and all(type(c) is bytes for c in fields["cts"])
    )
    if not ok:
        raise MalformedMessageError("malformed CKKS ciphertext body: wrong field types or values")
    return fields


def _expected_sizes(layout: str, shape: tuple[int, ...], slots: int) -> list[int]:
    if layout == ELEMENT:
        return [1] * math.prod(shape)
    need = {"vector": 1}.get(layout, 2)
    if len(shape) != need:
        raise MalformedMessageError(f"layout {layout!r} with shape {shape}")
    m, k = base_dims(layout, shape)
    return list(chunk_sizes(m, slots)) * k


def tensor_from_bytes(
    backend: CKKSBackend,
    data: bytes,
    *,
    auth_key: bytes | None = None,
    max_bytes: int = DEFAULT_MAX,
) -> SecureTensor:
    """Load a tensor serialized under ``backend``'s key, validating every ciphertext.

    Raises
    ------
    KeyMismatchError
        Serialized under another key or parameter set.
    MalformedMessageError
        Anything else wrong with the bytes (see the module docstring); `IntegrityError`
        when a sealed envelope fails authentication.
    """
    env, body = unpack_message(data, (CIPHERTEXT_KIND,), auth_key=auth_key, max_bytes=max_bytes)
    fields = _fields(body, max_bytes)
    ctx = backend.context
    if env.fingerprint != ctx.params.fingerprint:
        raise KeyMismatchError(
            "the ciphertext was made under other CKKS parameters; load it with a backend of "
            "its own parameter set"
        )
    if env.key_id != ctx.key_id:
        raise KeyMismatchError(
            "the ciphertext was encrypted under another CKKS key (key ids differ); it would "
            "decrypt to garbage under this one"
        )
    shape = tuple(fields["shape"])
    layout = fields["layout"]
    level, gain = fields["level"], fields["gain"]
    if not 0 <= level <= ctx.depth or not _GAIN_RANGE[0] < gain < _GAIN_RANGE[1]:
        raise MalformedMessageError(f"CKKS ciphertext declares level {level} / gain {gain!r}")
    sizes = _expected_sizes(layout, shape, ctx.params.slot_count)
    if len(sizes) != len(fields["cts"]):
        raise MalformedMessageError(
            f"layout {layout!r} of shape {shape} needs {len(sizes)} ciphertexts, got "
            f"{len(fields['cts'])}"
        )
    kernel = backend.kernel
    scale = ctx.params.scale
    cts = []
    for i, (raw, size) in enumerate(zip(fields["cts"], sizes, strict=True)):
        try:
            ct = _CKKSVector(ctx.tenseal_context.data, raw)
            inner = ct.ciphertext()
        except Exception as exc:  # TenSEAL/SEAL raise ValueError or RuntimeError
            raise MalformedMessageError(f"ciphertext {i} does not load: {exc}") from None
        if (
            ct.size() != size
            or len(inner) != 1
            or inner[0].size() != 2
            or inner[0].scale != scale
            or kernel.level_of(ct) != level
        ):
            raise MalformedMessageError(
                f"ciphertext {i} has the wrong size, scale or level for its header"
            )
        cts.append(ct)
    return backend.wrap(tuple(cts), shape, layout, level, gain)
