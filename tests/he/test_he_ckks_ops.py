"""CKKS arithmetic against numpy: elementwise ops, polyval, levels, drift, value semantics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import tenseal as ts
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.errors import (
    DepthExhaustedError,
    EncodingOverflowError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsupportedOperationError,
)
from securecomp.he.ckks import CKKSBackend, CKKSContext, ckks_keygen, polyval_depth
from securecomp.params import DEFAULT_CKKS_PARAMETERS, predicted_error, scale_drift
from securecomp.tensor import SecureTensor

# The planned precision of depth-2 computations on |x| <= 8 (the planner's heuristic bound).
ATOL = predicted_error(DEFAULT_CKKS_PARAMETERS, 2, 8.0)
values = st.floats(-8, 8, allow_nan=False, width=64)
shapes = hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)
SETTINGS = settings(max_examples=8, deadline=None)


@pytest.fixture(scope="module")
def pair() -> tuple[CKKSBackend, CKKSContext]:
    return ckks_keygen(galois_keys=True)


def _open(t: SecureTensor, key: CKKSContext) -> np.ndarray:
    return t.decrypt(key)


def _levels(be: CKKSBackend, t: SecureTensor) -> list[int]:
    return [be.kernel.level_of(ct) for ct in t.payload.cts]


def _check(be: CKKSBackend, key: CKKSContext, t: SecureTensor, want: object) -> None:
    want = np.asarray(want, dtype=np.float64)
    assert t.shape == want.shape
    np.testing.assert_allclose(t.decrypt(key), want, rtol=0, atol=ATOL)
    # the tracked level is the true one, for every ciphertext of the tensor
    assert set(_levels(be, t)) == {t.meta["level"]}


@SETTINGS
@given(data=st.data())
def test_elementwise_ops_match_numpy(
    pair: tuple[CKKSBackend, CKKSContext], data: st.DataObject
) -> None:
    be, key = pair
    a = data.draw(hnp.arrays(np.float64, data.draw(shapes), elements=values))
    b = data.draw(hnp.arrays(np.float64, a.shape, elements=values))
    c = data.draw(st.floats(-3, 3, allow_nan=False))
    ea, eb = be.encrypt(a), be.encrypt(b)
    for got, want in [
        (ea + eb, a + b),
        (ea - eb, a - b),
        (eb - ea, b - a),
        (-ea, -a),
        (ea * eb, a * b),
        (ea + b, a + b),
        (b + ea, a + b),
        (ea - c, a - c),
        (c - ea, c - a),
        (ea * b, a * b),
        (c * ea, c * a),
        (ea * 5, a * 5),
        (-3 * ea, -3 * a),
        (ea * eb * ea, a * b * a),
        ((ea * 0.5) * eb, a * 0.5 * b),
    ]:
        _check(be, key, got, want)


def test_broadcast_plaintexts_and_small_integers(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    x = np.arange(12.0).reshape(4, 3) - 5.5
    ex = be.encrypt(x)
    row, col = np.array([1.0, -2.0, 0.5]), np.array([[2.0], [1.0], [-1.0], [0.25]])
    for got, want in [
        (ex + row, x + row),
        (ex * row, x * row),
        (ex * col, x * col),
        (row - ex, row - x),
        (ex.T * col.T, x.T * col.T),
        (ex.T + 1.0, x.T + 1),
    ]:
        _check(be, key, got, want)
    # integer scalars use additions: no level consumed, exact up to the noise
    assert (ex * 7).meta["level"] == 0 and (ex * -64).meta["level"] == 0
    assert (ex * 65).meta["level"] == 1 and (ex * 0.5).meta["level"] == 1
    # 0 * x is a fresh encryption of zeros (level 0)
    z = be.encrypt(x) * 0.0
    _check(be, key, z, np.zeros_like(x))
    assert z.meta["level"] == 0
    with pytest.raises(ShapeMismatchError):
        ex + np.ones((2, 4, 3))  # would enlarge the encrypted tensor
    with pytest.raises(ShapeMismatchError):
        ex * np.ones(4)


def test_exact_cancellation_is_not_an_error(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    # TenSEAL raises "result ciphertext is transparent" for a - a; we return zeros.
    be, key = pair
    x = np.array([1.0, -2.0, 3.5])
    ex = be.encrypt(x)
    _check(be, key, ex - ex, np.zeros(3))
    _check(be, key, ex + (-ex), np.zeros(3))
    y = ex * 0.5
    _check(be, key, y - y, np.zeros(3))
    assert (y - y).meta["level"] == 1
    # a product by an all-zero plaintext keeps the expected level
    w = ex * np.zeros(3)
    _check(be, key, w, np.zeros(3))
    assert w.meta["level"] == 1


def test_drift_is_corrected(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    rng = np.random.default_rng(3)
    x, y = rng.uniform(4, 8, 4096), rng.uniform(4, 8, 4096)
    ours = (be.encrypt(x) * be.encrypt(y) * y).decrypt(key)
    ctx = key.tenseal_context
    raw = np.array(
        (ts.ckks_vector(ctx, x.tolist()) * ts.ckks_vector(ctx, y.tolist()) * y.tolist()).decrypt()
    )
    exact = x * y * y
    drift = scale_drift(DEFAULT_CKKS_PARAMETERS).cumulative[-1]
    # raw TenSEAL is off by the cumulative drift factor; ours is not
    np.testing.assert_allclose(raw / exact, drift, rtol=2e-8)
    assert np.max(np.abs(ours - exact)) < np.max(np.abs(raw - exact)) / 50


def _tenseal_level(be: CKKSBackend, t: SecureTensor) -> list[int]:
    return _levels(be, t)


def test_operands_are_never_modified(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    x, y = np.array([1.0, 2.0, -3.0]), np.array([0.5, -1.0, 2.0])
    ops: list[Callable[[SecureTensor, SecureTensor], SecureTensor]] = [
        lambda a, b: a + b,
        lambda a, b: b + a,
        lambda a, b: a - b,
        lambda a, b: b - a,
        lambda a, b: a * b,
        lambda a, b: b * a,
        lambda a, b: a.dot(b),
        lambda a, b: b @ a,
        lambda a, b: a * 2.5,
        lambda a, b: a + 1.0,
        lambda a, b: 1.0 - b,
        lambda a, b: -a,
        lambda a, b: a.sum(),
        lambda a, b: b.polyval([1.0, 0.5]),
        lambda a, b: a[1],
    ]
    for op in ops:
        fresh = be.encrypt(x)  # level 0: TenSEAL would switch it down in place
        deep = be.encrypt(y) * 1.5  # level 1
        before = (_tenseal_level(be, fresh), _tenseal_level(be, deep))
        op(deep, fresh)
        op(fresh, deep)
        assert (_tenseal_level(be, fresh), _tenseal_level(be, deep)) == before
        np.testing.assert_allclose(fresh.decrypt(key), x, atol=1e-6)
        np.testing.assert_allclose(deep.decrypt(key), y * 1.5, atol=1e-6)
        assert fresh.meta["level"] == 0 and deep.meta["level"] == 1


def test_levels_align_across_operands(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    x = np.array([1.0, -0.5, 2.0, 4.0])
    a, b = be.encrypt(x), be.encrypt(x) * 0.5 * 0.5  # levels 0 and 2
    for got, want, level in [
        (a + b, 1.25 * x, 2),
        (b - a, -0.75 * x, 2),
        (a - b, 0.75 * x, 2),
        ((a * 0.5) * (a * 0.5), x * x / 4, 2),
    ]:
        _check(be, key, got, want)
        assert got.meta["level"] == level


def test_depth_is_tracked_and_exhaustion_is_our_error(
    pair: tuple[CKKSBackend, CKKSContext],
) -> None:
    be, key = pair
    x = np.array([1.1, -0.9])
    t = be.encrypt(x)
    sq = (t * t) * t  # depth 2: the whole chain
    _check(be, key, sq, x**3)
    for step in (
        lambda: sq * t,
        lambda: sq * 1.5,
        lambda: sq * sq,
        lambda: sq @ np.ones(2),
        lambda: sq.polyval([0.0, 0.5]),
        lambda: sq.dot(np.ones(2)),
    ):
        with pytest.raises(DepthExhaustedError, match="level 2"):
            step()
    # exhaustion is detected before TenSEAL would fail: the operand is untouched
    np.testing.assert_allclose(sq.decrypt(key), x**3, atol=1e-5)
    # integer scalings and additions still work at the last level
    _check(be, key, sq * 3 + sq, 4 * x**3)
    # a planned depth below the chain is enforced too
    shallow, _ = ckks_keygen(depth=1)
    s = shallow.encrypt(x) * 1.5
    with pytest.raises(DepthExhaustedError):
        s * 1.5


@SETTINGS
@given(
    a=hnp.arrays(np.float64, shapes, elements=st.floats(-2, 2, allow_nan=False, width=64)),
    coeffs=st.lists(st.floats(-2, 2, allow_nan=False), min_size=1, max_size=4),
)
def test_polyval_matches_numpy(
    pair: tuple[CKKSBackend, CKKSContext], a: np.ndarray, coeffs: list[float]
) -> None:
    be, key = pair
    got = be.encrypt(a).polyval(coeffs)
    np.testing.assert_allclose(
        got.decrypt(key), np.polynomial.polynomial.polyval(a, coeffs), atol=ATOL
    )


def test_polyval_uses_optimal_depth(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    x = np.linspace(-1, 1, 7)
    assert [polyval_depth(d) for d in range(1, 9)] == [1, 2, 2, 3, 3, 3, 3, 4]
    for degree in (1, 2, 3):
        coeffs = np.linspace(0.3, -0.7, degree + 1)
        got = be.encrypt(x).polyval(coeffs)
        assert got.meta["level"] == polyval_depth(degree)
        assert got.meta["gain"] == 1.0  # every term drift-corrected exactly
        np.testing.assert_allclose(
            got.decrypt(key), np.polynomial.polynomial.polyval(x, coeffs), atol=1e-6
        )
    # sigmoid approximation of degree 3 (Kim et al. 2018) at the planned precision
    sig = [0.5, 0.197, 0.0, -0.004]
    np.testing.assert_allclose(
        be.encrypt(x * 8).polyval(sig).decrypt(key),
        np.polynomial.polynomial.polyval(x * 8, sig),
        atol=1e-6,
    )
    # degree 1 with an integer slope, and constants, consume nothing
    assert be.encrypt(x).polyval([1.0, 3.0]).meta["level"] == 0
    const = (be.encrypt(x) * 0.5).polyval([2.5, 0.0])
    assert const.meta["level"] == 0
    np.testing.assert_allclose(const.decrypt(key), np.full(7, 2.5), atol=1e-6)
    with pytest.raises(DepthExhaustedError, match="degree-4"):
        be.encrypt(x).polyval([0, 0, 0, 0, 1.0])  # needs 3 levels, the chain has 2
    # Past the end of the chain (level 1 + 3 levels on a depth-2 chain): still our error.
    with pytest.raises(DepthExhaustedError, match="degree-5"):
        (be.encrypt(x) * 0.5).polyval([0, 1.0, 0, 0.1, 0, 0.01])


def test_mixing_keys_is_refused(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    other, other_key = ckks_keygen()
    a, b = be.encrypt(np.ones(3)), other.encrypt(np.ones(3))
    for op in (lambda: a + b, lambda: a - b, lambda: a * b, lambda: a.dot(b), lambda: a @ b):
        with pytest.raises(KeyMismatchError):
            op()
    with pytest.raises(KeyMismatchError):
        a.decrypt(other_key)
    # same key seen through the public context: combinable
    server = CKKSBackend(key.public())
    np.testing.assert_allclose(
        (a + server.encrypt(np.ones(3))).decrypt(key), 2 * np.ones(3), atol=1e-6
    )


def test_unsupported_operations_name_an_alternative(
    pair: tuple[CKKSBackend, CKKSContext],
) -> None:
    be, _ = pair
    x = be.encrypt(np.ones((3, 2)))
    with pytest.raises(UnsupportedOperationError, match="layout='element'"):
        x @ be.encrypt(np.ones((2, 2)))  # column @ column
    with pytest.raises(UnsupportedOperationError, match="polynomial"):
        x < 1.0
    with pytest.raises(UnsupportedOperationError, match="layouts"):
        be.encrypt(np.ones(3)) + be.encrypt(np.ones(3), layout="element")
    with pytest.raises(UnsupportedOperationError):
        be.encrypt(np.ones(3)) @ be.encrypt(np.ones((3, 3))).T  # vector @ column.T
    with pytest.raises(UnsupportedOperationError, match="slots"):
        be.encrypt(np.ones((300, 2)))[::2]  # 300 elements out of their slots


def test_encrypt_validates_input(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, _ = pair
    with pytest.raises(EncodingOverflowError, match="magnitude"):
        be.encrypt(np.array([1.0, 3e5]))
    with pytest.raises(EncodingOverflowError):
        be.encrypt(np.array([np.nan]))
    with pytest.raises(ShapeMismatchError):
        be.encrypt(np.ones((2, 2, 2)))
    with pytest.raises(ShapeMismatchError):
        be.encrypt(np.array([]))
    with pytest.raises(ShapeMismatchError):
        be.encrypt(np.ones(3), layout="column")
    with pytest.raises(ValueError, match="layout"):
        be.encrypt(np.ones(3), layout="diagonal")
    with pytest.raises(EncodingOverflowError):
        be.encrypt(np.ones(3)) + 1e6
    assert be.encrypt(np.int64(3)).layout == "element"
