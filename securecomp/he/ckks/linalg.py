"""Reductions and products of CKKS tensors: ``sum``, ``@`` and ``dot``.

Which products are cheap is decided by the column packing (Kim et al., BMC Med. Genomics
2018; `securecomp.he.ckks.layouts`):

* ``X @ W`` with plaintext ``W``: ``sum_j W[j, t] * col_j`` for each output column, a
  ciphertext-scalar product per weight and additions: one level, no rotation. This is
  batch inference and the forward pass of training.
* ``X.T @ r``, ``r @ X``, ``v @ X`` with ``r`` encrypted or plaintext: one inner product
  per column, i.e. a slot product and a slot sum (``log2`` rotations): one level; the
  results, one value per ciphertext, form an ``element`` tensor (the gradient of training).
* ``X @ w`` with ``w`` an encrypted ``element`` tensor: each ``w_j`` is replicated over the
  slots (one level, rotations), then as the first case with ciphertext products.
* ``element`` tensors multiply like scalars: one product per term.

Slot sums cover exactly the valid slots of each chunk (TenSEAL tracks the size), so the
padding of a partial chunk never enters a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ShapeMismatchError, UnsupportedOperationError
from securecomp.he.ckks.elementwise import mul, mul_plain
from securecomp.he.ckks.kernels import Ct, Kernel
from securecomp.he.ckks.layouts import COLUMN, COLUMN_T, ELEMENT, VECTOR, base_dims
from securecomp.he.ckks.payload import Wrapper, payload_of
from securecomp.he.ckks.structure import columns
from securecomp.tensor import SecureTensor

__all__ = ["add_all", "dot", "dot_plain", "matmul", "matmul_plain", "rmatmul_plain", "total"]


def add_all(k: Kernel, cts: Sequence[Ct], level: int, size: int = 1) -> Ct:
    """Sum of ciphertexts all at ``level`` (pairwise tree: no level, no switching)."""
    items = list(cts)
    if not items:
        return k.zero_at(size, level)
    while len(items) > 1:
        nxt = [k.add(items[i], level, items[i + 1], level) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


# --- sum ---------------------------------------------------------------------------------------


def total(be: Wrapper, a: SecureTensor, axis: int | None = None) -> SecureTensor:
    """``a.sum(axis)``: additions across ciphertexts, slot sums (rotations) within."""
    k = be.kernel
    p = payload_of(a)
    if a.layout == ELEMENT:
        idx = np.arange(a.size).reshape(a.shape)
        shape: tuple[int, ...]
        if axis is None:
            groups, shape = idx.reshape(1, -1), ()
        else:
            groups = np.moveaxis(idx, axis, -1).reshape(-1, a.shape[axis])
            shape = a.shape[:axis] + a.shape[axis + 1 :]
        cts = tuple(add_all(k, [p.cts[i] for i in g], p.level) for g in groups.tolist())
        return be.wrap(cts, shape, ELEMENT, p.level, p.gain)
    cols, sizes = columns(a, k.slots)
    m, _ = base_dims(a.layout, a.shape)
    if axis is None:
        x_axis = None
    elif a.layout == VECTOR:
        x_axis = 0
    else:
        x_axis = axis if a.layout == COLUMN else 1 - axis
    if x_axis == 1:
        # Across the columns of X: ciphertext additions only, the rows stay in their slots.
        cts = tuple(add_all(k, [col[c] for col in cols], p.level) for c in range(len(sizes)))
        return be.wrap(cts, (m,), VECTOR, p.level, p.gain)
    k.require_galois("a.sum() over slots")
    if x_axis == 0:
        cts = tuple(add_all(k, [k.sum(ch) for ch in col], p.level) for col in cols)
        out_shape = () if a.layout == VECTOR else (len(cols),)
        return be.wrap(cts, out_shape, ELEMENT, p.level, p.gain)
    per_chunk = [add_all(k, [col[c] for col in cols], p.level) for c in range(len(sizes))]
    ct = add_all(k, [k.sum(x) for x in per_chunk], p.level)
    return be.wrap((ct,), (), ELEMENT, p.level, p.gain)


# --- shapes ------------------------------------------------------------------------------------


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...], what: str) -> tuple[int, ...]:
    if not a or not b or len(a) > 2 or len(b) > 2:
        raise ShapeMismatchError(
            f"{what}: operands of shapes {a} and {b}; CKKS matmul takes 1-d and 2-d operands "
            "(use * for scalars)"
        )
    if a[-1] != b[0]:
        raise ShapeMismatchError(f"{what}: inner dimensions differ: {a} @ {b} (numpy matmul rules)")
    return a[:-1] + b[1:]


def _as_matrix(shape: tuple[int, ...], left: bool) -> tuple[int, int]:
    """2-d view of a 1-d/2-d matmul operand (a left vector is a row, a right one a column)."""
    if len(shape) == 2:
        return shape[0], shape[1]
    return (1, shape[0]) if left else (shape[0], 1)


# --- plaintext products -------------------------------------------------------------------------


def _column_lincomb(be: Wrapper, a: SecureTensor, w: NDArray[np.float64]) -> list[Ct]:
    """``X @ w`` for column-packed ``X`` (m, kx) and plaintext ``w`` (kx, q): q columns."""
    k = be.kernel
    p = payload_of(a)
    cols, sizes = columns(a, k.slots)
    out: list[Ct] = []
    for t in range(w.shape[1]):
        for c, size in enumerate(sizes):
            terms = [
                k.mul_plain(cols[j][c], p.level, p.gain, float(w[j, t]))
                for j in range(w.shape[0])
                if w[j, t] != 0.0
            ]
            out.append(add_all(k, terms, p.level + 1, size))
    return out


def _element_lincomb(
    be: Wrapper,
    cts: Sequence[Ct],
    idx: NDArray[np.intp],
    w: NDArray[np.float64],
    level: int,
    gain: float,
) -> list[Ct]:
    """``A @ w`` for element ciphertexts ``A`` (indices ``idx``, r x n) and plaintext (n, q)."""
    k = be.kernel
    out: list[Ct] = []
    for i in range(idx.shape[0]):
        for t in range(w.shape[1]):
            terms = [
                k.mul_plain(cts[idx[i, j]], level, gain, float(w[j, t]))
                for j in range(w.shape[0])
                if w[j, t] != 0.0
            ]
            out.append(add_all(k, terms, level + 1))
    return out


def _inner_products(be: Wrapper, a: SecureTensor, rows: NDArray[np.float64]) -> list[list[Ct]]:
    """``rows @ X`` (each plaintext row against each column of X): ``out[i][j]``."""
    k = be.kernel
    p = payload_of(a)
    k.require_galois("an inner product over slots")
    cols, sizes = columns(a, k.slots)
    out: list[list[Ct]] = []
    for i in range(rows.shape[0]):
        line = []
        for col in cols:
            parts, start = [], 0
            for c, size in enumerate(sizes):
                parts.append(k.dot_plain(col[c], p.level, p.gain, rows[i, start : start + size]))
                start += size
            line.append(add_all(k, parts, p.level + 1))
        out.append(line)
    return out


def _transposed(grid: list[list[Ct]]) -> tuple[Ct, ...]:
    """The entries of ``grid`` (a list of rows) in column-major order."""
    return tuple(row[j] for j in range(len(grid[0]) if grid else 0) for row in grid)


def matmul_plain(be: Wrapper, a: SecureTensor, w: NDArray[Any]) -> SecureTensor:
    """``a @ w`` with a plaintext right operand (see the module docstring for costs)."""
    shape = _matmul_shape(a.shape, w.shape, "a @ plaintext")
    k = be.kernel
    p = payload_of(a)
    level = k.next_level(p.level, "a @ plaintext")
    w2 = np.asarray(w, dtype=np.float64).reshape(_as_matrix(w.shape, left=False))
    if a.layout == COLUMN:
        layout = COLUMN if w.ndim == 2 else VECTOR
        return be.wrap(tuple(_column_lincomb(be, a, w2)), shape, layout, level, 1.0)
    if a.layout in (VECTOR, COLUMN_T):
        # Rows of the (transposed) packing against the columns of w: inner products.
        grid = _inner_products(be, a, np.ascontiguousarray(w2.T))  # (q, kx)
        return be.wrap(_transposed(grid), shape, ELEMENT, level, 1.0)
    idx = np.arange(a.size).reshape(_as_matrix(a.shape, left=True))
    cts = _element_lincomb(be, p.cts, idx, w2, p.level, p.gain)
    return be.wrap(tuple(cts), shape, ELEMENT, level, 1.0)


def rmatmul_plain(be: Wrapper, a: SecureTensor, v: NDArray[Any]) -> SecureTensor:
    """``v @ a`` with a plaintext left operand."""
    shape = _matmul_shape(v.shape, a.shape, "plaintext @ a")
    k = be.kernel
    p = payload_of(a)
    level = k.next_level(p.level, "plaintext @ a")
    v2 = np.asarray(v, dtype=np.float64).reshape(_as_matrix(v.shape, left=True))
    if a.layout == COLUMN_T:
        # v @ X.T == (X @ v.T).T: no rotation.
        cts = tuple(_column_lincomb(be, a, np.ascontiguousarray(v2.T)))
        layout = COLUMN_T if v.ndim == 2 else VECTOR
        return be.wrap(cts, shape, layout, level, 1.0)
    if a.layout in (VECTOR, COLUMN):
        grid = _inner_products(be, a, v2)  # (r, kx)
        return be.wrap(tuple(ct for row in grid for ct in row), shape, ELEMENT, level, 1.0)
    # element: v @ A == (A.T @ v.T).T
    idx = np.arange(a.size).reshape(_as_matrix(a.shape, left=False)).T
    out = _element_lincomb(be, p.cts, idx, np.ascontiguousarray(v2.T), p.level, p.gain)
    q, r = idx.shape[0], v2.shape[0]  # out is (q, r) row-major; the result is its transpose
    grid = [[out[i * r + t] for t in range(r)] for i in range(q)]
    return be.wrap(_transposed(grid), shape, ELEMENT, level, 1.0)


# --- ciphertext products ------------------------------------------------------------------------


def _secure_inner(be: Wrapper, x: Sequence[Ct], lx: int, y: Sequence[Ct], ly: int) -> Ct:
    """``sum(x * y)`` over aligned chunks of two columns (product, slot sums, additions)."""
    k = be.kernel
    parts = [k.sum(k.mul(u, lx, v, ly)) for u, v in zip(x, y, strict=True)]
    return add_all(k, parts, max(lx, ly) + 1)


def _columns_of(be: Wrapper, t: SecureTensor) -> list[tuple[Ct, ...]]:
    return columns(t, be.kernel.slots)[0]


def matmul(be: Wrapper, a: SecureTensor, b: SecureTensor) -> SecureTensor:
    """``a @ b`` with both operands encrypted (combinations listed in the module docstring)."""
    shape = _matmul_shape(a.shape, b.shape, "a @ b")
    k = be.kernel
    pa, pb = payload_of(a), payload_of(b)
    top = max(pa.level, pb.level)
    pair = (a.layout, b.layout)
    if pair in ((VECTOR, VECTOR), (VECTOR, COLUMN), (COLUMN_T, VECTOR), (COLUMN_T, COLUMN)):
        # Columns of X (left: rows of a) against columns of Y: slot inner products.
        level = k.next_level(top, "a @ b")
        k.require_galois("an encrypted inner product")
        left, right = _columns_of(be, a), _columns_of(be, b)
        cts = tuple(_secure_inner(be, x, pa.level, y, pb.level) for x in left for y in right)
        return be.wrap(cts, shape, ELEMENT, level, pa.gain * pb.gain * k.factor(top))
    if pair == (COLUMN, ELEMENT):
        return _column_times_element(be, a, b, shape)
    if pair == (ELEMENT, COLUMN_T):
        # A @ X.T == (X @ A.T).T
        at = be.wrap(pa.cts, a.shape, ELEMENT, pa.level, pa.gain)
        if a.ndim == 2:
            idx = np.arange(a.size).reshape(a.shape).T.reshape(-1)
            at = be.wrap(
                tuple(pa.cts[i] for i in idx.tolist()), a.shape[::-1], ELEMENT, pa.level, pa.gain
            )
        x = be.wrap(pb.cts, b.shape[::-1], COLUMN, pb.level, pb.gain)
        out = _column_times_element(be, x, at, x.shape[:1] + at.shape[1:])
        po = payload_of(out)
        layout = COLUMN_T if a.ndim == 2 else VECTOR
        return be.wrap(po.cts, shape, layout, po.level, po.gain)
    if pair == (ELEMENT, ELEMENT):
        level = k.next_level(top, "a @ b")
        ia = np.arange(a.size).reshape(_as_matrix(a.shape, left=True))
        ib = np.arange(b.size).reshape(_as_matrix(b.shape, left=False))
        cts = tuple(
            add_all(
                k,
                [
                    k.mul(pa.cts[ia[i, j]], pa.level, pb.cts[ib[j, t]], pb.level)
                    for j in range(ia.shape[1])
                ],
                level,
            )
            for i in range(ia.shape[0])
            for t in range(ib.shape[1])
        )
        return be.wrap(cts, shape, ELEMENT, level, pa.gain * pb.gain * k.factor(top))
    raise UnsupportedOperationError(
        f"ckks backend cannot compute a @ b for layouts {a.layout!r} @ {b.layout!r}: the "
        "factors sit in slots that would need permuting. Supported: r @ X, X.T @ r, "
        "X.T @ Y (inner products), X @ w with w encrypted as layout='element', and "
        "element @ element; encrypt the right operand with layout='element' for X @ W"
    )


def _column_times_element(
    be: Wrapper, a: SecureTensor, b: SecureTensor, shape: tuple[int, ...]
) -> SecureTensor:
    """``X @ w``: replicate each encrypted ``w[j, t]`` over the slots, then combine columns."""
    k = be.kernel
    pa, pb = payload_of(a), payload_of(b)
    what = "X @ w (encrypted w)"
    k.require_galois(what)
    rep_level = k.next_level(pb.level, what)
    rep_gain = pb.gain * k.factor(pb.level)
    top = max(pa.level, rep_level)
    level = k.next_level(top, what)
    cols, sizes = columns(a, k.slots)
    w_idx = np.arange(b.size).reshape(_as_matrix(b.shape, left=False))
    reps: dict[tuple[int, int], Ct] = {}
    out: list[Ct] = []
    for t in range(w_idx.shape[1]):
        for c, size in enumerate(sizes):
            terms = []
            for j in range(w_idx.shape[0]):
                key = (int(w_idx[j, t]), size)
                if key not in reps:
                    reps[key] = k.replicate(pb.cts[key[0]], size)
                terms.append(k.mul(cols[j][c], pa.level, reps[key], rep_level))
            out.append(add_all(k, terms, level, size))
    layout = COLUMN if b.ndim == 2 else VECTOR
    return be.wrap(tuple(out), shape, layout, level, pa.gain * rep_gain * k.factor(top))


# --- np.dot ----------------------------------------------------------------------------------


def dot(be: Wrapper, a: SecureTensor, b: SecureTensor) -> SecureTensor:
    """``np.dot(a, b)``: a product when either is 0-d, else ``a @ b`` (1-d and 2-d)."""
    if a.ndim == 0 or b.ndim == 0:
        return mul(be, a, b)
    return matmul(be, a, b)


def dot_plain(be: Wrapper, a: SecureTensor, v: NDArray[Any]) -> SecureTensor:
    """``np.dot(a, v)`` with a plaintext ``v``."""
    if a.ndim == 0 or v.ndim == 0:
        return mul_plain(be, a, v)
    return matmul_plain(be, a, v)
