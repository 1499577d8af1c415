"""Z_2^128 limb arithmetic and the ring interface against Python integers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import InsecureParameterError, ParameterError
from securecomp.mpc.spdz2k import limbs, matmul
from securecomp.mpc.spdz2k.ring import BINARY_PARAMETERS, DEFAULT_PARAMETERS, Spdz2kParameters
from securecomp.params import InsecureParametersWarning, insecure_test_parameters

M128 = (1 << 128) - 1
M64 = (1 << 64) - 1
u128 = st.integers(0, M128)
u64 = st.integers(0, M64)
vectors = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        *(st.lists(g, min_size=n, max_size=n) for g in (u128, u128, u128, u64, u64))
    )
)


def ints(w: np.ndarray) -> list[int]:
    return [int(v) for v in limbs.to_ints(w).reshape(-1)]


@contextlib.contextmanager
def chunk_size(n: int) -> Iterator[None]:
    """A tiny chunk exercises the chunked kernels (and their short last chunk) on small
    inputs."""
    old = limbs.CHUNK
    limbs.CHUNK = n
    try:
        yield
    finally:
        limbs.CHUNK = old


CHUNKS = pytest.mark.parametrize("chunk", [1 << 20, 4], ids=["whole", "chunked"])


@CHUNKS
@settings(max_examples=40, deadline=None)
@given(data=vectors)
def test_elementwise_kernels_match_python_integers(data: tuple, chunk: int) -> None:
    with chunk_size(chunk):
        _check_elementwise(data)


def _check_elementwise(data: tuple) -> None:
    a, b, c, d, e = data
    wa, wb, wc = limbs.from_ints(a), limbs.from_ints(b), limbs.from_ints(c)
    fd, fe = np.array(d, dtype=np.uint64), np.array(e, dtype=np.uint64)
    assert ints(limbs.add(wa, wb)) == [(x + y) & M128 for x, y in zip(a, b)]
    assert ints(limbs.sub(wa, wb)) == [(x - y) & M128 for x, y in zip(a, b)]
    assert ints(limbs.neg(wa)) == [(-x) & M128 for x in a]
    assert ints(limbs.mul(wa, wb)) == [(x * y) & M128 for x, y in zip(a, b)]
    assert [int(v) for v in limbs.mulhi(fd, fe)] == [(x * y) >> 64 for x, y in zip(d, e)]
    assert ints(limbs.lincomb([fd], [wb])) == [(x * y) & M128 for x, y in zip(d, b)]
    want = [(z + x1 * y1 + x2 * y2) & M128 for z, x1, y1, x2, y2 in zip(c, d, b, e, a)]
    assert ints(limbs.lincomb([fd, fe], [wb, wa], wc)) == want
    assert ints(limbs.mul_int(c[0], wb)) == [(c[0] * y) & M128 for y in b]


@CHUNKS
@settings(max_examples=30, deadline=None)
@given(data=vectors)
def test_kernels_may_write_over_their_operands(data: tuple, chunk: int) -> None:
    with chunk_size(chunk):
        _check_aliasing(data)


def _check_aliasing(data: tuple) -> None:
    a, b, c, d, e = data
    fd, fe = np.array(d, dtype=np.uint64), np.array(e, dtype=np.uint64)
    for alias in ("a", "b", "c"):
        ws = {"a": limbs.from_ints(a), "b": limbs.from_ints(b), "c": limbs.from_ints(c)}
        limbs.lincomb([fd, fe], [ws["b"], ws["a"]], ws["c"], out=ws[alias])
        assert ints(ws[alias]) == [
            (z + x1 * y1 + x2 * y2) & M128 for z, x1, y1, x2, y2 in zip(c, d, b, e, a)
        ]
    wa, wb = limbs.from_ints(a), limbs.from_ints(b)
    limbs.add(wb, wa, out=wa)
    assert ints(wa) == [(x + y) & M128 for x, y in zip(a, b)]
    wa = limbs.from_ints(a)
    limbs.add(wa, wa, out=wa)
    assert ints(wa) == [(2 * x) & M128 for x in a]
    wa, wb = limbs.from_ints(a), limbs.from_ints(b)
    limbs.sub(wb, wa, out=wa)
    assert ints(wa) == [(y - x) & M128 for x, y in zip(a, b)]


@CHUNKS
@settings(max_examples=30, deadline=None)
@given(data=vectors)
def test_dot_is_the_exact_linear_combination(data: tuple, chunk: int) -> None:
    with chunk_size(chunk):
        _check_dot(data)


def _check_dot(data: tuple) -> None:
    a, b, _, d, _ = data
    x = np.stack([limbs.from_ints(a), limbs.from_ints(b)], axis=1)  # two rows, one chi
    chi = np.array(d, dtype=np.uint64)
    got = limbs.dot(chi, x)
    assert got == [sum(w * v for w, v in zip(d, col)) & M128 for col in (a, b)]


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 4)),
    data=st.data(),
)
def test_matrix_products_and_sums(shape: tuple[int, int, int], data: st.DataObject) -> None:
    m, k, p = shape
    pub = [[data.draw(u64) for _ in range(k)] for _ in range(m)]
    wide = [[data.draw(u128) for _ in range(p)] for _ in range(k)]
    P, W = np.array(pub, dtype=np.uint64), limbs.from_ints(wide)
    got = limbs.to_ints(matmul.wide_matmul_left(P, W)).tolist()
    assert got == [[sum(pub[i][j] * wide[j][q] for j in range(k)) & M128 for q in range(p)]
                   for i in range(m)]
    Q = P.T.copy()  # (k, m)
    wide_t = [list(r) for r in zip(*wide)]  # (p, k)
    got = limbs.to_ints(matmul.wide_matmul_right(limbs.from_ints(wide_t), Q)).tolist()
    assert got == [[sum(wide_t[i][j] * pub[q][j] for j in range(k)) & M128 for q in range(m)]
                   for i in range(p)]
    flat = [v for row in wide for v in row]
    assert int(limbs.to_ints(limbs.sum_axis(W, None))) == sum(flat) & M128
    assert limbs.to_ints(limbs.sum_axis(W, 0)).tolist() == [
        sum(wide[j][q] for j in range(k)) & M128 for q in range(p)
    ]
    assert limbs.to_ints(limbs.sum_axis(W, -1)).tolist() == [sum(r) & M128 for r in wide]


def test_exact_products_of_full_width_matrices() -> None:
    # All-ones words: every digit product is maximal, the worst case for exactness.
    a = np.full((3, 300), M64, dtype=np.uint64)
    b = np.full((300, 2), M64, dtype=np.uint64)
    got = limbs.to_ints(matmul.matmul_u64(a, b))
    assert (got == (300 * M64 * M64) & M128).all()


def test_ring_interface_for_both_widths() -> None:
    rng = np.random.default_rng(1)
    for params in (DEFAULT_PARAMETERS, BINARY_PARAMETERS):
        ring = params.ring
        mod = 1 << ring.bits
        a = [int(v) for v in rng.integers(0, 2**63, 6)]
        b = [int(v) * 3 + 1 for v in rng.integers(0, 2**62, 6)]
        wa = np.stack([ring.from_int(v) for v in a], axis=-1)
        wb = np.stack([ring.from_int(v) for v in b], axis=-1)

        def val(w: np.ndarray) -> list[int]:
            return [ring.to_int(w[..., j]) for j in range(w.shape[-1])]

        assert val(ring.add(wa, wb)) == [(x + y) % mod for x, y in zip(a, b)]
        assert val(ring.sub(wa, wb)) == [(x - y) % mod for x, y in zip(a, b)]
        assert val(ring.mul(wa, wb)) == [(x * y) % mod for x, y in zip(a, b)]
        assert val(ring.mul_int(7, wa)) == [(7 * x) % mod for x in a]
        f = np.array(b, dtype=np.uint64)
        assert val(ring.lincomb([f], [wa], wb)) == [(y + y * x) % mod for x, y in zip(a, b)]
        assert ring.dot(f, wa[:, np.newaxis]) == [sum(x * y for x, y in zip(a, b)) % mod]


def test_parameter_sets() -> None:
    assert DEFAULT_PARAMETERS.ring.bits == 128
    assert DEFAULT_PARAMETERS.soundness_bits > 57
    assert BINARY_PARAMETERS.ring.bits == 64
    with pytest.raises(ParameterError):
        Spdz2kParameters(64, 40)
    with pytest.raises(InsecureParameterError, match="2\\^-27"):
        Spdz2kParameters(32, 32)
    with pytest.warns(InsecureParametersWarning), insecure_test_parameters():
        weak = Spdz2kParameters(32, 32)
    assert weak.ring.bits == 64 and round(weak.soundness_bits) == 27
