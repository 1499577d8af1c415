"""The two Paillier layouts, their capabilities, and the bounds every result must respect.

* ``unpacked``: one value per ciphertext (the textbook use of Paillier). The plaintext is
  an integer modulo ``n`` read as signed in ``(-n/2, n/2)``; each tensor tracks a bound
  ``|v| < 2^bound_bits`` that every operation updates *before* computing, and an operation
  whose bound would reach ``n/2`` (where the value would wrap modulo ``n``) is refused with
  `EncodingOverflowError`. phe has no such check: ``E(max_int) * 3`` decrypts to garbage.
* ``packed``: many values per ciphertext in slots (`securecomp.encoding.packing`, after
  Ge-Zhong and Phong et al., IEEE TIFS 2018, section 4.2). Each tensor tracks the *weight*
  of its slots (how many fresh packings they sum, scalar multiples counted with their
  magnitude); a result whose weight would exceed the slots' headroom is refused before the
  slots could carry into each other. Slots cannot be multiplied by different plaintexts
  or summed with each other (no rotations in Paillier): per-slot products need ``unpacked``.

Bounds and weights are derived from *declared* ranges (``value_bits``) and from the bit
sizes of public plaintext operands, never from the encrypted values, so refusing an
operation reveals nothing about the data.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, ShapeMismatchError
from securecomp.he.paillier.encode import MAX_SCALE
from securecomp.tensor import Op

__all__ = [
    "CT_PRODUCT_ADVICE",
    "LAYOUTS",
    "PACKED",
    "PACKED_OPS",
    "PER_SLOT_ADVICE",
    "UNPACKED",
    "UNPACKED_OPS",
    "advice",
    "broadcast_shape",
    "ceil_log2",
    "check_bound",
    "check_scale",
    "frozen",
    "rows_advice",
]

PACKED = "packed"
UNPACKED = "unpacked"
LAYOUTS = (PACKED, UNPACKED)

#: Operations on packed tensors (``MUL_PLAIN``: by scalars, or plaintexts constant along the
#: packed last axis; ``SUM``, ``GETITEM``, ``RESHAPE``: over or of whole packed rows).
PACKED_OPS = frozenset(
    {
        Op.ADD,
        Op.SUB,
        Op.NEG,
        Op.ADD_PLAIN,
        Op.SUB_PLAIN,
        Op.RSUB_PLAIN,
        Op.MUL_PLAIN,
        Op.SUM,
        Op.GETITEM,
        Op.RESHAPE,
    }
)

#: Operations on unpacked tensors: everything linear in the encrypted operand.
UNPACKED_OPS = frozenset(
    PACKED_OPS | {Op.MATMUL_PLAIN, Op.RMATMUL_PLAIN, Op.DOT_PLAIN, Op.TRANSPOSE}
)

CT_PRODUCT_ADVICE = (
    "Paillier cannot multiply two ciphertexts (it is only additively homomorphic); use CKKS "
    "or MPC for products of encrypted values"
)
PER_SLOT_ADVICE = (
    "per-slot products need the unpacked layout: packed slots can only be scaled together; "
    "encrypt with layout='unpacked' (or declare the op in ops=...)"
)
_ROWS_ADVICE = (
    "a packed tensor keeps its last axis inside ciphertexts, and Paillier has no rotations "
    "to move slots; this works on the unpacked layout (encrypt with layout='unpacked')"
)


def advice(op: Op, layout: str) -> str:
    """What to do instead of ``op``, which the ``layout`` table lacks."""
    if op in (Op.MUL, Op.MATMUL, Op.DOT):
        return CT_PRODUCT_ADVICE
    if op is Op.POLYVAL:
        return "polynomial evaluation multiplies ciphertexts: " + CT_PRODUCT_ADVICE
    if op in (Op.LT, Op.LT_PLAIN, Op.GT_PLAIN):
        return (
            "comparisons of encrypted values are not homomorphic under Paillier; use MPC "
            "(securecomp.mpc comparison protocols)"
        )
    if layout == PACKED and op in (Op.MATMUL_PLAIN, Op.RMATMUL_PLAIN, Op.DOT_PLAIN):
        return PER_SLOT_ADVICE
    if layout == PACKED and op is Op.TRANSPOSE:
        return _ROWS_ADVICE
    if layout not in LAYOUTS:
        return f"unknown layout {layout!r}; Paillier tensors are {PACKED!r} or {UNPACKED!r}"
    return f"not available for the {layout} layout"


def rows_advice() -> str:
    """Advice for an operation that would move values across packed slots."""
    return _ROWS_ADVICE


def ceil_log2(m: int) -> int:
    """``ceil(log2(m))`` for ``m >= 1`` (0 for ``m <= 1``)."""
    return max(int(m) - 1, 0).bit_length()


def check_bound(modulus_bits: int, bound_bits: int, what: str) -> int:
    """Refuse a result that may reach ``n/2`` in magnitude; return ``bound_bits``.

    ``|v| < 2^bound_bits <= 2^(bits(n) - 2) < n/2`` keeps every value decodable as signed.
    """
    limit = modulus_bits - 2
    if bound_bits > limit:
        raise EncodingOverflowError(
            f"{what}: the result may reach 2^{bound_bits} in magnitude, beyond n/2 "
            f"(about 2^{modulus_bits - 1}) where Paillier plaintexts wrap around modulo n; "
            "nothing was computed. Use smaller plaintext operands or fewer frac_bits, "
            "have the key holder decrypt and re-encrypt the intermediate, or use a larger "
            "key"
        )
    return bound_bits


def check_scale(scale: int, what: str) -> int:
    """Refuse a fixed-point scale beyond `MAX_SCALE` (repeated float products); return it."""
    if scale > MAX_SCALE:
        raise EncodingOverflowError(
            f"{what}: the result would carry 2^{scale} as its fixed-point scale (limit "
            f"2^{MAX_SCALE}); multiply by integer plaintexts where possible, or have the key "
            "holder decrypt and re-encrypt the intermediate"
        )
    return scale


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...], what: str) -> tuple[int, ...]:
    """numpy's broadcast of two shapes, with `ShapeMismatchError` instead of ValueError."""
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError as exc:
        raise ShapeMismatchError(f"{what}: incompatible shapes {a} and {b} ({exc})") from None


def frozen(payload: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    """Mark a ciphertext array read-only (value semantics: no op mutates an operand)."""
    payload.flags.writeable = False
    return payload
