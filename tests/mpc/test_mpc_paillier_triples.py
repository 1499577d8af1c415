"""Dealer-free two-party Beaver triples from Paillier: correctness, masking, re-randomization."""

from __future__ import annotations

import warnings
from typing import Any

import gmpy2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from securecomp.errors import (
    EncodingOverflowError,
    InsecureParameterError,
    ParameterError,
    PreprocessingReuseError,
    UnsupportedOperationError,
)
from securecomp.he.paillier import paillier_keypair
from securecomp.mpc import Bilinear, Kind, Spec, run_local
from securecomp.mpc.offline import (
    SEMI_HONEST,
    PaillierTriples,
    masked_matmul,
    open_mask,
)
from securecomp.mpc.offline import triples as tp
from securecomp.mpc.offline.wide import (
    KeyHolderEncryptor,
    SlotLayout,
    low_words,
    multi_pow,
    slot_values,
)
from securecomp.params import InsecureParametersWarning, insecure_test_parameters

pytestmark = pytest.mark.filterwarnings("ignore::securecomp.params.InsecureParametersWarning")

M64 = 1 << 64


@pytest.fixture(scope="module")
def keys() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            return paillier_keypair(512)


def _triple(op: Bilinear, sa: tuple[int, ...], sb: tuple[int, ...]) -> Spec:
    return Spec(Kind.TRIPLE, (sa, sb), int(op))


def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python-integer matrix product modulo 2^64 (independent of the ring_matmul kernel)."""
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    out = [[sum(int(a2[i, t]) * int(b2[t, j]) for t in range(a2.shape[1])) % M64
            for j in range(b2.shape[1])] for i in range(a2.shape[0])]
    res = np.array(out, dtype=np.uint64)
    if b.ndim == 1:
        res = res[:, 0]
    if a.ndim == 1:
        res = res[0]
    return res


SPECS = [
    _triple(Bilinear.MUL, (7,), (7,)),
    _triple(Bilinear.MUL, (3, 1), (1, 4)),  # broadcasting
    _triple(Bilinear.MUL, (), (5,)),
    _triple(Bilinear.MATMUL, (3, 4), (4, 2)),
    _triple(Bilinear.MATMUL, (4,), (4, 3)),
    _triple(Bilinear.MATMUL, (9, 5), (5,)),
    _triple(Bilinear.MATMUL, (7,), (7,)),
]


def test_triples_satisfy_c_equals_op_a_b(keys: Any) -> None:
    _, sk = keys

    @insecure_test_parameters()
    def program(sess: Any) -> Any:
        prov = PaillierTriples(sess, secret_key=sk if sess.party_id == 0 else None)
        assert prov.security == SEMI_HONEST
        prov.prefetch(SPECS[:2])  # from the stock, then on demand
        return [prov.get(s).consume() for s in SPECS], prov.report()

    res = run_local(program, 2)
    (mats0, rep0), (mats1, rep1) = res.results
    for spec, p0, p1 in zip(SPECS, mats0, mats1, strict=True):
        a, b, c = (np.add(x, y) for x, y in zip(p0, p1, strict=True))
        assert a.shape == spec.shapes[0] and b.shape == spec.shapes[1]
        want = np.multiply(a, b) if spec.bilinear is Bilinear.MUL else _exact_matmul(a, b)
        np.testing.assert_array_equal(c, want)
        # Each party's shares alone are not the values (they are uniformly random).
        assert not np.array_equal(p0[2], want) or want.size == 0
    assert rep0.metrics["elements"] == rep1.metrics["elements"] == sum(
        int(np.prod(Bilinear(s.param).result_shape(*s.shapes))) for s in SPECS
    )
    assert rep0.metrics["bytes_sent"] == rep1.metrics["bytes_received"] > 0
    assert rep0.metrics["security"] == SEMI_HONEST


def test_engine_products_use_paillier_triples_and_count_offline(keys: Any) -> None:
    _, sk = keys
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-4, 4, size=(3, 5)), rng.uniform(-4, 4, size=(5, 2))

    @insecure_test_parameters()
    def program(sess: Any) -> Any:
        sess.preprocessing = PaillierTriples(
            sess, secret_key=sk if sess.party_id == 0 else None, fallback=sess.preprocessing
        )
        a = sess.share(x if sess.party_id == 0 else None, bound=4, shape=x.shape)
        b = sess.share(y if sess.party_id == 1 else None, owner=1, bound=4, shape=y.shape)
        return sess.reveal(a @ b), sess.reveal(a[0] * a[1])

    res = run_local(program, 2)
    prod, elem = res.results[0]
    np.testing.assert_allclose(prod, x @ y, atol=1e-3)
    np.testing.assert_allclose(elem, x[0] * x[1], atol=1e-3)
    report = res.report
    assert report.comm is not None
    tags = report.comm.per_tag
    assert tags["paillier_triples.request"].bytes_sent > 0
    assert tags["paillier_triples.response"].bytes_sent > 0
    # Offline traffic and time are kept apart from the online phase.
    offline = report.comm.per_phase["offline"]
    assert offline.bytes_sent >= tags["paillier_triples.request"].bytes_sent
    assert report.phases["offline"] > 0.0


def test_reusable_mask_serves_many_products(keys: Any) -> None:
    _, sk = keys
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(6, 4))
    ws = [rng.uniform(-2, 2, size=4) for _ in range(3)]
    d = rng.uniform(-2, 2, size=(6, 2))

    @insecure_test_parameters()
    def program(sess: Any) -> Any:
        prov = PaillierTriples(sess, secret_key=sk if sess.party_id == 0 else None)
        mask = prov.matrix_mask((6, 4))
        fwd = [prov.mask_triple(mask, (4,)) for _ in ws]
        back = prov.mask_triple(mask, (6, 2), transpose=True)
        spare = [prov.mask_triple(mask, (4, 3)).consume() for _ in range(2)]
        raw = [mask.u, spare]  # shares of U, (V_i, Z_i), for the relation check below
        xs = sess.share(x if sess.party_id == 0 else None, bound=2, shape=x.shape)
        masked = open_mask(sess, xs, mask)
        outs = []
        for w, t in zip(ws, fwd, strict=True):
            wt = sess.share(w if sess.party_id == 1 else None, owner=1, bound=2, shape=(4,))
            outs.append(sess.reveal(masked_matmul(sess, masked, wt, t)))
        dt = sess.share(d if sess.party_id == 1 else None, owner=1, bound=2, shape=d.shape)
        outs.append(sess.reveal(masked_matmul(sess, masked, dt, back)))
        with pytest.raises(PreprocessingReuseError):
            open_mask(sess, xs, mask)  # U opened once only
        with pytest.raises(PreprocessingReuseError):
            masked_matmul(sess, masked, dt, back)  # (V, Z) used once only
        return outs, raw, sess.channel.stats.per_tag["mpc.reusable.open"].messages_sent

    res = run_local(program, 2)
    (outs, raw0, opens), (_, raw1, _) = res.results
    for out, w in zip(outs[:3], ws, strict=True):
        np.testing.assert_allclose(out, x @ w, atol=1e-3)
    np.testing.assert_allclose(outs[3], x.T @ d, atol=1e-3)
    assert opens == 1  # X - U was opened once for all four products
    u = raw0[0] + raw1[0]
    for (v0, z0), (v1, z1) in zip(raw0[1], raw1[1], strict=True):
        np.testing.assert_array_equal(z0 + z1, _exact_matmul(u, v0 + v1))  # Z_i = U V_i


def _response(keys: Any, b1: np.ndarray, n: int) -> tuple[Any, ...]:
    pk, sk = keys
    plan = tp.elementwise_plan(pk, (n,), (n,))
    rng = np.random.default_rng(2)
    a0, b0, a1 = (rng.integers(0, 2**64, size=n, dtype=np.uint64) for _ in range(3))
    request = tp.elementwise_request(KeyHolderEncryptor(sk), a0, b0)
    resp = tp.elementwise_respond(pk, plan, request, a1, b1)
    cross = [int(x) * int(y) + int(u) * int(v) for x, y, u, v in zip(a0, b1, a1, b0, strict=True)]
    return plan, request, a1, resp, cross


def test_masked_cross_terms_are_independent_of_the_responder_share(keys: Any) -> None:
    _, sk = keys
    n = 600
    views, terms = [], []
    for b1 in (np.zeros(n, dtype=np.uint64), np.full(n, M64 - 1, dtype=np.uint64)):
        plan, _, _, resp, cross = _response(keys, b1, n)
        vals: list[int] = []
        for g, ct in enumerate(resp.ciphertexts):
            count = plan.blocks.group_indices(g).size
            vals += slot_values(sk.raw_decrypt(ct), count, plan.layout.width)
        # Every slot holds t + r with r in [0, 2^(width - 1)): no wrap, full mask.
        assert all(0 <= v - t < 2 ** (plan.layout.width - 1) for v, t in zip(vals, cross))
        views.append(np.array(vals, dtype=np.float64) / 2.0 ** (plan.layout.width - 1))
        terms.append(np.array(cross, dtype=np.float64) / 2.0**129)
    # With b1 = 0 the cross term is a1 b0 < 2^128; with b1 = 2^64 - 1 it reaches 2^129:
    # the masked values (r over 2^(129 + 40)) look alike either way ...
    assert ks_2samp(views[0], views[1]).pvalue > 1e-6
    # ... while the unmasked terms are told apart at once (the test has power).
    assert ks_2samp(terms[0], terms[1]).pvalue < 1e-12


def test_response_is_rerandomized(keys: Any) -> None:
    pk, sk = keys
    n = 5
    b1 = np.arange(1, n + 1, dtype=np.uint64)
    plan, request, a1, resp, _ = _response(keys, b1, n)
    blocks = tp.elementwise_blocks(pk, plan, request, a1, b1)
    packed = tp.combine(pk, plan.blocks, plan.layout, blocks)
    nsq = pk.nsquare
    for ct, det in zip(resp.ciphertexts, packed, strict=True):
        # The deterministic recomputation (cross terms times the trivial encryption of the
        # same masks) encrypts the same plaintext with a randomizer the key holder could
        # predict; the response differs from it by a fresh encryption of zero.
        mask = (int(sk.raw_decrypt(ct)) - int(sk.raw_decrypt(det))) % pk.n
        deterministic = det * (pk.n_mpz * mask + 1) % nsq
        assert ct != deterministic
        assert sk.raw_decrypt(ct * gmpy2.invert(deterministic, nsq) % nsq) == 0


def test_small_keys_need_the_opt_in(keys: Any) -> None:
    _, sk = keys

    def program(sess: Any) -> Any:  # no insecure opt-in in the party threads
        return PaillierTriples(sess, secret_key=sk if sess.party_id == 0 else None)

    res = run_local(program, 2, return_exceptions=True, timeout=5.0)
    assert isinstance(res.errors[1], InsecureParameterError)  # the responder checks the key

    def generate(sess: Any) -> Any:
        return PaillierTriples(sess, key_bits=512) if sess.party_id == 0 else None

    res = run_local(generate, 2, return_exceptions=True, timeout=5.0)
    assert isinstance(res.errors[0], InsecureParameterError)


def test_provider_refuses_what_it_cannot_make(keys: Any) -> None:
    _, sk = keys

    @insecure_test_parameters()
    def program(sess: Any) -> Any:
        prov = PaillierTriples(sess, secret_key=sk if sess.party_id == 0 else None)
        with pytest.raises(UnsupportedOperationError, match="fallback"):
            prov.get(Spec(Kind.TRUNC, ((3,),), 16))
        with pytest.raises(UnsupportedOperationError, match="batch"):
            prov.get(_triple(Bilinear.MATMUL, (2, 3, 4), (4, 2)))
        if sess.party_id == 1:  # only the key holder may pass a secret key
            with pytest.raises(ParameterError, match="not the key holder"):
                PaillierTriples(sess, secret_key=sk)
        return True

    assert run_local(program, 2).results == [True, True]

    def three(sess: Any) -> Any:
        with pytest.raises(ParameterError, match="two-party"):
            PaillierTriples(sess)
        return True

    assert run_local(three, 3).results == [True] * 3


def test_wide_slot_helpers(keys: Any) -> None:
    pk, sk = keys
    enc = KeyHolderEncryptor(sk)
    ms = [0, 1, 2**64 - 1, pk.n - 1, 12345678901234567890]
    assert [int(sk.raw_decrypt(c)) for c in enc.encrypt(ms)] == [m % pk.n for m in ms]
    cts = enc.encrypt([3, 5, 7])
    exps = [2**63 + 1, 0, 17]
    got = multi_pow(cts, exps, pk.nsquare)
    assert int(sk.raw_decrypt(got)) == (3 * exps[0] + 5 * exps[1] + 7 * exps[2]) % pk.n
    with pytest.raises(ParameterError):
        multi_pow(cts, [-1, 2, 3], pk.nsquare)


@given(st.lists(st.integers(0, 2**170 - 1), min_size=1, max_size=6))
def test_slot_packing_round_trips(values: list[int]) -> None:
    layout = SlotLayout(width=170, slots=6)
    packed = layout.pack(values)
    assert slot_values(packed, len(values), 170) == values
    assert low_words(packed, len(values), 170).tolist() == [v % M64 for v in values]
    with pytest.raises(EncodingOverflowError):
        layout.pack([*values[:-1], 2**170])  # would carry into a neighbour


def test_every_exchange_is_recorded_in_the_session_ledger(keys: Any) -> None:
    _, sk = keys

    @insecure_test_parameters()
    def program(sess: Any) -> Any:
        prov = PaillierTriples(sess, secret_key=sk if sess.party_id == 0 else None)
        before = len(sess.ledger)
        prov.get(SPECS[0])
        prov.prefetch([SPECS[3], SPECS[4]])
        mask = prov.matrix_mask((3, 2))  # ciphertexts only: nothing learned, no entry
        prov.mask_triple(mask, (2,))
        return [e for e in sess.ledger.entries[before:]]

    res = run_local(program, 2)
    for entries in res.results:  # SPMD: both parties hold the same record
        assert len(entries) == 4  # three triples and one mask product triple
        assert all(e.party == 0 and e.stage == "paillier_triples" for e in entries)
        assert all("masked cross terms" in e.what and "2^-40" in e.what for e in entries)
        assert "elementwise" in entries[0].what and "matrix" in entries[1].what
        assert "reusable mask #0" in entries[3].what
    # The run's report carries the session ledger (party 0's), not only provider.report().
    recorded = [e for e in res.report.leakage.entries if e.stage == "paillier_triples"]
    assert len(recorded) == 4


def test_statistical_slack_below_40_bits_needs_the_opt_in(keys: Any) -> None:
    pk, _ = keys
    with insecure_test_parameters():  # for the 512-bit key only
        plan = tp.elementwise_plan(pk, (3,), (3,))
        assert plan.layout.width == tp.term_bits(2) + 40 + 1
        thin = tp.elementwise_plan(pk, (3,), (3,), sigma=20)  # allowed: inside the opt-in
        assert thin.layout.width == tp.term_bits(2) + 20 + 1
    with pytest.raises(InsecureParameterError, match=r"sigma >= 40.*insecure_test_parameters"):
        tp.matmul_plan(pk, 2, 3, 2, sigma=39)
    for bad in (True, 40.5, 0, 129):
        with pytest.raises(ParameterError, match="sigma"):
            tp.elementwise_plan(pk, (3,), (3,), sigma=bad)  # type: ignore[arg-type]

    def program(sess: Any) -> Any:  # checked before any message: both parties refuse
        return PaillierTriples(sess, sigma=30)

    res = run_local(program, 2, return_exceptions=True, timeout=5.0)
    assert all(isinstance(e, InsecureParameterError) for e in res.errors)
