"""Per-user privacy budgets and the check that guards the spending ledger.

The registry does no privacy accounting: callers compute the (epsilon, delta) a round costs
with their own accountant and append it. The ledger sums the entries (basic sequential
composition, Dwork and Roth 2014, Theorem 3.16), which is sound for any sequence of
mechanisms. A caller with a tighter accountant (RDP, zCDP, PLD) appends the *increment* of
its cumulative guarantee instead, and the sum is then exactly its cumulative (epsilon, delta).

A spend is checked before anything is written: one that would take a user past either
component of the budget raises `BudgetExceededError` and the ledger stays as it was.

A round's price may differ per user (`Cost`): under a tight accountant each user pays the
increment of their own composed guarantee, which depends on their history. `price_function`
turns any of the accepted forms into one function from pseudonym to price.

Only mechanisms with a differential-privacy guarantee have a price. A round without one
costs no finite (epsilon, delta); it is recorded as such (the registry's participation
table) and never as a zero entry in this ledger, which would claim perfect privacy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from securecomp.errors import ParameterError

__all__ = [
    "Cost",
    "PriceOf",
    "PrivacyBudget",
    "check_cost",
    "fits",
    "participation_prices",
    "price_function",
    "total_spent",
]

#: A pseudonym's price, or None when it has none it could pay (e.g. a vacuous guarantee).
PriceOf = Callable[[str], tuple[float, float] | None]

#: A round's price: one (epsilon, delta) for everyone, a mapping pseudonym -> (epsilon,
#: delta) or None (pseudonyms it lacks or maps to None have no price), or a function like
#: `PriceOf`.
Cost = tuple[float, float] | Mapping[str, tuple[float, float] | None] | PriceOf


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


def price_function(cost: object) -> PriceOf:
    """Normalise a `Cost` to a function from pseudonym to validated price (or None).

    A single price and every price of a mapping are validated here, so a bad entry is
    reported even for a user who would not have been asked about; a function's answers are
    validated as they come.

    Raises
    ------
    ParameterError
        ``cost`` is none of the accepted forms, or a price is not a valid (epsilon, delta).
    """
    if isinstance(cost, tuple | list):
        if len(cost) != 2:
            raise ParameterError(f"a cost is a pair (epsilon, delta), got {len(cost)} values")
        price = check_cost(*cost)
        return lambda pseudonym: price
    if isinstance(cost, Mapping):
        prices: dict[str, tuple[float, float]] = {}
        for pseudonym, value in cost.items():
            if not isinstance(pseudonym, str):
                raise ParameterError(f"cost mapping keys are pseudonyms (str), got {pseudonym!r}")
            if value is not None:
                prices[pseudonym] = _pair(value, pseudonym)
        return prices.get
    if callable(cost):
        fn = cost

        def checked(pseudonym: str) -> tuple[float, float] | None:
            value = fn(pseudonym)
            return None if value is None else _pair(value, pseudonym)

        return checked
    raise ParameterError(
        "cost must be an (epsilon, delta) pair, a mapping pseudonym -> (epsilon, delta), "
        f"or a function of the pseudonym; got {type(cost).__name__}"
    )


def participation_prices(
    epsilon: object, delta: object, cost: object | None, dp: object
) -> PriceOf:
    """The price function of a recorded round, from its ``epsilon``/``delta`` or ``cost``.

    A round without a DP guarantee (``dp=False``) takes no price: it gets the zero price
    (nothing is written to the ledger) and is marked as unbounded elsewhere.

    Raises
    ------
    ParameterError
        ``dp`` is not a bool, a price is given with ``dp=False``, both ``cost`` and a
        nonzero ``epsilon``/``delta`` are given, or a price is invalid.
    """
    if not isinstance(dp, bool):
        raise ParameterError(f"dp must be True or False, got {dp!r}")
    base = check_cost(epsilon, delta)
    if not dp and (cost is not None or base != (0.0, 0.0)):
        raise ParameterError(
            "a round without a differential-privacy guarantee has no (epsilon, delta) "
            "price: give no epsilon, delta or cost with dp=False"
        )
    if cost is not None and base != (0.0, 0.0):
        raise ParameterError("give either cost= or epsilon=/delta=, not both")
    return price_function(base if cost is None else cost)


def _pair(value: object, pseudonym: str) -> tuple[float, float]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ParameterError(f"the price of {pseudonym!r} must be an (epsilon, delta) pair")
    return check_cost(*value)


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
