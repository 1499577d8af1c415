"""How a CKKS `SecureTensor` places its values in ciphertexts, and per-layout capabilities.

A CKKS ciphertext holds ``S = N/2`` real slots (Cheon, Kim, Kim, Song, ASIACRYPT 2017). The
library picks the layout at encryption (1-d: ``vector``, 2-d: ``column``, 0-d: ``element``);
the caller may ask for ``element``. All slot layouts store one underlying matrix ``X`` of
shape ``(m, k)`` column-packed (`securecomp.encoding.layout.ColumnLayout`: one ciphertext per
column and chunk of ``S`` rows, Kim et al., BMC Med. Genomics 2018, vertical packing):

=============  ==================  ====================================================
layout         tensor shape        payload (flat tuple of ciphertexts)
=============  ==================  ====================================================
``vector``     ``(n,)``            ``X = (n, 1)``: chunk ``c`` holds rows ``[cS, cS+S)``
``column``     ``(m, k)``          ``X``: ciphertext ``j*C + c`` is chunk c of column j
``column.T``   ``(k, m)``          the same ciphertexts read as ``X.T`` (free transpose)
``element``    any (0-d, 1-d, 2-d) one ciphertext per element (C order), value in slot 0
=============  ==================  ====================================================

Each TenSEAL vector knows its size (valid slots): slot sums cover exactly those, so
padding never leaks into a result. ``element`` ciphertexts have size 1 (slot 0 is the
value, other slots are unspecified).

Capabilities
------------
``free``: no level, no rotation; ``L``: one level (rescale); ``rot``: slot rotations, which
need Galois keys (`securecomp.he.ckks.needs_galois_keys`). An operation not listed (e.g.
comparisons) raises `UnsupportedOperationError` with advice, as does a listed one whose
operand layouts do not combine (stated in the notes).

======================  ============  ============  ============  ==========
op                      vector        column        column.T      element
======================  ============  ============  ============  ==========
a + b, a - b, -a        free          free          free          free
a + pt, a - pt, pt - a  free          free          free          free
a * b                   L             L             L             L
a * pt                  L [1]_        L [1]_        L [1]_        L [1]_
a @ pt                  L rot         L             L rot         L
pt @ a                  L rot         L rot         L             L
a @ b                   L rot [2]_    2L rot [3]_   L rot [2]_    L
a.sum(axis)             rot           rot/free [4]_ rot/free [4]_ free
a.polyval(c)            ceil(log2(degree + 1)) levels in every layout
a[key]                  free or L rot [5]_ (slot layouts)         free
a.reshape(...), a.T     free or L rot [6]_ (slot layouts)         free
======================  ============  ============  ============  ==========

``a.dot(b)`` is ``a @ b`` (a product when an operand is 0-d). A 0-d ``element`` operand
(a sum, an inner product) combines with a slot-layout tensor after being replicated over
the slots: one more level and ``log2`` rotations.

.. [1] Multiplying by an integer scalar ``|c| <= 64`` uses additions: no level; by 0, a
   fresh encryption of zeros.
.. [2] With a ``vector`` or ``column`` right operand (inner products ``r @ X``, ``X.T @ r``,
   ``X.T @ Y``); the results are ``element`` tensors. Other right layouts are refused.
.. [3] ``X @ w`` with ``w`` an ``element`` tensor: each ``w_j`` is replicated across slots
   (one level, ``log2`` rotations), then ``sum_j col_j * w_j`` (one more level).
   ``element @ column.T`` reduces to it; ``X @ Y`` with ``Y`` column-packed is refused.
.. [4] Over rows (the slots): rotations; across columns: additions only.
.. [5] Selecting whole columns of ``X`` is free; any other element is extracted by a mask
   product and a slot sum (one level, rotations), at most `MAX_GATHER` elements per call.
.. [6] Free when the column structure is kept (``(n,) <-> (n, 1) <-> (1, n)``, ``X <-> X.T``,
   a single row); anything else gathers elements as in [5]_ into an ``element`` tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ShapeMismatchError

__all__ = [
    "COLUMN",
    "COLUMN_T",
    "ELEMENT",
    "LAYOUTS",
    "MAX_GATHER",
    "SLOT_LAYOUTS",
    "VECTOR",
    "base_dims",
    "broadcast_to_shape",
    "chunk_sizes",
    "element_operands",
    "slot_operands",
]

VECTOR = "vector"
COLUMN = "column"
COLUMN_T = "column.T"
ELEMENT = "element"
SLOT_LAYOUTS = (VECTOR, COLUMN, COLUMN_T)
LAYOUTS = (*SLOT_LAYOUTS, ELEMENT)

#: Largest number of elements extracted from slots by one indexing or reshape (each costs a
#: mask product and a slot sum); beyond it, decrypt and re-encrypt instead.
MAX_GATHER = 256

Operand = float | NDArray[np.float64]


def chunk_sizes(rows: int, slots: int) -> tuple[int, ...]:
    """Valid slots of each chunk of a column of ``rows`` values."""
    full, rest = divmod(rows, slots)
    return (slots,) * full + ((rest,) if rest else ())


def base_dims(layout: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """``(m, k)`` of the column-packed matrix ``X`` behind a slot-layout tensor."""
    if layout == VECTOR:
        return shape[0], 1
    if layout == COLUMN:
        return shape[0], shape[1]
    return shape[1], shape[0]  # COLUMN_T


def broadcast_to_shape(p: NDArray[Any], shape: tuple[int, ...], what: str) -> NDArray[Any]:
    """``p`` broadcast to ``shape``, refusing a plaintext that would enlarge the result."""
    try:
        out = np.broadcast_shapes(p.shape, shape)
    except ValueError:
        out = None
    if out != shape:
        raise ShapeMismatchError(
            f"{what}: plaintext of shape {p.shape} does not broadcast to the encrypted "
            f"shape {shape}; reshape it (numpy rules, without enlarging the encrypted tensor)"
        )
    return np.broadcast_to(p, shape)


def slot_operands(
    layout: str, shape: tuple[int, ...], p: NDArray[Any], slots: int, what: str
) -> list[Operand]:
    """The plaintext operand of each ciphertext of a slot-layout tensor, in payload order.

    A scalar stays a float (TenSEAL encodes it in every slot); otherwise each ciphertext
    gets the array of its chunk's values. Columns on which ``p`` is constant get a float.
    """
    values = np.asarray(p, dtype=np.float64)
    m, k = base_dims(layout, shape)
    sizes = chunk_sizes(m, slots)
    if values.size == 1:
        scalar = float(values.reshape(-1)[0])
        broadcast_to_shape(values, shape, what)
        return [scalar] * (k * len(sizes))
    full = broadcast_to_shape(values, shape, what)
    if layout == VECTOR:
        matrix = full.reshape(m, 1)
        row_constant = False
    elif layout == COLUMN:
        matrix = full
        row_constant = values.ndim < 2 or values.shape[0] == 1
    else:
        matrix = full.T
        row_constant = values.ndim == 2 and values.shape[1] == 1
    out: list[Operand] = []
    for j in range(k):
        if row_constant:
            out.extend([float(matrix[0, j])] * len(sizes))
            continue
        start = 0
        for size in sizes:
            out.append(matrix[start : start + size, j])
            start += size
    return out


def element_operands(shape: tuple[int, ...], p: NDArray[Any], what: str) -> list[float]:
    """One float per element (C order) of an ``element`` tensor."""
    values = np.asarray(p, dtype=np.float64)
    return broadcast_to_shape(values, shape, what).reshape(-1).tolist()
