"""SEAL's prime selection: properties checked with sympy, and the chain TenSEAL really builds."""

from __future__ import annotations

import pytest
import sympy
import tenseal as ts
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import ParameterError
from securecomp.params import seal_primes


def tenseal_chain(n: int, bit_sizes: list[int]) -> list[int]:
    """The primes of a real TenSEAL context, recovered from SEAL's per-level moduli.

    TenSEAL's binding returns only the low 64 bits of each level's modulus product, but
    every prime is below 2^60 and the products are odd, so peeling the levels from the
    bottom recovers each prime exactly: p = T_{l+1} * Q_l^{-1} mod 2^64.
    """
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, n, coeff_mod_bit_sizes=bit_sizes)
    data = ctx.seal_context().data
    lows = []
    level = data.key_context_data()
    while level is not None:
        lows.append(level.total_coeff_modulus())
        level = level.next_context_data()
    lows.reverse()  # level 0 (only q_0) first, key level (special prime too) last
    primes = [lows[0]]
    product = lows[0]
    for low in lows[1:]:
        p = low * pow(product, -1, 1 << 64) % (1 << 64)
        primes.append(p)
        product *= p
    return primes


@pytest.mark.parametrize(
    "n,bits",
    [
        (8192, [60, 40, 40, 60]),
        (8192, [31, 26, 26, 26, 26, 26, 26, 31]),
        (4096, [30, 20, 20, 30]),
        (8192, [40, 21, 21, 21, 21, 21, 21, 40]),
        (16384, [60, 50, 40, 50, 60]),
    ],
)
def test_matches_the_chain_tenseal_builds(n: int, bits: list[int]) -> None:
    assert list(seal_primes(n, bits)) == tenseal_chain(n, bits)


def _check_selection(n: int, bits: tuple[int, ...]) -> None:
    primes = seal_primes(n, bits)
    assert len(primes) == len(bits)
    assert len(set(primes)) == len(primes)
    for p, b in zip(primes, bits, strict=True):
        assert sympy.isprime(p)
        assert p % (2 * n) == 1
        assert p.bit_length() == b
    for b in set(bits):
        chosen = [p for p, size in zip(primes, bits, strict=True) if size == b]
        # Assigned ascending along the list (SEAL pops its descending pool from the back).
        assert chosen == sorted(chosen)
        # They are the largest: no other prime = 1 mod 2N between the smallest and 2^b.
        others = [
            v for v in range(min(chosen), 1 << b, 2 * n) if v not in chosen and sympy.isprime(v)
        ]
        assert others == []


@pytest.mark.parametrize(
    "n,bits",
    [(8192, (60, 40, 40, 60)), (1024, (27,)), (32768, (60, 59, 30, 30, 60)), (2048, (18, 18))],
)
def test_selection_properties(n: int, bits: tuple[int, ...]) -> None:
    _check_selection(n, bits)


@settings(max_examples=25, deadline=None)
@given(
    logn=st.integers(min_value=10, max_value=15),
    bits=st.lists(st.integers(min_value=30, max_value=60), min_size=1, max_size=6),
)
def test_selection_properties_random(logn: int, bits: list[int]) -> None:
    _check_selection(1 << logn, tuple(bits))


def test_result_is_cached_and_accepts_any_iterable() -> None:
    a = seal_primes(8192, [60, 40, 40, 60])
    b = seal_primes(8192, iter((60, 40, 40, 60)))
    assert a == b and isinstance(a, tuple)


@pytest.mark.parametrize(
    "n,bits,match",
    [
        (8192, (61, 40), "2 to 60 bits"),
        (8192, (1, 40), "2 to 60 bits"),
        (8192, (), "at least one"),
        (1000, (40,), "power of two"),
        (65536, (40,), "power of two"),
        (8192, (15,), "cannot find 1 primes of 15 bits"),  # 2N = 2^14: no 15-bit candidate
        (32768, (20, 20), "cannot find 2 primes"),
        (8192, (40.0, 40), "must be an int"),
        (8192, (60,) * 65, "at most 64"),
    ],
)
def test_rejects_what_seal_rejects(n: int, bits: tuple, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        seal_primes(n, bits)
