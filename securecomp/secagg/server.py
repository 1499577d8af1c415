"""The secure-aggregation server: a sans-I/O state machine (Bonawitz et al., CCS 2017, Fig. 4).

Threat model
------------
Semi-honest (honest-but-curious) server by default; up to the configured corrupt fraction
of clients may collude with it. The server learns the sum of the inputs of the clients that
survived to the masked-input stage, the set of clients that dropped at each stage, and (as
part of unmasking) the self-mask seeds of survivors and the mask keys of dropped clients,
which reveal nothing beyond the sum. The run's `LeakageLedger` records exactly this.

Malicious-server mode (``ThreatModel(malicious_server=True)``; Bonawitz et al., CCS 2017,
section 4 and Fig. 4, active model). This class is then the *honest* server of that
protocol: it verifies the clients' Ed25519 signatures against the pinned identity keys
(and the digest of the model it broadcast), forwards the signed key transcript, runs the
ConsistencyCheck round and hands each client a certificate of ``t`` signatures on ``U3``.
The security against a server that deviates does not rest on this class but on the
clients' checks (`securecomp.secagg.consistency`) and the threshold rule
(`securecomp.secagg.parameters`): an arbitrary server learns at most what this one does,
except for the following, which stay open:

* it chooses which clients count as dropped, so it can exclude any honest client from the
  sum (it learns the sum of the others, which is within the functionality);
* on a Harary graph (SecAgg+) it chooses the dropouts *after* seeing the graph, whereas
  the disconnection bound assumes dropouts independent of the labels. By dropping two
  runs of ``k / 2`` consecutive clients of the ring it can split the honest survivors into
  two arcs and learn each arc's sum (never a single input: each arc must hold ``t`` holders
  to be unmasked). The complete graph has no such split; prefer SecAgg against a
  malicious server when ``n`` allows;
* it influences the SecAgg+ labels by choosing which advertisements enter the transcript
  (see `securecomp.secagg.transcript` for the bound).

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

Malicious-server mode: step 1 also checks the signatures and sends every client the whole
signed transcript (SecAgg+ derives the round's graph from its hash); step 3 sends ``U3``
(`ConsistencyCheck`); a ConsistencyCheck stage collects signatures on ``U3`` from ``U4``
and sends each client a certificate (`UnmaskCertificate`); unmasking collects from ``U5``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from securecomp.crypto.shamir import FIELD_PRIME
from securecomp.crypto.x25519 import check_public_key
from securecomp.errors import (
    InsufficientParticipantsError,
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ReplayError,
)
from securecomp.net.report import LeakageLedger
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.consistency import certificate_signers, verify_advertisement
from securecomp.secagg.graph import CommunicationGraph
from securecomp.secagg.masking import MaskAccumulator, reduce_bits
from securecomp.secagg.messages import (
    SERVER,
    ActiveStage,
    AdvertiseKeys,
    AnyStage,
    ClientMessage,
    ConsistencyCheck,
    ConsistencySignature,
    Header,
    KeysBroadcast,
    MaskedInput,
    ServerMessage,
    ShareKeys,
    SharesDelivery,
    Stage,
    UnmaskCertificate,
    UnmaskRequest,
    UnmaskShares,
)
from securecomp.secagg.transcript import (
    model_digest,
    survivors_message,
    transcript_hash,
)
from securecomp.secagg.unmasking import SecAggResult, remove_masks

__all__ = ["SecAggResult", "SecAggServer"]

_CLIENT_TYPES = (AdvertiseKeys, ShareKeys, MaskedInput, ConsistencySignature, UnmaskShares)


class SecAggServer:
    """The server's side of one aggregation round.

    Invariant: `result` is ``None`` unless every stage closed without abort; an aborted
    server never produces output.

    Parameters
    ----------
    config : SecAggConfig
    round : int
        Round number (must match the clients').
    model_hash : bytes, optional
        Opaque identifier of the model broadcast for this round; required against a
        malicious server (clients bind it into their signed advertisements), refused
        otherwise.
    """

    def __init__(
        self, config: SecAggConfig, *, round: int = 0, model_hash: bytes | None = None
    ) -> None:
        if not isinstance(config, SecAggConfig):
            raise ParameterError("config must be a SecAggConfig")
        if isinstance(round, bool) or not isinstance(round, int) or not 0 <= round < 1 << 63:
            raise ParameterError(f"round must be an int in [0, 2^63), got {round!r}")
        self._malicious = config.malicious
        if self._malicious and model_hash is None:
            raise ParameterError(
                "against a malicious server the clients sign the digest of the model they "
                "received: give the server the model_hash it broadcast"
            )
        if not self._malicious and model_hash is not None:
            raise ParameterError(
                "model_hash is only bound against a malicious server "
                "(ThreatModel(malicious_server=True)); a semi-honest session signs nothing"
            )
        self.config = config
        self.round = round
        self.leakage = LeakageLedger()
        self._order = config.stages
        self._model = model_digest(model_hash) if model_hash is not None else b""
        # The round's graph: a SecAgg+ template is labelled from the signed transcript.
        self._graph: CommunicationGraph = config.graph
        self._transcript = b""
        self._signatures: dict[int, bytes] = {}
        self._statement = b""  # the signed statement on U3 (ConsistencyCheck)
        self._stage_index = 0
        self._aborted: ProtocolAbort | None = None
        self._result: SecAggResult | None = None
        self._expected: frozenset[int] = frozenset(range(config.n))
        self._received: dict[int, ClientMessage] = {}
        self._live: dict[AnyStage, tuple[int, ...]] = {}
        self._dropped: dict[AnyStage, tuple[int, ...]] = {}
        self._keys: dict[int, tuple[bytes, bytes]] = {}
        self._seen_keys: set[bytes] = set()
        self._acc: MaskAccumulator | None = None

    # --- state -------------------------------------------------------------------------

    @property
    def stage(self) -> AnyStage | None:
        """The stage being collected (``None`` once done or aborted)."""
        if self._aborted is not None or self._stage_index >= len(self._order):
            return None
        return self._order[self._stage_index]

    @property
    def aborted(self) -> bool:
        return self._aborted is not None

    @property
    def result(self) -> SecAggResult | None:
        """The aggregate, or ``None`` (not finished, or aborted: then never)."""
        return self._result

    @property
    def transcript(self) -> bytes:
        """Hash of the signed key transcript (malicious-server mode; empty before)."""
        return self._transcript

    @property
    def graph(self) -> CommunicationGraph:
        """The round's graph (for SecAgg+ against a malicious server: once keys are in)."""
        return self._graph

    @property
    def dropped(self) -> dict[AnyStage, tuple[int, ...]]:
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
        if type(msg) not in _CLIENT_TYPES:
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
        elif isinstance(msg, ConsistencySignature):
            self._check_consistency_signature(msg)
        else:
            self._check_unmask_shares(msg)
        self._received[u] = msg

    def _check_keys(self, msg: AdvertiseKeys) -> None:
        c = check_public_key(msg.c_public, name="c public key")
        s = check_public_key(msg.s_public, name="s public key")
        if self._malicious:
            verify_advertisement(self.config, round=self.round, model=self._model, msg=msg)
        elif msg.signed:
            raise MalformedMessageError("signed advertisement in a semi-honest session")
        if c == s or c in self._seen_keys or s in self._seen_keys:
            raise ReplayError(
                f"client {msg.header.sender} advertised a public key already in use (identical "
                "keys break mask independence); rejected"
            )
        self._seen_keys.update((c, s))

    def _check_consistency_signature(self, msg: ConsistencySignature) -> None:
        if self.config.identities is None:  # pragma: no cover - malicious mode has them
            raise MalformedMessageError("no identities to check the signature against")
        u = msg.header.sender
        self.config.identities.verify(u, self._statement, msg.signature)  # type: ignore[arg-type]

    def _check_share_keys(self, msg: ShareKeys) -> None:
        u = msg.header.sender
        live = set(self._live[Stage.ADVERTISE_KEYS])
        want = tuple(v for v in self._graph.neighbours(u) if v in live)  # type: ignore[arg-type]
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
        closed = self._graph.closed_neighbourhood(u)  # type: ignore[arg-type]
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
            if stage is Stage.ADVERTISE_KEYS and self._malicious:
                self._derive_graph(live)
            self._require(stage, live)
            if stage is Stage.ADVERTISE_KEYS:
                out: list[ServerMessage] = self._close_advertise_keys(live)
            elif stage is Stage.SHARE_KEYS:
                out = self._close_share_keys(live)
            elif stage is Stage.MASKED_INPUT_COLLECTION:
                out = self._close_masked_input_collection(live)
            elif stage is ActiveStage.CONSISTENCY_CHECK:
                out = self._close_consistency_check(live)
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

    def _require(self, stage: AnyStage, live: tuple[int, ...]) -> None:
        # Every client whose secrets may still be needed must keep t live holders: the live
        # clients and, once masked inputs are in, the clients that dropped after sharing.
        # After the ConsistencyCheck, the holders are the clients that signed U3.
        t = self.config.threshold
        alive = set(live)
        if stage in (Stage.MASKED_INPUT_COLLECTION, ActiveStage.CONSISTENCY_CHECK):
            owners: tuple[int, ...] = self._live[Stage.SHARE_KEYS]
        elif stage is Stage.UNMASKING:
            return  # checked per secret in _close_unmasking
        else:
            owners = live
        if len(alive) < t:
            short = list(owners)
        elif self._graph.is_complete:
            short = []
        else:
            graph = self._graph
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

    def _derive_graph(self, live: tuple[int, ...]) -> None:
        # The signed key transcript (in id order) fixes the round: its hash is bound into
        # every ConsistencyCheck signature and labels a SecAgg+ graph.
        ids, c, s, sig = [], [], [], []
        for u in live:
            m = self._received[u]
            if isinstance(m, AdvertiseKeys):
                ids.append(u)
                c.append(m.c_public)
                s.append(m.s_public)
                sig.append(m.signature)
                self._signatures[u] = m.signature
        cfg = self.config
        self._transcript = transcript_hash(
            fingerprint=cfg.fingerprint,
            session=cfg.session,
            round=self.round,
            model=self._model,
            ids=ids,
            c_publics=c,
            s_publics=s,
            signatures=sig,
        )
        self._graph = cfg.round_graph(self._transcript)

    def _close_advertise_keys(self, live: tuple[int, ...]) -> list[ServerMessage]:
        for u in live:
            m = self._received[u]
            if isinstance(m, AdvertiseKeys):
                self._keys[u] = (m.c_public, m.s_public)
        self._received = {}
        graph = self._graph
        out: list[ServerMessage] = []
        if self._malicious:
            # Everyone gets the whole signed transcript, to recompute its hash.
            c = tuple(self._keys[v][0] for v in live)
            s = tuple(self._keys[v][1] for v in live)
            sig = tuple(self._signatures[v] for v in live)
            return [KeysBroadcast(self._header(u), live, c, s, sig) for u in live]
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
        graph = self._graph
        if self._malicious:
            cfg = self.config
            self._statement = survivors_message(
                fingerprint=cfg.fingerprint,
                session=cfg.session,
                round=self.round,
                transcript=self._transcript,
                n=cfg.n,
                survivors=live,
            )
            return [ConsistencyCheck(self._header(u), live) for u in live]
        alive = set(live)
        if graph.is_complete:
            return [UnmaskRequest(self._header(u), live) for u in live]
        return [
            UnmaskRequest(
                self._header(u), tuple(v for v in graph.closed_neighbourhood(u) if v in alive)
            )
            for u in live
        ]

    def _close_consistency_check(self, signers: tuple[int, ...]) -> list[ServerMessage]:
        sigs = {
            u: m.signature for u, m in self._received.items() if isinstance(m, ConsistencySignature)
        }
        self._received = {}
        graph, t = self._graph, self.config.threshold
        if graph.is_complete:  # the same t signatures convince everyone: build them once
            chosen = certificate_signers(graph, t, signers, signers[0])
            cert = tuple(sigs[v] for v in chosen)
            return [UnmaskCertificate(self._header(u), chosen, cert) for u in signers]
        out: list[ServerMessage] = []
        for u in signers:
            chosen = certificate_signers(graph, t, signers, u)
            out.append(
                UnmaskCertificate(self._header(u), chosen, tuple(sigs[v] for v in chosen))
            )
        return out

    def _close_unmasking(self, responders: tuple[int, ...]) -> None:
        cfg, graph = self.config, self._graph
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
        responses = {w: m for w in responders if isinstance(m := self._received[w], UnmaskShares)}
        self._received = {}
        if self._acc is None:  # unreachable: U3 is non-empty
            raise ProtocolAbort(Stage.UNMASKING.value, "no masked input was received")
        acc = self._acc
        remove_masks(
            acc,
            graph,
            responses,
            alive=alive,
            dropped=dropped,
            s_publics={v: k[1] for v, k in self._keys.items()},
            threshold=t,
            session=cfg.session,
            round=self.round,
        )
        aggregate = acc.result().astype(np.uint64)
        reduce_bits(aggregate, cfg.bits)
        self._acc = None
        what = f"sum of the inputs of the {len(alive)} surviving clients"
        if cfg.dp is not None:
            what = (
                f"sum modulo 2^{cfg.bits} of the DP-encoded ({cfg.dp.mechanism}) inputs of the "
                f"{len(alive)} surviving clients"
            )
        self.leakage.record("server", what, Stage.UNMASKING.value)
        self.leakage.record(
            "server",
            "self-mask seeds of surviving clients and mask keys of clients dropped after "
            "sharing (reveal nothing beyond the sum)",
            Stage.UNMASKING.value,
        )
        self._result = SecAggResult(cfg, aggregate, tuple(alive), dict(self._dropped))
