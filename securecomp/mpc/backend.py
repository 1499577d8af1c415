"""The ``shares`` backend of `SecureTensor`: one party's additive shares over Z_2^64.

Each tensor holds this party's share (a read-only ``uint64`` array of fixed-point values
with ``sess.frac_bits`` fractional bits) and, in its public metadata, the bound tracker's
``bound``: an integer ``R`` with ``|x| <= R`` in ring units (`securecomp.mpc.bounds`).
Every party runs the same operations in the same order (SPMD); operations that need
interaction run the protocols of `securecomp.mpc.beaver`, `securecomp.mpc.truncation` and
`securecomp.mpc.comparison` over the session's channel.

Threat model: semi-honest computing parties, a non-colluding dealer. Local operations
(add, sub, neg, sum, indexing, reshape, products with public values) reveal nothing;
interactive ones reveal only uniformly masked values; `reveal` discloses the value to the
recipients, as recorded in the session's leakage ledger. Plaintext operands are public:
every party must pass the same one.

Costs per element (``n`` parties, per peer): secure product = one Beaver opening (2
words, 1 round) + truncation (1 word, 1 round with the dealer protocol; none locally);
product with a public real = truncation only; with a public integer = nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import UnsupportedOperationError
from securecomp.mpc import bounds
from securecomp.tensor import Backend, Implementation, Op, SecureTensor

if TYPE_CHECKING:
    from securecomp.mpc.session import Session

__all__ = ["LAYOUT", "SharesBackend", "assume_bound", "bound_of"]

#: The layout name of additive shares.
LAYOUT = "additive"


def bound_of(t: SecureTensor) -> int:
    """The tracked bound ``R`` (ring units) of a shared tensor."""
    return int(t.meta["bound"])


def _frozen(a: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    # A read-only *view*: freezing it leaves the producer's buffer alone, and the payload
    # can no longer be changed through the tensor (value semantics).
    arr = np.asarray(a, dtype=np.uint64, order="C").view()
    arr.flags.writeable = False
    return arr


class SharesBackend(Backend):
    """Backend of one party's shares in a session.

    Invariant: for shares ``x_i`` of ``x`` held by the parties, the shares produced by
    every operation add up (mod 2^64) to the encoding of the operation's result, within
    the documented rounding (one ulp per truncation), and ``|result| <= bound``.
    """

    name = "shares"

    def __init__(self, sess: Session) -> None:
        self._sess = sess
        h = hashlib.sha256(b"securecomp/shares/v1|")
        h.update(sess.session_id)
        h.update(f"|{sess.n_parties}|{sess.frac_bits}|{sess.truncation.value}".encode())
        self._fingerprint = h.digest()
        self._table = self._build_table()

    @property
    def fingerprint(self) -> bytes:
        return self._fingerprint

    @property
    def session(self) -> Session:
        return self._sess

    def describe(self) -> str:
        s = self._sess
        return f"shares[party {s.party_id}/{s.n_parties}]:{self._fingerprint.hex()[:8]}"

    def advice(self, op: Op, layout: str) -> str:
        return f"the shares backend has no {op.symbol!r}; compute it in the clear or compose it"

    def table(self, layout: str) -> Mapping[Op, Implementation]:
        return self._table if layout == LAYOUT else {}

    # --- construction --------------------------------------------------------------------

    def wrap(self, share: npt.NDArray[Any], bound: int) -> SecureTensor:
        """Wrap this party's share with its tracked bound (checked representable)."""
        r = bounds.check_representable(int(bound), "result", self._sess.frac_bits)
        arr = _frozen(share)
        return SecureTensor._wrap(self, arr, arr.shape, layout=LAYOUT, meta={"bound": r})

    def constant(self, values: npt.ArrayLike) -> SecureTensor:
        """A public value as a (trivially) shared tensor: party 0 holds its encoding."""
        enc = self._sess.encoding.encode(np.asarray(values, dtype=np.float64))
        share = enc if self._sess.is_first else np.zeros_like(enc)
        return self.wrap(share, bounds.plain_ring_max(enc))

    def _encode_plain(self, p: npt.NDArray[Any]) -> tuple[npt.NDArray[np.uint64], int]:
        enc = self._sess.encoding.encode(p.astype(np.float64, copy=False))
        return enc, bounds.plain_ring_max(enc)

    def reveal(self, tensor: SecureTensor, to: Any) -> npt.NDArray[np.float64] | None:
        from securecomp.mpc.sharing import reveal_ring

        ring = reveal_ring(self._sess, tensor.payload, to, "value")
        return None if ring is None else self._sess.encoding.decode(ring)

    # --- operation table -----------------------------------------------------------------

    def _build_table(self) -> dict[Op, Implementation]:
        from securecomp.mpc import arith

        ops = arith.Ops(self)
        return {
            Op.ADD: ops.add,
            Op.ADD_PLAIN: ops.add_plain,
            Op.SUB: ops.sub,
            Op.SUB_PLAIN: ops.sub_plain,
            Op.RSUB_PLAIN: ops.rsub_plain,
            Op.NEG: ops.neg,
            Op.MUL: ops.mul,
            Op.MUL_PLAIN: ops.mul_plain,
            Op.MATMUL: ops.matmul,
            Op.MATMUL_PLAIN: ops.matmul_plain,
            Op.RMATMUL_PLAIN: ops.rmatmul_plain,
            Op.DOT: ops.dot,
            Op.DOT_PLAIN: ops.dot_plain,
            Op.SUM: ops.total,
            Op.GETITEM: ops.getitem,
            Op.RESHAPE: ops.reshape,
            Op.TRANSPOSE: ops.transpose,
            Op.POLYVAL: ops.polyval,
            Op.LT: ops.less,
            Op.LT_PLAIN: ops.less_plain,
            Op.GT_PLAIN: ops.greater_plain,
        }


def assume_bound(t: SecureTensor, bound: float) -> SecureTensor:
    """The same shares with a tighter bound ``|x| <= bound``, stated by the caller.

    The bound tracker is worst-case; a program that knows better (after a clip, or from
    the mathematics of the algorithm) may say so here. This is a **claim, not checked**:
    if the value exceeds it, a later truncation may produce a large error. Raising the
    bound is always safe.
    """
    backend = t.backend
    if not isinstance(backend, SharesBackend):
        raise UnsupportedOperationError("assume_bound applies to tensors of the shares backend")
    r = bounds.ring_bound(bound, backend.session.frac_bits)
    return backend.wrap(t.payload, r)
