"""Typed messages of secure aggregation and their wire form (securecomp envelopes).

Stages (Bonawitz et al., CCS 2017, Fig. 4) and the messages of each:

==========================  ==============================  ==============================
stage                       client -> server                server -> client
==========================  ==============================  ==============================
``advertise_keys``          `AdvertiseKeys` (c_pk, s_pk)    `KeysBroadcast` (neighbours')
``share_keys``              `ShareKeys` (sealed shares)     `SharesDelivery` (sealed)
``masked_input_collection`` `MaskedInput` (y_u, b bits)     `UnmaskRequest` (survivors)
``unmasking``               `UnmaskShares` (b / sk shares)  --
==========================  ==============================  ==============================

Against a malicious server (`securecomp.secagg.config.SecAggConfig.malicious`, the
paper's active model) the key messages also carry Ed25519 signatures under pinned identity
keys (and the digest of the broadcast model), and a ConsistencyCheck round sits between
masked-input collection and unmasking (`ActiveStage.CONSISTENCY_CHECK`):

==========================  ==============================  ==============================
``masked_input_collection`` `MaskedInput`                   `ConsistencyCheck` (U3)
``consistency_check``       `ConsistencySignature` (on U3)  `UnmaskCertificate` (sigs)
``unmasking``               `UnmaskShares`                  --
==========================  ==============================  ==============================

The stages are defined in `securecomp.secagg.stages` (re-exported here).

Every message carries a `Header` (session, round, sender, recipient, configuration
fingerprint) that becomes the envelope header (`securecomp.net.wire`); the payload is a
msgpack map with an exact key set (the signed variants have their own exact set). Lists of
ids travel as little-endian ``uint32`` bytes, lists of fixed-size blobs as one concatenated
byte string, masked vectors bit-packed to ``b`` bits (`securecomp.secagg.bitpack`).
`decode_message` validates everything (envelope, kind, exact keys, types, lengths) before
a state machine sees it and raises `MalformedMessageError` otherwise; whether a
well-formed message belongs to the current session, round and stage is the state
machines' job (`ReplayError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

import msgpack
import numpy as np
import numpy.typing as npt

from securecomp.crypto.ed25519 import SIGNATURE_BYTES
from securecomp.crypto.x25519 import PUBLIC_KEY_BYTES
from securecomp.errors import MalformedMessageError, ParameterError
from securecomp.net.wire import (
    DEFAULT_MAX,
    Envelope,
    decode_envelope,
    encode_envelope,
    register_kind,
)
from securecomp.secagg.bitpack import pack_bits, packed_size, unpack_bits
from securecomp.secagg.config import MAX_DIM, container_dtype
from securecomp.secagg.shares import SEALED_SHARES_BYTES, SHARE_BYTES
from securecomp.secagg.stages import (
    MALICIOUS_STAGES,
    SEMI_HONEST_STAGES,
    ActiveStage,
    AnyStage,
    Stage,
    as_stage,
    protocol_stages,
)
from securecomp.secagg.transcript import MODEL_DIGEST_BYTES

__all__ = [
    "MALICIOUS_STAGES",
    "MODEL_DIGEST_BYTES",
    "SEMI_HONEST_STAGES",
    "SERVER",
    "ActiveStage",
    "AdvertiseKeys",
    "AnyStage",
    "ClientMessage",
    "ConsistencyCheck",
    "ConsistencySignature",
    "Header",
    "KeysBroadcast",
    "MaskedInput",
    "Message",
    "ServerMessage",
    "ShareKeys",
    "SharesDelivery",
    "Stage",
    "UnmaskCertificate",
    "UnmaskRequest",
    "UnmaskShares",
    "as_stage",
    "decode_message",
    "encode_message",
    "protocol_stages",
]

#: Party id of the server on the wire.
SERVER: Final = "server"
#: Largest client id (ids are Shamir points minus one, below 2^31 - 1).
_MAX_ID = (1 << 31) - 3
_SCHEME = "secagg"


@dataclass(frozen=True, slots=True)
class Header:
    """Where a message belongs: session, round, sender, recipient, configuration."""

    session: bytes
    round: int
    sender: int | str
    recipient: int | str
    fingerprint: bytes


def _fail(err: type[Exception], msg: str) -> None:
    raise err(msg)


def _check_id(value: object, what: str, err: type[Exception]) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_ID:
        _fail(err, f"{what} must be a client id in [0, 2^31 - 2), got {value!r}")
    return value  # type: ignore[return-value]


def _check_ids(values: object, what: str, err: type[Exception]) -> tuple[int, ...]:
    if not isinstance(values, tuple):
        raise err(f"{what} must be a tuple of client ids")
    return tuple(_check_id(v, what, err) for v in values)


def _check_blobs(values: object, size: int, what: str, err: type[Exception]) -> tuple[bytes, ...]:
    if not isinstance(values, tuple) or any(type(v) is not bytes or len(v) != size for v in values):
        _fail(err, f"{what} must be a tuple of {size}-byte strings")
    return values  # type: ignore[return-value]


def _check_parallel(
    a: tuple[Any, ...], b: tuple[Any, ...], what: str, err: type[Exception]
) -> None:
    if len(a) != len(b):
        _fail(err, f"{what}: {len(a)} ids but {len(b)} entries")


# --- the messages ------------------------------------------------------------------------


def _check_signature(value: object, what: str, err: type[Exception]) -> None:
    if type(value) is not bytes or len(value) != SIGNATURE_BYTES:
        _fail(err, f"{what} must be a {SIGNATURE_BYTES}-byte Ed25519 signature")


@dataclass(frozen=True, slots=True)
class AdvertiseKeys:
    """Client ``u`` -> server: its two fresh X25519 public keys ``c_u^PK`` and ``s_u^PK``.

    Against a malicious server also ``signature``, the Ed25519 signature under ``u``'s
    pinned identity key of the keys in their context
    (`securecomp.secagg.transcript.advertisement_message`), and ``model_digest``, the
    digest of the model ``u`` received; both empty in the semi-honest protocol.
    """

    KIND: ClassVar[str] = "secagg.advertise_keys"
    STAGE: ClassVar[Stage] = Stage.ADVERTISE_KEYS
    header: Header
    c_public: bytes
    s_public: bytes
    signature: bytes = b""
    model_digest: bytes = b""

    @property
    def signed(self) -> bool:
        return bool(self.signature or self.model_digest)

    def validate(self, err: type[Exception] = ParameterError) -> None:
        for name in ("c_public", "s_public"):
            v = getattr(self, name)
            if type(v) is not bytes or len(v) != PUBLIC_KEY_BYTES:
                _fail(err, f"{name} must be {PUBLIC_KEY_BYTES} bytes")
        if self.signed:
            _check_signature(self.signature, "signature", err)
            if type(self.model_digest) is not bytes or len(self.model_digest) != MODEL_DIGEST_BYTES:
                _fail(err, f"model_digest must be {MODEL_DIGEST_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class KeysBroadcast:
    """Server -> client ``u``: public keys of ``u``'s live closed neighbourhood (with ``u``).

    Against a malicious server: every advertisement the server accepted (the signed key
    transcript, from which SecAgg+ derives its graph), with the advertisers' signatures.
    """

    KIND: ClassVar[str] = "secagg.keys_broadcast"
    STAGE: ClassVar[Stage] = Stage.ADVERTISE_KEYS
    header: Header
    ids: tuple[int, ...]
    c_publics: tuple[bytes, ...]
    s_publics: tuple[bytes, ...]
    signatures: tuple[bytes, ...] = ()

    def validate(self, err: type[Exception] = ParameterError) -> None:
        _check_ids(self.ids, "ids", err)
        _check_blobs(self.c_publics, PUBLIC_KEY_BYTES, "c_publics", err)
        _check_blobs(self.s_publics, PUBLIC_KEY_BYTES, "s_publics", err)
        _check_parallel(self.ids, self.c_publics, "c_publics", err)
        _check_parallel(self.ids, self.s_publics, "s_publics", err)
        if self.signatures:
            _check_blobs(self.signatures, SIGNATURE_BYTES, "signatures", err)
            _check_parallel(self.ids, self.signatures, "signatures", err)


@dataclass(frozen=True, slots=True)
class ShareKeys:
    """Client ``u`` -> server: for each neighbour ``v``, ``u``'s shares sealed for ``v``."""

    KIND: ClassVar[str] = "secagg.share_keys"
    STAGE: ClassVar[Stage] = Stage.SHARE_KEYS
    header: Header
    recipients: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]

    def validate(self, err: type[Exception] = ParameterError) -> None:
        _check_ids(self.recipients, "recipients", err)
        _check_blobs(self.ciphertexts, SEALED_SHARES_BYTES, "ciphertexts", err)
        _check_parallel(self.recipients, self.ciphertexts, "ciphertexts", err)


@dataclass(frozen=True, slots=True)
class SharesDelivery:
    """Server -> client ``v``: the sealed shares addressed to ``v``, by sender."""

    KIND: ClassVar[str] = "secagg.shares_delivery"
    STAGE: ClassVar[Stage] = Stage.SHARE_KEYS
    header: Header
    senders: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]

    def validate(self, err: type[Exception] = ParameterError) -> None:
        _check_ids(self.senders, "senders", err)
        _check_blobs(self.ciphertexts, SEALED_SHARES_BYTES, "ciphertexts", err)
        _check_parallel(self.senders, self.ciphertexts, "ciphertexts", err)


@dataclass(frozen=True, slots=True, eq=False)
class MaskedInput:
    """Client ``u`` -> server: ``y_u`` modulo ``2^bits`` (bit-packed on the wire)."""

    KIND: ClassVar[str] = "secagg.masked_input"
    STAGE: ClassVar[Stage] = Stage.MASKED_INPUT_COLLECTION
    header: Header
    bits: int
    values: npt.NDArray[np.unsignedinteger]

    def validate(self, err: type[Exception] = ParameterError) -> None:
        if type(self.bits) is not int or not 1 <= self.bits <= 64:
            _fail(err, "bits must be an int in [1, 64]")
        v = self.values
        if not isinstance(v, np.ndarray) or v.ndim != 1 or v.dtype != container_dtype(self.bits):
            _fail(err, f"values must be a 1-D array of dtype {container_dtype(self.bits)}")
        if not 1 <= v.size <= MAX_DIM:
            _fail(err, "values must hold 1 to 2^32 elements")
        if self.bits < v.dtype.itemsize * 8 and int(v.max()) >> self.bits:
            _fail(err, f"values must lie below 2^{self.bits}")


@dataclass(frozen=True, slots=True)
class UnmaskRequest:
    """Server -> client ``u``: the survivors ``U3`` in ``u``'s closed neighbourhood."""

    KIND: ClassVar[str] = "secagg.unmask_request"
    STAGE: ClassVar[Stage] = Stage.MASKED_INPUT_COLLECTION
    header: Header
    alive: tuple[int, ...]

    def validate(self, err: type[Exception] = ParameterError) -> None:
        _check_ids(self.alive, "alive", err)


@dataclass(frozen=True, slots=True)
class UnmaskShares:
    """Client ``u`` -> server: shares of ``b_v`` for surviving ``v``, of ``s_v^SK`` for
    dropped ``v`` (never both for the same ``v``)."""

    KIND: ClassVar[str] = "secagg.unmask_shares"
    STAGE: ClassVar[Stage] = Stage.UNMASKING
    header: Header
    b_owners: tuple[int, ...]
    b_shares: tuple[bytes, ...]
    sk_owners: tuple[int, ...]
    sk_shares: tuple[bytes, ...]

    def validate(self, err: type[Exception] = ParameterError) -> None:
        _check_ids(self.b_owners, "b_owners", err)
        _check_ids(self.sk_owners, "sk_owners", err)
        _check_blobs(self.b_shares, SHARE_BYTES, "b_shares", err)
        _check_blobs(self.sk_shares, SHARE_BYTES, "sk_shares", err)
        _check_parallel(self.b_owners, self.b_shares, "b_shares", err)
        _check_parallel(self.sk_owners, self.sk_shares, "sk_shares", err)


@dataclass(frozen=True, slots=True)
class ConsistencyCheck:
    """Server -> client ``u`` (malicious-server mode): the survivors ``U3`` of masked-input
    collection, all of them (sorted), for ``u`` to check and sign."""

    KIND: ClassVar[str] = "secagg.consistency_check"
    STAGE: ClassVar[Stage] = Stage.MASKED_INPUT_COLLECTION
    header: Header
    alive: tuple[int, ...]

    def validate(self, err: type[Exception] = ParameterError) -> None:
        _check_ids(self.alive, "alive", err)


@dataclass(frozen=True, slots=True)
class ConsistencySignature:
    """Client ``u`` -> server: ``u``'s signature on ``U3`` in its context
    (`securecomp.secagg.transcript.survivors_message`)."""

    KIND: ClassVar[str] = "secagg.consistency_signature"
    STAGE: ClassVar[ActiveStage] = ActiveStage.CONSISTENCY_CHECK
    header: Header
    signature: bytes

    def validate(self, err: type[Exception] = ParameterError) -> None:
        _check_signature(self.signature, "signature", err)


@dataclass(frozen=True, slots=True)
class UnmaskCertificate:
    """Server -> client ``u``: signatures on ``U3`` by the clients ``signers`` (``U4``),
    the certificate ``u`` needs before it reveals any share."""

    KIND: ClassVar[str] = "secagg.unmask_certificate"
    STAGE: ClassVar[ActiveStage] = ActiveStage.CONSISTENCY_CHECK
    header: Header
    signers: tuple[int, ...]
    signatures: tuple[bytes, ...]

    def validate(self, err: type[Exception] = ParameterError) -> None:
        _check_ids(self.signers, "signers", err)
        _check_blobs(self.signatures, SIGNATURE_BYTES, "signatures", err)
        _check_parallel(self.signers, self.signatures, "signatures", err)


ClientMessage = AdvertiseKeys | ShareKeys | MaskedInput | ConsistencySignature | UnmaskShares
ServerMessage = (
    KeysBroadcast | SharesDelivery | UnmaskRequest | ConsistencyCheck | UnmaskCertificate
)
Message = ClientMessage | ServerMessage

_TYPES: dict[str, type[Any]] = {
    cls.KIND: cls
    for cls in (
        AdvertiseKeys,
        KeysBroadcast,
        ShareKeys,
        SharesDelivery,
        MaskedInput,
        UnmaskRequest,
        UnmaskShares,
        ConsistencyCheck,
        ConsistencySignature,
        UnmaskCertificate,
    )
}
for _kind in _TYPES:
    register_kind(_kind)


# --- body codecs ---------------------------------------------------------------------------


def _ids_bytes(ids: tuple[int, ...]) -> bytes:
    return np.asarray(ids, dtype="<u4").tobytes()


def _ids_from(raw: object, what: str) -> tuple[int, ...]:
    if type(raw) is not bytes or len(raw) % 4:
        raise MalformedMessageError(f"{what} must be bytes holding uint32 ids")
    return tuple(np.frombuffer(raw, dtype="<u4").tolist())


def _blobs_from(raw: object, size: int, count: int, what: str) -> tuple[bytes, ...]:
    if type(raw) is not bytes or len(raw) != size * count:
        raise MalformedMessageError(f"{what} must be {count} entries of {size} bytes")
    return tuple(raw[i : i + size] for i in range(0, len(raw), size))


def _body(msg: Message) -> dict[str, Any]:
    if isinstance(msg, AdvertiseKeys):
        if msg.signed:
            return {"c": msg.c_public, "s": msg.s_public, "sig": msg.signature,
                    "md": msg.model_digest}
        return {"c": msg.c_public, "s": msg.s_public}
    if isinstance(msg, KeysBroadcast):
        body = {
            "ids": _ids_bytes(msg.ids),
            "c": b"".join(msg.c_publics),
            "s": b"".join(msg.s_publics),
        }
        if msg.signatures:
            body["sig"] = b"".join(msg.signatures)
        return body
    if isinstance(msg, ShareKeys):
        return {"to": _ids_bytes(msg.recipients), "ct": b"".join(msg.ciphertexts)}
    if isinstance(msg, SharesDelivery):
        return {"from": _ids_bytes(msg.senders), "ct": b"".join(msg.ciphertexts)}
    if isinstance(msg, MaskedInput):
        return {
            "dim": int(msg.values.size),
            "bits": msg.bits,
            "data": pack_bits(msg.values, msg.bits),
        }
    if isinstance(msg, UnmaskRequest):
        return {"alive": _ids_bytes(msg.alive)}
    if isinstance(msg, UnmaskShares):
        return {
            "b_ids": _ids_bytes(msg.b_owners),
            "b": b"".join(msg.b_shares),
            "sk_ids": _ids_bytes(msg.sk_owners),
            "sk": b"".join(msg.sk_shares),
        }
    if isinstance(msg, ConsistencyCheck):
        return {"alive": _ids_bytes(msg.alive)}
    if isinstance(msg, ConsistencySignature):
        return {"sig": msg.signature}
    if isinstance(msg, UnmaskCertificate):
        return {"ids": _ids_bytes(msg.signers), "sig": b"".join(msg.signatures)}
    raise ParameterError(f"not a secure-aggregation message: {type(msg).__name__}")


# The exact field sets each kind may have (the signed variants have their own).
_KEYS: dict[str, tuple[frozenset[str], ...]] = {
    AdvertiseKeys.KIND: (frozenset({"c", "s"}), frozenset({"c", "s", "sig", "md"})),
    KeysBroadcast.KIND: (frozenset({"ids", "c", "s"}), frozenset({"ids", "c", "s", "sig"})),
    ShareKeys.KIND: (frozenset({"to", "ct"}),),
    SharesDelivery.KIND: (frozenset({"from", "ct"}),),
    MaskedInput.KIND: (frozenset({"dim", "bits", "data"}),),
    UnmaskRequest.KIND: (frozenset({"alive"}),),
    UnmaskShares.KIND: (frozenset({"b_ids", "b", "sk_ids", "sk"}),),
    ConsistencyCheck.KIND: (frozenset({"alive"}),),
    ConsistencySignature.KIND: (frozenset({"sig"}),),
    UnmaskCertificate.KIND: (frozenset({"ids", "sig"}),),
}


def _from_body(kind: str, header: Header, body: dict[str, Any]) -> Message:
    if kind == AdvertiseKeys.KIND:
        if "sig" in body:
            return AdvertiseKeys(header, body["c"], body["s"], body["sig"], body["md"])
        return AdvertiseKeys(header, body["c"], body["s"])
    if kind == KeysBroadcast.KIND:
        ids = _ids_from(body["ids"], "ids")
        c = _blobs_from(body["c"], PUBLIC_KEY_BYTES, len(ids), "c")
        s = _blobs_from(body["s"], PUBLIC_KEY_BYTES, len(ids), "s")
        if "sig" in body:
            if not ids:
                raise MalformedMessageError("a signed key list cannot be empty")
            sigs = _blobs_from(body["sig"], SIGNATURE_BYTES, len(ids), "sig")
            return KeysBroadcast(header, ids, c, s, sigs)
        return KeysBroadcast(header, ids, c, s)
    if kind == ShareKeys.KIND:
        to = _ids_from(body["to"], "to")
        return ShareKeys(header, to, _blobs_from(body["ct"], SEALED_SHARES_BYTES, len(to), "ct"))
    if kind == SharesDelivery.KIND:
        frm = _ids_from(body["from"], "from")
        cts = _blobs_from(body["ct"], SEALED_SHARES_BYTES, len(frm), "ct")
        return SharesDelivery(header, frm, cts)
    if kind == MaskedInput.KIND:
        dim, bits, data = body["dim"], body["bits"], body["data"]
        if type(dim) is not int or not 1 <= dim <= MAX_DIM:
            raise MalformedMessageError("dim must be an int in [1, 2^32]")
        if type(bits) is not int or not 1 <= bits <= 64:
            raise MalformedMessageError("bits must be an int in [1, 64]")
        if type(data) is not bytes or len(data) != packed_size(dim, bits):
            raise MalformedMessageError(
                f"masked input of {dim} values at {bits} bits must be "
                f"{packed_size(dim, bits)} bytes"
            )
        return MaskedInput(header, bits, unpack_bits(data, dim, bits, container_dtype(bits)))
    if kind == UnmaskRequest.KIND:
        return UnmaskRequest(header, _ids_from(body["alive"], "alive"))
    if kind == UnmaskShares.KIND:
        b_ids = _ids_from(body["b_ids"], "b_ids")
        sk_ids = _ids_from(body["sk_ids"], "sk_ids")
        return UnmaskShares(
            header,
            b_ids,
            _blobs_from(body["b"], SHARE_BYTES, len(b_ids), "b"),
            sk_ids,
            _blobs_from(body["sk"], SHARE_BYTES, len(sk_ids), "sk"),
        )
    if kind == ConsistencyCheck.KIND:
        return ConsistencyCheck(header, _ids_from(body["alive"], "alive"))
    if kind == ConsistencySignature.KIND:
        return ConsistencySignature(header, body["sig"])
    if kind == UnmaskCertificate.KIND:
        signers = _ids_from(body["ids"], "ids")
        sigs = _blobs_from(body["sig"], SIGNATURE_BYTES, len(signers), "sig")
        return UnmaskCertificate(header, signers, sigs)
    raise MalformedMessageError(f"unknown secure-aggregation message kind {kind!r}")


# --- public codec --------------------------------------------------------------------------


def encode_message(msg: Message) -> bytes:
    """Serialize a message into a securecomp envelope (validated first)."""
    if type(msg) not in _TYPES.values():
        raise ParameterError(f"not a secure-aggregation message: {type(msg).__name__}")
    msg.validate(ParameterError)
    h = msg.header
    payload = msgpack.packb(_body(msg), use_bin_type=True)
    env = Envelope(
        kind=msg.KIND,
        scheme=_SCHEME,
        fingerprint=h.fingerprint,
        key_id=b"",
        session=h.session,
        round=h.round,
        sender=h.sender,
        recipient=h.recipient,
        payload=payload,
    )
    return encode_envelope(env)


def decode_message(
    data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX
) -> Message:
    """Parse and validate an encoded message.

    Raises
    ------
    MalformedMessageError
        Not an envelope, not a secure-aggregation kind, missing or extra fields, wrong
        types or lengths.
    """
    env = decode_envelope(data, max_bytes=max_bytes)
    cls = _TYPES.get(env.kind)
    if cls is None or env.scheme != _SCHEME:
        raise MalformedMessageError(
            f"envelope kind {env.kind!r} (scheme {env.scheme!r}) is not a secure-aggregation "
            f"message; expected one of {sorted(_TYPES)}"
        )
    if env.sealed:
        raise MalformedMessageError("secure-aggregation messages are not sealed envelopes")
    try:
        body = msgpack.unpackb(
            env.payload,
            raw=False,
            strict_map_key=True,
            max_str_len=16,
            max_bin_len=len(env.payload),
            max_array_len=0,
            max_map_len=8,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"malformed {env.kind} payload: {exc}") from None
    allowed = _KEYS[env.kind]
    if type(body) is not dict or set(body) not in allowed:
        got = sorted(map(str, body)) if isinstance(body, dict) else type(body).__name__
        want = " or ".join(str(sorted(k)) for k in allowed)
        raise MalformedMessageError(
            f"{env.kind} payload must have exactly the fields {want}, got {got}"
        )
    header = Header(env.session, env.round, env.sender, env.recipient, env.fingerprint)
    msg = _from_body(env.kind, header, body)
    msg.validate(MalformedMessageError)
    return msg
