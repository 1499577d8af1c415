"""Deterministic in-process driver for secure aggregation, with fault injection.

A simulation (one process plays the server and all clients; it is labelled so in its
report) runs the sans-I/O state machines of `securecomp.secagg.client` and
`securecomp.secagg.server` over *serialized* messages: every message is encoded to its
envelope bytes, counted, and decoded by the receiver, so the byte counts are the real
wire sizes and the decoders see exactly what a network would deliver.

Time is divided into slots, one per stage (four, or five against a malicious server). In
slot ``s`` the clients process the server's messages of the previous stage and answer; the
server receives the answers delivered in slot ``s`` and closes stage ``s``. Faults act on
single messages:

* ``drop``: the message is lost (the sender becomes a dropout at that stage);
* ``delay``: the message is delivered ``slots`` slots later, when the receiver is in a
  later stage, so it is rejected (`ReplayError`) and recorded;
* ``duplicate``: the message is delivered twice; the copy is rejected and recorded;
* ``reorder=True``: deliveries within each slot are shuffled (seeded: deterministic).

Against a malicious server (``ThreatModel(malicious_server=True)``) the clients sign with
the identity key pairs given as ``identities`` and bind ``model_hash``; a deviating server
is simulated by ``server_hook``, which sees every message the (honest) server state
machine produces and returns what is actually sent (a tampered message, or ``None`` to
withhold it), e.g. a survivor set that differs between clients (the split-view attack).

Client aborts (`ProtocolAbort`) are recorded and the client is silent afterwards. A
server abort (`InsufficientParticipantsError`, `ProtocolAbort`) ends the run: `run` raises
it, the server has no output, and `SecAggSimulation.report` still holds the costs so far.
Cryptographic randomness always comes from the OS CSPRNG; the seed only drives the
schedule (reordering), so the aggregate and the schedule are reproducible, the keys not.
"""

from __future__ import annotations

import enum
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from securecomp.crypto.ed25519 import Ed25519KeyPair
from securecomp.errors import (
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ReplayError,
    SecurecompError,
)
from securecomp.net.report import CostReport
from securecomp.net.stats import CommStats
from securecomp.secagg.client import SecAggClient
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.driver_report import build_report
from securecomp.secagg.messages import (
    SERVER,
    AnyStage,
    Message,
    ServerMessage,
    Stage,
    as_stage,
    decode_message,
    encode_message,
)
from securecomp.secagg.server import SecAggResult, SecAggServer
from securecomp.secagg.stages import SEMI_HONEST_STAGES
from securecomp.secagg.stages import reply_stage as _next_stage

__all__ = [
    "Fault",
    "FaultKind",
    "RejectedMessage",
    "SecAggSimulation",
    "SimulationResult",
    "dropouts",
    "simulate",
]

_STAGES = SEMI_HONEST_STAGES
#: What a simulated deviating server does to each outgoing message (None: withhold it).
ServerHook = Callable[[ServerMessage], ServerMessage | None]


class FaultKind(enum.StrEnum):
    DROP = "drop"
    DELAY = "delay"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Fault:
    """One injected fault on the message of ``client`` at ``stage``.

    ``direction="up"`` is the client's message to the server at that stage;
    ``"down"`` the server's message to the client that closes that stage (keys after
    AdvertiseKeys, shares after ShareKeys, the unmask request after MaskedInputCollection).
    """

    kind: FaultKind
    stage: AnyStage
    client: int
    direction: Literal["up", "down"] = "up"
    slots: int = 1

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", FaultKind(self.kind))
        except ValueError as exc:
            raise ParameterError(
                f"unknown fault kind ({exc}); kinds: {[k.value for k in FaultKind]}"
            ) from None
        object.__setattr__(self, "stage", as_stage(self.stage))
        if self.direction not in ("up", "down"):
            raise ParameterError("fault direction must be 'up' or 'down'")
        if self.direction == "down" and self.stage is Stage.UNMASKING:
            raise ParameterError("the server sends nothing after the unmasking stage")
        if self.slots < 1:
            raise ParameterError("a delay is at least one slot")


def dropouts(schedule: Mapping[AnyStage | str, Iterable[int]]) -> list[Fault]:
    """Faults dropping each listed client's upload at the given stage (it drops out there)."""
    return [
        Fault(FaultKind.DROP, stage, u)  # type: ignore[arg-type]
        for stage, clients in schedule.items()
        for u in clients
    ]


@dataclass(frozen=True)
class RejectedMessage:
    """A message a state machine refused (it changed nothing)."""

    slot: int
    kind: str
    sender: int | str
    recipient: int | str
    error: str
    detail: str


@dataclass
class SimulationResult:
    """Output of a simulated round."""

    result: SecAggResult
    report: CostReport
    rejected: tuple[RejectedMessage, ...] = ()
    client_aborts: dict[int, str] = field(default_factory=dict)

    @property
    def aggregate(self) -> npt.NDArray[np.uint64]:
        return self.result.aggregate

    @property
    def survivors(self) -> tuple[int, ...]:
        return self.result.survivors


@dataclass
class _Packet:
    data: bytes
    kind: str
    sender: int | str
    recipient: int | str
    stage: AnyStage
    depth: int


class SecAggSimulation:
    """One round of secure aggregation among ``config.n`` simulated clients.

    Parameters
    ----------
    config : SecAggConfig
    inputs : sequence or mapping of arrays
        Quantized input of each client (index or id -> vector of ``config.dim`` values).
    round : int
        Round number.
    faults : iterable of Fault
        Injected faults (see the module docstring).
    reorder : bool
        Shuffle deliveries within each slot.
    seed : int
        Seed of the schedule (reordering only).
    identities : sequence or mapping of Ed25519KeyPair, optional
        Each client's identity key pair (malicious-server mode only).
    model_hash : bytes, optional
        The broadcast model's identifier, known to the server and every client
        (malicious-server mode only).
    server_hook : callable, optional
        Applied to every server message before it is sent: returns the message to send
        (possibly altered) or ``None`` to withhold it. Simulates a deviating server.
    """

    def __init__(
        self,
        config: SecAggConfig,
        inputs: Sequence[npt.ArrayLike] | Mapping[int, npt.ArrayLike],
        *,
        round: int = 0,
        faults: Iterable[Fault] = (),
        reorder: bool = False,
        seed: int = 0,
        identities: Sequence[Ed25519KeyPair] | Mapping[int, Ed25519KeyPair] | None = None,
        model_hash: bytes | None = None,
        server_hook: ServerHook | None = None,
    ) -> None:
        items = inputs.items() if isinstance(inputs, Mapping) else enumerate(inputs)
        values = dict(items)
        if sorted(values) != list(range(config.n)):
            raise ParameterError(f"give one input per client 0..{config.n - 1}")
        keys: dict[int, Ed25519KeyPair | None] = dict.fromkeys(values)
        if identities is not None:
            pairs = identities.items() if isinstance(identities, Mapping) else enumerate(identities)
            keys.update(pairs)
        self.config = config
        self.round = round
        self._stages = config.stages
        self._hook = server_hook
        self.server = SecAggServer(config, round=round, model_hash=model_hash)
        self.clients = {
            u: SecAggClient(
                config, u, values[u], round=round, identity=keys[u], model_hash=model_hash
            )
            for u in values
        }
        self._faults: dict[tuple[str, AnyStage, int], list[Fault]] = defaultdict(list)
        for f in faults:
            if not 0 <= f.client < config.n:
                raise ParameterError(f"fault names client {f.client}, not in 0..{config.n - 1}")
            self._faults[(f.direction, f.stage, f.client)].append(f)
        self._reorder = bool(reorder)
        self._rng = np.random.default_rng(seed)
        self._stats: dict[int | str, CommStats] = {u: CommStats(u) for u in values}
        self._stats[SERVER] = CommStats(SERVER)
        self._client_seconds: dict[AnyStage, dict[int, float]] = defaultdict(dict)
        self._server_seconds: dict[AnyStage, float] = defaultdict(float)
        self.rejected: list[RejectedMessage] = []
        self.client_aborts: dict[int, str] = {}
        self.report: CostReport | None = None
        self._queue: dict[int, list[_Packet]] = defaultdict(list)

    # --- message transport -----------------------------------------------------------------

    def _send(self, msg: Message, slot: int) -> None:
        h = msg.header
        stage = msg.STAGE
        data = encode_message(msg)
        sender_stats = self._stats[h.sender]
        with sender_stats.phase(stage.value):
            depth = sender_stats.record_send(h.recipient, len(data), msg.KIND)
        direction = "up" if h.recipient == SERVER else "down"
        client = h.sender if direction == "up" else h.recipient
        packet = _Packet(data, msg.KIND, h.sender, h.recipient, stage, depth)
        dropped, copies, at = False, 1, slot
        for f in self._faults.get((direction, stage, client), ()):  # type: ignore[arg-type]
            if f.kind is FaultKind.DROP:
                dropped = True
            elif f.kind is FaultKind.DUPLICATE:
                copies += 1
            else:
                at += f.slots
        if not dropped:
            self._queue[at].extend([packet] * copies)

    def _deliveries(self, slot: int, to_server: bool) -> list[_Packet]:
        pending = self._queue.get(slot, [])
        batch = [p for p in pending if (p.recipient == SERVER) == to_server]
        self._queue[slot] = [p for p in pending if (p.recipient == SERVER) != to_server]
        if self._reorder and len(batch) > 1:
            batch = [batch[i] for i in self._rng.permutation(len(batch))]
        return batch

    def _receive(self, packet: _Packet) -> Message:
        stats = self._stats[packet.recipient]
        with stats.phase(packet.stage.value):
            stats.record_recv(packet.sender, len(packet.data), packet.kind, packet.depth)
        return decode_message(packet.data)

    def _reject(self, slot: int, packet: _Packet, exc: SecurecompError) -> None:
        self.rejected.append(
            RejectedMessage(
                slot, packet.kind, packet.sender, packet.recipient, type(exc).__name__, str(exc)
            )
        )

    # --- the schedule ----------------------------------------------------------------------

    def _client_turn(self, slot: int) -> None:
        stages = self._stages
        stage = stages[min(slot, len(stages) - 1)]
        if slot == 0:
            for cid, starter in self.clients.items():
                start = time.perf_counter()
                self._send(starter.advertise_keys(), slot)
                self._client_seconds[stage][cid] = time.perf_counter() - start
            return
        for packet in self._deliveries(slot, to_server=False):
            u = packet.recipient
            if not isinstance(u, int):  # pragma: no cover - down packets go to clients
                continue
            client = self.clients[u]
            if client.aborted:
                continue
            per = self._client_seconds[_next_stage(packet.stage, self._stages)]
            start = time.perf_counter()
            try:
                reply = client.handle(self._receive(packet))  # type: ignore[arg-type]
                self._send(reply, slot)
            except (ReplayError, MalformedMessageError) as exc:
                self._reject(slot, packet, exc)
            except ProtocolAbort as exc:
                self.client_aborts[u] = str(exc)
            per[u] = per.get(u, 0.0) + time.perf_counter() - start

    def _server_turn(self, slot: int) -> list[Message]:
        stage = self.server.stage
        for packet in self._deliveries(slot, to_server=True):
            start = time.perf_counter()
            try:
                self.server.receive(self._receive(packet))  # type: ignore[arg-type]
            except (ReplayError, MalformedMessageError) as exc:
                self._reject(slot, packet, exc)
            finally:
                if stage is not None:
                    self._server_seconds[stage] += time.perf_counter() - start
        if stage is None:
            return []
        start = time.perf_counter()
        try:
            return list(self.server.close_stage())
        finally:
            self._server_seconds[stage] += time.perf_counter() - start

    def run(self) -> SimulationResult:
        """Play the round. Raises the server's abort, if any (the report is still built)."""
        stages = self._stages
        try:
            for slot in range(len(stages)):
                self._client_turn(slot)
                for msg in self._server_turn(slot):
                    out = self._hook(msg) if self._hook is not None else msg  # type: ignore[arg-type]
                    if out is None:
                        continue
                    start = time.perf_counter()
                    self._send(out, slot + 1)
                    self._server_seconds[stages[slot]] += time.perf_counter() - start
            # Late (delayed) messages still arrive and are refused by their finished receivers.
            last = max(self._queue, default=len(stages))
            for slot in range(len(stages), last + 1):
                self._client_turn(slot)
                self._server_turn(slot)
        finally:
            self.report = self._build_report()
        result = self.server.result
        if result is None:  # pragma: no cover - close_stage raised instead
            raise ProtocolAbort("unmasking", "the server finished without output")
        return SimulationResult(result, self.report, tuple(self.rejected), dict(self.client_aborts))

    # --- the report ------------------------------------------------------------------------

    def _build_report(self) -> CostReport:
        cfg = self.config
        return build_report(
            protocol=f"{cfg.protocol} (in-process simulation of {cfg.n} clients)",
            config=cfg,
            server=self.server,
            stats=self._stats,
            client_seconds=self._client_seconds,
            server_seconds=self._server_seconds,
            rejected=len(self.rejected),
            client_aborts=self.client_aborts,
            simulation=True,
        )


def reply_stage(stage: AnyStage, stages: tuple[AnyStage, ...] = _STAGES) -> AnyStage:
    """The stage a client works in when answering a server message of ``stage``."""
    return _next_stage(stage, stages)


def simulate(
    config: SecAggConfig,
    inputs: Sequence[npt.ArrayLike] | Mapping[int, npt.ArrayLike],
    *,
    round: int = 0,
    faults: Iterable[Fault] = (),
    reorder: bool = False,
    seed: int = 0,
    identities: Sequence[Ed25519KeyPair] | Mapping[int, Ed25519KeyPair] | None = None,
    model_hash: bytes | None = None,
    server_hook: ServerHook | None = None,
) -> SimulationResult:
    """Run one simulated round; see `SecAggSimulation`."""
    sim = SecAggSimulation(
        config,
        inputs,
        round=round,
        faults=faults,
        reorder=reorder,
        seed=seed,
        identities=identities,
        model_hash=model_hash,
        server_hook=server_hook,
    )
    return sim.run()
