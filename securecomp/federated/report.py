"""What a user is told: the per-user report (GDPR Art. 13-15) and the data export (Art. 20).

The report answers the questions of GDPR Art. 15 (right of access) for this registry: which
purposes the user consented to and when, which rounds used their data, and how much of their
privacy budget is spent. It always carries two notices: a pseudonym is not anonymity, and
withdrawing consent does not remove contributions already aggregated (no unlearning).

A budget bounds only what mechanisms with a differential-privacy guarantee reveal. When the
user took part in rounds without one, the report says so in a third notice, shows the epsilon
spent as "unbounded" and the remaining budget as "not meaningful": a figure of 0 spent would
claim a guarantee that those rounds do not have (the sum of the DP rounds' costs is still
shown, labelled as such).

The export is "everything held about" the user, in a "structured, commonly used and
machine-readable format" (Art. 20(1), data portability): plain JSON that round-trips
(``json.loads(export_json(u)) == export(u)``), including the audit entries recorded under the
user's current pseudonym. Where a number would be false (spent epsilon of a user with rounds
without DP), the export holds the string ``"unbounded"`` or ``"not meaningful"`` instead: JSON
has no infinity, and a reader that ignored a separate flag would read a false 0.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from securecomp.federated.budget import PrivacyBudget, total_spent
from securecomp.federated.purpose import Purpose

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "NOTICE_NO_UNLEARNING",
    "NOTICE_PSEUDONYM",
    "NOTICE_ROTATION",
    "NOT_MEANINGFUL",
    "UNBOUNDED",
    "ConsentEvent",
    "UserReport",
    "build_export",
    "build_report",
    "notice_without_dp",
]

EXPORT_FORMAT = "securecomp.consent.export"
#: Version 2: participation entries carry ``dp_guarantee``; ``rounds_without_dp`` and
#: ``budget_remaining`` added; spent/remaining are strings when no budget bounds them.
EXPORT_VERSION = 2

#: What the report and export say instead of a spent epsilon when rounds had no DP.
UNBOUNDED = "unbounded"
#: What they say instead of a remaining budget in that case.
NOT_MEANINGFUL = "not meaningful"

NOTICE_PSEUDONYM = (
    "Your records outside this registry carry a pseudonym (a keyed hash of your identifier) "
    "instead of your identifier. A pseudonym is not anonymity: everything recorded under it "
    "can be linked together, and whoever holds the key can link it back to you."
)
NOTICE_NO_UNLEARNING = (
    "Withdrawing consent stops the use of your data from the next round on. Contributions "
    "already aggregated into a model stay in it: there is no unlearning. For rounds with a "
    "differential-privacy guarantee, the privacy budget spent shown here bounds what those "
    "contributions can reveal about you."
)
NOTICE_ROTATION = (
    "Audit entries made before the last key rotation carry an earlier pseudonym that can no "
    "longer be linked to you; they are not included."
)


def notice_without_dp(rounds: int) -> str:
    """The notice of a user who took part in ``rounds`` (> 0) rounds without DP."""
    which = "1 round" if rounds == 1 else f"{rounds} rounds"
    those = "that round reveals" if rounds == 1 else "those rounds reveal"
    return (
        f"You participated in {which} without a differential-privacy guarantee: the privacy "
        f"budget does not bound what {those} about you, so the epsilon spent is unbounded "
        "and the remaining budget is not meaningful for you."
    )


@dataclass(frozen=True)
class ConsentEvent:
    """One opt-in (``grant``) or withdrawal (``withdraw``) of one purpose, at a UTC time."""

    purpose: Purpose
    action: str
    at: str


@dataclass(frozen=True)
class UserReport:
    """A user's view of what the registry holds and what their participation cost.

    Attributes
    ----------
    user_id, pseudonym, enrolled_at : who, under which pseudonym, since when (UTC).
    active_purposes : purposes currently consented to, with the time of the latest opt-in.
    history : every opt-in and withdrawal, oldest first.
    rounds : rounds participated in, per purpose (with or without a DP guarantee).
    budget, spent : the (epsilon, delta) allowance and the sum of the costs of mechanisms
        with a DP guarantee; when `bounded` is false this sum is not the user's privacy
        loss (see `epsilon_spent`).
    rounds_without_dp : the rounds of ``rounds`` that had no DP guarantee, per purpose.
    notices : the pseudonym and no-unlearning notices (always present), and the notice of
        rounds without DP (when there are any).
    """

    user_id: str
    pseudonym: str
    enrolled_at: str
    active_purposes: Mapping[Purpose, str]
    history: tuple[ConsentEvent, ...]
    rounds: Mapping[Purpose, tuple[int, ...]]
    budget: PrivacyBudget
    spent: tuple[float, float]
    rounds_without_dp: Mapping[Purpose, tuple[int, ...]] = field(default_factory=dict)
    notices: tuple[str, ...] = field(default=(NOTICE_PSEUDONYM, NOTICE_NO_UNLEARNING))

    @property
    def count_without_dp(self) -> int:
        """Number of rounds the user took part in without a DP guarantee."""
        return sum(len(r) for r in self.rounds_without_dp.values())

    @property
    def bounded(self) -> bool:
        """Whether the budget bounds every round the user took part in."""
        return self.count_without_dp == 0

    @property
    def epsilon_spent(self) -> float:
        """The user's epsilon: ``spent[0]``, or infinity once any round had no DP."""
        return self.spent[0] if self.bounded else math.inf

    @property
    def remaining(self) -> tuple[float, float] | None:
        """Budget left, (epsilon, delta), floored at zero; None when not `bounded`.

        None because no figure is meaningful then: the budget does not bound what the rounds
        without a DP guarantee revealed.
        """
        if not self.bounded:
            return None
        return (
            max(0.0, self.budget.epsilon - self.spent[0]),
            max(0.0, self.budget.delta - self.spent[1]),
        )

    def budget_summary(self) -> dict[str, Any]:
        """Spent and remaining budget as JSON-compatible values (strings where unbounded)."""
        dp_spent = {"epsilon": self.spent[0], "delta": self.spent[1]}
        remaining = self.remaining
        summary: dict[str, Any] = {
            "budget_spent": dp_spent,
            "budget_remaining": (
                {"epsilon": NOT_MEANINGFUL, "delta": NOT_MEANINGFUL}
                if remaining is None
                else {"epsilon": remaining[0], "delta": remaining[1]}
            ),
            "rounds_without_dp": {p.value: list(r) for p, r in self.rounds_without_dp.items()},
        }
        if not self.bounded:
            summary["budget_spent"] = {
                "epsilon": UNBOUNDED,
                "delta": UNBOUNDED,
                "by_rounds_with_dp": dp_spent,
            }
        return summary

    def render(self) -> str:
        """The report as plain text for a terminal."""
        lines = [
            f"user:        {self.user_id}",
            f"pseudonym:   {self.pseudonym}",
            f"enrolled:    {self.enrolled_at}",
            "consented to:",
        ]
        if self.active_purposes:
            lines += [f"  {p.value:<16} since {at}" for p, at in self.active_purposes.items()]
        else:
            lines.append("  nothing (all consent withdrawn)")
        lines.append("rounds participated in:")
        for purpose in Purpose:
            done = self.rounds.get(purpose, ())
            listed = ", ".join(str(r) for r in done) if done else "none"
            lines.append(f"  {purpose.value:<16} {len(done):>4}: {listed}")
        lines += [
            "privacy budget (epsilon, delta):",
            f"  allowed   {self.budget.epsilon:.6g}, {self.budget.delta:.6g}",
        ]
        remaining = self.remaining
        if remaining is None:
            k = self.count_without_dp
            lines += [
                f"  spent     {UNBOUNDED}: {k} round{'s' if k != 1 else ''} without a "
                "differential-privacy guarantee",
                f"            ({self.spent[0]:.6g}, {self.spent[1]:.6g} by rounds with one)",
                f"  remaining {NOT_MEANINGFUL} (the budget does not bound those rounds)",
            ]
        else:
            lines += [
                f"  spent     {self.spent[0]:.6g}, {self.spent[1]:.6g}",
                f"  remaining {remaining[0]:.6g}, {remaining[1]:.6g}",
            ]
        lines.append("consent history:")
        lines += [f"  {e.at}  {e.action:<8} {e.purpose.value}" for e in self.history]
        lines += ["notes:"] + [f"  - {n}" for n in self.notices]
        return "\n".join(lines)


def _history(conn: sqlite3.Connection, ref: int) -> tuple[ConsentEvent, ...]:
    rows = conn.execute(
        "SELECT purpose, action, at FROM consent_events WHERE user_ref = ? ORDER BY seq", (ref,)
    )
    return tuple(ConsentEvent(Purpose(p), a, at) for p, a, at in rows)


def _active(history: tuple[ConsentEvent, ...]) -> dict[Purpose, str]:
    state: dict[Purpose, str] = {}
    for event in history:
        if event.action == "grant":
            state[event.purpose] = event.at
        else:
            state.pop(event.purpose, None)
    return {p: state[p] for p in Purpose if p in state}


def _ledger(conn: sqlite3.Connection, ref: int) -> list[tuple[str, int | None, float, float, str]]:
    return conn.execute(
        "SELECT purpose, round, epsilon, delta, at FROM budget_ledger WHERE user_ref = ? "
        "ORDER BY seq",
        (ref,),
    ).fetchall()


def build_report(conn: sqlite3.Connection, ref: int) -> UserReport:
    """Assemble the report of the user whose row id is ``ref``."""
    user_id, pseudonym, enrolled_at, b_eps, b_delta = conn.execute(
        "SELECT user_id, pseudonym, enrolled_at, budget_epsilon, budget_delta "
        "FROM users WHERE id = ?",
        (ref,),
    ).fetchone()
    history = _history(conn, ref)
    rounds: dict[Purpose, list[int]] = {}
    without: dict[Purpose, list[int]] = {}
    for purpose, rnd, guarantee in conn.execute(
        "SELECT purpose, round, dp_guarantee FROM participation WHERE user_ref = ? "
        "ORDER BY purpose, round",
        (ref,),
    ):
        rounds.setdefault(Purpose(purpose), []).append(int(rnd))
        if not guarantee:
            without.setdefault(Purpose(purpose), []).append(int(rnd))
    spent = total_spent((e, d) for _, _, e, d, _ in _ledger(conn, ref))
    count = sum(len(r) for r in without.values())
    notices: tuple[str, ...] = (NOTICE_PSEUDONYM, NOTICE_NO_UNLEARNING)
    if count:
        notices += (notice_without_dp(count),)
    return UserReport(
        user_id=user_id,
        pseudonym=pseudonym,
        enrolled_at=enrolled_at,
        active_purposes=_active(history),
        history=history,
        rounds={p: tuple(r) for p, r in rounds.items()},
        budget=PrivacyBudget(b_eps, b_delta),
        spent=spent,
        rounds_without_dp={p: tuple(without[p]) for p in Purpose if p in without},
        notices=notices,
    )


def build_export(conn: sqlite3.Connection, ref: int, exported_at: str) -> dict[str, Any]:
    """Everything the registry holds about the user ``ref``, as JSON-compatible values."""
    report = build_report(conn, ref)
    selections = conn.execute(
        "SELECT purpose, round FROM selections WHERE user_ref = ? ORDER BY purpose, round",
        (ref,),
    ).fetchall()
    participation = conn.execute(
        "SELECT purpose, round, at, dp_guarantee FROM participation WHERE user_ref = ? "
        "ORDER BY purpose, round",
        (ref,),
    ).fetchall()
    audit = conn.execute(
        "SELECT seq, at, event, purpose, round, detail FROM audit WHERE pseudonym = ? ORDER BY seq",
        (report.pseudonym,),
    ).fetchall()
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": exported_at,
        "user": {
            "user_id": report.user_id,
            "pseudonym": report.pseudonym,
            "enrolled_at": report.enrolled_at,
            "budget": {"epsilon": report.budget.epsilon, "delta": report.budget.delta},
        },
        "active_purposes": {p.value: at for p, at in report.active_purposes.items()},
        "consent_events": [
            {"purpose": e.purpose.value, "action": e.action, "at": e.at} for e in report.history
        ],
        "selections": [{"purpose": p, "round": r} for p, r in selections],
        "participation": [
            {"purpose": p, "round": r, "at": at, "dp_guarantee": bool(g)}
            for p, r, at, g in participation
        ],
        "budget_ledger": [
            {"purpose": p, "round": r, "epsilon": e, "delta": d, "at": at}
            for p, r, e, d, at in _ledger(conn, ref)
        ],
        **report.budget_summary(),
        "audit": [
            {"seq": s, "at": at, "event": ev, "purpose": p, "round": r, "detail": json.loads(d)}
            for s, at, ev, p, r, d in audit
        ],
        "notices": [*report.notices, NOTICE_ROTATION],
    }
