"""User-level privacy accounting of federated rounds, charged to the consent registry.

Each round of distributed-DP FedAvg is one release (`securecomp.dp.PrivacyEvent`) about
every user whose update is in the aggregate; neighbouring data sets differ in one *user's*
whole contribution (user-level DP, McMahan et al., "Learning Differentially Private
Recurrent Language Models", ICLR 2018), because each client contributes one clipped update
per round. A user's guarantee after the rounds they took part in is the composition of
those rounds' events by `securecomp.dp.PrivacyAccountant` (Renyi/zCDP composition, then the
Canonne-Kamath-Steinke conversion at the user's ``delta``). Rounds a user sat out cost them
nothing, but there is no amplification by sampling: the server picks the cohort, so the
randomness of who is picked protects nobody against it.

The registry's ledger sums its entries (`securecomp.federated.budget`). To make the sum
equal the tight composed guarantee, a round charges each participant the *increment* of
their cumulative epsilon, ``epsilon(history + round) - epsilon(history)``, and the whole
``delta`` at their first round (zero after). The sum of a user's entries is then their
cumulative ``(epsilon, delta)``; each increment is rounded up by one ulp so that float
rounding never makes the ledger claim less than the accountant.

An increment depends on the user's history, so users with different histories pay
different amounts in the same round; the trainer groups them by price.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from securecomp.dp import PrivacyAccountant, PrivacyEvent
from securecomp.errors import ParameterError

__all__ = ["UserLevelAccountant"]

_History = tuple[tuple[int, int], ...]  # sorted (event index, count) pairs


class UserLevelAccountant:
    """Per-pseudonym composition of the rounds each user contributed to.

    Invariant: for every pseudonym, the sum of the costs committed equals (up to one ulp
    per round, rounded up) the accountant's ``epsilon`` of the rounds it took part in, and
    the sum of the deltas equals ``delta`` once it has taken part in any round.

    Parameters
    ----------
    delta : the delta of every user's guarantee, in (0, 1).
    """

    def __init__(self, delta: float) -> None:
        if isinstance(delta, bool) or not isinstance(delta, int | float):
            raise ParameterError(f"delta must be a real number, got {delta!r}")
        if not 0.0 < float(delta) < 1.0 or not math.isfinite(float(delta)):
            raise ParameterError(f"delta must lie in (0, 1), got {delta!r}")
        self.delta = float(delta)
        self._events: list[PrivacyEvent] = []
        self._index: dict[PrivacyEvent, int] = {}
        self._history: dict[str, Counter[int]] = {}
        self._cache: dict[_History, float | None] = {(): 0.0}

    def _event_id(self, event: PrivacyEvent) -> int:
        if not isinstance(event, PrivacyEvent):
            raise ParameterError("event must be a securecomp.dp.PrivacyEvent")
        if event not in self._index:
            self._index[event] = len(self._events)
            self._events.append(event)
        return self._index[event]

    def _key(self, pseudonym: str, extra: int | None = None) -> _History:
        counts = Counter(self._history.get(pseudonym, Counter()))
        if extra is not None:
            counts[extra] += 1
        return tuple(sorted(counts.items()))

    def _epsilon(self, key: _History) -> float | None:
        if key not in self._cache:
            acct = PrivacyAccountant([(self._events[i], c) for i, c in key])
            try:
                self._cache[key] = acct.get_epsilon(self.delta).epsilon
            except ParameterError:
                # The composed guarantee is vacuous at this delta: no finite price.
                self._cache[key] = None
        return self._cache[key]

    def epsilon(self, pseudonym: str) -> float:
        """The user's cumulative epsilon (at `delta`) over the rounds committed so far."""
        value = self._epsilon(self._key(pseudonym))
        return math.inf if value is None else value

    def rounds(self, pseudonym: str) -> int:
        """How many committed rounds the user took part in."""
        return sum(self._history.get(pseudonym, Counter()).values())

    def cost(self, pseudonym: str, event: PrivacyEvent) -> tuple[float, float] | None:
        """What taking part in a round with ``event`` adds to the user's ledger.

        Returns ``(epsilon increment, delta increment)``, or None when the composed
        guarantee would be vacuous (no budget can pay it).
        """
        before = self._epsilon(self._key(pseudonym))
        after = self._epsilon(self._key(pseudonym, self._event_id(event)))
        if before is None or after is None:
            return None
        increment = math.nextafter(max(after - before, 0.0), math.inf)
        first = self.rounds(pseudonym) == 0
        return increment, (self.delta if first else 0.0)

    def commit(self, pseudonyms: Iterable[str], event: PrivacyEvent) -> None:
        """Record that ``pseudonyms`` took part in a round with ``event``."""
        e = self._event_id(event)
        for p in pseudonyms:
            self._history.setdefault(p, Counter())[e] += 1

    def forget(self, pseudonym: str) -> None:
        """Drop a purged user's history (the registry no longer knows the pseudonym)."""
        self._history.pop(pseudonym, None)
