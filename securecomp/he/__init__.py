"""Homomorphic encryption backends of `SecureTensor`: CKKS (TenSEAL) and Paillier (phe)."""

from securecomp.he.ckks import (
    CKKSBackend,
    CKKSContext,
    Release,
    ckks_keygen,
    planned_error_bound,
    release,
    release_rounded_heuristic,
)
from securecomp.he.paillier import (
    PACKED,
    UNPACKED,
    PaillierBackend,
    PaillierPublicKey,
    PaillierSecretKey,
    export_public_key,
    export_secret_key,
    load_public_key,
    load_secret_key,
    paillier_keygen,
    paillier_keypair,
)

__all__ = [
    "PACKED",
    "UNPACKED",
    "CKKSBackend",
    "CKKSContext",
    "PaillierBackend",
    "PaillierPublicKey",
    "PaillierSecretKey",
    "Release",
    "ckks_keygen",
    "export_public_key",
    "export_secret_key",
    "load_public_key",
    "load_secret_key",
    "paillier_keygen",
    "paillier_keypair",
    "planned_error_bound",
    "release",
    "release_rounded_heuristic",
]
