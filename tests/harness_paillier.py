"""Harness of the Paillier backend (unpacked layout) for the shared SecureTensor tests.

Small keys (`SMALL_TEST_PAILLIER_BITS`) through the insecure opt-in. The shared tests draw
floats in [-8, 8] and contract over at most 5 terms: with 24 fractional bits for values
and plaintext operands, each product term is within 16 * 2^-25 of numpy's and a 5-term
sum within 2^-18, the tolerance used here. The packed layout cannot run every shared
test (``np.asarray(t.sum())`` sums inside a packed row); it is checked against numpy in
``tests/he/test_he_paillier_packed.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
from harness import Harness

from securecomp.he.paillier import PaillierBackend, PaillierSecretKey, paillier_keygen
from securecomp.params import (
    SMALL_TEST_PAILLIER_BITS,
    InsecureParametersWarning,
    insecure_test_parameters,
)
from securecomp.tensor import SecureTensor

#: Fractional bits of the harness backend (values and float plaintext operands).
HARNESS_FRAC_BITS = 24
#: Absolute tolerance of the shared tests: 64 ulps at 24 fractional bits.
HARNESS_ATOL = 2.0**-18


def small_keygen(frac_bits: int = HARNESS_FRAC_BITS) -> tuple[PaillierBackend, PaillierSecretKey]:
    """A test-sized key pair, generated inside the insecure opt-in."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            return paillier_keygen(SMALL_TEST_PAILLIER_BITS, frac_bits=frac_bits)


def paillier_harness() -> Harness:
    """The unpacked Paillier backend with a 512-bit key against the numpy oracle."""
    backend, key = small_keygen()
    other, _ = small_keygen()

    def protect(values: np.ndarray) -> SecureTensor:
        return backend.encrypt(values, layout="unpacked")

    return Harness(
        name="paillier",
        protect=protect,
        open=lambda t: t.decrypt(key),
        protect_other_key=lambda v: other.encrypt(v, layout="unpacked"),
        atol=HARNESS_ATOL,
        ops=backend.capabilities("unpacked"),
    )
