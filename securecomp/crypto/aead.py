"""AES-256-GCM authenticated encryption with associated data (NIST SP 800-38D).

A sealed blob is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``. The nonce is fresh
from ``os.urandom`` for every message (SP 800-38D section 8.2.2, random construction), so
callers never manage nonces. The associated data is authenticated but not encrypted: the
wire layer passes the message header (session, round, sender, recipient, kind), so a payload
replayed into another session or round, or re-addressed, fails to open.

Limits: with random 96-bit nonces, SP 800-38D section 8.3 caps one key at 2^32 messages
(collision probability below 2^-32); derive a fresh key per session with
`securecomp.crypto.kdf.derive_key` and this bound is never approached.
"""

from __future__ import annotations

import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securecomp.errors import IntegrityError, MalformedMessageError, ParameterError

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "OVERHEAD_BYTES",
    "TAG_BYTES",
    "generate_key",
    "open_sealed",
    "seal",
]

#: AES-256 key length.
KEY_BYTES = 32
#: GCM nonce length (96 bits, the length GCM is specified for without extra hashing).
NONCE_BYTES = 12
#: Full-length GCM authentication tag (128 bits; truncated tags weaken forgery bounds).
TAG_BYTES = 16
#: Bytes a sealed blob adds to its plaintext.
OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES


def _as_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ParameterError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _cipher(key: object) -> AESGCM:
    raw = _as_bytes("key", key)
    if len(raw) != KEY_BYTES:
        raise ParameterError(
            f"AES-GCM key must be {KEY_BYTES} bytes (AES-256), got {len(raw)}; "
            "use generate_key() or securecomp.crypto.kdf.derive_key(..., length=32)"
        )
    return AESGCM(raw)


def generate_key() -> bytes:
    """A fresh uniformly random 32-byte AES-256-GCM key from the OS CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext``, binding it to ``associated_data``.

    Parameters
    ----------
    key : bytes
        32-byte AES-256 key.
    plaintext : bytes
        Data to encrypt (may be empty).
    associated_data : bytes
        Data authenticated but not encrypted (e.g. the message header); may be empty but
        must be given, and must be passed identically to `open_sealed`.

    Returns
    -------
    bytes
        ``nonce || ciphertext || tag``, ``len(plaintext) + 28`` bytes.

    Raises
    ------
    ParameterError
        Wrong key size, non-bytes input, or data beyond AES-GCM's length limit.
    """
    cipher = _cipher(key)
    data = _as_bytes("plaintext", plaintext)
    aad = _as_bytes("associated_data", associated_data)
    nonce = os.urandom(NONCE_BYTES)
    try:
        return nonce + cipher.encrypt(nonce, data, aad)
    except OverflowError as exc:
        raise ParameterError(
            f"message too long for one AES-GCM operation ({exc}); split it into chunks"
        ) from exc


def open_sealed(key: bytes, blob: bytes, associated_data: bytes) -> bytes:
    """Verify and decrypt a blob produced by `seal`.

    Parameters
    ----------
    key : bytes
        The 32-byte key used by `seal`.
    blob : bytes
        ``nonce || ciphertext || tag``.
    associated_data : bytes
        Exactly the associated data given to `seal`.

    Returns
    -------
    bytes
        The plaintext; nothing is returned unless the tag verifies.

    Raises
    ------
    MalformedMessageError
        ``blob`` is shorter than a nonce plus a tag, so it cannot be a sealed message.
    IntegrityError
        The tag does not verify: the blob was tampered with, the key is wrong, or the
        associated data (e.g. the header) differs from the one sealed.
    ParameterError
        Wrong key size or non-bytes input.
    """
    cipher = _cipher(key)
    raw = _as_bytes("blob", blob)
    aad = _as_bytes("associated_data", associated_data)
    if len(raw) < OVERHEAD_BYTES:
        raise MalformedMessageError(
            f"sealed blob is {len(raw)} bytes, shorter than the {OVERHEAD_BYTES}-byte "
            "nonce and tag; it was truncated or is not an AES-GCM sealed message"
        )
    try:
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except InvalidTag:
        # One message for all causes on purpose: GCM cannot tell them apart, and saying
        # more would not be true.
        raise IntegrityError(
            "AES-GCM authentication failed: the message was tampered with, the key is "
            "wrong, or the associated data (e.g. the header) does not match the one it was "
            "sealed with; discard the message"
        ) from None
    except OverflowError as exc:
        raise MalformedMessageError(
            f"sealed blob too long for one AES-GCM operation ({exc})"
        ) from exc
