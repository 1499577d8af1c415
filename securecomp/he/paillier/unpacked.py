"""Operations of the unpacked Paillier layout: one value per ciphertext.

Every value is a fixed-point integer (see `securecomp.he.paillier.encode`) carried as a
Paillier plaintext modulo ``n`` and read back as signed. Each operation first computes the
result's scale and its bound ``|v| < 2^bound_bits`` from the operands' bounds and the bit
sizes of the public plaintext operands, refuses the operation if the bound would reach
``n/2`` (`securecomp.he.paillier.layout.check_bound`), and only then computes, with the
kernels of `securecomp.he.paillier.arith`. Nothing here decrypts.

Payloads are read-only object arrays of gmpy2 ``mpz`` in the tensor's shape, so indexing,
reshaping and transposing are numpy's own and share ciphertexts without copying them.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from securecomp.errors import ShapeMismatchError, UnsupportedOperationError
from securecomp.he.paillier.arith import Kernels
from securecomp.he.paillier.encode import max_abs_bits, operand_ints, operand_scale
from securecomp.he.paillier.keys import PaillierPublicKey
from securecomp.he.paillier.layout import (
    UNPACKED,
    broadcast_shape,
    ceil_log2,
    check_bound,
    check_scale,
    frozen,
)
from securecomp.tensor import Op, SecureTensor

if TYPE_CHECKING:
    from securecomp.tensor import Implementation

__all__ = ["Host", "build_table", "contract", "unpacked_meta"]

ObjArray = npt.NDArray[np.object_]


class Host(Protocol):
    """What the layout operations need from the backend."""

    key: PaillierPublicKey
    kernels: Kernels
    frac_bits: int

    def wrap(
        self, payload: ObjArray, shape: tuple[int, ...], layout: str, meta: dict[str, Any]
    ) -> SecureTensor: ...


def unpacked_meta(scale: int, bound_bits: int, randomized: bool = False) -> dict[str, Any]:
    """The bookkeeping of an unpacked tensor (public: travels with the ciphertexts)."""
    return {"scale": scale, "bound_bits": bound_bits, "randomized": randomized}


def _parts(t: SecureTensor) -> tuple[ObjArray, int, int]:
    meta = t.meta
    return t.payload, int(meta["scale"]), int(meta["bound_bits"])


def _out(
    host: Host, payload: ObjArray, scale: int, bound: int, randomized: bool = False
) -> SecureTensor:
    return host.wrap(
        frozen(payload), payload.shape, UNPACKED, unpacked_meta(scale, bound, randomized)
    )


def _same_layout(b: SecureTensor, what: str) -> None:
    if b.layout != UNPACKED:
        raise UnsupportedOperationError(
            f"{what}: cannot combine an unpacked Paillier tensor with a {b.layout} one; "
            "encrypt both operands with the same layout"
        )


def _lift(host: Host, payload: ObjArray, scale: int, target: int) -> ObjArray:
    """Multiply by ``2^(target - scale)`` so that both operands of a sum share a scale."""
    if target == scale:
        return payload
    return host.kernels.mul_plain(payload, 1 << (target - scale))


def _add(host: Host, a: SecureTensor, b: SecureTensor, *, subtract: bool) -> SecureTensor:
    what = "a - b" if subtract else "a + b"
    _same_layout(b, what)
    broadcast_shape(a.shape, b.shape, what)
    pa, sa, ba = _parts(a)
    pb, sb, bb = _parts(b)
    s = max(sa, sb)
    bound = check_bound(host.key.bits, max(ba + s - sa, bb + s - sb) + 1, what)
    pa, pb = _lift(host, pa, sa, s), _lift(host, pb, sb, s)
    if subtract:
        pb = host.kernels.neg(pb)
    return _out(host, host.kernels.add(pa, pb), s, bound)


def _add_plain(
    host: Host, a: SecureTensor, pt: npt.NDArray[Any], *, negate_a: bool, negate_pt: bool
) -> SecureTensor:
    what = "plaintext - a" if negate_a else ("a - plaintext" if negate_pt else "a + plaintext")
    broadcast_shape(a.shape, pt.shape, what)
    pa, sa, ba = _parts(a)
    # A float operand is encoded at the finer of the two scales, so that adding 0.5 to an
    # integer tensor is exact rather than rounded to the tensor's resolution.
    target = check_scale(max(sa, operand_scale(pt, host.frac_bits)), what)
    q = operand_ints(pt, target)
    if negate_pt:
        q = np.asarray(-q, dtype=object)
    bound = check_bound(host.key.bits, max(ba + target - sa, max_abs_bits(q)) + 1, what)
    pa = _lift(host, pa, sa, target)
    if negate_a:
        pa = host.kernels.neg(pa)
    return _out(host, host.kernels.add_plain(pa, q), target, bound)


def _neg(host: Host, a: SecureTensor) -> SecureTensor:
    pa, sa, ba = _parts(a)
    return _out(host, host.kernels.neg(pa), sa, ba)


def _mul_plain(host: Host, a: SecureTensor, pt: npt.NDArray[Any]) -> SecureTensor:
    what = "a * plaintext"
    broadcast_shape(a.shape, pt.shape, what)
    pa, sa, ba = _parts(a)
    sp = operand_scale(pt, host.frac_bits)
    ks = operand_ints(pt, sp)
    scale = check_scale(sa + sp, what)
    bound = check_bound(host.key.bits, ba + max_abs_bits(ks), what)
    return _out(host, host.kernels.mul_plain(pa, ks), scale, bound)


def contract(
    kernels: Kernels, cts: ObjArray, pts: ObjArray, *, ct_left: bool, out_shape: tuple[int, ...]
) -> ObjArray:
    """``cts @ pts`` (``ct_left``) or ``pts @ cts`` with numpy's matmul shape rules.

    Each output ciphertext is one `Kernels.lincomb` over the contracted axis.
    """
    left, right = (cts, pts) if ct_left else (pts, cts)
    l2 = left[np.newaxis, :] if left.ndim == 1 else left
    r2 = right[:, np.newaxis] if right.ndim == 1 else right
    batch = tuple(np.broadcast_shapes(l2.shape[:-2], r2.shape[:-2]))
    lb = np.broadcast_to(l2, batch + l2.shape[-2:])
    rb = np.broadcast_to(r2, batch + r2.shape[-2:])
    m, n = l2.shape[-2], r2.shape[-1]
    out = np.empty((*batch, m, n), dtype=object)
    for idx in np.ndindex(*batch):
        lm, rm = lb[idx], rb[idx]
        for i in range(m):
            for j in range(n):
                if ct_left:
                    out[(*idx, i, j)] = kernels.lincomb(lm[i, :], rm[:, j].tolist())
                else:
                    out[(*idx, i, j)] = kernels.lincomb(rm[:, j], lm[i, :].tolist())
    # The axes numpy inserts for 1-d operands have length 1: a reshape removes them.
    return out.reshape(out_shape)


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...], what: str) -> tuple[int, ...]:
    if not a or not b:
        raise ShapeMismatchError(f"{what}: matmul is not defined for 0-d operands")
    try:
        return tuple(np.matmul(np.empty(a, dtype=np.int8), np.empty(b, dtype=np.int8)).shape)
    except ValueError as exc:
        raise ShapeMismatchError(f"{what}: incompatible shapes {a} and {b} ({exc})") from None


def _matmul(host: Host, a: SecureTensor, pt: npt.NDArray[Any], *, ct_left: bool) -> SecureTensor:
    what = "a @ plaintext" if ct_left else "plaintext @ a"
    out_shape = (
        _matmul_shape(a.shape, pt.shape, what)
        if ct_left
        else _matmul_shape(pt.shape, a.shape, what)
    )
    pa, sa, ba = _parts(a)
    sp = operand_scale(pt, host.frac_bits)
    ks = operand_ints(pt, sp)
    inner = a.shape[-1] if ct_left else a.shape[0 if a.ndim == 1 else -2]
    scale = check_scale(sa + sp, what)
    bound = check_bound(host.key.bits, ba + max_abs_bits(ks) + ceil_log2(inner), what)
    payload = contract(host.kernels, pa, ks, ct_left=ct_left, out_shape=out_shape)
    return _out(host, payload, scale, bound)


def _dot(host: Host, a: SecureTensor, pt: npt.NDArray[Any]) -> SecureTensor:
    if a.ndim == 0 or pt.ndim == 0:
        return _mul_plain(host, a, pt)  # np.dot with a scalar is multiplication
    if pt.ndim > 2:
        raise UnsupportedOperationError(
            "a.dot(plaintext) with a plaintext of more than 2 dimensions sums over its "
            "second-to-last axis; express it with matmul or reshape the plaintext"
        )
    # For a plaintext of at most 2 dimensions, np.dot and np.matmul agree.
    return _matmul(host, a, pt, ct_left=True)


def _sum(host: Host, a: SecureTensor, axis: int | None = None) -> SecureTensor:
    pa, sa, ba = _parts(a)
    count = a.size if axis is None else a.shape[axis]
    bound = check_bound(host.key.bits, ba + ceil_log2(count), "a.sum(axis)")
    return _out(host, host.kernels.sum(pa, axis), sa, bound)


def _getitem(host: Host, a: SecureTensor, key: Any, result_shape: tuple[int, ...]) -> SecureTensor:
    pa, sa, ba = _parts(a)
    sel = pa[key]
    if not isinstance(sel, np.ndarray):
        one = np.empty((), dtype=object)
        one[()] = sel
        sel = one
    return _out(host, sel, sa, ba, bool(a.meta["randomized"]))


def _reshape(host: Host, a: SecureTensor, shape: tuple[int, ...]) -> SecureTensor:
    pa, sa, ba = _parts(a)
    return _out(host, pa.reshape(shape), sa, ba, bool(a.meta["randomized"]))


def _transpose(host: Host, a: SecureTensor) -> SecureTensor:
    pa, sa, ba = _parts(a)
    return _out(host, pa.T, sa, ba, bool(a.meta["randomized"]))


def build_table(host: Host) -> dict[Op, Implementation]:
    """The unpacked layout's operation table, bound to ``host``."""
    return {
        Op.ADD: partial(_add, host, subtract=False),
        Op.SUB: partial(_add, host, subtract=True),
        Op.NEG: partial(_neg, host),
        Op.ADD_PLAIN: partial(_add_plain, host, negate_a=False, negate_pt=False),
        Op.SUB_PLAIN: partial(_add_plain, host, negate_a=False, negate_pt=True),
        Op.RSUB_PLAIN: partial(_add_plain, host, negate_a=True, negate_pt=False),
        Op.MUL_PLAIN: partial(_mul_plain, host),
        Op.MATMUL_PLAIN: partial(_matmul, host, ct_left=True),
        Op.RMATMUL_PLAIN: partial(_matmul, host, ct_left=False),
        Op.DOT_PLAIN: partial(_dot, host),
        Op.SUM: partial(_sum, host),
        Op.GETITEM: partial(_getitem, host),
        Op.RESHAPE: partial(_reshape, host),
        Op.TRANSPOSE: partial(_transpose, host),
    }
