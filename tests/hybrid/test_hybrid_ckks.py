"""CKKS <-> additive shares: round trips, the key holder's view, flooding, the modulus budget."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import tenseal.sealapi as sealapi
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import ks_2samp, kstest

from securecomp.crypto import AesCtrPrg
from securecomp.errors import (
    EncodingOverflowError,
    InsecureParameterError,
    KeyMismatchError,
    ParameterError,
)
from securecomp.he.ckks import CKKSBackend, CKKSContext
from securecomp.he.ckks.gaussian import DiscreteGaussian
from securecomp.he.ckks.payload import payload_of
from securecomp.hybrid import ckks as ck
from securecomp.hybrid import (
    ckks_budget_bits,
    ckks_flooding,
    ckks_to_shares,
    plan_ckks_conversion,
    shares_to_ckks,
)
from securecomp.hybrid.budget import integer_mask_bits, reshare_bits, reshare_precision
from securecomp.hybrid.embedding import decode_real, encode_real
from securecomp.hybrid.flood import ciphertext_scales, mask_and_flood
from securecomp.hybrid.ring import centered, float_to_ring
from securecomp.hybrid.rns import from_ntt_words, plaintext_words, primes_at
from securecomp.mpc import bound_of, run_local
from securecomp.params import (
    DEFAULT_CKKS_PARAMETERS,
    CKKSNoiseModel,
    InsecureParametersWarning,
    insecure_test_parameters,
)

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


# --- the key holder's exact view ---------------------------------------------------------

RES_BITS = 64  # fractional bits of the exact decodings below


def _exact_view(ctx: CKKSContext, tensor: Any) -> list[int]:
    """All slots of the first ciphertext, exactly: round(Re z 2^RES_BITS).

    What a key holder with the secret key can compute: the plaintext polynomial, lifted
    to the integers and decoded without float64.
    """
    seal = ctx.tenseal_context.data.seal_context()
    raw = payload_of(tensor).cts[0].ciphertext()[0]
    plain = sealapi.Plaintext()
    sealapi.Decryptor(seal, ctx.secret_key()).decrypt(raw, plain)
    coeffs = from_ntt_words(plaintext_words(plain), primes_at(seal, raw.parms_id()))
    delta = Fraction(raw.scale) * Fraction(payload_of(tensor).gain)
    return decode_real(coeffs, delta, RES_BITS, ctx.params.slot_count)


def _residues(view: list[int], e: int) -> np.ndarray:
    """``z mod 2^e`` of each slot, as a fraction of ``2^e`` in [0, 1)."""
    modulus = 1 << (e + RES_BITS)
    return np.array([(v % modulus) / modulus for v in view])


def _grid_masked(ctx: CKKSContext, y: Any, e: int, seed: bytes) -> Any:
    """The float64-grid construction: ``M = k 2^e``, ``k`` uniform in ``[-2^52, 2^52)``.

    Encoded exactly (as its specification says, without SEAL's float64 rounding, whose
    error of order ``2^e`` is a deterministic function of the mask) and flooded with the
    same noise as `mask_ckks`; only the mask's distribution differs.
    """
    backend = ck.ckks_backend(y)
    p = payload_of(y)
    params = backend.params
    flood = ckks_flooding(params, p.level, bound=BOUND, error_bound=1e-15, n_ciphertexts=1,
                          n_conversions=1, frac_bits=F)
    rng = AesCtrPrg(seed)
    k = ck._uniform_signed(rng, 52, params.slot_count)
    (scale,) = ciphertext_scales(p.cts)
    noise = DiscreteGaussian(flood.noise_units).sample(params.poly_modulus_degree, rng)
    poly = encode_real(k, -e, Fraction(scale) * Fraction(p.gain), params.poly_modulus_degree)
    cts = mask_and_flood(backend.kernel, p.cts, [poly + noise.astype(object)])
    return backend.wrap(cts, y.shape, y.layout, p.level, p.gain)


def test_masked_low_bits_do_not_depend_on_the_value(
    keys: tuple[CKKSContext, CKKSContext],
) -> None:
    ctx, public = keys
    backend = CKKSBackend(public)
    n = ctx.params.slot_count
    flood = ckks_flooding(ctx.params, 0, bound=BOUND, error_bound=1e-15, n_ciphertexts=1,
                          n_conversions=1, frac_bits=F)
    e = 40 + flood.mask_bits - 52  # the float64 grid of a 2^(sigma + b) mask: 2^-9 here
    assert flood.noise_std < 2.0**e / 100  # a tight error bound: flooding far below 2^e
    # Two values half a grid step apart, in every slot.
    ys = [backend.encrypt(np.full(n, v)) for v in (0.3, 0.3 + 2.0 ** (e - 1))]

    def masked(i: int, y: Any) -> Any:
        prg = AesCtrPrg(bytes([i]) * 32)
        return ck.mask_ckks(y, bound=BOUND, error_bound=1e-15, n_conversions=1, prg=prg)

    new = [_residues(_exact_view(ctx, masked(i, y).tensor), e) for i, y in enumerate(ys)]
    # The fine-grid mask: z mod 2^e is uniform whatever the value.
    assert ks_2samp(new[0], new[1]).pvalue > 1e-4
    assert all(kstest(r, "uniform").pvalue > 1e-4 for r in new)
    # Control, the grid mask: z mod 2^e = (y + noise) mod 2^e tells the two values apart.
    old = [_residues(_exact_view(ctx, _grid_masked(ctx, y, e, bytes([9, i]) * 16)), e)
           for i, y in enumerate(ys)]
    assert ks_2samp(old[0], old[1]).pvalue < 1e-12
    assert float(np.median((old[1] - old[0]) % 1.0)) == pytest.approx(0.5, abs=0.01)


def test_every_slot_is_masked(keys: tuple[CKKSContext, CKKSContext]) -> None:
    ctx, public = keys
    y = CKKSBackend(public).encrypt(np.array([1.0, -2.0, 3.0]))  # 3 of 4096 slots used
    masked = ck.mask_ckks(y, bound=BOUND, error_bound=_fresh_bound(ctx), n_conversions=1)
    view = np.array(_exact_view(ctx, masked.tensor), dtype=np.float64) / 2.0**RES_BITS
    half = 2.0 ** (40 + masked.flooding.mask_bits)
    unused = view[3:]
    assert np.all(np.abs(unused) <= half * (1 + 1e-9))
    # Uniform over [-2^(sigma+b), 2^(sigma+b)): half of the slots beyond half of it.
    assert 0.45 < np.mean(np.abs(unused) > half / 2) < 0.55


def test_conversion_precision_has_no_float64_term(
    keys: tuple[CKKSContext, CKKSContext],
) -> None:
    params = keys[0].params
    t = _fresh_bound(keys[0])
    flood = ckks_flooding(params, 0, bound=BOUND, error_bound=t, n_ciphertexts=2,
                          n_conversions=3, frac_bits=F)
    z = np.sqrt(2 * np.log(2) * 41)
    n = params.poly_modulus_degree
    want = t + z * flood.noise_std + n / 2.0**params.scale_bits + 2.0**-F
    assert flood.precision == pytest.approx(want, rel=1e-12)
    # The noise: KL 2^-40 over q C = 6 ciphertexts for the coefficient shift of the module
    # docstring, at the sampler's delivered parameter (a few percent above the target).
    shift = np.sqrt(2) * 2.0**params.scale_bits * (t + 2.0 ** -(params.scale_bits + 1)) + (
        1 + 2**-19
    ) * np.sqrt(n)
    target = shift * np.sqrt(6 / 2) * 2**20
    assert target <= flood.noise_units <= 1.1 * target
    assert flood.noise_std == pytest.approx(flood.noise_units * np.sqrt(n / 2) / 2**50)
    assert flood.grid_bits == params.scale_bits


def test_statistical_parameter_below_40_bits_needs_the_opt_in(
    keys: tuple[CKKSContext, CKKSContext],
) -> None:
    ctx, public = keys
    params = ctx.params
    kw: dict[str, Any] = dict(bound=BOUND, error_bound=1e-9, n_ciphertexts=1,
                              n_conversions=1, frac_bits=F)
    with pytest.raises(InsecureParameterError, match=r"sigma >= 40.*insecure_test_parameters"):
        ckks_flooding(params, 0, sigma=39, **kw)
    with pytest.raises(InsecureParameterError):
        integer_mask_bits(10, sigma=20)
    y = CKKSBackend(public).encrypt(np.ones(4))
    with pytest.raises(InsecureParameterError):
        ck.mask_ckks(y, bound=BOUND, error_bound=1e-9, n_conversions=1, sigma=30)
    with pytest.raises(ParameterError, match="sigma"):
        ckks_flooding(params, 0, sigma=0, **kw)
    with pytest.warns(InsecureParametersWarning), insecure_test_parameters():
        thin = ckks_flooding(params, 0, sigma=20, **kw)
        assert integer_mask_bits(10, sigma=20) == 31
    assert thin.noise_std < ckks_flooding(params, 0, **kw).noise_std

    def program(sess: Any, mine: Any) -> Any:  # both parties refuse before any message
        if sess.party_id == 0:
            return ckks_to_shares(sess, key=ctx, bound=BOUND, error_bound=1e-9,
                                  n_conversions=1, sigma=30)
        return ckks_to_shares(sess, y, bound=BOUND, error_bound=1e-9, n_conversions=1,
                              sigma=30)

    res = run_local(program, 2, inputs=[None, None], return_exceptions=True, timeout=5.0)
    assert all(isinstance(e, InsecureParameterError) for e in res.errors)


def test_key_holder_refuses_wrong_keys_and_corrupted_ciphertexts(
    keys: tuple[CKKSContext, CKKSContext],
) -> None:
    ctx, public = keys
    backend = CKKSBackend(public)
    y = backend.encrypt(np.ones(4))
    masked = ck.mask_ckks(y, bound=BOUND, error_bound=_fresh_bound(ctx), n_conversions=1)
    with pytest.raises(KeyMismatchError):
        ck.unmask_ckks(masked.tensor, public)
    other = CKKSContext.generate(ctx.params)
    with pytest.raises(KeyMismatchError):
        ck.unmask_ckks(masked.tensor, other)
    # A ciphertext under another key decrypts to a plaintext that fills the modulus.
    foreign = payload_of(CKKSBackend(other).encrypt(np.ones(4)))
    forged = backend.wrap(foreign.cts, (4,), "vector", foreign.level, foreign.gain)
    with pytest.raises(EncodingOverflowError, match="nothing was shared"):
        ck.unmask_ckks(forged, ctx)
