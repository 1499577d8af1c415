"""The versioned securecomp envelope: header, validation, sealing and replay checks.

Everything that crosses a process boundary is an envelope or a channel frame carrying the
payload layouts of `securecomp.net.arrays` (DESIGN.md §5). They are built from msgpack
(https://github.com/msgpack/msgpack/blob/master/spec.md) and fixed binary layouts only:
no pickle, no object dtypes, no extension types, so decoding never executes or constructs
anything beyond bytes, ints, strings and numeric arrays.

Envelope layout (version 1)
---------------------------
One msgpack array of exactly four elements::

    [magic: bin "SCMP", version: positive fixint, header: bin, payload: bin]

``header`` is itself a msgpack map with exactly the string keys ``kind, scheme,
fingerprint, key_id, session, round, sender, recipient, payload_len, sealed``. Decoding
checks, in this order and before the payload is looked at: the total size cap, the magic,
the version, the outer structure (msgpack length caps, no ext types), the exact header key
set and each field's type and range, that ``kind`` is registered, and that the declared
``payload_len`` equals the actual payload length. The header is kept as its own byte
string so that a sealed envelope can use those exact bytes as AES-GCM associated data
(NIST SP 800-38D): any change to the header, including the session, round or recipient,
makes authentication fail, and a sealed envelope replayed elsewhere is detected.

Arrays and big integers travel inside payloads in the layouts of
`securecomp.net.arrays` (re-exported here); kinds live in `securecomp.net.kinds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from securecomp.crypto import aead
from securecomp.errors import IntegrityError, MalformedMessageError, ParameterError, ReplayError
from securecomp.net.arrays import (
    ARRAY_DTYPES,
    array_parts,
    decode_array,
    decode_arrays,
    decode_bigints,
    encode_array,
    encode_arrays,
    encode_bigints,
)
from securecomp.net.kinds import is_registered_kind, register_kind, registered_kinds

__all__ = [
    "ARRAY_DTYPES",
    "DEFAULT_MAX",
    "MAGIC",
    "SUPPORTED_VERSIONS",
    "WIRE_VERSION",
    "Envelope",
    "array_parts",
    "decode_array",
    "decode_arrays",
    "decode_bigints",
    "decode_envelope",
    "describe",
    "encode_array",
    "encode_arrays",
    "encode_bigints",
    "encode_envelope",
    "is_registered_kind",
    "open_envelope",
    "register_kind",
    "registered_kinds",
    "seal_envelope",
]

#: First field of every envelope.
MAGIC: Final = b"SCMP"
#: Version written by this code.
WIRE_VERSION: Final = 1
#: Versions this code can read.
SUPPORTED_VERSIONS: Final = (1,)
#: Default cap on an encoded envelope or frame (1 GiB): a peer cannot make us allocate more.
DEFAULT_MAX: Final = 1 << 30

# Header field caps. They bound what a peer can make the header parser allocate.
_MAX_NAME = 64  # kind, scheme, string party ids
_MAX_ID_BYTES = 64  # fingerprint, key id, session
_MAX_PARTY_INT = (1 << 32) - 1
_MAX_ROUND = (1 << 63) - 1
_MAX_HEADER_BYTES = 1024

# Canonical start of a version-1 envelope: fixarray(4), bin8(4) "SCMP". The next byte is
# the version as a positive fixint. Checking these bytes first gives precise messages for
# foreign data (including pickles) and for future versions before anything is unpacked.
_PREFIX = b"\x94\xc4\x04" + MAGIC
_AAD_DOMAIN = b"securecomp/envelope-aad/v1\x00"

_HEADER_KEYS: Final = frozenset(
    {
        "kind",
        "scheme",
        "fingerprint",
        "key_id",
        "session",
        "round",
        "sender",
        "recipient",
        "payload_len",
        "sealed",
    }
)

# ---------------------------------------------------------------------------------------
# envelope
# ---------------------------------------------------------------------------------------

PartyId = int | str


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message: routing and key metadata plus an opaque payload.

    Invariant: ``decode_envelope(encode_envelope(e)) == e`` and, for a 32-byte key ``k``,
    ``open_envelope(seal_envelope(e, k), k) == e``.

    Attributes
    ----------
    kind : registered kind (see `register_kind`).
    scheme : scheme or parameter-set name, ≤ 64 UTF-8 bytes (``""`` when not applicable).
    fingerprint : parameter fingerprint (≤ 64 bytes).
    key_id : key identifier (≤ 64 bytes).
    session : session identifier (≤ 64 bytes).
    round : round or step number, ``0 ≤ round < 2**63``.
    sender, recipient : party ids: ints in ``[0, 2**32)`` or names of 1–64 UTF-8 bytes.
    payload : the body; the ciphertext when ``sealed``.
    sealed : whether ``payload`` is AES-GCM encrypted under the header (`seal_envelope`).
    """

    kind: str
    scheme: str
    fingerprint: bytes
    key_id: bytes
    session: bytes
    round: int
    sender: PartyId
    recipient: PartyId
    payload: bytes
    sealed: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.payload, bytes):
            raise ParameterError(
                f"Envelope payload must be bytes, not {type(self.payload).__name__}; "
                "serialize arrays with encode_array first"
            )
        _check_header(self._header_fields(), ParameterError)

    def _header_fields(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scheme": self.scheme,
            "fingerprint": self.fingerprint,
            "key_id": self.key_id,
            "session": self.session,
            "round": self.round,
            "sender": self.sender,
            "recipient": self.recipient,
            "payload_len": len(self.payload),
            "sealed": self.sealed,
        }


def _utf8_len(v: str) -> int:
    try:
        return len(v.encode("utf-8"))
    except UnicodeEncodeError:
        return _MAX_NAME + 1  # lone surrogates cannot travel: treat as invalid


def _check_party(name: str, v: object, err: type[Exception]) -> None:
    if type(v) is int:
        if not 0 <= v <= _MAX_PARTY_INT:
            raise err(f"envelope {name} {v} out of range [0, 2**32)")
    elif type(v) is str:
        if not v or _utf8_len(v) > _MAX_NAME:
            raise err(f"envelope {name} must be a str of 1..{_MAX_NAME} UTF-8 bytes")
    else:
        raise err(f"envelope {name} must be an int or a str, not {type(v).__name__}")


def _check_header(h: Mapping[str, Any], err: type[Exception]) -> None:
    """Validate header fields exactly; ``err`` is ParameterError (encode) or Malformed."""
    keys = set(h)
    if keys != _HEADER_KEYS:
        missing = sorted(_HEADER_KEYS - keys)
        extra = sorted(str(k) for k in keys - _HEADER_KEYS)
        raise err(f"envelope header fields wrong: missing {missing}, unexpected {extra}")
    for name in ("kind", "scheme"):
        v = h[name]
        if type(v) is not str or _utf8_len(v) > _MAX_NAME:
            raise err(f"envelope {name} must be a str of at most {_MAX_NAME} UTF-8 bytes")
    if not is_registered_kind(h["kind"]):
        raise err(
            f"unknown envelope kind {h['kind']!r}; known kinds: {list(registered_kinds())} "
            "(modules register theirs with securecomp.net.register_kind)"
        )
    for name in ("fingerprint", "key_id", "session"):
        v = h[name]
        if type(v) is not bytes or len(v) > _MAX_ID_BYTES:
            raise err(f"envelope {name} must be bytes of at most {_MAX_ID_BYTES} bytes")
    r = h["round"]
    if type(r) is not int or not 0 <= r <= _MAX_ROUND:
        raise err("envelope round must be an int in [0, 2**63)")
    _check_party("sender", h["sender"], err)
    _check_party("recipient", h["recipient"], err)
    n = h["payload_len"]
    if type(n) is not int or n < 0:
        raise err("envelope payload_len must be a non-negative int")
    if type(h["sealed"]) is not bool:
        raise err("envelope sealed flag must be a bool")


def _pack_header(fields: Mapping[str, Any]) -> bytes:
    # Fixed key order and msgpack's shortest-form integers make this deterministic.
    return msgpack.packb({k: fields[k] for k in sorted(fields)}, use_bin_type=True)


def _aad(version: int, header: bytes) -> bytes:
    return _AAD_DOMAIN + version.to_bytes(2, "big") + header


def encode_envelope(env: Envelope) -> bytes:
    """Serialize an envelope (sealed or not) to bytes.

    Parameters
    ----------
    env : Envelope

    Returns
    -------
    bytes
        The version-1 encoding; ``decode_envelope`` inverts it.
    """
    if not isinstance(env, Envelope):
        raise ParameterError(f"expected an Envelope, got {type(env).__name__}")
    header = _pack_header(env._header_fields())
    return msgpack.packb([MAGIC, WIRE_VERSION, header, env.payload], use_bin_type=True)


def _decode(data: bytes | bytearray | memoryview, max_bytes: int) -> tuple[Envelope, bytes]:
    """Validate and split an envelope; returns it with its raw header bytes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessageError(f"envelope must be bytes, not {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > max_bytes:
        raise MalformedMessageError(
            f"envelope of {len(raw)} bytes exceeds the {max_bytes}-byte cap; "
            "raise max_bytes if such messages are expected"
        )
    if not raw.startswith(_PREFIX):
        raise MalformedMessageError(
            "not a securecomp envelope: bad magic (expected a msgpack array starting "
            f"with {MAGIC!r})"
        )
    if len(raw) <= len(_PREFIX):
        raise MalformedMessageError("truncated envelope: no version field")
    version = raw[len(_PREFIX)]
    if version not in SUPPORTED_VERSIONS:
        shown = version if version < 0x80 else "non-canonical"
        raise MalformedMessageError(
            f"unsupported envelope version {shown}; this build reads versions "
            f"{list(SUPPORTED_VERSIONS)}: upgrade securecomp or re-encode the message"
        )
    try:
        outer = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_bin_len=max_bytes,
            max_str_len=0,
            max_array_len=4,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"malformed envelope: {exc}") from None
    if (
        type(outer) is not list
        or len(outer) != 4
        or type(outer[2]) is not bytes
        or type(outer[3]) is not bytes
    ):
        raise MalformedMessageError(
            "malformed envelope: expected [magic, version, header bytes, payload bytes]"
        )
    header_raw, payload = outer[2], outer[3]
    if len(header_raw) > _MAX_HEADER_BYTES:
        raise MalformedMessageError(
            f"envelope header of {len(header_raw)} bytes exceeds {_MAX_HEADER_BYTES}"
        )
    try:
        header = msgpack.unpackb(
            header_raw,
            raw=False,
            strict_map_key=True,
            max_bin_len=_MAX_ID_BYTES,
            max_str_len=_MAX_NAME,
            max_array_len=0,
            max_map_len=len(_HEADER_KEYS),
            max_ext_len=0,
        )
    except Exception as exc:
        raise MalformedMessageError(f"malformed envelope header: {exc}") from None
    if type(header) is not dict:
        raise MalformedMessageError("malformed envelope header: not a map")
    _check_header(header, MalformedMessageError)
    if header["payload_len"] != len(payload):
        raise MalformedMessageError(
            f"envelope declares a {header['payload_len']}-byte payload but carries "
            f"{len(payload)} bytes (truncated or tampered)"
        )
    env = Envelope(
        kind=header["kind"],
        scheme=header["scheme"],
        fingerprint=header["fingerprint"],
        key_id=header["key_id"],
        session=header["session"],
        round=header["round"],
        sender=header["sender"],
        recipient=header["recipient"],
        payload=payload,
        sealed=header["sealed"],
    )
    return env, header_raw


def decode_envelope(
    data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX
) -> Envelope:
    """Validate and decode an envelope; the payload is returned as opaque bytes.

    Parameters
    ----------
    data : bytes-like
        An encoded envelope.
    max_bytes : int
        Refuse anything longer (checked first).

    Returns
    -------
    Envelope
        A sealed envelope keeps its ciphertext payload and ``sealed=True``; authenticate
        and decrypt it with `open_envelope`.

    Raises
    ------
    MalformedMessageError
        On any deviation from the format (see the module docstring for the checks).
    """
    return _decode(data, max_bytes)[0]


def seal_envelope(env: Envelope, key: bytes) -> bytes:
    """Encrypt the payload with AES-256-GCM, authenticating the whole header, and encode.

    Parameters
    ----------
    env : Envelope
        An unsealed envelope.
    key : bytes
        A 32-byte key shared by sender and recipient (e.g. from HKDF over X25519).

    Returns
    -------
    bytes
        An encoded envelope with ``sealed=True`` whose payload is nonce‖ciphertext‖tag.
    """
    if not isinstance(env, Envelope):
        raise ParameterError(f"expected an Envelope, got {type(env).__name__}")
    if env.sealed:
        raise ParameterError("envelope is already sealed; seal the plaintext envelope once")
    fields = env._header_fields()
    fields["sealed"] = True
    # The ciphertext length is part of the header, which is the associated data, so it is
    # computed from the AEAD's constant expansion before encrypting.
    fields["payload_len"] = len(env.payload) + aead.OVERHEAD_BYTES
    header = _pack_header(fields)
    ct = aead.seal(key, env.payload, _aad(WIRE_VERSION, header))
    return msgpack.packb([MAGIC, WIRE_VERSION, header, ct], use_bin_type=True)


_EXPECTABLE = ("kind", "scheme", "fingerprint", "key_id", "session", "round", "sender", "recipient")


def open_envelope(
    data: bytes | bytearray | memoryview,
    key: bytes,
    *,
    expect: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX,
) -> Envelope:
    """Decode, authenticate and decrypt a sealed envelope, then check where it belongs.

    Parameters
    ----------
    data : bytes-like
        Output of `seal_envelope`.
    key : bytes
        The 32-byte key it was sealed with.
    expect : mapping, optional
        Header values the receiver expects, among ``kind, scheme, fingerprint, key_id,
        session, round, sender, recipient``. Checked only after authentication.
    max_bytes : int
        Size cap, as in `decode_envelope`.

    Returns
    -------
    Envelope
        With the decrypted payload and ``sealed=False``.

    Raises
    ------
    MalformedMessageError
        Not a well-formed envelope.
    IntegrityError
        Not sealed, wrong key, or any byte of header or payload changed.
    ReplayError
        Authentic, but for another session, round, recipient (or any ``expect`` field):
        a message replayed out of its context.

    Notes
    -----
    The same sealed message delivered twice into its own context is authentic; detecting
    duplicates needs per-context state and belongs to the protocol (each round expects
    one message per sender).
    """
    env, header = _decode(data, max_bytes)
    if not env.sealed:
        raise IntegrityError(
            "envelope is not sealed but an authenticated one was expected; "
            "the sender must use seal_envelope"
        )
    if expect is not None:
        unknown = sorted(set(expect) - set(_EXPECTABLE))
        if unknown:
            raise ParameterError(f"cannot expect fields {unknown}; use some of {list(_EXPECTABLE)}")
    plaintext = aead.open_sealed(key, env.payload, _aad(WIRE_VERSION, header))
    opened = Envelope(
        kind=env.kind,
        scheme=env.scheme,
        fingerprint=env.fingerprint,
        key_id=env.key_id,
        session=env.session,
        round=env.round,
        sender=env.sender,
        recipient=env.recipient,
        payload=plaintext,
    )
    for name, want in (expect or {}).items():
        got = getattr(opened, name)
        if type(got) is not type(want) or got != want:
            raise ReplayError(
                f"authentic envelope for {name}={got!r} delivered where {name}={want!r} "
                "is expected: a replay from another context; it was discarded"
            )
    return opened


def describe(
    data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX
) -> dict[str, Any]:
    """Validate an envelope and describe its header (the payload is not interpreted).

    Returns
    -------
    dict
        JSON-safe: magic, version, kind, scheme, fingerprint/key_id/session as hex,
        round, sender, recipient, payload_len, sealed, total_bytes.
    """
    env = decode_envelope(data, max_bytes=max_bytes)
    return {
        "magic": MAGIC.decode(),
        "version": WIRE_VERSION,
        "kind": env.kind,
        "scheme": env.scheme,
        "fingerprint": env.fingerprint.hex(),
        "key_id": env.key_id.hex(),
        "session": env.session.hex(),
        "round": env.round,
        "sender": env.sender,
        "recipient": env.recipient,
        "payload_len": len(env.payload),
        "sealed": env.sealed,
        "total_bytes": len(data),
    }
