"""Queries behind round selection, participation and budget charging (consent registry).

These functions run inside the registry's transactions and take row ids (``ref``) that never
leave the registry; the registry's public methods speak pseudonyms. Selection follows the
rule of GDPR Art. 6(1)(a): a user's data is used for a purpose only with active consent for
that purpose; the budget check follows `securecomp.federated.budget` (checked before any
write, so a refusal leaves the ledger unchanged). Prices are per user (`PriceOf`): users with
different histories pay different increments of their composed guarantee in the same round
(`securecomp.federated.privacy`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from securecomp.errors import BudgetExceededError, ConsentError, ParameterError
from securecomp.federated.budget import PriceOf, PrivacyBudget, fits
from securecomp.federated.purpose import Purpose

__all__ = [
    "active_purposes",
    "affordable",
    "budgets",
    "charge",
    "check_guarantee",
    "check_round",
    "check_selected",
    "consenting",
    "last_round",
    "ledgers",
    "price_each",
    "resolve",
    "round_detail",
]

# The latest consent event of each (user, purpose) decides; a purpose is active when that
# event is a grant. Interpolated into queries below: a constant, never input (hence S608 noqa).
_LATEST = (
    "e.seq = (SELECT MAX(seq) FROM consent_events "
    "WHERE user_ref = e.user_ref AND purpose = e.purpose)"
)


def check_round(round: object) -> int:
    """A round number: an integer >= 0 (booleans refused)."""
    if isinstance(round, bool) or not isinstance(round, int) or round < 0:
        raise ParameterError(f"a round number is an integer >= 0, got {round!r}")
    return round


def resolve(conn: sqlite3.Connection, pseudonyms: Sequence[str]) -> dict[str, int]:
    """Row ids of ``pseudonyms`` (distinct, all known), in the given order.

    Raises
    ------
    ConsentError
        A pseudonym is unknown: no consent is on record for it.
    """
    if isinstance(pseudonyms, str):
        raise ParameterError("pass a sequence of pseudonyms, not one string")
    if len(set(pseudonyms)) != len(pseudonyms):
        raise ParameterError("a pseudonym is listed twice")
    refs: dict[str, int] = {}
    for p in pseudonyms:
        row = conn.execute("SELECT id FROM users WHERE pseudonym = ?", (p,)).fetchone()
        if row is None:
            raise ConsentError(
                f"unknown pseudonym {p!r}: no consent on record (withdrawn and purged, "
                "or made under a rotated key); leave this client out"
            )
        refs[p] = int(row[0])
    return refs


def active_purposes(conn: sqlite3.Connection, ref: int) -> set[Purpose]:
    """Purposes the user ``ref`` currently consents to."""
    rows = conn.execute(
        f"SELECT e.purpose FROM consent_events e WHERE e.user_ref = ? "  # noqa: S608
        f"AND e.action = 'grant' AND {_LATEST}",
        (ref,),
    )
    return {Purpose(p) for (p,) in rows}


def consenting(conn: sqlite3.Connection, purpose: Purpose) -> list[tuple[int, str]]:
    """(ref, pseudonym) of every user with active consent for ``purpose``, by pseudonym."""
    return conn.execute(
        f"SELECT u.id, u.pseudonym FROM users u JOIN consent_events e "  # noqa: S608
        f"ON e.user_ref = u.id WHERE e.purpose = ? AND e.action = 'grant' AND {_LATEST} "
        "ORDER BY u.pseudonym",
        (purpose.value,),
    ).fetchall()


def last_round(conn: sqlite3.Connection, purpose: Purpose) -> int | None:
    """The highest round number selected so far for ``purpose``."""
    row = conn.execute(
        "SELECT MAX(round) FROM rounds WHERE purpose = ?", (purpose.value,)
    ).fetchone()
    return None if row[0] is None else int(row[0])


def ledgers(conn: sqlite3.Connection, refs: Iterable[int]) -> dict[int, list[tuple[float, float]]]:
    """Each user's ledger entries (epsilon, delta), oldest first."""
    out: dict[int, list[tuple[float, float]]] = {r: [] for r in refs}
    for ref, eps, dlt in conn.execute(
        "SELECT user_ref, epsilon, delta FROM budget_ledger ORDER BY seq"
    ):
        if ref in out:
            out[ref].append((eps, dlt))
    return out


def budgets(conn: sqlite3.Connection, refs: Iterable[int]) -> dict[int, PrivacyBudget]:
    """Each user's budget."""
    wanted = set(refs)
    return {
        ref: PrivacyBudget(e, d)
        for ref, e, d in conn.execute("SELECT id, budget_epsilon, budget_delta FROM users")
        if ref in wanted
    }


def affordable(
    conn: sqlite3.Connection, rows: list[tuple[int, str]], price_of: PriceOf
) -> list[tuple[int, str]]:
    """The subset of ``rows`` whose budget can pay their own price on top of their ledger.

    A user ``price_of`` has no price for (None) cannot be charged, so is left out.
    """
    refs = [r for r, _ in rows]
    entries, limits = ledgers(conn, refs), budgets(conn, refs)
    out: list[tuple[int, str]] = []
    for r, p in rows:
        price = price_of(p)
        if price is not None and fits(entries[r], price, limits[r]):
            out.append((r, p))
    return out


def check_selected(
    conn: sqlite3.Connection, refs: dict[str, int], purpose: Purpose, round: int
) -> None:
    """Refuse users not selected for the round, or whose participation is already recorded."""
    for p, ref in refs.items():
        key = (purpose.value, round, ref)
        if (
            conn.execute(
                "SELECT 1 FROM selections WHERE purpose = ? AND round = ? AND user_ref = ?", key
            ).fetchone()
            is None
        ):
            raise ConsentError(
                f"{p!r} was not selected for {purpose.value} round {round}; "
                "its update must not be used"
            )
        if (
            conn.execute(
                "SELECT 1 FROM participation WHERE purpose = ? AND round = ? AND user_ref = ?", key
            ).fetchone()
            is not None
        ):
            raise ParameterError(
                f"participation of {p!r} in {purpose.value} round {round} is already recorded"
            )


def check_guarantee(
    conn: sqlite3.Connection, refs: dict[str, int], purpose: Purpose, round: int, dp: bool
) -> None:
    """Refuse mixing rounds with and without a DP guarantee in one round's participation.

    One aggregate either carries a differential-privacy guarantee or not; recording part of
    a round each way means one of the two calls is wrong, and the user report would then
    understate (or overstate) what the round reveals.
    """
    row = conn.execute(
        "SELECT dp_guarantee FROM participation WHERE purpose = ? AND round = ? LIMIT 1",
        (purpose.value, round),
    ).fetchone()
    if row is not None and bool(row[0]) != dp and refs:
        had = "with" if row[0] else "without"
        raise ParameterError(
            f"{purpose.value} round {round} was recorded {had} a differential-privacy "
            "guarantee; record all its participants the same way"
        )


def charge(
    conn: sqlite3.Connection,
    refs: dict[str, int],
    purpose: Purpose,
    round: int | None,
    prices: Mapping[str, tuple[float, float]],
    at: str,
) -> None:
    """Append each user's price (``prices[pseudonym]``) to their ledger, or raise first.

    Raises
    ------
    BudgetExceededError
        Some user cannot afford their price; no entry is written for anyone.
    """
    entries, limits = ledgers(conn, refs.values()), budgets(conn, refs.values())
    over = [p for p, r in refs.items() if not fits(entries[r], prices[p], limits[r])]
    if over:
        shown = ", ".join(
            f"{p!r} (epsilon={prices[p][0]:g}, delta={prices[p][1]:g})" for p in over[:3]
        ) + (" ..." if len(over) > 3 else "")
        raise BudgetExceededError(
            f"spending would exceed the privacy budget of {len(over)} user(s): {shown}; "
            "leave them out of this round"
        )
    conn.executemany(
        "INSERT INTO budget_ledger (user_ref, purpose, round, epsilon, delta, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        # A zero price adds nothing to the sum: no entry, as before.
        [
            (r, purpose.value, round, prices[p][0], prices[p][1], at)
            for p, r in refs.items()
            if prices[p] != (0.0, 0.0)
        ],
    )


def price_each(price_of: PriceOf, refs: Mapping[str, int]) -> dict[str, tuple[float, float]]:
    """Every participant's price; each must have one.

    Raises
    ------
    ParameterError
        A participant has no price (``price_of`` returned None).
    """
    prices: dict[str, tuple[float, float]] = {}
    for p in refs:
        price = price_of(p)
        if price is None:
            raise ParameterError(
                f"no price given for {p!r}: price every participant, or leave it out"
            )
        prices[p] = price
    return prices


def round_detail(prices: Mapping[str, tuple[float, float]], dp: bool) -> dict[str, Any]:
    """The audit detail of a recorded round: how many, and what it cost (no pseudonyms)."""
    detail: dict[str, Any] = {"participants": len(prices), "dp": dp}
    if not dp:
        return detail  # no price: the round has no DP guarantee
    distinct = set(prices.values())
    if len(distinct) <= 1:
        eps, dlt = distinct.pop() if distinct else (0.0, 0.0)
        detail.update(epsilon=eps, delta=dlt)
    else:
        detail.update(
            epsilon_max=max(e for e, _ in distinct),
            delta_max=max(d for _, d in distinct),
            distinct_prices=len(distinct),
        )
    return detail
