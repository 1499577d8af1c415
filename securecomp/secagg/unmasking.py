"""The server's unmasking step: reconstruct the needed secrets and remove their masks.

Bonawitz et al. (CCS 2017, Fig. 4, round 4): from the shares the responders sent, the
server reconstructs ``b_u`` of every survivor ``u in U3`` and ``s_v^SK`` of every client
``v in U2 \\ U3`` that dropped after sharing, then subtracts the survivors' self masks
``PRG(b_u)`` and the pairwise masks ``PRG(s_{u,v})`` the survivors added for the dropped
clients, leaving the sum of the survivors' inputs. Shares of one secret are combined with
the Lagrange coefficients of the first ``t`` holders (`securecomp.crypto.shamir`), batched
over all secrets that share a holder set. A reconstructed key is checked against the
public key its owner advertised, so wrong shares abort rather than corrupt the sum.

`SecAggResult` is what the server outputs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from securecomp.crypto.shamir import limbs_for, reconstruct_secrets
from securecomp.crypto.x25519 import X25519KeyPair
from securecomp.encoding.quantize import dequantize
from securecomp.errors import InsufficientParticipantsError, IntegrityError, ProtocolAbort
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.graph import CommunicationGraph
from securecomp.secagg.masking import MaskAccumulator, pair_seed, self_seed
from securecomp.secagg.messages import AnyStage, Stage, UnmaskShares
from securecomp.secagg.shares import SECRET_BYTES

__all__ = ["SecAggResult", "remove_masks"]

_LIMBS = limbs_for(SECRET_BYTES)


@dataclass(frozen=True, eq=False)
class SecAggResult:
    """The server's output: ``sum_{u in survivors} x_u mod 2^b``.

    Invariant: ``aggregate == (sum of the survivors' inputs) mod 2^b``. For quantized
    inputs, by the configuration's no-wrap check, `dequantized` is that sum over ``scale``
    exactly. For DP-encoded inputs (``config.dp``) it is the ring element to pass to
    `securecomp.dp.decode_sum` (with the round's rotation).
    """

    config: SecAggConfig
    aggregate: npt.NDArray[np.uint64]
    survivors: tuple[int, ...]
    dropped: dict[AnyStage, tuple[int, ...]] = field(default_factory=dict)

    def dequantized(self) -> npt.NDArray[np.float64]:
        """The sum of the survivors' inputs as floats (divide by ``len(survivors)`` for the
        mean).

        Raises
        ------
        ParameterError
            For DP-encoded inputs: decode with `securecomp.dp.decode_sum` instead.
        """
        n = max(len(self.survivors), 1) * self.config.max_weight
        return dequantize(self.aggregate, n, self.config.quantization)


def _reconstruct(
    table: Mapping[tuple[str, int], Mapping[int, bytes]],
    wanted: Sequence[tuple[str, int]],
    t: int,
) -> dict[tuple[str, int], bytes]:
    groups: dict[tuple[int, ...], list[tuple[str, int]]] = defaultdict(list)
    short = []
    for wanted_key in wanted:
        holder_ids = sorted(table.get(wanted_key, {}))
        if len(holder_ids) < t:
            short.append(wanted_key[1])
            continue
        groups[tuple(holder_ids[:t])].append(wanted_key)
    if short:
        raise InsufficientParticipantsError(
            Stage.UNMASKING.value,
            f"fewer than t = {t} shares arrived for the secrets of clients {short[:20]}; "
            "their masks cannot be removed and nothing is released",
            short,
        )
    secrets_of: dict[tuple[str, int], bytes] = {}
    for holders, keys in groups.items():
        shares = np.empty((len(holders), len(keys), _LIMBS), dtype=np.uint32)
        for j, key in enumerate(keys):
            col = table[key]
            shares[:, j] = np.frombuffer(b"".join(col[w] for w in holders), "<u4").reshape(
                len(holders), _LIMBS
            )
        try:
            values = reconstruct_secrets([w + 1 for w in holders], shares, SECRET_BYTES)
        except IntegrityError as exc:
            raise ProtocolAbort(
                Stage.UNMASKING.value, "shares reconstruct to no valid secret", list(holders)
            ) from exc
        secrets_of.update(zip(keys, values, strict=True))
    return secrets_of


def remove_masks(
    acc: MaskAccumulator,
    graph: CommunicationGraph,
    responses: Mapping[int, UnmaskShares],
    *,
    alive: Sequence[int],
    dropped: Sequence[int],
    s_publics: Mapping[int, bytes],
    threshold: int,
    session: bytes,
    round: int,
) -> None:
    """Subtract from ``acc`` (the sum of the masked inputs of ``alive``) every mask.

    Raises
    ------
    InsufficientParticipantsError
        Fewer than ``threshold`` shares of some needed secret.
    ProtocolAbort
        Shares that reconstruct no valid secret, or a key that does not match its owner's
        advertised public key.
    """
    # share tables: (kind, owner) -> {holder: 36-byte share}
    table: dict[tuple[str, int], dict[int, bytes]] = defaultdict(dict)
    for w, m in responses.items():
        for v, sh in zip(m.b_owners, m.b_shares, strict=True):
            table[("b", v)][w] = sh
        for v, sh in zip(m.sk_owners, m.sk_shares, strict=True):
            table[("sk", v)][w] = sh
    wanted = [("b", v) for v in alive] + [("sk", v) for v in dropped]
    secrets_of = _reconstruct(table, wanted, threshold)
    for v in alive:
        acc.add(self_seed(secrets_of[("b", v)], session=session, round=round, party=v), -1)
    alive_set = set(alive)
    for v in dropped:
        keypair = X25519KeyPair.from_private_bytes(secrets_of[("sk", v)])
        if keypair.public_bytes != s_publics[v]:
            raise ProtocolAbort(
                Stage.UNMASKING.value,
                f"the key reconstructed for dropped client {v} does not match its public key",
                [v],
            )
        for u in graph.neighbours(v):
            if u in alive_set:
                seed = pair_seed(keypair, s_publics[u], session=session, round=round, me=v, peer=u)
                # u added sign(u, v) * mask; remove it.
                acc.add(seed, -1 if u < v else +1)
