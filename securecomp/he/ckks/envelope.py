"""The securecomp envelope as CKKS messages use it (contexts and ciphertexts).

Every CKKS message is an envelope (`securecomp.net.wire`) of scheme ``ckks`` whose header
carries the parameter fingerprint and the key id, and whose payload is
``SHA-256(domain | kind | fingerprint | key id | body) | body``. The digest binds the body
to the header, so a flipped or truncated byte anywhere is caught before TenSEAL parses
anything (TenSEAL itself decrypts altered ciphertexts to garbage without an error). It is
unkeyed: against an adversary who rewrites messages, seal the envelope (``auth_key``,
AES-256-GCM with the header as associated data, `securecomp.net.wire.seal_envelope`).
"""

from __future__ import annotations

import hashlib
import secrets

from securecomp.errors import MalformedMessageError
from securecomp.net.wire import (
    Envelope,
    decode_envelope,
    encode_envelope,
    open_envelope,
    seal_envelope,
)

__all__ = ["DIGEST_BYTES", "SCHEME", "pack_message", "payload_digest", "unpack_message"]

#: Envelope ``scheme`` of every CKKS message.
SCHEME = "ckks"
DIGEST_BYTES = 32
_DOMAIN = b"securecomp/ckks/payload-digest/v1\x00"


def payload_digest(kind: str, fingerprint: bytes, key_id: bytes, body: bytes) -> bytes:
    """SHA-256 over the header fields that identify the message and its body."""
    h = hashlib.sha256(_DOMAIN)
    for part in (kind.encode(), fingerprint, key_id):
        h.update(len(part).to_bytes(2, "big") + part)
    h.update(body)
    return h.digest()


def pack_message(
    kind: str,
    fingerprint: bytes,
    key_id: bytes,
    body: bytes,
    *,
    auth_key: bytes | None,
    sender: int | str,
    recipient: int | str,
) -> bytes:
    """Encode (or seal, with a 32-byte ``auth_key``) one CKKS message."""
    env = Envelope(
        kind=kind,
        scheme=SCHEME,
        fingerprint=fingerprint,
        key_id=key_id,
        session=b"",
        round=0,
        sender=sender,
        recipient=recipient,
        payload=payload_digest(kind, fingerprint, key_id, body) + body,
    )
    return seal_envelope(env, auth_key) if auth_key is not None else encode_envelope(env)


def unpack_message(
    data: bytes, kinds: tuple[str, ...], *, auth_key: bytes | None, max_bytes: int
) -> tuple[Envelope, bytes]:
    """Decode (or open) a CKKS message of one of ``kinds`` and return it with its body.

    Raises
    ------
    MalformedMessageError
        Not an envelope, a foreign kind or scheme, a sealed envelope without ``auth_key``,
        a digest mismatch (`IntegrityError` when a sealed envelope fails authentication).
    """
    if auth_key is not None:
        env = open_envelope(data, auth_key, max_bytes=max_bytes)
    else:
        env = decode_envelope(data, max_bytes=max_bytes)
        if env.sealed:
            raise MalformedMessageError("this envelope is sealed: pass auth_key to open it")
    if env.kind not in kinds or env.scheme != SCHEME:
        raise MalformedMessageError(
            f"expected a {' or '.join(repr(k) for k in kinds)} envelope of scheme {SCHEME!r}, "
            f"got {env.kind!r} of scheme {env.scheme!r}"
        )
    payload = env.payload
    if len(payload) < DIGEST_BYTES:
        raise MalformedMessageError("CKKS payload shorter than its digest (truncated)")
    digest, body = payload[:DIGEST_BYTES], payload[DIGEST_BYTES:]
    expected = payload_digest(env.kind, env.fingerprint, env.key_id, body)
    if not secrets.compare_digest(digest, expected):
        raise MalformedMessageError(
            "CKKS payload digest mismatch: the bytes were corrupted or altered in transit"
        )
    return env, body
