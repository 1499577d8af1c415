"""The secure-aggregation server: a sans-I/O state machine (Bonawitz et al., CCS 2017, Fig. 4).

Threat model
------------
Semi-honest (honest-but-curious) server; up to the configured corrupt fraction of clients
may collude with it. The server learns the sum of the inputs of the clients that survived
to the masked-input stage, the set of clients that dropped at each stage, and (as part of
unmasking) the self-mask seeds of survivors and the mask keys of dropped clients, which
reveal nothing beyond the sum. The run's `LeakageLedger` records exactly this.

Driving it
----------
A driver feeds every client message to `receive` (which validates it: `ReplayError` for
another session, round, configuration, stage or a duplicate; `MalformedMessageError` for
content that does not match what the stage requires; the message is then dropped and the
client stays pending) and calls `close_stage` when everyone answered or its timeout
expired; `pending` says who is still awaited. `close_stage` returns the messages for the
next stage, and after the last stage `result` holds the aggregate.

Abort rules: a stage closes only if every live client still has at least ``t`` live
members in its closed neighbourhood (for the complete graph: at least ``t`` live clients);
otherwise `InsufficientParticipantsError` and no output ever. Before unmasking the server
checks that the survivors and the dropped clients are disjoint, that every needed secret
has ``t`` shares, and that each reconstructed key matches the public key its owner
advertised (`ProtocolAbort` otherwise).

Steps
-----
1. AdvertiseKeys: collect ``(c_u^PK, s_u^PK)`` from ``U1``; send each client its live
   neighbours' keys.
2. ShareKeys: collect sealed shares from ``U2``; forward each holder its ciphertexts.
3. MaskedInputCollection: sum the masked inputs ``y_u`` of ``U3`` as they arrive; send
   each survivor the survivors of its neighbourhood.
4. Unmasking: collect shares from ``U4``; reconstruct ``b_u`` for ``u`` in ``U3`` and
   ``s_v^SK`` for ``v`` in ``U2 \\ U3``; subtract self masks and the dropped clients'
   pairwise masks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from securecomp.crypto.shamir import FIELD_PRIME, limbs_for, reconstruct_secrets
from securecomp.crypto.x25519 import X25519KeyPair, check_public_key
from securecomp.encoding.quantize import dequantize
from securecomp.errors import (
    InsufficientParticipantsError,
    IntegrityError,
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ReplayError,
)
from securecomp.net.report import LeakageLedger
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.masking import MaskAccumulator, pair_seed, reduce_bits, self_seed
from securecomp.secagg.messages import (
    SERVER,
    AdvertiseKeys,
    ClientMessage,
    Header,
    KeysBroadcast,
    MaskedInput,
    ServerMessage,
    ShareKeys,
    SharesDelivery,
    Stage,
    UnmaskRequest,
    UnmaskShares,
)
from securecomp.secagg.shares import SECRET_BYTES

__all__ = ["SecAggResult", "SecAggServer"]

_ORDER = (
    Stage.ADVERTISE_KEYS,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT_COLLECTION,
    Stage.UNMASKING,
)
_LIMBS = limbs_for(SECRET_BYTES)


@dataclass(frozen=True, eq=False)
class SecAggResult:
    """The server's output: ``sum_{u in survivors} x_u mod 2^b``.

    Invariant: ``aggregate == (sum of the survivors' quantized inputs) mod 2^b`` and, by the
    configuration's no-wrap check, `dequantized` is that sum over ``scale`` exactly.
    """

    config: SecAggConfig
    aggregate: npt.NDArray[np.uint64]
    survivors: tuple[int, ...]
    dropped: dict[Stage, tuple[int, ...]] = field(default_factory=dict)

    def dequantized(self) -> npt.NDArray[np.float64]:
        """The sum of the survivors' inputs as floats (divide by ``len(survivors)`` for the
        mean)."""
        n = max(len(self.survivors), 1) * self.config.max_weight
        return dequantize(self.aggregate, n, self.config.quantization)


class SecAggServer:
    """The server's side of one aggregation round.

    Invariant: `result` is ``None`` unless all four stages closed without abort; an aborted
    server never produces output.

    Parameters
    ----------
    config : SecAggConfig
    round : int
        Round number (must match the clients').
    """

    def __init__(self, config: SecAggConfig, *, round: int = 0) -> None:
        if not isinstance(config, SecAggConfig):
            raise ParameterError("config must be a SecAggConfig")
        if isinstance(round, bool) or not isinstance(round, int) or not 0 <= round < 1 << 63:
            raise ParameterError(f"round must be an int in [0, 2^63), got {round!r}")
        self.config = config
        self.round = round
        self.leakage = LeakageLedger()
        self._stage_index = 0
        self._aborted: ProtocolAbort | None = None
        self._result: SecAggResult | None = None
        self._expected: frozenset[int] = frozenset(range(config.n))
        self._received: dict[int, ClientMessage] = {}
        self._live: dict[Stage, tuple[int, ...]] = {}
        self._dropped: dict[Stage, tuple[int, ...]] = {}
        self._keys: dict[int, tuple[bytes, bytes]] = {}
        self._seen_keys: set[bytes] = set()
        self._acc: MaskAccumulator | None = None

    # --- state -------------------------------------------------------------------------

    @property
    def stage(self) -> Stage | None:
        """The stage being collected (``None`` once done or aborted)."""
        if self._aborted is not None or self._stage_index >= len(_ORDER):
            return None
        return _ORDER[self._stage_index]

    @property
    def aborted(self) -> bool:
        return self._aborted is not None

    @property
    def result(self) -> SecAggResult | None:
        """The aggregate, or ``None`` (not finished, or aborted: then never)."""
        return self._result

    @property
    def dropped(self) -> dict[Stage, tuple[int, ...]]:
        """Clients lost at each closed stage."""
        return dict(self._dropped)

    def pending(self) -> frozenset[int]:
        """Clients whose message for the current stage has not been accepted yet."""
        if self.stage is None:
            return frozenset()
        return self._expected - self._received.keys()

    # --- receiving ---------------------------------------------------------------------

    def receive(self, msg: ClientMessage) -> None:
        """Validate and store one client message of the current stage.

        Raises
        ------
        ReplayError
            Another session, round, configuration or recipient; another stage (out of
            order); a sender not in this stage; a duplicate.
        MalformedMessageError
            Not a client message, an invalid sender id, or content the stage forbids.
        """
        if type(msg) not in (AdvertiseKeys, ShareKeys, MaskedInput, UnmaskShares):
            raise MalformedMessageError(
                f"server expects a client message, got {type(msg).__name__}"
            )
        stage = self.stage
        if stage is None:
            raise ReplayError("the server has finished (or aborted) this round; message ignored")
        h, cfg = msg.header, self.config
        if h.session != cfg.session:
            raise ReplayError(f"message from session {h.session.hex()} is not for this session")
        if h.round != self.round:
            raise ReplayError(f"message from round {h.round} delivered in round {self.round}")
        if h.fingerprint != cfg.fingerprint:
            raise ReplayError("message made under another configuration (fingerprint differs)")
        if h.recipient != SERVER:
            raise ReplayError(f"message for {h.recipient!r} delivered to the server")
        u = h.sender
        if type(u) is not int or not 0 <= u < cfg.n:
            raise MalformedMessageError(f"sender {u!r} is not a client id of this session")
        if msg.STAGE is not stage:
            raise ReplayError(
                f"{type(msg).__name__} from client {u} belongs to stage {msg.STAGE.value}, but "
                f"the server is collecting {stage.value}: out of order; ignored"
            )
        if u not in self._expected:
            raise ReplayError(f"client {u} is not a participant of stage {stage.value}")
        if u in self._received:
            raise ReplayError(f"duplicate {type(msg).__name__} from client {u}; ignored")
        if isinstance(msg, AdvertiseKeys):
            self._check_keys(msg)
        elif isinstance(msg, ShareKeys):
            self._check_share_keys(msg)
        elif isinstance(msg, MaskedInput):
            self._accept_masked_input(msg)
        else:
            self._check_unmask_shares(msg)
        self._received[u] = msg

    def _check_keys(self, msg: AdvertiseKeys) -> None:
        c = check_public_key(msg.c_public, name="c public key")
        s = check_public_key(msg.s_public, name="s public key")
        if c == s or c in self._seen_keys or s in self._seen_keys:
            raise ReplayError(
                f"client {msg.header.sender} advertised a public key already in use (identical "
                "keys break mask independence); rejected"
            )
        self._seen_keys.update((c, s))

    def _check_share_keys(self, msg: ShareKeys) -> None:
        u = msg.header.sender
        live = set(self._live[Stage.ADVERTISE_KEYS])
        want = tuple(v for v in self.config.neighbours(u) if v in live)  # type: ignore[arg-type]
        if msg.recipients != want:
            raise MalformedMessageError(
                f"client {u} must send sealed shares to exactly its live neighbours {list(want)}"
            )

    def _accept_masked_input(self, msg: MaskedInput) -> None:
        cfg = self.config
        if msg.bits != cfg.bits or msg.values.size != cfg.dim or msg.values.dtype != cfg.dtype:
            raise MalformedMessageError(
                f"masked input must be {cfg.dim} values of {cfg.bits} bits, got "
                f"{msg.values.size} of {msg.bits}"
            )
        if self._acc is None:
            self._acc = MaskAccumulator(np.zeros(cfg.dim, cfg.dtype), cfg.dtype, cfg.bits)
        self._acc.add_vector(msg.values)

    def _check_unmask_shares(self, msg: UnmaskShares) -> None:
        u = msg.header.sender
        alive = set(self._live[Stage.MASKED_INPUT_COLLECTION])
        gone = set(self._dropped[Stage.MASKED_INPUT_COLLECTION])
        closed = self.config.graph.closed_neighbourhood(u)  # type: ignore[arg-type]
        want_b = tuple(v for v in closed if v in alive)
        want_sk = tuple(v for v in closed if v in gone)
        if msg.b_owners != want_b or msg.sk_owners != want_sk:
            raise MalformedMessageError(
                f"client {u} must send self-mask shares for {list(want_b)} and key shares for "
                f"{list(want_sk)}"
            )
        for blob in (*msg.b_shares, *msg.sk_shares):
            if int(np.frombuffer(blob, "<u4").max()) >= FIELD_PRIME:
                raise MalformedMessageError(f"client {u} sent a share outside the field")

    # --- closing stages ----------------------------------------------------------------

    def close_stage(self) -> list[ServerMessage]:
        """End the current stage with the messages accepted so far.

        Returns
        -------
        list of ServerMessage
            The next stage's messages, one per live client (empty after the last stage,
            when `result` is set).

        Raises
        ------
        InsufficientParticipantsError
            Too few live clients (in some neighbourhood) to continue; the server aborts.
        ProtocolAbort
            Inconsistent unmasking material; the server aborts.
        """
        stage = self.stage
        if stage is None:
            if self._aborted is not None:
                raise self._aborted
            raise ReplayError("the round is already finished")
        live = tuple(sorted(self._received))
        self._live[stage] = live
        self._dropped[stage] = tuple(sorted(self._expected - set(live)))
        if self._dropped[stage]:
            self.leakage.record(
                "server",
                f"clients dropped at {stage.value}: {list(self._dropped[stage])}",
                stage.value,
            )
        try:
            self._require(stage, live)
            if stage is Stage.ADVERTISE_KEYS:
                out: list[ServerMessage] = self._close_advertise_keys(live)
            elif stage is Stage.SHARE_KEYS:
                out = self._close_share_keys(live)
            elif stage is Stage.MASKED_INPUT_COLLECTION:
                out = self._close_masked_input_collection(live)
            else:
                self._close_unmasking(live)
                out = []
        except ProtocolAbort as exc:
            self._abort(exc)
            raise
        self._stage_index += 1
        self._expected = frozenset(live)
        return out

    def _abort(self, exc: ProtocolAbort) -> None:
        self._aborted = exc
        self._acc = None
        self._received.clear()
        self._result = None

    def _header(self, recipient: int) -> Header:
        cfg = self.config
        return Header(cfg.session, self.round, SERVER, recipient, cfg.fingerprint)

    def _require(self, stage: Stage, live: tuple[int, ...]) -> None:
        # Every client whose secrets may still be needed must keep t live holders: the live
        # clients and, once masked inputs are in, the clients that dropped after sharing.
        t = self.config.threshold
        alive = set(live)
        if stage is Stage.MASKED_INPUT_COLLECTION:
            owners: tuple[int, ...] = self._live[Stage.SHARE_KEYS]
        elif stage is Stage.UNMASKING:
            return  # checked per secret in _close_unmasking
        else:
            owners = live
        if len(alive) < t:
            short = list(owners)
        elif self.config.graph.is_complete:
            short = []
        else:
            graph = self.config.graph
            short = [
                u for u in owners if sum(v in alive for v in graph.closed_neighbourhood(u)) < t
            ]
        if short or not live:
            raise InsufficientParticipantsError(
                stage.value,
                f"{len(live)} clients answered; clients {short[:20]} have fewer than "
                f"t = {t} live members in their neighbourhood, so the round cannot finish; "
                "nothing is released",
                short,
            )

    def _close_advertise_keys(self, live: tuple[int, ...]) -> list[ServerMessage]:
        for u in live:
            m = self._received[u]
            if isinstance(m, AdvertiseKeys):
                self._keys[u] = (m.c_public, m.s_public)
        self._received = {}
        graph = self.config.graph
        out: list[ServerMessage] = []
        if graph.is_complete:
            # Everyone gets the same list: build it once.
            c = tuple(self._keys[v][0] for v in live)
            s = tuple(self._keys[v][1] for v in live)
            return [KeysBroadcast(self._header(u), live, c, s) for u in live]
        alive = set(live)
        for u in live:
            ids = tuple(v for v in graph.closed_neighbourhood(u) if v in alive)
            out.append(
                KeysBroadcast(
                    self._header(u),
                    ids,
                    tuple(self._keys[v][0] for v in ids),
                    tuple(self._keys[v][1] for v in ids),
                )
            )
        return out

    def _close_share_keys(self, live: tuple[int, ...]) -> list[ServerMessage]:
        alive = set(live)
        inbox: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for u in live:  # ascending, so every inbox is sorted by sender
            m = self._received[u]
            if isinstance(m, ShareKeys):
                for v, ct in zip(m.recipients, m.ciphertexts, strict=True):
                    if v in alive:
                        inbox[v].append((u, ct))
        self._received = {}
        out: list[ServerMessage] = []
        for v in live:
            items = inbox.get(v, [])
            out.append(
                SharesDelivery(
                    self._header(v), tuple(u for u, _ in items), tuple(c for _, c in items)
                )
            )
        return out

    def _close_masked_input_collection(self, live: tuple[int, ...]) -> list[ServerMessage]:
        self._received = {}
        graph = self.config.graph
        alive = set(live)
        if graph.is_complete:
            return [UnmaskRequest(self._header(u), live) for u in live]
        return [
            UnmaskRequest(
                self._header(u), tuple(v for v in graph.closed_neighbourhood(u) if v in alive)
            )
            for u in live
        ]

    def _close_unmasking(self, responders: tuple[int, ...]) -> None:
        cfg, graph = self.config, self.config.graph
        t = cfg.threshold
        alive = self._live[Stage.MASKED_INPUT_COLLECTION]
        dropped = self._dropped[Stage.MASKED_INPUT_COLLECTION]
        # Never unmask a client both ways: that would reveal its input (Flower misses this).
        if set(alive) & set(dropped):
            raise ProtocolAbort(
                Stage.UNMASKING.value,
                "a client is listed as both surviving and dropped",
                sorted(set(alive) & set(dropped)),
            )
        # share tables: (kind, owner) -> {holder: 36-byte share}
        table: dict[tuple[str, int], dict[int, bytes]] = defaultdict(dict)
        for w in responders:
            m = self._received[w]
            if isinstance(m, UnmaskShares):
                for v, sh in zip(m.b_owners, m.b_shares, strict=True):
                    table[("b", v)][w] = sh
                for v, sh in zip(m.sk_owners, m.sk_shares, strict=True):
                    table[("sk", v)][w] = sh
        self._received = {}
        wanted = [("b", v) for v in alive] + [("sk", v) for v in dropped]
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
        if self._acc is None:  # unreachable: U3 is non-empty
            raise ProtocolAbort(Stage.UNMASKING.value, "no masked input was received")
        acc, session, rnd = self._acc, cfg.session, self.round
        for v in alive:
            acc.add(self_seed(secrets_of[("b", v)], session=session, round=rnd, party=v), -1)
        alive_set = set(alive)
        for v in dropped:
            keypair = X25519KeyPair.from_private_bytes(secrets_of[("sk", v)])
            if keypair.public_bytes != self._keys[v][1]:
                raise ProtocolAbort(
                    Stage.UNMASKING.value,
                    f"the key reconstructed for dropped client {v} does not match its public key",
                    [v],
                )
            for u in graph.neighbours(v):
                if u in alive_set:
                    seed = pair_seed(
                        keypair, self._keys[u][1], session=session, round=rnd, me=v, peer=u
                    )
                    # u added sign(u, v) * mask; remove it.
                    acc.add(seed, -1 if u < v else +1)
        aggregate = acc.result().astype(np.uint64)
        reduce_bits(aggregate, cfg.bits)
        self._acc = None
        self.leakage.record(
            "server",
            f"sum of the inputs of the {len(alive)} surviving clients",
            Stage.UNMASKING.value,
        )
        self.leakage.record(
            "server",
            "self-mask seeds of surviving clients and mask keys of clients dropped after "
            "sharing (reveal nothing beyond the sum)",
            Stage.UNMASKING.value,
        )
        self._result = SecAggResult(cfg, aggregate, tuple(alive), dict(self._dropped))
