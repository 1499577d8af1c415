"""X25519 key agreement (RFC 7748) with HKDF key derivation and domain separation.

A thin, typed wrapper over `cryptography`'s ``X25519PrivateKey``: raw 32-byte public keys on
the wire, and shared secrets that never leave this module undigested. `agree` runs the
Diffie-Hellman function and feeds the result to HKDF-SHA256 (`securecomp.crypto.kdf`) with

* ``info`` = the canonical encoding of a `Domain` (protocol, purpose, session, round, pair),
  so one agreement can serve several purposes (e.g. secure aggregation's pairwise mask
  seed and share-encryption key) with independent outputs; and
* ``salt`` = both public keys, sorted, so the derived key is bound to the exact key pair
  that produced it (the "hash the transcript" advice of RFC 7748 section 6.1 and the
  HKDF usage of NIST SP 800-56C r2 section 5).

Low-order public keys (which force an all-zero shared secret, RFC 7748 section 6.1) are
rejected: OpenSSL refuses them, and the refusal is reported as `MalformedMessageError`
because such a key can only come from a faulty or malicious peer.

Importing this module generates no key.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from securecomp.crypto.kdf import Domain, derive_key
from securecomp.errors import MalformedMessageError, ParameterError

__all__ = [
    "PRIVATE_KEY_BYTES",
    "PUBLIC_KEY_BYTES",
    "X25519KeyPair",
    "agree",
    "check_public_key",
]

#: Length of a raw X25519 public key (a Montgomery u-coordinate, little-endian).
PUBLIC_KEY_BYTES = 32
#: Length of a raw X25519 private key (clamped by the library when used).
PRIVATE_KEY_BYTES = 32


def check_public_key(raw: object, *, name: str = "public key") -> bytes:
    """Validate the shape of a raw X25519 public key received from a peer.

    Parameters
    ----------
    raw : bytes
        Candidate key.
    name : str
        How to call it in the error message.

    Returns
    -------
    bytes
        ``raw`` as immutable bytes.

    Raises
    ------
    MalformedMessageError
        Not bytes, or not exactly 32 bytes long.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MalformedMessageError(f"{name} must be bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if len(raw) != PUBLIC_KEY_BYTES:
        raise MalformedMessageError(
            f"{name} must be {PUBLIC_KEY_BYTES} raw bytes (X25519), got {len(raw)}"
        )
    return raw


class X25519KeyPair:
    """An X25519 private key and its public key.

    Invariant: ``a.exchange(b.public_bytes) == b.exchange(a.public_bytes)``.

    Create with `generate` (fresh key from the OS CSPRNG, via OpenSSL) or
    `from_private_bytes` (e.g. a key reconstructed from Shamir shares). The private key is
    never shown by ``repr``; `private_bytes` exports it explicitly for secret sharing.
    """

    __slots__ = ("_private", "_public")

    def __init__(self, private_key: X25519PrivateKey) -> None:
        if not isinstance(private_key, X25519PrivateKey):
            raise ParameterError(
                "X25519KeyPair wraps a cryptography X25519PrivateKey; use "
                "X25519KeyPair.generate() or X25519KeyPair.from_private_bytes()"
            )
        self._private = private_key
        self._public = private_key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> X25519KeyPair:
        """A fresh key pair (OpenSSL draws the private key from its CSPRNG)."""
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> X25519KeyPair:
        """Rebuild a key pair from the 32 raw private-key bytes.

        Raises
        ------
        ParameterError
            ``raw`` is not 32 bytes.
        """
        if not isinstance(raw, bytes | bytearray | memoryview) or len(raw) != PRIVATE_KEY_BYTES:
            raise ParameterError(f"an X25519 private key is {PRIVATE_KEY_BYTES} raw bytes")
        return cls(X25519PrivateKey.from_private_bytes(bytes(raw)))

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte raw public key."""
        return self._public

    def private_bytes(self) -> bytes:
        """The 32-byte raw private key: secret material, export only to secret-share it."""
        return self._private.private_bytes_raw()

    def exchange(self, peer_public: bytes) -> bytes:
        """The raw X25519 shared secret with ``peer_public``.

        Prefer `agree`, which derives a key for a stated purpose; the raw secret is not
        uniformly random and must not be used as a key directly (RFC 7748 section 6.1).

        Raises
        ------
        MalformedMessageError
            ``peer_public`` is malformed or a low-order point (all-zero shared secret).
        """
        raw = check_public_key(peer_public, name="peer public key")
        try:
            return self._private.exchange(X25519PublicKey.from_public_bytes(raw))
        except ValueError:
            # OpenSSL refuses low-order points, whose shared secret is all zeros.
            raise MalformedMessageError(
                "peer X25519 public key is a low-order point (the shared secret would be "
                "all zeros); the peer is faulty or malicious: exclude it"
            ) from None

    def __repr__(self) -> str:
        return f"X25519KeyPair(public={self._public[:4].hex()}...)"


def agree(keypair: X25519KeyPair, peer_public: bytes, domain: Domain, length: int = 32) -> bytes:
    """Derive a ``length``-byte key shared with the owner of ``peer_public`` for ``domain``.

    ``HKDF-SHA256(ikm = X25519(sk, peer_pk), salt = min(pk_a, pk_b) || max(pk_a, pk_b),
    info = domain.encode())``. Both sides obtain the same key as long as they use the same
    domain; use `Domain.for_pair` so that ``(u, v)`` and ``(v, u)`` coincide.

    Parameters
    ----------
    keypair : X25519KeyPair
        Our key pair.
    peer_public : bytes
        The peer's 32-byte public key.
    domain : Domain
        What the key is for (protocol, purpose, session, round, pair).
    length : int
        Output length in bytes (default 32: an AES-256 key or PRG seed).

    Returns
    -------
    bytes
        The derived key.

    Raises
    ------
    MalformedMessageError
        ``peer_public`` is malformed or of low order.
    """
    if not isinstance(keypair, X25519KeyPair):
        raise ParameterError(f"keypair must be an X25519KeyPair, got {type(keypair).__name__}")
    shared = keypair.exchange(peer_public)
    mine = keypair.public_bytes
    peer = bytes(peer_public)
    salt = min(mine, peer) + max(mine, peer)
    return derive_key(shared, domain, length, salt=salt)
