"""The MAC-mode (SPDZ2k) backend of `SecureTensor`: one party's authenticated shares.

A tensor's payload is an `securecomp.mpc.spdz2k.authshare.AuthShare` (value share, MAC
share, public offset); its public metadata holds the bound tracker's ``bound``. The
operation table (`securecomp.mpc.spdz2k.ops`) contains only authenticated operations;
anything else raises `UnsupportedOperationError` naming what to do instead.

Threat model: active security with abort against malicious computing parties, given an
honest dealer that knows the MAC keys (Cramer et al., CRYPTO 2018; see
`securecomp.mpc.spdz2k.session`). `reveal` returns a value only after the MAC check of
every opening it depends on has passed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import UnsupportedOperationError
from securecomp.mpc.spdz2k.authshare import AuthShare
from securecomp.mpc.spdz2k.ops import ActiveOps, check_representable
from securecomp.tensor import Backend, Implementation, Op, SecureTensor

if TYPE_CHECKING:
    from securecomp.mpc.spdz2k.session import ActiveSession

__all__ = ["LAYOUT", "ActiveSharesBackend"]

#: Layout name of authenticated additive shares.
LAYOUT = "authenticated"


class ActiveSharesBackend(Backend):
    """Backend of one party's authenticated shares in an `ActiveSession`.

    Invariant: for every result, the parties' value shares plus the public offset sum to
    the encoding of the result modulo 2^k (within one ulp per truncation), their MAC
    shares sum to ``alpha`` times the shared part modulo 2^(k+s), and ``|result| <= bound``.
    """

    name = "spdz2k"

    def __init__(self, sess: ActiveSession) -> None:
        self._sess = sess
        h = hashlib.sha256(b"securecomp/spdz2k/v1|")
        h.update(sess.session_id)
        p = sess.params
        h.update(f"|{sess.n_parties}|{sess.frac_bits}|{p.k}|{p.s}".encode())
        self._fingerprint = h.digest()
        self._table = self._build_table()

    @property
    def fingerprint(self) -> bytes:
        return self._fingerprint

    @property
    def session(self) -> ActiveSession:
        return self._sess

    def describe(self) -> str:
        s = self._sess
        return f"spdz2k[party {s.party_id}/{s.n_parties}]:{self._fingerprint.hex()[:8]}"

    def advice(self, op: Op, layout: str) -> str:
        return (
            f"MAC mode has no authenticated {op.symbol!r}; compose it from the supported "
            "operations or use the semi-honest engine (securecomp.mpc.run_local)"
        )

    def table(self, layout: str) -> Mapping[Op, Implementation]:
        return self._table if layout == LAYOUT else {}

    def wrap(self, share: AuthShare, bound: int) -> SecureTensor:
        """Wrap this party's authenticated share with its tracked bound."""
        s = self._sess
        r = check_representable(int(bound), "result", s.frac_bits, s.params.k)
        return SecureTensor._wrap(self, share, share.shape, layout=LAYOUT, meta={"bound": r})

    def reveal(self, tensor: SecureTensor, to: Any) -> npt.NDArray[np.float64] | None:
        if not isinstance(tensor.payload, AuthShare) or tensor.backend is not self:
            raise UnsupportedOperationError("reveal a tensor of this session's spdz2k backend")
        ring = self._sess.reveal_share(tensor.payload, to)
        return None if ring is None else self._sess.decode(ring)

    def _build_table(self) -> dict[Op, Implementation]:
        ops = ActiveOps(self)
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
