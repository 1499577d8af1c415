"""Additive secret sharing over Z_2^64 of fixed-point values: `share` and `reveal`.

A real array ``x`` is encoded as ``X = round(x * 2^f) mod 2^64`` (two's complement,
`securecomp.encoding.FixedPoint`) and split as ``X = X_0 + ... + X_{n-1} (mod 2^64)``.
Any ``n - 1`` shares are jointly uniform, so a coalition of up to ``n - 1`` semi-honest
parties learns nothing about ``x`` (beyond its shape and its public bound).

`share` (one message from the owner to each other party)
----------------------------------------------------------
1. The owner checks its data against the public bound ``B`` (`EncodingOverflowError`
   otherwise; the other parties are told the input was refused and raise
   `ProtocolAbort`, learning only that fact) and encodes it.
2. For each other party ``j`` it draws a fresh 32-byte seed from the OS CSPRNG and sends
   it with the shape; party ``j``'s share is the AES-CTR expansion of the seed. The owner
   keeps ``X - sum_j PRG(seed_j)``. The message is 32 bytes plus the shape, whatever
   the size of ``x`` (the seed-expansion technique also used for input sharing in
   MP-SPDZ).

`reveal` (one round)
--------------------
Every party sends its share to each recipient; a recipient adds them up and decodes.
The recipients learn the value (recorded in the session's leakage ledger); the others
learn nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.crypto import AesCtrPrg
from securecomp.errors import (
    EncodingOverflowError,
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ShapeMismatchError,
)
from securecomp.mpc import bounds
from securecomp.mpc.session import Session
from securecomp.tensor import SecureTensor

__all__ = ["recipients", "reveal_ring", "share"]

_TAG_SHARE = "mpc.share"
_TAG_REVEAL = "mpc.reveal"
_OK, _REFUSED = 0, 1
_MAX_NDIM = 32


def _header(status: int, shape: tuple[int, ...], seed: bytes) -> npt.NDArray[np.uint64]:
    words = np.frombuffer(seed, dtype="<u8")
    return np.array([status, len(shape), *shape, *words.tolist()], dtype=np.uint64)


def _parse(words: npt.NDArray[Any], owner: int) -> tuple[int, tuple[int, ...], bytes]:
    if words.ndim != 1 or words.size < 2:
        raise MalformedMessageError(f"party {owner} sent a malformed share header")
    status, ndim = int(words[0]), int(words[1])
    if status not in (_OK, _REFUSED) or ndim > _MAX_NDIM or words.size != 2 + ndim + 4:
        raise MalformedMessageError(f"party {owner} sent a malformed share header")
    shape = tuple(int(d) for d in words[2 : 2 + ndim])
    if any(d >= 1 << 40 for d in shape):
        raise MalformedMessageError(f"party {owner} declared an absurd shape {shape}")
    seed = np.ascontiguousarray(words[2 + ndim :]).astype("<u8").tobytes()
    return status, shape, seed


def _expand(seed: bytes, shape: tuple[int, ...]) -> npt.NDArray[np.uint64]:
    return AesCtrPrg(seed).random_uint64(shape)


def share(
    sess: Session,
    values: npt.ArrayLike | None = None,
    *,
    owner: int = 0,
    bound: float | None = None,
    shape: Sequence[int] | None = None,
) -> SecureTensor:
    """Secret-share the owner's array among all computing parties.

    Every party calls this with the same ``owner`` and ``bound``; only the owner passes
    ``values``.

    Parameters
    ----------
    sess : Session
    values : array_like of real numbers, optional
        The owner's data (None on every other party).
    owner : int
        The party that holds the data.
    bound : float, optional
        Public bound on ``|values|`` (default ``sess.input_bound``); the bound tracker
        starts from it.
    shape : sequence of int, optional
        The expected shape; non-owners then check the owner's message against it.

    Returns
    -------
    SecureTensor
        This party's share, on the session's ``shares`` backend.

    Raises
    ------
    EncodingOverflowError
        On the owner, for data beyond ``bound`` (or NaN/inf).
    ProtocolAbort
        On the other parties, when the owner refused its input.
    ShapeMismatchError
        When the owner's shape differs from ``shape``.
    """
    if type(owner) is not int or not 0 <= owner < sess.n_parties:
        raise ParameterError(
            f"owner {owner!r} is not a party of this {sess.n_parties}-party session"
        )
    b = sess.input_bound if bound is None else float(bound)
    f = sess.frac_bits
    r = bounds.ring_bound(b, f)
    if sess.party_id == owner:
        if values is None:
            raise ParameterError(f"party {owner} owns the input: pass its values")
        return _share_as_owner(sess, values, b, r, shape)
    if values is not None:
        raise ParameterError(
            f"party {sess.party_id} is not the owner (party {owner}); pass values=None: "
            "each party passes only its own data"
        )
    words = sess.recv(owner, tag=_TAG_SHARE, dtype=np.uint64)
    status, got_shape, seed = _parse(words, owner)
    if status == _REFUSED:
        raise ProtocolAbort(
            "share", f"party {owner} refused its input: it exceeds the public bound {b:g}", [owner]
        )
    if shape is not None and tuple(shape) != got_shape:
        raise ShapeMismatchError(
            f"party {owner} shared an input of shape {got_shape}, expected {tuple(shape)}"
        )
    return sess.backend.wrap(_expand(seed, got_shape), r)


def _share_as_owner(
    sess: Session, values: npt.ArrayLike, b: float, r: int, shape: Sequence[int] | None
) -> SecureTensor:
    arr = np.asarray(values)
    try:
        if arr.dtype.kind not in "biuf":
            raise ParameterError(f"cannot share an array of dtype {arr.dtype}; pass real numbers")
        if shape is not None and tuple(shape) != arr.shape:
            raise ShapeMismatchError(f"input has shape {arr.shape}, expected {tuple(shape)}")
        encoded = sess.encoding.encode(arr, max_abs=b)
    except (EncodingOverflowError, ParameterError, ShapeMismatchError):
        # Tell the others the input is refused (only that fact), then fail here too.
        sess.send_each(dict.fromkeys(sess.peers, _header(_REFUSED, (), bytes(32))), tag=_TAG_SHARE)
        raise
    messages = {}
    for p in sess.peers:
        seed = secrets.token_bytes(32)
        messages[p] = _header(_OK, arr.shape, seed)
        np.subtract(encoded, _expand(seed, arr.shape), out=encoded)
    sess.send_each(messages, tag=_TAG_SHARE)
    return sess.backend.wrap(encoded, r)


def recipients(sess: Session, to: int | Iterable[int] | None) -> tuple[int, ...]:
    """Normalize a ``to=`` argument: None means every party."""
    if to is None:
        return tuple(range(sess.n_parties))
    ids = (to,) if isinstance(to, int | np.integer) else tuple(to)
    out = []
    for p in ids:
        if (
            isinstance(p, bool)
            or not isinstance(p, int | np.integer)
            or not 0 <= p < sess.n_parties
        ):
            raise ParameterError(f"cannot reveal to {p!r}: not a party of this session")
        out.append(int(p))
    if not out:
        raise ParameterError("reveal needs at least one recipient")
    return tuple(sorted(set(out)))


def reveal_ring(
    sess: Session, share_: npt.NDArray[np.uint64], to: int | Iterable[int] | None, what: str
) -> npt.NDArray[np.uint64] | None:
    """Open raw ring shares to ``to``; returns the ring values there, None elsewhere."""
    targets = recipients(sess, to)
    me = sess.party_id
    arr = np.asarray(share_, order="C")
    failure = sess.send_each({p: arr for p in targets if p != me}, tag=_TAG_REVEAL, defer=True)
    for p in targets:
        sess.ledger.record(p, f"{what} of shape {arr.shape}", "reveal")
    if me not in targets:
        if failure is not None:
            raise failure
        return None
    total = arr.copy()
    for p in sess.peers:
        np.add(total, sess.recv(p, tag=_TAG_REVEAL, shape=arr.shape), out=total)
    if failure is not None:
        raise failure
    return total
