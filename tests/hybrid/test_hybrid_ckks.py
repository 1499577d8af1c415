"""CKKS <-> additive shares: round trips, the key holder's view, flooding, the modulus budget."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tenseal.sealapi as sealapi
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from securecomp.crypto import AesCtrPrg
from securecomp.errors import EncodingOverflowError, ParameterError
from securecomp.he.ckks import CKKSBackend, CKKSContext
from securecomp.he.ckks.payload import payload_of
from securecomp.hybrid import ckks as ck
from securecomp.hybrid import (
    ckks_budget_bits,
    ckks_flooding,
    ckks_to_shares,
    plan_ckks_conversion,
    shares_to_ckks,
)
from securecomp.hybrid.budget import reshare_bits, reshare_precision
from securecomp.hybrid.ring import centered, float_to_ring
from securecomp.mpc import bound_of, run_local
from securecomp.params import DEFAULT_CKKS_PARAMETERS, CKKSNoiseModel

BOUND = 4.0
F = 16


@pytest.fixture(scope="module")
def keys() -> tuple[CKKSContext, CKKSContext]:
    params = plan_ckks_conversion(1, scale_bits=50, bound=BOUND, input_bound=BOUND)
    ctx = CKKSContext.generate(params)
    return ctx, CKKSContext.from_bytes(ctx.public().to_bytes())


def _fresh_bound(ctx: CKKSContext) -> float:
    return CKKSNoiseModel(ctx.params).fresh(BOUND).heuristic()


def test_plan_keeps_room_for_the_mask(keys: tuple[CKKSContext, CKKSContext]) -> None:
    params = keys[0].params
    need = params.scale_bits + 40 + 2 + 3  # scale + sigma + log2(bound) + margin
    assert ckks_budget_bits(params, 1) >= need
    # The default chain has no room at its last level: refused, with the fix named.
    with pytest.raises(ParameterError, match="plan_ckks_conversion"):
        ckks_flooding(DEFAULT_CKKS_PARAMETERS, 2, bound=BOUND, error_bound=1e-9,
                      n_ciphertexts=1, n_conversions=1, frac_bits=F)


def test_float_to_ring_is_exact() -> None:
    xs = np.array([-3.5, -(2.0**40) - 0.25, 2.0**50 + 1.0, -1e-6, 2.0**70, -(2.0**80)])
    got = float_to_ring(xs, 16)
    want = [round(float(v) * 2**16) % 2**64 for v in xs]
    assert got.tolist() == want
    with pytest.raises(EncodingOverflowError):
        float_to_ring(np.array([np.nan]), 16)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e40, max_value=1e40))
def test_float_to_ring_matches_python_integers(x: float) -> None:
    assert int(float_to_ring(np.array([x]), 16)[0]) == round(x * 2**16) % 2**64


def test_he_to_shares_to_he_round_trip(keys: tuple[CKKSContext, CKKSContext]) -> None:
    ctx, public = keys
    values = np.random.default_rng(1).uniform(-BOUND, BOUND, size=(5, 3)) * 0.99
    t = _fresh_bound(ctx)

    def program(sess: Any, mine: Any) -> Any:
        if sess.party_id == 0:  # key holder
            s = ckks_to_shares(sess, key=ctx, bound=BOUND, error_bound=t, n_conversions=1)
            return shares_to_ckks(sess, s, context=ctx), bound_of(s)
        y = CKKSBackend(public).encrypt(mine)
        s = ckks_to_shares(sess, y, bound=BOUND, error_bound=t, n_conversions=1)
        return shares_to_ckks(sess, s, context=public), bound_of(s)

    res = run_local(program, 2, inputs=[None, values], input_bound=BOUND)
    (none, ring), (back, _) = res.results
    assert none is None  # the key holder gets no ciphertext
    got = CKKSBackend(ctx).decrypt(back, ctx)
    flood = ckks_flooding(ctx.params, 0, bound=BOUND, error_bound=t, n_ciphertexts=3,
                          n_conversions=1, frac_bits=F)
    tol = flood.precision + reshare_precision(ring.bit_length(), F)
    assert np.max(np.abs(got - values)) <= tol
    assert tol < 0.2  # the stated precision is meaningful at these parameters


def test_shares_to_he_to_shares_round_trip(keys: tuple[CKKSContext, CKKSContext]) -> None:
    ctx, public = keys
    values = np.random.default_rng(2).uniform(-BOUND, BOUND, size=12) * 0.99
    beta = reshare_bits(BOUND, F)
    # Flooding covers the error that depends on the evaluator's operands (here only fresh
    # encryption noise); the re-sharing's float64 error depends on ephemeral masks only and
    # is part of the tolerance instead (securecomp.hybrid.ckks, "Shares -> CKKS").
    t = _fresh_bound(ctx)

    def program(sess: Any, mine: Any) -> Any:
        x = sess.share(mine if sess.party_id == 1 else None, owner=1, bound=BOUND, shape=(12,))
        if sess.party_id == 0:
            shares_to_ckks(sess, x, context=ctx)
            back = ckks_to_shares(sess, key=ctx, bound=BOUND, error_bound=t, n_conversions=1)
        else:
            y = shares_to_ckks(sess, x, context=public)
            back = ckks_to_shares(sess, y, bound=BOUND, error_bound=t, n_conversions=1)
        return sess.reveal(back, to=1)

    res = run_local(program, 2, inputs=[None, values], input_bound=BOUND)
    got = res.results[1]
    flood = ckks_flooding(ctx.params, 0, bound=BOUND, error_bound=t, n_ciphertexts=1,
                          n_conversions=1, frac_bits=F)
    assert np.max(np.abs(got - values)) <= reshare_precision(beta, F) + flood.precision
    entries = res.report.leakage.by_party()[0]
    assert any("re-shared" in e.what for e in entries)


def _views(ctx: CKKSContext, public: CKKSContext, value: float, declared: float,
           seed: bytes) -> np.ndarray:
    """The key holder's decryptions of masked full-slot vectors of one value."""
    backend = CKKSBackend(public)
    n = ctx.params.slot_count
    # encrypt_masked encrypts integers at scale 2^-F beyond the last prime's capacity,
    # which the control value below needs.
    y = ck.encrypt_masked(backend, np.full(n, round(value * 2**F), dtype=np.int64), frac_bits=F)
    masked = ck.mask_ckks(y, bound=declared, error_bound=_fresh_bound(ctx), n_conversions=1,
                          frac_bits=F, prg=AesCtrPrg(seed))
    return CKKSBackend(ctx).decrypt(masked.tensor, ctx)


def test_key_holder_view_is_independent_of_the_value(
    keys: tuple[CKKSContext, CKKSContext],
) -> None:
    ctx, public = keys
    lo = _views(ctx, public, -0.99 * BOUND, BOUND, bytes(32))
    hi = _views(ctx, public, 0.99 * BOUND, BOUND, bytes(range(32)))
    assert ks_2samp(lo, hi).pvalue > 1e-4
    # Power of the test: a value far beyond its declared bound is no longer hidden.
    leak = _views(ctx, public, 2.0**41, BOUND, bytes(range(32)))
    assert ks_2samp(lo, leak).pvalue < 1e-12


def test_shares_sum_to_the_value_and_imaginary_parts_are_flooded(
    keys: tuple[CKKSContext, CKKSContext],
) -> None:
    ctx, public = keys
    backend = CKKSBackend(public)
    values = np.linspace(-BOUND, BOUND, 200) * 0.99
    y = backend.encrypt(values)
    t = _fresh_bound(ctx)
    masked = ck.mask_ckks(y, bound=BOUND, error_bound=t, n_conversions=1, frac_bits=F)
    s0 = ck.unmask_ckks(CKKSBackend(ctx).from_bytes(backend.to_bytes(masked.tensor)), ctx)
    got = centered(s0 + masked.share).astype(np.float64) / 2**F
    assert np.max(np.abs(got - values)) <= masked.flooding.precision
    # The input ciphertext is untouched (value semantics).
    assert np.max(np.abs(CKKSBackend(ctx).decrypt(y, ctx) - values)) < 1e-6

    def imaginary(tensor: Any) -> np.ndarray:
        seal = ctx.tenseal_context.data.seal_context()
        dec = sealapi.Decryptor(seal, ctx.tenseal_context.data.secret_key())
        pt = sealapi.Plaintext()
        dec.decrypt(payload_of(tensor).cts[0].ciphertext()[0], pt)
        return np.imag(np.array(sealapi.CKKSEncoder(seal).decode_complex(pt)))

    sigma_n = masked.flooding.noise_std
    flooded, plain = imaginary(masked.tensor), imaginary(y)
    assert 0.8 * sigma_n < np.std(flooded) < 1.25 * sigma_n
    assert np.std(plain) < sigma_n / 100  # without flooding the key holder reads the error


def test_reshare_refuses_values_that_could_wrap() -> None:
    with pytest.raises(EncodingOverflowError, match="wrap"):
        reshare_bits(2.0**10, F)
    share = np.zeros(3, dtype=np.uint64)
    with pytest.raises(EncodingOverflowError):
        ck.reshare_mask(share, 30)
    message, r = ck.reshare_mask(share + np.uint64(5), 4, prg=AesCtrPrg(bytes(32)))
    opened = ck.reshare_open(np.zeros(3, dtype=np.uint64), message)
    assert [int(v) - m for v, m in zip(opened, r, strict=True)] == [5, 5, 5]
    assert all(abs(m) <= 2 ** (4 + 40) for m in r)


def test_reshare_view_is_independent_of_the_value() -> None:
    beta, n = 21, 3000
    views = []
    for value, seed in ((2**20, bytes(32)), (-(2**20), bytes(range(32)))):
        x = np.full(n, value, dtype=np.int64).view(np.uint64)
        other = AesCtrPrg(seed).random_uint64((n,))  # the evaluator's uniform share
        mine = x - other  # the key holder's share
        message, _ = ck.reshare_mask(other, beta, prg=AesCtrPrg(seed[::-1]))
        views.append(ck.reshare_open(mine, message).astype(np.float64))
    assert ks_2samp(views[0], views[1]).pvalue > 1e-4
