"""Operations of the packed Paillier layout: many values per ciphertext.

A packed tensor keeps its *last axis* in slots (`securecomp.encoding.PaillierPacking`):
each row ``t[i, j, ..., :]`` is packed on its own into ``ceil(L / n_slots)`` plaintexts,
so the payload is an object array of ciphertexts of shape ``shape[:-1] + (n_ct,)``
(a 0-d tensor is one row of length 1). Rows are independent ciphertexts, which is what
makes sums over leading axes, row selection and per-row scalars possible; the slots of a
row can only move together.

Slot arithmetic (``off = 2^(value_bits-1)``, weight ``m``): a slot holds ``S + m * off``
with ``|S| <= m * (off - 1)``, so it lies in ``[0, m * (2 off - 1)]`` and never borrows
from or carries into its neighbour while ``m`` is within the packing's headroom. Then

* ``a + b``: slots add, weights add;
* ``k * a`` for ``k >= 0``: ``c^k``, weight ``k * m``;
* ``-a``: ``c^(-1)`` encrypts ``-(S + m off)`` modulo ``n``; adding the public constant
  ``2 m off`` to every slot gives ``-S + m off``, a valid slot of the same weight. Negative
  scalars and subtraction follow (``a - b`` has weight ``m_a + m_b``);
* rows scaled by different ``|k_r|`` are brought back to one weight ``M`` by adding
  ``(M - |k_r| m) off`` to each slot of row ``r``.

Input values and plaintext operands are limited to the symmetric range
``|v| <= off - 1`` so that negation stays in range. Every weight is checked against the
headroom *before* anything is computed; nothing here decrypts.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import PaillierPacking, paillier_packing
from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    UnsupportedOperationError,
)
from securecomp.he.paillier.encode import operand_ints, operand_scale
from securecomp.he.paillier.layout import (
    PACKED,
    PER_SLOT_ADVICE,
    broadcast_shape,
    check_scale,
    frozen,
    rows_advice,
)
from securecomp.tensor import Op, SecureTensor

if TYPE_CHECKING:
    from securecomp.he.paillier.unpacked import Host
    from securecomp.tensor import Implementation

__all__ = [
    "build_table",
    "pack_rows",
    "packed_meta",
    "packing_for",
    "row_shape",
    "unpack_rows",
]

ObjArray = npt.NDArray[np.object_]


def packed_meta(
    scale: int, weight: int, value_bits: int, headroom_bits: int, randomized: bool = False
) -> dict[str, Any]:
    """The bookkeeping of a packed tensor (public: travels with the ciphertexts)."""
    return {
        "scale": scale,
        "weight": weight,
        "value_bits": value_bits,
        "headroom_bits": headroom_bits,
        "randomized": randomized,
    }


def packing_for(modulus_bits: int, value_bits: int, headroom_bits: int) -> PaillierPacking:
    """The packing of ``value_bits``-bit values with ``headroom_bits`` bits of headroom."""
    return paillier_packing(modulus_bits, value_bits, 1 << headroom_bits)


def row_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape as rows: a 0-d tensor is one row of length 1."""
    return shape if shape else (1,)


def pack_rows(packing: PaillierPacking, ints: npt.NDArray[np.int64]) -> ObjArray:
    """Pack each row of an int64 array ``(..., L)`` into plaintexts ``(..., n_ct)``.

    Rows are padded with ``-off``, which packs to a raw zero slot, so the padding slots of
    every row stay zero under every operation (constants are added to real slots only).
    """
    length = ints.shape[-1]
    n_ct, k = packing.n_plaintexts(length), packing.n_slots
    if ints.size == 0:
        return np.empty((*ints.shape[:-1], n_ct), dtype=object)
    rows = ints.reshape(-1, length)
    padded = np.full((rows.shape[0], n_ct * k), -packing.offset, dtype=np.int64)
    padded[:, :length] = rows
    plain = packing.pack(padded.ravel())
    out = np.empty(len(plain), dtype=object)
    out[:] = plain
    return out.reshape((*ints.shape[:-1], n_ct))


def unpack_rows(
    packing: PaillierPacking,
    plaintexts: list[Any],
    weight: int,
    lead: tuple[int, ...],
    length: int,
) -> npt.NDArray[np.int64]:
    """Inverse of `pack_rows` after additions of total ``weight`` (raises on overflow)."""
    n_ct, k = packing.n_plaintexts(length), packing.n_slots
    rows = math.prod(lead)
    if rows == 0 or n_ct == 0:
        return np.zeros((*lead, length), dtype=np.int64)
    slots = packing.unpack(plaintexts, n_additions=weight, count=rows * n_ct * k)
    return slots.reshape(rows, n_ct * k)[:, :length].reshape((*lead, length))


def _repunits(packing: PaillierPacking, length: int) -> ObjArray:
    """Per ciphertext of a row of ``length``: the integer with a 1 in each real slot."""
    n_ct, k, w = packing.n_plaintexts(length), packing.n_slots, packing.slot_bits

    def rep(j: int) -> int:
        return ((1 << (j * w)) - 1) // ((1 << w) - 1)

    reps = np.empty(n_ct, dtype=object)
    if n_ct:
        reps[:] = [rep(k)] * (n_ct - 1) + [rep(length - (n_ct - 1) * k)]
    return reps


class _Parts:
    __slots__ = ("length", "packing", "payload", "scale", "weight")

    def __init__(self, host: Host, t: SecureTensor) -> None:
        meta = t.meta
        self.payload: ObjArray = t.payload
        self.scale = int(meta["scale"])
        self.weight = int(meta["weight"])
        self.packing = packing_for(
            host.key.bits, int(meta["value_bits"]), int(meta["headroom_bits"])
        )
        self.length = row_shape(t.shape)[-1]


def _out(
    host: Host,
    t: SecureTensor,
    payload: ObjArray,
    shape: tuple[int, ...],
    scale: int,
    weight: int,
    randomized: bool = False,
) -> SecureTensor:
    meta = t.meta
    return host.wrap(
        frozen(payload),
        shape,
        PACKED,
        packed_meta(scale, weight, meta["value_bits"], meta["headroom_bits"], randomized),
    )


def _check_weight(packing: PaillierPacking, weight: int, what: str) -> int:
    if weight > packing.max_additions:
        raise EncodingOverflowError(
            f"{what}: the slots would hold {weight} packings' worth of values, beyond the "
            f"headroom of {packing.max_additions} ({packing.slot_bits}-bit slots for "
            f"{packing.value_bits}-bit values), and would carry into each other; nothing was "
            "computed. Encrypt with a larger max_additions, multiply by smaller (integer) "
            "scalars, or have the key holder decrypt and re-encrypt the intermediate"
        )
    return weight


def _rows_kept(a_shape: tuple[int, ...], out: tuple[int, ...], what: str) -> None:
    if row_shape(a_shape)[-1] != row_shape(out)[-1]:
        raise UnsupportedOperationError(
            f"{what}: broadcasting would change the length of the packed last axis "
            f"({a_shape} -> {out}); {rows_advice()}"
        )


def _lead_broadcast(payload: ObjArray, out: tuple[int, ...]) -> ObjArray:
    return np.broadcast_to(payload, (*row_shape(out)[:-1], payload.shape[-1]))


def _lift(host: Host, p: _Parts, target: int) -> ObjArray:
    if target == p.scale:
        return p.payload
    return host.kernels.mul_plain(p.payload, 1 << (target - p.scale))


def _negate(host: Host, payload: ObjArray, weight: int, p: _Parts) -> ObjArray:
    """Encrypts the negated slots at the same ``weight`` (see the module docstring)."""
    const = _repunits(p.packing, p.length) * (2 * p.packing.offset * weight)
    return host.kernels.add_plain(host.kernels.neg(payload), const)


def _add(host: Host, a: SecureTensor, b: SecureTensor, *, subtract: bool) -> SecureTensor:
    what = "a - b" if subtract else "a + b"
    if b.layout != PACKED:
        raise UnsupportedOperationError(
            f"{what}: cannot combine a packed Paillier tensor with a {b.layout} one; "
            "encrypt both operands with the same layout"
        )
    pa, pb = _Parts(host, a), _Parts(host, b)
    if pa.packing != pb.packing:
        raise KeyMismatchError(
            f"{what}: the operands use different packings ({pa.packing.value_bits}-bit values "
            f"in {pa.packing.slot_bits}-bit slots vs {pb.packing.value_bits} in "
            f"{pb.packing.slot_bits}); encrypt both with the same value_bits and max_additions"
        )
    out = broadcast_shape(a.shape, b.shape, what)
    _rows_kept(a.shape, out, what)
    _rows_kept(b.shape, out, what)
    s = check_scale(max(pa.scale, pb.scale), what)
    wa, wb = pa.weight << (s - pa.scale), pb.weight << (s - pb.scale)
    weight = _check_weight(pa.packing, wa + wb, what)
    ca, cb = _lift(host, pa, s), _lift(host, pb, s)
    if subtract:
        cb = _negate(host, cb, wb, pb)
    payload = host.kernels.add(_lead_broadcast(ca, out), _lead_broadcast(cb, out))
    return _out(host, a, payload, out, s, weight)


def _neg(host: Host, a: SecureTensor) -> SecureTensor:
    p = _Parts(host, a)
    return _out(host, a, _negate(host, p.payload, p.weight, p), a.shape, p.scale, p.weight)


def _add_plain(
    host: Host, a: SecureTensor, pt: npt.NDArray[Any], *, negate_a: bool, negate_pt: bool
) -> SecureTensor:
    what = "plaintext - a" if negate_a else ("a - plaintext" if negate_pt else "a + plaintext")
    out = broadcast_shape(a.shape, pt.shape, what)
    _rows_kept(a.shape, out, what)
    p = _Parts(host, a)
    target = check_scale(max(p.scale, operand_scale(pt, host.frac_bits)), what)
    q = operand_ints(pt, target)
    if negate_pt:
        q = np.asarray(-q, dtype=object)
    limit = p.packing.offset - 1
    if q.size and (int(q.min()) < -limit or int(q.max()) > limit):
        raise EncodingOverflowError(
            f"{what}: a plaintext operand does not fit the {p.packing.value_bits}-bit slots at "
            f"scale 2^{target} (|value| must stay below {limit / 2.0**target:.6g}); scale it "
            "down or encrypt with more value_bits"
        )
    wa = p.weight << (target - p.scale)
    weight = _check_weight(p.packing, wa + 1, what)
    rows = np.broadcast_to(q, out).astype(np.int64).reshape(row_shape(out))
    packed = pack_rows(p.packing, rows)
    ca = _lift(host, p, target)
    if negate_a:
        ca = _negate(host, ca, wa, p)
    return _out(
        host, a, host.kernels.add_plain(_lead_broadcast(ca, out), packed), out, target, weight
    )


def _mul_plain(host: Host, a: SecureTensor, pt: npt.NDArray[Any]) -> SecureTensor:
    what = "a * plaintext"
    out = broadcast_shape(a.shape, pt.shape, what)
    _rows_kept(a.shape, out, what)
    p = _Parts(host, a)
    sp = operand_scale(pt, host.frac_bits)
    ks = np.broadcast_to(operand_ints(pt, sp), row_shape(out))
    if p.length == 0:  # no values: nothing to scale
        empty = np.empty((*row_shape(out)[:-1], 0), dtype=object)
        return _out(host, a, empty, out, check_scale(p.scale + sp, what), p.weight)
    if not (ks == ks[..., :1]).all():
        raise UnsupportedOperationError(
            f"{what}: the plaintext differs along the packed last axis; {PER_SLOT_ADVICE}"
        )
    k_rows = ks[..., 0]
    negative = np.asarray(k_rows < 0, dtype=bool)
    # np.asarray: object arithmetic on 0-d arrays returns bare ints.
    magnitude = np.asarray(np.where(negative, -k_rows, k_rows), dtype=object)
    weights = np.asarray(magnitude * p.weight, dtype=object)
    top = int(weights.max()) if weights.size else 0
    weight = _check_weight(p.packing, top, what)
    scale = check_scale(p.scale + sp, what)
    powered = host.kernels.mul_plain(_lead_broadcast(p.payload, out), magnitude[..., np.newaxis])
    if negative.any():
        powered = np.array(powered, dtype=object)
        powered[negative] = host.kernels.neg(powered[negative])
    # Rows scaled by different |k| get back to one weight M; negated rows also need the
    # 2 * |k| * m * off of the negation (module docstring).
    fill = np.asarray(
        np.where(negative, weight + weights, weight - weights) * p.packing.offset, dtype=object
    )
    if (fill != 0).any():
        const = fill[..., np.newaxis] * _repunits(p.packing, p.length)
        powered = host.kernels.add_plain(powered, const)
    return _out(host, a, powered, out, scale, weight)


def _sum(host: Host, a: SecureTensor, axis: int | None = None) -> SecureTensor:
    p = _Parts(host, a)
    if a.ndim == 0:
        return _out(host, a, p.payload, (), p.scale, p.weight, bool(a.meta["randomized"]))
    if axis is None or axis == a.ndim - 1:
        raise UnsupportedOperationError(
            "a.sum() over the packed last axis would add slots of one ciphertext together; "
            f"{rows_advice()}. Sums over leading axes (a.sum(axis=0) of a 2-d tensor) and "
            "sums of whole tensors (a + b) work on the packed layout"
        )
    what = "a.sum(axis)"
    weight = _check_weight(p.packing, p.weight * a.shape[axis], what)
    out = tuple(d for i, d in enumerate(a.shape) if i != axis)
    return _out(host, a, host.kernels.sum(p.payload, axis), out, p.scale, weight)


def _getitem(host: Host, a: SecureTensor, key: Any, result_shape: tuple[int, ...]) -> SecureTensor:
    p = _Parts(host, a)
    length = p.length
    refuse = UnsupportedOperationError(
        f"a[{key!r}] selects part of a packed row; only whole rows (indices on the leading "
        f"axes, the last axis kept whole) can be selected: {rows_advice()}"
    )
    if a.ndim == 0 or not result_shape or result_shape[-1] != length:
        raise refuse
    n_ct = p.payload.shape[-1]
    lead = result_shape[:-1]
    if length == 0:
        return _out(host, a, np.empty((*lead, 0), dtype=object), result_shape, p.scale, p.weight)
    sel = np.arange(a.size, dtype=np.int64).reshape(a.shape)[key].reshape(-1, length)
    starts = sel[:, 0]
    if (starts % length).any() or (sel != starts[:, np.newaxis] + np.arange(length)).any():
        raise refuse
    payload = p.payload.reshape(-1, n_ct)[starts // length].reshape((*lead, n_ct))
    return _out(host, a, payload, result_shape, p.scale, p.weight, bool(a.meta["randomized"]))


def _reshape(host: Host, a: SecureTensor, shape: tuple[int, ...]) -> SecureTensor:
    p = _Parts(host, a)
    if row_shape(shape)[-1] != p.length:
        raise UnsupportedOperationError(
            f"reshape {a.shape} -> {shape} changes the length of the packed last axis; "
            f"{rows_advice()}"
        )
    payload = p.payload.reshape((*row_shape(shape)[:-1], p.payload.shape[-1]))
    return _out(host, a, payload, shape, p.scale, p.weight, bool(a.meta["randomized"]))


def build_table(host: Host) -> dict[Op, Implementation]:
    """The packed layout's operation table, bound to ``host``."""
    return {
        Op.ADD: partial(_add, host, subtract=False),
        Op.SUB: partial(_add, host, subtract=True),
        Op.NEG: partial(_neg, host),
        Op.ADD_PLAIN: partial(_add_plain, host, negate_a=False, negate_pt=False),
        Op.SUB_PLAIN: partial(_add_plain, host, negate_a=False, negate_pt=True),
        Op.RSUB_PLAIN: partial(_add_plain, host, negate_a=True, negate_pt=False),
        Op.MUL_PLAIN: partial(_mul_plain, host),
        Op.SUM: partial(_sum, host),
        Op.GETITEM: partial(_getitem, host),
        Op.RESHAPE: partial(_reshape, host),
    }
