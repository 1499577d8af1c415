"""Hybrid protocols: conversion between HE ciphertexts and additive secret shares.

* :mod:`~securecomp.hybrid.protocol` -- the conversions inside a two-party MPC session:
  `ckks_to_shares`, `paillier_to_shares`, `shares_to_ckks`, `shares_to_paillier`;
* :mod:`~securecomp.hybrid.ckks`, :mod:`~securecomp.hybrid.paillier` -- the key holder's
  and the evaluator's steps, without I/O, each direction's parameters in its docstring;
* :mod:`~securecomp.hybrid.budget` -- mask widths, CKKS flooding, modulus budget and
  precision; `plan_ckks_conversion` plans a chain with room for the mask;
* :mod:`~securecomp.hybrid.flood` -- SEAL-level masking and flooding of CKKS ciphertexts;
* :mod:`~securecomp.hybrid.embedding`, :mod:`~securecomp.hybrid.rns` -- exact CKKS
  encoding and decoding (no float64) and SEAL's plaintexts as integer polynomials;
* :mod:`~securecomp.hybrid.example` -- an encrypted linear layer under CKKS, a ReLU in
  MPC, the result revealed to the client (``python -m securecomp.hybrid.example``).

Threat model: two semi-honest parties (key holder and evaluator); statistical hiding
``2^-sigma`` per value (sigma = 40, the floor outside ``insecure_test_parameters()``) of
every value the key holder decrypts, noise flooding of the CKKS error so the evaluator's
private operands stay hidden, conditional on the error bound the evaluator declares.
Importing this package generates no key.
"""

from securecomp.hybrid.budget import (
    CKKSFlooding,
    ckks_budget_bits,
    ckks_flooding,
    plan_ckks_conversion,
)
from securecomp.hybrid.protocol import (
    ckks_to_shares,
    paillier_to_shares,
    shares_to_ckks,
    shares_to_paillier,
)

__all__ = [
    "CKKSFlooding",
    "ckks_budget_bits",
    "ckks_flooding",
    "ckks_to_shares",
    "paillier_to_shares",
    "plan_ckks_conversion",
    "shares_to_ckks",
    "shares_to_paillier",
]
