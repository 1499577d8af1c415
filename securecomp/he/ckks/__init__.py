"""CKKS (TenSEAL) backend of `SecureTensor`.

* :mod:`~securecomp.he.ckks.context`: `CKKSContext`, keys, the public/secret split, Galois
  keys on demand, serialization;
* :mod:`~securecomp.he.ckks.backend`: `CKKSBackend`, `ckks_keygen`, `needs_galois_keys`;
  layouts and the per-layout capability table in :mod:`~securecomp.he.ckks.layouts`;
* :mod:`~securecomp.he.ckks.release`: how a decrypted value may leave the key holder:
  `release` (noise flooding) and the labelled `release_rounded_heuristic`.
"""

from securecomp.he.ckks.backend import CKKSBackend, ckks_keygen, needs_galois_keys
from securecomp.he.ckks.context import CKKSContext
from securecomp.he.ckks.layouts import COLUMN, COLUMN_T, ELEMENT, LAYOUTS, VECTOR
from securecomp.he.ckks.polyval import polyval_depth
from securecomp.he.ckks.release import (
    Release,
    flooding_std,
    planned_error_bound,
    release,
    release_rounded_heuristic,
)

__all__ = [
    "COLUMN",
    "COLUMN_T",
    "ELEMENT",
    "LAYOUTS",
    "VECTOR",
    "CKKSBackend",
    "CKKSContext",
    "Release",
    "ckks_keygen",
    "flooding_std",
    "needs_galois_keys",
    "planned_error_bound",
    "polyval_depth",
    "release",
    "release_rounded_heuristic",
]
