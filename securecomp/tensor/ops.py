"""The closed set of operations a `SecureTensor` dispatches to its backend.

Each operation names the operand kinds: ``*_PLAIN`` variants take a plaintext numpy operand
on the right, ``R*_PLAIN`` variants take it on the left (``pt - ct``, ``pt @ ct``). Backends
fill a table ``Op -> callable``; whatever is missing from the table is unsupported, and the
backend says what to use instead.
"""

from __future__ import annotations

import enum


class Op(enum.Enum):
    """An operation of the tensor algebra, with the symbol users write for it."""

    ADD = "a + b"
    ADD_PLAIN = "a + plaintext"
    SUB = "a - b"
    SUB_PLAIN = "a - plaintext"
    RSUB_PLAIN = "plaintext - a"
    NEG = "-a"
    MUL = "a * b"
    MUL_PLAIN = "a * plaintext"
    MATMUL = "a @ b"
    MATMUL_PLAIN = "a @ plaintext"
    RMATMUL_PLAIN = "plaintext @ a"
    DOT = "a.dot(b)"
    DOT_PLAIN = "a.dot(plaintext)"
    SUM = "a.sum(axis)"
    GETITEM = "a[key]"
    RESHAPE = "a.reshape(shape)"
    TRANSPOSE = "a.T"
    POLYVAL = "a.polyval(coefficients)"
    LT = "a < b"
    LT_PLAIN = "a < plaintext"
    GT_PLAIN = "a > plaintext"

    @property
    def symbol(self) -> str:
        return self.value


# Binary operations whose operands may be swapped without changing the result; the
# dispatcher uses this to route ``pt + ct`` to ``ADD_PLAIN`` with the ciphertext first.
COMMUTATIVE_PLAIN: dict[Op, Op] = {Op.ADD_PLAIN: Op.ADD_PLAIN, Op.MUL_PLAIN: Op.MUL_PLAIN}
