"""Consent registry: selection, withdrawal, purge, budget ledger, audit log, rotation, export."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from federated_fixtures import USER_TABLES, FakeClock, new_registry, raw, rows_mentioning
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import (
    BudgetExceededError,
    ConsentError,
    KeyMismatchError,
    MalformedMessageError,
    ParameterError,
)
from securecomp.federated import (
    ConsentRegistry,
    PrivacyBudget,
    PseudonymKey,
    PurgeReason,
    Purpose,
    RetentionPolicy,
)
from securecomp.federated.report import NOTICE_NO_UNLEARNING, NOTICE_PSEUDONYM

T = Purpose.TRAINING
E = Purpose.EVALUATION


# --- withdrawal and purge -------------------------------------------------------------------


def test_withdrawn_user_is_never_selected_again_and_its_records_are_purged(
    tmp_path: Path,
) -> None:
    reg, _ = new_registry(tmp_path)
    ids = [f"user-{i:03d}-secret" for i in range(6)]
    nyms = {u: reg.opt_in(u, T, E) for u in ids}
    leaver = ids[2]
    cohort = reg.select(T, 0)
    assert set(cohort) == set(nyms.values())
    # Withdrawal during round 0 does not void round 0: the update may still be aggregated.
    assert reg.withdraw(leaver, T) == [T]
    reg.record_participation(T, 0, cohort, epsilon=0.25, delta=1e-8)
    assert reg.rounds_of(nyms[leaver], T) == [0]
    # From the next round on, the leaver is out of training (still in evaluation).
    assert nyms[leaver] not in reg.select(T, 1)
    assert nyms[leaver] in reg.eligible(E, 0)
    # Not purged while a purpose is still active.
    assert reg.purge().users == ()
    reg.revoke(leaver)
    report = reg.purge()
    assert report.pseudonyms == (nyms[leaver],)
    assert report.users[0].reason is PurgeReason.WITHDRAWN
    # 1 user row + 4 consent events + 1 selection + 1 participation + 1 ledger entry.
    assert report.records == 8
    for r in range(2, 6):
        assert nyms[leaver] not in reg.select(T, r)
        assert nyms[leaver] not in reg.select(E, r)
    with pytest.raises(ConsentError):
        reg.record_participation(T, 5, [nyms[leaver]])
    with pytest.raises(ParameterError, match="no records"):
        reg.report(leaver)
    reg.close()

    # Checked in the database itself.
    conn = raw(tmp_path / "consent.db")
    count = conn.execute("SELECT COUNT(*) FROM users WHERE user_id = ?", (leaver,)).fetchone()
    assert count == (0,)
    assert rows_mentioning(conn, nyms[leaver], USER_TABLES) == 0
    assert rows_mentioning(conn, leaver, USER_TABLES) == 0
    orphans = sum(
        conn.execute(
            f"SELECT COUNT(*) FROM {t} WHERE user_ref NOT IN (SELECT id FROM users)"
        ).fetchone()[0]
        for t in USER_TABLES[1:]
    )
    assert orphans == 0
    purge = conn.execute("SELECT pseudonym, detail FROM audit WHERE event = 'purged'").fetchall()
    assert purge == [
        (nyms[leaver], json.dumps({"reason": "withdrawn", "records": 8}, separators=(",", ":")))
    ]
    # The audit log never holds a raw identifier.
    audit_text = " ".join(str(v) for row in conn.execute("SELECT * FROM audit") for v in row)
    assert not any(u in audit_text for u in ids)
    conn.close()
    # secure_delete: the purged identifier is not left behind in free pages of the file.
    assert leaver.encode() not in (tmp_path / "consent.db").read_bytes()
    assert ids[0].encode() in (tmp_path / "consent.db").read_bytes()


def test_revoke_with_erase_deletes_at_once(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    nym = reg.opt_in("carol", T, Purpose.PERSONALIZATION)
    assert set(reg.revoke("carol", erase=True)) == {T, Purpose.PERSONALIZATION}
    entries = reg.audit_log(nym)
    assert entries[-1]["event"] == "purged"
    assert entries[-1]["detail"]["reason"] == "erasure_request"
    assert rows_mentioning(reg._conn, nym, USER_TABLES) == 0
    assert reg.purge().users == ()


def test_retention_period_and_grace_after_withdrawal(tmp_path: Path) -> None:
    clock = FakeClock()
    reg, _ = new_registry(tmp_path, clock)
    stay = reg.opt_in("stays", T)
    old = reg.opt_in("expires", T)
    leaver = reg.opt_in("leaves", T)
    policy = RetentionPolicy(after_withdrawal=timedelta(days=7), retention=timedelta(days=30))
    clock.advance(days=20)
    reg.opt_in("stays", T)  # renewal restarts the retention period
    reg.withdraw("leaves", T)
    clock.advance(days=5)
    assert reg.purge(policy).users == ()  # withdrawal 5 days old, consents < 30 days
    clock.advance(days=6)  # day 31: first consent of "expires" is 31 days old
    got = {u.pseudonym: u.reason for u in reg.purge(policy).users}
    assert got == {old: PurgeReason.RETENTION_EXPIRED, leaver: PurgeReason.WITHDRAWN}
    assert reg.eligible(T, 0) == [stay]
    clock.advance(days=30)
    assert reg.purge(policy).pseudonyms == (stay,)
    assert reg._conn.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)


# --- model-based check of consent state ------------------------------------------------------

USERS = ["ann", "bo", "cy", "dee"]
purposes_st = st.sets(st.sampled_from(list(Purpose)), min_size=1, max_size=3)
event_st: st.SearchStrategy[tuple[str, object, set[Purpose]]] = st.one_of(
    st.tuples(st.just("opt_in"), st.sampled_from(USERS), purposes_st),
    st.tuples(st.just("withdraw"), st.sampled_from(USERS), purposes_st),
    st.tuples(st.just("revoke"), st.sampled_from(USERS), st.just(set())),
    st.tuples(st.just("select"), st.sampled_from(list(Purpose)), st.just(set())),
    st.tuples(st.just("purge"), st.just(""), st.just(set())),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=30))
def test_selection_matches_a_model_of_consent(
    events: list[tuple[str, object, set[Purpose]]],
) -> None:
    key = PseudonymKey(bytes(range(32)))
    reg = ConsentRegistry.open(":memory:", key, clock=FakeClock())
    model: dict[str, set[Purpose]] = {}  # enrolled user -> active purposes
    withdrawn_since: dict[tuple[str, Purpose], bool] = {}
    next_round = dict.fromkeys(Purpose, 0)
    for action, arg, purposes in events:
        if action == "opt_in":
            assert isinstance(arg, str)
            reg.opt_in(arg, *purposes)
            model.setdefault(arg, set()).update(purposes)
            for p in purposes:
                withdrawn_since[(arg, p)] = False
        elif action in ("withdraw", "revoke"):
            assert isinstance(arg, str)
            if arg not in model:
                with pytest.raises(ParameterError):
                    reg.withdraw(arg, *(purposes or Purpose))
                continue
            gone = reg.withdraw(arg, *purposes) if action == "withdraw" else reg.revoke(arg)
            wanted = purposes if action == "withdraw" else set(Purpose)
            assert set(gone) == model[arg] & wanted
            model[arg] -= wanted
            for p in wanted:
                withdrawn_since[(arg, p)] = True
        elif action == "select":
            assert isinstance(arg, Purpose)
            chosen = set(reg.select(arg, next_round[arg]))
            next_round[arg] += 1
            expected = {key.pseudonym(u) for u, ps in model.items() if arg in ps}
            assert chosen == expected
            for u in USERS:
                if withdrawn_since.get((u, arg)):
                    assert key.pseudonym(u) not in chosen
        else:
            purged = set(reg.purge().pseudonyms)
            assert purged == {key.pseudonym(u) for u, ps in model.items() if not ps}
            model = {u: ps for u, ps in model.items() if ps}
    enrolled = {u for (u,) in reg._conn.execute("SELECT user_id FROM users")}
    assert enrolled == set(model)
    reg.verify_audit()
    reg.close()


# --- rounds ----------------------------------------------------------------------------------


def test_participation_needs_selection_and_rounds_increase(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    a, b = reg.opt_in("a", T), reg.opt_in("b", T)
    cohort = reg.select(T, 3, k=1)
    assert len(cohort) == 1
    other = ({a, b} - set(cohort)).pop()
    with pytest.raises(ConsentError, match="not selected"):
        reg.record_participation(T, 3, [other])
    with pytest.raises(ConsentError):
        reg.record_participation(T, 3, ["f" * 64])
    reg.record_participation(T, 3, cohort)
    with pytest.raises(ParameterError, match="already recorded"):
        reg.record_participation(T, 3, cohort)
    for bad in (3, 2):
        with pytest.raises(ParameterError, match="strictly increase"):
            reg.select(T, bad)
    for bad_round in (-1, True, 1.5):
        with pytest.raises(ParameterError):
            reg.eligible(T, bad_round)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        reg.select(T, 4, k=-1)
    with pytest.raises(ParameterError):
        reg.record_participation(T, 3, [a, a])
    assert reg.select(T, 9, k=0) == []
    assert sorted(reg.select(Purpose.EVALUATION, 0)) == []


# --- privacy budget ledger -------------------------------------------------------------------


def _ledger(db: Path) -> list[tuple[object, ...]]:
    conn = raw(db)
    try:
        return conn.execute("SELECT * FROM budget_ledger ORDER BY seq").fetchall()
    finally:
        conn.close()


def test_user_over_budget_is_refused_and_the_ledger_is_unchanged(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    a, b = reg.opt_in("a", T), reg.opt_in("b", T)
    reg.set_budget("a", PrivacyBudget(1.0, 1e-6))
    reg.set_budget("b", PrivacyBudget(5.0, 1e-6))
    for r in range(2):
        reg.record_participation(T, r, reg.select(T, r), epsilon=0.4, delta=1e-7)
    assert reg.spent(a) == (0.8, 2e-7)
    before = _ledger(tmp_path / "consent.db")
    cohort = reg.select(T, 2)
    assert cohort == sorted([a, b])
    with pytest.raises(BudgetExceededError, match="1 user"):
        reg.record_participation(T, 2, cohort, epsilon=0.4, delta=1e-7)
    # Nothing written for anyone: not b's entry, not the participation.
    assert _ledger(tmp_path / "consent.db") == before
    assert reg.rounds_of(b, T) == [0, 1]
    with pytest.raises(BudgetExceededError):
        reg.spend(a, 0.3, 0.0, purpose=T)
    assert _ledger(tmp_path / "consent.db") == before
    # The user who cannot pay is not eligible at that price; the other one is.
    assert reg.eligible(T, 3, cost=(0.4, 1e-7)) == [b]
    assert set(reg.eligible(T, 3, cost=(0.2, 1e-7))) == {a, b}
    reg.spend(a, 0.2, 0.0, purpose=T)  # exactly up to the budget is allowed
    assert reg.spent(a)[0] == pytest.approx(1.0)
    with pytest.raises(BudgetExceededError):
        reg.spend(a, 1e-9, 0.0, purpose=T)
    # delta is a budget too.
    with pytest.raises(BudgetExceededError):
        reg.spend(b, 0.0, 1e-6, purpose=T)


def test_ten_spends_of_a_tenth_fit_a_budget_of_one(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    a = reg.opt_in("a", T)
    reg.set_budget("a", PrivacyBudget(1.0, 0.0))
    for _ in range(10):
        reg.spend(a, 0.1, 0.0, purpose=T)
    assert reg.spent(a) == (1.0, 0.0)
    with pytest.raises(BudgetExceededError):
        reg.spend(a, math.ulp(1.0), 0.0, purpose=T)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 0.6, allow_nan=False), max_size=12))
def test_ledger_never_exceeds_budget(spends: list[float]) -> None:
    key = PseudonymKey(bytes(32))
    reg = ConsentRegistry.open(":memory:", key, default_budget=PrivacyBudget(1.0, 1e-6))
    a = reg.opt_in("a", T)
    accepted: list[float] = []
    for eps in spends:
        before = reg._conn.execute("SELECT COUNT(*) FROM budget_ledger").fetchone()
        if math.fsum([*accepted, eps]) <= 1.0:
            reg.spend(a, eps, 0.0, purpose=T)
            accepted.append(eps)
        else:
            with pytest.raises(BudgetExceededError):
                reg.spend(a, eps, 0.0, purpose=T)
            assert reg._conn.execute("SELECT COUNT(*) FROM budget_ledger").fetchone() == before
        assert reg.spent(a)[0] <= 1.0
    reg.close()


def test_spend_needs_active_consent_and_valid_costs(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    a = reg.opt_in("a", T)
    with pytest.raises(ConsentError, match="no active consent"):
        reg.spend(a, 0.1, 0.0, purpose=E)
    for eps, delta in ((-0.1, 0.0), (math.nan, 0.0), (math.inf, 0.0), (0.1, 1.0), (0.1, -1e-9)):
        with pytest.raises(ParameterError):
            reg.spend(a, eps, delta, purpose=T)
    with pytest.raises(ParameterError):
        PrivacyBudget(1.0, 1.5)
    assert _ledger(tmp_path / "consent.db") == []


# --- audit log -------------------------------------------------------------------------------


def test_audit_log_cannot_be_updated_or_deleted(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    reg.spend(reg.opt_in("a", T), 0.1, 0.0, purpose=T)
    head = reg.verify_audit()
    reg.close()
    conn = raw(tmp_path / "consent.db")
    for sql in (
        "UPDATE audit SET event = 'nothing happened'",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE seq = 1",
        "UPDATE consent_events SET action = 'withdraw'",
        "UPDATE budget_ledger SET epsilon = 0",
    ):
        with pytest.raises(sqlite3.IntegrityError, match=r"append-only|never rewritten"):
            conn.execute(sql)
    conn.commit()
    n = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    assert n >= 2
    # Someone with write access can drop the triggers: the registry then refuses the file,
    # and the hash chain exposes the edit.
    conn.execute("DROP TRIGGER audit_append_only_update")
    conn.execute("UPDATE audit SET event = 'edited' WHERE seq = 1")
    conn.commit()
    conn.close()
    with pytest.raises(MalformedMessageError, match="append-only triggers missing"):
        ConsentRegistry.open(tmp_path / "consent.db")
    conn = raw(tmp_path / "consent.db")
    from securecomp.federated.store import verify_audit

    with pytest.raises(MalformedMessageError, match="audit entry 1"):
        verify_audit(conn)
    conn.close()
    assert len(head) == 64


# --- key rotation ----------------------------------------------------------------------------


def test_key_rotation_keeps_selection_working_and_old_pseudonyms_are_gone(tmp_path: Path) -> None:
    reg, key_file = new_registry(tmp_path)
    ids = ["u1", "u2", "u3"]
    old = {u: reg.opt_in(u, T) for u in ids}
    reg.record_participation(T, 0, reg.select(T, 0), epsilon=0.1, delta=0.0)
    old_bytes = key_file.read_bytes()
    new_key = reg.rotate_key(key_file)
    assert key_file.read_bytes() != old_bytes
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert PseudonymKey.load(key_file) == new_key
    assert not (key_file.parent / "consent.key.new").exists()
    new = {u: new_key.pseudonym(u) for u in ids}
    assert set(reg.select(T, 1)) == set(new.values())
    reg.record_participation(T, 1, list(new.values()), epsilon=0.1, delta=0.0)
    # History survives under the new pseudonyms.
    assert reg.rounds_of(new["u1"], T) == [0, 1]
    assert reg.spent(new["u1"]) == (0.2, 0.0)
    with pytest.raises(ConsentError):
        reg.record_participation(T, 1, [old["u2"]])
    rotation = [e for e in reg.audit_log() if e["event"] == "key_rotated"]
    assert len(rotation) == 1 and rotation[0]["detail"]["users"] == 3
    assert not set(old.values()) & set(str(v) for v in rotation[0]["detail"].values())
    reg.close()
    conn = raw(tmp_path / "consent.db")
    for p in old.values():
        assert rows_mentioning(conn, p, (*USER_TABLES, "meta")) == 0
    conn.close()
    with pytest.raises(KeyMismatchError):
        ConsentRegistry.open(tmp_path / "consent.db", PseudonymKey(old_bytes))
    reopened = ConsentRegistry.open(tmp_path / "consent.db", PseudonymKey.load(key_file))
    assert reopened.key_id == new_key.key_id
    assert reopened.pseudonym_of("u3") == new["u3"]
    reopened.close()


def test_rotation_refuses_a_foreign_key_file_and_leftovers(tmp_path: Path) -> None:
    reg, key_file = new_registry(tmp_path)
    reg.opt_in("u", T)
    other = tmp_path / "keys" / "other.key"
    PseudonymKey.generate().save(other)
    with pytest.raises(KeyMismatchError):
        reg.rotate_key(other)
    PseudonymKey.generate().save(key_file.parent / "consent.key.new")
    with pytest.raises(ParameterError, match="interrupted rotation"):
        reg.rotate_key(key_file)
    no_key = ConsentRegistry.open(tmp_path / "consent.db")
    with pytest.raises(ParameterError, match="needs the pseudonym key"):
        no_key.opt_in("new user", T)
    with pytest.raises(ParameterError, match="needs the pseudonym key"):
        no_key.rotate_key(key_file)
    # Without the key, existing users can still withdraw and be reported on.
    assert no_key.withdraw("u", T) == [T]
    no_key.close()


# --- report and export -----------------------------------------------------------------------


def test_report_shows_purposes_rounds_budget_and_notices(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    nym = reg.opt_in("dana", T, E)
    reg.opt_in("eve", T)
    for r in range(3):
        cohort = reg.select(T, r)
        reg.record_participation(
            T, r, cohort if r != 1 else [c for c in cohort if c != nym], epsilon=0.3, delta=1e-7
        )
    reg.withdraw("dana", E)
    rep = reg.report("dana")
    assert rep.pseudonym == nym and rep.user_id == "dana"
    assert list(rep.active_purposes) == [T]
    assert rep.rounds == {T: (0, 2)}
    assert rep.spent == (pytest.approx(0.6), pytest.approx(2e-7))
    assert rep.remaining[0] == pytest.approx(rep.budget.epsilon - 0.6)
    assert [(e.purpose, e.action) for e in rep.history] == [
        (T, "grant"),
        (E, "grant"),
        (E, "withdraw"),
    ]
    text = rep.render()
    assert "not anonymity" in text and "no unlearning" in text
    assert NOTICE_PSEUDONYM in rep.notices and NOTICE_NO_UNLEARNING in rep.notices
    assert reg.audit_log(nym)[-1]["detail"] == {"kind": "report"}


@settings(max_examples=25, deadline=None)
@given(
    user=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30),
    spends=st.lists(st.floats(0.0, 0.1, allow_nan=False), max_size=4),
)
def test_export_json_round_trips(user: str, spends: list[float]) -> None:
    reg = ConsentRegistry.open(":memory:", PseudonymKey(bytes(32)), clock=FakeClock())
    nym = reg.opt_in(user, T, E)
    for r, eps in enumerate(spends):
        reg.select(T, r)
        reg.record_participation(T, r, [nym], epsilon=eps, delta=0.0)
    reg.withdraw(user, E)
    text = reg.export_json(user)
    data = json.loads(text)
    assert json.loads(json.dumps(data)) == data
    assert data["user"]["user_id"] == user and data["user"]["pseudonym"] == nym
    assert [(e["purpose"], e["action"]) for e in data["consent_events"]] == [
        ("training", "grant"),
        ("evaluation", "grant"),
        ("evaluation", "withdraw"),
    ]
    assert data["active_purposes"].keys() == {"training"}
    assert [p["round"] for p in data["participation"]] == list(range(len(spends)))
    assert [e["epsilon"] for e in data["budget_ledger"]] == [s for s in spends if s > 0]
    assert data["budget_spent"]["epsilon"] == math.fsum(spends)
    assert data["audit"][-1]["detail"] == {"kind": "export"}
    assert {e["event"] for e in data["audit"]} >= {
        "enrolled",
        "consent_granted",
        "consent_withdrawn",
    }
    assert any("not anonymity" in n for n in data["notices"])
    assert any("no unlearning" in n for n in data["notices"])
    assert reg.export(user)["user"] == data["user"]
    reg.close()


# --- opening: corrupt, foreign, missing ------------------------------------------------------


def test_corrupt_or_foreign_database_raises_a_clear_error(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    reg.opt_in("a", T)
    reg.close()
    good = (tmp_path / "consent.db").read_bytes()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(MalformedMessageError, match="not a usable securecomp consent registry"):
        ConsentRegistry.open(garbage)
    with pytest.raises(MalformedMessageError):
        ConsentRegistry.open(garbage, PseudonymKey.generate(), create=True)
    assert garbage.read_bytes() == b"this is not a database" * 100  # never overwritten

    # Copies of a registry hold its raw identifiers: keep them private like the original,
    # so that each open below fails for the damage under test, not for the file mode.
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good[: len(good) // 2])
    truncated.chmod(0o600)
    with pytest.raises(MalformedMessageError):
        ConsentRegistry.open(truncated)

    flipped = tmp_path / "flipped.db"
    flipped.write_bytes(good[:100] + bytes(b ^ 0xFF for b in good[100:4096]) + good[4096:])
    flipped.chmod(0o600)
    with pytest.raises(MalformedMessageError):
        ConsentRegistry.open(flipped)

    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(MalformedMessageError, match="another application"):
        ConsentRegistry.open(foreign, PseudonymKey.generate(), create=True)

    newer = tmp_path / "newer.db"
    newer.write_bytes(good)
    newer.chmod(0o600)
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(MalformedMessageError, match="schema version '99'"):
        ConsentRegistry.open(newer)

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(MalformedMessageError, match="empty"):
        ConsentRegistry.open(empty)

    with pytest.raises(ParameterError, match="no consent registry"):
        ConsentRegistry.open(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(ParameterError, match="needs its pseudonym key"):
        ConsentRegistry.open(tmp_path / "new.db", create=True)
    with pytest.raises(ParameterError):
        ConsentRegistry.open(tmp_path)  # a directory


def test_naive_clock_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    key = PseudonymKey.generate()
    with pytest.raises(ParameterError, match="timezone-aware"):
        ConsentRegistry.open(":memory:", key, clock=lambda: datetime(2030, 1, 1))
    reg = ConsentRegistry.open(":memory:", key)
    for bad in ("", 42, "x" * 257):
        with pytest.raises(ParameterError):
            reg.opt_in(bad, T)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="at least one purpose"):
        reg.opt_in("a")
    with pytest.raises(ParameterError, match="unknown purpose"):
        reg.opt_in("a", "marketing")
    with pytest.raises(ParameterError):
        reg.select(T, 0, k=True)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        RetentionPolicy(retention=timedelta(0))
    with pytest.raises(ParameterError):
        RetentionPolicy(after_withdrawal=timedelta(days=-1))
    assert reg.default_budget == PrivacyBudget(2.0, 1e-6)
    reg.opt_in("a", T)
    when = datetime.fromisoformat(reg.report("a").enrolled_at)
    assert when.utcoffset() == timedelta(0)  # the default clock records UTC
    assert abs(when - datetime.now(UTC)) < timedelta(minutes=5)
    reg.close()


# --- file permissions: the registry file holds raw identifiers ------------------------------

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@posix_only
def test_registry_file_and_its_journal_are_created_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a permissive umask: the default mode would be 0644
    try:
        reg, _ = new_registry(tmp_path)
        db = tmp_path / "consent.db"
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        # Inside an open write transaction the rollback journal exists; it holds page
        # images (raw identifiers included), so it must be as private as the file.
        reg._conn.execute("BEGIN IMMEDIATE")
        reg._conn.execute("INSERT INTO meta (key, value) VALUES ('probe', ?)", ("x" * 5000,))
        journal = tmp_path / "consent.db-journal"
        assert journal.exists()
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600
        reg._conn.execute("ROLLBACK")
        reg.opt_in("alice", T)
        reg.close()
        with ConsentRegistry.open(db) as again:
            assert again.pseudonym_of("alice")
    finally:
        os.umask(old_umask)


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_registry_readable_by_others_is_refused_until_chmod_600(tmp_path: Path, mode: int) -> None:
    reg, _ = new_registry(tmp_path)
    nym = reg.opt_in("bob", T)
    reg.close()
    db = tmp_path / "consent.db"
    db.chmod(mode)
    with pytest.raises(ParameterError, match=r"accessible by group or others.*chmod 600"):
        ConsentRegistry.open(db)
    assert stat.S_IMODE(db.stat().st_mode) == mode  # refused, not silently changed
    db.chmod(0o600)
    with ConsentRegistry.open(db) as again:
        assert again.pseudonym_of("bob") == nym


@posix_only
def test_exposed_journal_or_precreated_empty_file_is_refused(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    reg.close()
    # A journal left beside the file (e.g. after a crash) holds the same personal data.
    wal = tmp_path / "consent.db-wal"
    wal.write_bytes(b"")
    wal.chmod(0o644)
    with pytest.raises(ParameterError, match=r"consent\.db-wal.*chmod 600"):
        ConsentRegistry.open(tmp_path / "consent.db")
    wal.unlink()
    # An empty world-readable file is not initialised: nothing is written into it.
    empty = tmp_path / "shared.db"
    empty.write_bytes(b"")
    empty.chmod(0o644)
    with pytest.raises(ParameterError, match="chmod 600"):
        ConsentRegistry.open(empty, PseudonymKey.generate(), create=True)
    assert empty.read_bytes() == b""
    empty.chmod(0o600)
    ConsentRegistry.open(empty, PseudonymKey.generate(), create=True).close()
    assert empty.stat().st_size > 0
    # A file that is not a registry is reported as such, whatever its mode.
    other = tmp_path / "other.db"
    other.write_bytes(b"not a database" * 100)
    other.chmod(0o644)
    with pytest.raises(MalformedMessageError, match="not a usable"):
        ConsentRegistry.open(other)
