"""Exact communication accounting: bytes, messages and rounds, per peer, op tag and phase.

Bytes are the frame bytes actually serialized onto a link (frame head, tag and payload;
TLS record overhead is not ours and not counted), counted once as sent by the sender and
once as received by the receiver when the message is delivered to the program.

Rounds (dependent message layers)
---------------------------------
Every frame carries a *depth*, a Lamport clock (Lamport, CACM 1978) restricted to
communication: a party keeps ``clock`` = the largest depth it has received; each message
it sends has depth ``clock + 1``. So a message's depth is the length of the longest chain
of messages, each sent after its predecessor was received, that ends in it, and the
largest depth of a run is the number of communication layers on its critical path: what
multiplies the latency. A party's ``rounds`` is the largest depth it sent or received.

Consequences, all tested: sends without an intervening receive share one layer (a
broadcast is one round); an exchange (both parties send, then receive) is one round, and
``k`` exchanges in sequence are ``k`` rounds; a relay chain ``0 → 1 → 2`` is two rounds
for everyone downstream, although each party sent only once. For lock-step (SPMD)
protocols this equals "a party's counter advances when it sends after having received
since its last send"; for chains it also counts the layers the party waited for.

Each increase of a party's ``rounds`` is attributed to the op tag and the phase of the
message that caused it, so per-tag (and per-phase) rounds add up to the total.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from securecomp.errors import ParameterError

__all__ = ["DEFAULT_PHASE", "CommStats", "Counts"]

#: Phase of traffic outside any ``with stats.phase(...)`` block.
DEFAULT_PHASE = "online"

PartyId = int | str


@dataclass
class Counts:
    """Traffic totals of one slice (a peer, a tag, a phase or a party)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    rounds: int = 0

    def add(self, other: Counts, *, rounds: str = "sum") -> None:
        """Accumulate ``other``; ``rounds`` combine by ``"sum"`` or ``"max"``."""
        self.bytes_sent += other.bytes_sent
        self.bytes_received += other.bytes_received
        self.messages_sent += other.messages_sent
        self.messages_received += other.messages_received
        if rounds == "max":
            self.rounds = max(self.rounds, other.rounds)
        else:
            self.rounds += other.rounds


class CommStats:
    """Communication counters of one party (or a merge of several).

    Invariants: ``bytes_sent == sum(c.bytes_sent for c in per_peer.values())`` (likewise
    per tag and per phase); ``rounds == sum(c.rounds for c in per_tag.values())`` for a
    single party; after everyone's messages are delivered, the merged ``bytes_sent`` equals
    the merged ``bytes_received``.

    Parameters
    ----------
    party : int or str, optional
        Whose counters these are (``None`` for a merge).
    """

    def __init__(self, party: PartyId | None = None) -> None:
        self.party = party
        self._lock = threading.Lock()
        self._phase = DEFAULT_PHASE
        self._clock = 0  # largest depth received (Lamport clock)
        self.totals = Counts()
        self.per_peer: dict[PartyId, Counts] = {}
        self.per_tag: dict[str, Counts] = {}
        self.per_phase: dict[str, Counts] = {}
        #: Per-party totals: one entry for a single party, one per member for a merge.
        self.per_party: dict[PartyId, Counts] = {}

    # -- recording ---------------------------------------------------------------------

    @property
    def current_phase(self) -> str:
        """The phase new traffic is attributed to."""
        return self._phase

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Attribute traffic inside the block to phase ``name`` (e.g. ``"offline"``)."""
        if not isinstance(name, str) or not name:
            raise ParameterError("phase name must be a non-empty str, e.g. 'offline'")
        previous, self._phase = self._phase, name
        try:
            yield
        finally:
            self._phase = previous

    def _slices(self, peer: PartyId, tag: str) -> tuple[Counts, ...]:
        return (
            self.totals,
            self.per_peer.setdefault(peer, Counts()),
            self.per_tag.setdefault(tag, Counts()),
            self.per_phase.setdefault(self._phase, Counts()),
        )

    def _advance(self, depth: int, tag: str) -> None:
        # Attribute the growth of the critical path to this message's tag and phase.
        grow = depth - self.totals.rounds
        if grow > 0:
            self.totals.rounds = depth
            self.per_tag[tag].rounds += grow
            self.per_phase[self._phase].rounds += grow

    def record_send(self, peer: PartyId, nbytes: int, tag: str) -> int:
        """Count one sent frame of ``nbytes``; returns the depth to stamp on it."""
        with self._lock:
            depth = self._clock + 1
            for c in self._slices(peer, tag):
                c.bytes_sent += nbytes
                c.messages_sent += 1
            self._advance(depth, tag)
            return depth

    def record_recv(self, peer: PartyId, nbytes: int, tag: str, depth: int) -> None:
        """Count one delivered frame of ``nbytes`` stamped with ``depth``."""
        with self._lock:
            for c in self._slices(peer, tag):
                c.bytes_received += nbytes
                c.messages_received += 1
            self._clock = max(self._clock, depth)
            self._advance(depth, tag)

    # -- reading -----------------------------------------------------------------------

    @property
    def bytes_sent(self) -> int:
        return self.totals.bytes_sent

    @property
    def bytes_received(self) -> int:
        return self.totals.bytes_received

    @property
    def messages_sent(self) -> int:
        return self.totals.messages_sent

    @property
    def messages_received(self) -> int:
        return self.totals.messages_received

    @property
    def rounds(self) -> int:
        """Communication layers on the critical path seen so far (max over a merge)."""
        return self.totals.rounds

    def _party_totals(self) -> dict[PartyId, Counts]:
        if self.per_party:
            return self.per_party
        return {self.party if self.party is not None else "?": self.totals}

    @property
    def max_party_bytes(self) -> int:
        """Largest per-party link load, ``max(bytes_sent, bytes_received)`` (full duplex)."""
        return max(
            (max(c.bytes_sent, c.bytes_received) for c in self._party_totals().values()),
            default=0,
        )

    @classmethod
    def merge(cls, parts: Iterable[CommStats]) -> CommStats:
        """Aggregate several parties' counters.

        Bytes and messages add up; rounds take the maximum (the critical path is shared,
        not additive), also per tag and per phase. ``per_party`` holds each member's
        totals; ``per_peer`` stays empty (a merged view has no single viewpoint).
        """
        out = cls(None)
        for s in parts:
            with s._lock:
                out.totals.add(s.totals, rounds="max")
                for key, c in s._party_totals().items():
                    out.per_party.setdefault(key, Counts()).add(c, rounds="max")
                for tag, c in s.per_tag.items():
                    out.per_tag.setdefault(tag, Counts()).add(c, rounds="max")
                for ph, c in s.per_phase.items():
                    out.per_phase.setdefault(ph, Counts()).add(c, rounds="max")
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot (party ids become strings as map keys)."""
        with self._lock:
            return {
                "party": self.party,
                **asdict(self.totals),
                "max_party_bytes": self.max_party_bytes,
                "per_peer": {str(k): asdict(v) for k, v in self.per_peer.items()},
                "per_tag": {k: asdict(v) for k, v in self.per_tag.items()},
                "per_phase": {k: asdict(v) for k, v in self.per_phase.items()},
                "per_party": {str(k): asdict(v) for k, v in self._party_totals().items()},
            }

    def __repr__(self) -> str:
        t = self.totals
        return (
            f"CommStats(party={self.party!r}, sent={t.bytes_sent} B/{t.messages_sent} msgs, "
            f"received={t.bytes_received} B/{t.messages_received} msgs, rounds={t.rounds})"
        )
