"""Randomized Hadamard rotation: exact inverse, orthogonality, agreement with a dense matrix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import hadamard

from securecomp.dp import RandomizedHadamard, fwht, padded_dim
from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError

SEED = b"\x07" * 32


def test_padded_dim_is_next_power_of_two() -> None:
    assert [padded_dim(d) for d in (1, 2, 3, 4, 5, 1000, 1024, 1025)] == [
        1, 2, 4, 4, 8, 1024, 1024, 2048,
    ]  # fmt: skip
    with pytest.raises(ParameterError):
        padded_dim(0)


@pytest.mark.parametrize("n", [1, 2, 8, 64, 256])
def test_fwht_matches_dense_hadamard_matrix(n: int) -> None:
    v = np.random.default_rng(n).normal(size=(3, n))
    expected = v @ hadamard(n).T  # Sylvester ordering, as the butterfly produces
    np.testing.assert_allclose(fwht(v), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    k=st.integers(0, 9),
    data=st.data(),
)
def test_fwht_twice_is_exactly_n_times_identity_on_integers(k: int, data: st.DataObject) -> None:
    n = 1 << k
    values = data.draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n))
    v = np.array(values, dtype=np.int64)
    assert np.array_equal(fwht(fwht(v)), n * v)


@settings(max_examples=60, deadline=None)
@given(
    dim=st.integers(1, 300),
    seed=st.binary(min_size=32, max_size=32),
    data=st.data(),
)
def test_inverse_undoes_forward_and_preserves_norm(
    dim: int, seed: bytes, data: st.DataObject
) -> None:
    x = np.array(
        data.draw(
            st.lists(
                st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
                min_size=dim,
                max_size=dim,
            )
        )
    )
    rot = RandomizedHadamard(dim, seed)
    y = rot.forward(x)
    assert y.shape == (padded_dim(dim),)
    scale = 1.0 + float(np.linalg.norm(x))
    np.testing.assert_allclose(rot.inverse(y), x, rtol=0, atol=1e-12 * scale)
    assert abs(np.linalg.norm(y) - np.linalg.norm(x)) <= 1e-12 * scale


def test_rotation_is_the_dense_orthogonal_matrix() -> None:
    dim = 13
    rot = RandomizedHadamard(dim, SEED)
    p = rot.padded_dim
    matrix = hadamard(p) @ np.diag(rot.signs) / np.sqrt(p)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(p), atol=1e-12)
    x = np.arange(dim, dtype=np.float64) - 6.0
    padded = np.concatenate([x, np.zeros(p - dim)])
    np.testing.assert_allclose(rot.forward(x), matrix @ padded, atol=1e-12)


def test_round_rotation_is_shared_and_fresh_per_round() -> None:
    public = b"broadcast-by-server-0123456789"
    a = RandomizedHadamard.for_round(100, public, session=b"s1", round=3)
    b = RandomizedHadamard.for_round(100, public, session=b"s1", round=3)
    c = RandomizedHadamard.for_round(100, public, session=b"s1", round=4)
    d = RandomizedHadamard.for_round(100, public, session=b"s2", round=3)
    assert np.array_equal(a.signs, b.signs)
    assert not np.array_equal(a.signs, c.signs)
    assert not np.array_equal(a.signs, d.signs)
    assert set(np.unique(a.signs)) == {-1.0, 1.0}


def test_rotation_flattens_a_spike() -> None:
    # A one-hot vector becomes +-1/sqrt(d') everywhere: the energy is spread evenly.
    rot = RandomizedHadamard(1024, SEED)
    e = np.zeros(1024)
    e[17] = 1.0
    np.testing.assert_allclose(np.abs(rot.forward(e)), 1.0 / 32.0, rtol=1e-12)


def test_bad_inputs_are_refused() -> None:
    rot = RandomizedHadamard(5, SEED)
    with pytest.raises(ShapeMismatchError):
        rot.forward(np.zeros(6))
    with pytest.raises(ShapeMismatchError):
        rot.inverse(np.zeros(5))
    with pytest.raises(EncodingOverflowError):
        rot.forward(np.array([1.0, np.nan, 0.0, 0.0, 0.0]))
    with pytest.raises(ParameterError):
        rot.forward(np.array(["a"] * 5))
    with pytest.raises(ParameterError):
        RandomizedHadamard(5, b"short")
    with pytest.raises(ParameterError):
        fwht(np.zeros(6))
    with pytest.raises(ParameterError):
        RandomizedHadamard.for_round(5, b"too short", session=b"s", round=0)
