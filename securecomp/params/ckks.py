"""CKKS parameter sets: ring degree, modulus chain and scale, with their derived facts.

A chain ``(q_0, q_1, ..., q_L, P)`` in TenSEAL/SEAL order: ``q_0`` stays to the end and
holds the decrypted value (it must exceed the scale by the bits of the largest magnitude),
``q_1 .. q_L`` are consumed one per rescale, from the end (``q_L`` first), and ``P`` is the
special prime used only for key switching. Hence ``depth = len(chain) - 2`` rescales.
Cheon, Kim, Kim, Song, "Homomorphic Encryption for Arithmetic of Approximate Numbers"
(ASIACRYPT 2017), section 3; RNS variant as implemented by Microsoft SEAL.

Validation lives in :mod:`securecomp.params.validate`; a ``CKKSParameters`` only checks
that it is well formed.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass
from typing import Any

from securecomp.errors import ParameterError
from securecomp.params.primes import seal_primes
from securecomp.params.security import SecurityLabel
from securecomp.params.table import ckks_security_bits

__all__ = ["DEFAULT_CKKS_PARAMETERS", "CKKSParameters"]

_FINGERPRINT_DOMAIN = "securecomp/ckks-parameters/v1"


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ParameterError(f"{what} must be an int, got a bool")
    try:
        # operator.index accepts numpy integers but refuses floats (no silent truncation).
        return operator.index(value)
    except TypeError:
        raise ParameterError(f"{what} must be an int, got {value!r}") from None


@dataclass(frozen=True)
class CKKSParameters:
    """A CKKS parameter set as TenSEAL takes it.

    Invariant: fields are plain ints, ``poly_modulus_degree`` is a power of two, the chain
    has at least two primes (``q_0`` and the special prime) and ``scale_bits >= 1``; two
    sets are equal exactly when their ``fingerprint`` is.

    Parameters
    ----------
    poly_modulus_degree : int
        Ring degree N; N/2 complex slots.
    coeff_mod_bit_sizes : tuple of int
        Bit size of each prime, in chain order (special prime last).
    scale_bits : int
        The scale is ``2**scale_bits``.
    """

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int

    def __post_init__(self) -> None:
        n = _as_int(self.poly_modulus_degree, "poly_modulus_degree")
        if n < 2 or n & (n - 1):
            raise ParameterError(
                f"poly_modulus_degree must be a power of two, got {n}; use e.g. 8192"
            )
        try:
            raw = tuple(self.coeff_mod_bit_sizes)
        except TypeError:
            raise ParameterError(
                f"coeff_mod_bit_sizes must be a sequence of ints, got {self.coeff_mod_bit_sizes!r}"
            ) from None
        sizes = tuple(_as_int(b, f"coeff_mod_bit_sizes[{i}]") for i, b in enumerate(raw))
        if len(sizes) < 2:
            raise ParameterError(
                f"the chain {list(sizes)} needs at least two primes (the decryption prime and "
                "the special key-switching prime), plus one per planned rescale"
            )
        if any(b < 1 for b in sizes):
            raise ParameterError(f"prime bit sizes must be positive, got {list(sizes)}")
        scale = _as_int(self.scale_bits, "scale_bits")
        if scale < 1:
            raise ParameterError(f"scale_bits must be at least 1, got {scale}")
        object.__setattr__(self, "poly_modulus_degree", n)
        object.__setattr__(self, "coeff_mod_bit_sizes", sizes)
        object.__setattr__(self, "scale_bits", scale)

    @property
    def depth(self) -> int:
        """Number of rescales the chain allows: ``len(chain) - 2``."""
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def slot_count(self) -> int:
        """Number of slots, N/2."""
        return self.poly_modulus_degree // 2

    @property
    def total_log_q(self) -> int:
        """Sum of all prime bit sizes, special prime included (what the table bounds)."""
        return sum(self.coeff_mod_bit_sizes)

    @property
    def scale(self) -> float:
        """The nominal scale ``2**scale_bits``."""
        return float(2**self.scale_bits)

    @property
    def security_bits(self) -> int:
        """Highest HomomorphicEncryption.org level met (128/192/256), or 0 below the table."""
        return ckks_security_bits(self.poly_modulus_degree, self.total_log_q)

    @property
    def security_label(self) -> SecurityLabel:
        """:attr:`security_bits` as a labelled estimate (insecure below 128 bits)."""
        bits = self.security_bits
        return SecurityLabel(
            bits=bits,
            source="HomomorphicEncryption.org standard (ternary secret, classical)",
            insecure=bits < 128,
        )

    @property
    def primes(self) -> tuple[int, ...]:
        """The primes SEAL (and so TenSEAL) builds for this chain; see :func:`seal_primes`.

        Raises
        ------
        ParameterError
            If SEAL could not build the chain (bit size out of range, too few primes).
        """
        return seal_primes(self.poly_modulus_degree, self.coeff_mod_bit_sizes)

    @property
    def canonical_encoding(self) -> bytes:
        """Stable byte encoding of the parameter set (the fingerprint's preimage)."""
        chain = ",".join(str(b) for b in self.coeff_mod_bit_sizes)
        text = (
            f"{_FINGERPRINT_DOMAIN};N={self.poly_modulus_degree};q={chain};scale={self.scale_bits}"
        )
        return text.encode("ascii")

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of :attr:`canonical_encoding` (32 bytes); equal iff the parameters are."""
        return hashlib.sha256(self.canonical_encoding).digest()

    @property
    def fingerprint_hex(self) -> str:
        """:attr:`fingerprint` as 64 hex characters."""
        return self.fingerprint.hex()

    def __str__(self) -> str:
        chain = ",".join(str(b) for b in self.coeff_mod_bit_sizes)
        return f"CKKS(N={self.poly_modulus_degree}, chain=[{chain}], scale=2^{self.scale_bits})"


#: A secure, drift-free default: 128-bit, depth 2, 40-bit scale, 4096 slots.
DEFAULT_CKKS_PARAMETERS = CKKSParameters(8192, (60, 40, 40, 60), 40)
