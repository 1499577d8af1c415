"""Paillier backend of `SecureTensor` over phe keys and gmpy2 arithmetic.

* :mod:`~securecomp.he.paillier.keys` -- key pairs above the floor, ids, serialization;
* :mod:`~securecomp.he.paillier.backend` -- `PaillierBackend` (capability table, threat
  model), `paillier_keygen`;
* :mod:`~securecomp.he.paillier.layout` -- the packed and unpacked layouts and their bounds;
* :mod:`~securecomp.he.paillier.packed`, :mod:`~securecomp.he.paillier.unpacked` -- the
  operations of each layout;
* :mod:`~securecomp.he.paillier.arith` -- ciphertext arithmetic in Z_{n^2}^* (gmpy2);
* :mod:`~securecomp.he.paillier.encode` -- fixed-point scales of values and operands;
* :mod:`~securecomp.he.paillier.serialize` -- tensors in the wire envelope.
"""

from __future__ import annotations

from securecomp.he.paillier.backend import (
    DEFAULT_MAX_ADDITIONS,
    DEFAULT_PACKED_VALUE_BITS,
    DEFAULT_UNPACKED_VALUE_BITS,
    PaillierBackend,
    paillier_keygen,
)
from securecomp.he.paillier.encode import DEFAULT_FRAC_BITS
from securecomp.he.paillier.keys import (
    PaillierPublicKey,
    PaillierSecretKey,
    export_public_key,
    export_secret_key,
    load_public_key,
    load_secret_key,
    paillier_keypair,
)
from securecomp.he.paillier.layout import PACKED, PACKED_OPS, UNPACKED, UNPACKED_OPS

__all__ = [
    "DEFAULT_FRAC_BITS",
    "DEFAULT_MAX_ADDITIONS",
    "DEFAULT_PACKED_VALUE_BITS",
    "DEFAULT_UNPACKED_VALUE_BITS",
    "PACKED",
    "PACKED_OPS",
    "UNPACKED",
    "UNPACKED_OPS",
    "PaillierBackend",
    "PaillierPublicKey",
    "PaillierSecretKey",
    "export_public_key",
    "export_secret_key",
    "load_public_key",
    "load_secret_key",
    "paillier_keygen",
    "paillier_keypair",
]
