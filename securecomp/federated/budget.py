"""Per-user privacy budgets and the check that guards the spending ledger.

The registry does no privacy accounting: callers compute the (epsilon, delta) a round costs
with their own accountant and append it. The ledger sums the entries (basic sequential
composition, Dwork and Roth 2014, Theorem 3.16), which is sound for any sequence of
mechanisms. A caller with a tighter accountant (RDP, zCDP, PLD) appends the *increment* of
its cumulative guarantee instead, and the sum is then exactly its cumulative (epsilon, delta).

A spend is checked before anything is written: one that would take a user past either
component of the budget raises `BudgetExceededError` and the ledger stays as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from securecomp.errors import ParameterError

__all__ = ["PrivacyBudget", "check_cost", "fits", "total_spent"]


def _finite_nonneg(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name} must be a real number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x) or x < 0.0:
        raise ParameterError(f"{name} must be finite and >= 0, got {value!r}")
    return x


def check_cost(epsilon: object, delta: object) -> tuple[float, float]:
    """Validate one ledger entry: epsilon >= 0 finite, 0 <= delta < 1."""
    eps = _finite_nonneg("epsilon", epsilon)
    dlt = _finite_nonneg("delta", delta)
    if dlt >= 1.0:
        raise ParameterError(f"delta must be below 1 (a probability of failure), got {delta!r}")
    return eps, dlt


@dataclass(frozen=True)
class PrivacyBudget:
    """A user's total (epsilon, delta) allowance over all purposes and rounds.

    Invariant: ``epsilon`` is finite and >= 0, ``0 <= delta < 1``.
    """

    epsilon: float
    delta: float

    def __post_init__(self) -> None:
        eps, dlt = check_cost(self.epsilon, self.delta)
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", dlt)


def total_spent(entries: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """Sum of (epsilon, delta) entries, each component correctly rounded (`math.fsum`).

    ``fsum`` makes ten spends of 0.1 total exactly 1.0, so a budget of 1.0 admits them.
    """
    eps: list[float] = []
    dlt: list[float] = []
    for e, d in entries:
        eps.append(e)
        dlt.append(d)
    return math.fsum(eps), math.fsum(dlt)


def fits(
    entries: Iterable[tuple[float, float]], cost: tuple[float, float], budget: PrivacyBudget
) -> bool:
    """Whether the ledger ``entries`` plus ``cost`` stay within ``budget`` (both components)."""
    eps, dlt = total_spent([*entries, cost])
    return eps <= budget.epsilon and dlt <= budget.delta
