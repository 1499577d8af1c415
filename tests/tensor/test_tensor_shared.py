"""Shared SecureTensor tests: every registered backend against the numpy oracle."""

from __future__ import annotations

import numpy as np
import pytest
from harness import Harness, assert_matches
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    RevealError,
    ShapeMismatchError,
)
from securecomp.tensor import Op

values = st.floats(min_value=-8, max_value=8, allow_nan=False, width=64)
vectors = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6), elements=values
)

SETTINGS = settings(max_examples=30, deadline=None)


@SETTINGS
@given(data=st.data())
def test_elementwise_ops_match_numpy(backend: Harness, data: st.DataObject) -> None:
    a = data.draw(vectors)
    b = data.draw(hnp.arrays(np.float64, a.shape, elements=values))
    ea, eb = backend.protect(a), backend.protect(b)
    if backend.supports(Op.ADD):
        assert_matches(backend, ea + eb, a + b)
    if backend.supports(Op.SUB):
        assert_matches(backend, ea - eb, a - b)
    if backend.supports(Op.ADD_PLAIN):
        assert_matches(backend, ea + b, a + b)
        assert_matches(backend, b + ea, a + b)
    if backend.supports(Op.RSUB_PLAIN):
        assert_matches(backend, b - ea, b - a)
    if backend.supports(Op.NEG):
        assert_matches(backend, -ea, -a)
    if backend.supports(Op.MUL):
        assert_matches(backend, ea * eb, a * b)
    if backend.supports(Op.MUL_PLAIN):
        assert_matches(backend, ea * b, a * b)
        assert_matches(backend, 3 * ea, 3 * a)


@SETTINGS
@given(m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5), data=st.data())
def test_matmul_and_dot_match_numpy(
    backend: Harness, m: int, k: int, n: int, data: st.DataObject
) -> None:
    x = data.draw(hnp.arrays(np.float64, (m, k), elements=values))
    w = data.draw(hnp.arrays(np.float64, (k, n), elements=values))
    ex = backend.protect(x)
    if backend.supports(Op.MATMUL_PLAIN):
        assert_matches(backend, ex @ w, x @ w)
    if backend.supports(Op.RMATMUL_PLAIN):
        v = data.draw(hnp.arrays(np.float64, (n, m), elements=values))
        assert_matches(backend, v @ ex, v @ x)
        assert_matches(backend, np.dot(v, ex), v @ x)
    if backend.supports(Op.MATMUL):
        assert_matches(backend, ex @ backend.protect(w), x @ w)
    if backend.supports(Op.DOT_PLAIN):
        u = data.draw(hnp.arrays(np.float64, (k,), elements=values))
        assert_matches(backend, backend.protect(u).dot(u), u @ u)


@SETTINGS
@given(a=vectors)
def test_reductions_indexing_and_shape_ops(backend: Harness, a: np.ndarray) -> None:
    ea = backend.protect(a)
    if backend.supports(Op.SUM):
        assert_matches(backend, ea.sum(), a.sum())
        assert_matches(backend, np.sum(ea, axis=0), a.sum(axis=0))
        assert_matches(backend, ea.sum(axis=-1), a.sum(axis=-1))
    if backend.supports(Op.GETITEM):
        assert_matches(backend, ea[0], a[0])
        assert_matches(backend, ea[..., -1:], a[..., -1:])
    if backend.supports(Op.RESHAPE):
        assert_matches(backend, ea.reshape(-1), a.reshape(-1))
        assert_matches(backend, np.reshape(ea, (a.size, 1)), a.reshape(a.size, 1))
    if backend.supports(Op.TRANSPOSE):
        assert_matches(backend, ea.T, a.T)


@SETTINGS
@given(a=vectors, coeffs=st.lists(st.floats(-2, 2), min_size=1, max_size=4))
def test_polyval_matches_numpy(backend: Harness, a: np.ndarray, coeffs: list[float]) -> None:
    if not backend.supports(Op.POLYVAL):
        pytest.skip("backend has no polyval")
    want = np.polynomial.polynomial.polyval(a, coeffs)
    assert_matches(backend, backend.protect(a).polyval(coeffs), want)


def test_operations_do_not_mutate_operands(backend: Harness) -> None:
    a = np.array([[1.0, -2.0], [3.0, 4.5]])
    ea, eb = backend.protect(a), backend.protect(a * 2)
    for op, fn in [
        (Op.ADD, lambda: ea + eb),
        (Op.SUB, lambda: eb - ea),
        (Op.MUL, lambda: ea * eb),
        (Op.MUL_PLAIN, lambda: ea * 3.0),
        (Op.NEG, lambda: -ea),
        (Op.SUM, lambda: ea.sum(axis=0)),
    ]:
        if backend.supports(op):
            fn()
    assert_matches(backend, ea, a)
    assert_matches(backend, eb, a * 2)


def test_mixing_keys_is_refused(backend: Harness) -> None:
    a = np.ones((2, 2))
    with pytest.raises(KeyMismatchError):
        backend.protect(a) + backend.protect_other_key(a)
    with pytest.raises(KeyMismatchError, match="different keys"):
        backend.protect(a) * backend.protect_other_key(a)


def test_nothing_reveals_by_accident(backend: Harness) -> None:
    # Look for digits with a decimal point: bare digits can occur by chance in a hex key id.
    secret = np.array([987.65625, -0.0390625])
    ea = backend.protect(secret)
    for reveal in (bool, float, int, np.asarray, np.array, lambda t: t[0] if t else 0):
        with pytest.raises(RevealError):
            reveal(ea)
    with pytest.raises(RevealError):
        np.asarray(ea.sum())
    text = repr(ea) + str(ea)
    assert "987.6" not in text and ".0390" not in text
    assert backend.name in text


def test_bad_plaintext_operands(backend: Harness) -> None:
    ea = backend.protect(np.ones(3))
    with pytest.raises(EncodingOverflowError):
        ea + np.array([1.0, np.nan, 0.0])
    with pytest.raises(EncodingOverflowError):
        ea * np.inf
    with pytest.raises(TypeError):
        ea + np.array(["a", "b", "c"])
    with pytest.raises(ShapeMismatchError):
        ea + np.ones(4)
    with pytest.raises(ShapeMismatchError):
        ea.reshape(2, 2)
    with pytest.raises(ShapeMismatchError):
        ea[5]
    with pytest.raises(ShapeMismatchError):
        ea.sum(axis=3)
