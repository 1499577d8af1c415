"""Shares backend: sharing, reveal, arithmetic vs numpy, exact costs, the bound tracker."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.errors import (
    EncodingOverflowError,
    ParameterError,
    ProtocolAbort,
    ShapeMismatchError,
)
from securecomp.mpc import LockstepSimulation, Session, assume_bound, bound_of, run_local
from securecomp.net.channel import FRAME_HEAD

ULP = 2.0**-16


@pytest.fixture(scope="module", params=[2, 3])
def sim(request: pytest.FixtureRequest) -> Iterator[LockstepSimulation]:
    with LockstepSimulation(request.param) as s:
        yield s


def frame(tag: str, payload: int) -> int:
    return FRAME_HEAD.size + len(tag) + payload


@settings(max_examples=25, deadline=None)
@given(
    m=hnp.arrays(
        np.int64, hnp.array_shapes(max_dims=3, max_side=5), elements=st.integers(-(2**40), 2**40)
    )
)
def test_share_reveal_is_exact_for_negatives(sim: LockstepSimulation, m: np.ndarray) -> None:
    x = m.astype(np.float64) * ULP  # exactly representable: decoding must return it exactly
    got = sim.reveal(sim.share(x, bound=2.0**25))
    assert got.shape == x.shape
    np.testing.assert_array_equal(got, x)


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_products_and_reductions_match_numpy(sim: LockstepSimulation, data: st.DataObject) -> None:
    vals = st.floats(-10, 10, allow_nan=False)
    a = data.draw(hnp.arrays(np.float64, (3, 4), elements=vals))
    b = data.draw(hnp.arrays(np.float64, (4,), elements=vals))
    w = data.draw(hnp.arrays(np.float64, (4, 5), elements=vals))
    ea, eb, ew = (sim.share(v, bound=16) for v in (a, b, w))
    tol = 1e-3
    np.testing.assert_allclose(sim.reveal(ea * eb), a * b, atol=tol)  # broadcasting
    np.testing.assert_allclose(sim.reveal(ea @ ew), a @ w, atol=tol)
    np.testing.assert_allclose(sim.reveal(ea @ w), a @ w, atol=tol)
    np.testing.assert_allclose(sim.reveal(w.T @ ea.T), w.T @ a.T, atol=tol)
    np.testing.assert_allclose(sim.reveal(ea.dot(eb)), a.dot(b), atol=tol)
    np.testing.assert_allclose(sim.reveal((ea * 3).sum(axis=1)), (a * 3).sum(axis=1), atol=tol)
    np.testing.assert_allclose(sim.reveal(ea[[0, 2], 1:]), a[[0, 2], 1:], atol=tol)
    np.testing.assert_allclose(sim.reveal(2.5 - ea), 2.5 - a, atol=tol)


def test_larger_matmul_through_blas_path(sim: LockstepSimulation) -> None:
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(64, 48)), rng.normal(size=(48, 40))
    got = sim.reveal(sim.share(x, bound=8) @ sim.share(w, bound=8))
    # One truncation per entry plus the inputs' encoding errors (48 terms).
    np.testing.assert_allclose(got, x @ w, atol=48 * 16 * 2.0**-17 + ULP)


def costs(program_op: str, parties: int, truncation: str, n: int = 1000) -> tuple[int, int]:
    """(bytes sent, rounds) of one operation on each party, measured around the op."""

    def program(sess: Session) -> tuple[int, int]:
        a = sess.share(np.ones(n) if sess.party_id == 0 else None, bound=4)
        b = sess.share(np.ones(n) if sess.party_id == 0 else None, bound=4)
        st_ = sess.channel.stats
        sent, rounds = st_.bytes_sent, st_.rounds
        if program_op == "mul":
            a * b
        elif program_op == "mul_real":
            a * 0.5
        elif program_op == "mul_int":
            a * 3
        elif program_op == "lt":
            a < b
        return st_.bytes_sent - sent, st_.rounds - rounds

    res = run_local(program, parties, truncation=truncation)
    assert len(set(res.results)) == 1  # identical for every party
    return res.results[0]


@pytest.mark.parametrize("parties", [2, 3])
def test_dealer_multiplication_costs_24_bytes_in_two_rounds(parties: int) -> None:
    n = 1000
    sent, rounds = costs("mul", parties, "dealer", n)
    per_peer = frame("mpc.beaver", 16 + 16 * n) + frame("mpc.trunc", 16 + 8 * n)
    assert sent == (parties - 1) * per_peer
    assert rounds == 2


def test_local_truncation_multiplication_costs_16_bytes_in_one_round() -> None:
    n = 1000
    sent, rounds = costs("mul", 2, "local", n)
    assert sent == frame("mpc.beaver", 16 + 16 * n)
    assert rounds == 1


def test_products_with_public_values() -> None:
    assert costs("mul_int", 2, "dealer") == (0, 0)  # integers: no truncation, no message
    sent, rounds = costs("mul_real", 2, "dealer")
    assert rounds == 1 and sent == frame("mpc.trunc", 16 + 8 * 1000)
    assert costs("mul_real", 2, "local") == (0, 0)


def test_sharing_sends_a_seed_not_the_data() -> None:
    def program(sess: Session) -> int:
        sess.share(np.zeros(100_000) if sess.party_id == 0 else None)
        return sess.channel.stats.bytes_sent

    res = run_local(program, 3)
    # Party 0 sends each peer a header of status, ndim, shape and a 32-byte seed.
    assert res.results[0] == 2 * frame("mpc.share", 16 + 8 * (2 + 1 + 4))
    assert res.results[1] == res.results[2] == 0


def test_reveal_to_one_party_only() -> None:
    def program(sess: Session) -> object:
        t = sess.share(np.array([1.5, -2.0]) if sess.party_id == 1 else None, owner=1)
        return sess.reveal(t, to=2)

    res = run_local(program, 3)
    assert res.results[0] is None and res.results[1] is None
    np.testing.assert_array_equal(res.results[2], [1.5, -2.0])
    assert [(e.party, e.stage) for e in res.report.leakage.entries][:1] == [(2, "reveal")]


def test_refused_input_aborts_everyone_else() -> None:
    def program(sess: Session) -> None:
        sess.share(np.array([100.0]) if sess.party_id == 0 else None, bound=10)

    res = run_local(program, 3, return_exceptions=True)
    assert isinstance(res.errors[0], EncodingOverflowError)
    for e in res.errors[1:]:
        assert isinstance(e, ProtocolAbort) and e.culprits == (0,)


def test_unexpected_input_shape_is_refused() -> None:
    def program(sess: Session) -> None:
        sess.share(np.zeros(4) if sess.party_id == 0 else None, shape=(3,))

    res = run_local(program, 2, return_exceptions=True)
    assert isinstance(res.errors[0], ShapeMismatchError)
    assert isinstance(res.errors[1], ProtocolAbort)


def test_only_the_owner_passes_data() -> None:
    res = run_local(lambda sess: sess.share(np.zeros(2)), 2, return_exceptions=True)
    assert isinstance(res.errors[1], ParameterError)


def test_bound_tracker(sim: LockstepSimulation) -> None:
    big = sim.share(np.ones(3), bound=2.0**46)
    with pytest.raises(EncodingOverflowError, match="wrap"):
        big + big  # 2^47 * 2^16 = 2^63: not representable
    with pytest.raises(EncodingOverflowError):
        sim.share(np.ones(2**10), bound=2.0**40).sum()
    with pytest.raises(EncodingOverflowError):
        big + np.full(3, 2.0**46)
    small = sim.share(np.ones(3), bound=1.0)
    assert bound_of(small.payload[0]) == 2**16
    assert bound_of((small * small).payload[0]) == 2**16 + 1  # one ulp of rounding
    assert bound_of((small + small).payload[0]) == 2**17
    wide = sim.share(np.ones(3), bound=2.0**20)
    with pytest.raises(EncodingOverflowError):
        wide * wide
    narrowed = sim.bundle(sim.run(lambda sess, t: assume_bound(t, 4.0), wide))
    np.testing.assert_allclose(sim.reveal(narrowed * narrowed), np.ones(3), atol=1e-4)


def test_value_semantics_and_no_accidental_reveal(sim: LockstepSimulation) -> None:
    x = np.array([3.25, -1.5])
    t = sim.share(x, bound=8)
    part = t.payload[0]
    assert not part.payload.flags.writeable
    _ = t * t, -t, t + 1
    np.testing.assert_array_equal(sim.reveal(t), x)
    assert "3.25" not in repr(t) and "shares" in repr(part)
