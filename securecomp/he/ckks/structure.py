"""Indexing, reshaping and transposition of CKKS tensors.

What is free and what is not follows from the layouts (`securecomp.he.ckks.layouts`):
whole columns of the column-packed matrix ``X`` are ciphertexts, so selecting them,
transposing ``X`` and moving between ``(n,)``, ``(n, 1)`` and ``(1, n)`` only relabel
ciphertexts. Any other element lives in some slot of a ciphertext: it is *gathered* by a
product with a one-hot mask and a slot sum (`Kernel.extract`: one level, ``log2`` rotations
per element), at most `MAX_GATHER` elements per call, into an ``element`` tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import UnsupportedOperationError
from securecomp.he.ckks.kernels import Ct
from securecomp.he.ckks.layouts import (
    COLUMN,
    COLUMN_T,
    ELEMENT,
    MAX_GATHER,
    VECTOR,
    base_dims,
    chunk_sizes,
)
from securecomp.he.ckks.payload import Wrapper, payload_of
from securecomp.tensor import SecureTensor

__all__ = ["columns", "getitem", "reshape", "transpose"]


def columns(t: SecureTensor, slots: int) -> tuple[list[tuple[Ct, ...]], tuple[int, ...]]:
    """The chunks of each column of ``X`` behind a slot-layout tensor, and the chunk sizes."""
    m, k = base_dims(t.layout, t.shape)
    sizes = chunk_sizes(m, slots)
    c = len(sizes)
    cts = payload_of(t).cts
    return [cts[j * c : (j + 1) * c] for j in range(k)], sizes


def _x_coords(t: SecureTensor, idx: NDArray[np.intp]) -> tuple[NDArray[np.intp], ...]:
    """Row and column in ``X`` of the tensor elements with flat (C-order) indices ``idx``."""
    if t.layout == VECTOR:
        return idx, np.zeros_like(idx)
    if t.layout == COLUMN:
        k = t.shape[1]
        return idx // k, idx % k
    m = t.shape[1]  # COLUMN_T: tensor (k, m) = X.T
    return idx % m, idx // m


def _select_columns(
    be: Wrapper, t: SecureTensor, cols: list[int], shape: tuple[int, ...], layout: str
) -> SecureTensor:
    chunks, _ = columns(t, be.kernel.slots)
    p = payload_of(t)
    cts = tuple(ct for j in cols for ct in chunks[j])
    return be.wrap(cts, shape, layout, p.level, p.gain)


def _free_selection(be: Wrapper, t: SecureTensor, idx: NDArray[np.intp]) -> SecureTensor | None:
    """The selection as whole columns of ``X`` (no computation), or None."""
    m, _ = base_dims(t.layout, t.shape)
    rows, cols = _x_coords(t, idx)
    col_ids = np.arange(m)
    if (
        idx.ndim == 1
        and idx.shape[0] == m
        and np.array_equal(rows, col_ids)
        and (cols == cols[0]).all()
    ):
        return _select_columns(be, t, [int(cols[0])], (m,), VECTOR)
    if idx.ndim == 2 and idx.size:
        if (
            t.layout in (VECTOR, COLUMN)
            and idx.shape[0] == m
            and (rows == col_ids[:, None]).all()
            and (cols == cols[0:1, :]).all()
        ):
            return _select_columns(be, t, cols[0].tolist(), idx.shape, COLUMN)
        if (
            t.layout == COLUMN_T
            and idx.shape[1] == m
            and (rows == col_ids[None, :]).all()
            and (cols == cols[:, 0:1]).all()
        ):
            return _select_columns(be, t, cols[:, 0].tolist(), idx.shape, COLUMN_T)
    return None


def gather(be: Wrapper, t: SecureTensor, idx: NDArray[np.intp]) -> SecureTensor:
    """Elements with flat indices ``idx`` into an ``element`` tensor of ``idx.shape``."""
    k = be.kernel
    p = payload_of(t)
    m, _ = base_dims(t.layout, t.shape)
    rows, cols = _x_coords(t, idx.reshape(-1))
    sizes = chunk_sizes(m, k.slots)
    c = len(sizes)
    if m == 1:
        # Every ciphertext holds one value in slot 0 (size 1): already element-shaped.
        cts = tuple(p.cts[j * c] for j in cols.tolist())
        return be.wrap(cts, idx.shape, ELEMENT, p.level, p.gain)
    if idx.size > MAX_GATHER:
        raise UnsupportedOperationError(
            f"ckks backend: this selection needs {idx.size} elements moved out of their slots "
            f"(one masked product and slot sum each; limit {MAX_GATHER}); select whole "
            "columns, or decrypt and re-encrypt with layout='element'"
        )
    k.require_galois("gathering elements out of slots")
    level = k.next_level(p.level, "gathering elements out of slots")
    s = k.slots
    cts = tuple(
        k.extract(p.cts[j * c + r // s], p.level, p.gain, r % s)
        for r, j in zip(rows.tolist(), cols.tolist(), strict=True)
    )
    return be.wrap(cts, idx.shape, ELEMENT, level, 1.0)


def getitem(be: Wrapper, t: SecureTensor, key: Any, result_shape: tuple[int, ...]) -> SecureTensor:
    """``t[key]`` (numpy semantics; the dispatcher validated ``key``)."""
    idx = np.asarray(np.arange(t.size).reshape(t.shape)[key])
    p = payload_of(t)
    if t.layout == ELEMENT:
        cts = tuple(p.cts[i] for i in idx.reshape(-1).tolist())
        return be.wrap(cts, idx.shape, ELEMENT, p.level, p.gain)
    free = _free_selection(be, t, idx)
    if free is not None:
        return free
    return gather(be, t, idx)


def reshape(be: Wrapper, t: SecureTensor, shape: tuple[int, ...]) -> SecureTensor:
    """Same values, new shape; free while ``X`` keeps its columns, else a gather."""
    if shape == t.shape:
        return t
    p = payload_of(t)
    if t.layout == ELEMENT:
        return be.wrap(p.cts, shape, ELEMENT, p.level, p.gain)
    m, k = base_dims(t.layout, t.shape)
    if m == 1:
        return be.wrap(p.cts, shape, ELEMENT, p.level, p.gain)
    if k == 1:
        layout = {(m,): VECTOR, (m, 1): COLUMN, (1, m): COLUMN_T}.get(shape)
        if layout is not None:
            return be.wrap(p.cts, shape, layout, p.level, p.gain)
    return gather(be, t, np.arange(t.size).reshape(shape))


def transpose(be: Wrapper, t: SecureTensor) -> SecureTensor:
    """``t.T``: free in every layout."""
    p = payload_of(t)
    if t.layout == VECTOR or t.ndim < 2:
        return t
    if t.layout == ELEMENT:
        idx = np.arange(t.size).reshape(t.shape).T.reshape(-1)
        cts = tuple(p.cts[i] for i in idx.tolist())
        return be.wrap(cts, t.shape[::-1], ELEMENT, p.level, p.gain)
    layout = COLUMN_T if t.layout == COLUMN else COLUMN
    return be.wrap(p.cts, t.shape[::-1], layout, p.level, p.gain)
