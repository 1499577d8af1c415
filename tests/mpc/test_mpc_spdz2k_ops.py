"""MAC mode (SPDZ2k): honest runs against the numpy oracle, dealer material, refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.errors import (
    EncodingOverflowError,
    InsecureParameterError,
    KeyMismatchError,
    PreprocessingReuseError,
    UnsupportedOperationError,
)
from securecomp.mpc import nonlinear, run_local
from securecomp.mpc.material import Bilinear, Kind, Material, Spec
from securecomp.mpc.spdz2k import (
    ActiveSession,
    AuthKind,
    AuthSpec,
    Field,
    Spdz2kParameters,
    limbs,
    run_local_active,
)
from securecomp.mpc.spdz2k.material import check_material
from securecomp.net import make_inprocess_channels
from securecomp.params import InsecureParametersWarning, insecure_test_parameters

ULP = 2.0**-16


def agreed(program: Callable[..., Any], parties: int, **kw: Any) -> Any:
    """Run ``program`` in MAC mode; every party must return the same revealed values."""
    res = run_local_active(program, parties, **kw)
    first = res.results[0]
    for other in res.results[1:]:
        assert type(other) is type(first)
    return first


@settings(max_examples=12, deadline=None)
@given(
    m=hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4),
                 elements=st.integers(-(2**40), 2**40)),
    parties=st.sampled_from([2, 3]),
)
def test_share_reveal_is_exact(m: np.ndarray, parties: int) -> None:
    x = m.astype(np.float64) * ULP

    def program(sess: ActiveSession) -> Any:
        return sess.reveal(sess.share(x if sess.party_id == parties - 1 else None,
                                      owner=parties - 1, bound=2.0**25))

    got = agreed(program, parties)
    assert got.shape == x.shape
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("parties", [2, 3])
def test_every_supported_operation_matches_numpy(parties: int) -> None:
    rng = np.random.default_rng(parties)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    v, w = rng.normal(size=4), rng.normal(size=(4, 2))

    def program(sess: ActiveSession) -> dict[str, Any]:
        a = sess.share(x if sess.party_id == 0 else None, bound=8)
        b = sess.share(y if sess.party_id == 1 else None, owner=1, bound=8)
        c = sess.share(v if sess.party_id == 0 else None, bound=8)
        out = {
            "add": a + b, "sub": a - b, "neg": -a, "add_plain": a + 1.25,
            "sub_plain": a - w.T[0, 0], "rsub_plain": 2.0 - a, "mul": a * b,
            "mul_broadcast": a * c, "mul_int": a * -3, "mul_real": a * 0.37,
            "matmul": a @ b.T, "matmul_plain": a @ w, "rmatmul_plain": w.T @ a.T,
            "dot": c.dot(c), "dot_plain": a.dot(v), "sum": a.sum(), "sum0": a.sum(axis=0),
            "getitem": a[[0, 2], 1:], "reshape": a.reshape(2, 6), "transpose": a.T,
            "polyval": a.polyval([0.5, -1.0, 0.25]), "lt": a < b, "lt_plain": a < 0.1,
            "gt_plain": a > -0.2, "le": a <= b, "ge": a >= 0.0,
        }
        return {name: sess.reveal(t) for name, t in out.items()}

    got = agreed(program, parties)
    want = {
        "add": x + y, "sub": x - y, "neg": -x, "add_plain": x + 1.25, "sub_plain": x - w.T[0, 0],
        "rsub_plain": 2.0 - x, "mul": x * y, "mul_broadcast": x * v, "mul_int": x * -3,
        "mul_real": x * 0.37, "matmul": x @ y.T, "matmul_plain": x @ w,
        "rmatmul_plain": w.T @ x.T, "dot": v.dot(v), "dot_plain": x.dot(v), "sum": x.sum(),
        "sum0": x.sum(axis=0), "getitem": x[[0, 2], 1:], "reshape": x.reshape(2, 6),
        "transpose": x.T, "polyval": 0.5 - x + 0.25 * x * x,
        "lt": x < y, "lt_plain": x < 0.1, "gt_plain": x > -0.2, "le": x <= y, "ge": x >= 0.0,
    }
    for name, expected in want.items():
        np.testing.assert_allclose(got[name], np.asarray(expected, dtype=np.float64),
                                   atol=2e-3, err_msg=name)


def test_products_err_by_at_most_one_ulp_and_round_without_bias() -> None:
    rng = np.random.default_rng(7)
    x = np.round(rng.normal(size=500) * 2**16) / 2**16  # exactly representable inputs
    y = np.round(rng.normal(size=500) * 2**16) / 2**16
    odd = np.full(4000, 3 * ULP)  # times 0.5: exactly 1.5 ulp, rounds to 1 or 2 ulp

    def program(sess: ActiveSession) -> tuple[Any, Any]:
        a, b = (sess.share(t if sess.party_id == 0 else None, bound=8) for t in (x, y))
        h = sess.share(odd if sess.party_id == 0 else None, bound=1)
        half = sess.share(np.full(4000, 0.5) if sess.party_id == 1 else None, owner=1, bound=1)
        return sess.reveal(a * b), sess.reveal(h * half)

    prod, halves = agreed(program, 2)
    assert np.max(np.abs(prod - x * y)) <= ULP
    assert set(np.unique(halves / ULP)) <= {1.0, 2.0}
    # Unbiased: the mean is 1.5 ulp (standard error 0.008 ulp over 4000 draws).
    assert abs(np.mean(halves / ULP) - 1.5) < 0.05


def test_comparison_at_the_edges() -> None:
    big = 2.0**20
    x = np.array([0.0, ULP, -ULP, 5.0, -5.0, big, -big, 1.0, -3.5])
    y = np.array([0.0, 0.0, 0.0, 5.0 + ULP, -5.0 - ULP, -big, big, 1.0, -3.5])

    def program(sess: ActiveSession) -> tuple[Any, Any]:
        a = sess.share(x if sess.party_id == 0 else None, bound=big)
        b = sess.share(y if sess.party_id == 1 else None, owner=1, bound=big)
        return sess.reveal(a < b), sess.reveal(a > 0.0)

    for parties in (2, 3):
        lt, pos = agreed(program, parties)
        np.testing.assert_array_equal(lt, (x < y).astype(float))
        np.testing.assert_array_equal(pos, (x > 0).astype(float))


def test_reveal_to_some_parties_only() -> None:
    def program(sess: ActiveSession) -> Any:
        t = sess.share(np.array([1.5, -2.0]) if sess.party_id == 1 else None, owner=1)
        return sess.reveal(t * t, to=[0, 2])

    res = run_local_active(program, 3)
    assert res.results[1] is None
    for p in (0, 2):
        np.testing.assert_allclose(res.results[p], [2.25, 4.0], atol=2 * ULP)
    seen = {(e.party, e.stage) for e in res.report.leakage.entries}
    assert seen >= {(0, "reveal"), (2, "reveal")}
    assert res.report.metrics["mac_checks"] >= 1


def test_dealer_material_is_authenticated_and_correct() -> None:
    """Reconstruct every kind of material from all parties' shares and key shares."""
    specs = [
        AuthSpec(AuthKind.TRIPLE, ((3,), (2, 3)), int(Bilinear.MUL)),
        AuthSpec(AuthKind.TRIPLE, ((2, 3), (3, 4)), int(Bilinear.MATMUL)),
        AuthSpec(AuthKind.TRIPLE, ((5,), (5,)), int(Bilinear.MUL), Field.BINARY),
        AuthSpec(AuthKind.TRUNC, ((6,),), 16),
        AuthSpec(AuthKind.EDABIT, ((4,),), 64),
        AuthSpec(AuthKind.DABIT, ((8,),)),
        AuthSpec(AuthKind.MASK, ((3,),)),
        AuthSpec(AuthKind.INPUT, ((3,),), 1),
        AuthSpec(AuthKind.MULTRUNC, ((2, 3), (3,)), 16),
    ]

    def program(sess: ActiveSession) -> Any:
        keys = {f: sess.preprocessing.key_share(f) for f in Field}
        return keys, [sess.material(s).consume() for s in specs]

    res = run_local_active(program, 3)
    keys = [r[0] for r in res.results]
    alpha = sum(k[Field.ARITH] for k in keys) % 2**128
    beta = sum(k[Field.BINARY] for k in keys) % 2**64
    assert alpha < 2**64 and beta < 2**63  # keys uniform in Z_2^s

    def value(spec_i: int, item: int, part: int, field: Field) -> np.ndarray:
        mod = 2**128 if field is Field.ARITH else 2**64
        parts = [r[1][spec_i][0][item][part] for r in res.results]
        if field is Field.ARITH:
            return np.asarray(sum(limbs.to_ints(p) for p in parts) % mod)
        return np.asarray(sum(p[0].astype(object) for p in parts) % mod)

    for i, spec in enumerate(specs):
        for j, it in enumerate(spec.items()):
            key, mod = (alpha, 2**128) if it.field is Field.ARITH else (beta, 2**64)
            v, m = value(i, j, 0, it.field), value(i, j, 1, it.field)
            assert ((key * v - m) % mod == 0).all(), (spec.kind, j)
    a, b, c = (value(0, j, 0, Field.ARITH) for j in range(3))
    assert ((a * b - c) % 2**128 == 0).all()
    a, b, c = (value(1, j, 0, Field.ARITH) for j in range(3))
    assert ((a.dot(b) - c) % 2**128 == 0).all()
    a, b, c = (value(2, j, 0, Field.BINARY) for j in range(3))
    assert ((a * b - c) % 2 == 0).all()
    r, t, w = (value(3, j, 0, Field.ARITH) % 2**64 for j in range(3))
    assert (t == (-(r >> 16)) % 2**64).all()
    assert (w == (r >> 63) * 2**48).all()
    r, bits = value(4, 0, 0, Field.ARITH), value(4, 1, 0, Field.BINARY)
    assert (sum(bits[j] * 2**j for j in range(64)) == r % 2**64).all()
    bb, ba = value(5, 0, 0, Field.BINARY), value(5, 1, 0, Field.ARITH)
    assert (bb % 2 == ba).all()
    a, b, cr, t, w = (value(8, j, 0, Field.ARITH) for j in range(5))
    r = (cr - a * b) % 2**128  # the truncation mask folded into the product
    assert (t % 2**64 == (-((r % 2**64) >> 16)) % 2**64).all()
    assert (w % 2**64 == ((r % 2**64) >> 63) * 2**48).all()
    owner_part = res.results[1][1][7][1]
    assert (limbs.to_ints(owner_part) == value(7, 0, 0, Field.ARITH)).all()
    assert all(r[1][7][1] is None for p, r in enumerate(res.results) if p != 1)


def test_material_is_single_use() -> None:
    def program(sess: ActiveSession) -> None:
        m = sess.material(AuthSpec(AuthKind.MASK, ((2,),)))
        m.consume()
        m.consume()

    res = run_local_active(program, 2, return_exceptions=True)
    assert all(isinstance(e, PreprocessingReuseError) for e in res.errors)


def test_bounds_refuse_before_any_communication() -> None:
    def program(sess: ActiveSession) -> int:
        a = sess.share(np.ones(3) if sess.party_id == 0 else None, bound=2.0**20)
        sent = sess.channel.stats.bytes_sent
        with pytest.raises(EncodingOverflowError):
            a * a  # 2^36 * 2^36 ring units >= 2^62
        with pytest.raises(EncodingOverflowError):
            a * 2.0**30
        return sess.channel.stats.bytes_sent - sent

    assert run_local_active(program, 2).results == [0, 0]


def test_semi_honest_material_and_mixed_tensors_are_refused() -> None:
    channels = make_inprocess_channels(2)

    class PaillierLikeTriples:  # any semi-honest provider: no MACs
        pass

    with pytest.raises(UnsupportedOperationError, match="authenticated"):
        ActiveSession(channels[0], PaillierLikeTriples())  # type: ignore[arg-type]
    plain = Material(Spec(Kind.TRIPLE, ((2,), (2,)), int(Bilinear.MUL)), 0, [np.zeros(2)] * 3)
    spec = AuthSpec(AuthKind.TRIPLE, ((2,), (2,)), int(Bilinear.MUL))
    with pytest.raises(UnsupportedOperationError, match="no MACs"):
        check_material(plain, spec)

    def program(sess: ActiveSession) -> None:
        a = sess.share(np.ones(2) if sess.party_id == 0 else None)
        with pytest.raises(UnsupportedOperationError):
            nonlinear.relu(a)  # written for the semi-honest backend: not authenticated

    run_local_active(program, 2)

    # A semi-honest tensor never combines with an authenticated one.
    semi: list[Any] = []
    run_local(lambda s: semi.append(s.share(np.ones(2) if s.party_id == 0 else None)), 2)

    def mixed(sess: ActiveSession) -> None:
        a = sess.share(np.ones(2) if sess.party_id == 0 else None)
        with pytest.raises(KeyMismatchError):
            a + semi[sess.party_id]

    run_local_active(mixed, 2)


def test_insecure_32_bit_mode_needs_the_opt_in() -> None:
    with pytest.raises(InsecureParameterError):
        Spdz2kParameters(32, 32)
    with pytest.warns(InsecureParametersWarning), insecure_test_parameters():
        weak = Spdz2kParameters(32, 32)
        with pytest.raises(Exception, match="frac_bits"):
            run_local_active(lambda s: None, 2, params=weak, frac_bits=16)
    x = np.array([1.5, -2.25, 3.0])
    y = np.array([-0.5, 4.0, 2.0])

    def program(sess: ActiveSession) -> tuple[Any, Any, Any]:
        a = sess.share(x if sess.party_id == 0 else None, bound=8)
        b = sess.share(y if sess.party_id == 1 else None, owner=1, bound=8)
        return sess.reveal(a * b), sess.reveal(a < b), sess.reveal(a @ b)

    prod, lt, dot = agreed(program, 2, params=weak, frac_bits=8)
    np.testing.assert_allclose(prod, x * y, atol=2 * 2.0**-8)
    np.testing.assert_array_equal(lt, (x < y).astype(float))
    np.testing.assert_allclose(dot, x @ y, atol=4 * 2.0**-8)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.integers(0, 2**64 - 1), max_size=24))
def test_dealer_requests_are_validated(words: list[int]) -> None:
    """Arbitrary request words decode to valid specs or raise MalformedMessageError."""
    from securecomp.errors import MalformedMessageError
    from securecomp.mpc.spdz2k.material import decode_requests, encode_requests

    try:
        first, specs = decode_requests(np.array(words, dtype=np.uint64))
    except MalformedMessageError:
        return
    again = decode_requests(encode_requests(first, specs))
    assert again == (first, specs)
