"""The secure-aggregation client: a sans-I/O state machine (Bonawitz et al., CCS 2017, Fig. 4).

Threat model
------------
By default semi-honest server and clients; up to the configured corrupt fraction of
clients may collude with the server (`securecomp.secagg.parameters.ThreatModel`). The
server learns the sum of the surviving clients' inputs and the set of clients that dropped
at each stage, nothing else; a client learns the ids and public keys of its live
neighbours.

With ``ThreatModel(malicious_server=True)`` the server may deviate arbitrarily (Bonawitz et
al.'s active model; corrupt clients collude with it). The client then signs its key
advertisement with its pinned Ed25519 identity key, bound to the digest of the model it
received; accepts only signed neighbour keys; derives the SecAgg+ graph from the signed key
transcript; signs the survivor set ``U3`` in a ConsistencyCheck round; and reveals shares
only against ``t`` valid signatures on that same ``U3`` (`securecomp.secagg.consistency`).
With the threshold rule of `securecomp.secagg.parameters` the server then cannot collect
both shares of any honest client, and a split view (telling some clients that ``v``
dropped and others that it survived) makes the clients abort instead.

In both modes the honest client enforces the abort rules of the paper itself, so a
deviating server cannot make it reveal more than the protocol allows:

* fewer than ``t`` live members of its closed neighbourhood at any stage:
  `InsufficientParticipantsError`;
* identical public keys, a key list that omits or alters its own keys, ids outside its
  neighbourhood or repeated: `ProtocolAbort`;
* a sealed share that fails authentication or names another (owner, holder): `ProtocolAbort`
  (caused by `IntegrityError`);
* it never reveals both the self-mask share and the key share of the same client.

An aborted client wipes its secrets and answers nothing more. Messages that merely do not
belong (another session, round or configuration, a stage already passed or not reached,
a duplicate) raise `ReplayError` and leave the state unchanged; ill-formed ones raise
`MalformedMessageError` (mostly caught earlier by `decode_message`).

Steps (one handler per stage)
-----------------------------
1. AdvertiseKeys (`advertise_keys`): fresh X25519 key pairs ``(c_u, s_u)`` for this round.
2. ShareKeys (`handle` of `KeysBroadcast`): check the keys; draw ``b_u``; Shamir-share
   ``s_u^SK`` and ``b_u`` among the closed neighbourhood (threshold ``t``, point
   ``v + 1``); seal each neighbour's pair of shares under ``K_{u,v}``.
3. MaskedInputCollection (`handle` of `SharesDelivery`): open the shares received, then
   send ``y_u = x_u + PRG(b_u) + sum_v sign(u, v) PRG(s_{u,v})`` over the neighbours that
   sent shares.
4. Unmasking (`handle` of `UnmaskRequest`): for surviving neighbours (and itself) send the
   share of ``b_v``; for dropped neighbours the share of ``s_v^SK``.

Against a malicious server step 4 is split in two: ConsistencyCheck (`handle` of
`ConsistencyCheck`: check and sign ``U3``) and Unmasking (`handle` of `UnmaskCertificate`:
check the signatures, then reveal as in step 4).
"""

from __future__ import annotations

import enum
import secrets

import numpy as np
import numpy.typing as npt

from securecomp.crypto.ed25519 import Ed25519KeyPair
from securecomp.crypto.shamir import share_secrets
from securecomp.crypto.x25519 import X25519KeyPair
from securecomp.errors import (
    InsufficientParticipantsError,
    IntegrityError,
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ReplayError,
)
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.consistency import (
    authenticate_key_list,
    check_certificate,
    check_survivors,
)
from securecomp.secagg.graph import CommunicationGraph
from securecomp.secagg.inputs import check_input
from securecomp.secagg.masking import MaskAccumulator, pair_seed, self_seed, share_key
from securecomp.secagg.messages import (
    SERVER,
    ActiveStage,
    AdvertiseKeys,
    AnyStage,
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
from securecomp.secagg.shares import SECRET_BYTES, open_shares, seal_shares
from securecomp.secagg.transcript import advertisement_message, model_digest, survivors_message

__all__ = ["ClientState", "SecAggClient", "check_input"]


class ClientState(enum.StrEnum):
    """Where a client is; the next expected message follows from it."""

    READY = "ready"
    AWAIT_KEYS = "await_keys"
    AWAIT_SHARES = "await_shares"
    AWAIT_UNMASK = "await_unmask"
    AWAIT_CONSISTENCY = "await_consistency"
    AWAIT_CERTIFICATE = "await_certificate"
    DONE = "done"
    ABORTED = "aborted"


_EXPECTED: dict[ClientState, type] = {
    ClientState.AWAIT_KEYS: KeysBroadcast,
    ClientState.AWAIT_SHARES: SharesDelivery,
    ClientState.AWAIT_UNMASK: UnmaskRequest,
}
_EXPECTED_MALICIOUS: dict[ClientState, type] = {
    ClientState.AWAIT_KEYS: KeysBroadcast,
    ClientState.AWAIT_SHARES: SharesDelivery,
    ClientState.AWAIT_CONSISTENCY: ConsistencyCheck,
    ClientState.AWAIT_CERTIFICATE: UnmaskCertificate,
}
# The stage a client works in when it handles each server message.
_STAGE_OF: dict[type, AnyStage] = {
    KeysBroadcast: Stage.SHARE_KEYS,
    SharesDelivery: Stage.MASKED_INPUT_COLLECTION,
    UnmaskRequest: Stage.UNMASKING,
    ConsistencyCheck: ActiveStage.CONSISTENCY_CHECK,
    UnmaskCertificate: Stage.UNMASKING,
}


class SecAggClient:
    """One client's side of one aggregation round.

    Invariant: the client emits at most one message per stage, in stage order, and never
    both the self-mask share and the key share of the same owner.

    Parameters
    ----------
    config : SecAggConfig
        The session's agreed parameters.
    client_id : int
        This client's id, ``0 <= client_id < n``.
    values : array of unsigned int
        The quantized input (see `check_input`); copied.
    round : int
        Round number; keys are fresh for every round (make a new client per round).
    identity : Ed25519KeyPair, optional
        This client's identity key pair, whose public key the configuration pins; required
        against a malicious server (refused otherwise).
    model_hash : bytes, optional
        Opaque identifier of the model this client received for the round (e.g. its
        SHA-256); bound into the signed advertisement. Required against a malicious
        server (refused otherwise).
    """

    def __init__(
        self,
        config: SecAggConfig,
        client_id: int,
        values: npt.ArrayLike,
        *,
        round: int = 0,
        identity: Ed25519KeyPair | None = None,
        model_hash: bytes | None = None,
    ) -> None:
        if not isinstance(config, SecAggConfig):
            raise ParameterError("config must be a SecAggConfig")
        if isinstance(client_id, bool) or not isinstance(client_id, int):
            raise ParameterError(f"client_id must be an int, got {client_id!r}")
        if not 0 <= client_id < config.n:
            raise ParameterError(f"client_id must lie in [0, {config.n}), got {client_id}")
        if isinstance(round, bool) or not isinstance(round, int) or not 0 <= round < 1 << 63:
            raise ParameterError(f"round must be an int in [0, 2^63), got {round!r}")
        self.config = config
        self.id = client_id
        self.round = round
        self._malicious = config.malicious
        self._identity: Ed25519KeyPair | None = None
        self._model = b""
        if self._malicious:
            pinned = config.identities
            if pinned is None or identity is None or not pinned.matches(client_id, identity):
                raise ParameterError(
                    f"client {client_id} needs its identity key pair, the one pinned for it in "
                    "the configuration, to sign against a malicious server"
                )
            if model_hash is None:
                raise ParameterError(
                    "against a malicious server each client binds the model it received: give "
                    "model_hash (e.g. the SHA-256 of the broadcast weights)"
                )
            self._identity = identity
            self._model = model_digest(model_hash)
        elif identity is not None or model_hash is not None:
            raise ParameterError(
                "identity and model_hash are only used against a malicious server "
                "(ThreatModel(malicious_server=True)); a semi-honest session signs nothing"
            )
        self._x: npt.NDArray[np.unsignedinteger] | None = check_input(values, config)
        # Against a malicious server a SecAgg+ graph is known only once the keys are in.
        self._graph: CommunicationGraph | None = None
        self._closed: frozenset[int] = frozenset()
        if not config.graph.is_template:
            self._graph = config.graph
            self._closed = frozenset(config.graph.closed_neighbourhood(client_id))
        self._expected = _EXPECTED_MALICIOUS if self._malicious else _EXPECTED
        self._advert: AdvertiseKeys | None = None
        self._transcript = b""
        self._transcript_ids: frozenset[int] = frozenset()
        self._survivors: tuple[int, ...] = ()  # the U3 this client signed
        self._state = ClientState.READY
        self._c: X25519KeyPair | None = None
        self._s: X25519KeyPair | None = None
        self._b: bytes | None = None
        self._s_publics: dict[int, bytes] = {}
        self._enc_keys: dict[int, bytes] = {}
        self._u1: tuple[int, ...] = ()  # live neighbours after AdvertiseKeys (without u)
        self._u2: tuple[int, ...] = ()  # neighbours that sent us shares
        self._held: dict[int, tuple[bytes, bytes]] = {}  # owner -> (sk share, b share)
        self._own_b_share = b""
        self._revealed: dict[int, str] = {}  # owner -> "b" or "sk", never both

    # --- public API --------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def aborted(self) -> bool:
        return self._state is ClientState.ABORTED

    def advertise_keys(self) -> AdvertiseKeys:
        """Stage 1 (AdvertiseKeys): generate this round's key pairs and announce them."""
        if self._state is not ClientState.READY:
            raise ReplayError(f"client {self.id} already advertised its keys for this round")
        self._c = X25519KeyPair.generate()
        self._s = X25519KeyPair.generate()
        self._state = ClientState.AWAIT_KEYS
        c, s = self._c.public_bytes, self._s.public_bytes
        if self._identity is None:
            return AdvertiseKeys(self._header(), c, s)
        cfg = self.config
        statement = advertisement_message(
            fingerprint=cfg.fingerprint,
            session=cfg.session,
            round=self.round,
            model=self._model,
            client=self.id,
            c_public=c,
            s_public=s,
        )
        self._advert = AdvertiseKeys(
            self._header(), c, s, self._identity.sign(statement), self._model
        )
        return self._advert

    def handle(
        self, msg: ServerMessage
    ) -> ShareKeys | MaskedInput | ConsistencySignature | UnmaskShares:
        """Process the server's message for the current stage and return the reply.

        Raises
        ------
        ReplayError
            The message belongs to another session, round, configuration, recipient or
            stage, or repeats one already processed; nothing changes.
        MalformedMessageError
            Not a server message of this protocol; nothing changes.
        InsufficientParticipantsError, ProtocolAbort
            An abort rule fired: the client is now aborted and wiped.
        """
        self._check_envelope(msg)
        try:
            if isinstance(msg, KeysBroadcast):
                return self._share_keys(msg)
            if isinstance(msg, SharesDelivery):
                return self._masked_input_collection(msg)
            if isinstance(msg, ConsistencyCheck):
                return self._consistency_check(msg)
            if isinstance(msg, UnmaskCertificate):
                return self._certified_unmasking(msg)
            return self._unmasking(msg)  # type checked by _check_envelope
        except ProtocolAbort:
            self._abort()
            raise

    # --- checks ------------------------------------------------------------------------

    def _header(self) -> Header:
        cfg = self.config
        return Header(cfg.session, self.round, self.id, SERVER, cfg.fingerprint)

    def _check_envelope(self, msg: object) -> None:
        if type(msg) not in _STAGE_OF:
            raise MalformedMessageError(
                f"client {self.id} expects a server message, got {type(msg).__name__}"
            )
        h = msg.header  # type: ignore[attr-defined]
        cfg = self.config
        if h.session != cfg.session:
            raise ReplayError(f"message from session {h.session.hex()} is not for this session")
        if h.round != self.round:
            raise ReplayError(f"message from round {h.round} delivered in round {self.round}")
        if h.fingerprint != cfg.fingerprint:
            raise ReplayError("message made under another configuration (fingerprint differs)")
        if h.sender != SERVER:
            raise MalformedMessageError(f"server message claims sender {h.sender!r}")
        if h.recipient != self.id:
            raise ReplayError(f"message for {h.recipient!r} delivered to client {self.id}")
        expected = self._expected.get(self._state)
        if expected is not type(msg):
            want = expected.__name__ if expected is not None else "nothing"
            raise ReplayError(
                f"client {self.id} in state {self._state.value} expects {want}, got "
                f"{type(msg).__name__} (stage {_STAGE_OF[type(msg)].value}): out of order or "
                "repeated; ignored"
            )

    def _check_ids(self, ids: tuple[int, ...], allowed: frozenset[int], stage: AnyStage) -> None:
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ProtocolAbort(stage.value, "the server listed a client id twice", dup)
        outside = sorted(set(ids) - allowed)
        if outside:
            raise ProtocolAbort(
                stage.value, "the server listed clients that are not eligible here", outside
            )

    def _require(self, count: int, stage: AnyStage) -> None:
        if count < self.config.threshold:
            raise InsufficientParticipantsError(
                stage.value,
                f"client {self.id} sees {count} live members of its neighbourhood, fewer "
                f"than the threshold {self.config.threshold}; it stops without revealing more",
            )

    def _abort(self) -> None:
        # Drop every secret: an aborted client must not be usable to reveal anything.
        self._state = ClientState.ABORTED
        self._x = None
        self._c = self._s = None
        self._b = None
        self._enc_keys.clear()
        self._held.clear()
        self._own_b_share = b""
        self._identity = None

    # --- stage handlers ----------------------------------------------------------------

    def _authenticate(self, msg: KeysBroadcast) -> KeysBroadcast:
        # Malicious server: accept only the signed key transcript; keep its entries in this
        # client's closed neighbourhood of the round's graph (derived from the transcript).
        if self._advert is None:  # unreachable: AWAIT_KEYS implies an advertisement
            raise ProtocolAbort(Stage.SHARE_KEYS.value, "client advertisement missing")
        transcript, graph, keep = authenticate_key_list(
            self.config,
            round=self.round,
            model=self._model,
            me=self.id,
            own=self._advert,
            msg=msg,
            stage=Stage.SHARE_KEYS.value,
        )
        self._transcript = transcript
        self._transcript_ids = frozenset(msg.ids)
        self._graph = graph
        self._closed = frozenset(graph.closed_neighbourhood(self.id))
        return KeysBroadcast(
            msg.header,
            tuple(msg.ids[i] for i in keep),
            tuple(msg.c_publics[i] for i in keep),
            tuple(msg.s_publics[i] for i in keep),
        )

    def _share_keys(self, msg: KeysBroadcast) -> ShareKeys:
        stage = Stage.SHARE_KEYS
        cfg, u = self.config, self.id
        if self._malicious:
            msg = self._authenticate(msg)
        elif msg.signatures:
            raise ProtocolAbort(stage.value, "signed key list in a semi-honest session")
        self._check_ids(msg.ids, self._closed, stage)
        index = {v: i for i, v in enumerate(msg.ids)}
        if self._c is None or self._s is None:  # unreachable: AWAIT_KEYS implies keys
            raise ProtocolAbort(stage.value, "client keys missing")
        mine = index.get(u)
        if mine is None or (msg.c_publics[mine], msg.s_publics[mine]) != (
            self._c.public_bytes,
            self._s.public_bytes,
        ):
            raise ProtocolAbort(stage.value, "the key list omits or alters this client's keys")
        self._require(len(msg.ids), stage)
        keys = list(msg.c_publics) + list(msg.s_publics)
        if len(set(keys)) != len(keys):
            seen: dict[bytes, int] = {}
            culprits: set[int] = set()
            for v, c, s in zip(msg.ids, msg.c_publics, msg.s_publics, strict=True):
                for k in (c, s):
                    if k in seen:
                        culprits.update((v, seen[k]))
                    seen[k] = v
            raise ProtocolAbort(stage.value, "identical public keys", sorted(culprits))
        others = tuple(sorted(v for v in msg.ids if v != u))
        self._b = secrets.token_bytes(SECRET_BYTES)
        shares = share_secrets(
            [self._s.private_bytes(), self._b], cfg.threshold, [v + 1 for v in msg.ids]
        )
        raw = shares.astype("<u4")
        self._own_b_share = raw[mine, 1].tobytes()
        cts = []
        for v in others:
            i = index[v]
            try:
                key = share_key(
                    self._c, msg.c_publics[i], session=cfg.session, round=self.round, me=u, peer=v
                )
            except MalformedMessageError as exc:
                raise ProtocolAbort(stage.value, f"unusable public key: {exc}", [v]) from exc
            self._enc_keys[v] = key
            self._s_publics[v] = msg.s_publics[i]
            cts.append(
                seal_shares(
                    key,
                    session=cfg.session,
                    round=self.round,
                    owner=u,
                    holder=v,
                    sk_share=raw[i, 0].tobytes(),
                    b_share=raw[i, 1].tobytes(),
                )
            )
        self._u1 = others
        self._state = ClientState.AWAIT_SHARES
        return ShareKeys(self._header(), others, tuple(cts))

    def _masked_input_collection(self, msg: SharesDelivery) -> MaskedInput:
        stage = Stage.MASKED_INPUT_COLLECTION
        cfg, u = self.config, self.id
        self._check_ids(msg.senders, frozenset(self._u1), stage)
        self._require(len(msg.senders) + 1, stage)
        for v, blob in zip(msg.senders, msg.ciphertexts, strict=True):
            try:
                self._held[v] = open_shares(
                    self._enc_keys[v],
                    blob,
                    session=cfg.session,
                    round=self.round,
                    owner=v,
                    holder=u,
                )
            except IntegrityError as exc:
                raise ProtocolAbort(
                    stage.value, f"sealed shares from client {v} failed authentication", [v]
                ) from exc
        if self._s is None or self._b is None or self._x is None:  # unreachable by state
            raise ProtocolAbort(stage.value, "client secrets missing")
        acc = MaskAccumulator(self._x, cfg.dtype, cfg.bits)
        acc.add(self_seed(self._b, session=cfg.session, round=self.round, party=u), +1)
        for v in msg.senders:
            seed = pair_seed(
                self._s, self._s_publics[v], session=cfg.session, round=self.round, me=u, peer=v
            )
            acc.add(seed, +1 if u < v else -1)
        y = acc.result()
        self._u2 = tuple(sorted(msg.senders))
        # The mask secrets are not needed any more; only the held shares are.
        self._b = None
        self._s = self._c = None
        self._enc_keys.clear()
        self._x = None
        if self._malicious:
            self._state = ClientState.AWAIT_CONSISTENCY
        else:
            self._state = ClientState.AWAIT_UNMASK
        return MaskedInput(self._header(), cfg.bits, y)

    def _statement(self, survivors: tuple[int, ...]) -> bytes:
        cfg = self.config
        return survivors_message(
            fingerprint=cfg.fingerprint,
            session=cfg.session,
            round=self.round,
            transcript=self._transcript,
            n=cfg.n,
            survivors=survivors,
        )

    def _consistency_check(self, msg: ConsistencyCheck) -> ConsistencySignature:
        # Round 3 of the active protocol: sign U3 once; the signature commits this client
        # to revealing shares according to this U3 only.
        check_survivors(
            self.config,
            me=self.id,
            survivors=msg.alive,
            transcript_ids=self._transcript_ids,
            closed=self._closed,
            sent_shares=frozenset(self._u2),
            stage=ActiveStage.CONSISTENCY_CHECK.value,
        )
        if self._identity is None:  # unreachable: malicious clients keep it until done
            raise ProtocolAbort(ActiveStage.CONSISTENCY_CHECK.value, "identity key missing")
        self._survivors = msg.alive
        signature = self._identity.sign(self._statement(msg.alive))
        self._state = ClientState.AWAIT_CERTIFICATE
        return ConsistencySignature(self._header(), signature)

    def _certified_unmasking(self, msg: UnmaskCertificate) -> UnmaskShares:
        if self._graph is None:  # unreachable: the graph is known after ShareKeys
            raise ProtocolAbort(Stage.UNMASKING.value, "round graph missing")
        check_certificate(
            self.config,
            self._graph,
            me=self.id,
            statement=self._statement(self._survivors),
            survivors=frozenset(self._survivors),
            signers=msg.signers,
            signatures=msg.signatures,
            owners=(*self._u2, self.id),
            stage=Stage.UNMASKING.value,
        )
        self._identity = None
        alive = tuple(v for v in self._survivors if v in self._closed)
        return self._unmasking(UnmaskRequest(msg.header, alive))

    def _unmasking(self, msg: UnmaskRequest) -> UnmaskShares:
        stage = Stage.UNMASKING
        u = self.id
        eligible = frozenset((*self._u2, u))
        self._check_ids(msg.alive, eligible, stage)
        if u not in msg.alive:
            raise ProtocolAbort(stage.value, "unmask request that does not list this client")
        self._require(len(msg.alive), stage)
        alive = set(msg.alive)
        dropped = [v for v in self._u2 if v not in alive]
        for v in alive:
            if self._revealed.get(v, "b") != "b":
                raise ProtocolAbort(stage.value, "would reveal both shares of a client", [v])
        for v in dropped:
            if self._revealed.get(v, "sk") != "sk":
                raise ProtocolAbort(stage.value, "would reveal both shares of a client", [v])
        b_owners = tuple(sorted(alive))
        b_shares = tuple(self._own_b_share if v == u else self._held[v][1] for v in b_owners)
        sk_owners = tuple(dropped)
        sk_shares = tuple(self._held[v][0] for v in sk_owners)
        self._revealed.update(dict.fromkeys(b_owners, "b"))
        self._revealed.update(dict.fromkeys(sk_owners, "sk"))
        self._held.clear()
        self._state = ClientState.DONE
        return UnmaskShares(self._header(), b_owners, b_shares, sk_owners, sk_shares)
