"""Microsoft SEAL's coefficient-modulus prime selection, replicated.

``seal::CoeffModulus::Create(N, bit_sizes)`` (SEAL ``native/src/seal/modulus.cpp`` with
``util::get_primes`` in ``numth.cpp``) works per distinct bit size b:

1. let k be the number of positions asking for b bits;
2. scan v = 2^b - 2N + 1, 2^b - 4N + 1, ... (every v = 1 mod 2N below 2^b, so the NTT of
   length N exists mod v) while v > 2^(b-1), keeping the first k primes: the k largest
   b-bit primes = 1 (mod 2N), found in descending order;
3. hand them out to the positions of size b in list order, each time taking the *last* one
   found, so the first such position receives the smallest of the k primes and the last
   position the largest.

Step 3 matters for scale drift: data primes are consumed from the end of the chain, so the
largest prime of a size is used by the first rescale. The selection is checked against
the chain that TenSEAL actually builds in ``tests/params/test_params_primes.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from securecomp.errors import ParameterError

__all__ = [
    "SEAL_COEFF_MOD_COUNT_MAX",
    "SEAL_POLY_MOD_DEGREE_MAX",
    "SEAL_POLY_MOD_DEGREE_MIN",
    "SEAL_USER_MOD_BIT_COUNT_MAX",
    "SEAL_USER_MOD_BIT_COUNT_MIN",
    "seal_primes",
]

#: SEAL's limits (``native/src/seal/util/defines.h``).
SEAL_USER_MOD_BIT_COUNT_MAX = 60
SEAL_USER_MOD_BIT_COUNT_MIN = 2
SEAL_COEFF_MOD_COUNT_MAX = 64
SEAL_POLY_MOD_DEGREE_MIN = 2
SEAL_POLY_MOD_DEGREE_MAX = 32768


def _check_degree(poly_modulus_degree: int) -> None:
    n = poly_modulus_degree
    if (
        isinstance(n, bool)
        or not isinstance(n, int)
        or n < SEAL_POLY_MOD_DEGREE_MIN
        or n > SEAL_POLY_MOD_DEGREE_MAX
        or n & (n - 1)
    ):
        raise ParameterError(
            f"poly_modulus_degree must be a power of two from {SEAL_POLY_MOD_DEGREE_MIN} to "
            f"{SEAL_POLY_MOD_DEGREE_MAX}, got {n!r}; use e.g. 8192"
        )


def _check_bit_sizes(bit_sizes: tuple[int, ...]) -> None:
    if not bit_sizes:
        raise ParameterError("the coefficient modulus needs at least one prime bit size")
    if len(bit_sizes) > SEAL_COEFF_MOD_COUNT_MAX:
        raise ParameterError(
            f"SEAL allows at most {SEAL_COEFF_MOD_COUNT_MAX} primes, got {len(bit_sizes)}"
        )
    for i, b in enumerate(bit_sizes):
        if isinstance(b, bool) or not isinstance(b, int):
            raise ParameterError(f"prime bit size #{i} must be an int, got {b!r}")
        if not SEAL_USER_MOD_BIT_COUNT_MIN <= b <= SEAL_USER_MOD_BIT_COUNT_MAX:
            raise ParameterError(
                f"prime #{i} asks for {b} bits; SEAL primes have "
                f"{SEAL_USER_MOD_BIT_COUNT_MIN} to {SEAL_USER_MOD_BIT_COUNT_MAX} bits "
                "(split a larger modulus into several primes)"
            )


@lru_cache(maxsize=256)
def _largest_ntt_primes(poly_modulus_degree: int, bits: int, count: int) -> tuple[int, ...]:
    """The ``count`` largest ``bits``-bit primes = 1 (mod 2N), descending (SEAL's get_primes)."""
    import sympy  # deferred: importing it costs ~0.4 s, paid only when a chain is built

    factor = 2 * poly_modulus_degree
    value = ((1 << bits) - 1) // factor * factor + 1
    lower_bound = 1 << (bits - 1)
    found: list[int] = []
    while len(found) < count and value > lower_bound:
        # sympy.isprime is deterministic below 2^64 (BPSW has no known pseudoprime there,
        # and sympy checks the proven Miller-Rabin bases for this range).
        if sympy.isprime(value):
            found.append(value)
        value -= factor
    if len(found) < count:
        raise ParameterError(
            f"SEAL cannot find {count} primes of {bits} bits that are 1 mod 2N = {factor} "
            f"(only {len(found)} exist); use larger bit sizes or fewer primes of {bits} bits"
        )
    return tuple(found)


@lru_cache(maxsize=256)
def _seal_primes_cached(poly_modulus_degree: int, bit_sizes: tuple[int, ...]) -> tuple[int, ...]:
    pools = {
        bits: list(_largest_ntt_primes(poly_modulus_degree, bits, count))
        for bits, count in Counter(bit_sizes).items()
    }
    # SEAL pops from the back of each descending pool: ascending order along the list.
    return tuple(pools[bits].pop() for bits in bit_sizes)


def seal_primes(poly_modulus_degree: int, bit_sizes: Iterable[int]) -> tuple[int, ...]:
    """The primes SEAL's ``CoeffModulus::Create(N, bit_sizes)`` returns, in chain order.

    Parameters
    ----------
    poly_modulus_degree : int
        Ring degree N, a power of two.
    bit_sizes : iterable of int
        Bit size of each prime of the chain, in order (special prime last).

    Returns
    -------
    tuple of int
        One prime per bit size; each is 1 (mod 2N) and has exactly that many bits. For each
        size b, the primes used are the largest such b-bit primes, assigned in ascending
        order to that size's positions.

    Raises
    ------
    ParameterError
        If N is not a supported power of two, a bit size is outside SEAL's 2..60 range, or
        too few primes of some size exist.
    """
    _check_degree(poly_modulus_degree)
    sizes = tuple(bit_sizes)
    _check_bit_sizes(sizes)
    return _seal_primes_cached(poly_modulus_degree, sizes)
