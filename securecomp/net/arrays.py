"""Array and big-integer payload layouts (DESIGN.md §5).

Array layout
------------
``"SCA" | version u8 | dtype code u8 | ndim u8 | reserved u16 = 0 | ndim × dim u64 |
raw little-endian C-order data``, all integers little-endian. The 8-byte fixed head keeps
the data 8-byte aligned inside a fresh buffer. Only the dtypes of `ARRAY_DTYPES` exist.

Big integers
------------
Fixed-width, unsigned, big-endian concatenation (as Paillier ciphertexts are exchanged):
``count × width`` bytes; widths and counts are part of the calling protocol, not the bytes.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from securecomp.errors import EncodingOverflowError, MalformedMessageError, ParameterError

__all__ = [
    "ARRAY_DTYPES",
    "MAX_BIGINT_WIDTH",
    "MAX_ELEMENTS",
    "MAX_NDIM",
    "array_parts",
    "decode_array",
    "decode_arrays",
    "decode_bigints",
    "encode_array",
    "encode_arrays",
    "encode_bigints",
]

#: Wire code -> dtype. The only dtypes that travel; everything else is refused.
ARRAY_DTYPES: Final[Mapping[int, np.dtype[Any]]] = {
    0: np.dtype("?"),
    1: np.dtype("<i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<i8"),
    5: np.dtype("<u1"),
    6: np.dtype("<u2"),
    7: np.dtype("<u4"),
    8: np.dtype("<u8"),
    9: np.dtype("<f4"),
    10: np.dtype("<f8"),
}
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in ARRAY_DTYPES.items()}
_ARRAY_HEAD = struct.Struct("<3sBBBH")
_ARRAY_MAGIC = b"SCA"
_ARRAY_VERSION = 1
_DIM = struct.Struct("<Q")
MAX_NDIM: Final = 32
#: Largest element count an array may declare (2^40; far above any array we ship).
MAX_ELEMENTS: Final = 1 << 40


def array_parts(a: np.ndarray[Any, Any]) -> tuple[bytes, memoryview]:
    """Split an array into its wire head and a zero-copy view of its data.

    Sending ``head`` then ``data`` is equivalent to sending ``encode_array(a)`` without
    concatenating (no copy when ``a`` is C-contiguous little-endian).

    Returns
    -------
    (bytes, memoryview)
        The head and a byte view of the little-endian C-order data. The view aliases
        ``a``: consume it before ``a`` can change.
    """
    if isinstance(a, np.generic):
        a = np.asarray(a)
    if not isinstance(a, np.ndarray):
        raise ParameterError(f"expected a numpy array, got {type(a).__name__}")
    dt = a.dtype
    code = _CODE_OF.get((dt.kind, dt.itemsize)) if dt.fields is None else None
    if code is None or dt.kind not in "biuf":
        raise ParameterError(
            f"dtype {dt} cannot be sent: allowed are bool, int8..int64, uint8..uint64, "
            "float32, float64 (convert first; object and structured dtypes never travel)"
        )
    if a.ndim > MAX_NDIM:
        raise ParameterError(f"array of {a.ndim} dimensions exceeds the wire limit {MAX_NDIM}")
    wire_dt = ARRAY_DTYPES[code]
    flat = np.ascontiguousarray(a, dtype=wire_dt).reshape(-1)
    head = _ARRAY_HEAD.pack(_ARRAY_MAGIC, _ARRAY_VERSION, code, a.ndim, 0) + b"".join(
        _DIM.pack(d) for d in a.shape
    )
    return head, flat.view(np.uint8).data


def encode_array(a: np.ndarray[Any, Any]) -> bytes:
    """Serialize a numeric array: head (dtype code, shape) then raw little-endian data.

    Invariant: ``np.array_equal(decode_array(encode_array(a)), a)`` with equal dtype and
    shape (and equal bit patterns for floats, NaN payloads included).
    """
    head, data = array_parts(a)
    return head + data.tobytes()


def _array_head(data: memoryview) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    if len(data) < _ARRAY_HEAD.size:
        raise MalformedMessageError("truncated array: shorter than its 8-byte head")
    magic, version, code, ndim, reserved = _ARRAY_HEAD.unpack_from(data)
    if magic != _ARRAY_MAGIC:
        raise MalformedMessageError("not a securecomp array (bad magic)")
    if version != _ARRAY_VERSION:
        raise MalformedMessageError(
            f"unsupported array format version {version}; this build reads {_ARRAY_VERSION}"
        )
    if reserved != 0:
        raise MalformedMessageError("malformed array head: reserved bytes are not zero")
    if code not in ARRAY_DTYPES:
        raise MalformedMessageError(
            f"array dtype code {code} is not allowed (known codes {sorted(ARRAY_DTYPES)})"
        )
    if ndim > MAX_NDIM:
        raise MalformedMessageError(f"array declares {ndim} dimensions; limit is {MAX_NDIM}")
    off = _ARRAY_HEAD.size + ndim * _DIM.size
    if len(data) < off:
        raise MalformedMessageError("truncated array: shape cut short")
    shape = tuple(_DIM.unpack_from(data, _ARRAY_HEAD.size + i * _DIM.size)[0] for i in range(ndim))
    if math.prod(max(d, 1) for d in shape) > MAX_ELEMENTS:
        raise MalformedMessageError(
            f"array shape {shape} declares more than {MAX_ELEMENTS} elements"
        )
    return ARRAY_DTYPES[code], shape, off


def decode_array(
    data: bytes | bytearray | memoryview, *, copy: bool = False
) -> np.ndarray[Any, Any]:
    """Validate and decode an array written by `encode_array`.

    Parameters
    ----------
    data : bytes-like
    copy : bool
        If False (default) the result is a zero-copy view of ``data``: read-only when
        ``data`` is immutable (``bytes``), writable and aliasing it when ``data`` is a
        ``bytearray`` (channels hand each message its own buffer, so that is safe there).
        If True the result owns a fresh writable copy.

    Raises
    ------
    MalformedMessageError
        Bad magic or version, unknown dtype code, too many dimensions or elements, data
        length not exactly ``prod(shape) · itemsize``, or bool bytes other than 0/1.
    """
    view = memoryview(data).cast("B")
    dt, shape, off = _array_head(view)
    count = math.prod(shape)
    want = count * dt.itemsize
    if len(view) - off != want:
        raise MalformedMessageError(
            f"array of shape {shape} and dtype {dt} needs {want} data bytes, got "
            f"{len(view) - off} (truncated or padded)"
        )
    if dt.kind == "b" and count and bool((np.frombuffer(view, np.uint8, count, off) > 1).any()):
        raise MalformedMessageError("bool array holds bytes other than 0 and 1")
    out = np.frombuffer(view, dtype=dt, count=count, offset=off).reshape(shape)
    return out.copy() if copy else out


_COUNT = struct.Struct("<I")
_LEN = struct.Struct("<Q")
_MAX_ARRAYS = 1 << 16


def encode_arrays(arrays: Sequence[np.ndarray[Any, Any]]) -> bytes:
    """Serialize a list of arrays: count u32, then for each its length u64 and encoding."""
    if len(arrays) > _MAX_ARRAYS:
        raise ParameterError(f"at most {_MAX_ARRAYS} arrays per message, got {len(arrays)}")
    out = [_COUNT.pack(len(arrays))]
    for a in arrays:
        enc = encode_array(a)
        out += [_LEN.pack(len(enc)), enc]
    return b"".join(out)


def decode_arrays(
    data: bytes | bytearray | memoryview, *, copy: bool = False
) -> list[np.ndarray[Any, Any]]:
    """Inverse of `encode_arrays`; every length is checked against the bytes present."""
    view = memoryview(data).cast("B")
    if len(view) < _COUNT.size:
        raise MalformedMessageError("truncated array list: no count")
    (n,) = _COUNT.unpack_from(view)
    if n > _MAX_ARRAYS:
        raise MalformedMessageError(f"array list declares {n} arrays; limit {_MAX_ARRAYS}")
    pos, out = _COUNT.size, []
    for i in range(n):
        if len(view) - pos < _LEN.size:
            raise MalformedMessageError(f"truncated array list at array {i}")
        (m,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if m > len(view) - pos:
            raise MalformedMessageError(
                f"array {i} declares {m} bytes but only {len(view) - pos} remain"
            )
        out.append(decode_array(view[pos : pos + m], copy=copy))
        pos += m
    if pos != len(view):
        raise MalformedMessageError(f"{len(view) - pos} trailing bytes after the array list")
    return out


# ---------------------------------------------------------------------------------------
# big integers
# ---------------------------------------------------------------------------------------

#: Largest width of one integer (4096 bytes = 32768 bits; a 3072-bit Paillier n² is 768).
MAX_BIGINT_WIDTH: Final = 4096


def _check_width(width_bytes: int, err: type[Exception]) -> None:
    if type(width_bytes) is not int or not 1 <= width_bytes <= MAX_BIGINT_WIDTH:
        raise err(f"integer width must be an int in [1, {MAX_BIGINT_WIDTH}] bytes")


def encode_bigints(ints: Iterable[int], width_bytes: int) -> bytes:
    """Serialize non-negative integers as fixed-width big-endian unsigned byte strings.

    Parameters
    ----------
    ints : iterable of int
        Python ints or anything with ``__index__`` (numpy ints, gmpy2 ``mpz``).
    width_bytes : int
        Bytes per integer; each value must be ``< 256**width_bytes``.

    Raises
    ------
    EncodingOverflowError
        A value is negative or does not fit in ``width_bytes``.
    """
    _check_width(width_bytes, ParameterError)
    out = []
    for i, x in enumerate(ints):
        if isinstance(x, bool):
            raise ParameterError(f"integer {i} is a bool; pass ints")
        try:
            v = operator.index(x)
        except TypeError:
            raise ParameterError(f"integer {i} has type {type(x).__name__}, not int") from None
        if v < 0 or v.bit_length() > 8 * width_bytes:
            raise EncodingOverflowError(
                f"integer {i} ({'negative' if v < 0 else f'{v.bit_length()} bits'}) does not "
                f"fit {width_bytes} unsigned bytes; reduce it or widen the encoding"
            )
        out.append(v.to_bytes(width_bytes, "big"))
    return b"".join(out)


def decode_bigints(
    data: bytes | bytearray | memoryview,
    width_bytes: int,
    count: int,
    *,
    upper: int | None = None,
) -> list[int]:
    """Inverse of `encode_bigints`, with exact length and optional range checks.

    Parameters
    ----------
    data : bytes-like
    width_bytes, count : int
        Expected layout; ``len(data)`` must equal ``width_bytes · count``.
    upper : int, optional
        Exclusive bound every value must respect (e.g. ``n**2`` for Paillier ciphertexts).

    Raises
    ------
    MalformedMessageError
        Length mismatch or a value ``>= upper``.
    """
    _check_width(width_bytes, ParameterError)
    if type(count) is not int or count < 0:
        raise ParameterError("count must be a non-negative int")
    view = memoryview(data).cast("B")
    if len(view) != width_bytes * count:
        raise MalformedMessageError(
            f"expected {count} integers of {width_bytes} bytes ({width_bytes * count} bytes), "
            f"got {len(view)} bytes"
        )
    vals = [
        int.from_bytes(view[i : i + width_bytes], "big") for i in range(0, len(view), width_bytes)
    ]
    if upper is not None:
        for i, v in enumerate(vals):
            if v >= upper:
                raise MalformedMessageError(
                    f"integer {i} is not below its bound ({v.bit_length()} bits vs "
                    f"{upper.bit_length()}-bit bound): corrupted or forged"
                )
    return vals
