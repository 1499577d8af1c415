"""Bit-packing of ``b``-bit values: masked vectors travel at ``b`` bits per value.

Layout: value ``i`` occupies bits ``[i*b, (i+1)*b)`` of the stream, least significant bit
first; bit ``j`` of the stream is bit ``j mod 8`` of byte ``j // 8`` (little-endian bit
order); the last byte is zero-padded. So ``ceil(d*b/8)`` bytes carry ``d`` values: the
upload of a client is about ``b/16`` times its 16-bit input plus keys and shares, the
quantity behind the communication expansion reported by Bonawitz et al. (CCS 2017).

Whole-byte widths are sliced from the little-endian bytes directly; other widths go
through ``numpy.unpackbits``/``packbits`` in chunks (bounded temporary memory). Decoding
checks the exact length and that padding bits are zero.
"""

from __future__ import annotations

import operator

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, MalformedMessageError, ParameterError

__all__ = ["pack_bits", "packed_size", "unpack_bits"]

#: Values per chunk: a multiple of 8 so every chunk is a whole number of bytes.
_CHUNK = 1 << 16


def packed_size(count: int, bits: int) -> int:
    """Bytes holding ``count`` values of ``bits`` bits."""
    return (operator.index(count) * operator.index(bits) + 7) // 8


def _width(dtype: np.dtype, bits: int) -> int:
    if dtype.kind != "u":
        raise ParameterError(f"bit-packing needs an unsigned integer array, got {dtype}")
    w = dtype.itemsize * 8
    if not 1 <= bits <= w:
        raise ParameterError(f"bits must lie in [1, {w}] for {dtype}, got {bits}")
    return w


def pack_bits(values: npt.NDArray[np.unsignedinteger], bits: int) -> bytes:
    """Pack unsigned ``values`` (each ``< 2^bits``) into ``packed_size(len, bits)`` bytes.

    Raises
    ------
    EncodingOverflowError
        A value does not fit in ``bits`` bits (it would be silently truncated otherwise).
    """
    arr = np.ascontiguousarray(values).reshape(-1)
    w = _width(arr.dtype, bits)
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    if bits < w and arr.size and int(arr.max()) >> bits:
        raise EncodingOverflowError(
            f"a value does not fit in {bits} bits; reduce modulo 2^{bits} before packing"
        )
    if bits % 8 == 0:
        raw = arr.view(np.uint8).reshape(-1, w // 8)
        return raw[:, : bits // 8].tobytes()
    parts = []
    for start in range(0, arr.size, _CHUNK):
        chunk = arr[start : start + _CHUNK].view(np.uint8).reshape(-1, w // 8)
        bit_rows = np.unpackbits(chunk, axis=1, bitorder="little")[:, :bits]
        parts.append(np.packbits(bit_rows.reshape(-1), bitorder="little").tobytes())
    return b"".join(parts)


def unpack_bits(
    data: bytes | bytearray | memoryview, count: int, bits: int, dtype: np.dtype
) -> npt.NDArray[np.unsignedinteger]:
    """Inverse of `pack_bits`: ``count`` values of ``bits`` bits as ``dtype``.

    Raises
    ------
    MalformedMessageError
        Wrong length, or nonzero padding bits.
    """
    dt = np.dtype(dtype).newbyteorder("<")
    w = _width(dt, bits)
    count = operator.index(count)
    raw = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    want = packed_size(count, bits)
    if raw.size != want:
        raise MalformedMessageError(
            f"{count} values of {bits} bits take {want} bytes, got {raw.size}"
        )
    nbytes = w // 8
    if bits % 8 == 0:
        out_bytes = np.zeros((count, nbytes), dtype=np.uint8)
        out_bytes[:, : bits // 8] = raw.reshape(count, bits // 8)
        return out_bytes.view(dt).reshape(count)
    tail_bits = count * bits
    if tail_bits % 8:
        last = int(raw[-1]) >> (tail_bits % 8)
        if last:
            raise MalformedMessageError("nonzero padding bits after the last packed value")
    out = np.empty(count, dtype=dt)
    chunk_bytes = _CHUNK * bits // 8
    for i, start in enumerate(range(0, count, _CHUNK)):
        n = min(_CHUNK, count - start)
        piece = raw[i * chunk_bytes : i * chunk_bytes + packed_size(n, bits)]
        bit_rows = np.unpackbits(piece, bitorder="little")[: n * bits].reshape(n, bits)
        full = np.zeros((n, w), dtype=np.uint8)
        full[:, :bits] = bit_rows
        out[start : start + n] = np.packbits(full, axis=1, bitorder="little").view(dt).reshape(n)
    return out
