"""Result and cost report shared by the multi-process secure-aggregation drivers.

The TCP driver (`securecomp.secagg.tcp_driver`) and the Ray driver
(`securecomp.secagg.ray_driver`) return a `DriverResult`, which has the shape of the
in-process simulator's `SimulationResult` (the server's `SecAggResult`, a `CostReport`,
the refused messages and the client aborts), and their reports carry the same metrics
(``bytes_per_client``, ``bytes_per_stage``, ``client_upload_bytes_max``, ...) so that the
three drivers can be compared line by line. The leakage ledger is the server's own (what
the semi-honest server learned in this run) plus what each client learns by design.

`TrafficCounter` counts envelopes per party and per stage for drivers that see every
message (the Ray driver): each message is counted once as sent by its sender and once as
received by its recipient, attributed to the stage of the message (`Message.STAGE`), as the
simulator does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.net.report import CostReport, LeakageLedger
from securecomp.net.stats import CommStats, Counts
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.messages import SERVER, ActiveStage, AnyStage, Stage
from securecomp.secagg.server import SecAggResult, SecAggServer

if TYPE_CHECKING:  # annotation only: the simulator builds its report with this module
    from securecomp.secagg.simulator import RejectedMessage

__all__ = [
    "STAGES",
    "DriverResult",
    "TrafficCounter",
    "build_report",
    "input_metrics",
    "record_client_leakage",
]

#: The four stages of the semi-honest protocol in order (`SecAggConfig.stages` gives the
#: stages of a configuration, five against a malicious server).
STAGES: tuple[Stage, ...] = (
    Stage.ADVERTISE_KEYS,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT_COLLECTION,
    Stage.UNMASKING,
)


@dataclass
class DriverResult:
    """Output of one round run by a multi-process driver.

    Attributes
    ----------
    result : SecAggResult
        The server's output (aggregate of the survivors).
    report : CostReport
        Time per stage, bytes per client and per stage, leakage.
    rejected : tuple of RejectedMessage
        Messages a state machine refused (``slot`` is the stage index, from 0).
    client_aborts : dict of int to str
        Clients that aborted by their own rules, with the reason.
    """

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


class TrafficCounter:
    """`CommStats` of the server and of every client, fed one envelope at a time."""

    def __init__(self, clients: Iterable[int]) -> None:
        self.stats: dict[int | str, CommStats] = {u: CommStats(u) for u in clients}
        self.stats[SERVER] = CommStats(SERVER)

    def count(
        self, sender: int | str, recipient: int | str, nbytes: int, kind: str, stage: AnyStage
    ) -> None:
        """Record one message of ``nbytes`` (sent and delivered) in ``stage``."""
        src, dst = self.stats[sender], self.stats[recipient]
        with src.phase(stage.value):
            depth = src.record_send(recipient, nbytes, kind)
        with dst.phase(stage.value):
            dst.record_recv(sender, nbytes, kind, depth)


_ZERO = Counts()


def build_report(
    *,
    protocol: str,
    config: SecAggConfig,
    server: SecAggServer,
    stats: Mapping[int | str, CommStats],
    client_seconds: Mapping[AnyStage, Mapping[int, float]],
    server_seconds: Mapping[AnyStage, float],
    rejected: int,
    client_aborts: Iterable[int],
    simulation: bool,
    extra: Mapping[str, Any] | None = None,
) -> CostReport:
    """Assemble the `CostReport` of a round (same metrics as the simulator's report).

    Parameters
    ----------
    protocol : str
        Label of the run (says whether it is a simulation and how parties were hosted).
    stats : mapping
        One `CommStats` per client id and one under `SERVER`.
    client_seconds : mapping
        Compute seconds per stage and client (as measured where the client ran).
    server_seconds : mapping
        Server compute seconds per stage.
    """
    ledger = LeakageLedger()
    for entry in server.leakage:
        ledger.record(entry.party, entry.what, entry.stage)
    record_client_leakage(ledger, config)
    report = CostReport(protocol=protocol, comm=CommStats.merge(stats.values()), leakage=ledger)
    for stage in config.stages:
        per = client_seconds.get(stage, {})
        if per:
            report.phases[f"clients:{stage.value}"] = sum(per.values())
        if stage in server_seconds:
            report.phases[f"server:{stage.value}"] = server_seconds[stage]
    clients = [u for u in stats if u != SERVER]
    sent = {u: stats[u].bytes_sent for u in clients}
    per_client_seconds: dict[int, float] = defaultdict(float)
    for per in client_seconds.values():
        for u, s in per.items():
            per_client_seconds[u] += s
    by_stage: dict[str, dict[str, int]] = {}
    for stage in config.stages:
        up = sum(stats[u].per_phase.get(stage.value, _ZERO).bytes_sent for u in clients)
        down = stats[SERVER].per_phase.get(stage.value, _ZERO).bytes_sent
        by_stage[stage.value] = {"clients_sent": up, "server_sent": down}
    result = server.result
    report.metrics.update(
        {
            "simulation": simulation,
            "n": config.n,
            "dim": config.dim,
            "bits": config.bits,
            "threshold": config.threshold,
            "degree": config.graph.degree,
            "malicious_server": config.malicious,
            "survivors": len(result.survivors) if result is not None else 0,
            "aborted": server.aborted,
            "dropped": {s.value: list(v) for s, v in server.dropped.items()},
            "bytes_per_client": {
                str(u): {
                    "sent": stats[u].bytes_sent,
                    "received": stats[u].bytes_received,
                    "per_stage_sent": {ph: c.bytes_sent for ph, c in stats[u].per_phase.items()},
                }
                for u in clients
            },
            "bytes_per_stage": by_stage,
            "client_upload_bytes_max": max(sent.values(), default=0),
            "client_upload_bytes_mean": sum(sent.values()) / max(len(sent), 1),
            "communication_expansion_16bit": max(sent.values(), default=0) / (2 * config.dim),
            "client_seconds_mean": sum(per_client_seconds.values()) / max(len(clients), 1),
            "client_seconds_max": max(per_client_seconds.values(), default=0.0),
            "server_seconds": sum(server_seconds.values()),
            "rejected_messages": rejected,
            "client_aborts": sorted(client_aborts),
            **input_metrics(config),
        }
    )
    if extra:
        report.metrics.update(extra)
    return report


def record_client_leakage(ledger: LeakageLedger, config: SecAggConfig) -> None:
    """What each client learns by design, in any driver's report."""
    ledger.record(
        "each client",
        "ids and public keys of its live neighbours at each stage",
        Stage.ADVERTISE_KEYS.value,
    )
    if config.malicious:
        ledger.record(
            "each client",
            "the signed key transcript: ids, public keys and signatures of every client that "
            "advertised keys (the whole transcript is needed to recompute its hash)",
            Stage.ADVERTISE_KEYS.value,
        )
        ledger.record(
            "each client",
            "the survivor set U3 and the signers of its certificate",
            ActiveStage.CONSISTENCY_CHECK.value,
        )


def input_metrics(config: SecAggConfig) -> dict[str, Any]:
    """How the inputs were encoded, for any driver's report: ``"quantized"`` (the sum
    cannot wrap) or ``"distributed-dp"`` with the mechanism and the log2 bound on the
    aggregate wrapping modulo ``2^b`` (a failure event for the DP accountant's delta)."""
    dp = config.dp
    if dp is None:
        return {"inputs": "quantized"}
    return {
        "inputs": "distributed-dp",
        "dp_mechanism": dp.mechanism,
        "log2_wrap_probability": dp.log2_wrap_probability,
    }
