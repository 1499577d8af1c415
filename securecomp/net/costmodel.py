"""Projection of a measured run onto network settings: rounds·RTT + bytes/bandwidth + compute.

The model is the usual first-order one for secure-computation protocols (e.g. the LAN/WAN
tables of ABY, Demmler et al., NDSS 2015, and MP-SPDZ's cost reports): every dependent
communication layer costs one round-trip time, and the data volume is limited by the link
bandwidth. Both inputs come from `CommStats`:

* rounds: the critical-path layer count (`CommStats.rounds`; the maximum over parties for
  a merge), because layers on different parties overlap in time;
* bytes: the largest per-party load ``max(bytes_sent, bytes_received)`` (each party has its
  own full-duplex link of ``bandwidth_bps`` in each direction; the busiest link is the
  bottleneck).

It ignores congestion, TCP slow start, TLS record overhead and the overlap of compute with
communication, so it is an estimate, not a prediction to the millisecond.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from securecomp.errors import ParameterError
from securecomp.net.stats import CommStats

__all__ = ["LAN", "WAN", "NetworkSetting", "estimate", "project"]


@dataclass(frozen=True)
class NetworkSetting:
    """A network: round-trip time (seconds) and per-direction bandwidth (bits per second)."""

    name: str
    rtt_s: float
    bandwidth_bps: float

    def __post_init__(self) -> None:
        if not self.rtt_s >= 0 or not self.bandwidth_bps > 0:
            raise ParameterError(
                f"network {self.name!r} needs rtt_s >= 0 and bandwidth_bps > 0, got "
                f"{self.rtt_s!r} and {self.bandwidth_bps!r}"
            )


#: Data-centre LAN: 0.2 ms RTT, 10 Gbit/s.
LAN: Final = NetworkSetting("LAN", 0.2e-3, 10e9)
#: Wide-area network: 50 ms RTT, 100 Mbit/s.
WAN: Final = NetworkSetting("WAN", 50e-3, 100e6)


def estimate(
    rounds: int, max_party_bytes: int, compute_seconds: float, setting: NetworkSetting
) -> float:
    """``rounds · rtt_s + 8 · max_party_bytes / bandwidth_bps + compute_seconds``."""
    if rounds < 0 or max_party_bytes < 0 or not compute_seconds >= 0:
        raise ParameterError(
            "rounds, bytes and compute_seconds must be non-negative, got "
            f"{rounds!r}, {max_party_bytes!r}, {compute_seconds!r}"
        )
    return (
        rounds * setting.rtt_s
        + 8.0 * max_party_bytes / setting.bandwidth_bps
        + float(compute_seconds)
    )


def project(
    stats: CommStats | Iterable[CommStats], compute_seconds: float, setting: NetworkSetting
) -> float:
    """Estimated wall-clock seconds of a run in ``setting``.

    Parameters
    ----------
    stats : CommStats or iterable of CommStats
        One party's counters, a merge (`CommStats.merge`), or every party's counters.
    compute_seconds : float
        Local computation time on the critical path (e.g. the measured phase times).
    setting : NetworkSetting

    Returns
    -------
    float
        ``rounds · rtt_s + 8 · max_party_bytes / bandwidth_bps + compute_seconds``.
    """
    merged = stats if isinstance(stats, CommStats) else CommStats.merge(stats)
    return estimate(merged.rounds, merged.max_party_bytes, compute_seconds, setting)
