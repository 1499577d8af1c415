"""Pinned Ed25519 identity keys of the clients of a secure-aggregation session.

Against a malicious server, Bonawitz et al. (CCS 2017, section 4 and Fig. 4, active
model) assume a public-key infrastructure: every client ``u`` has a long-term signing key
whose public half ``d_u^PK`` every other client knows *independently of the server*, so
the server cannot substitute its own keys for a client's (a man in the middle that would
collect the client's Shamir shares) nor invent clients (Sybils). Here the public keys are
pinned in the session configuration (`securecomp.secagg.config.SecAggConfig`): whoever
distributes the configuration to the clients is trusted to list the right key for each
id, and the configuration fingerprint (sent in every message header) covers them, so two
parties holding different key lists refuse each other's messages.

`PinnedIdentities` holds the raw keys and checks signatures against them
(`securecomp.crypto.ed25519`), raising `IntegrityError` that names the claimed signer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from securecomp.crypto.ed25519 import PUBLIC_KEY_BYTES, Ed25519KeyPair, VerifyingKey
from securecomp.errors import ParameterError

__all__ = ["PinnedIdentities"]

_TAG = b"securecomp/secagg/identities/v1"


class PinnedIdentities:
    """The Ed25519 public key of each client ``0 .. n-1``, fixed before the session.

    Invariant: ``len(keys) == n``, every key is 32 bytes and no two clients share one.

    Parameters
    ----------
    keys : sequence of bytes
        Raw public keys, the key of client ``u`` at index ``u``.
    """

    __slots__ = ("_digest", "_keys", "_loaded")

    def __init__(self, keys: Sequence[bytes]) -> None:
        raw = tuple(keys)
        if not raw:
            raise ParameterError("pin at least one identity key")
        for u, k in enumerate(raw):
            if type(k) is not bytes or len(k) != PUBLIC_KEY_BYTES:
                raise ParameterError(
                    f"identity key of client {u} must be {PUBLIC_KEY_BYTES} raw Ed25519 bytes"
                )
        if len(set(raw)) != len(raw):
            seen: dict[bytes, int] = {}
            dup = sorted({u for u, k in enumerate(raw) if seen.setdefault(k, u) != u})
            raise ParameterError(
                f"clients {dup} reuse another client's identity key; every client needs its "
                "own key pair (a shared key would let one client sign for another)"
            )
        self._keys = raw
        # Loading a key costs about a microsecond; cache them anyway, they are reused
        # for every message a client signs.
        self._loaded: dict[int, VerifyingKey] = {}
        h = hashlib.sha256(_TAG)
        h.update(len(raw).to_bytes(8, "big"))
        h.update(b"".join(raw))
        self._digest = h.digest()

    @classmethod
    def from_key_pairs(cls, pairs: Iterable[Ed25519KeyPair]) -> PinnedIdentities:
        """Pin the public halves of ``pairs`` (client ``u`` is ``pairs[u]``)."""
        return cls([p.public_bytes for p in pairs])

    @property
    def n(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> tuple[bytes, ...]:
        """The raw public keys, by client id."""
        return self._keys

    def key(self, client: int) -> VerifyingKey:
        """The pinned key of ``client``."""
        if type(client) is not int or not 0 <= client < len(self._keys):
            raise ParameterError(f"no identity key is pinned for client {client!r}")
        key = self._loaded.get(client)
        if key is None:
            key = VerifyingKey.from_bytes(self._keys[client])
            self._loaded[client] = key
        return key

    def verify(self, client: int, message: bytes, signature: bytes) -> None:
        """Check that ``client`` signed ``message``.

        Raises
        ------
        IntegrityError
            It did not (forged, altered, or signed in another context).
        """
        self.key(client).verify(message, signature, signer=f"client {client}")

    def matches(self, client: int, pair: Ed25519KeyPair | None) -> bool:
        """Whether ``pair`` is the identity pinned for ``client``."""
        return isinstance(pair, Ed25519KeyPair) and self.key(client).raw == pair.public_bytes

    def digest(self) -> bytes:
        """SHA-256 over all keys (part of the configuration fingerprint)."""
        return self._digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PinnedIdentities) and other._keys == self._keys

    def __hash__(self) -> int:
        return hash(self._keys)

    def __repr__(self) -> str:
        return f"PinnedIdentities(n={len(self._keys)}, digest={self.digest()[:4].hex()}...)"
