"""Exact matrix products in Z_2^64 and Z_2^32 through float64 BLAS.

numpy multiplies unsigned 64-bit matrices with a naive triple loop that is both single-
threaded and cache-hostile (a 1024 x 1024 product takes seconds), while float64 ``@`` runs on
an optimized multi-threaded BLAS. This module obtains the *bit-exact* ring product from
float64 products, in the spirit of the Ozaki splitting scheme (Ozaki, Ogita, Oishi, Rump,
"Error-free transformations of matrix multiplication by using fast routines of matrix
multiplication and its applications", Numer. Algorithms 59, 2012):

1. Each operand is split into *balanced* digits ``x = sum_i d_i 2^(s_i) (mod 2^k)`` with
   ``d_i`` in ``[-2^(w_i - 1), 2^(w_i - 1))``. Adding the constant ``H = sum_i 2^(w_i-1+s_i)``
   turns this into an ordinary unsigned digit expansion, so every digit is one shift and one
   mask of ``x + H``. Balanced digits halve each factor's magnitude, which quadruples the
   inner dimension that fits in one exact float64 product.
2. A float64 product of digit matrices is exact when the sum of the absolute values of all
   terms of every dot product is at most 2^53: every partial sum is then an integer below
   2^53, whatever order or fused multiply-adds BLAS uses. The inner dimension K is cut into
   chunks that respect this bound, and partial results are added in float64 while the
   running bound allows, otherwise converted to int64 and added modulo 2^64.
3. Only digit pairs whose shift ``s_i + s_j`` is below ``k`` matter modulo 2^k.

Plans
-----
* Z_2^64: digits of widths (21, 22, 21) at shifts (0, 21, 43). The needed pairs are
  (0,0) at shift 0, (0,1)+(1,0) at 21, (1,1) at 42, (0,2)+(2,0) at 43; the shift-21 term is
  obtained by Karatsuba's identity ``(A0 + A1)(B0 + B1) - A0 B0 - A1 B1``, so five float64
  products replace numpy's integer loop.
* Z_2^32: ``A = A_lo + 2^11 A_hi`` with an 11-bit and a 21-bit digit; then
  ``A B = A_lo B + 2^11 (A_hi (B mod 2^21)) (mod 2^32)`` takes two float64 products, with
  ``B`` read as a signed 32-bit value and ``B mod 2^21`` as a balanced 21-bit value.

Small or skinny products (few multiply-adds per element moved) stay on numpy's integer
path, which wraps modulo 2^k exactly and is faster there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import ParameterError, ShapeMismatchError

__all__ = ["ring_dot", "ring_matmul", "ring_sum"]

_UNSIGNED: dict[int, np.dtype[Any]] = {32: np.dtype(np.uint32), 64: np.dtype(np.uint64)}
_SIGNED: dict[int, np.dtype[Any]] = {32: np.dtype(np.int32), 64: np.dtype(np.int64)}

#: Largest magnitude below which every integer is exactly representable in float64.
_EXACT = 1 << 53

# Rough costs (seconds) used to choose between numpy's integer loop and BLAS. They only
# steer performance; both paths are exact. Measured on a 2-core AVX-512 x86-64 machine.
_COST_SPLIT = 8.0e-9  # digit extraction, per operand element
_COST_COMBINE = 6.0e-9  # int64 conversions and shifted adds, per output element
_COST_FLOAT_MAC = 5 * 2 / 40e9  # five float64 products at ~40 GFLOP/s
_COST_FIXED = 40e-6  # Python overhead of the split path


def _integer_mac_cost(k: int, n: int) -> float:
    """Per multiply-add cost of numpy's integer matmul: it streams the whole right operand
    for every output row, so it slows down as that operand falls out of each cache level."""
    right_bytes = 8 * k * n
    if right_bytes <= 48 << 10:
        return 0.7e-9
    if right_bytes <= 512 << 10:
        return 1.0e-9
    if right_bytes <= 4 << 20:
        return 1.5e-9
    return 3.0e-9


def ring_matmul(
    a: npt.ArrayLike, b: npt.ArrayLike, ring_bits: int | None = None
) -> npt.NDArray[Any]:
    """Matrix product modulo ``2^ring_bits``, bit-exact, with ``np.matmul`` semantics.

    Parameters
    ----------
    a, b : array_like of uint64 (ring 64) or uint32 (ring 32)
        Operands; the signed dtype of the same width is accepted and read modulo 2^k.
        Leading (batch) dimensions broadcast and 1-D operands are promoted as in
        ``np.matmul``.
    ring_bits : {64, 32}, optional
        The ring width; inferred from the dtype when omitted, checked against it otherwise.

    Returns
    -------
    ndarray of uint64 or uint32
        ``(a @ b) mod 2^ring_bits``.

    Raises
    ------
    ParameterError
        For a dtype that is not a ring dtype, operands of different rings, or a
        ``ring_bits`` that contradicts the dtype.
    ShapeMismatchError
        If the inner dimensions differ or the batch dimensions do not broadcast.
    """
    x, bits = _ring_operand(a, ring_bits, "a")
    y, bits_b = _ring_operand(b, ring_bits, "b")
    if bits != bits_b:
        raise ParameterError(
            f"operands belong to different rings (Z_2^{bits} and Z_2^{bits_b}); convert one"
        )
    squeeze_rows = x.ndim == 1
    squeeze_cols = y.ndim == 1
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeMismatchError("ring_matmul needs operands with at least one dimension")
    if squeeze_rows:
        x = x[np.newaxis, :]
    if squeeze_cols:
        y = y[:, np.newaxis]
    if x.shape[-1] != y.shape[-2]:
        raise ShapeMismatchError(
            f"inner dimensions differ: a has shape {np.shape(a)}, b has shape {np.shape(b)}"
        )
    try:
        batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except ValueError as exc:
        raise ShapeMismatchError(
            f"batch dimensions do not broadcast: {np.shape(a)} @ {np.shape(b)}"
        ) from exc
    m, k = x.shape[-2:]
    n = y.shape[-1]
    if _prefer_integer_loop(int(np.prod(batch, dtype=np.int64)), m, k, n):
        # numpy's integer matmul wraps modulo 2^k exactly (unsigned C arithmetic).
        result = np.matmul(x, y)
    elif bits == 64:
        result = _matmul64(x, y)
    else:
        result = _matmul32(x, y)
    if squeeze_rows:
        result = result[..., 0, :]
    if squeeze_cols:
        result = result[..., 0]
    return result


def ring_dot(a: npt.ArrayLike, b: npt.ArrayLike, ring_bits: int | None = None) -> Any:
    """Inner product of two ring vectors modulo ``2^ring_bits`` (a 0-d ring array)."""
    x = np.asarray(a)
    y = np.asarray(b)
    if x.ndim != 1 or y.ndim != 1:
        raise ShapeMismatchError(
            f"ring_dot takes two vectors, got shapes {x.shape} and {y.shape}; use ring_matmul"
        )
    return ring_matmul(x, y, ring_bits)


def ring_sum(
    a: npt.ArrayLike, axis: int | tuple[int, ...] | None = None, ring_bits: int | None = None
) -> npt.NDArray[Any]:
    """Sum of ring elements modulo ``2^ring_bits``, returned in the ring's dtype."""
    x, bits = _ring_operand(a, ring_bits, "a")
    # uint64 addition wraps modulo 2^64, and 2^32 divides 2^64, so one uint64 sum serves both
    # rings; the 32-bit result is then reduced by the cast.
    total = np.sum(x, axis=axis, dtype=np.uint64)
    return np.asarray(total).astype(_UNSIGNED[bits])


# --- internals ---------------------------------------------------------------------------


def _ring_operand(a: npt.ArrayLike, ring_bits: int | None, name: str) -> tuple[Any, int]:
    arr = np.asarray(a)
    for bits in (64, 32):
        if arr.dtype in (_UNSIGNED[bits], _SIGNED[bits]):
            if ring_bits is not None and ring_bits != bits:
                raise ParameterError(
                    f"{name} has dtype {arr.dtype}, which holds Z_2^{bits}, but "
                    f"ring_bits={ring_bits}; convert the operand or drop ring_bits"
                )
            return arr.view(_UNSIGNED[bits]), bits
    raise ParameterError(
        f"{name} has dtype {arr.dtype}; ring operands are uint64 (Z_2^64) or uint32 "
        "(Z_2^32): encode reals with FixedPoint.encode first"
    )


def _prefer_integer_loop(batch: int, m: int, k: int, n: int) -> bool:
    if batch * m * k * n == 0:
        return True
    integer = _integer_mac_cost(k, n) * batch * m * k * n
    blas = (
        _COST_SPLIT * batch * (m * k + k * n)
        + _COST_COMBINE * batch * m * n
        + _COST_FLOAT_MAC * batch * m * k * n
        + _COST_FIXED
    )
    return integer <= blas


def _digits(
    y: npt.NDArray[Any], plan: tuple[tuple[int, int | None, int], ...], signed: Any
) -> list[npt.NDArray[np.float64]]:
    """Balanced digits ``((y >> shift) & (2^width - 1)) - half`` of the offset operand ``y``.

    ``plan`` lists ``(shift, width, half)``; a width of None means no mask (top digit).
    """
    t = np.empty_like(y)  # one integer scratch buffer for all digits
    out = []
    for shift, width, half in plan:
        np.right_shift(y, y.dtype.type(shift), out=t)
        if width is not None:
            np.bitwise_and(t, y.dtype.type((1 << width) - 1), out=t)
        # Digits are below 2^22: the signed view converts exactly and faster than unsigned.
        d = t.view(signed).astype(np.float64)
        d -= float(half)
        out.append(d)
    return out


class _ExactAccumulator:
    """Sums float64 products of integer matrices exactly, modulo 2^64.

    Each product's inner dimension is cut so that every chunk is exact; chunks are added in
    float64 while the proven bound on the running sum stays within 2^53, else converted.
    """

    def __init__(self) -> None:
        self._float: npt.NDArray[np.float64] | None = None
        self._bound = 0
        self._int: npt.NDArray[np.uint64] | None = None

    def add(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], term: int) -> None:
        """Add ``x @ y`` where every entry of every term ``x[i, l] * y[l, j]`` is <= ``term``."""
        k = x.shape[-1]
        step = max(1, _EXACT // term)
        n_chunks = -(-k // step)
        step = -(-k // n_chunks)  # balance the chunks
        for start in range(0, k, step):
            stop = min(k, start + step)
            bound = (stop - start) * term
            if self._bound + bound > _EXACT:
                self._flush()
            part = x @ y if n_chunks == 1 else x[..., start:stop] @ y[..., start:stop, :]
            if self._float is None:
                self._float = part
            else:
                self._float += part
            self._bound += bound

    def _flush(self) -> None:
        if self._float is None:
            return
        as_int = self._float.astype(np.int64).view(np.uint64)
        if self._int is None:
            self._int = as_int
        else:
            self._int += as_int  # wraps modulo 2^64: exactly the arithmetic we want
        self._float = None
        self._bound = 0

    def result(self) -> npt.NDArray[np.uint64]:
        self._flush()
        if self._int is None:
            raise RuntimeError("empty accumulator")  # unreachable: callers add first
        return self._int


# Z_2^64 plan: digit widths (21, 22, 21) at shifts (0, 21, 43).
_W64 = (21, 22, 21)
_S64 = (0, 21, 43)
_H64 = [1 << (w - 1) for w in _W64]
_OFFSET64 = np.uint64(sum(h << s for h, s in zip(_H64, _S64, strict=True)) % (1 << 64))


_PLAN64 = ((_S64[0], _W64[0], _H64[0]), (_S64[1], _W64[1], _H64[1]), (_S64[2], None, _H64[2]))


def _split64(v: npt.NDArray[np.uint64]) -> list[npt.NDArray[np.float64]]:
    return _digits(v + _OFFSET64, _PLAN64, np.int64)  # the sum wraps: only v mod 2^64 matters


def _matmul64(x: npt.NDArray[np.uint64], y: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    a0, a1, a2 = _split64(x)
    b0, b1, b2 = _split64(y)
    h0, h1, h2 = _H64

    p00 = _ExactAccumulator()
    p00.add(a0, b0, h0 * h0)
    p11 = _ExactAccumulator()
    p11.add(a1, b1, h1 * h1)
    # Karatsuba: A0 B1 + A1 B0 = (A0 + A1)(B0 + B1) - A0 B0 - A1 B1 (mod 2^64).
    a0 += a1
    b0 += b1
    mid = _ExactAccumulator()
    mid.add(a0, b0, (h0 + h1) * (h0 + h1))
    a0 -= a1
    b0 -= b1
    top = _ExactAccumulator()  # A0 B2 + A2 B0, needed modulo 2^(64 - 43) only
    top.add(a0, b2, h0 * h2)
    top.add(a2, b0, h2 * h0)

    r00 = p00.result()
    r11 = p11.result()
    out = mid.result()
    out -= r00
    out -= r11
    out <<= np.uint64(_S64[1])
    out += r00
    r11 <<= np.uint64(2 * _S64[1])
    out += r11
    r02 = top.result()
    r02 <<= np.uint64(_S64[2])
    out += r02
    return out


# Z_2^32 plan: A = A_lo + 2^11 A_hi with an 11-bit and a 21-bit balanced digit.
_LO32 = 11
_HI32 = 21
_OFFSET32 = np.uint32(((1 << (_LO32 - 1)) + ((1 << (_HI32 - 1)) << _LO32)) % (1 << 32))


def _matmul32(x: npt.NDArray[np.uint32], y: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    a_lo, a_hi = _digits(
        x + _OFFSET32, ((0, _LO32, 1 << (_LO32 - 1)), (_LO32, None, 1 << (_HI32 - 1))), np.int32
    )
    b_full = y.view(np.int32).astype(np.float64)  # B itself, as a signed 32-bit value
    (b_low,) = _digits(y + np.uint32(1 << (_HI32 - 1)), ((0, _HI32, 1 << (_HI32 - 1)),), np.int32)

    low = _ExactAccumulator()
    low.add(a_lo, b_full, (1 << (_LO32 - 1)) * (1 << 31))
    high = _ExactAccumulator()
    high.add(a_hi, b_low, (1 << (_HI32 - 1)) * (1 << (_HI32 - 1)))
    out = high.result()
    out <<= np.uint64(_LO32)
    out += low.result()
    return out.astype(np.uint32)
