"""Comparison (A2B + log-depth adder), ReLU, max/argmax, sigmoids, reciprocal, exp vs numpy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.mpc import LockstepSimulation, Session, run_local
from securecomp.mpc import nonlinear as nl
from securecomp.mpc.comparison import comparison_specs, index_reverse64, ltz, msb
from securecomp.tensor import SecureTensor

ULP = 2.0**-16


@pytest.fixture(scope="module", params=[2, 3])
def sim(request: pytest.FixtureRequest) -> Iterator[LockstepSimulation]:
    with LockstepSimulation(request.param) as s:
        yield s


def apply(sim: LockstepSimulation, fn: Callable[..., SecureTensor], *tensors: Any) -> np.ndarray:
    return sim.reveal(sim.bundle(sim.run(lambda sess, *ts: fn(*ts), *tensors)))


RING_EDGES = np.array(
    [0, 1, -1, 2, -2, 2**62, -(2**62), 2**63 - 1, -(2**63), 2**31, -(2**31), 12345],
    dtype=np.int64,
)


@pytest.mark.parametrize("parties", [2, 3])
def test_sign_bit_of_any_ring_element(parties: int) -> None:
    rng = np.random.default_rng(parties)
    z = np.concatenate([RING_EDGES, rng.integers(-(2**63), 2**63 - 1, 5000, dtype=np.int64)])

    def program(sess: Session) -> np.ndarray:
        mine = z.view(np.uint64).copy() if sess.party_id == 0 else np.zeros(z.size, np.uint64)
        bits = msb(sess, mine)
        arith = ltz(sess, mine)
        return np.stack(
            [sess.open_xor(bits, tag="t").astype(np.uint64), sess.open_sum(arith, tag="t")]
        )

    res = run_local(program, parties)
    np.testing.assert_array_equal(res.results[0][0], z < 0)
    np.testing.assert_array_equal(res.results[0][1], z < 0)


def test_index_reversal_is_the_fft_permutation() -> None:
    rng = np.random.default_rng(5)
    words = rng.integers(0, 2**64, 50, dtype=np.uint64)
    got = index_reverse64(words)
    for w, g in zip(words.tolist(), got.tolist(), strict=True):
        for i in range(64):
            j = int(f"{i:06b}"[::-1], 2)
            assert (w >> i) & 1 == (g >> j) & 1
    np.testing.assert_array_equal(index_reverse64(got), words)  # an involution


@pytest.mark.parametrize("parties", [2, 3])
def test_less_than_takes_eight_rounds(parties: int) -> None:
    n = 1000
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=n), rng.normal(size=n)
    x[:10] = y[:10]  # ties: x < y is false

    def program(sess: Session) -> tuple[Any, int, int]:
        a = sess.share(x if sess.party_id == 0 else None, bound=8)
        b = sess.share(y if sess.party_id == 0 else None, bound=8)
        sess.prefetch(comparison_specs(n))  # offline: keeps dealer waits out of the timing
        st_ = sess.channel.stats
        rounds, sent = st_.rounds, st_.bytes_sent
        lt = a < b
        rounds, sent = st_.rounds - rounds, st_.bytes_sent - sent
        return sess.reveal(lt), rounds, sent

    res = run_local(program, parties)
    got, rounds, sent = res.results[0]
    np.testing.assert_array_equal(got, (x < y).astype(float))
    assert rounds == 8
    # 8 (masked opening) + 29 (adder) + 1/8 (bit) bytes per element per peer, plus heads.
    assert sent / n / (parties - 1) == pytest.approx(8 + 29 + 1 / 8, abs=1)


@settings(max_examples=10, deadline=None)
@given(x=hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(-50, 50)))
def test_comparisons_with_plaintext(sim: LockstepSimulation, x: np.ndarray) -> None:
    t = sim.share(x, bound=64)
    np.testing.assert_array_equal(sim.reveal(t < 0.5), (x < 0.5).astype(float))
    np.testing.assert_array_equal(sim.reveal(t > -1.25), (x > -1.25).astype(float))
    np.testing.assert_array_equal(sim.reveal(t >= 3), (x >= 3).astype(float))


@settings(max_examples=8, deadline=None)
@given(
    x=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 4), st.integers(1, 9)), elements=st.floats(-20, 20)
    ),
    data=st.data(),
)
def test_relu_max_argmax_match_numpy(
    sim: LockstepSimulation, x: np.ndarray, data: st.DataObject
) -> None:
    # Inputs on the fixed-point grid: the results must then be exact.
    x = np.round(x * 2**16) / 2**16
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(-20, 20)))
    y = np.round(y * 2**16) / 2**16
    tx, ty = sim.share(x, bound=32), sim.share(y, bound=32)
    np.testing.assert_array_equal(apply(sim, nl.relu, tx), np.maximum(x, 0))
    np.testing.assert_array_equal(apply(sim, nl.maximum, tx, ty), np.maximum(x, y))
    np.testing.assert_array_equal(apply(sim, nl.max, tx), x.max(axis=-1))
    np.testing.assert_array_equal(apply(sim, lambda t: nl.max(t, axis=0), tx), x.max(axis=0))
    np.testing.assert_array_equal(apply(sim, nl.argmax, tx), x.argmax(axis=-1))


def test_argmax_ties_take_the_first_occurrence(sim: LockstepSimulation) -> None:
    x = np.array([[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(apply(sim, nl.argmax, sim.share(x, bound=4)), [1, 0])


def test_sigmoid_piecewise_is_exact(sim: LockstepSimulation) -> None:
    x = np.array([-3.0, -0.5, -0.25, 0.0, 0.125, 0.5, 0.75, 10.0])
    got = apply(sim, nl.sigmoid_piecewise, sim.share(x, bound=16))
    np.testing.assert_array_equal(got, np.clip(x + 0.5, 0.0, 1.0))


@pytest.mark.parametrize("degree,interval", [(3, 8.0), (5, 4.0), (7, 8.0)])
def test_sigmoid_poly_within_fit_error(
    sim: LockstepSimulation, degree: int, interval: float
) -> None:
    rng = np.random.default_rng(degree)
    x = np.concatenate([rng.uniform(-interval, interval, 300), [-interval, 0.0, interval]])
    got = apply(sim, lambda t: nl.sigmoid_poly(t, degree, interval), sim.share(x, bound=interval))
    coeffs = nl.sigmoid_poly_coefficients(degree, interval)
    np.testing.assert_allclose(got, np.polynomial.polynomial.polyval(x, coeffs), atol=degree * ULP)
    fit = {(3, 8.0): 0.115, (5, 4.0): 0.011, (7, 8.0): 0.033}[(degree, interval)]
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-x)), atol=fit + degree * ULP)


def test_reciprocal_and_divide(sim: LockstepSimulation) -> None:
    rng = np.random.default_rng(9)
    b = np.concatenate([rng.uniform(0.5, 100.0, 200), [0.5, 100.0]])
    a = rng.uniform(-10, 10, b.size)
    tb, ta = sim.share(b, bound=128), sim.share(a, bound=16)
    rec = apply(sim, lambda t: nl.reciprocal(t, 0.5, 100.0), tb)
    np.testing.assert_allclose(rec, 1 / b, atol=4 * ULP)
    quo = apply(sim, lambda x, y: nl.divide(x, y, 0.5, 100.0), ta, tb)
    np.testing.assert_allclose(quo, a / b, atol=16 * 4 * ULP + 2 * ULP)


@pytest.mark.parametrize("bound", [1.0, 4.0, 8.0])
def test_exp_within_documented_error(sim: LockstepSimulation, bound: float) -> None:
    rng = np.random.default_rng(int(bound))
    x = np.concatenate([rng.uniform(-bound, bound, 300), [-bound, 0.0, bound]])
    got = apply(sim, nl.exp, sim.share(x, bound=bound))
    n = int(np.ceil(np.log2(4 * bound)))
    assert np.all(np.abs(got - np.exp(x)) <= 2.0 ** (n - 14) * np.exp(x) + 8 * ULP)
