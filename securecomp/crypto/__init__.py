"""Thin, typed wrappers over `cryptography`: one concept per module.

- `securecomp.crypto.prg`: AES-256-CTR pseudorandom generator into numpy buffers.
- `securecomp.crypto.kdf`: HKDF-SHA256 with injective domain separation.
- `securecomp.crypto.aead`: AES-256-GCM ``seal`` / ``open_sealed``.
- `securecomp.crypto.x25519`: X25519 key agreement with HKDF domain separation.
- `securecomp.crypto.ed25519`: Ed25519 identity keys and signatures (RFC 8032).
- `securecomp.crypto.shamir`: Shamir sharing of byte strings over GF(2^31 - 1), vectorized.

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
from securecomp.crypto.cdt import CdtSampler
from securecomp.crypto.ed25519 import PUBLIC_KEY_BYTES as ED25519_PUBLIC_KEY_BYTES
from securecomp.crypto.ed25519 import (
    SIGNATURE_BYTES,
    Ed25519KeyPair,
    VerifyingKey,
    verify_signature,
)
from securecomp.crypto.kdf import KDF_VERSION, Domain, derive_key, derive_keys, derive_prg
from securecomp.crypto.prg import SEED_BYTES, AesCtrPrg, ShapeLike
from securecomp.crypto.shamir import (
    FIELD_PRIME,
    lagrange_at_zero,
    reconstruct_secrets,
    share_secrets,
)
from securecomp.crypto.x25519 import PUBLIC_KEY_BYTES, X25519KeyPair, agree

__all__ = [
    "ED25519_PUBLIC_KEY_BYTES",
    "FIELD_PRIME",
    "KDF_VERSION",
    "KEY_BYTES",
    "NONCE_BYTES",
    "OVERHEAD_BYTES",
    "PUBLIC_KEY_BYTES",
    "SEED_BYTES",
    "SIGNATURE_BYTES",
    "TAG_BYTES",
    "AesCtrPrg",
    "CdtSampler",
    "Domain",
    "Ed25519KeyPair",
    "ShapeLike",
    "VerifyingKey",
    "X25519KeyPair",
    "agree",
    "derive_key",
    "derive_keys",
    "derive_prg",
    "generate_key",
    "lagrange_at_zero",
    "open_sealed",
    "reconstruct_secrets",
    "seal",
    "share_secrets",
    "verify_signature",
]
