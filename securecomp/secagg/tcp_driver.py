"""TCP driver for secure aggregation: the server and every client in separate OS processes.

`run_tcp` (or `SecAggTCPRun`) starts one process per client (``python -m
securecomp.secagg.tcp_worker``, a fresh interpreter: nothing is forked from a process
holding keys, and nothing is pickled) and runs the `SecAggServer` state machine in the
calling process. Each client process receives its configuration and its own input on its
standard input, connects to the server over loopback TCP
(`securecomp.secagg.driver_star`: `securecomp.net` framing, `MeshIO` engine, one link per
client) and exchanges the protocol's messages as their envelope bytes.

Threat model (as the in-process simulator and the state machines,
`securecomp.secagg.server`): semi-honest server and clients, up to the configured corrupt
fraction of clients colluding with the server, or a malicious server when the
configuration says so (the clients then sign with the identity keys handed to them, and
the round has the ConsistencyCheck stage). What each process learns:

* the server process: the configuration, the sum of the inputs of the clients that
  survived the masked-input stage, which clients dropped at each stage, the self-mask
  seeds of survivors and the mask keys of dropped clients (which reveal nothing beyond
  the sum), and the sizes and timing of messages; it never sees an input or a key share
  in the clear (shares are sealed client-to-client). The calling process also plays the
  launcher and so hands each client its input: that is a property of this test harness,
  not of the protocol (the server object never touches the inputs);
* a client process: its own input, the ids and public keys of its live neighbours and
  the shares its neighbours sealed for it.

Timeouts turn silent clients into dropouts, stage by stage, as in Bonawitz et al.
(CCS 2017, section 4): the server waits ``connect_timeout`` for the clients to connect
(whoever has not connected by then is a dropout of the first stage), then closes each
stage when all expected messages arrived or ``stage_timeout`` seconds have passed since
it opened; a client whose connection closed is a dropout at once. The round continues if
enough clients survive (``>= t`` in every neighbourhood) and otherwise raises
`InsufficientParticipantsError` with no output.

Every process it starts has exited when `run` returns or raises: at the end the server
closes its connections (clients still waiting then exit), each client gets ``grace``
seconds to finish and is then killed, by its own process handle.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy.typing as npt

import securecomp
from securecomp.crypto.ed25519 import Ed25519KeyPair
from securecomp.errors import (
    ChannelClosedError,
    MalformedMessageError,
    ParameterError,
    PartyTimeoutError,
    ProtocolAbort,
    ReplayError,
)
from securecomp.net.report import CostReport
from securecomp.net.stats import CommStats
from securecomp.net.tcp import PartyAddress
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.driver_report import DriverResult, build_report
from securecomp.secagg.driver_star import StarServerChannel, loopback_listener
from securecomp.secagg.driver_wire import encode_config, encode_inputs
from securecomp.secagg.messages import (
    SERVER,
    AnyStage,
    as_stage,
    decode_message,
    encode_message,
)
from securecomp.secagg.server import SecAggServer
from securecomp.secagg.simulator import RejectedMessage
from securecomp.secagg.tcp_worker import TAG, encode_setup

__all__ = ["FaultMode", "ProcessFault", "SecAggTCPRun", "run_tcp"]

_WORKER_MODULE = "securecomp.secagg.tcp_worker"


class FaultMode(enum.StrEnum):
    """How an injected fault stops a client process."""

    #: The process ends at once, as in a crash (its connection closes).
    EXIT = "exit"
    #: The process stays connected and sends nothing more (the server must time it out).
    SILENT = "silent"


@dataclass(frozen=True)
class ProcessFault:
    """Client process ``client`` stops instead of sending its message of ``stage``."""

    client: int
    stage: AnyStage
    mode: FaultMode = FaultMode.EXIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", as_stage(self.stage))
        try:
            object.__setattr__(self, "mode", FaultMode(self.mode))
        except ValueError as exc:
            raise ParameterError(
                f"unknown fault mode ({exc}); modes: {[m.value for m in FaultMode]}"
            ) from None


class SecAggTCPRun:
    """One round over loopback TCP: the server here, each client in its own process.

    Invariant: when `run` returns or raises, every process it started has exited
    (`returncodes` holds their codes, `killed` the clients that had to be killed).

    Parameters
    ----------
    config : SecAggConfig
    inputs : sequence or mapping of arrays
        Quantized input of each client ``0 .. n-1``.
    round : int
        Round number.
    faults : iterable of ProcessFault
        At most one per client.
    stage_timeout : float
        Seconds the server waits for a stage's messages before closing it.
    connect_timeout : float
        Seconds the server waits for the client processes to start and connect.
    grace : float
        Seconds each client process is given to exit once the server is done.
    env : mapping, optional
        Extra environment variables of the client processes.
    identities : sequence or mapping of Ed25519KeyPair, optional
        Each client's identity key pair, handed to its process (malicious-server mode).
    model_hash : bytes, optional
        The broadcast model's identifier, given to the server and every client process
        (malicious-server mode).
    """

    def __init__(
        self,
        config: SecAggConfig,
        inputs: Sequence[npt.ArrayLike] | Mapping[int, npt.ArrayLike],
        *,
        round: int = 0,
        faults: Iterable[ProcessFault] = (),
        stage_timeout: float = 10.0,
        connect_timeout: float = 60.0,
        grace: float = 10.0,
        env: Mapping[str, str] | None = None,
        identities: Sequence[Ed25519KeyPair] | Mapping[int, Ed25519KeyPair] | None = None,
        model_hash: bytes | None = None,
    ) -> None:
        if not isinstance(config, SecAggConfig):
            raise ParameterError("config must be a SecAggConfig")
        items = inputs.items() if isinstance(inputs, Mapping) else enumerate(inputs)
        values = dict(items)
        if sorted(values) != list(range(config.n)):
            raise ParameterError(f"give one input per client 0..{config.n - 1}")
        for name, v in (
            ("stage_timeout", stage_timeout),
            ("connect_timeout", connect_timeout),
            ("grace", grace),
        ):
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise ParameterError(f"{name} must be positive seconds, got {v!r}")
        self.config = config
        self.round = round
        # Validates the round and whether a model hash belongs to this mode.
        self.server = SecAggServer(config, round=round, model_hash=model_hash)
        pairs = {}
        if identities is not None:
            pairs = dict(
                identities.items() if isinstance(identities, Mapping) else enumerate(identities)
            )
        pinned = config.identities
        if config.malicious and (
            pinned is None or not all(pinned.matches(u, pairs.get(u)) for u in range(config.n))
        ):
            raise ParameterError("give every client the identity key pair pinned for it")
        if not config.malicious and pairs:
            raise ParameterError("identities are only used against a malicious server")
        # Private keys go to each client's own process only (its stdin), never the server.
        self._identities = {u: p.private_bytes() for u, p in pairs.items()}
        self._model_hash = model_hash or b""
        # Encoded (and range-checked) before any process starts.
        self._encoded = {u: encode_inputs(config, [u], [values[u]]) for u in range(config.n)}
        self._faults: dict[int, ProcessFault] = {}
        for f in faults:
            if not isinstance(f, ProcessFault) or not 0 <= f.client < config.n:
                raise ParameterError(f"fault {f!r} names no client of 0..{config.n - 1}")
            if f.client in self._faults:
                raise ParameterError(f"two faults for client {f.client}; give at most one")
            self._faults[f.client] = f
        self.stage_timeout = float(stage_timeout)
        self.connect_timeout = float(connect_timeout)
        self.grace = float(grace)
        # The children must import this very package, wherever it was imported from.
        root = str(Path(securecomp.__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        self._env = dict(os.environ) | {"PYTHONPATH": path} | dict(env or {})
        self._ran = False
        self.report: CostReport | None = None
        self.pids: tuple[int, ...] = ()
        self.returncodes: dict[int, int | None] = {}
        self.killed: tuple[int, ...] = ()
        self.client_status: dict[int, dict[str, Any]] = {}
        self.stderr: dict[int, str] = {}
        self.rejected: list[RejectedMessage] = []
        self._server_seconds: dict[AnyStage, float] = defaultdict(float)
        self._stage_wall: dict[str, float] = {}
        self._connected: frozenset[int] = frozenset()
        self._chan: StarServerChannel | None = None

    # --- processes -------------------------------------------------------------------------

    def _spawn(self, procs: dict[int, subprocess.Popen[bytes]], tmp: Path) -> None:
        for u in range(self.config.n):
            # Output goes to files, not pipes: a chatty process can never block on a full
            # pipe while the server is busy, and reading it needs no extra threads.
            fds = [os.open(tmp / f"{u}.{k}", os.O_WRONLY | os.O_CREAT, 0o600) for k in "oe"]
            try:
                procs[u] = subprocess.Popen(  # noqa: S603 - our interpreter and module, no shell
                    [sys.executable, "-m", _WORKER_MODULE],
                    stdin=subprocess.PIPE,
                    stdout=fds[0],
                    stderr=fds[1],
                    env=self._env,
                    close_fds=True,
                )
            finally:
                for fd in fds:  # the child holds its own copies
                    os.close(fd)

    def _feed(self, procs: Mapping[int, subprocess.Popen[bytes]], port: int) -> None:
        cfg = self.config
        blob, fp = encode_config(cfg), cfg.fingerprint
        # The client processes wait for the server's messages longer than the server waits
        # for theirs; they also stop as soon as the server closes their connection.
        client_timeout = self.connect_timeout + 4 * self.stage_timeout + 30.0
        for u, p in procs.items():
            ids, values = self._encoded[u]
            f = self._faults.get(u)
            setup = encode_setup(
                server=PartyAddress("127.0.0.1", port),
                client_id=u,
                round=self.round,
                fingerprint=fp,
                config=blob,
                ids=ids,
                values=values,
                fault=None if f is None else (f.stage, f.mode.value),
                connect_timeout=self.connect_timeout,
                timeout=client_timeout,
                identity=self._identities.get(u, b""),
                model_hash=self._model_hash,
            )
            stdin = p.stdin
            if stdin is None:  # pragma: no cover - stdin=PIPE always gives one
                continue
            # A process that died before reading just never connects: a dropout.
            with contextlib.suppress(BrokenPipeError, OSError):
                stdin.write(setup)
            with contextlib.suppress(BrokenPipeError, OSError):
                stdin.close()

    def _reap(self, procs: Mapping[int, subprocess.Popen[bytes]], tmp: Path) -> None:
        killed: list[int] = []
        deadline = time.monotonic() + self.grace
        for u, p in procs.items():
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                killed.append(u)
            self.returncodes[u] = p.returncode
        self.killed = tuple(killed)
        for u in procs:
            self.stderr[u] = (tmp / f"{u}.e").read_text("utf-8", "replace")
            self.client_status[u] = _last_json((tmp / f"{u}.o").read_text("utf-8", "replace"))

    # --- the server ------------------------------------------------------------------------

    def _collect(self, chan: StarServerChannel, stage: AnyStage, index: int) -> None:
        deadline = time.monotonic() + self.stage_timeout
        for u in sorted(self.server.pending()):
            try:
                raw = chan.recv(u + 1, tag=TAG, timeout=max(deadline - time.monotonic(), 1e-3))
            except (PartyTimeoutError, ChannelClosedError):
                continue  # silent or gone: a dropout at this stage
            except MalformedMessageError as exc:
                self._reject(index, "frame", u, exc)
                continue
            start = time.perf_counter()
            try:
                self.server.receive(decode_message(raw))  # type: ignore[arg-type]
            except (ReplayError, MalformedMessageError) as exc:
                self._reject(index, "envelope", u, exc)
            finally:
                self._server_seconds[stage] += time.perf_counter() - start

    def _reject(self, index: int, kind: str, sender: int, exc: Exception) -> None:
        self.rejected.append(
            RejectedMessage(index, kind, sender, SERVER, type(exc).__name__, str(exc))
        )

    def _serve(self, chan: StarServerChannel) -> None:
        for index, stage in enumerate(self.config.stages):
            opened = time.monotonic()
            with chan.stats.phase(stage.value):
                self._collect(chan, stage, index)
            start = time.perf_counter()
            try:
                out = self.server.close_stage()
                data = [(m.header.recipient, m.STAGE, encode_message(m)) for m in out]
            finally:
                self._server_seconds[stage] += time.perf_counter() - start
            for recipient, msg_stage, payload in data:
                # A client that is gone will be a dropout of the next stage.
                with (
                    chan.stats.phase(msg_stage.value),
                    contextlib.suppress(ChannelClosedError, PartyTimeoutError),
                ):
                    chan.send(int(recipient) + 1, payload, tag=TAG)
            self._stage_wall[stage.value] = time.monotonic() - opened

    def run(self) -> DriverResult:
        """Play the round. Raises the server's abort, if any (the report is still built)."""
        if self._ran:
            raise ParameterError("a SecAggTCPRun plays one round; create a new one per round")
        self._ran = True
        with tempfile.TemporaryDirectory(prefix="securecomp-secagg-tcp-") as tmp:
            self._run(Path(tmp))
        result, report = self.server.result, self.report
        if result is None or report is None:  # pragma: no cover - close_stage raised instead
            raise ProtocolAbort("unmasking", "the server finished without output")
        aborts = {u: str(s["abort"]) for u, s in self.client_status.items() if s.get("abort")}
        return DriverResult(result, report, tuple(self.rejected), aborts)

    def _run(self, tmp: Path) -> None:
        cfg = self.config
        procs: dict[int, subprocess.Popen[bytes]] = {}
        started = time.monotonic()
        listener = loopback_listener(cfg.n)
        try:
            self._spawn(procs, tmp)
            self.pids = tuple(p.pid for p in procs.values())
            self._feed(procs, listener.getsockname()[1])
            self._chan = StarServerChannel(
                listener,
                cfg.n,
                cfg.fingerprint,
                connect_timeout=self.connect_timeout,
                timeout=self.stage_timeout,
            )
            listener.close()
            self._connected = self._chan.connected
            self._stage_wall["connect"] = time.monotonic() - started
            self._serve(self._chan)
        finally:
            listener.close()
            if self._chan is not None:
                self._chan.close()
            try:
                self._reap(procs, tmp)
            finally:
                for p in procs.values():  # belt and braces: nothing outlives the run
                    if p.poll() is None:
                        p.kill()
                        p.wait()
            self.report = self._build_report(time.monotonic() - started)

    def _build_report(self, wall: float) -> CostReport:
        cfg = self.config
        seconds: dict[AnyStage, dict[int, float]] = defaultdict(dict)
        for u, status in self.client_status.items():
            per = status.get("seconds")
            if isinstance(per, dict):
                for name, s in per.items():
                    with contextlib.suppress(ValueError, TypeError):
                        seconds[as_stage(name)][u] = float(s)
            for err, detail in status.get("rejected", []) or []:
                self.rejected.append(RejectedMessage(-1, "server message", SERVER, u, err, detail))
        stats: dict[int | str, CommStats] = {}
        if self._chan is not None:
            for u, st in self._chan.client_stats.items():
                stats[u] = st
            stats[SERVER] = self._chan.stats
        else:  # the server never got to listen: nothing was exchanged
            stats.update({u: CommStats(u) for u in range(cfg.n)})
            stats[SERVER] = CommStats(SERVER)
        aborts = [u for u, s in self.client_status.items() if s.get("abort")]
        return build_report(
            protocol=f"{cfg.protocol} over TCP (server and {cfg.n} client processes, loopback)",
            config=cfg,
            server=self.server,
            stats=stats,
            client_seconds=seconds,
            server_seconds=self._server_seconds,
            rejected=len(self.rejected),
            client_aborts=aborts,
            simulation=False,
            extra={
                "transport": "tcp-loopback",
                "processes": cfg.n,
                "connected": sorted(self._connected),
                "stage_wall_seconds": dict(self._stage_wall),
                "wall_seconds": wall,
                "returncodes": {str(u): c for u, c in self.returncodes.items()},
                "killed": list(self.killed),
                "bytes_counted": "channel frames (head, tag, envelope) at the server's end",
            },
        )


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def run_tcp(
    config: SecAggConfig,
    inputs: Sequence[npt.ArrayLike] | Mapping[int, npt.ArrayLike],
    *,
    round: int = 0,
    faults: Iterable[ProcessFault] = (),
    stage_timeout: float = 10.0,
    connect_timeout: float = 60.0,
    grace: float = 10.0,
    env: Mapping[str, str] | None = None,
    identities: Sequence[Ed25519KeyPair] | Mapping[int, Ed25519KeyPair] | None = None,
    model_hash: bytes | None = None,
) -> DriverResult:
    """Run one round over loopback TCP with one process per client; see `SecAggTCPRun`.

    Returns
    -------
    DriverResult
        The server's result and a `CostReport` (bytes per client and per stage, counted
        as channel frames at the server's end of each link; compute seconds per stage as
        measured inside each process).

    Raises
    ------
    InsufficientParticipantsError
        Too few clients survived a stage; nothing is released.
    """
    run = SecAggTCPRun(
        config,
        inputs,
        round=round,
        faults=faults,
        stage_timeout=stage_timeout,
        connect_timeout=connect_timeout,
        grace=grace,
        env=env,
        identities=identities,
        model_hash=model_hash,
    )
    return run.run()
