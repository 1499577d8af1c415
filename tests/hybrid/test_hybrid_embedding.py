"""Exact CKKS codec and SEAL plaintexts: known answers, agreement with SEAL, round trips."""

from __future__ import annotations

import cmath
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import tenseal as ts
import tenseal.sealapi as sealapi
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import ParameterError
from securecomp.hybrid.embedding import decode_real, encode_real, slot_positions
from securecomp.hybrid.rns import (
    from_ntt_words,
    make_plaintext,
    plaintext_words,
    primes_at,
    to_ntt_words,
)

N = 8192
SCALE = 2.0**40


@pytest.fixture(scope="module")
def seal() -> tuple[Any, Any]:
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, N, coeff_mod_bit_sizes=[60, 40, 40, 60])
    context = ctx.data.seal_context()
    return context, sealapi.CKKSEncoder(context)


def _naive_slots(coeffs: list[int], degree: int) -> list[complex]:
    """p(zeta^(3^j mod 2N)) by direct evaluation in complex128 (independent of the FFT)."""
    m = 2 * degree
    out, e = [], 1
    for _ in range(degree // 2):
        z = cmath.exp(2j * cmath.pi * e / m)
        out.append(sum(c * z**i for i, c in enumerate(coeffs)))
        e = e * 3 % m
    return out


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-(2**20), 2**20), min_size=16, max_size=16))
def test_decode_matches_direct_evaluation(coeffs: list[int]) -> None:
    got = decode_real(np.array(coeffs, dtype=object), Fraction(1), 20, 8)
    want = [round(v.real * 2**20) for v in _naive_slots(coeffs, 16)]
    assert all(abs(a - b) <= 2 for a, b in zip(got, want, strict=True))  # complex128 slack


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-(2**70), 2**70), min_size=1, max_size=32),
    st.integers(0, 40),
    st.sampled_from([64, 128]),
)
def test_encode_then_decode_is_the_identity_up_to_rounding(
    ks: list[int], unit: int, degree: int
) -> None:
    scale = Fraction(2**45)
    coeffs = encode_real(ks, unit, scale, degree)
    # The encoding is a real-slot polynomial: p_i = -p_(N-i).
    assert all(coeffs[i] == -coeffs[degree - i] for i in range(1, degree))
    back = decode_real(coeffs, scale, unit, len(ks))
    # Coefficient rounding moves each slot by at most N/2 units of 1/scale.
    slack = degree * 2**unit // (2 * 2**45) + 1
    assert all(abs(a - b) <= slack for a, b in zip(back, ks, strict=True))


def test_slot_order_is_seals(seal: tuple[Any, Any]) -> None:
    context, encoder = seal
    values = np.random.default_rng(0).uniform(-3, 3, size=N // 2)
    plain = sealapi.Plaintext()
    encoder.encode(values.tolist(), SCALE, plain)
    primes = primes_at(context, plain.parms_id())
    words = plaintext_words(plain)
    coeffs = from_ntt_words(words, primes)
    got = np.array(decode_real(coeffs, Fraction(SCALE), 40, N // 2), dtype=np.float64) / 2**40
    # SEAL's own float64 encoding error at this scale is about 1e-10.
    assert np.max(np.abs(got - values)) < 1e-8
    assert np.array_equal(to_ntt_words(coeffs, primes), words)  # NTT round trip, exact
    first, conj = slot_positions(N)
    assert sorted({*first.tolist(), *conj.tolist()}) == list(range(N))


def test_exact_plaintexts_decode_in_seal(seal: tuple[Any, Any]) -> None:
    context, encoder = seal
    rng = np.random.default_rng(1)
    ks = [int(k) for k in rng.integers(-(2**62), 2**62, size=N // 2)]
    reference = sealapi.Plaintext()
    encoder.encode([0.0], SCALE, reference)
    parms = reference.parms_id()
    coeffs = encode_real(ks, 40, Fraction(SCALE), N)
    plain = make_plaintext(context, parms, SCALE, to_ntt_words(coeffs, primes_at(context, parms)))
    assert plain.is_ntt_form() and plain.parms_id() == parms and plain.scale == SCALE
    seal_view = np.array(encoder.decode_double(plain))
    # Values near 2^22: SEAL's float64 decoder is good to about 2^-29 there.
    assert np.max(np.abs(seal_view - np.array(ks, dtype=np.float64) / 2**40)) < 2**-26
    exact = decode_real(coeffs, Fraction(SCALE), 40, N // 2)
    assert max(abs(a - b) for a, b in zip(exact, ks, strict=True)) <= N // 2


def test_codec_refuses_bad_input(seal: tuple[Any, Any]) -> None:
    context, encoder = seal
    with pytest.raises(ParameterError):
        encode_real([1] * 5, 0, Fraction(1), 8)  # 5 values, 4 slots
    with pytest.raises(ParameterError):
        encode_real([1], 0, Fraction(1), 12)  # not a power of two
    with pytest.raises(ParameterError):
        decode_real(np.zeros(8, dtype=object), Fraction(-1), 0, 2)
    with pytest.raises(ParameterError):
        from_ntt_words(np.zeros(10, dtype=np.uint64), (7681, 12289, 40961))
    reference = sealapi.Plaintext()
    encoder.encode([0.0], SCALE, reference)
    parms = reference.parms_id()
    primes = primes_at(context, parms)
    words = np.full(N * len(primes), primes[0], dtype=np.uint64)  # not below q_0
    with pytest.raises(ParameterError, match="SEAL refused"):
        make_plaintext(context, parms, SCALE, words)
