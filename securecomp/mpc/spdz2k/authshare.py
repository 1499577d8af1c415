"""Authenticated shares ``[x]`` of SPDZ2k and their local (linear) operations.

A party's authenticated share of ``x`` in Z_2^k (Cramer et al., CRYPTO 2018, section 3)
is a pair ``(x_i, m_i)`` of elements of Z_2^(k+s) and a **public offset** ``o``:

* the shared part is authenticated: ``sum_i m_i = alpha * sum_i x_i (mod 2^(k+s))``,
* the value is ``x = sum_i x_i + o (mod 2^k)``.

Keeping public constants in ``o`` instead of adding them to party 0's share (and
``alpha_i c`` to every MAC share) folds the MAC key out of the online phase: adding a
public value, the public term ``d e`` of a Beaver product, the opened difference of an
input and the offsets of truncation and comparison outputs all cost one uint64 operation
and no multiplication by a key share. Offsets are public, so every party must hold the
same ones: they derive only from public values that are either opened (and MAC-checked)
or broadcast (and compared by hash at the next check).

Layout: ``data`` has shape ``(2, L, *shape)``: ``data[0]`` the value share, ``data[1]`` the
MAC share, each a wide array of ``L`` uint64 limbs (`securecomp.mpc.spdz2k.ring`). Both
are read-only after construction (value semantics); ``offset`` is None (zero) or a
read-only uint64 array of ``shape``, read modulo 2^k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import ShapeMismatchError
from securecomp.mpc.spdz2k.ring import Ring

__all__ = ["AuthShare", "auth_share"]

U64 = np.uint64


def _frozen(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    arr = np.ascontiguousarray(a, dtype=U64).view()
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class AuthShare:
    """One party's authenticated share of an array (see the module docstring).

    Invariant: over all parties, ``sum data[1] = alpha * sum data[0]`` modulo 2^(k+s), and
    the shared value is ``(sum data[0] + offset) mod 2^k``.
    """

    data: npt.NDArray[np.uint64]
    offset: npt.NDArray[np.uint64] | None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[2:])

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def value(self) -> npt.NDArray[np.uint64]:
        """The value share (a wide array)."""
        return self.data[0]

    @property
    def mac(self) -> npt.NDArray[np.uint64]:
        """The MAC share (a wide array)."""
        return self.data[1]

    @property
    def wide(self) -> npt.NDArray[np.uint64]:
        """Value and MAC as one wide array of shape ``(L, 2, *shape)`` (a view)."""
        return self.data.swapaxes(0, 1)

    def offset_or_zero(self) -> npt.NDArray[np.uint64]:
        """The offset as an array of ``shape`` (zeros when absent)."""
        if self.offset is None:
            return np.zeros(self.shape, dtype=U64)
        return self.offset

    def __repr__(self) -> str:
        return f"AuthShare(shape={self.shape})"


def auth_share(data: npt.NDArray[Any], offset: npt.ArrayLike | None = None) -> AuthShare:
    """Freeze ``data`` (and the offset, broadcast to the shape) into an `AuthShare`."""
    shape = tuple(data.shape[2:])
    off = None
    if offset is not None:
        o = np.asarray(offset, dtype=U64)
        if o.shape != shape:
            try:
                o = np.broadcast_to(o, shape)
            except ValueError as exc:
                raise ShapeMismatchError(f"offset of shape {o.shape} for {shape}") from exc
        off = _frozen(o)
    return AuthShare(_frozen(data), off)


def empty(ring: Ring, shape: tuple[int, ...]) -> npt.NDArray[np.uint64]:
    """A fresh ``(2, L, *shape)`` buffer."""
    return np.empty((2, ring.limbs, *shape), dtype=U64)


def _offsets(
    a: npt.NDArray[np.uint64] | None, b: npt.NDArray[np.uint64] | None, fn: Any
) -> npt.NDArray[np.uint64] | None:
    if a is None and b is None:
        return None
    return np.asarray(fn(a if a is not None else U64(0), b if b is not None else U64(0)))


def aligned(x: AuthShare, ndim: int) -> npt.NDArray[np.uint64]:
    """The wide view ``(L, 2, 1, ..., *shape)`` of ``x`` with ``ndim`` trailing axes, so that
    numpy broadcasting aligns the shapes and never the limb or value/MAC axes."""
    extra = ndim - len(x.shape)
    data = x.data if extra <= 0 else x.data.reshape((*x.data.shape[:2], *(1,) * extra, *x.shape))
    return data.swapaxes(0, 1)


def broadcast_data(
    ring: Ring, x: AuthShare, shape: tuple[int, ...]
) -> npt.NDArray[np.uint64]:
    """``x.data`` broadcast to a larger ``shape`` (a read-only view)."""
    return np.broadcast_to(x.data, (2, ring.limbs, *shape))


def add(ring: Ring, x: AuthShare, y: AuthShare) -> AuthShare:
    """``[x + y]``: shares, MACs and offsets add (no interaction)."""
    shape = tuple(np.broadcast_shapes(x.shape, y.shape))
    out = empty(ring, shape)
    ring.add(aligned(x, len(shape)), aligned(y, len(shape)), out=out.swapaxes(0, 1))
    return auth_share(out, _offsets(x.offset, y.offset, np.add))


def sub(ring: Ring, x: AuthShare, y: AuthShare) -> AuthShare:
    """``[x - y]``."""
    shape = tuple(np.broadcast_shapes(x.shape, y.shape))
    out = empty(ring, shape)
    ring.sub(aligned(x, len(shape)), aligned(y, len(shape)), out=out.swapaxes(0, 1))
    return auth_share(out, _offsets(x.offset, y.offset, np.subtract))


def neg(ring: Ring, x: AuthShare) -> AuthShare:
    """``[-x]``."""
    out = empty(ring, x.shape)
    ring.neg(x.wide, out=out.swapaxes(0, 1))
    return auth_share(out, None if x.offset is None else np.negative(x.offset))


def add_public(ring: Ring, x: AuthShare, c: npt.NDArray[np.uint64]) -> AuthShare:
    """``[x + c]`` for a public ring value ``c``: only the offset changes."""
    shape = tuple(np.broadcast_shapes(x.shape, c.shape))
    data = x.data if shape == x.shape else np.array(broadcast_data(ring, x, shape))
    return auth_share(data, np.add(x.offset_or_zero(), c, dtype=U64))


def mul_public(ring: Ring, x: AuthShare, p: npt.NDArray[np.uint64]) -> AuthShare:
    """``[p x]`` for a public integer ``p`` (uint64, two's complement for negatives)."""
    shape = tuple(np.broadcast_shapes(x.shape, p.shape))
    out = empty(ring, shape)
    ring.lincomb([p], [aligned(x, len(shape))], out=out.swapaxes(0, 1))
    return auth_share(out, None if x.offset is None else np.multiply(x.offset, p))


def select(
    ring: Ring, mask: npt.NDArray[np.bool_], if_true: AuthShare, if_false: AuthShare
) -> AuthShare:
    """Elementwise choice by a **public** mask (the same on every party)."""
    out = np.array(if_false.data)
    np.copyto(out, if_true.data, where=mask)
    off_t, off_f = if_true.offset, if_false.offset
    offset = None
    if off_t is not None or off_f is not None:
        offset = np.where(mask, if_true.offset_or_zero(), if_false.offset_or_zero())
    return auth_share(out, offset)


def getitem(ring: Ring, x: AuthShare, key: Any, shape: tuple[int, ...]) -> AuthShare:
    """``[x[key]]`` (numpy indexing applied to every part)."""
    out = empty(ring, shape)
    for i in range(2):
        for limb in range(ring.limbs):
            out[i, limb] = x.data[i, limb][key]
    return auth_share(out, None if x.offset is None else np.array(x.offset[key]))


def reshape(ring: Ring, x: AuthShare, shape: tuple[int, ...]) -> AuthShare:
    """``[x.reshape(shape)]``."""
    data = x.data.reshape((2, ring.limbs, *shape))
    return auth_share(data, None if x.offset is None else x.offset.reshape(shape))


def transpose(ring: Ring, x: AuthShare) -> AuthShare:
    """``[x.T]``."""
    axes = (0, 1, *range(x.data.ndim - 1, 1, -1))
    data = np.ascontiguousarray(x.data.transpose(axes))
    return auth_share(data, None if x.offset is None else np.ascontiguousarray(x.offset.T))


def total(ring: Ring, x: AuthShare, axis: int | None) -> AuthShare:
    """``[x.sum(axis)]`` (modulo the ring)."""
    parts = [ring.sum(x.data[i], axis) for i in range(2)]
    data = np.stack(parts)
    offset = None if x.offset is None else np.sum(x.offset, axis=axis, dtype=U64)
    return auth_share(data, offset)


def stack(ring: Ring, parts: list[AuthShare]) -> AuthShare:
    """``[np.stack(parts)]`` along a new first axis of the shape."""
    data = np.stack([p.data for p in parts], axis=2)
    if all(p.offset is None for p in parts):
        return auth_share(data, None)
    return auth_share(data, np.stack([p.offset_or_zero() for p in parts]))
