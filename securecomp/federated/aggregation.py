"""How the server averages the clients' model updates: in the clear, through SecAgg+, or
through SecAgg+ with distributed differential privacy.

Three aggregators share one interface (`Aggregator.aggregate`), so FedAvg is written once:

* `PlainAggregator`: the mean of the coordinate-clipped updates, computed in the clear. It
  protects nothing; it is the reference the secure aggregators are tested against.
* `SecAggAggregator`: each client clips every coordinate to ``[-clip, clip]``, quantizes
  with unbiased stochastic rounding at scale ``2^scale_bits``
  (`securecomp.encoding.quantize`), and the sum goes through SecAgg+ (Bell et al., CCS
  2020) run by the in-process simulator `securecomp.secagg.simulate` (one process plays
  the server and every client: a simulation, labelled so in its `CostReport`). The server
  learns the sum of the survivors' quantized updates, exactly, and which clients dropped.
* `DpSecAggAggregator` (`securecomp.federated.dp_aggregation`): each client privatizes its
  update with `securecomp.dp.encode_update` (rotation, L2 clipping, conditional rounding,
  discrete Gaussian or Skellam noise; Kairouz, Liu and Steinke, ICML 2021) and the noisy
  integer vectors are summed by SecAgg+. The server learns only the noisy sum.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from securecomp.dp import DistributedDpConfig
from securecomp.encoding.quantize import quantize
from securecomp.errors import (
    InsufficientParticipantsError,
    ParameterError,
    ShapeMismatchError,
)
from securecomp.net.report import CostReport
from securecomp.secagg import SecAggConfig, Stage, ThreatModel, dropouts, simulate

__all__ = [
    "AggregationOutcome",
    "Aggregator",
    "PlainAggregator",
    "SecAggAggregator",
    "bytes_per_client",
    "check_updates",
    "describe",
    "positive",
    "secagg_details",
]

@dataclass(frozen=True)
class AggregationOutcome:
    """What the server obtains from one aggregation.

    Attributes
    ----------
    mean : the decoded mean of the survivors' updates (clipped; noisy under DP).
    survivors : indexes (into the round's update list) of the clients whose update is in it.
    protocol : how the mean was computed (names simulations as such).
    bytes_sent : mean bytes one client sent in the round (0 for plain averaging).
    bytes_received : mean bytes one client received in the round.
    error_bound : L2 bound on ``mean - mean of the clipped updates`` (quantization, or
        rounding plus noise under DP; for DP it holds with probability 1 - 2^-40).
    report : the secure-aggregation run's `CostReport` (None for plain averaging).
    dp_config : the distributed-DP parameters of the round (None without DP).
    details : protocol parameters (modulus bits, threshold, graph degree, ...).
    """

    mean: NDArray[np.float64]
    survivors: tuple[int, ...]
    protocol: str
    bytes_sent: float = 0.0
    bytes_received: float = 0.0
    error_bound: float = 0.0
    report: CostReport | None = None
    dp_config: DistributedDpConfig | None = None
    details: dict[str, float | int | str] = field(default_factory=dict)


class Aggregator(Protocol):
    """Computes the mean of the clients' updates for the server."""

    #: Short name for reports.
    name: str

    def aggregate(
        self,
        updates: Sequence[NDArray[np.float64]],
        round: int,
        *,
        drop: Collection[int] = (),
        dp_config: DistributedDpConfig | None = None,
    ) -> AggregationOutcome:
        """Mean of ``updates``; clients listed in ``drop`` go silent before sending it."""
        ...


def check_updates(updates: Sequence[NDArray[np.float64]]) -> int:
    """The common length of ``updates``, after refusing none, ragged or non-finite ones."""
    if len(updates) == 0:
        raise InsufficientParticipantsError("aggregation", "no client sent an update")
    dims = {np.shape(u) for u in updates}
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        raise ShapeMismatchError(f"updates must be vectors of one length, got shapes {dims}")
    for u in updates:
        if not np.all(np.isfinite(u)):
            raise ParameterError("an update holds NaN or infinity: local training diverged")
    return int(next(iter(dims))[0])


def positive(name: str, value: object) -> float:
    """``value`` as a positive finite float, or a `ParameterError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise ParameterError(f"{name} must be positive and finite, got {value!r}")
    return v


def bytes_per_client(report: CostReport) -> tuple[float, float]:
    """Mean bytes one client sent and received, from a secure-aggregation `CostReport`."""
    per = report.metrics.get("bytes_per_client", {})
    if not per:
        return 0.0, 0.0
    sent = [float(v["sent"]) for v in per.values()]
    received = [float(v["received"]) for v in per.values()]
    return sum(sent) / len(sent), sum(received) / len(received)


class PlainAggregator:
    """The mean of the updates clipped to ``[-clip, clip]`` per coordinate, in the clear.

    No protection at all: the server sees every update. Reference for tests and baselines.
    """

    name = "plain averaging (no protection)"

    def __init__(self, clip: float = 1.0) -> None:
        self.clip = positive("clip", clip)

    def aggregate(
        self,
        updates: Sequence[NDArray[np.float64]],
        round: int,
        *,
        drop: Collection[int] = (),
        dp_config: DistributedDpConfig | None = None,
    ) -> AggregationOutcome:
        check_updates(updates)
        keep = tuple(i for i in range(len(updates)) if i not in set(drop))
        if not keep:
            raise InsufficientParticipantsError("aggregation", "every client dropped out")
        clipped = [np.clip(updates[i], -self.clip, self.clip) for i in keep]
        return AggregationOutcome(np.mean(clipped, axis=0), keep, self.name)


class SecAggAggregator:
    """SecAgg+ over quantized, coordinate-clipped updates (in-process simulation).

    Invariant: ``mean * len(survivors) * 2^scale_bits`` equals the sum of the survivors'
    quantized updates exactly, and each coordinate of ``mean`` is within ``2^-scale_bits``
    of the mean of the clipped updates (stochastic rounding moves each value by less than
    one step).

    Parameters
    ----------
    clip : per-coordinate clipping bound of the updates.
    scale_bits : quantization step ``2^-scale_bits``.
    threat : corrupt and dropout fractions the graph and threshold must withstand.
    rng : generator of the stochastic-rounding coins (they hide nothing; masks and keys
        come from the OS CSPRNG inside `securecomp.secagg`).
    protocol : ``"secagg+"`` (Harary graph, the default) or ``"secagg"`` (complete graph).
    """

    def __init__(
        self,
        *,
        clip: float = 1.0,
        scale_bits: int = 16,
        threat: ThreatModel | None = None,
        rng: np.random.Generator,
        protocol: str = "secagg+",
    ) -> None:
        self.clip = positive("clip", clip)
        if isinstance(scale_bits, bool) or not isinstance(scale_bits, int):
            raise ParameterError(f"scale_bits must be an int, got {scale_bits!r}")
        if protocol not in ("secagg", "secagg+"):
            raise ParameterError(f"protocol must be 'secagg' or 'secagg+', got {protocol!r}")
        if not isinstance(rng, np.random.Generator):
            raise ParameterError("rng must be a numpy.random.Generator (rounding coins)")
        self.scale_bits = scale_bits
        self.threat = threat if threat is not None else ThreatModel()
        self.rng = rng
        self.protocol = protocol
        self.name = f"{protocol} (in-process simulation)"

    def config(self, n: int, dim: int) -> SecAggConfig:
        """The secure-aggregation parameters for ``n`` clients and vectors of ``dim``."""
        return SecAggConfig.create(
            n,
            dim,
            clip=self.clip,
            scale_bits=self.scale_bits,
            protocol=self.protocol,  # type: ignore[arg-type]
            threat=self.threat,
        )

    def aggregate(
        self,
        updates: Sequence[NDArray[np.float64]],
        round: int,
        *,
        drop: Collection[int] = (),
        dp_config: DistributedDpConfig | None = None,
    ) -> AggregationOutcome:
        dim = check_updates(updates)
        n = len(updates)
        if n < 2:
            raise InsufficientParticipantsError(
                "aggregation", "secure aggregation needs at least 2 clients"
            )
        try:
            cfg = self.config(n, dim)
        except ParameterError as exc:
            raise InsufficientParticipantsError(
                "planning", f"no secure-aggregation configuration for {n} clients ({exc})"
            ) from exc
        inputs = [quantize(u, cfg.quantization, rng=self.rng).values for u in updates]
        out = simulate(
            cfg, inputs, round=round, faults=dropouts({Stage.MASKED_INPUT_COLLECTION: drop})
        )
        survivors = tuple(out.survivors)
        mean = out.result.dequantized() / len(survivors)
        sent, received = bytes_per_client(out.report)
        step = 1.0 / cfg.quantization.scale
        return AggregationOutcome(
            mean=mean,
            survivors=survivors,
            protocol=f"{describe(cfg)} (in-process simulation)",
            bytes_sent=sent,
            bytes_received=received,
            error_bound=step * math.sqrt(dim),
            report=out.report,
            details=secagg_details(cfg),
        )


def describe(cfg: SecAggConfig) -> str:
    """``secagg+ (Harary graph, degree k)`` or ``secagg (complete graph)``."""
    if cfg.graph.is_complete:
        return "secagg (complete graph)"
    return f"secagg+ (Harary graph, degree {cfg.graph.degree})"


def secagg_details(cfg: SecAggConfig) -> dict[str, float | int | str]:
    """The parameters of a secure-aggregation configuration worth reporting."""
    return {
        "protocol": cfg.protocol,
        "modulus_bits": cfg.bits,
        "threshold": cfg.threshold,
        "degree": cfg.graph.degree,
        "clients": cfg.n,
        "scale": cfg.quantization.scale,
    }
