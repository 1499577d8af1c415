"""Paillier modulus sizes: the floor, the default and the security label.

Paillier's security rests on factoring n = p*q, so its level is that of an RSA modulus of
the same size: NIST SP 800-57 Part 1 Rev. 5, Table 2 (IFC): 2048 bits ~ 112-bit,
3072 ~ 128, 7680 ~ 192, 15360 ~ 256 (1024 ~ 80, disallowed). The library defaults to 3072
bits and allows 2048 (labelled 112-bit); below that only inside
``insecure_test_parameters()``. phe itself accepts any size, so this check is the floor.
"""

from __future__ import annotations

from securecomp.errors import ParameterError
from securecomp.params.insecure import require_secure
from securecomp.params.security import SecurityLabel

__all__ = [
    "DEFAULT_PAILLIER_BITS",
    "MIN_PAILLIER_BITS",
    "check_paillier_key_bits",
]

#: Default modulus size: about 128-bit security.
DEFAULT_PAILLIER_BITS = 3072

#: Smallest size accepted outside the insecure opt-in: about 112-bit security.
MIN_PAILLIER_BITS = 2048

# Even inside the opt-in: below this, p and q are too small to be distinct random primes
# with any margin and packed plaintexts have no room; above, key generation takes hours.
_ABSOLUTE_MIN_BITS = 128
_ABSOLUTE_MAX_BITS = 16384

_SOURCE = "NIST SP 800-57 Pt. 1 Rev. 5, Table 2 (factoring modulus)"

# (modulus bits, security bits), descending.
_LEVELS: tuple[tuple[int, int], ...] = (
    (15360, 256),
    (7680, 192),
    (3072, 128),
    (2048, 112),
    (1024, 80),
)


def check_paillier_key_bits(bits: int) -> SecurityLabel:
    """Check a Paillier modulus size and label its security.

    Parameters
    ----------
    bits : int
        Bit length of the modulus n = p*q; even (p and q have ``bits // 2`` bits each).

    Returns
    -------
    SecurityLabel
        E.g. about 128-bit for 3072, about 112-bit for 2048; marked insecure below 2048
        (only returned inside ``insecure_test_parameters()``).

    Raises
    ------
    InsecureParameterError
        If ``bits < 2048`` outside ``insecure_test_parameters()``.
    ParameterError
        If ``bits`` is not an int, is odd, or is outside 128..16384 (even in the opt-in).
    """
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise ParameterError(f"Paillier key size must be an int number of bits, got {bits!r}")
    if bits % 2:
        raise ParameterError(
            f"Paillier key size must be even (n = p*q with two primes of bits/2 each), got "
            f"{bits}; use {DEFAULT_PAILLIER_BITS}"
        )
    if bits > _ABSOLUTE_MAX_BITS:
        raise ParameterError(
            f"a {bits}-bit Paillier modulus is beyond {_ABSOLUTE_MAX_BITS} bits: key "
            "generation and every operation would be impractically slow; use "
            f"{DEFAULT_PAILLIER_BITS} (about 128-bit security) or 7680 (about 192-bit)"
        )
    if bits < _ABSOLUTE_MIN_BITS:
        raise ParameterError(
            f"a {bits}-bit Paillier modulus is too small to be meaningful even for tests; "
            f"use at least {_ABSOLUTE_MIN_BITS} bits inside insecure_test_parameters(), or "
            f"{DEFAULT_PAILLIER_BITS} for real use"
        )
    level = next((sec for size, sec in _LEVELS if bits >= size), 0)
    require_secure(
        bits >= MIN_PAILLIER_BITS,
        f"a {bits}-bit Paillier modulus is below the {MIN_PAILLIER_BITS}-bit floor "
        f"(about 112-bit security; {bits} bits give "
        + (f"about {level}-bit)" if level else "far less than 80-bit)")
        + f"; use {DEFAULT_PAILLIER_BITS} bits",
    )
    return SecurityLabel(bits=level, source=_SOURCE, insecure=bits < MIN_PAILLIER_BITS)
