"""Elementwise CKKS operations: ``+ - *`` with ciphertext or plaintext operands, negation.

Operands of the same layout and shape combine ciphertext by ciphertext. Broadcasting:
``element`` tensors follow numpy's rules (index maps, free); a 0-d ``element`` tensor (a
sum, a dot product) combines with a slot-layout tensor after replicating its value across
the slots (one level, rotations: `Kernel.replicate`). Other layout mixes are refused with
advice. Plaintext operands broadcast to the encrypted shape (never enlarging it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import (
    EncodingOverflowError,
    ShapeMismatchError,
    UnsupportedOperationError,
)
from securecomp.he.ckks.kernels import SMALL_INT, Ct, Kernel, Operand
from securecomp.he.ckks.layouts import (
    ELEMENT,
    SLOT_LAYOUTS,
    base_dims,
    broadcast_to_shape,
    chunk_sizes,
    element_operands,
    slot_operands,
)
from securecomp.he.ckks.payload import Wrapper, combine_gains, payload_of
from securecomp.tensor import SecureTensor

__all__ = [
    "add",
    "add_plain",
    "mul",
    "mul_plain",
    "neg",
    "plain_operands",
    "rsub_plain",
    "sub",
    "sub_plain",
]

# Binary kernel on two ciphertexts with their levels: (a, la, b, lb) -> result.
_Pair = Callable[[Kernel, Ct, int, Ct, int], Ct]


def plain_operands(t: SecureTensor, p: NDArray[Any], slots: int, what: str) -> list[Operand]:
    """The plaintext operand of each ciphertext of ``t`` (payload order)."""
    if t.layout == ELEMENT:
        return list(element_operands(t.shape, p, what))
    return slot_operands(t.layout, t.shape, p, slots, what)


def _check_addend(kernel: Kernel, p: NDArray[Any], what: str) -> None:
    if p.size and float(np.max(np.abs(p))) >= kernel.capacity:
        raise EncodingOverflowError(
            f"{what}: a plaintext value of magnitude {float(np.max(np.abs(p))):.3g} exceeds "
            f"{kernel.capacity:.3g}, the largest the chain's first prime decrypts at scale "
            f"2^{kernel.scale_bits}; scale the data down or use a larger first prime"
        )


# --- ciphertext (+|-|*) ciphertext ----------------------------------------------------------


def _add_pair(k: Kernel, a: Ct, la: int, b: Ct, lb: int) -> Ct:
    return k.add(a, la, b, lb)


def _sub_pair(k: Kernel, a: Ct, la: int, b: Ct, lb: int) -> Ct:
    return k.sub(a, la, b, lb)


def _mul_pair(k: Kernel, a: Ct, la: int, b: Ct, lb: int) -> Ct:
    return k.mul(a, la, b, lb)


def _combine(
    be: Wrapper, a: SecureTensor, b: SecureTensor, pair: _Pair, product: bool, what: str
) -> SecureTensor:
    k = be.kernel
    pa, pb = payload_of(a), payload_of(b)
    if a.layout == b.layout and a.shape == b.shape:
        la, lb = pa.level, pb.level
        top = max(la, lb)
        if product:
            level = k.next_level(top, what)
            gain = pa.gain * pb.gain * k.factor(top)
        else:
            level, gain = top, combine_gains(pa.gain, pb.gain)
        cts = tuple(pair(k, x, la, y, lb) for x, y in zip(pa.cts, pb.cts, strict=True))
        return be.wrap(cts, a.shape, a.layout, level, gain)
    if a.layout == ELEMENT and b.layout == ELEMENT:
        return _element_broadcast(be, a, b, pair, product, what)
    if b.layout == ELEMENT and b.shape == () and a.layout in SLOT_LAYOUTS:
        return _scalar_broadcast(be, a, b, pair, product, what, scalar_left=False)
    if a.layout == ELEMENT and a.shape == () and b.layout in SLOT_LAYOUTS:
        return _scalar_broadcast(be, b, a, pair, product, what, scalar_left=True)
    if a.shape != b.shape:
        raise ShapeMismatchError(
            f"{what}: encrypted shapes {a.shape} ({a.layout}) and {b.shape} ({b.layout}) do "
            "not combine; CKKS broadcasts only element tensors and 0-d sums"
        )
    raise UnsupportedOperationError(
        f"ckks backend cannot compute {what} between layouts {a.layout!r} and {b.layout!r} "
        "(their values sit in different slots); encrypt both with the same layout"
    )


def _element_broadcast(
    be: Wrapper, a: SecureTensor, b: SecureTensor, pair: _Pair, product: bool, what: str
) -> SecureTensor:
    try:
        ia, ib = np.broadcast_arrays(
            np.arange(a.size).reshape(a.shape), np.arange(b.size).reshape(b.shape)
        )
    except ValueError as exc:
        raise ShapeMismatchError(f"{what}: shapes {a.shape} and {b.shape}: {exc}") from None
    k = be.kernel
    pa, pb = payload_of(a), payload_of(b)
    la, lb = pa.level, pb.level
    top = max(la, lb)
    level = k.next_level(top, what) if product else top
    gain = pa.gain * pb.gain * k.factor(top) if product else combine_gains(pa.gain, pb.gain)
    cts = tuple(
        pair(k, pa.cts[i], la, pb.cts[j], lb)
        for i, j in zip(ia.reshape(-1).tolist(), ib.reshape(-1).tolist(), strict=True)
    )
    return be.wrap(cts, ia.shape, ELEMENT, level, gain)


def _scalar_broadcast(
    be: Wrapper,
    t: SecureTensor,
    s: SecureTensor,
    pair: _Pair,
    product: bool,
    what: str,
    *,
    scalar_left: bool,
) -> SecureTensor:
    """``t op s`` (or ``s op t``) with ``s`` a 0-d element tensor replicated over slots."""
    k = be.kernel
    pt, ps = payload_of(t), payload_of(s)
    k.require_galois(f"broadcasting an encrypted scalar ({what})")
    rep_level = k.next_level(ps.level, f"broadcasting an encrypted scalar ({what})")
    rep_gain = ps.gain * k.factor(ps.level)
    m, _ = base_dims(t.layout, t.shape)
    sizes = chunk_sizes(m, k.slots)
    top = max(pt.level, rep_level)
    if product:
        level = k.next_level(top, what)
        gain = pt.gain * rep_gain * k.factor(top)
    else:
        level, gain = top, combine_gains(pt.gain, rep_gain)
    reps = {size: k.replicate(ps.cts[0], size) for size in set(sizes)}
    cts = []
    for i, x in enumerate(pt.cts):
        r = reps[sizes[i % len(sizes)]]
        if scalar_left:
            cts.append(pair(k, r, rep_level, x, pt.level))
        else:
            cts.append(pair(k, x, pt.level, r, rep_level))
    return be.wrap(tuple(cts), t.shape, t.layout, level, gain)


def add(be: Wrapper, a: SecureTensor, b: SecureTensor) -> SecureTensor:
    """``a + b``: no level."""
    pa, pb = payload_of(a), payload_of(b)
    if a.layout == b.layout and a.shape == b.shape and len(pa.cts) == 1:
        # Fast path (one ciphertext): the add itself is ~50 µs, so dispatch must stay thin.
        k = be.kernel
        ct = k.add(pa.cts[0], pa.level, pb.cts[0], pb.level)
        gain = pa.gain if pa.gain == pb.gain else combine_gains(pa.gain, pb.gain)
        return be.wrap((ct,), a.shape, a.layout, max(pa.level, pb.level), gain)
    return _combine(be, a, b, _add_pair, False, "a + b")


def sub(be: Wrapper, a: SecureTensor, b: SecureTensor) -> SecureTensor:
    """``a - b``: no level; ``(-b) + a`` when ``b`` is fresher."""
    return _combine(be, a, b, _sub_pair, False, "a - b")


def mul(be: Wrapper, a: SecureTensor, b: SecureTensor) -> SecureTensor:
    """``a * b`` elementwise (relinearize and rescale): one level."""
    return _combine(be, a, b, _mul_pair, True, "a * b")


def neg(be: Wrapper, a: SecureTensor) -> SecureTensor:
    pa = payload_of(a)
    cts = tuple(be.kernel.neg(x) for x in pa.cts)
    return be.wrap(cts, a.shape, a.layout, pa.level, pa.gain)


# --- ciphertext (+|-|*) plaintext -----------------------------------------------------------


def _plain_map(
    be: Wrapper, a: SecureTensor, p: NDArray[Any], op: Callable[[Ct, Operand, float], Ct], what: str
) -> SecureTensor:
    k = be.kernel
    _check_addend(k, p, what)
    pa = payload_of(a)
    operands = plain_operands(a, p, k.slots, what)
    cts = tuple(op(x, o, pa.gain) for x, o in zip(pa.cts, operands, strict=True))
    return be.wrap(cts, a.shape, a.layout, pa.level, pa.gain)


def add_plain(be: Wrapper, a: SecureTensor, p: NDArray[Any]) -> SecureTensor:
    """``a + p``: no level (``p`` is encoded times the gain)."""
    return _plain_map(be, a, p, be.kernel.add_plain, "a + plaintext")


def sub_plain(be: Wrapper, a: SecureTensor, p: NDArray[Any]) -> SecureTensor:
    return _plain_map(be, a, p, be.kernel.sub_plain, "a - plaintext")


def rsub_plain(be: Wrapper, a: SecureTensor, p: NDArray[Any]) -> SecureTensor:
    return _plain_map(be, a, p, be.kernel.rsub_plain, "plaintext - a")


def mul_plain(be: Wrapper, a: SecureTensor, p: NDArray[Any]) -> SecureTensor:
    """``a * p``: one level, except by a small integer scalar (additions) or zero (fresh)."""
    k = be.kernel
    pa = payload_of(a)
    what = "a * plaintext"
    if p.size == 1:
        broadcast_to_shape(p, a.shape, what)
        c = float(p.reshape(-1)[0])
        if c == 0.0:
            # 0 * a is a public constant: a fresh encryption of zeros (level 0, gain 1).
            cts = tuple(k.zero_at(x.size(), 0) for x in pa.cts)
            return be.wrap(cts, a.shape, a.layout, 0, 1.0)
        if c.is_integer() and abs(c) <= SMALL_INT:
            n = int(c)
            return be.wrap(
                tuple(k.int_mul(x, n) for x in pa.cts), a.shape, a.layout, pa.level, pa.gain
            )
    level = k.next_level(pa.level, what)
    operands = plain_operands(a, p, k.slots, what)
    cts = tuple(k.mul_plain(x, pa.level, pa.gain, o) for x, o in zip(pa.cts, operands, strict=True))
    return be.wrap(cts, a.shape, a.layout, level, 1.0)
