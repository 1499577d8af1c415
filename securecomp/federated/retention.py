"""Retention: purge the records of users who withdrew or whose retention period ended.

GDPR Art. 5(1)(e) (storage limitation) keeps personal data "no longer than is necessary",
and Art. 17(1)(b) gives a right to erasure once consent is withdrawn. A `RetentionPolicy`
states both limits; `ConsentRegistry.purge` applies it and deletes every record the registry
holds about each user it selects (identifier, pseudonym, consent history, selections,
participation, budget ledger). Each purge is itself audited (Art. 5(2), accountability)
under the user's pseudonym only, with the reason and the number of records removed.

What a purge cannot undo: contributions already aggregated into a model stay in it (there
is no unlearning), and the audit log keeps the pseudonym, which nobody can link back to the
user once the registry row holding the raw identifier is gone and the key has been rotated.
A user who enrols again after a purge starts with a fresh record and a fresh budget.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from securecomp.errors import ParameterError
from securecomp.federated.store import append_audit, iso_utc

__all__ = [
    "PurgeReason",
    "PurgeReport",
    "PurgedUser",
    "RetentionPolicy",
    "delete_user",
    "purge_users",
]


class PurgeReason(StrEnum):
    """Why a user's records were deleted."""

    WITHDRAWN = "withdrawn"
    RETENTION_EXPIRED = "retention_expired"
    ERASURE_REQUEST = "erasure_request"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long the registry keeps a user's records.

    Attributes
    ----------
    after_withdrawal : a user with no active consent left is purged once this long has
        passed since the last withdrawal (zero: at the next purge).
    retention : if set, a user whose latest opt-in is older than this is purged even with
        consent still active (renewing consent with ``opt_in`` restarts the period).
    """

    after_withdrawal: timedelta = timedelta(0)
    retention: timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.after_withdrawal, timedelta) or self.after_withdrawal < timedelta(0):
            raise ParameterError("after_withdrawal must be a non-negative timedelta")
        if self.retention is not None and (
            not isinstance(self.retention, timedelta) or self.retention <= timedelta(0)
        ):
            raise ParameterError("retention must be a positive timedelta, or None for no limit")


@dataclass(frozen=True)
class PurgedUser:
    """One purged user: the pseudonym it had, why, and how many records were deleted."""

    pseudonym: str
    reason: PurgeReason
    records: int


@dataclass(frozen=True)
class PurgeReport:
    """What `ConsentRegistry.purge` deleted (pseudonyms only: raw identifiers are gone)."""

    users: tuple[PurgedUser, ...]

    @property
    def records(self) -> int:
        """Total records deleted, user rows included."""
        return sum(u.records for u in self.users)

    @property
    def pseudonyms(self) -> tuple[str, ...]:
        """The pseudonyms purged, e.g. to delete the matching data held on the clients."""
        return tuple(u.pseudonym for u in self.users)


_CHILD_TABLES = ("consent_events", "selections", "participation", "budget_ledger")


def _candidates(
    conn: sqlite3.Connection, policy: RetentionPolicy, now: datetime
) -> list[tuple[int, str, PurgeReason]]:
    withdrawn_cutoff = iso_utc(now - policy.after_withdrawal)
    expiry_cutoff = None if policy.retention is None else iso_utc(now - policy.retention)
    rows = conn.execute(
        """
        SELECT u.id, u.pseudonym,
               (SELECT COUNT(*) FROM consent_events e
                 WHERE e.user_ref = u.id AND e.action = 'grant'
                   AND e.seq = (SELECT MAX(seq) FROM consent_events
                                 WHERE user_ref = u.id AND purpose = e.purpose)),
               (SELECT MAX(at) FROM consent_events WHERE user_ref = u.id AND action = 'withdraw'),
               (SELECT MAX(at) FROM consent_events WHERE user_ref = u.id AND action = 'grant')
          FROM users u ORDER BY u.id
        """
    ).fetchall()
    out: list[tuple[int, str, PurgeReason]] = []
    for ref, pseudonym, active, last_withdraw, last_grant in rows:
        # Timestamps are fixed-width UTC ISO strings: text order is time order.
        if active == 0 and (last_withdraw or "") <= withdrawn_cutoff:
            out.append((ref, pseudonym, PurgeReason.WITHDRAWN))
        elif expiry_cutoff is not None and (last_grant or "") <= expiry_cutoff:
            out.append((ref, pseudonym, PurgeReason.RETENTION_EXPIRED))
    return out


def delete_user(
    conn: sqlite3.Connection, ref: int, pseudonym: str, reason: PurgeReason, at: str
) -> PurgedUser:
    """Delete one user's rows and audit it (inside the caller's transaction)."""
    records = 1
    for table in _CHILD_TABLES:
        # Table names come from the constant tuple above, never from input.
        query = f"SELECT COUNT(*) FROM {table} WHERE user_ref = ?"  # noqa: S608
        (count,) = conn.execute(query, (ref,)).fetchone()
        records += int(count)
    conn.execute("DELETE FROM users WHERE id = ?", (ref,))  # children go by ON DELETE CASCADE
    append_audit(
        conn,
        at,
        "purged",
        pseudonym=pseudonym,
        detail={"reason": reason.value, "records": records},
    )
    return PurgedUser(pseudonym, reason, records)


def purge_users(conn: sqlite3.Connection, policy: RetentionPolicy, now: datetime) -> PurgeReport:
    """Apply ``policy`` at time ``now`` (inside the caller's transaction)."""
    at = iso_utc(now)
    purged = [
        delete_user(conn, ref, pseudonym, reason, at)
        for ref, pseudonym, reason in _candidates(conn, policy, now)
    ]
    return PurgeReport(tuple(purged))
