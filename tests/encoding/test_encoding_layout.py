"""CKKS slot layouts: round trips, zero padding, masks that make slot sums correct."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.encoding import ColumnLayout, RowLayout
from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError

finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(0, 40),
    n_cols=st.integers(1, 5),
    slots=st.sampled_from([1, 2, 4, 8, 16, 64]),
    data=st.data(),
)
def test_column_layout_round_trip_and_masks(
    n_rows: int, n_cols: int, slots: int, data: st.DataObject
) -> None:
    x = data.draw(hnp.arrays(np.float64, (n_rows, n_cols), elements=finite))
    layout = ColumnLayout(n_rows, n_cols, slots)
    vectors = layout.split(x)
    assert len(vectors) == layout.n_chunks == -(-n_rows // slots)
    assert np.array_equal(layout.join(vectors), x)
    col_sums = np.zeros(n_cols)
    for c, chunk in enumerate(vectors):
        start, stop = layout.row_range(c)
        mask = layout.valid_mask(c)
        assert mask.sum() == stop - start == layout.chunk_rows(c)
        for j, v in enumerate(chunk):
            assert v.shape == (slots,)
            assert np.array_equal(v[: stop - start], x[start:stop, j])
            assert not v[stop - start :].any()  # padding is zero
            # After a homomorphic "+ 1" the padding is no longer zero; the mask restores it.
            col_sums[j] += np.sum((v + 1.0) * mask) - mask.sum()
    np.testing.assert_allclose(col_sums, x.sum(axis=0), rtol=1e-12, atol=1e-6)


def test_column_layout_chunks_rows_in_order() -> None:
    x = np.arange(20.0).reshape(10, 2)
    layout = ColumnLayout(10, 2, 4)
    vectors = layout.split(x)
    assert [v.tolist() for v in vectors[1]] == [[8, 10, 12, 14], [9, 11, 13, 15]]
    assert [v.tolist() for v in vectors[2]] == [[16, 18, 0, 0], [17, 19, 0, 0]]
    assert layout.n_ciphertexts == 6
    y = np.arange(10.0)
    parts = layout.split_vector(y)
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 0]]
    assert np.array_equal(layout.join_vector(parts), y)
    # X^T y chunk by chunk, column by column: the slot-sum computation of the CKKS backend.
    xty = [sum(float(np.sum(vectors[c][j] * parts[c])) for c in range(3)) for j in range(2)]
    assert np.allclose(xty, x.T @ y)
    # Decrypted vectors may come back shorter (only the valid rows) or full length.
    trimmed = [[v[: layout.chunk_rows(c)] for v in chunk] for c, chunk in enumerate(vectors)]
    assert np.array_equal(layout.join(trimmed), x)


def test_column_layout_errors() -> None:
    layout = ColumnLayout(3, 2, 4)
    with pytest.raises(ShapeMismatchError):
        layout.split(np.zeros((2, 3)))
    with pytest.raises(EncodingOverflowError, match="NaN"):
        layout.split(np.array([[1.0, np.nan], [0, 0], [0, 0]]))
    with pytest.raises(ParameterError):
        layout.split(np.array([["a", "b"]] * 3))
    with pytest.raises(ShapeMismatchError):
        layout.join([])
    with pytest.raises(ShapeMismatchError):
        layout.join([[np.zeros(4)]])
    with pytest.raises(ShapeMismatchError):
        layout.join([[np.zeros(2), np.zeros(4)]])
    with pytest.raises(ParameterError):
        layout.valid_mask(1)
    for bad in [(-1, 2, 4), (3, 0, 4), (3, 2, 0), (3.0, 2, 4)]:
        with pytest.raises(ParameterError):
            ColumnLayout(*bad)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(0, 30),
    n_cols=st.integers(1, 9),
    log_slots=st.integers(4, 7),
    data=st.data(),
)
def test_row_layout_round_trip_and_inner_products(
    n_rows: int, n_cols: int, log_slots: int, data: st.DataObject
) -> None:
    slots = 2**log_slots
    x = data.draw(hnp.arrays(np.float64, (n_rows, n_cols), elements=finite))
    w = data.draw(hnp.arrays(np.float64, (n_cols,), elements=finite))
    layout = RowLayout(n_rows, n_cols, slots)
    vectors = layout.split(x)
    assert len(vectors) == layout.n_vectors
    assert np.array_equal(layout.join(vectors), x)
    rep = layout.replicate(w)
    got = []
    for i, v in enumerate(vectors):
        assert v.shape == (slots,)
        assert not v[layout.valid_mask(i) == 0].any()  # everything but the data is zero
        # Slot product, then a sum within each block (rotations in CKKS).
        blocks = (v * rep)[: layout.rows_per_vector * layout.block]
        got.extend(blocks.reshape(layout.rows_per_vector, layout.block).sum(axis=1))
    np.testing.assert_allclose(got[:n_rows], x @ w, rtol=1e-9, atol=1e-3)


def test_row_layout_geometry_and_errors() -> None:
    layout = RowLayout(5, 3, 16)
    assert (layout.block, layout.rows_per_vector, layout.n_vectors) == (4, 4, 2)
    assert layout.valid_mask(1).tolist() == [1, 1, 1, 0] + [0] * 12
    with pytest.raises(ParameterError, match="ColumnLayout"):
        RowLayout(2, 20, 16)
    with pytest.raises(ShapeMismatchError):
        layout.join([np.zeros(16)])
    with pytest.raises(ShapeMismatchError):
        layout.replicate(np.zeros(4))
    with pytest.raises(ParameterError):
        layout.valid_mask(2)
