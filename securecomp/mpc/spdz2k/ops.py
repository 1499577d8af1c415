"""Operation table of the MAC-mode backend, with a bound tracker for Z_2^k.

Every operation is authenticated: local ones act on value *and* MAC shares (and the
public offset), interactive ones run the authenticated protocols of
`securecomp.mpc.spdz2k.protocols` and `securecomp.mpc.spdz2k.comparison`. Whatever is not
in the table raises `UnsupportedOperationError` (for instance the nonlinear functions of
`securecomp.mpc.nonlinear`, written for the semi-honest backend).

Bounds are as in `securecomp.mpc.bounds`, for ``k`` meaningful bits: values must stay below
``2^(k-1)`` in magnitude, truncation needs ``2^(k-2)`` and comparison ``|x - y| < 2^(k-1)``.
A violated precondition raises `EncodingOverflowError` before any communication, on every
party alike (bounds are public).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import fixed_point, ring_matmul
from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError
from securecomp.mpc.arith import integral
from securecomp.mpc.material import Bilinear
from securecomp.mpc.spdz2k import authshare as A
from securecomp.mpc.spdz2k.comparison import ltz
from securecomp.mpc.spdz2k.protocols import beaver, mul_truncate, truncate
from securecomp.tensor import SecureTensor

if TYPE_CHECKING:
    from securecomp.mpc.spdz2k.backend import ActiveSharesBackend

__all__ = ["ActiveOps", "check_representable", "check_truncatable", "ring_bound"]

U64 = np.uint64
_FIX = (
    "declare tighter input bounds (share(..., bound=B)), scale the data down, or use fewer "
    "fractional bits"
)


def ring_bound(bound: float, frac_bits: int, k: int) -> int:
    """``ceil(bound * 2^f)`` for a real bound, checked representable in Z_2^k."""
    b = float(bound)
    if not b > 0 or math.isinf(b) or math.isnan(b):
        raise ParameterError(f"a bound must be a positive finite number, got {bound!r}")
    return check_representable(math.ceil(math.ldexp(b, frac_bits)), f"bound {b:g}", frac_bits, k)


def check_representable(r: int, what: str, frac_bits: int, k: int) -> int:
    """``r`` if ``r < 2^(k-1)``; else `EncodingOverflowError`."""
    if r >= 1 << (k - 1):
        raise EncodingOverflowError(
            f"{what}: the result may reach 2^{math.log2(r):.1f} ring units, beyond the "
            f"2^{k - 1} of Z_2^{k} at {frac_bits} fractional bits, and would wrap. To fix: {_FIX}."
        )
    return r


def check_truncatable(r: int, what: str, frac_bits: int, k: int) -> int:
    """``r`` if ``r < 2^(k-2)`` (truncation precondition); else `EncodingOverflowError`."""
    if r >= 1 << (k - 2):
        raise EncodingOverflowError(
            f"{what}: the product before truncation may reach 2^{math.log2(r):.1f} ring units; "
            f"truncation in Z_2^{k} needs less than 2^{k - 2}. To fix: {_FIX}."
        )
    return r


def _shape(fn: Callable[..., Any], what: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(fn(*shapes))
    except ValueError as exc:
        raise ShapeMismatchError(f"{what}: incompatible shapes {shapes} ({exc})") from exc


def _abs_sum(values: npt.NDArray[Any], axis: int) -> float:
    """An upper bound on ``max(sum(|values|, axis))`` with float slack."""
    if values.size == 0:
        return 0.0
    mags = np.abs(values.astype(np.float64))
    total = float(mags.sum(axis=axis).max()) if values.ndim else float(mags)
    k = values.shape[axis] if values.ndim else 1
    return total * (1.0 + k * 2.0**-52)


class ActiveOps:
    """The operation implementations bound to one `ActiveSharesBackend`."""

    def __init__(self, backend: ActiveSharesBackend) -> None:
        self._b = backend
        self._s = backend.session
        self._ring = self._s.params.ring
        self._k = self._s.params.k

    @property
    def _f(self) -> int:
        return self._s.frac_bits

    def _wrap(self, x: A.AuthShare, r: int) -> SecureTensor:
        return self._b.wrap(x, r)

    def _repr(self, r: int, what: str) -> int:
        return check_representable(r, what, self._f, self._k)

    def _encode(self, p: npt.NDArray[Any], shift: int | None = None) -> tuple[Any, int]:
        """Public reals as sign-extended uint64 ring values and their largest magnitude."""
        f = self._f if shift is None else shift
        enc = fixed_point(f, self._k).encode(p.astype(np.float64, copy=False))
        signed = enc.view(np.int64) if self._k == 64 else enc.view(np.int32).astype(np.int64)
        mag = max(abs(int(signed.min())), abs(int(signed.max()))) if signed.size else 0
        return signed.view(U64), mag

    def _truncated(self, z: A.AuthShare, r_pre: int, what: str, shift: int | None = None) -> Any:
        k = self._f if shift is None else shift
        check_truncatable(r_pre, what, self._f, self._k)
        return self._wrap(truncate(self._s, z, k), (r_pre >> k) + 1)

    def _plain_shift(self, r: int, magnitude: float) -> int:
        """Fractional bits for a public real factor: up to ``2f`` when headroom allows."""
        f = self._f
        if magnitude <= 0:
            return f
        for shift in range(min(2 * f, self._k - 3), f, -1):
            if r * (math.ceil(math.ldexp(magnitude, shift)) + 1) < 1 << (self._k - 2):
                return shift
        return f

    # --- linear, local ---------------------------------------------------------------------

    def add(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        _shape(np.broadcast_shapes, "a + b", a.shape, b.shape)
        r = self._repr(a.meta["bound"] + b.meta["bound"], "a + b")
        return self._wrap(A.add(self._ring, a.payload, b.payload), r)

    def sub(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        _shape(np.broadcast_shapes, "a - b", a.shape, b.shape)
        r = self._repr(a.meta["bound"] + b.meta["bound"], "a - b")
        return self._wrap(A.sub(self._ring, a.payload, b.payload), r)

    def neg(self, a: SecureTensor) -> SecureTensor:
        return self._wrap(A.neg(self._ring, a.payload), a.meta["bound"])

    def add_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        _shape(np.broadcast_shapes, "a + plaintext", a.shape, p.shape)
        enc, rp = self._encode(p)
        r = self._repr(a.meta["bound"] + rp, "a + plaintext")
        return self._wrap(A.add_public(self._ring, a.payload, enc), r)

    def sub_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        _shape(np.broadcast_shapes, "a - plaintext", a.shape, p.shape)
        enc, rp = self._encode(p)
        r = self._repr(a.meta["bound"] + rp, "a - plaintext")
        return self._wrap(A.add_public(self._ring, a.payload, np.negative(enc)), r)

    def rsub_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        _shape(np.broadcast_shapes, "plaintext - a", a.shape, p.shape)
        enc, rp = self._encode(p)
        r = self._repr(a.meta["bound"] + rp, "plaintext - a")
        return self._wrap(A.add_public(self._ring, A.neg(self._ring, a.payload), enc), r)

    def total(self, a: SecureTensor, axis: int | None = None) -> SecureTensor:
        count = a.size if axis is None else a.shape[axis]
        r = self._repr(a.meta["bound"] * max(count, 1), "sum")
        return self._wrap(A.total(self._ring, a.payload, axis), r)

    def getitem(self, a: SecureTensor, key: Any, result_shape: tuple[int, ...]) -> SecureTensor:
        return self._wrap(A.getitem(self._ring, a.payload, key, result_shape), a.meta["bound"])

    def reshape(self, a: SecureTensor, shape: tuple[int, ...]) -> SecureTensor:
        return self._wrap(A.reshape(self._ring, a.payload, shape), a.meta["bound"])

    def transpose(self, a: SecureTensor) -> SecureTensor:
        return self._wrap(A.transpose(self._ring, a.payload), a.meta["bound"])

    # --- products --------------------------------------------------------------------------

    def mul(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        Bilinear.MUL.result_shape(a.shape, b.shape)
        r_pre = a.meta["bound"] * b.meta["bound"]
        check_truncatable(r_pre, "a * b", self._f, self._k)
        z = mul_truncate(self._s, a.payload, b.payload, self._f)
        return self._wrap(z, (r_pre >> self._f) + 1)

    def mul_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        _shape(np.broadcast_shapes, "a * plaintext", a.shape, p.shape)
        ints = integral(p)
        if ints is not None:
            rp = int(np.max(np.abs(ints))) if ints.size else 0
            r = self._repr(a.meta["bound"] * rp, "a * integer")
            return self._wrap(A.mul_public(self._ring, a.payload, ints.view(U64)), r)
        mag = float(np.max(np.abs(p))) if p.size else 0.0
        shift = self._plain_shift(a.meta["bound"], mag)
        enc, rp = self._encode(p, shift)
        r_pre = a.meta["bound"] * rp
        z = A.mul_public(self._ring, a.payload, enc)
        return self._truncated(z, r_pre, "a * plaintext", shift)

    def matmul(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        Bilinear.MATMUL.result_shape(a.shape, b.shape)
        r_pre = max(a.shape[-1], 1) * a.meta["bound"] * b.meta["bound"]
        check_truncatable(r_pre, "a @ b", self._f, self._k)
        z = beaver(self._s, Bilinear.MATMUL, a.payload, b.payload)
        return self._truncated(z, r_pre, "a @ b")

    def _matmul_plain(self, a: SecureTensor, w: npt.NDArray[Any], *, right: bool) -> SecureTensor:
        what = "a @ plaintext" if right else "plaintext @ a"
        if w.ndim == 0 or w.ndim > 2 or a.ndim > 2:
            raise ShapeMismatchError(f"{what}: MAC mode multiplies 1-d or 2-d operands")
        if right:
            Bilinear.MATMUL.result_shape(a.shape, w.shape)
        else:
            Bilinear.MATMUL.result_shape(w.shape, a.shape)
        axis = (-2 if w.ndim > 1 else 0) if right else -1
        ints = integral(w)
        shift = 0
        if ints is not None:
            plain, r_w = ints.view(U64), math.ceil(_abs_sum(ints, axis)) + 1
        else:
            shift = self._plain_shift(a.meta["bound"], _abs_sum(w, axis))
            plain, _ = self._encode(w, shift)
            r_w = math.ceil(_abs_sum(plain.view(np.int64), axis)) + 1
        r_pre = a.meta["bound"] * r_w
        x = a.payload
        ring = self._ring
        parts = [
            ring.matmul_public_right(x.data[i], plain) if right
            else ring.matmul_public_left(plain, x.data[i])
            for i in range(2)
        ]
        offset = None
        if x.offset is not None:
            offset = ring_matmul(x.offset, plain, 64) if right else ring_matmul(plain, x.offset, 64)
        z = A.auth_share(np.stack(parts), offset)
        if ints is not None:
            return self._wrap(z, self._repr(r_pre, what))
        return self._truncated(z, r_pre, what, shift)

    def matmul_plain(self, a: SecureTensor, w: npt.NDArray[Any]) -> SecureTensor:
        return self._matmul_plain(a, w, right=True)

    def rmatmul_plain(self, a: SecureTensor, w: npt.NDArray[Any]) -> SecureTensor:
        return self._matmul_plain(a, w, right=False)

    def dot(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        return self.matmul(a, b)

    def dot_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        return self.matmul_plain(a, p)

    def polyval(self, a: SecureTensor, coeffs: npt.NDArray[np.float64]) -> SecureTensor:
        """Horner's rule: ``c_d``, then ``acc * x + c_j`` for j = d-1 .. 0."""
        if coeffs.size == 1:
            zero = self.mul_plain(a, np.zeros(1, dtype=np.int64))
            return self.add_plain(zero, np.full(a.shape, coeffs[0]))
        acc = self.add_plain(self.mul_plain(a, np.asarray(coeffs[-1])), np.asarray(coeffs[-2]))
        for c in coeffs[-3::-1]:
            acc = self.add_plain(self.mul(acc, a), np.asarray(c))
        return acc

    # --- comparisons -----------------------------------------------------------------------

    def _sign_bit(self, z: SecureTensor) -> SecureTensor:
        """``1.0`` where ``z < 0``, else ``0.0`` (fixed point)."""
        bit = ltz(self._s, z.payload)
        one = np.asarray(U64(1 << self._f))
        return self._wrap(A.mul_public(self._ring, bit, one), 1 << self._f)

    def less(self, a: SecureTensor, b: SecureTensor) -> SecureTensor:
        return self._sign_bit(self.sub(a, b))

    def less_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        return self._sign_bit(self.sub_plain(a, p))

    def greater_plain(self, a: SecureTensor, p: npt.NDArray[Any]) -> SecureTensor:
        return self._sign_bit(self.rsub_plain(a, p))
