"""Vectorized arithmetic in Z_2^128 on two uint64 limbs.

SPDZ2k with ``k = s = 64`` computes in Z_2^(k+s) = Z_2^128 (Cramer, Damgård, Escudero,
Scholl, Xing, CRYPTO 2018, section 3). numpy has no 128-bit integers, so an element is
held as two uint64 limbs, ``x = lo + 2^64 hi``: a *wide array* ``W`` has the limb index
as its first axis (``W[0]`` the low limbs, ``W[1]`` the high limbs) and any trailing
shape, and every function here broadcasts like the numpy ufuncs it is made of.

Products need the high word of a 64 x 64-bit product, which numpy lacks; it is formed
from four 32 x 32-bit products (schoolbook, as in Knuth, TAOCP vol. 2, 4.3.1) whose
partial sums are kept in *columns* of 32 bits with headroom (``col0 + 2^32 mid +
2^64 hi``), so a sum of several products is normalized (carried) once, not per product.
A weighted sum ``C + d B + e A`` (the Beaver step, every 64-bit public factor applied to
a 128-bit share) is one fused kernel, `lincomb`.

Performance: the large kernels run in chunks of `CHUNK` elements through scratch
buffers allocated once per call, so their temporaries stay in cache and nothing is
allocated per chunk (allocating large temporaries costs as much as the arithmetic,
in page faults). The check's dot product never normalizes: it sums the raw columns.

Invariant (tested against Python integers): every function returns the exact result
modulo 2^128 of the operation on the integers ``lo + 2^64 hi``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import ParameterError, ShapeMismatchError

__all__ = [
    "CHUNK",
    "MASK128",
    "add",
    "dot",
    "from_ints",
    "from_u64",
    "lincomb",
    "mul",
    "mul_int",
    "mulhi",
    "neg",
    "sub",
    "sum_axis",
    "to_ints",
]

U64 = np.uint64
Wide = npt.NDArray[np.uint64]
#: A wide array, or its limbs as a sequence of separate arrays.
Limbs = Wide | Sequence[npt.NDArray[np.uint64]]

#: Elements per chunk of the fused kernels. Smaller chunks keep the scratch rows in L2 but
#: multiply the numpy calls (each a GIL handoff between in-process party threads); 2^15
#: was the fastest of 2^13 .. 2^18 with two party threads on a 2-core machine.
CHUNK = 1 << 15
#: 2^128 - 1.
MASK128 = (1 << 128) - 1

_M32 = U64(0xFFFFFFFF)
_S32 = U64(32)
_S63 = U64(63)


# --- conversions (tests, dealer scalars) -------------------------------------------------


def from_ints(values: Iterable[int] | npt.ArrayLike, shape: Sequence[int] | None = None) -> Wide:
    """A wide array from Python integers (reduced modulo 2^128)."""
    obj = np.asarray(values, dtype=object)
    flat = [int(v) & MASK128 for v in obj.reshape(-1)]
    out = np.empty((2, len(flat)), dtype=U64)
    out[0] = [v & 0xFFFFFFFFFFFFFFFF for v in flat]
    out[1] = [v >> 64 for v in flat]
    target = obj.shape if shape is None else tuple(shape)
    return out.reshape((2, *target))


def to_ints(w: Wide) -> npt.NDArray[Any]:
    """The Python integers ``lo + 2^64 hi`` of a wide array (an object array)."""
    lo = w[0].astype(object)
    hi = w[1].astype(object)
    return np.asarray(lo + (hi << 64), dtype=object)


def from_u64(v: npt.NDArray[np.uint64]) -> Wide:
    """The wide array of the integers ``v`` in ``[0, 2^64)`` (high limbs zero)."""
    out = np.zeros((2, *np.shape(v)), dtype=U64)
    out[0] = v
    return out


def _split_int(c: int) -> tuple[np.uint64, np.uint64]:
    c &= MASK128
    return U64(c & 0xFFFFFFFFFFFFFFFF), U64(c >> 64)


# --- chunking ------------------------------------------------------------------------------


def _result(shape: tuple[int, ...], out: Wide | None) -> Wide:
    if out is None:
        return np.empty((2, *shape), dtype=U64)
    if out.shape != (2, *shape) or out.dtype != U64:
        raise ShapeMismatchError(f"out has shape {out.shape}, expected {(2, *shape)} uint64")
    return out


def _chunked(n: int, arrays: Sequence[npt.NDArray[Any] | None]) -> bool:
    """Whether the operands can be cut along their last axis: each has ``n`` elements
    there or is a scalar (the common flat case of large elementwise operations)."""
    return n > CHUNK and all(a is None or a.ndim == 0 or a.shape[-1] == n for a in arrays)


def _slices(n: int) -> Iterable[slice]:
    for start in range(0, n, CHUNK):
        yield slice(start, min(n, start + CHUNK))


def _cut(a: npt.NDArray[Any] | None, sl: slice) -> Any:
    return None if a is None else a[..., sl]


# --- addition ------------------------------------------------------------------------------


def _aliases(res: Wide, x: Limbs) -> bool:
    return any(np.may_share_memory(res, limb) for limb in (x[0], x[1]))


def _add_block(a: Limbs, b: Limbs, res: Wide, flag: npt.NDArray[np.bool_] | None) -> None:
    if _aliases(res, b):
        a, b = b, a  # the carry test compares against the operand that was not overwritten
    if _aliases(res, b):  # a is b is out: the carry is the top bit
        carry: npt.NDArray[Any] = np.right_shift(b[0], _S63)
        np.add(a[0], b[0], out=res[0, ...])
    else:
        np.add(a[0], b[0], out=res[0, ...])
        carry = np.less(res[0], b[0], out=flag)
    np.add(a[1], b[1], out=res[1, ...])
    np.add(res[1], carry, out=res[1, ...], casting="unsafe")


def _sub_block(a: Limbs, b: Limbs, res: Wide, flag: npt.NDArray[np.bool_] | None) -> None:
    borrow = np.less(a[0], b[0], out=flag)  # before any write: out may alias an operand
    np.subtract(a[0], b[0], out=res[0, ...])
    np.subtract(a[1], b[1], out=res[1, ...])
    np.subtract(res[1], borrow, out=res[1, ...], casting="unsafe")


def _trailing(a: Limbs) -> tuple[int, ...]:
    return tuple(a.shape[1:]) if isinstance(a, np.ndarray) else tuple(a[0].shape)


def _cut_limbs(a: Limbs, sl: slice) -> Limbs:
    return a[..., sl] if isinstance(a, np.ndarray) else [x[..., sl] for x in a]


def _binary(block: Any, a: Limbs, b: Limbs, out: Wide | None) -> Wide:
    sa, sb = _trailing(a), _trailing(b)
    shape = tuple(np.broadcast_shapes(sa, sb))
    res = _result(shape, out)
    n = shape[-1] if shape else 0
    if shape and sa == sb == shape and n > CHUNK:
        flag = np.empty((*shape[:-1], CHUNK), dtype=np.bool_)
        for sl in _slices(n):
            block(_cut_limbs(a, sl), _cut_limbs(b, sl), res[..., sl],
                  flag[..., : sl.stop - sl.start])
    else:
        block(a, b, res, None)
    return res


def add(a: Limbs, b: Limbs, out: Wide | None = None) -> Wide:
    """``a + b`` modulo 2^128 (``out`` may be ``a`` or ``b``).

    An operand may also be given as a sequence ``[lo, hi]`` of two uint64 arrays (limbs
    received as separate messages), which is never copied.
    """
    return _binary(_add_block, a, b, out)


def sub(a: Limbs, b: Limbs, out: Wide | None = None) -> Wide:
    """``a - b`` modulo 2^128 (``out`` may be ``a`` or ``b``)."""
    return _binary(_sub_block, a, b, out)


def neg(a: Wide, out: Wide | None = None) -> Wide:
    """``-a`` modulo 2^128."""
    res = _result(a.shape[1:], out)
    borrow = np.not_equal(a[0], 0)
    np.negative(a[0], out=res[0, ...])
    np.negative(a[1], out=res[1, ...])
    np.subtract(res[1], borrow, out=res[1, ...], casting="unsafe")
    return res


# --- products ------------------------------------------------------------------------------


def mulhi(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """``floor(a * b / 2^64)`` for uint64 arrays (the high word of the full product)."""
    a0, a1 = a & _M32, a >> _S32
    b0, b1 = b & _M32, b >> _S32
    p00, p01, p10 = a0 * b0, a0 * b1, a1 * b0
    hi = a1 * b1
    mid = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
    hi += (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    return np.asarray(hi)


_SCRATCH = ("col0", "hi", "mid", "p00", "p01", "p10", "tmp", "x0", "x1")


class _Scratch:
    """Column accumulators and temporaries of one kernel call (the shape of one chunk)."""

    __slots__ = _SCRATCH
    col0: Wide
    hi: Wide
    mid: Wide
    p00: Wide
    p01: Wide
    p10: Wide
    tmp: Wide
    x0: Wide
    x1: Wide

    def __init__(self, shape: tuple[int, ...], arrays: dict[str, Wide] | None = None) -> None:
        for name in _SCRATCH:
            arr = np.empty(shape, dtype=U64) if arrays is None else arrays[name]
            object.__setattr__(self, name, arr)

    def first(self, m: int) -> _Scratch:
        """Views of the first ``m`` elements of the last axis (for the last, short chunk)."""
        return _Scratch((), {name: getattr(self, name)[..., :m] for name in _SCRATCH})


def _accumulate(
    f0: Any, f1: Any, x_lo: npt.NDArray[np.uint64], t: _Scratch, first: bool
) -> None:
    """Columns += ``f * x_lo`` (full 128-bit product) for ``f = f0 + 2^32 f1``."""
    np.bitwise_and(x_lo, _M32, out=t.x0)
    np.right_shift(x_lo, _S32, out=t.x1)
    np.multiply(f0, t.x0, out=t.p00)
    np.multiply(f0, t.x1, out=t.p01)
    np.multiply(f1, t.x0, out=t.p10)
    if first:
        np.multiply(f1, t.x1, out=t.hi)
        np.bitwise_and(t.p00, _M32, out=t.col0)
        np.right_shift(t.p00, _S32, out=t.mid)
    else:
        np.multiply(f1, t.x1, out=t.tmp)
        t.hi += t.tmp
        np.bitwise_and(t.p00, _M32, out=t.tmp)
        t.col0 += t.tmp
        np.right_shift(t.p00, _S32, out=t.tmp)
        t.mid += t.tmp
    np.bitwise_and(t.p01, _M32, out=t.tmp)
    t.mid += t.tmp
    np.bitwise_and(t.p10, _M32, out=t.tmp)
    t.mid += t.tmp
    np.right_shift(t.p01, _S32, out=t.tmp)
    t.hi += t.tmp
    np.right_shift(t.p10, _S32, out=t.tmp)
    t.hi += t.tmp


def _lincomb_block(
    factors: Sequence[tuple[Any, Any, Any]],
    xs: Sequence[Wide],
    c: Wide | None,
    out: Wide,
    t: _Scratch,
) -> None:
    for i, ((_, f0, f1), x) in enumerate(zip(factors, xs, strict=True)):
        _accumulate(f0, f1, x[0], t, first=i == 0)
    if c is not None:
        np.bitwise_and(c[0], _M32, out=t.tmp)
        t.col0 += t.tmp
        np.right_shift(c[0], _S32, out=t.tmp)
        t.mid += t.tmp
        t.hi += c[1]
    # Normalize the columns (col0 < 2^35 and mid < 2^36 with at most two products).
    np.right_shift(t.col0, _S32, out=t.tmp)
    t.mid += t.tmp
    np.bitwise_and(t.col0, _M32, out=t.col0)
    np.right_shift(t.mid, _S32, out=t.tmp)
    t.hi += t.tmp
    # High limbs of the operands contribute f * x_hi (mod 2^64) to the high limb only.
    for (f, _, _), x in zip(factors, xs, strict=True):
        np.multiply(f, x[1], out=t.tmp)
        t.hi += t.tmp
    np.left_shift(t.mid, _S32, out=t.tmp)
    np.bitwise_or(t.col0, t.tmp, out=out[0, ...])
    out[1, ...] = t.hi


def _split_factor(f: Any) -> tuple[Any, Any, Any]:
    f = np.asarray(f, dtype=U64)
    return f, f & _M32, f >> _S32


def lincomb(
    factors: Sequence[npt.ArrayLike],
    xs: Sequence[Wide],
    c: Wide | None = None,
    out: Wide | None = None,
) -> Wide:
    """``c + sum_t factors[t] * xs[t]`` modulo 2^128, for 64-bit factors (one or two terms).

    Parameters
    ----------
    factors : sequence of uint64 arrays or scalars
        Public 64-bit multipliers (e.g. the opened Beaver differences), broadcast against
        the trailing shape of ``xs``.
    xs : sequence of wide arrays
        128-bit operands, as many as ``factors``.
    c : wide array, optional
        Added to the result.
    out : wide array, optional
        Destination; may alias ``c`` or any of ``xs``.
    """
    if not 1 <= len(factors) <= 2 or len(xs) != len(factors):
        raise ParameterError("lincomb takes one or two (factor, operand) pairs")
    fs = [np.asarray(f, dtype=U64) for f in factors]
    shape = np.broadcast_shapes(*(f.shape for f in fs), *(x.shape[1:] for x in xs),
                                *(() if c is None else (c.shape[1:],)))
    res = _result(tuple(shape), out)
    n = shape[-1] if shape else 0
    if shape and _chunked(n, [*fs, *(x[0] for x in xs), None if c is None else c[0]]):
        t = _Scratch((*shape[:-1], CHUNK))
        for sl in _slices(n):
            m = sl.stop - sl.start
            view = t if m == CHUNK else t.first(m)
            _lincomb_block(
                [_split_factor(f if f.ndim == 0 else f[..., sl]) for f in fs],
                [x[..., sl] for x in xs],
                None if c is None else c[..., sl],
                res[..., sl],
                view,
            )
        return res
    t = _Scratch(tuple(shape))
    _lincomb_block([_split_factor(f) for f in fs], xs, c, res, t)
    return res


def mul_int(c: int, x: Wide, out: Wide | None = None) -> Wide:
    """``c * x`` modulo 2^128 for a Python integer ``c`` (a MAC key, a public constant)."""
    lo, hi = _split_int(c)
    extra = np.multiply(hi, x[0]) if hi else None  # before out (may alias x) is written
    res = lincomb([lo], [x], out=out)
    if extra is not None:
        np.add(res[1, ...], extra, out=res[1, ...])
    return res


def mul(a: Wide, b: Wide, out: Wide | None = None) -> Wide:
    """``a * b`` modulo 2^128, elementwise with broadcasting (the dealer's triples).

    ``(a_lo + 2^64 a_hi)(b_lo + 2^64 b_hi) = a_lo b + 2^64 a_hi b_lo (mod 2^128)``.
    """
    extra = np.multiply(a[1], b[0])  # before out (which may alias an operand) is written
    res = lincomb([a[0]], [b], out=out)
    np.add(res[1, ...], extra, out=res[1, ...])
    return res


# --- reductions ----------------------------------------------------------------------------


def sum_axis(x: Wide, axis: int | None = None) -> Wide:
    """Sum modulo 2^128 over ``axis`` of the trailing shape (all elements when None).

    The low limbs are summed exactly in 32-bit halves (no carry is lost for fewer than
    2^31 terms); the high limbs modulo 2^64.
    """
    count = x[0].size if axis is None else x[0].shape[axis]
    if count >= 1 << 31:
        raise ParameterError("sum over 2^31 or more elements: split the reduction")
    s0 = np.sum(x[0] & _M32, axis=axis, dtype=U64)
    s1 = np.sum(x[0] >> _S32, axis=axis, dtype=U64)
    hi = np.sum(x[1], axis=axis, dtype=U64)
    # ufuncs, not operators: numpy scalars (axis=None) would warn on the intended wrap.
    t = np.add(s1, np.right_shift(s0, _S32))
    out = np.empty((2, *np.shape(hi)), dtype=U64)
    out[0] = np.bitwise_or(np.bitwise_and(s0, _M32), np.left_shift(t, _S32))
    out[1] = np.add(hi, np.right_shift(t, _S32))
    return out


def dot(chi: npt.NDArray[np.uint64], x: Wide) -> list[int]:
    """``sum_j chi_j x[..., j]`` modulo 2^128 over the last axis, as Python integers.

    ``x`` has shape ``(2, R, n)`` (``R`` rows checked with the same coefficients, e.g. an
    opened value and its MAC share) and ``chi`` shape ``(n,)``. The columns of the
    products are summed raw and carried once, in Python, at the end: the cost of the MAC
    check is then four 32-bit products and three sums per element and row.
    """
    n = x.shape[-1]
    rows = x.shape[1]
    if n >= 1 << 28:
        raise ParameterError("dot over 2^28 or more elements: split the check")
    acc0 = [0] * rows
    acc1 = [0] * rows
    acc2 = [0] * rows
    width = min(n, CHUNK)
    t = _Scratch((rows, width))
    for sl in _slices(n) if n else ():
        m = sl.stop - sl.start
        view = t if m == width else t.first(m)
        f = chi[sl]
        _accumulate(f & _M32, f >> _S32, x[0, :, sl], view, first=True)
        np.multiply(f, x[1, :, sl], out=view.tmp)
        view.hi += view.tmp
        s0 = view.col0.sum(axis=-1, dtype=U64)
        s1 = view.mid.sum(axis=-1, dtype=U64)
        s2 = view.hi.sum(axis=-1, dtype=U64)
        for r in range(rows):
            acc0[r] += int(s0[r])
            acc1[r] += int(s1[r])
            acc2[r] += int(s2[r])
    return [(acc0[r] + (acc1[r] << 32) + (acc2[r] << 64)) & MASK128 for r in range(rows)]
