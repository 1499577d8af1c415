"""What a user is told: the per-user report (GDPR Art. 13-15) and the data export (Art. 20).

The report answers the questions of GDPR Art. 15 (right of access) for this registry: which
purposes the user consented to and when, which rounds used their data, and how much of their
privacy budget is spent. It always carries two notices: a pseudonym is not anonymity, and
withdrawing consent does not remove contributions already aggregated (no unlearning).

The export is "everything held about" the user, in a "structured, commonly used and
machine-readable format" (Art. 20(1), data portability): plain JSON that round-trips
(``json.loads(export_json(u)) == export(u)``), including the audit entries recorded under the
user's current pseudonym.
"""

from __future__ import annotations

import json
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
    "ConsentEvent",
    "UserReport",
    "build_export",
    "build_report",
]

EXPORT_FORMAT = "securecomp.consent.export"
EXPORT_VERSION = 1

NOTICE_PSEUDONYM = (
    "Your records outside this registry carry a pseudonym (a keyed hash of your identifier) "
    "instead of your identifier. A pseudonym is not anonymity: everything recorded under it "
    "can be linked together, and whoever holds the key can link it back to you."
)
NOTICE_NO_UNLEARNING = (
    "Withdrawing consent stops the use of your data from the next round on. Contributions "
    "already aggregated into a model stay in it: there is no unlearning. The privacy budget "
    "spent shown here bounds what those contributions can reveal about you."
)
NOTICE_ROTATION = (
    "Audit entries made before the last key rotation carry an earlier pseudonym that can no "
    "longer be linked to you; they are not included."
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
    rounds : rounds participated in, per purpose.
    budget, spent : the (epsilon, delta) allowance and the amount spent so far.
    notices : the pseudonym and no-unlearning notices (always present).
    """

    user_id: str
    pseudonym: str
    enrolled_at: str
    active_purposes: Mapping[Purpose, str]
    history: tuple[ConsentEvent, ...]
    rounds: Mapping[Purpose, tuple[int, ...]]
    budget: PrivacyBudget
    spent: tuple[float, float]
    notices: tuple[str, ...] = field(default=(NOTICE_PSEUDONYM, NOTICE_NO_UNLEARNING))

    @property
    def remaining(self) -> tuple[float, float]:
        """Budget left, (epsilon, delta), floored at zero."""
        return (
            max(0.0, self.budget.epsilon - self.spent[0]),
            max(0.0, self.budget.delta - self.spent[1]),
        )

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
            f"  spent     {self.spent[0]:.6g}, {self.spent[1]:.6g}",
            f"  remaining {self.remaining[0]:.6g}, {self.remaining[1]:.6g}",
            "consent history:",
        ]
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
    for purpose, rnd in conn.execute(
        "SELECT purpose, round FROM participation WHERE user_ref = ? ORDER BY purpose, round",
        (ref,),
    ):
        rounds.setdefault(Purpose(purpose), []).append(int(rnd))
    spent = total_spent((e, d) for _, _, e, d, _ in _ledger(conn, ref))
    return UserReport(
        user_id=user_id,
        pseudonym=pseudonym,
        enrolled_at=enrolled_at,
        active_purposes=_active(history),
        history=history,
        rounds={p: tuple(r) for p, r in rounds.items()},
        budget=PrivacyBudget(b_eps, b_delta),
        spent=spent,
    )


def build_export(conn: sqlite3.Connection, ref: int, exported_at: str) -> dict[str, Any]:
    """Everything the registry holds about the user ``ref``, as JSON-compatible values."""
    report = build_report(conn, ref)
    selections = conn.execute(
        "SELECT purpose, round FROM selections WHERE user_ref = ? ORDER BY purpose, round",
        (ref,),
    ).fetchall()
    participation = conn.execute(
        "SELECT purpose, round, at FROM participation WHERE user_ref = ? ORDER BY purpose, round",
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
        "participation": [{"purpose": p, "round": r, "at": at} for p, r, at in participation],
        "budget_ledger": [
            {"purpose": p, "round": r, "epsilon": e, "delta": d, "at": at}
            for p, r, e, d, at in _ledger(conn, ref)
        ],
        "budget_spent": {"epsilon": report.spent[0], "delta": report.spent[1]},
        "audit": [
            {"seq": s, "at": at, "event": ev, "purpose": p, "round": r, "detail": json.loads(d)}
            for s, at, ev, p, r, d in audit
        ],
        "notices": [*report.notices, NOTICE_ROTATION],
    }
