"""Implementations of the ``shares`` backend's operation table, with the bound tracker.

Each method takes this party's tensors (and public plaintext operands, identical on every
party), derives the result's bound from the operands' bounds (`securecomp.mpc.bounds`),
refuses the operation before any communication when a precondition cannot be
guaranteed, and otherwise runs the local computation or protocol. Public constants are
added by party 0 only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import fixed_point, ring_matmul, ring_sum
from securecomp.errors import ShapeMismatchError, UnsupportedOperationError
from securecomp.mpc import bounds
from securecomp.mpc.beaver import beaver
from securecomp.mpc.material import Bilinear
from securecomp.mpc.session import Truncation
from securecomp.mpc.truncation import truncate
from securecomp.tensor import SecureTensor

if TYPE_CHECKING:
    from securecomp.mpc.backend import SharesBackend

__all__ = ["Ops", "integral"]


def integral(p: npt.NDArray[Any]) -> npt.NDArray[np.int64] | None:
    """``p`` as int64 if every value is an integer of magnitude below 2^62, else None.

    Products with public integers need no truncation (and so no communication).
    """
    if p.dtype.kind == "b" or p.size == 0:
        return p.astype(np.int64)
    mags = np.abs(p.astype(np.float64))
    if float(mags.max()) >= 2.0**62:
        return None
    if p.dtype.kind in "iu":
        return p.astype(np.int64)
    if np.all(np.mod(p, 1.0) == 0.0):
        return p.astype(np.int64)
    return None


def _shape(fn: Callable[..., Any], what: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(fn(*shapes))
    except ValueError as exc:
        raise ShapeMismatchError(f"{what}: incompatible shapes {shapes} ({exc})") from exc


def _abs_sum(values: npt.NDArray[Any], axis: int) -> float:
    """An upper bound on ``max(sum(|values|, axis))`` (float sum with slack)."""
    if values.size == 0:
        return 0.0
    mags = np.abs(values.astype(np.float64))
    total = float(mags.sum(axis=axis).max()) if values.ndim else float(mags)
    k = values.shape[axis] if values.ndim else 1
    # float64 summation of k terms errs by at most k * 2^-53 relative.
    return total * (1.0 + k * 2.0**-52)


def _abs_sum_bound(signed: npt.NDArray[Any], axis: int) -> int:
    """An integer upper bound on ``max(sum(|signed|, axis))`` for integer arrays."""
    return math.ceil(_abs_sum(signed, axis)) + 1


class Ops:
    """The operation implementations bound to one `SharesBackend`."""

    def __init__(self, backend: SharesBackend) -> None:
        self._b = backend
        self._s = backend.session

    # --- helpers ---------------------------------------------------------------------------

    @property
    def _f(self) -> int:
        return self._s.frac_bits

    def _wrap(self, share: npt.NDArray[Any], r: int) -> SecureTensor:
        return self._b.wrap(share, r)

    def _repr(self, r: int, what: str) -> int:
        return bounds.check_representable(r, what, self._f)

    def _truncated(
        self, z: npt.NDArray[np.uint64], r_pre: int, what: str, shift: int | None = None
    ) -> SecureTensor:
        k = self._f if shift is None else shift
        bounds.check_truncatable(r_pre, what, self._f)
        return self._wrap(truncate(self._s, z, k), bounds.truncated(r_pre, k))

    def _plain_shift(self, r: int, magnitude: float) -> int:
        """Fractional bits for a public real factor: ``f`` plus as many extra bits (up to
        ``f``) as the truncation headroom allows, so that small coefficients keep their
        precision (a coefficient of 0.0016 at 16 bits would carry a 0.5% error).

        Only with dealer truncation: the local protocol's failure probability grows with
        the magnitude being truncated, so it keeps ``f``.
        """
        f = self._f
        if self._s.truncation is not Truncation.DEALER or magnitude <= 0:
            return f
        for shift in range(min(2 * f, 61), f, -1):
            if r * (math.ceil(math.ldexp(magnitude, shift)) + 1) < bounds.TRUNCATABLE:
                return shift
        return f

    def _plain(self, p: npt.NDArray[Any]) -> tuple[npt.NDArray[np.uint64], int]:
        enc = self._s.encoding.encode(p.astype(np.float64, copy=False))
        return enc, bounds.plain_ring_max(enc)

    def _public_add(
        self, share: npt.NDArray[Any], enc: npt.NDArray[np.uint64], shape: tuple[int, ...]
    ) -> npt.NDArray[np.uint64]:
        """``share + enc`` on party 0, ``share`` broadcast to ``shape`` elsewhere."""
        if self._s.is_first:
            return np.add(share, enc)
        return np.array(np.broadcast_to(share, shape), dtype=np.uint64)

    # --- linear, local ---------------------------------------------------------------------

    def add(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        _shape(np.broadcast_shapes, "a + b", a.shape, b.shape)
        r = self._repr(a.meta["bound"] + b.meta["bound"], "a + b")
        return self._wrap(np.add(a.payload, b.payload), r)

    def sub(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        _shape(np.broadcast_shapes, "a - b", a.shape, b.shape)
        r = self._repr(a.meta["bound"] + b.meta["bound"], "a - b")
        return self._wrap(np.subtract(a.payload, b.payload), r)

    def neg(self, a: SecureTensor) -> SecureTensor:
        return self._wrap(np.negative(a.payload), a.meta["bound"])

    def add_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        shape = _shape(np.broadcast_shapes, "a + plaintext", a.shape, p.shape)
        enc, rp = self._plain(p)
        r = self._repr(a.meta["bound"] + rp, "a + plaintext")
        return self._wrap(self._public_add(a.payload, enc, shape), r)

    def sub_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        shape = _shape(np.broadcast_shapes, "a - plaintext", a.shape, p.shape)
        enc, rp = self._plain(p)
        r = self._repr(a.meta["bound"] + rp, "a - plaintext")
        return self._wrap(self._public_add(a.payload, np.negative(enc), shape), r)

    def rsub_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        shape = _shape(np.broadcast_shapes, "plaintext - a", a.shape, p.shape)
        enc, rp = self._plain(p)
        r = self._repr(a.meta["bound"] + rp, "plaintext - a")
        return self._wrap(self._public_add(np.negative(a.payload), enc, shape), r)

    def total(self, a: SecureTensor, axis: int | None = None) -> SecureTensor:
        count = a.size if axis is None else a.shape[axis]
        r = self._repr(a.meta["bound"] * max(count, 1), "sum")
        return self._wrap(ring_sum(a.payload, axis=axis), r)

    def getitem(self, a: SecureTensor, key: Any, result_shape: tuple[int, ...]) -> SecureTensor:
        return self._wrap(np.array(a.payload[key], dtype=np.uint64), a.meta["bound"])

    def reshape(self, a: SecureTensor, shape: tuple[int, ...]) -> SecureTensor:
        return self._wrap(a.payload.reshape(shape), a.meta["bound"])

    def transpose(self, a: SecureTensor) -> SecureTensor:
        return self._wrap(np.asarray(a.payload.T, order="C"), a.meta["bound"])

    # --- products --------------------------------------------------------------------------

    def mul(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        Bilinear.MUL.result_shape(a.shape, b.shape)
        r_pre = a.meta["bound"] * b.meta["bound"]
        bounds.check_truncatable(r_pre, "a * b", self._f)
        z = beaver(self._s, Bilinear.MUL, a.payload, b.payload)
        return self._truncated(z, r_pre, "a * b")

    def mul_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        _shape(np.broadcast_shapes, "a * plaintext", a.shape, p.shape)
        ints = integral(p)
        if ints is not None:
            rp = int(np.max(np.abs(ints))) if ints.size else 0
            r = self._repr(a.meta["bound"] * rp, "a * integer")
            return self._wrap(np.multiply(a.payload, ints.view(np.uint64)), r)
        shift = self._plain_shift(a.meta["bound"], float(np.max(np.abs(p))) if p.size else 0.0)
        enc = fixed_point(shift, 64).encode(p.astype(np.float64, copy=False))
        r_pre = a.meta["bound"] * bounds.plain_ring_max(enc)
        return self._truncated(np.multiply(a.payload, enc), r_pre, "a * plaintext", shift)

    def matmul(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        Bilinear.MATMUL.result_shape(a.shape, b.shape)
        inner = a.shape[-1]
        r_pre = max(inner, 1) * a.meta["bound"] * b.meta["bound"]
        bounds.check_truncatable(r_pre, "a @ b", self._f)
        z = beaver(self._s, Bilinear.MATMUL, a.payload, b.payload)
        return self._truncated(z, r_pre, "a @ b")

    def _matmul_plain(self, a: SecureTensor, w: npt.NDArray[Any], *, right: bool) -> SecureTensor:
        what = "a @ plaintext" if right else "plaintext @ a"
        if w.ndim == 0:
            raise ShapeMismatchError(f"{what}: matmul needs operands with at least one dimension")
        if right:
            Bilinear.MATMUL.result_shape(a.shape, w.shape)
        else:
            Bilinear.MATMUL.result_shape(w.shape, a.shape)
        # The contraction axis of w: rows when on the right, columns when on the left.
        axis = (-2 if w.ndim > 1 else 0) if right else -1
        ints = integral(w)
        shift = 0
        if ints is not None:
            signed, plain = ints, ints.view(np.uint64)
        else:
            shift = self._plain_shift(a.meta["bound"], _abs_sum(w, axis))
            plain = fixed_point(shift, 64).encode(w.astype(np.float64, copy=False))
            signed = plain.view(np.int64)
        r_pre = a.meta["bound"] * _abs_sum_bound(signed, axis)
        z = ring_matmul(a.payload, plain, 64) if right else ring_matmul(plain, a.payload, 64)
        if ints is not None:
            return self._wrap(z, self._repr(r_pre, what))
        return self._truncated(z, r_pre, what, shift)

    def matmul_plain(self, a: SecureTensor, w: npt.NDArray[Any]) -> SecureTensor:
        return self._matmul_plain(a, w, right=True)

    def rmatmul_plain(self, a: SecureTensor, w: npt.NDArray[Any]) -> SecureTensor:
        return self._matmul_plain(a, w, right=False)

    def dot(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        if a.ndim > 2 or b.ndim > 2:
            raise UnsupportedOperationError(
                "shares backend: dot of arrays above 2-d differs from matmul; use a @ b"
            )
        return self.matmul(a, b)

    def dot_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        if a.ndim > 2 or p.ndim > 2:
            raise UnsupportedOperationError(
                "shares backend: dot of arrays above 2-d differs from matmul; use a @ b"
            )
        return self.matmul_plain(a, p)

    def polyval(self, a: SecureTensor, coeffs: npt.NDArray[np.float64]) -> SecureTensor:
        """Horner's rule: ``c_d``, then ``acc * x + c_k`` for k = d-1 .. 0."""
        if coeffs.size == 1:
            return self._b.constant(np.full(a.shape, coeffs[0]))
        acc = self.add_plain(self.mul_plain(a, np.asarray(coeffs[-1])), np.asarray(coeffs[-2]))
        for c in coeffs[-3::-1]:
            acc = self.add_plain(self.mul(acc, a), np.asarray(c))
        return acc

    # --- comparisons -----------------------------------------------------------------------

    def _sign_bit(self, z: SecureTensor) -> SecureTensor:
        """``1.0`` where ``z < 0``, else ``0.0`` (fixed point)."""
        from securecomp.mpc.comparison import ltz

        bit = ltz(self._s, z.payload)  # additive shares of the integer 0/1
        bit <<= np.uint64(self._f)
        return self._wrap(bit, 1 << self._f)

    def less(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        return self._sign_bit(self.sub(a, b))

    def less_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        return self._sign_bit(self.sub_plain(a, p))

    def greater_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        return self._sign_bit(self.rsub_plain(a, p))
