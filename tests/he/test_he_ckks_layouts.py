"""CKKS layouts: products, reductions, indexing and reshapes against numpy, per layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.he.ckks import (
    COLUMN,
    COLUMN_T,
    ELEMENT,
    VECTOR,
    CKKSBackend,
    CKKSContext,
    ckks_keygen,
)
from securecomp.tensor import Op, SecureTensor

ATOL = 1e-4  # well inside the planned precision at these magnitudes (|x| <= 4, depth <= 2)
values = st.floats(-4, 4, allow_nan=False, width=64)
SETTINGS = settings(max_examples=6, deadline=None)


@pytest.fixture(scope="module")
def pair() -> tuple[CKKSBackend, CKKSContext]:
    return ckks_keygen(galois_keys=True)


def _check(
    t: SecureTensor, key: CKKSContext, want: object, layout: str | None = None, atol: float = ATOL
) -> None:
    want = np.asarray(want, dtype=np.float64)
    assert t.shape == want.shape, (t.shape, want.shape)
    if layout is not None:
        assert t.layout == layout
    np.testing.assert_allclose(t.decrypt(key), want, rtol=0, atol=atol)


def test_default_layouts_and_capabilities(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, _ = pair
    assert be.encrypt(np.ones(3)).layout == VECTOR
    assert be.encrypt(np.ones((3, 2))).layout == COLUMN
    assert be.encrypt(np.ones((3, 2))).T.layout == COLUMN_T
    assert be.encrypt(2.0).layout == ELEMENT
    for layout in (VECTOR, COLUMN, COLUMN_T, ELEMENT):
        caps = be.capabilities(layout)
        assert {Op.ADD, Op.MUL, Op.MATMUL_PLAIN, Op.SUM, Op.POLYVAL} <= caps
        assert Op.LT not in caps
    # one ciphertext per column and chunk of 4096 rows
    assert len(be.encrypt(np.ones((5000, 3))).payload.cts) == 6
    assert len(be.encrypt(np.ones((3, 2)), layout=ELEMENT).payload.cts) == 6


@SETTINGS
@given(m=st.integers(1, 5), k=st.integers(1, 4), n=st.integers(1, 3), data=st.data())
def test_plaintext_products(
    pair: tuple[CKKSBackend, CKKSContext], m: int, k: int, n: int, data: st.DataObject
) -> None:
    be, key = pair
    x = data.draw(hnp.arrays(np.float64, (m, k), elements=values))
    w = data.draw(hnp.arrays(np.float64, (k, n), elements=values))
    v = data.draw(hnp.arrays(np.float64, (n, m), elements=values))
    u = data.draw(hnp.arrays(np.float64, (m,), elements=values))
    ex = be.encrypt(x)
    _check(ex @ w, key, x @ w, COLUMN)  # rotation-free inference
    _check(ex @ w[:, 0], key, x @ w[:, 0], VECTOR)
    _check(v @ ex, key, v @ x, ELEMENT)  # inner products per column
    _check(u @ ex, key, u @ x, ELEMENT)
    _check(ex.T @ u, key, x.T @ u, ELEMENT)
    _check(w.T @ ex.T, key, w.T @ x.T, COLUMN_T)  # (x @ w).T, rotation-free
    _check(ex.dot(w), key, x.dot(w))
    eu = be.encrypt(u)
    _check(eu @ u, key, u @ u, ELEMENT)
    _check(eu.dot(np.full(m, 0.5)), key, u.dot(np.full(m, 0.5)))
    _check(v @ eu, key, v @ u, ELEMENT)
    ee = be.encrypt(x, layout=ELEMENT)
    _check(ee @ w, key, x @ w, ELEMENT)
    _check(v @ ee, key, v @ x, ELEMENT)
    _check(u @ ee, key, u @ x, ELEMENT)


@SETTINGS
@given(m=st.integers(1, 4), k=st.integers(1, 3), data=st.data())
def test_ciphertext_products(
    pair: tuple[CKKSBackend, CKKSContext], m: int, k: int, data: st.DataObject
) -> None:
    be, key = pair
    x = data.draw(hnp.arrays(np.float64, (m, k), elements=values))
    r = data.draw(hnp.arrays(np.float64, (m,), elements=values))
    w = data.draw(hnp.arrays(np.float64, (k,), elements=values))
    wm = data.draw(hnp.arrays(np.float64, (k, 2), elements=values))
    ex, er = be.encrypt(x), be.encrypt(r)
    _check(ex.T @ er, key, x.T @ r, ELEMENT, atol=1e-3)  # the gradient X^T r
    _check(er @ ex, key, r @ x, ELEMENT, atol=1e-3)
    _check(er @ er, key, r @ r, ELEMENT, atol=1e-3)
    _check(er.dot(er), key, r.dot(r), atol=1e-3)
    _check(ex.T @ ex, key, x.T @ x, ELEMENT, atol=1e-3)  # Gram matrix
    ew, ewm = be.encrypt(w, layout=ELEMENT), be.encrypt(wm, layout=ELEMENT)
    _check(ex @ ew, key, x @ w, VECTOR, atol=1e-3)  # encrypted weights: 2 levels
    _check(ex @ ewm, key, x @ wm, COLUMN, atol=1e-3)
    _check(ewm.T @ ex.T, key, wm.T @ x.T, COLUMN_T, atol=1e-3)
    _check(ew @ ex.T, key, w @ x.T, VECTOR, atol=1e-3)
    _check(ew @ ew, key, w @ w, ELEMENT, atol=1e-3)
    _check(ewm.T @ ew, key, wm.T @ w, ELEMENT, atol=1e-3)
    s = er.sum()
    _check(er - s, key, r - r.sum(), VECTOR, atol=1e-3)  # encrypted scalar broadcast
    _check(s * ex, key, r.sum() * x, COLUMN, atol=1e-2)
    _check(ew * ew[0], key, w * w[0], ELEMENT, atol=1e-3)  # element broadcasting


@SETTINGS
@given(
    a=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), elements=values)
)
def test_sums_per_layout(pair: tuple[CKKSBackend, CKKSContext], a: np.ndarray) -> None:
    be, key = pair
    for layout in (None, ELEMENT):
        ea = be.encrypt(a, layout=layout)
        _check(ea.sum(), key, a.sum())
        for axis in range(-a.ndim, a.ndim):
            _check(ea.sum(axis=axis), key, a.sum(axis=axis))
        if a.ndim == 2:
            _check(ea.T.sum(axis=0), key, a.T.sum(axis=0))
            _check(ea.T.sum(), key, a.sum())
    if a.ndim == 2:
        assert be.encrypt(a).sum(axis=1).layout == VECTOR  # across columns: no rotation


def test_indexing_reshape_transpose(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    x = np.arange(15.0).reshape(5, 3) / 4 - 1
    v = x[:, 0].copy()
    ex, ev = be.encrypt(x), be.encrypt(v)
    # free: whole columns, transposes, (n,) <-> (n, 1) <-> (1, n)
    for got, want, layout in [
        (ex[:, 1], x[:, 1], VECTOR),
        (ex[..., -1:], x[..., -1:], COLUMN),
        (ex[:, [2, 0]], x[:, [2, 0]], COLUMN),
        (ex.T[1], x.T[1], VECTOR),
        (ex.T[1:], x.T[1:], COLUMN_T),
        (ex.T.T, x, COLUMN),
        (ev.T, v, VECTOR),
        (ev.reshape(5, 1), v.reshape(5, 1), COLUMN),
        (ev.reshape(1, 5), v.reshape(1, 5), COLUMN_T),
        (ex[:, :1].reshape(-1), x[:, 0], VECTOR),
        (ev[:], v, VECTOR),
        (ev[:, None], v[:, None], COLUMN),
    ]:
        _check(got, key, want, layout)
        assert got.meta["level"] == 0
    # gathered: elements moved out of their slots (one level)
    for got, want in [
        (ex[0], x[0]),
        (ex[2, 1], x[2, 1]),
        (ev[-1:], v[-1:]),
        (ev[3], v[3]),
        (ex.reshape(-1), x.reshape(-1)),
        (ex[1:3, 1:], x[1:3, 1:]),
        (ex.T[:, 2], x.T[:, 2]),
        (ev.reshape(5, 1)[::2], v.reshape(5, 1)[::2]),
    ]:
        _check(got, key, want, ELEMENT)
        assert got.meta["level"] == 1
    # element tensors reshape, index and transpose freely
    ee = be.encrypt(x, layout=ELEMENT)
    for got, want in [
        (ee.T, x.T),
        (ee[1:, ::2], x[1:, ::2]),
        (ee.reshape(3, 5), x.reshape(3, 5)),
        (ee[ee.shape[0] - 1], x[-1]),
        (np.transpose(ee), x.T),
    ]:
        _check(got, key, want, ELEMENT)
        assert got.meta["level"] == 0
    # a single row is already element-shaped
    row = be.encrypt(x[:1])
    _check(row.reshape(-1), key, x[0], ELEMENT)
    assert row.reshape(-1).meta["level"] == 0


def test_more_rows_than_slots(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (4096 + 17, 2))
    r = rng.uniform(-1, 1, 4096 + 17)
    ex, er = be.encrypt(x), be.encrypt(r)
    w = np.array([0.5, -2.0])
    _check(ex @ w, key, x @ w, VECTOR)
    _check(ex.sum(axis=0), key, x.sum(axis=0), atol=1e-3)
    _check(ex.T @ er, key, x.T @ r, atol=1e-3)
    _check((ex @ w - r).polyval([0.5, 0.25]), key, 0.5 + 0.25 * (x @ w - r))
    _check(ex[4100], key, x[4100])
    _check(ex[:, 1] * er, key, x[:, 1] * r)
    np.testing.assert_allclose(er.decrypt(key), r, atol=1e-6)
