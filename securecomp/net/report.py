"""What a protocol run cost and what it revealed: `CostReport` and `LeakageLedger`.

Every protocol run returns a `CostReport` (DESIGN.md §4): wall-clock time per phase,
communication (`CommStats`), rounds, a projection to LAN/WAN (`securecomp.net.costmodel`),
and a `LeakageLedger` listing, per party or role, everything it learned beyond its own
output (e.g. the key holder decrypting an aggregate gradient). Protocol docstrings state
the threat model; the ledger records what actually happened in a given run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from securecomp.errors import ParameterError
from securecomp.net.costmodel import LAN, WAN, NetworkSetting, estimate
from securecomp.net.stats import CommStats

__all__ = ["CostReport", "LeakageEntry", "LeakageLedger"]

PartyOrRole = int | str


@dataclass(frozen=True)
class LeakageEntry:
    """One disclosure: ``party`` (id or role) learned ``what`` during ``stage``."""

    party: PartyOrRole
    what: str
    stage: str


class LeakageLedger:
    """Append-only record of what each party or role learned beyond its output.

    Invariant: entries are never removed or reordered; ``len`` only grows.
    """

    def __init__(self) -> None:
        self._entries: list[LeakageEntry] = []

    def record(self, party: PartyOrRole, what: str, stage: str) -> LeakageEntry:
        """Append that ``party`` learned ``what`` during ``stage``.

        Example: ``ledger.record("key holder", "aggregate gradient of step 3", "decrypt")``.
        """
        if not isinstance(party, int | str) or isinstance(party, bool):
            raise ParameterError("leakage party must be a party id (int) or a role name (str)")
        if not isinstance(what, str) or not what or not isinstance(stage, str) or not stage:
            raise ParameterError("leakage 'what' and 'stage' must be non-empty strings")
        entry = LeakageEntry(party, what, stage)
        self._entries.append(entry)
        return entry

    @property
    def entries(self) -> tuple[LeakageEntry, ...]:
        return tuple(self._entries)

    def __iter__(self) -> Iterator[LeakageEntry]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def by_party(self) -> dict[PartyOrRole, list[LeakageEntry]]:
        """Entries grouped by party or role, in recording order."""
        out: dict[PartyOrRole, list[LeakageEntry]] = {}
        for e in self._entries:
            out.setdefault(e.party, []).append(e)
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"entries": [{"party", "what", "stage"}, ...]}``."""
        return {
            "entries": [{"party": e.party, "what": e.what, "stage": e.stage} for e in self._entries]
        }


@dataclass
class CostReport:
    """Time, communication, rounds and leakage of one protocol run.

    Attributes
    ----------
    protocol : str
        Name of the protocol (and its variant).
    phases : dict of str to float
        Seconds spent per phase (accumulated by `timer`).
    comm : CommStats, optional
        Communication counters (one party's or a merge of all parties').
    rounds : int, optional
        Critical-path rounds; taken from ``comm`` when not given.
    leakage : LeakageLedger
    metrics : dict
        Other results (accuracy, error bounds, ...); JSON-safe values please.
    """

    protocol: str
    phases: dict[str, float] = field(default_factory=dict)
    comm: CommStats | None = None
    rounds: int | None = None
    leakage: LeakageLedger = field(default_factory=LeakageLedger)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rounds is None and self.comm is not None:
            self.rounds = self.comm.rounds

    @contextmanager
    def timer(self, phase: str) -> Iterator[None]:
        """Add the wall-clock time of the block to ``phases[phase]``."""
        if not isinstance(phase, str) or not phase:
            raise ParameterError("phase must be a non-empty str, e.g. 'offline'")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - start

    @property
    def total_seconds(self) -> float:
        return sum(self.phases.values())

    def _rounds(self) -> int:
        if self.comm is not None:
            return max(self.comm.rounds, self.rounds or 0)
        return self.rounds or 0

    def projected(self, setting: NetworkSetting) -> float:
        """Estimated seconds in ``setting``: measured phase time as compute, plus network.

        The measured time includes local (in-process or loopback) communication, so the
        projection slightly overestimates compute.
        """
        nbytes = self.comm.max_party_bytes if self.comm is not None else 0
        return estimate(self._rounds(), nbytes, self.total_seconds, setting)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form, with LAN and WAN projections."""
        return {
            "protocol": self.protocol,
            "phases": dict(self.phases),
            "total_seconds": self.total_seconds,
            "rounds": self._rounds(),
            "comm": self.comm.as_dict() if self.comm is not None else None,
            "projected": {s.name: self.projected(s) for s in (LAN, WAN)},
            "leakage": self.leakage.as_dict(),
            "metrics": dict(self.metrics),
        }

    def summary(self) -> str:
        """Human-readable table of the report."""
        lines = [f"protocol: {self.protocol}"]
        for ph, sec in self.phases.items():
            lines.append(f"  time {ph:<18} {sec * 1e3:12.3f} ms")
        lines.append(f"  time {'total':<18} {self.total_seconds * 1e3:12.3f} ms")
        lines.append(f"  rounds {'':<16} {self._rounds():12d}")
        if self.comm is not None:
            c = self.comm
            lines.append(f"  bytes sent {'':<12} {c.bytes_sent:12d}  ({c.messages_sent} messages)")
            lines.append(
                f"  bytes received {'':<8} {c.bytes_received:12d}  ({c.messages_received} messages)"
            )
            for tag, t in sorted(c.per_tag.items()):
                lines.append(f"    tag {tag:<20} {t.bytes_sent:12d} B sent, {t.rounds} rounds")
            for ph, t in sorted(c.per_phase.items()):
                lines.append(f"    phase {ph:<18} {t.bytes_sent:12d} B sent, {t.rounds} rounds")
        for s in (LAN, WAN):
            lines.append(f"  projected {s.name:<13} {self.projected(s) * 1e3:12.3f} ms")
        for k, v in self.metrics.items():
            lines.append(f"  {k}: {v}")
        if len(self.leakage):
            lines.append("  leakage:")
            for party, entries in self.leakage.by_party().items():
                for e in entries:
                    lines.append(f"    {party!s}: {e.what} (at {e.stage})")
        else:
            lines.append("  leakage: none recorded")
        return "\n".join(lines)
