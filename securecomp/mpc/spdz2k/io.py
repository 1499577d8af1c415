"""Authenticated input and output of SPDZ2k (Cramer et al., CRYPTO 2018, section 3).

Input (one round)
-----------------
The dealer gives every party authenticated shares of a random ``r`` in Z_2^(k+s) and gives
its value to the input's owner only (an INPUT mask). The owner broadcasts
``e = x - r mod 2^k``; every party takes ``[x] = [r] + e``, the public ``e`` going into the
offset (no MAC key needed). ``e`` is uniform, so it reveals nothing about ``x``. A
malicious owner could send different ``e`` to different parties: every party hashes what
it sent or received into its transcript, and the digests are compared in the next MAC
check, before any output (broadcast with abort). An input beyond the public bound is
refused by its owner, and the others learn only that fact (`ProtocolAbort`).

Output (one round, then the check)
----------------------------------
The shared sum of ``[x]`` is ``x + 2^k g`` with garbage ``g`` in the upper ``s`` bits, which may
depend on secrets (carries of earlier products). Before opening, the parties add
``2^k [t]`` for a random authenticated ``t`` (a MASK), so the opened upper bits are uniform;
for an output to some parties only, each recipient ``j`` also subtracts an INPUT mask
``r_j`` that only ``j`` knows, so the others see a uniform value. The opening is queued,
then the MAC check of **every** pending opening runs, and only if it passes does a
recipient add back its mask, read the low ``k`` bits and decode them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import (
    EncodingOverflowError,
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ShapeMismatchError,
)
from securecomp.mpc.spdz2k import authshare as A
from securecomp.mpc.spdz2k.material import AuthKind, AuthSpec, Field
from securecomp.mpc.spdz2k.ops import ring_bound

if TYPE_CHECKING:
    from securecomp.mpc.spdz2k.session import ActiveSession
    from securecomp.tensor import SecureTensor

__all__ = ["recipients", "reveal_share", "share"]

U64 = np.uint64
_TAG_INPUT = "spdz2k.input"
_TAG_OUTPUT = "spdz2k.output"
_OK, _REFUSED = 0, 1
_MAX_NDIM = 32


def share(
    sess: ActiveSession,
    values: npt.ArrayLike | None = None,
    *,
    owner: int = 0,
    bound: float | None = None,
    shape: Sequence[int] | None = None,
) -> SecureTensor:
    """Secret-share the owner's array with MACs; every party calls it.

    Parameters are those of `securecomp.mpc.sharing.share`: only the owner passes
    ``values``; ``bound`` is the public bound on ``|values|`` (default
    ``sess.input_bound``); ``shape``, if given, is checked against the owner's.

    Raises
    ------
    EncodingOverflowError
        On the owner, for data beyond ``bound`` (or NaN/inf).
    ProtocolAbort
        On the other parties, when the owner refused its input.
    ShapeMismatchError
        When the owner's shape differs from ``shape``.
    """
    sess.guard()
    if type(owner) is not int or not 0 <= owner < sess.n_parties:
        raise ParameterError(f"owner {owner!r} is not a party of this session")
    b = sess.input_bound if bound is None else float(bound)
    r = ring_bound(b, sess.frac_bits, sess.params.k)
    if sess.party_id == owner:
        if values is None:
            raise ParameterError(f"party {owner} owns the input: pass its values")
        msg, item, eps = _share_as_owner(sess, np.asarray(values), owner, b, shape)
    else:
        if values is not None:
            raise ParameterError(
                f"party {sess.party_id} is not the owner (party {owner}); pass values=None"
            )
        msg = sess.receive(owner, _TAG_INPUT, dtype=U64)
        got_shape = _parse_input(msg, owner, b)
        if shape is not None and tuple(shape) != got_shape:
            raise ShapeMismatchError(
                f"party {owner} shared an input of shape {got_shape}, expected {tuple(shape)}"
            )
        (item,), _ = sess.material(AuthSpec(AuthKind.INPUT, (got_shape,), owner)).consume()
        eps = msg[2 + len(got_shape) :]
    sess.record_broadcast(msg.astype("<u8").tobytes())
    return sess.backend.wrap(A.auth_share(item, eps.reshape(item.shape[2:])), r)


def _share_as_owner(
    sess: ActiveSession,
    arr: npt.NDArray[Any],
    owner: int,
    bound: float,
    shape: Sequence[int] | None,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    try:
        if arr.dtype.kind not in "biuf":
            raise ParameterError(f"cannot share an array of dtype {arr.dtype}; pass real numbers")
        if shape is not None and tuple(shape) != arr.shape:
            raise ShapeMismatchError(f"input has shape {arr.shape}, expected {tuple(shape)}")
        enc = sess.encoding.encode(arr, max_abs=bound).astype(U64)
    except (EncodingOverflowError, ParameterError, ShapeMismatchError):
        # Tell the others the input is refused (only that fact), then fail here too.
        sess.send_all(np.array([_REFUSED, 0], dtype=U64), _TAG_INPUT)
        raise
    (item,), rho = sess.material(AuthSpec(AuthKind.INPUT, (arr.shape,), owner)).consume()
    if rho is None:  # unreachable: the dealer always gives the owner its mask
        raise ParameterError("internal: input mask without its value")
    eps = sess.params.reduce(np.subtract(enc, rho[0, ...])).reshape(-1)
    msg = np.concatenate([np.array([_OK, arr.ndim, *arr.shape], dtype=U64), eps])
    failure = sess.send_all(msg, _TAG_INPUT)
    if failure is not None:
        raise failure
    return msg, item, eps


def _parse_input(msg: npt.NDArray[Any], owner: int, bound: float) -> tuple[int, ...]:
    if msg.ndim != 1 or msg.size < 2:
        raise MalformedMessageError(f"party {owner} sent a malformed input")
    status, ndim = int(msg[0]), int(msg[1])
    if status == _REFUSED:
        raise ProtocolAbort(
            "share", f"party {owner} refused its input: it exceeds the bound {bound:g}", [owner]
        )
    if status != _OK or ndim > _MAX_NDIM or msg.size < 2 + ndim:
        raise MalformedMessageError(f"party {owner} sent a malformed input header")
    shape = tuple(int(d) for d in msg[2 : 2 + ndim])
    if any(d >= 1 << 40 for d in shape) or msg.size != 2 + ndim + int(np.prod(shape)):
        raise MalformedMessageError(f"party {owner} sent an input of inconsistent size")
    return shape


def recipients(sess: ActiveSession, to: int | Iterable[int] | None) -> tuple[int, ...]:
    """Normalize a ``to=`` argument (None: every party)."""
    from securecomp.mpc.sharing import recipients as normalize

    return normalize(sess, to)  # type: ignore[arg-type]  # duck-typed: uses n_parties


def reveal_share(
    sess: ActiveSession, x: A.AuthShare, to: int | Iterable[int] | None
) -> npt.NDArray[np.uint64] | None:
    """Open ``[x]`` to ``to``: its values modulo 2^k there (uint64), None elsewhere.

    Raises
    ------
    MACCheckError
        If the check of any pending opening fails: nothing is returned to anyone.
    """
    sess.guard()
    targets = recipients(sess, to)
    ring, k = sess.params.ring, sess.params.k
    shape, n, limbs = x.shape, x.size, ring.limbs
    (t,), _ = sess.material(AuthSpec(AuthKind.MASK, (shape,))).consume()
    # x + 2^k t: the upper s bits of the opened sum become uniform.
    masked = np.empty_like(x.data)
    ring.add(x.wide, ring.shifted(t.swapaxes(0, 1), k), out=masked.swapaxes(0, 1))
    mine = None
    if to is None:
        entry = masked.reshape((2, limbs, n))
    else:
        masks = [sess.material(AuthSpec(AuthKind.INPUT, (shape,), p)).consume() for p in targets]
        parts = np.empty((2, limbs, len(targets), n), dtype=U64)
        for j, ((r,), rho) in enumerate(masks):
            # x + 2^k t - r_j: recipient j knows r_j, nobody else does.
            ring.sub(masked.reshape((2, limbs, n)).swapaxes(0, 1),
                     r.reshape((2, limbs, n)).swapaxes(0, 1),
                     out=parts[:, :, j].swapaxes(0, 1))
            if rho is not None:
                mine = (j, rho)
        entry = parts.reshape((2, limbs, len(targets) * n))
    opened = sess.open_queued(Field.ARITH, entry, tag=_TAG_OUTPUT)
    for p in targets:
        sess.ledger.record(p, f"value of shape {shape}", "reveal")
    low = opened[0].copy()
    sess.check()  # raises MACCheckError before anything leaves
    if sess.party_id not in targets:
        return None
    if mine is not None:
        j, rho = mine
        low = np.add(low[j * n : (j + 1) * n], rho[0].reshape(-1))
    out = np.add(low.reshape(shape), x.offset_or_zero())
    return sess.params.reduce(np.asarray(out))
