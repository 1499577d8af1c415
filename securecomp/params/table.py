"""The HomomorphicEncryption.org security table for RLWE, as data.

Largest total bit count of the ciphertext modulus (log2 q, *including* the special
key-switching prime) for each ring degree N, for a uniform ternary secret and error
standard deviation 3.2, at 128-, 192- and 256-bit classical security.

Sources: M. Albrecht et al., "Homomorphic Encryption Standard", ePrint 2019/939, Table 1
(ternary secret rows); the same numbers are enforced by Microsoft SEAL
(``native/src/seal/util/hestdparms.h``, ``SEAL_HE_STD_PARMS_{128,192,256}_TC``), which
TenSEAL builds on; TenSEAL refuses contexts above the 128-bit row.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from securecomp.errors import ParameterError

__all__ = [
    "ERROR_STD_DEV",
    "HE_STANDARD_MAX_LOG_Q",
    "HE_STANDARD_POLY_DEGREES",
    "SECURITY_LEVELS",
    "ckks_security_bits",
    "max_log_q",
]

#: Standard deviation of the RLWE error distribution assumed by the table (and by SEAL).
ERROR_STD_DEV = 3.2

#: Ring degrees covered by the table, ascending.
HE_STANDARD_POLY_DEGREES: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384, 32768)

_ROWS: dict[int, tuple[int, ...]] = {
    128: (27, 54, 109, 218, 438, 881),
    192: (19, 37, 75, 152, 305, 611),
    256: (14, 29, 58, 118, 237, 476),
}

#: security bits -> {N -> max log2 q}; read-only.
HE_STANDARD_MAX_LOG_Q: Mapping[int, Mapping[int, int]] = MappingProxyType(
    {
        bits: MappingProxyType(dict(zip(HE_STANDARD_POLY_DEGREES, row, strict=True)))
        for bits, row in _ROWS.items()
    }
)

#: Security levels with a row in the table, ascending.
SECURITY_LEVELS: tuple[int, ...] = tuple(sorted(_ROWS))


def max_log_q(poly_modulus_degree: int, security_bits: int = 128) -> int:
    """Largest secure total log2 q for ring degree N at the given security level.

    Parameters
    ----------
    poly_modulus_degree : int
        Ring degree N (a power of two from 1024 to 32768).
    security_bits : int
        128, 192 or 256 (classical, ternary secret).

    Returns
    -------
    int
        The table entry.

    Raises
    ------
    ParameterError
        If the security level or N has no row/column in the table.
    """
    row = HE_STANDARD_MAX_LOG_Q.get(security_bits)
    if row is None:
        raise ParameterError(
            f"no HomomorphicEncryption.org row for {security_bits}-bit security; "
            f"use one of {list(SECURITY_LEVELS)}"
        )
    bound = row.get(poly_modulus_degree)
    if bound is None:
        raise ParameterError(
            f"poly_modulus_degree {poly_modulus_degree} is not in the HomomorphicEncryption.org "
            f"table; use a power of two among {list(HE_STANDARD_POLY_DEGREES)}"
        )
    return bound


def ckks_security_bits(poly_modulus_degree: int, total_log_q: int) -> int:
    """Highest tabulated security level met by (N, total log2 q), or 0 if none is.

    Parameters
    ----------
    poly_modulus_degree : int
        Ring degree N.
    total_log_q : int
        Sum of the bit sizes of all primes of the chain, special prime included.

    Returns
    -------
    int
        256, 192 or 128; 0 when the pair is below the 128-bit row or N is not tabulated.
    """
    for bits in reversed(SECURITY_LEVELS):
        bound = HE_STANDARD_MAX_LOG_Q[bits].get(poly_modulus_degree)
        if bound is not None and total_log_q <= bound:
            return bits
    return 0
