"""A consent registry for federated learning on an embedded SQLite database.

The registry records, per user and per purpose (`Purpose`), each opt-in and withdrawal with
its UTC time, and decides which users a round may select. It follows the GDPR's rules on
consent and on the data it covers:

* consent is per purpose (Art. 6(1)(a)) and as easy to withdraw as to give (Art. 7(3)):
  ``withdraw`` or ``revoke`` (every purpose in one call). Withdrawal "shall not affect the
  lawfulness of processing based on consent before its withdrawal" (Art. 7(3)): it takes
  effect from the next round; a round already selected may still aggregate the user's
  update, and aggregated contributions stay in the model (no unlearning);
* users are named by pseudonym (`PseudonymKey`, Art. 4(5)) everywhere outside the registry:
  selection, participation and budget spending take and return pseudonyms; only the
  user-facing calls (``opt_in``, ``withdraw``, ``revoke``, ``report``, ``export``) take the
  raw identifier, which is stored in one table of the registry file (``users``, mapping it
  to the pseudonym) and nowhere else;
* a retention policy purges the records of users who withdrew or whose retention period
  ended (Art. 5(1)(e), Art. 17), and every change is written to an append-only audit log
  (Art. 5(2), Art. 30);
* a user gets a report (Art. 15) and an export of everything held about them (Art. 20).

Privacy budgets are per user and only differential privacy spends them
(`securecomp.federated.budget`). A round without a DP guarantee is recorded as such
(``record_participation(..., dp=False)``): it is not a zero-cost entry, and a user who took
part in one is told that their budget does not bound what it revealed (the report's spent
epsilon is "unbounded" and its remaining budget "not meaningful").

Typical round, seen from the trainer::

    reg = ConsentRegistry.open("consent.db", PseudonymKey.load("consent.key"))
    prices = {p: accountant.cost(p, event) for p in candidates}   # per user
    cohort = reg.select(Purpose.TRAINING, round=7, k=50, cost=prices)
    survivors = run_secure_aggregation(cohort)          # drop-outs are simply absent
    reg.record_participation(Purpose.TRAINING, 7, survivors, cost=prices)

Threat model: the registry is run by the data controller (the server side) and trusted with
raw identifiers. The registry file is not pseudonymised: its ``users`` table holds every raw
identifier next to its pseudonym, and the audit log lives in the same file, so the file must
be protected as personal data. It is created with mode 0600 and a file that group or others
may read is refused on open (`securecomp.federated.store`). What leaves the registry is
pseudonymised: the trainer receives pseudonyms only, and audit entries carry pseudonyms,
never raw identifiers, so entries handed out (e.g. to an auditor) name nobody directly. The
pseudonym key is stored apart from the file (`PseudonymKey.save`). The audit log's
append-only triggers stop accidental or application-level edits, not an attacker with write
access to the file; its hash chain (`verify_audit`) makes such edits evident when the latest
hash is also kept elsewhere.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from securecomp.errors import (
    ConsentError,
    KeyMismatchError,
    ParameterError,
)
from securecomp.federated import rounds, store
from securecomp.federated.budget import (
    Cost,
    PrivacyBudget,
    check_cost,
    participation_prices,
    price_function,
    total_spent,
)
from securecomp.federated.pseudonym import PseudonymKey
from securecomp.federated.purpose import Purpose
from securecomp.federated.report import UserReport, build_export, build_report
from securecomp.federated.retention import (
    PurgeReason,
    PurgeReport,
    RetentionPolicy,
    delete_user,
    purge_users,
)
from securecomp.federated.rotation import rotate_key_file

__all__ = ["DEFAULT_BUDGET", "ConsentRegistry"]

#: Budget given to users enrolled without an explicit one: (epsilon, delta) = (2, 1e-6), a
#: moderate user-level guarantee; set your own with ``default_budget=`` or ``set_budget``.
DEFAULT_BUDGET = PrivacyBudget(epsilon=2.0, delta=1e-6)

_MAX_ID_CHARS = 256


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id or len(user_id) > _MAX_ID_CHARS:
        raise ParameterError(
            f"a user identifier is a non-empty string of at most {_MAX_ID_CHARS} characters"
        )
    return user_id


def _purposes(purposes: Iterable[Purpose | str]) -> list[Purpose]:
    parsed = list(dict.fromkeys(Purpose.parse(p) for p in purposes))
    if not parsed:
        raise ParameterError("name at least one purpose (e.g. Purpose.TRAINING)")
    return parsed


class ConsentRegistry:
    """Per-user, per-purpose consent, round selection, participation and budget ledger.

    Invariants: a user is selected for a round only with active consent for its purpose at
    selection time (and, given a cost, enough budget for their own price); participation is
    recorded only for users selected for that round, all of a round with or all without a
    differential-privacy guarantee; a user's ledger never sums past their budget; the audit
    log only grows and holds no raw identifier. Create instances with
    `ConsentRegistry.open`.
    """

    def __init__(
        self, conn: sqlite3.Connection, key: PseudonymKey | None, clock: store.Clock, name: str
    ) -> None:
        self._conn = conn
        self._key = key
        self._clock = clock
        self._name = name

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        key: PseudonymKey | None = None,
        *,
        create: bool = False,
        default_budget: PrivacyBudget = DEFAULT_BUDGET,
        clock: store.Clock | None = None,
    ) -> ConsentRegistry:
        """Open the registry at ``path`` (``":memory:"`` for a throwaway one).

        Parameters
        ----------
        path : the SQLite file. It holds raw identifiers, so it is created with mode 0600
            and must stay private to its owner; the key must be stored elsewhere.
        key : the pseudonym key; required to create a registry, enrol users and rotate the
            key. Reports, exports, withdrawals and selection work without it.
        create : initialise the file if it is missing or empty.
        default_budget : budget of newly enrolled users, fixed when the file is created.
        clock : returns the current time as an aware datetime (tests inject a fake one).

        Raises
        ------
        ParameterError
            The file is missing (and ``create`` is false), a new registry has no key, or
            (on POSIX) the file is accessible by group or others (fix: ``chmod 600``).
        MalformedMessageError
            The file is corrupt, not a registry, or of another schema version.
        KeyMismatchError
            ``key`` is not the key this registry's pseudonyms were made with.
        """
        clock = clock or _utc_now
        create = create or str(path) == ":memory:"  # a memory database is always new
        if create and key is None:
            raise ParameterError(
                "creating a registry needs its pseudonym key: pass PseudonymKey.generate() "
                "and save it apart from the database"
            )
        meta = {
            "created_at": store.timestamp(clock),
            "key_id": key.key_id if key is not None else "",
            "default_epsilon": repr(default_budget.epsilon),
            "default_delta": repr(default_budget.delta),
        }
        conn = store.connect(path, create=create, meta=meta)
        stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if key is not None and not secrets.compare_digest(stored.get("key_id", ""), key.key_id):
            conn.close()
            raise KeyMismatchError(
                f"the key (id {key.key_id}) is not this registry's (id {stored.get('key_id')}); "
                "use the key file created with it (after an interrupted rotation the new key "
                "is in the '<key file>.new' file)"
            )
        return cls(conn, key, clock, str(path))

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> ConsentRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ConsentRegistry({self._name!r}, key_id={self.key_id})"

    @property
    def key_id(self) -> str:
        """Fingerprint of the pseudonym key the registry's pseudonyms are made with."""
        return str(self._meta("key_id"))

    @property
    def default_budget(self) -> PrivacyBudget:
        """Budget given to newly enrolled users."""
        return PrivacyBudget(
            float(self._meta("default_epsilon")), float(self._meta("default_delta"))
        )

    def _meta(self, name: str) -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        return "" if row is None else str(row[0])

    def _now(self) -> str:
        return store.timestamp(self._clock)

    def _require_key(self, what: str) -> PseudonymKey:
        if self._key is None:
            raise ParameterError(f"{what} needs the pseudonym key: open the registry with it")
        return self._key

    # --- the user's side (raw identifiers) ---------------------------------------------------

    def _ref(self, user_id: str) -> tuple[int, str]:
        row = self._conn.execute(
            "SELECT id, pseudonym FROM users WHERE user_id = ?", (_check_user_id(user_id),)
        ).fetchone()
        if row is None:
            raise ParameterError(
                "no records are held for this user (never enrolled, or purged); check the id"
            )
        return int(row[0]), str(row[1])

    def opt_in(self, user_id: str, *purposes: Purpose | str) -> str:
        """Record the user's consent to ``purposes``, enrolling them if new; return the pseudonym.

        Opting in again to an active purpose renews it (and restarts its retention period).
        """
        user_id = _check_user_id(user_id)
        wanted = _purposes(purposes)
        at = self._now()
        with store.transaction(self._conn) as conn:
            row = conn.execute(
                "SELECT id, pseudonym FROM users WHERE user_id = ?", (user_id,)
            ).fetchone()
            if row is None:
                pseudonym = self._require_key("enrolling a user").pseudonym(user_id)
                budget = self.default_budget
                ref = conn.execute(
                    "INSERT INTO users (user_id, pseudonym, enrolled_at, budget_epsilon, "
                    "budget_delta) VALUES (?, ?, ?, ?, ?)",
                    (user_id, pseudonym, at, budget.epsilon, budget.delta),
                ).lastrowid
                store.append_audit(conn, at, "enrolled", pseudonym=pseudonym)
            else:
                ref, pseudonym = row
            for purpose in wanted:
                conn.execute(
                    "INSERT INTO consent_events (user_ref, purpose, action, at) "
                    "VALUES (?, ?, 'grant', ?)",
                    (ref, purpose.value, at),
                )
                store.append_audit(
                    conn, at, "consent_granted", pseudonym=pseudonym, purpose=purpose.value
                )
        return str(pseudonym)

    def withdraw(self, user_id: str, *purposes: Purpose | str) -> list[Purpose]:
        """Withdraw consent to ``purposes``; return those that were active (others are no-ops).

        Takes effect from the next round: the user is no longer eligible for selection.
        """
        wanted = _purposes(purposes)
        at = self._now()
        with store.transaction(self._conn):
            ref, pseudonym = self._ref(user_id)
            return self._withdraw(ref, pseudonym, wanted, at)

    def _withdraw(self, ref: int, pseudonym: str, wanted: list[Purpose], at: str) -> list[Purpose]:
        active = rounds.active_purposes(self._conn, ref)
        done = [p for p in wanted if p in active]
        for purpose in done:
            self._conn.execute(
                "INSERT INTO consent_events (user_ref, purpose, action, at) "
                "VALUES (?, ?, 'withdraw', ?)",
                (ref, purpose.value, at),
            )
            store.append_audit(
                self._conn, at, "consent_withdrawn", pseudonym=pseudonym, purpose=purpose.value
            )
        return done

    def revoke(self, user_id: str, *, erase: bool = False) -> list[Purpose]:
        """Withdraw every purpose in one call; with ``erase``, also delete the user's records now.

        Returns the purposes that were active. Erasure (GDPR Art. 17) is audited under the
        pseudonym; aggregated contributions stay in the model (no unlearning).
        """
        at = self._now()
        with store.transaction(self._conn) as conn:
            ref, pseudonym = self._ref(user_id)
            done = self._withdraw(ref, pseudonym, list(Purpose), at)
            if erase:
                delete_user(conn, ref, pseudonym, PurgeReason.ERASURE_REQUEST, at)
        return done

    def set_budget(self, user_id: str, budget: PrivacyBudget) -> None:
        """Set the user's total (epsilon, delta) budget (spending already recorded stays)."""
        if not isinstance(budget, PrivacyBudget):
            raise ParameterError("budget must be a PrivacyBudget(epsilon, delta)")
        ref, pseudonym = self._ref(user_id)
        with store.transaction(self._conn) as conn:
            conn.execute(
                "UPDATE users SET budget_epsilon = ?, budget_delta = ? WHERE id = ?",
                (budget.epsilon, budget.delta, ref),
            )
            store.append_audit(
                conn,
                self._now(),
                "budget_set",
                pseudonym=pseudonym,
                detail={"epsilon": budget.epsilon, "delta": budget.delta},
            )

    def pseudonym_of(self, user_id: str) -> str:
        """The user's current pseudonym (what the device answers selection with)."""
        return self._ref(user_id)[1]

    def report(self, user_id: str) -> UserReport:
        """The user's report: purposes, rounds, budget spent, and the two notices. Audited."""
        ref, pseudonym = self._ref(user_id)
        with store.transaction(self._conn) as conn:
            store.append_audit(
                conn, self._now(), "access", pseudonym=pseudonym, detail={"kind": "report"}
            )
        return build_report(self._conn, ref)

    def export(self, user_id: str) -> dict[str, Any]:
        """Everything held about the user as JSON-compatible values (GDPR Art. 20). Audited."""
        ref, pseudonym = self._ref(user_id)
        at = self._now()
        with store.transaction(self._conn) as conn:
            store.append_audit(conn, at, "access", pseudonym=pseudonym, detail={"kind": "export"})
            return build_export(conn, ref, at)

    def export_json(self, user_id: str) -> str:
        """`export` as indented JSON text."""
        return json.dumps(self.export(user_id), indent=2, ensure_ascii=False)

    # --- the trainer's side (pseudonyms) -----------------------------------------------------

    def eligible(
        self, purpose: Purpose | str, round: int, *, cost: Cost | None = None
    ) -> list[str]:
        """Pseudonyms that may be selected for ``round`` of ``purpose`` (sorted).

        A user is eligible with active consent for the purpose now, and, when ``cost`` is
        given, enough budget left to pay their price. Round numbers of a purpose strictly
        increase: a past or already selected round raises `ParameterError`.

        Parameters
        ----------
        purpose, round : the round asked about.
        cost : the round's price: one ``(epsilon, delta)`` for everyone, a mapping
            ``pseudonym -> (epsilon, delta) or None``, or a function of the pseudonym
            returning the price or None. A user the mapping lacks or maps to None, or for
            whom the function returns None, has no price to pay and is not eligible.
            None: no budget check (a round without differential privacy).
        """
        purpose = Purpose.parse(purpose)
        round = rounds.check_round(round)
        last = rounds.last_round(self._conn, purpose)
        if last is not None and round <= last:
            raise ParameterError(
                f"{purpose.value} round {round} is not after the last selected round {last}; "
                "round numbers strictly increase"
            )
        price_of = None if cost is None else price_function(cost)
        rows = rounds.consenting(self._conn, purpose)
        if price_of is not None:
            rows = rounds.affordable(self._conn, rows, price_of)
        return [p for _, p in rows]

    def select(
        self,
        purpose: Purpose | str,
        round: int,
        *,
        k: int | None = None,
        cost: Cost | None = None,
    ) -> list[str]:
        """Select up to ``k`` eligible users (all if ``k`` is None) and record the cohort.

        Eligibility is that of `eligible` (``cost`` likewise: one price, or a price per
        pseudonym), so the cohort holds exactly users who can pay their own price. The
        sample is drawn with `secrets.SystemRandom`. Returns the pseudonyms, sorted.
        """
        purpose = Purpose.parse(purpose)
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise ParameterError(f"k must be an integer >= 0 or None, got {k!r}")
        at = self._now()
        with store.transaction(self._conn) as conn:
            # Eligibility is read under the write lock, so the cohort matches the consent
            # state at the moment the round is recorded.
            pool = self.eligible(purpose, round, cost=cost)
            chosen = sorted(
                pool if k is None or k >= len(pool) else secrets.SystemRandom().sample(pool, k)
            )
            conn.execute(
                "INSERT INTO rounds (purpose, round, selected_at) VALUES (?, ?, ?)",
                (purpose.value, round, at),
            )
            conn.executemany(
                "INSERT INTO selections (purpose, round, user_ref) "
                "SELECT ?, ?, id FROM users WHERE pseudonym = ?",
                [(purpose.value, round, p) for p in chosen],
            )
            store.append_audit(
                conn,
                at,
                "round_selected",
                purpose=purpose.value,
                round=round,
                detail={"eligible": len(pool), "selected": len(chosen)},
            )
        return chosen

    def record_participation(
        self,
        purpose: Purpose | str,
        round: int,
        pseudonyms: Sequence[str],
        *,
        epsilon: float = 0.0,
        delta: float = 0.0,
        cost: Cost | None = None,
        dp: bool = True,
    ) -> None:
        """Record who contributed to ``round`` and charge each their price.

        All or nothing: if any pseudonym was not selected for this round, or was already
        recorded, or cannot afford their price, nothing is written. A user who withdrew
        after the round was selected may still be recorded (withdrawal takes effect from
        the next round); a user purged meanwhile may not, so purge between rounds.

        Parameters
        ----------
        purpose, round, pseudonyms : the round and the users whose updates it aggregated.
        epsilon, delta : one price for everyone (with ``dp``).
        cost : instead of ``epsilon``/``delta``, a price per pseudonym (as in `eligible`);
            every participant must have one.
        dp : whether the round's output has a differential-privacy guarantee. With
            ``dp=False`` nothing is charged (no finite price bounds such a round) and the
            participation is recorded as *without* a guarantee, so the user's report says
            their budget does not bound it; give no ``epsilon``, ``delta`` or ``cost``.

        Raises
        ------
        ConsentError
            A pseudonym is unknown or was not selected for this round.
        BudgetExceededError
            A price would take a user past their budget; the ledger is unchanged.
        ParameterError
            Both ``cost`` and ``epsilon``/``delta`` given, a price with ``dp=False``, a
            participant without a price, or a round recorded partly with and partly
            without a DP guarantee.
        """
        purpose = Purpose.parse(purpose)
        round = rounds.check_round(round)
        price_of = participation_prices(epsilon, delta, cost, dp)
        at = self._now()
        with store.transaction(self._conn) as conn:
            refs = rounds.resolve(self._conn, pseudonyms)
            rounds.check_selected(self._conn, refs, purpose, round)
            rounds.check_guarantee(self._conn, refs, purpose, round, dp)
            prices = rounds.price_each(price_of, refs)
            rounds.charge(self._conn, refs, purpose, round, prices, at)
            conn.executemany(
                "INSERT INTO participation (purpose, round, user_ref, at, dp_guarantee) "
                "VALUES (?, ?, ?, ?, ?)",
                [(purpose.value, round, ref, at, int(dp)) for ref in refs.values()],
            )
            store.append_audit(
                conn,
                at,
                "round_recorded",
                purpose=purpose.value,
                round=round,
                detail=rounds.round_detail(prices, dp),
            )

    def spend(
        self,
        pseudonym: str,
        epsilon: float,
        delta: float,
        *,
        purpose: Purpose | str,
        round: int | None = None,
    ) -> None:
        """Append one (epsilon, delta) entry outside a recorded round (e.g. an evaluation query).

        Raises
        ------
        ConsentError
            The user has no active consent for ``purpose``.
        BudgetExceededError
            The entry would exceed the user's budget; the ledger is unchanged.
        """
        purpose = Purpose.parse(purpose)
        if round is not None:
            round = rounds.check_round(round)
        price = check_cost(epsilon, delta)
        at = self._now()
        with store.transaction(self._conn):
            refs = rounds.resolve(self._conn, [pseudonym])
            if purpose not in rounds.active_purposes(self._conn, refs[pseudonym]):
                raise ConsentError(f"{pseudonym!r} has no active consent for {purpose.value}")
            rounds.charge(self._conn, refs, purpose, round, {pseudonym: price}, at)

    def spent(self, pseudonym: str) -> tuple[float, float]:
        """Total (epsilon, delta) recorded for the user by mechanisms with a DP guarantee.

        Rounds without one are not in this sum (nothing bounds them); see
        ``rounds_of(..., dp=False)``.
        """
        ref = rounds.resolve(self._conn, [pseudonym])[pseudonym]
        return total_spent(rounds.ledgers(self._conn, [ref])[ref])

    def budget_of(self, pseudonym: str) -> PrivacyBudget:
        """The user's total (epsilon, delta) budget (as set by `set_budget` or the default).

        Raises
        ------
        ConsentError
            The pseudonym is unknown (never enrolled, purged, or under a rotated key).
        """
        ref = rounds.resolve(self._conn, [pseudonym])[pseudonym]
        return rounds.budgets(self._conn, [ref])[ref]

    def remaining(self, pseudonym: str) -> tuple[float, float]:
        """Budget left for DP spending, ``budget - spent`` per component, floored at zero.

        For planning and display: the registry's own check at selection and charge time
        (the ledger summed with the price, `securecomp.federated.budget.fits`) decides, and
        may differ from ``price <= remaining`` by a rounding step at the boundary. Rounds
        without a DP guarantee do not reduce it, and it does not bound them: the user's
        report says so.
        """
        budget = self.budget_of(pseudonym)
        eps, dlt = self.spent(pseudonym)
        return max(0.0, budget.epsilon - eps), max(0.0, budget.delta - dlt)

    def rounds_of(
        self, pseudonym: str, purpose: Purpose | str, *, dp: bool | None = None
    ) -> list[int]:
        """Rounds of ``purpose`` the user participated in, ascending.

        ``dp`` True (False) keeps only the rounds with (without) a differential-privacy
        guarantee; None keeps all.
        """
        purpose = Purpose.parse(purpose)
        if dp is not None and not isinstance(dp, bool):
            raise ParameterError(f"dp must be True, False or None, got {dp!r}")
        ref = rounds.resolve(self._conn, [pseudonym])[pseudonym]
        rows = self._conn.execute(
            "SELECT round, dp_guarantee FROM participation WHERE user_ref = ? AND purpose = ? "
            "ORDER BY round",
            (ref, purpose.value),
        )
        return [int(r) for r, g in rows if dp is None or bool(g) == dp]

    # --- housekeeping ------------------------------------------------------------------------

    def purge(self, policy: RetentionPolicy | None = None) -> PurgeReport:
        """Delete the records of users the retention ``policy`` no longer allows keeping.

        With the default policy, every user without any active consent is purged now. Each
        purge is audited under the pseudonym; `PurgeReport.pseudonyms` tells the clients
        whose local data to delete.
        """
        policy = policy or RetentionPolicy()
        if not isinstance(policy, RetentionPolicy):
            raise ParameterError("policy must be a RetentionPolicy")
        now = self._clock()
        store.iso_utc(now)  # refuse a naive clock before touching anything
        with store.transaction(self._conn) as conn:
            return purge_users(conn, policy, now)

    def rotate_key(self, key_path: str | Path) -> PseudonymKey:
        """Replace the pseudonym key stored at ``key_path`` and re-key every pseudonym.

        The old key is destroyed; see `securecomp.federated.rotation` for the crash-safe
        steps. Returns the new key (already written to ``key_path``, mode 0600).
        """
        current = self._require_key("rotating the key")
        self._key = rotate_key_file(self._conn, current, key_path, self._now())
        return self._key

    def verify_audit(self) -> str:
        """Check the audit log's hash chain; return its latest hash (keep it elsewhere)."""
        return store.verify_audit(self._conn)

    def audit_log(self, pseudonym: str | None = None) -> list[dict[str, Any]]:
        """Audit entries (all, or those under one pseudonym), oldest first."""
        return store.audit_entries(self._conn, pseudonym)
