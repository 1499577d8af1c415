"""Fixed-point encoding of tensor values and plaintext operands for the Paillier backend.

A real ``x`` is carried as the integer ``round(x * 2^s)`` (round half to even, as
`securecomp.encoding.FixedPoint`), where the *scale* ``s`` is tracked per tensor:

* encrypted values: ``s = frac_bits`` for floats (default 16, resolution ``2^-16``), ``0``
  for integer arrays (exact); the integers must fit a *symmetric* signed range of
  ``value_bits`` bits, ``|v| <= 2^(value_bits-1) - 1``, so that negation never leaves it;
* plaintext operands: ``s = 0`` for integer dtypes (``3 * t`` keeps the scale), the
  backend's ``frac_bits`` for floats (decided by the dtype, never by the values, so the
  scale of a result reveals nothing about a plaintext operand's values);
* ``t * w`` has scale ``s_t + s_w``: Paillier cannot divide by ``2^s`` under encryption,
  so the scale grows and decryption divides once; sums align scales by multiplying the
  lower one by a power of two.

A result's scale is capped (`MAX_SCALE`) so that decoding stays bounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import fixed_point
from securecomp.errors import EncodingOverflowError, ParameterError

__all__ = [
    "DEFAULT_FRAC_BITS",
    "MAX_SCALE",
    "check_frac_bits",
    "check_value_bits",
    "decode_ints",
    "encode_values",
    "int_bits",
    "max_abs_bits",
    "operand_ints",
    "operand_scale",
]

#: Fractional bits of float inputs and float plaintext operands (resolution 2^-16).
DEFAULT_FRAC_BITS = 16
#: Largest scale a result may carry; beyond it decoding would divide by absurd powers of 2.
MAX_SCALE = 4096
_MAX_FRAC_BITS = 62  # the widest FixedPoint with an integer bit in Z_2^64

ObjArray = npt.NDArray[np.object_]


def check_frac_bits(frac_bits: int) -> int:
    """Validate a number of fractional bits (0..62)."""
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int | np.integer):
        raise ParameterError(f"frac_bits must be an int, got {frac_bits!r}")
    f = int(frac_bits)
    if not 0 <= f <= _MAX_FRAC_BITS:
        raise ParameterError(f"frac_bits must lie in [0, {_MAX_FRAC_BITS}], got {f}")
    return f


def check_value_bits(value_bits: int, upper: int = 64) -> int:
    """Validate a signed integer width (2..upper, sign included)."""
    if isinstance(value_bits, bool) or not isinstance(value_bits, int | np.integer):
        raise ParameterError(f"value_bits must be an int, got {value_bits!r}")
    b = int(value_bits)
    if not 2 <= b <= upper:
        raise ParameterError(f"value_bits must lie in [2, {upper}], got {b}")
    return b


def int_bits(k: int) -> int:
    """Bits of ``|k|``: ``|k| < 2^int_bits(k)``."""
    return abs(int(k)).bit_length()


def max_abs_bits(ints: ObjArray | npt.NDArray[np.int64]) -> int:
    """Bits of the largest ``|k|`` in an integer array (0 for an empty or zero array)."""
    if ints.size == 0:
        return 0
    return max(int_bits(int(ints.min())), int_bits(int(ints.max())))


def encode_values(arr: npt.NDArray[Any], scale: int, value_bits: int) -> npt.NDArray[np.int64]:
    """Encode validated values for encryption: ``round(x * 2^scale)`` as int64.

    Raises
    ------
    EncodingOverflowError
        If an encoded value leaves ``[-(2^(value_bits-1) - 1), 2^(value_bits-1) - 1]``
        (or the 64-bit fixed-point range), before anything is encrypted.
    """
    fp = fixed_point(scale, 64)
    if arr.dtype.kind in "biu":
        ints = fp.encode_int(arr.astype(np.int64) if arr.dtype.kind == "b" else arr)
    else:
        ints = fp.encode(arr)
    signed = fp.to_signed(ints)
    limit = (1 << (value_bits - 1)) - 1
    if signed.size and (int(signed.min()) < -limit or int(signed.max()) > limit):
        bad = int(np.count_nonzero((signed < -limit) | (signed > limit)))
        raise EncodingOverflowError(
            f"{bad} of {signed.size} values do not fit {value_bits}-bit integers at scale "
            f"2^{scale} (|x| must stay below {limit / 2.0**scale:.6g}); raise value_bits, "
            "lower frac_bits, or scale the data down"
        )
    return np.ascontiguousarray(signed, dtype=np.int64)


def operand_scale(arr: npt.NDArray[Any], frac_bits: int) -> int:
    """Scale of a plaintext operand: 0 for integer/bool dtypes, ``frac_bits`` for floats."""
    return 0 if arr.dtype.kind in "biu" else frac_bits


def operand_ints(arr: npt.NDArray[Any], scale: int) -> ObjArray:
    """A validated plaintext operand as Python ints ``round(x * 2^scale)`` (object array).

    Unbounded: the caller tracks the bound of the result against ``n / 2``.
    """
    if arr.dtype.kind in "biu":
        ints = np.asarray(arr.astype(np.int64) if arr.dtype.kind == "b" else arr).astype(object)
        # Object-array arithmetic on 0-d inputs returns a bare int: re-wrap it.
        return np.asarray(ints * (1 << scale), dtype=object) if scale else ints
    scaled = np.asarray(np.rint(np.ldexp(arr.astype(np.float64), scale)))
    if scaled.size and not np.isfinite(scaled).all():
        raise EncodingOverflowError(
            f"a plaintext operand overflows float64 at scale 2^{scale}; scale it down"
        )
    if scaled.size == 0 or float(np.abs(scaled).max()) < 2.0**62:
        return scaled.astype(np.int64).astype(object)
    out = np.empty(scaled.shape, dtype=object)
    out.ravel()[:] = [int(v) for v in scaled.ravel().tolist()]
    return out


def decode_ints(ints: list[int], scale: int, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """Signed integers at ``scale`` to float64 (correctly rounded), in ``shape``.

    Raises
    ------
    EncodingOverflowError
        If a value is beyond the float64 range.
    """
    if all(-(1 << 63) < v < (1 << 63) for v in ints):
        out = np.ldexp(np.array(ints, dtype=np.int64).astype(np.float64), -scale)
        return out.reshape(shape)
    denominator = 1 << scale
    try:
        # int / int is correctly rounded in Python, whatever the sizes.
        values = [v / denominator for v in ints]
    except OverflowError:
        raise EncodingOverflowError(
            "a decrypted value exceeds the float64 range; it is correct but cannot be "
            "returned as float64: rescale the computation (smaller plaintext operands)"
        ) from None
    return np.array(values, dtype=np.float64).reshape(shape)
