"""Slot layouts that place a data matrix into CKKS plaintext vectors.

A CKKS ciphertext holds a vector of ``slot_count = N/2`` reals and operates on all slots at
once (Cheon, Kim, Kim, Song, "Homomorphic Encryption for Arithmetic of Approximate
Numbers", ASIACRYPT 2017). How a matrix is laid out across slots decides which operations are
cheap; this module only computes layouts (pure numpy), the CKKS backend encrypts them.

* :class:`ColumnLayout` -- one ciphertext per feature (column), samples (rows) in the slots.
  ``X @ w`` for a plaintext ``w`` is a sum of ciphertext-scalar products with no rotation,
  and ``X^T r`` is one slot sum per column, which suits training and batch inference of
  linear models. Rows beyond ``slot_count`` continue in further chunks: chunk ``c`` holds
  rows ``[c*S, (c+1)*S)``.
* :class:`RowLayout` -- rows packed one after another, each in a block of
  ``next_pow2(n_cols)`` slots, for row-wise inner products with a replicated vector
  (rotate-and-sum within blocks takes ``log2`` of the block size rotations).

Padding slots are filled with zeros when laid out, but homomorphic operations (adding a
constant, evaluating a polynomial) make them non-zero; before summing slots, multiply by
the layout's ``valid_mask`` so padding never leaks into a result.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError

__all__ = ["ColumnLayout", "RowLayout"]


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an int, got {value!r}")
    v = operator.index(value)
    if v < (0 if allow_zero else 1):
        raise ParameterError(f"{name} must be {'>= 0' if allow_zero else '>= 1'}, got {v}")
    return v


def _real_matrix(x: npt.ArrayLike, shape: tuple[int, ...], what: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ParameterError(f"{what} must be real-valued, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ShapeMismatchError(f"{what} has shape {arr.shape}, the layout expects {shape}")
    out = arr.astype(np.float64, copy=False)
    if out.size and not np.isfinite(out).all():
        n_bad = int(np.count_nonzero(~np.isfinite(out)))
        raise EncodingOverflowError(
            f"{what} contains {n_bad} NaN or infinite values, which CKKS would encrypt as "
            "garbage; clean the data first"
        )
    return out


@dataclass(frozen=True)
class ColumnLayout:
    """Column packing: one vector per (chunk, column), rows in slots.

    Invariant: ``join(split(X)) == X`` for every real ``X`` of shape ``(n_rows, n_cols)``;
    every vector has exactly ``slot_count`` entries, padding entries are 0, and
    ``sum(v * valid_mask(c))`` over the vectors of a column equals that column's sum.

    Parameters
    ----------
    n_rows : int
        Number of samples (>= 0).
    n_cols : int
        Number of features (>= 1).
    slot_count : int
        Slots per ciphertext (``N / 2`` for CKKS).
    """

    n_rows: int
    n_cols: int
    slot_count: int

    def __post_init__(self) -> None:
        _positive(self.n_rows, "n_rows", allow_zero=True)
        _positive(self.n_cols, "n_cols")
        _positive(self.slot_count, "slot_count")

    @property
    def n_chunks(self) -> int:
        """Number of row chunks, ``ceil(n_rows / slot_count)``."""
        return -(-self.n_rows // self.slot_count)

    @property
    def n_ciphertexts(self) -> int:
        """Ciphertexts for the whole matrix: ``n_chunks * n_cols``."""
        return self.n_chunks * self.n_cols

    def row_range(self, chunk: int) -> tuple[int, int]:
        """Rows ``[start, stop)`` held by ``chunk``."""
        c = self._chunk(chunk)
        start = c * self.slot_count
        return start, min(self.n_rows, start + self.slot_count)

    def chunk_rows(self, chunk: int) -> int:
        """Number of valid (non-padding) slots in ``chunk``."""
        start, stop = self.row_range(chunk)
        return stop - start

    def valid_mask(self, chunk: int) -> npt.NDArray[np.float64]:
        """1.0 on the slots of ``chunk`` that hold a row, 0.0 on padding (length slot_count)."""
        mask = np.zeros(self.slot_count, dtype=np.float64)
        mask[: self.chunk_rows(chunk)] = 1.0
        return mask

    def split(self, x: npt.ArrayLike) -> list[list[npt.NDArray[np.float64]]]:
        """Lay out ``x`` (shape ``(n_rows, n_cols)``): ``result[chunk][col]`` is a vector.

        Raises
        ------
        ShapeMismatchError
            If ``x`` does not have the layout's shape.
        EncodingOverflowError
            If ``x`` contains NaN or infinity.
        """
        data = _real_matrix(x, (self.n_rows, self.n_cols), "X")
        padded = np.zeros((self.n_chunks * self.slot_count, self.n_cols), dtype=np.float64)
        padded[: self.n_rows] = data
        # (chunks, slots, cols) -> (chunks, cols, slots): each vector is one contiguous row.
        blocks = np.ascontiguousarray(
            padded.reshape(self.n_chunks, self.slot_count, self.n_cols).transpose(0, 2, 1)
        )
        return [list(blocks[c]) for c in range(self.n_chunks)]

    def join(self, vectors: Sequence[Sequence[npt.ArrayLike]]) -> npt.NDArray[np.float64]:
        """Inverse of :meth:`split`; vectors may be longer than the valid rows (padding).

        Raises
        ------
        ShapeMismatchError
            If the number of chunks or columns differs, or a vector is too short.
        """
        if len(vectors) != self.n_chunks:
            raise ShapeMismatchError(f"expected {self.n_chunks} chunks, got {len(vectors)}")
        out = np.empty((self.n_rows, self.n_cols), dtype=np.float64)
        for c, columns in enumerate(vectors):
            if len(columns) != self.n_cols:
                raise ShapeMismatchError(
                    f"chunk {c} has {len(columns)} columns, expected {self.n_cols}"
                )
            start, stop = self.row_range(c)
            for j, vec in enumerate(columns):
                v = np.asarray(vec, dtype=np.float64).reshape(-1)
                if v.size < stop - start:
                    raise ShapeMismatchError(
                        f"vector ({c}, {j}) has {v.size} entries, chunk {c} holds "
                        f"{stop - start} rows"
                    )
                out[start:stop, j] = v[: stop - start]
        return out

    def split_vector(self, y: npt.ArrayLike) -> list[npt.NDArray[np.float64]]:
        """Lay out a length-``n_rows`` vector (labels, residuals) like one column."""
        data = _real_matrix(y, (self.n_rows,), "y")
        padded = np.zeros(self.n_chunks * self.slot_count, dtype=np.float64)
        padded[: self.n_rows] = data
        return list(padded.reshape(self.n_chunks, self.slot_count))

    def join_vector(self, vectors: Sequence[npt.ArrayLike]) -> npt.NDArray[np.float64]:
        """Inverse of :meth:`split_vector`."""
        single = ColumnLayout(self.n_rows, 1, self.slot_count)
        return single.join([[v] for v in vectors])[:, 0]

    def _chunk(self, chunk: int) -> int:
        c = operator.index(chunk)
        if not 0 <= c < self.n_chunks:
            raise ParameterError(f"chunk {c} out of range [0, {self.n_chunks})")
        return c


@dataclass(frozen=True)
class RowLayout:
    """Row packing: rows one after another, each in a power-of-two block of slots.

    Invariant: ``join(split(X)) == X``; row ``i`` sits in vector ``i // rows_per_vector`` at
    slots ``[(i % rows_per_vector) * block, ... + n_cols)``; everything else is 0.

    Parameters
    ----------
    n_rows, n_cols : int
        Matrix shape.
    slot_count : int
        Slots per ciphertext; must hold at least one block.
    """

    n_rows: int
    n_cols: int
    slot_count: int

    def __post_init__(self) -> None:
        _positive(self.n_rows, "n_rows", allow_zero=True)
        _positive(self.n_cols, "n_cols")
        _positive(self.slot_count, "slot_count")
        if self.block > self.slot_count:
            raise ParameterError(
                f"a row of {self.n_cols} features needs a block of {self.block} slots but a "
                f"ciphertext has {self.slot_count}; use ColumnLayout or a larger ring degree"
            )

    @property
    def block(self) -> int:
        """Slots per row: the next power of two >= n_cols."""
        return 1 << (self.n_cols - 1).bit_length()

    @property
    def rows_per_vector(self) -> int:
        """Rows per ciphertext."""
        return self.slot_count // self.block

    @property
    def n_vectors(self) -> int:
        """Ciphertexts for the whole matrix."""
        return -(-self.n_rows // self.rows_per_vector)

    def valid_mask(self, index: int) -> npt.NDArray[np.float64]:
        """1.0 on slots of vector ``index`` that hold a matrix entry, else 0.0."""
        i = operator.index(index)
        if not 0 <= i < self.n_vectors:
            raise ParameterError(f"vector {i} out of range [0, {self.n_vectors})")
        rows = min(self.rows_per_vector, self.n_rows - i * self.rows_per_vector)
        mask = np.zeros((self.rows_per_vector, self.block), dtype=np.float64)
        mask[:rows, : self.n_cols] = 1.0
        return self._pad(mask.reshape(-1))

    def split(self, x: npt.ArrayLike) -> list[npt.NDArray[np.float64]]:
        """Lay out ``x`` (shape ``(n_rows, n_cols)``) as ``n_vectors`` vectors of slot_count."""
        data = _real_matrix(x, (self.n_rows, self.n_cols), "X")
        grid = np.zeros(
            (self.n_vectors * self.rows_per_vector, self.block), dtype=np.float64
        )
        grid[: self.n_rows, : self.n_cols] = data
        flat = grid.reshape(self.n_vectors, self.rows_per_vector * self.block)
        return [self._pad(row) for row in flat]

    def join(self, vectors: Sequence[npt.ArrayLike]) -> npt.NDArray[np.float64]:
        """Inverse of :meth:`split`."""
        if len(vectors) != self.n_vectors:
            raise ShapeMismatchError(f"expected {self.n_vectors} vectors, got {len(vectors)}")
        used = self.rows_per_vector * self.block
        rows = []
        for i, vec in enumerate(vectors):
            v = np.asarray(vec, dtype=np.float64).reshape(-1)
            if v.size < used:
                raise ShapeMismatchError(f"vector {i} has {v.size} entries, expected {used}")
            rows.append(v[:used].reshape(self.rows_per_vector, self.block))
        if not rows:
            return np.empty((0, self.n_cols), dtype=np.float64)
        grid = np.concatenate(rows, axis=0)
        return np.ascontiguousarray(grid[: self.n_rows, : self.n_cols])

    def replicate(self, w: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``w`` (length n_cols) copied into every row block: the partner of ``X`` for
        row-wise inner products ``X @ w`` by a slot product and a within-block sum."""
        data = _real_matrix(w, (self.n_cols,), "w")
        block = np.zeros(self.block, dtype=np.float64)
        block[: self.n_cols] = data
        return self._pad(np.tile(block, self.rows_per_vector))

    def _pad(self, v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if v.size == self.slot_count:
            return np.ascontiguousarray(v)
        out = np.zeros(self.slot_count, dtype=np.float64)
        out[: v.size] = v
        return out
