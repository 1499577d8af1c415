"""Ed25519 signatures (RFC 8032, pure Ed25519) for long-term identity keys.

A thin, typed wrapper over `cryptography`'s ``Ed25519PrivateKey``: raw 32-byte public keys
(RFC 8032 section 5.1.5 encoding) for pinning in a configuration, 64-byte signatures, and a
verification that raises `IntegrityError` instead of returning a flag that a caller could
forget to check.

Use: a party's identity key pair is long-lived and its public key is *pinned* in the
session configuration by whoever sets the session up (a public-key infrastructure is
assumed: the pinned key really belongs to the party it is listed for). Protocols sign
their own canonical, tagged byte strings (domain separation lives in the message, since
pure Ed25519 has no context input), e.g. the key advertisements and the survivor set of
secure aggregation against a malicious server (Bonawitz et al., CCS 2017, section 4).

Verification is `cryptography`'s (OpenSSL): it rejects signatures whose ``S`` is not
reduced (RFC 8032 section 5.1.7, step 1), so a valid signature cannot be mauled into a
second valid one. Importing this module generates no key.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from securecomp.errors import IntegrityError, ParameterError

__all__ = [
    "PRIVATE_KEY_BYTES",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "Ed25519KeyPair",
    "VerifyingKey",
    "verify_signature",
]

#: Length of a raw Ed25519 public key (an encoded curve point, RFC 8032 section 5.1.2).
PUBLIC_KEY_BYTES = 32
#: Length of a raw Ed25519 private key (the seed of RFC 8032 section 5.1.5).
PRIVATE_KEY_BYTES = 32
#: Length of an Ed25519 signature (``R || S``).
SIGNATURE_BYTES = 64

_BYTES = bytes | bytearray | memoryview


def _as_bytes(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, _BYTES) or len(value) != size:
        got = f"{len(value)} bytes" if isinstance(value, _BYTES) else type(value).__name__
        raise ParameterError(f"{what} must be {size} raw bytes, got {got}")
    return bytes(value)


class VerifyingKey:
    """A loaded Ed25519 public key that checks signatures.

    Invariant: ``key.verify(m, pair.sign(m))`` succeeds iff ``key.raw == pair.public_bytes``
    (up to the unforgeability of Ed25519).

    Create with `from_bytes` (a pinned raw key) or `Ed25519KeyPair.verifying_key`.
    """

    __slots__ = ("_key", "_raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        if not isinstance(key, Ed25519PublicKey):
            raise ParameterError(
                "VerifyingKey wraps a cryptography Ed25519PublicKey; use VerifyingKey.from_bytes()"
            )
        self._key = key
        self._raw = key.public_bytes_raw()

    @classmethod
    def from_bytes(cls, raw: bytes) -> VerifyingKey:
        """Load a raw 32-byte public key.

        Raises
        ------
        ParameterError
            ``raw`` is not 32 bytes.
        """
        data = _as_bytes(raw, PUBLIC_KEY_BYTES, "an Ed25519 public key")
        return cls(Ed25519PublicKey.from_public_bytes(data))

    @property
    def raw(self) -> bytes:
        """The 32-byte raw public key (what a configuration pins)."""
        return self._raw

    def verify(self, message: bytes, signature: bytes, *, signer: object = None) -> None:
        """Check ``signature`` on ``message``.

        Parameters
        ----------
        message, signature : bytes
            The signed bytes and the 64-byte signature.
        signer : optional
            Who is claimed to have signed (only used in the error message).

        Raises
        ------
        IntegrityError
            The signature is not 64 bytes or does not verify under this key: the message
            was altered, signed by someone else, or signed in another context.
        """
        who = f" of {signer!r}" if signer is not None else ""
        if not isinstance(signature, _BYTES) or len(signature) != SIGNATURE_BYTES:
            raise IntegrityError(
                f"the Ed25519 signature{who} is not {SIGNATURE_BYTES} bytes: refuse the message"
            )
        if not isinstance(message, _BYTES):
            raise ParameterError(f"the signed message must be bytes, got {type(message).__name__}")
        try:
            self._key.verify(bytes(signature), bytes(message))
        except InvalidSignature:
            raise IntegrityError(
                f"the Ed25519 signature{who} does not verify under its pinned public key "
                f"{self._raw[:4].hex()}...: the message was forged or altered, or signed in "
                "another context; refuse it"
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyingKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"VerifyingKey({self._raw[:4].hex()}...)"


class Ed25519KeyPair:
    """An Ed25519 identity key pair.

    Invariant: ``VerifyingKey.from_bytes(p.public_bytes).verify(m, p.sign(m))`` succeeds.

    Create with `generate` (fresh key from the OS CSPRNG, via OpenSSL) or
    `from_private_bytes` (a stored identity). ``repr`` never shows the private key;
    `private_bytes` exports it explicitly.
    """

    __slots__ = ("_private", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ParameterError(
                "Ed25519KeyPair wraps a cryptography Ed25519PrivateKey; use "
                "Ed25519KeyPair.generate() or Ed25519KeyPair.from_private_bytes()"
            )
        self._private = private_key
        self._public = VerifyingKey(private_key.public_key())

    @classmethod
    def generate(cls) -> Ed25519KeyPair:
        """A fresh key pair."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Ed25519KeyPair:
        """Rebuild a key pair from its 32 raw private-key bytes.

        Raises
        ------
        ParameterError
            ``raw`` is not 32 bytes.
        """
        data = _as_bytes(raw, PRIVATE_KEY_BYTES, "an Ed25519 private key")
        return cls(Ed25519PrivateKey.from_private_bytes(data))

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte raw public key."""
        return self._public.raw

    @property
    def verifying_key(self) -> VerifyingKey:
        """The public half, loaded."""
        return self._public

    def private_bytes(self) -> bytes:
        """The 32-byte raw private key: secret material, export only to store the identity."""
        return self._private.private_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of ``message`` (deterministic, RFC 8032 section 5.1.6)."""
        if not isinstance(message, _BYTES):
            raise ParameterError(f"the message must be bytes, got {type(message).__name__}")
        return self._private.sign(bytes(message))

    def __repr__(self) -> str:
        return f"Ed25519KeyPair(public={self._public.raw[:4].hex()}...)"


def verify_signature(
    public_key: bytes | VerifyingKey, message: bytes, signature: bytes, *, signer: object = None
) -> None:
    """Check an Ed25519 signature against a raw or loaded public key.

    Raises
    ------
    IntegrityError
        The signature does not verify (see `VerifyingKey.verify`).
    ParameterError
        ``public_key`` is not a 32-byte key.
    """
    if isinstance(public_key, VerifyingKey):
        key = public_key
    else:
        key = VerifyingKey.from_bytes(public_key)
    key.verify(message, signature, signer=signer)
