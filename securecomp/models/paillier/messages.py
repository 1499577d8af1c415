"""Messages between the roles of the Paillier model protocol, and the links that seal them.

Every message is a securecomp envelope (`securecomp.net.wire`): Paillier tensors in the
backend's own ``paillier.ciphertext`` envelope, control messages (setup, model broadcast,
schedule, inference offer and query) in envelopes of the kinds registered here, with a
strict msgpack map as payload. Nothing is pickled; every field is type-checked on receipt.

Between two roles, every envelope is *sealed* (AES-256-GCM under the header as associated
data, `securecomp.net.wire.seal_envelope`) with a key both derive from an X25519 agreement
(RFC 7748) through HKDF (`securecomp.crypto.x25519.agree`), bound to the session and to the
pair of role names. The receiver opens it expecting the kind, session, round, sender and
recipient, so a message replayed into another step or re-addressed to another role fails
(`ReplayError`), and a tampered one fails (`IntegrityError`). The X25519 public keys are
part of the session configuration, distributed out of band like the pinned certificates
of `securecomp.net.tls`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import msgpack

from securecomp.crypto.kdf import Domain
from securecomp.crypto.x25519 import X25519KeyPair, agree, check_public_key
from securecomp.errors import MalformedMessageError, ParameterError
from securecomp.net.wire import (
    Envelope,
    decode_envelope,
    encode_envelope,
    open_envelope,
    register_kind,
    seal_envelope,
)

__all__ = [
    "MODEL_KIND",
    "OFFER_KIND",
    "PROTOCOL",
    "QUERY_KIND",
    "SCHEDULE_KIND",
    "SETUP_KIND",
    "Link",
    "control",
    "read_control",
]

PROTOCOL = "securecomp.models.paillier"
_VERSION = 1
_SCHEME = "paillier"

#: Key holder -> aggregator and holders: public key, quantization, shapes.
SETUP_KIND = register_kind("models.paillier.setup")
#: Key holder -> holders: the model at which to compute the next gradient (or the final one).
MODEL_KIND = register_kind("models.paillier.model")
#: Key holder -> aggregator: the number of aggregation steps.
SCHEDULE_KIND = register_kind("models.paillier.schedule")
#: Inference server -> client: the model dimension and the packing headroom it needs.
OFFER_KIND = register_kind("models.paillier.offer")
#: Inference client -> server: its public key and its encrypted features.
QUERY_KIND = register_kind("models.paillier.query")

_MAX_CONTROL_BYTES = 1 << 30


def control(
    kind: str, body: Mapping[str, Any], *, fingerprint: bytes = b"", key_id: bytes = b""
) -> Envelope:
    """An unsealed control envelope carrying ``body`` (a msgpack map) with version 1."""
    payload = msgpack.packb({"v": _VERSION, **body}, use_bin_type=True)
    return Envelope(
        kind=kind,
        scheme=_SCHEME,
        fingerprint=fingerprint,
        key_id=key_id,
        session=b"",
        round=0,
        sender=0,
        recipient=0,
        payload=payload,
    )


def read_control(env: Envelope, kind: str, types: Mapping[str, type]) -> dict[str, Any]:
    """The body of a control envelope of ``kind`` whose fields are exactly ``types``.

    Raises
    ------
    MalformedMessageError
        Another kind, a malformed payload, missing or extra fields, or a field of another
        type (``bool`` is not accepted for ``int``).
    """
    if env.kind != kind:
        raise MalformedMessageError(f"expected a {kind!r} message, got {env.kind!r}")
    try:
        body = msgpack.unpackb(
            env.payload,
            raw=False,
            strict_map_key=True,
            max_bin_len=len(env.payload),
            max_str_len=64,
            max_array_len=1 << 16,
            max_map_len=len(types) + 1,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"malformed {kind!r} payload: {exc}") from None
    if type(body) is not dict or set(body) != {"v", *types}:
        raise MalformedMessageError(
            f"malformed {kind!r} payload: expected the fields {sorted({'v', *types})}"
        )
    if type(body["v"]) is not int or body["v"] != _VERSION:
        raise MalformedMessageError(
            f"unsupported {kind!r} version {body['v']!r}; this build reads {_VERSION}"
        )
    for name, want in types.items():
        value = body[name]
        ok = type(value) is want or (want is float and type(value) is int)
        if not ok:
            raise MalformedMessageError(
                f"{kind!r} field {name!r} must be {want.__name__}, got {type(value).__name__}"
            )
    del body["v"]
    return body


class Link:
    """The sealed link between two named roles of one session.

    Invariant: for a link pair ``a``/``b`` (``a`` of role A toward B, ``b`` of B toward A),
    ``b.open(a.seal(e, round=r), round=r, kind=e.kind)`` equals ``e`` with this session,
    round and the two role names in its header; any other round, kind, sender or recipient
    raises `ReplayError`, any changed byte `IntegrityError`.

    Parameters
    ----------
    me : X25519KeyPair
        This role's key pair.
    name, peer : str
        Role names (envelope sender / recipient), distinct.
    peer_public : bytes
        The peer's X25519 public key (from the session configuration).
    session : bytes
        Session identifier (bound into the key and every header).
    """

    __slots__ = ("_key", "name", "peer", "session")

    def __init__(
        self, me: X25519KeyPair, name: str, peer: str, peer_public: bytes, session: bytes
    ) -> None:
        if name == peer:
            raise ParameterError(f"a link joins two different roles, got {name!r} twice")
        if not isinstance(session, bytes) or not 8 <= len(session) <= 64:
            raise ParameterError("the session id must be 8..64 bytes")
        pair = "|".join(sorted((name, peer)))
        domain = Domain(protocol=PROTOCOL, purpose=f"link {pair}", session=session)
        self._key = agree(me, check_public_key(peer_public, name=f"{peer}'s key"), domain)
        self.name, self.peer, self.session = name, peer, session

    def seal(self, message: Envelope | bytes, *, round: int) -> bytes:
        """Address ``message`` (an envelope or its encoding) to the peer for ``round``, sealed."""
        env = message if isinstance(message, Envelope) else decode_envelope(message)
        if env.sealed:
            raise ParameterError("the message is already sealed")
        addressed = dataclasses.replace(
            env, session=self.session, round=round, sender=self.name, recipient=self.peer
        )
        return seal_envelope(addressed, self._key)

    def open(
        self, data: bytes, *, round: int, kind: str, max_bytes: int = _MAX_CONTROL_BYTES
    ) -> Envelope:
        """Authenticate and decrypt a message from the peer, expected for ``round``.

        Raises
        ------
        IntegrityError
            Not sealed, sealed under another key, or altered.
        ReplayError
            Authentic but for another round, kind, session, sender or recipient.
        MalformedMessageError
            Not an envelope.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedMessageError(f"expected message bytes, got {type(data).__name__}")
        expect = {
            "kind": kind,
            "session": self.session,
            "round": round,
            "sender": self.peer,
            "recipient": self.name,
        }
        return open_envelope(data, self._key, expect=expect, max_bytes=max_bytes)

    def open_bytes(self, data: bytes, *, round: int, kind: str) -> bytes:
        """`open`, re-encoded as an unsealed envelope (what ``from_bytes`` loaders read)."""
        return encode_envelope(self.open(data, round=round, kind=kind))

    def __repr__(self) -> str:
        return f"Link({self.name!r} <-> {self.peer!r})"
