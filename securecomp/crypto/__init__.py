"""Thin, typed wrappers over `cryptography`: one concept per module.

- `securecomp.crypto.prg`: AES-256-CTR pseudorandom generator into numpy buffers.
- `securecomp.crypto.kdf`: HKDF-SHA256 with injective domain separation.
- `securecomp.crypto.aead`: AES-256-GCM ``seal`` / ``open_sealed``.

Importing this package generates no keys and holds no state.
"""

from __future__ import annotations

from securecomp.crypto.aead import (
    KEY_BYTES,
    NONCE_BYTES,
    OVERHEAD_BYTES,
    TAG_BYTES,
    generate_key,
    open_sealed,
    seal,
)
from securecomp.crypto.kdf import KDF_VERSION, Domain, derive_key, derive_keys, derive_prg
from securecomp.crypto.prg import SEED_BYTES, AesCtrPrg, ShapeLike

__all__ = [
    "KDF_VERSION",
    "KEY_BYTES",
    "NONCE_BYTES",
    "OVERHEAD_BYTES",
    "SEED_BYTES",
    "TAG_BYTES",
    "AesCtrPrg",
    "Domain",
    "ShapeLike",
    "derive_key",
    "derive_keys",
    "derive_prg",
    "generate_key",
    "open_sealed",
    "seal",
]
