"""Dealer-free preprocessing for two computing parties (Paillier-based, semi-honest).

* :mod:`~securecomp.mpc.offline.provider` -- `PaillierTriples`, a `Preprocessing` provider
  a `Session` can use instead of (or in front of) the dealer;
* :mod:`~securecomp.mpc.offline.triples` -- the protocol roles (key holder, responder) for
  elementwise and matrix triples, without I/O;
* :mod:`~securecomp.mpc.offline.reusable` -- SecureML's reusable data-matrix mask
  (`open_mask`, `masked_matmul`);
* :mod:`~securecomp.mpc.offline.wide` -- key-holder encryption through the factorization,
  simultaneous exponentiation, wide-slot packing.

Threat model: semi-honest parties only; the material is labelled
``PaillierTriples.security == "semi-honest"`` so that actively secure modes refuse it.
Importing this package generates no key and opens no channel.
"""

from securecomp.mpc.offline.provider import SEMI_HONEST, PaillierTriples
from securecomp.mpc.offline.reusable import (
    MaskedMatrix,
    MaskTriple,
    MatrixMask,
    masked_matmul,
    open_mask,
)

__all__ = [
    "SEMI_HONEST",
    "MaskTriple",
    "MaskedMatrix",
    "MatrixMask",
    "PaillierTriples",
    "masked_matmul",
    "open_mask",
]
