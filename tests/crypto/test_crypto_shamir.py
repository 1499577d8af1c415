"""Shamir sharing over GF(2^31 - 1): sympy known answers, threshold, secrecy, integrity."""

from __future__ import annotations

import os
import secrets

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto import AesCtrPrg
from securecomp.crypto.shamir import (
    FIELD_PRIME,
    evaluate_polynomials,
    lagrange_at_zero,
    limbs_for,
    limbs_to_secrets,
    reconstruct_secrets,
    secrets_to_limbs,
    share_from_bytes,
    share_secrets,
    share_to_bytes,
)
from securecomp.errors import IntegrityError, MalformedMessageError, ParameterError

P = FIELD_PRIME
X = sympy.Symbol("x")


def test_field_prime_is_prime() -> None:
    assert sympy.isprime(P) and P == 2**31 - 1


def test_horner_matches_sympy_polynomial_evaluation() -> None:
    rng = np.random.default_rng(1)
    coeffs = rng.integers(0, P, size=(7, 3), dtype=np.uint64)
    points = [1, 2, 5, 1000, P - 1]
    got = evaluate_polynomials(coeffs, points)
    for j in range(coeffs.shape[1]):
        poly = sympy.Poly(list(reversed(coeffs[:, j].tolist())), X, modulus=P)
        for i, x in enumerate(points):
            assert int(got[i, j]) == int(poly.eval(x)) % P


def test_lagrange_matches_sympy_interpolation() -> None:
    rng = np.random.default_rng(2)
    points = [3, 7, 8, 20, 41]
    values = rng.integers(0, P, size=len(points)).tolist()
    lam = lagrange_at_zero(points)
    ours = sum(int(c) * v for c, v in zip(lam, values, strict=True)) % P
    # Rational interpolation at 0, reduced mod p: an independent computation.
    at_zero = sympy.Rational(sympy.interpolate(list(zip(points, values, strict=True)), 0))
    expected = at_zero.p * pow(at_zero.q, -1, P) % P
    assert ours == expected


def test_lagrange_cache_returns_read_only_array() -> None:
    lam = lagrange_at_zero([1, 2, 3])
    assert lam is lagrange_at_zero((1, 2, 3))
    with pytest.raises(ValueError):
        lam[0] = 1


@settings(max_examples=25, deadline=None)
@given(
    secret_len=st.integers(1, 40),
    count=st.integers(1, 4),
    n=st.integers(1, 12),
    data=st.data(),
)
def test_any_threshold_subset_reconstructs(secret_len: int, count: int, n: int, data) -> None:
    t = data.draw(st.integers(1, n))
    the_secrets = [os.urandom(secret_len) for _ in range(count)]
    points = list(range(1, n + 1))
    shares = share_secrets(the_secrets, t, points)
    assert shares.shape == (n, count, limbs_for(secret_len)) and shares.dtype == np.uint32
    subset = sorted(data.draw(st.permutations(range(n)))[:t])
    got = reconstruct_secrets([points[i] for i in subset], shares[subset], secret_len)
    assert got == the_secrets
    # More than t shares reconstruct too (the interpolant is the same polynomial).
    assert reconstruct_secrets(points, shares, secret_len) == the_secrets


def test_shares_match_sympy_polynomial_with_known_coefficients() -> None:
    seed = secrets.token_bytes(32)
    secret = os.urandom(32)
    points = [1, 2, 3, 9]
    shares = share_secrets([secret], 3, points, prg=AesCtrPrg(seed))
    coeff = AesCtrPrg(seed).random_below(P, (2, limbs_for(32)))
    base = secrets_to_limbs([secret])[0]
    for limb in range(limbs_for(32)):
        poly = sympy.Poly([int(coeff[1, limb]), int(coeff[0, limb]), int(base[limb])], X, modulus=P)
        for i, x in enumerate(points):
            assert int(shares[i, 0, limb]) == int(poly.eval(x)) % P


def test_fewer_than_threshold_shares_are_uniform_and_independent_of_secret() -> None:
    # With t = 3, any 2 shares are uniform: the low bit of every limb is balanced for two
    # different secrets (a weak but real check of secrecy).
    points = [1, 2, 3, 4, 5]
    for secret in (bytes(32), b"\xff" * 32):
        bits = []
        for _ in range(300):
            s = share_secrets([secret], 3, points)[:2]
            bits.append((s & 1).reshape(-1))
        mean = np.mean(bits)
        assert abs(mean - 0.5) < 0.02


def test_fewer_than_threshold_do_not_reconstruct() -> None:
    secret = os.urandom(32)
    shares = share_secrets([secret], 4, [1, 2, 3, 4, 5])
    try:
        got = reconstruct_secrets([1, 2, 3], shares[:3], 32)
    except IntegrityError:
        return  # usually detected: a random field element is >= 2^30 with prob. ~1/2
    assert got != [secret]


def test_corrupted_share_never_yields_the_secret() -> None:
    secret = os.urandom(32)
    shares = share_secrets([secret] * 20, 3, [1, 2, 3])
    shares[1, :, :] ^= 1
    try:
        got = reconstruct_secrets([1, 2, 3], shares, 32)
    except IntegrityError:
        return
    assert all(g != secret for g in got)


def test_random_corruption_is_detected() -> None:
    # A uniformly random wrong value lands >= 2^30 in some limb of 20 secrets almost surely.
    shares = share_secrets([os.urandom(32) for _ in range(20)], 3, [1, 2, 3])
    shares[1] = np.random.default_rng(5).integers(0, P, size=shares[1].shape)
    with pytest.raises(IntegrityError):
        reconstruct_secrets([1, 2, 3], shares, 32)


def test_share_bytes_round_trip_and_validation() -> None:
    shares = share_secrets([os.urandom(32)], 2, [1, 2])
    raw = share_to_bytes(shares[0, 0])
    assert len(raw) == 36
    assert np.array_equal(share_from_bytes(raw, 32), shares[0, 0])
    with pytest.raises(MalformedMessageError):
        share_from_bytes(raw[:-1], 32)
    with pytest.raises(MalformedMessageError):
        share_from_bytes(b"\xff" * 36, 32)


def test_limb_encoding_is_injective_and_checked() -> None:
    s = [os.urandom(32), bytes(32), b"\xff" * 32]
    assert limbs_to_secrets(secrets_to_limbs(s), 32) == s
    too_big = secrets_to_limbs([b"\xff" * 32])
    too_big[0, -1] += 1 << 20
    with pytest.raises(IntegrityError):
        limbs_to_secrets(too_big, 32)


@pytest.mark.parametrize(
    ("points", "t"),
    [([1, 1, 2], 2), ([0, 1], 1), ([1, P], 1), ([1, 2], 3), ([1, 2], 0), ([], 1)],
)
def test_bad_parameters(points: list[int], t: int) -> None:
    with pytest.raises(ParameterError):
        share_secrets([b"x" * 32], t, points)


def test_mixed_lengths_refused() -> None:
    with pytest.raises(ParameterError):
        share_secrets([b"a" * 32, b"b" * 31], 1, [1])
