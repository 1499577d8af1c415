"""Ray driver for secure aggregation: thousands of virtual clients on a pool of workers.

A `SecAggRayPool` keeps a fixed number of long-lived Ray actors (`SecAggWorker`), each
hosting *many* virtual clients (never one actor per client: an actor costs a process, so
one machine could not host thousands), and reuses them across rounds. The server's state
machine (`SecAggServer`) runs in the calling (driver) process. For each stage the driver
sends every worker one batch holding the envelopes for its clients, and the worker answers
the whole stage for all of them in one call; the envelopes are the same bytes the TCP
driver frames, decoded by `decode_message` on arrival. Protocol data crosses only as
those envelopes (plus bytes, ints and strings), but Ray itself moves them with its own
serializer, which falls back to pickle (for the actor class, results and remote errors):
the driver, the workers and the Ray cluster are therefore **one trust domain**. Run it on
your own machine or a private cluster you control, as a simulation harness; never let an
untrusted party join the Ray cluster or act as a worker. Devices that do not trust each
other talk over `securecomp.secagg.tcp_driver`, which never unpickles anything.

Threat model (as the in-process simulator, `securecomp.secagg.server`): semi-honest
server and clients, up to the configured corrupt fraction of clients colluding with the
server, or a malicious server when the configuration says so (each worker then also holds
its clients' identity keys, which the driver hands it). What each process learns:

* the driver process (server): the sum of the survivors' inputs, who dropped at each
  stage, the self-mask seeds of survivors and the mask keys of dropped clients (nothing
  beyond the sum), and message sizes and timing. As the launcher it also hands the
  workers their clients' inputs: a property of this simulation harness, not of the
  protocol (the server object never touches an input);
* a worker process: everything its hosted clients learn (their inputs and keys, their
  neighbours' public keys, the shares sealed for them). A worker therefore stands for a
  coalition of its clients, which is why this driver is a simulation (labelled so in the
  report); in a deployment each client is its own device (see `securecomp.secagg.tcp_driver`
  for clients as separate processes).

Timeouts and faults: the driver waits ``stage_timeout`` seconds for every worker's answer
to a stage (`ray.wait`); a worker that misses it, or whose process died, loses all its
clients at that stage (dropouts), takes no further part in the round and is replaced by a
fresh actor at the next round. Injected faults: virtual clients silent from a stage on
(`securecomp.secagg.simulator.dropouts`) and workers that crash at a stage.

Ray is imported only when a pool is created (it is the optional extra
``securecomp[ray]``); without it the pool raises `MissingDependencyError` (an
`ImportError`) saying how to install it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType, TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from securecomp.crypto.ed25519 import Ed25519KeyPair
from securecomp.errors import (
    MalformedMessageError,
    MissingDependencyError,
    ParameterError,
    ProtocolAbort,
    ReplayError,
)
from securecomp.net.report import CostReport
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.driver_report import DriverResult, TrafficCounter, build_report
from securecomp.secagg.driver_wire import encode_config, encode_inputs, pack_batch, unpack_batch
from securecomp.secagg.messages import (
    SERVER,
    AnyStage,
    as_stage,
    decode_message,
    encode_message,
)
from securecomp.secagg.ray_worker import SecAggWorker, decode_status, encode_faults
from securecomp.secagg.server import SecAggServer
from securecomp.secagg.simulator import Fault, FaultKind, RejectedMessage

__all__ = ["SecAggRayPool", "import_ray", "run_ray"]


def import_ray() -> ModuleType:
    """Import Ray, or raise `MissingDependencyError` saying how to install the optional extra."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "the secure-aggregation Ray driver needs the optional dependency 'ray'; install "
            "it with: pip install 'securecomp[ray]' (or use simulate() / run_tcp())"
        ) from exc
    return ray


class SecAggRayPool:
    """A pool of long-lived Ray workers, each hosting many virtual clients per round.

    Invariant: the pool holds exactly ``workers`` live actors between rounds (a worker
    lost in a round is replaced before the next); `close` ends them all.

    Parameters
    ----------
    workers : int
        Number of worker actors (processes).
    num_cpus : float, optional
        CPUs Ray reserves for each worker (Ray's actor default when omitted).
    startup_timeout : float
        Seconds to wait for the workers to start.
    """

    def __init__(
        self, workers: int = 2, *, num_cpus: float | None = None, startup_timeout: float = 120.0
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ParameterError(f"workers must be a positive int, got {workers!r}")
        if num_cpus is not None and not num_cpus >= 0:
            raise ParameterError(f"num_cpus must be >= 0, got {num_cpus!r}")
        self._ray = import_ray()
        self._options: dict[str, Any] = {} if num_cpus is None else {"num_cpus": num_cpus}
        self._actor_cls = self._ray.remote(SecAggWorker)
        self._startup_timeout = float(startup_timeout)
        self._workers: list[Any] = [None] * workers
        self._closed = False
        #: The report of the last round run (also kept when it aborted).
        self.last_report: CostReport | None = None
        try:
            self._replace(range(workers))
        except BaseException:
            self.close()
            raise

    @property
    def size(self) -> int:
        return len(self._workers)

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the workers (one process per worker, not per client)."""
        return tuple(self._ray.get([w.ping.remote() for w in self._workers]))

    def _replace(self, indices: Iterable[int]) -> None:
        idx = list(indices)
        for i in idx:
            old = self._workers[i]
            if old is not None:
                self._ray.kill(old)
            self._workers[i] = self._actor_cls.options(**self._options).remote(i)
        pings = [self._workers[i].ping.remote() for i in idx]
        ready, _ = self._ray.wait(pings, num_returns=len(pings), timeout=self._startup_timeout)
        if len(ready) != len(pings):
            raise ProtocolAbort(
                "startup",
                f"{len(pings) - len(ready)} Ray workers did not start within "
                f"{self._startup_timeout:g} s; check the Ray cluster's resources",
            )

    def close(self) -> None:
        """End every worker process (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            if w is not None:
                self._ray.kill(w)
        self._workers = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- one round -------------------------------------------------------------------------

    def run(
        self,
        config: SecAggConfig,
        inputs: Sequence[npt.ArrayLike] | Mapping[int, npt.ArrayLike],
        *,
        round: int = 0,
        faults: Iterable[Fault] = (),
        crash_workers: Mapping[int, AnyStage] | None = None,
        stage_timeout: float = 120.0,
        identities: Sequence[Ed25519KeyPair] | Mapping[int, Ed25519KeyPair] | None = None,
        model_hash: bytes | None = None,
    ) -> DriverResult:
        """Run one round with the clients spread over the workers.

        Parameters
        ----------
        config : SecAggConfig
        inputs : sequence or mapping of arrays
            Quantized input of each client ``0 .. n-1``.
        faults : iterable of Fault
            Upload drops only (``FaultKind.DROP``, direction ``"up"``): the client goes
            silent at that stage, e.g. ``dropouts({Stage.UNMASKING: [3, 7]})``.
        crash_workers : mapping of int to Stage, optional
            Workers whose process exits when asked to run that stage.
        stage_timeout : float
            Seconds to wait for each worker's answer to a stage.
        identities : sequence or mapping of Ed25519KeyPair, optional
            Each client's identity key pair, handed to the worker hosting it
            (malicious-server mode).
        model_hash : bytes, optional
            The broadcast model's identifier (malicious-server mode).

        Returns
        -------
        DriverResult

        Raises
        ------
        InsufficientParticipantsError
            Too few clients survived a stage; nothing is released.
        """
        if self._closed:
            raise ParameterError("the pool is closed; create a new SecAggRayPool")
        round_ = _RayRound(
            self,
            config,
            inputs,
            round,
            faults,
            crash_workers or {},
            float(stage_timeout),
            identities,
            model_hash,
        )
        try:
            return round_.play()
        finally:
            self.last_report = round_.report
            self._end_round(round_.lost, float(stage_timeout))

    def _end_round(self, lost: set[int], timeout: float) -> None:
        # Wipe the round's clients on every worker; replace the lost and the unresponsive.
        calls = {i: w.end_round.remote() for i, w in enumerate(self._workers) if i not in lost}
        done: set[Any] = set()
        if calls:
            refs = list(calls.values())
            done = set(self._ray.wait(refs, num_returns=len(refs), timeout=timeout)[0])
        bad = set(lost)
        for i, ref in calls.items():
            try:
                if ref not in done:
                    raise TimeoutError
                self._ray.get(ref)
            except Exception:  # any Ray error means the worker is unusable
                bad.add(i)
        if bad:
            self._replace(sorted(bad))


class _RayRound:
    """State of one round driven through a pool (server, routing, counters)."""

    def __init__(
        self,
        pool: SecAggRayPool,
        config: SecAggConfig,
        inputs: Sequence[npt.ArrayLike] | Mapping[int, npt.ArrayLike],
        round: int,
        faults: Iterable[Fault],
        crash: Mapping[int, AnyStage],
        stage_timeout: float,
        identities: Sequence[Ed25519KeyPair] | Mapping[int, Ed25519KeyPair] | None = None,
        model_hash: bytes | None = None,
    ) -> None:
        if not isinstance(config, SecAggConfig):
            raise ParameterError("config must be a SecAggConfig")
        if not stage_timeout > 0:
            raise ParameterError(f"stage_timeout must be positive seconds, got {stage_timeout!r}")
        items = inputs.items() if isinstance(inputs, Mapping) else enumerate(inputs)
        values = dict(items)
        if sorted(values) != list(range(config.n)):
            raise ParameterError(f"give one input per client 0..{config.n - 1}")
        stages = config.stages
        silent: dict[int, AnyStage] = {}
        for f in faults:
            if not isinstance(f, Fault) or f.kind is not FaultKind.DROP or f.direction != "up":
                raise ParameterError(
                    "the Ray driver injects upload drops only (a client silent from a stage "
                    "on); use simulate() for delays, duplicates and server-side drops"
                )
            if not 0 <= f.client < config.n:
                raise ParameterError(f"fault names client {f.client}, not in 0..{config.n - 1}")
            if f.stage not in stages:
                raise ParameterError(f"fault names stage {f.stage!r}, not one of this protocol")
            silent[f.client] = min(silent.get(f.client, f.stage), f.stage, key=stages.index)
        for w, stage in crash.items():
            if not 0 <= w < pool.size:
                raise ParameterError(f"crash_workers names worker {w}; the pool has {pool.size}")
            if stage not in stages:
                raise ParameterError(f"crash_workers: {stage!r} is not a stage of this protocol")
        pairs: dict[int, Ed25519KeyPair] = {}
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
        self.pool, self.ray = pool, pool._ray
        self.config, self.round = config, round
        self.server = SecAggServer(config, round=round, model_hash=model_hash)
        self.model_hash = model_hash or b""
        self.stage_timeout = stage_timeout
        w = pool.size
        # Contiguous blocks of ids: worker i hosts clients [i n / w, (i + 1) n / w).
        self.owner = np.arange(config.n, dtype=np.int64) * w // config.n
        self.hosted = {i: [u for u in range(config.n) if self.owner[u] == i] for i in range(w)}
        self.inputs = {
            i: encode_inputs(config, ids, [values[u] for u in ids])
            for i, ids in self.hosted.items()
        }
        self.silent = {
            i: encode_faults({u: s for u, s in silent.items() if self.owner[u] == i})
            for i in range(w)
        }
        # Each worker receives the private keys of the clients it hosts, and no others.
        self.identities = {
            i: b"".join(pairs[u].private_bytes() for u in ids) if pairs else b""
            for i, ids in self.hosted.items()
        }
        self.crash = {i: as_stage(s).value for i, s in crash.items()}
        self.lost: set[int] = set()
        self.traffic = TrafficCounter(range(config.n))
        self.client_seconds: dict[AnyStage, dict[int, float]] = defaultdict(dict)
        self.server_seconds: dict[AnyStage, float] = defaultdict(float)
        self.stage_wall: dict[str, float] = {}
        self.rejected: list[RejectedMessage] = []
        self.client_aborts: dict[int, str] = {}
        self.report: CostReport | None = None

    # --- transport ---------------------------------------------------------------------------

    def _gather(self, calls: dict[int, Any], stage: AnyStage, index: int) -> None:
        """Wait for the workers' answers to ``stage`` and feed them to the server."""
        ray = self.ray
        refs = list(calls.values())
        if not refs:  # every worker is lost: nothing can arrive
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.stage_timeout)
        done = set(ready)
        for i, ref in calls.items():
            if ref not in done:
                self.lost.add(i)  # too slow: its clients drop out at this stage
                continue
            try:
                status = decode_status(ray.get(ref))
            except MalformedMessageError as exc:
                self.lost.add(i)
                self._reject(index, "worker status", f"worker {i}", exc)
                continue
            except Exception:  # any Ray error means the worker is gone
                self.lost.add(i)
                continue
            for u, s in status["seconds"].items():
                per = self.client_seconds[stage]
                per[u] = per.get(u, 0.0) + s
            for u, reason in status["aborts"]:
                self.client_aborts[int(u)] = str(reason)
            for u, err, detail in status["rejected"]:
                self.rejected.append(
                    RejectedMessage(index, "server message", SERVER, u, err, detail)
                )
            self._receive_all(status["batch"], stage, index, i)

    def _receive_all(self, batch: bytes, stage: AnyStage, index: int, worker: int) -> None:
        start = time.perf_counter()
        try:
            envelopes = unpack_batch(batch)
        except MalformedMessageError as exc:
            self._reject(index, "batch", f"worker {worker}", exc)
            envelopes = []
        for raw in envelopes:
            try:
                msg = decode_message(raw)
                sender = msg.header.sender
                if type(sender) is not int or not 0 <= sender < self.config.n:
                    raise MalformedMessageError(f"sender {sender!r} is not a client id")
                if self.owner[sender] != worker:
                    raise MalformedMessageError(
                        f"worker {worker} answered for client {sender}, which it does not host"
                    )
                self.traffic.count(sender, SERVER, len(raw), msg.KIND, msg.STAGE)
                self.server.receive(msg)  # type: ignore[arg-type]
            except (ReplayError, MalformedMessageError) as exc:
                self._reject(index, "envelope", f"worker {worker}", exc)
        self.server_seconds[stage] += time.perf_counter() - start

    def _reject(self, index: int, kind: str, sender: str, exc: Exception) -> None:
        self.rejected.append(
            RejectedMessage(index, kind, sender, SERVER, type(exc).__name__, str(exc))
        )

    # --- the round ---------------------------------------------------------------------------

    def play(self) -> DriverResult:
        started = time.monotonic()
        cfg = self.config
        blob, fp = encode_config(cfg), cfg.fingerprint
        workers = self.pool._workers
        try:
            opened = time.monotonic()
            calls = {
                i: workers[i].begin_round.remote(
                    blob,
                    fp,
                    *self.inputs[i],
                    self.round,
                    self.silent[i],
                    self.crash.get(i, ""),
                    self.identities[i],
                    self.model_hash,
                )
                for i in range(self.pool.size)
            }
            for index, stage in enumerate(cfg.stages):
                self._gather(calls, stage, index)
                start = time.perf_counter()
                try:
                    out = self.server.close_stage()
                finally:
                    self.server_seconds[stage] += time.perf_counter() - start
                self.stage_wall[stage.value] = time.monotonic() - opened
                if not out:
                    break
                opened = time.monotonic()
                start = time.perf_counter()
                batches: dict[int, list[bytes]] = defaultdict(list)
                for m in out:
                    v = int(m.header.recipient)
                    i = int(self.owner[v])
                    if i in self.lost:
                        continue
                    data = encode_message(m)
                    self.traffic.count(SERVER, v, len(data), m.KIND, m.STAGE)
                    batches[i].append(data)
                self.server_seconds[stage] += time.perf_counter() - start
                calls = {i: workers[i].handle.remote(pack_batch(b)) for i, b in batches.items()}
        finally:
            self.report = self._build_report(time.monotonic() - started)
        result = self.server.result
        if result is None:  # pragma: no cover - close_stage raised instead
            raise ProtocolAbort("unmasking", "the server finished without output")
        return DriverResult(result, self.report, tuple(self.rejected), dict(self.client_aborts))

    def _build_report(self, wall: float) -> CostReport:
        cfg = self.config
        return build_report(
            protocol=(
                f"{cfg.protocol} (Ray simulation: {cfg.n} virtual clients on "
                f"{self.pool.size} workers, server in the driver)"
            ),
            config=cfg,
            server=self.server,
            stats=self.traffic.stats,
            client_seconds=self.client_seconds,
            server_seconds=self.server_seconds,
            rejected=len(self.rejected),
            client_aborts=self.client_aborts,
            simulation=True,
            extra={
                "transport": "ray",
                "workers": self.pool.size,
                "clients_per_worker": [len(v) for v in self.hosted.values()],
                "lost_workers": sorted(self.lost),
                "stage_wall_seconds": dict(self.stage_wall),
                "wall_seconds": wall,
                "bytes_counted": "envelopes (as the simulator; batch framing not counted)",
            },
        )


def run_ray(
    config: SecAggConfig,
    inputs: Sequence[npt.ArrayLike] | Mapping[int, npt.ArrayLike],
    *,
    workers: int = 2,
    round: int = 0,
    faults: Iterable[Fault] = (),
    crash_workers: Mapping[int, AnyStage] | None = None,
    stage_timeout: float = 120.0,
    num_cpus: float | None = None,
    identities: Sequence[Ed25519KeyPair] | Mapping[int, Ed25519KeyPair] | None = None,
    model_hash: bytes | None = None,
) -> DriverResult:
    """Run one round on a fresh pool of ``workers`` Ray actors (closed afterwards).

    Uses the running Ray instance (``ray.init(...)``), or lets Ray start a local one as it
    does by default. See `SecAggRayPool.run` for the parameters and errors.
    """
    with SecAggRayPool(workers, num_cpus=num_cpus) as pool:
        return pool.run(
            config,
            inputs,
            round=round,
            faults=faults,
            crash_workers=crash_workers,
            stage_timeout=stage_timeout,
            identities=identities,
            model_hash=model_hash,
        )
