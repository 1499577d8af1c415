"""Exact ring matrix products: both code paths against Python integers, worst-case values."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.encoding import ring_dot, ring_matmul, ring_sum
from securecomp.encoding.ring import _matmul32, _matmul64
from securecomp.errors import ParameterError, ShapeMismatchError

DTYPES = {64: np.uint64, 32: np.uint32}
BLAS_PATHS: dict[int, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    64: _matmul64,
    32: _matmul32,
}


def reference(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Matrix product over Python integers, reduced modulo 2^bits."""
    prod = np.matmul(a.astype(object), b.astype(object))
    return np.vectorize(lambda v: int(v) % 2**bits, otypes=[object])(prod)


def most_negative_digits(bits: int) -> int:
    """The value whose balanced digits (in the plan of `bits`) all equal -2^(w-1)."""
    if bits == 64:
        offset = sum(2 ** (w - 1) << s for w, s in zip((21, 22, 21), (0, 21, 43), strict=True))
    else:
        offset = 2**10 + (2**20 << 11)
    return (-offset) % 2**bits


def worst_case_operands(bits: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Operands whose digit products all have (nearly) the largest magnitude and one sign,
    plus one odd term per product: any float64 partial sum above 2^53 would drop that odd
    bit, so this fails if a chunk were longer than the exactness bound allows."""
    worst = most_negative_digits(bits)
    if bits == 64:
        wa, wb = worst, worst
        odd_a, odd_b = worst + 1 + 2**43, worst + 1  # odd digits 0 (a, b) and 2 (a)
    else:
        # B's full value near -2^31 and its low 21 bits at -2^20: both products at their worst.
        wa, wb = worst, 2**31 + 2**20
        odd_a, odd_b = wa + 1, wb + 1
    a = np.full((2, k), wa, dtype=DTYPES[bits])
    b = np.full((k, 3), wb, dtype=DTYPES[bits])
    a[:, 0] = odd_a % 2**bits
    b[0, :] = odd_b % 2**bits
    return a, b


def special_values(bits: int) -> list[int]:
    """Edge values of the ring and of the digit decompositions."""
    top = 2**bits - 1
    worst = most_negative_digits(bits)
    # worst - 1 puts every digit at its largest positive value, 2^(w-1) - 1.
    return sorted({0, 1, top, 2 ** (bits - 1), 2 ** (bits - 1) - 1, worst, (worst - 1) % 2**bits})


def ring_arrays(bits: int, shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    dtype = DTYPES[bits]
    elements = st.one_of(
        st.integers(0, 2**bits - 1), st.sampled_from(special_values(bits))
    )
    return hnp.arrays(dtype, shape, elements=elements)


@pytest.mark.parametrize("bits", [64, 32])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_blas_path_is_bit_exact(bits: int, data: st.DataObject) -> None:
    m, k, n = (data.draw(st.integers(0, 6), label=x) for x in "mkn")
    a = data.draw(ring_arrays(bits, (m, k)))
    b = data.draw(ring_arrays(bits, (k, n)))
    got = BLAS_PATHS[bits](a, b) if m * k * n else ring_matmul(a, b)
    assert got.dtype == DTYPES[bits] and got.shape == (m, n)
    assert got.astype(object).tolist() == reference(a, b, bits).tolist()
    assert ring_matmul(a, b).tolist() == got.tolist()  # the automatic choice agrees


@pytest.mark.parametrize("bits", [64, 32])
@pytest.mark.parametrize("fill", ["max", "digit_extreme", "random"])
def test_long_inner_dimension_exercises_chunking(bits: int, fill: str) -> None:
    # K beyond every exactness chunk of both plans (910 and 2048 for Z_2^64, 4096 for Z_2^32).
    k = 9000
    rng = np.random.default_rng(7)
    dtype = DTYPES[bits]
    if fill == "max":
        a = np.full((2, k), 2**bits - 1, dtype=dtype)
        b = np.full((k, 3), 2**bits - 1, dtype=dtype)
    elif fill == "digit_extreme":
        a, b = worst_case_operands(bits, k)
    else:
        a = rng.integers(0, 2**bits, size=(2, k), dtype=dtype, endpoint=False)
        b = rng.integers(0, 2**bits, size=(k, 3), dtype=dtype, endpoint=False)
    got = BLAS_PATHS[bits](a, b)
    assert got.astype(object).tolist() == reference(a, b, bits).tolist()


@pytest.mark.parametrize("bits", [64, 32])
def test_large_product_matches_numpy_integer_matmul(bits: int) -> None:
    # numpy's integer matmul wraps modulo 2^k exactly, so it is an oracle at this size.
    rng = np.random.default_rng(11)
    dtype = DTYPES[bits]
    a = rng.integers(0, 2**bits, size=(150, 300), dtype=dtype, endpoint=False)
    b = rng.integers(0, 2**bits, size=(300, 120), dtype=dtype, endpoint=False)
    got = ring_matmul(a, b)
    assert np.array_equal(got, a @ b)
    assert np.array_equal(BLAS_PATHS[bits](a, b), a @ b)


def test_batched_and_vector_operands() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2**64, size=(2, 1, 40, 50), dtype=np.uint64, endpoint=False)
    b = rng.integers(0, 2**64, size=(3, 50, 30), dtype=np.uint64, endpoint=False)
    expected = np.matmul(a, b)  # integer path: exact modulo 2^64
    assert np.array_equal(ring_matmul(a, b), expected)
    assert np.array_equal(_matmul64(a, b), expected)
    v = b[0, :, 0].copy()
    assert np.array_equal(ring_matmul(a[0, 0], v), a[0, 0] @ v)
    assert np.array_equal(ring_matmul(v, b[1]), v @ b[1])
    assert int(ring_dot(v, v)) == sum(int(x) * int(x) for x in v) % 2**64
    assert ring_matmul(v, v).shape == ()


@pytest.mark.parametrize("bits", [64, 32])
def test_batched_long_inner_dimension(bits: int) -> None:
    rng = np.random.default_rng(13)
    dtype = DTYPES[bits]
    a = rng.integers(0, 2**bits, size=(2, 1, 2, 5000), dtype=dtype, endpoint=False)
    b = rng.integers(0, 2**bits, size=(3, 5000, 2), dtype=dtype, endpoint=False)
    got = BLAS_PATHS[bits](a, b)
    assert got.shape == (2, 3, 2, 2)
    assert got.astype(object).tolist() == reference(a, b, bits).tolist()


def test_signed_views_are_read_modulo_the_ring() -> None:
    a = np.array([[-1, 2], [3, -4]], dtype=np.int64)
    b = np.array([[5, -6], [-7, 8]], dtype=np.int64)
    got = ring_matmul(a, b)
    assert got.dtype == np.uint64
    assert got.view(np.int64).tolist() == (a @ b).tolist()


def test_ring_sum() -> None:
    rng = np.random.default_rng(5)
    for bits in (64, 32):
        x = rng.integers(0, 2**bits, size=(40, 7), dtype=DTYPES[bits], endpoint=False)
        total = ring_sum(x, axis=0)
        assert total.dtype == DTYPES[bits]
        assert total.tolist() == [sum(int(v) for v in col) % 2**bits for col in x.T]
        assert int(ring_sum(x)) == sum(int(v) for v in x.ravel()) % 2**bits


def test_errors() -> None:
    a = np.zeros((2, 3), dtype=np.uint64)
    with pytest.raises(ShapeMismatchError, match="inner"):
        ring_matmul(a, np.zeros((4, 2), dtype=np.uint64))
    with pytest.raises(ParameterError, match="FixedPoint"):
        ring_matmul(a.astype(np.float64), a.T)
    with pytest.raises(ParameterError, match="different rings"):
        ring_matmul(a, np.zeros((3, 2), dtype=np.uint32))
    with pytest.raises(ParameterError, match="ring_bits=32"):
        ring_matmul(a, a.T, ring_bits=32)
    with pytest.raises(ShapeMismatchError):
        ring_matmul(np.zeros((2, 2, 3), np.uint64), np.zeros((3, 3, 2), np.uint64))
    with pytest.raises(ShapeMismatchError):
        ring_matmul(np.uint64(3), a)
    with pytest.raises(ShapeMismatchError):
        ring_dot(a, a)
