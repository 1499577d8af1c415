"""Consent registry: rounds without DP, per-user prices, budget reads, schema version 2."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from federated_fixtures import FakeClock, new_registry, raw
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import (
    BudgetExceededError,
    ConsentError,
    MalformedMessageError,
    ParameterError,
)
from securecomp.federated import ConsentRegistry, PrivacyBudget, PseudonymKey, Purpose
from securecomp.federated.budget import fits
from securecomp.federated.report import EXPORT_VERSION, NOTICE_NO_UNLEARNING, NOTICE_PSEUDONYM
from securecomp.federated.store import SCHEMA_VERSION

T = Purpose.TRAINING
E = Purpose.EVALUATION

NO_BOUND = (
    "without a differential-privacy guarantee: the privacy budget does not bound what "
)


def _memory() -> ConsentRegistry:
    return ConsentRegistry.open(":memory:", PseudonymKey(bytes(range(32))), clock=FakeClock())


def _ledger_rows(reg: ConsentRegistry) -> list[tuple[object, ...]]:
    return reg._conn.execute("SELECT * FROM budget_ledger ORDER BY seq").fetchall()


# --- rounds without a differential-privacy guarantee --------------------------------------


def test_round_without_dp_is_unbounded_in_report_and_export(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    a = reg.opt_in("ann", T)
    b = reg.opt_in("bob", T)
    reg.record_participation(T, 0, reg.select(T, 0), epsilon=0.3, delta=1e-7)
    ledger = _ledger_rows(reg)
    for r in (1, 2):
        reg.select(T, r)
        reg.record_participation(T, r, [a], dp=False)
    # No entry in the ledger (a zero entry would claim perfect privacy); the DP sum stays.
    assert _ledger_rows(reg) == ledger
    assert reg.spent(a) == (0.3, 1e-7) == reg.spent(b)
    assert reg.rounds_of(a, T) == [0, 1, 2]
    assert reg.rounds_of(a, T, dp=False) == [1, 2]
    assert reg.rounds_of(a, T, dp=True) == [0]
    assert reg.rounds_of(b, T, dp=False) == []

    rep = reg.report("ann")
    assert not rep.bounded and rep.count_without_dp == 2
    assert rep.rounds == {T: (0, 1, 2)} and rep.rounds_without_dp == {T: (1, 2)}
    assert rep.remaining is None and math.isinf(rep.epsilon_spent)
    assert rep.spent == (0.3, 1e-7)  # what the DP round cost, labelled as such below
    assert any(f"You participated in 2 rounds {NO_BOUND}those rounds reveal" in n
               for n in rep.notices)
    assert NOTICE_PSEUDONYM in rep.notices and NOTICE_NO_UNLEARNING in rep.notices
    text = rep.render()
    assert "spent     unbounded: 2 rounds without a differential-privacy guarantee" in text
    assert "remaining not meaningful" in text
    assert "(0.3, 1e-07 by rounds with one)" in text
    assert "spent     0.3" not in text

    # A user whose every round had DP sees exactly what they saw before.
    rep_b = reg.report("bob")
    assert rep_b.bounded and rep_b.rounds_without_dp == {}
    assert rep_b.remaining == (rep_b.budget.epsilon - 0.3, rep_b.budget.delta - 1e-7)
    assert rep_b.epsilon_spent == 0.3
    assert rep_b.notices == (NOTICE_PSEUDONYM, NOTICE_NO_UNLEARNING)
    assert "spent     0.3, 1e-07" in rep_b.render() and "unbounded" not in rep_b.render()

    data = json.loads(reg.export_json("ann"))
    assert data["version"] == EXPORT_VERSION == 2
    assert data["budget_spent"] == {
        "epsilon": "unbounded",
        "delta": "unbounded",
        "by_rounds_with_dp": {"epsilon": 0.3, "delta": 1e-7},
    }
    assert data["budget_remaining"] == {"epsilon": "not meaningful", "delta": "not meaningful"}
    assert data["rounds_without_dp"] == {"training": [1, 2]}
    assert [(p["round"], p["dp_guarantee"]) for p in data["participation"]] == [
        (0, True),
        (1, False),
        (2, False),
    ]
    assert any(NO_BOUND in n for n in data["notices"])
    data_b = reg.export("bob")
    assert data_b["budget_spent"] == {"epsilon": 0.3, "delta": 1e-7}
    assert data_b["budget_remaining"]["epsilon"] == pytest.approx(2.0 - 0.3)
    assert data_b["rounds_without_dp"] == {}
    assert not any(NO_BOUND in n for n in data_b["notices"])

    # Audited: the DP round with its price, the others as without a guarantee.
    recorded = [e for e in reg.audit_log() if e["event"] == "round_recorded"]
    assert [e["detail"] for e in recorded] == [
        {"participants": 2, "dp": True, "epsilon": 0.3, "delta": 1e-7},
        {"participants": 1, "dp": False},
        {"participants": 1, "dp": False},
    ]
    reg.verify_audit()
    reg.close()
    with raw(tmp_path / "consent.db") as conn:
        flags = conn.execute(
            "SELECT round, dp_guarantee FROM participation p JOIN users u ON p.user_ref = u.id "
            "WHERE u.pseudonym = ? ORDER BY round",
            (a,),
        ).fetchall()
    assert flags == [(0, 1), (1, 0), (2, 0)]


def test_one_round_without_dp_is_named_in_the_singular() -> None:
    reg = _memory()
    a = reg.opt_in("a", T, E)
    reg.select(E, 0)
    reg.record_participation(E, 0, [a], dp=False)
    rep = reg.report("a")
    assert rep.rounds_without_dp == {E: (0,)}
    assert any(f"You participated in 1 round {NO_BOUND}that round reveals" in n
               for n in rep.notices)
    assert "unbounded: 1 round without" in rep.render()


def test_round_without_dp_takes_no_price_and_is_not_mixed() -> None:
    reg = _memory()
    a, b = reg.opt_in("a", T), reg.opt_in("b", T)
    reg.select(T, 0)
    for kwargs in (
        {"dp": False, "epsilon": 0.1},
        {"dp": False, "delta": 1e-9},
        {"dp": False, "cost": {a: (0.0, 0.0)}},
        {"dp": "no"},
        {"cost": {a: (0.1, 0.0)}, "epsilon": 0.1},
    ):
        with pytest.raises(ParameterError):
            reg.record_participation(T, 0, [a], **kwargs)  # type: ignore[arg-type]
    reg.record_participation(T, 0, [a], epsilon=0.1)
    audit = len(reg.audit_log())
    # One aggregate is either DP or not: the rest of round 0 cannot be recorded without.
    with pytest.raises(ParameterError, match="with a differential-privacy guarantee"):
        reg.record_participation(T, 0, [b], dp=False)
    assert reg.rounds_of(b, T) == [] and len(reg.audit_log()) == audit
    reg.record_participation(T, 0, [b], epsilon=0.1)
    reg.select(T, 1)
    reg.record_participation(T, 1, [a], dp=False)
    with pytest.raises(ParameterError, match="without a differential-privacy guarantee"):
        reg.record_participation(T, 1, [b], epsilon=0.1)
    with pytest.raises(ParameterError):
        reg.rounds_of(a, T, dp=1)  # type: ignore[arg-type]


# --- a price per pseudonym ----------------------------------------------------------------


def test_per_pseudonym_cost_selects_exactly_who_can_pay() -> None:
    reg = _memory()
    users = {u: reg.opt_in(u, T) for u in ("rich", "tight", "poor", "unpriced", "vacuous")}
    reg.set_budget("rich", PrivacyBudget(5.0, 1e-5))
    reg.set_budget("tight", PrivacyBudget(1.0, 1e-6))
    reg.set_budget("poor", PrivacyBudget(1.0, 1e-6))
    reg.spend(users["poor"], 0.8, 0.0, purpose=T)
    prices = {
        users["rich"]: (2.0, 1e-5),  # dearer than anyone else's, and affordable
        users["tight"]: (1.0, 1e-6),  # exactly the whole budget
        users["poor"]: (0.3, 0.0),  # cheap, but 0.8 + 0.3 > 1
    }
    can_pay = sorted([users["rich"], users["tight"]])
    assert reg.eligible(T, 0, cost=prices) == can_pay  # "unpriced" and "vacuous" lack one
    assert reg.eligible(T, 0, cost={**prices, users["vacuous"]: None}) == can_pay
    # The same as a function; None (e.g. a vacuous guarantee) means "cannot pay".
    def price_of(p: str) -> tuple[float, float] | None:
        return None if p == users["vacuous"] else prices.get(p, (0.0, 0.0))

    can_pay_fn = sorted([*can_pay, users["unpriced"]])  # free for "unpriced" this time

    assert reg.eligible(T, 0, cost=price_of) == can_pay_fn
    # One price for all still works, and is what a single cost has always meant.
    assert reg.eligible(T, 0, cost=(0.25, 0.0)) == sorted(
        p for u, p in users.items() if u != "poor"
    )
    cohort = reg.select(T, 0, cost=prices)
    assert cohort == can_pay
    selected = [e for e in reg.audit_log() if e["event"] == "round_selected"][-1]
    assert selected["detail"] == {"eligible": 2, "selected": 2}
    reg.record_participation(T, 0, cohort, cost=prices)
    assert reg.spent(users["rich"]) == (2.0, 1e-5)
    assert reg.spent(users["tight"]) == (1.0, 1e-6)
    recorded = [e for e in reg.audit_log() if e["event"] == "round_recorded"][-1]
    assert recorded["detail"] == {
        "participants": 2,
        "dp": True,
        "epsilon_max": 2.0,
        "delta_max": 1e-5,
        "distinct_prices": 2,
    }
    # Round 1: "rich" has paid its delta and pays no more of it; "tight" has nothing left.
    later = {users["rich"]: (2.0, 0.0), users["tight"]: (0.1, 0.0)}
    assert reg.select(T, 1, k=2, cost=later) == [users["rich"]]
    assert reg.eligible(T, 2, cost={users["rich"]: (2.0, 1e-5)}) == []  # delta is spent


def test_per_pseudonym_charge_is_all_or_nothing_and_prices_are_checked() -> None:
    reg = _memory()
    a, b = reg.opt_in("a", T), reg.opt_in("b", T)
    reg.set_budget("b", PrivacyBudget(0.5, 1e-6))
    cohort = reg.select(T, 0)
    before = _ledger_rows(reg), len(reg.audit_log())
    with pytest.raises(BudgetExceededError, match=r"1 user\(s\).*epsilon=0\.6"):
        reg.record_participation(T, 0, cohort, cost={a: (0.1, 0.0), b: (0.6, 0.0)})
    with pytest.raises(ParameterError, match="no price given"):
        reg.record_participation(T, 0, cohort, cost={a: (0.1, 0.0)})
    assert (_ledger_rows(reg), len(reg.audit_log())) == before
    assert reg.rounds_of(a, T) == []
    for bad in (
        {a: (-0.1, 0.0)},
        {a: (math.nan, 0.0)},
        {a: (0.1, 1.0)},
        {a: 0.1},
        {7: (0.1, 0.0)},
        (0.1, 0.0, 0.0),
        0.1,
        "0.1",
    ):
        with pytest.raises(ParameterError):
            reg.eligible(T, 1, cost=bad)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        reg.eligible(T, 1, cost=lambda p: (math.inf, 0.0))
    reg.record_participation(T, 0, cohort, cost={a: (0.1, 0.0), b: (0.5, 0.0)})
    assert reg.spent(b) == (0.5, 0.0)


@settings(max_examples=40, deadline=None)
@given(
    users=st.lists(
        st.tuples(
            st.floats(0.0, 2.0),  # budget epsilon
            st.floats(0.0, 1.0),  # already spent, as a fraction of it
            st.one_of(st.none(), st.tuples(st.floats(0.0, 2.0), st.sampled_from([0.0, 1e-6]))),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_eligible_matches_each_users_own_budget(
    users: list[tuple[float, float, tuple[float, float] | None]],
) -> None:
    reg = _memory()
    prices: dict[str, tuple[float, float]] = {}
    expected = set()
    for i, (budget, fraction, price) in enumerate(users):
        p = reg.opt_in(f"u{i}", T)
        reg.set_budget(f"u{i}", PrivacyBudget(budget, 1e-6))
        if budget * fraction > 0:
            reg.spend(p, budget * fraction, 0.0, purpose=T)
        if price is not None:
            prices[p] = price
            if fits([reg.spent(p)], price, reg.budget_of(p)):
                expected.add(p)
    assert set(reg.eligible(T, 0, cost=prices)) == expected
    assert set(reg.select(T, 0, cost=prices)) == expected
    reg.close()


# --- reading a budget by pseudonym --------------------------------------------------------


def test_budget_of_and_remaining_by_pseudonym() -> None:
    reg = _memory()
    a, b = reg.opt_in("a", T), reg.opt_in("b", T)
    assert reg.budget_of(a) == reg.default_budget == PrivacyBudget(2.0, 1e-6)
    reg.set_budget("b", PrivacyBudget(1.0, 1e-5))
    assert reg.budget_of(b) == PrivacyBudget(1.0, 1e-5)
    assert reg.remaining(b) == (1.0, 1e-5)
    reg.spend(b, 0.25, 4e-6, purpose=T)
    assert reg.remaining(b) == (0.75, pytest.approx(6e-6))
    assert reg.remaining(a) == (2.0, 1e-6)
    audit = len(reg.audit_log())
    # Reads, like spent(): nothing changes, nothing is audited.
    reg.budget_of(a)
    reg.remaining(a)
    assert len(reg.audit_log()) == audit
    # A round without DP does not touch the figures it cannot bound.
    reg.select(T, 0)
    reg.record_participation(T, 0, [b], dp=False)
    assert reg.remaining(b) == (0.75, pytest.approx(6e-6))
    assert reg.report("b").remaining is None
    # A budget lowered below what was already spent leaves nothing, not a negative figure.
    reg.set_budget("b", PrivacyBudget(0.1, 1e-6))
    assert reg.remaining(b) == (0.0, 0.0)
    for bad in ("f" * 64, "nobody"):
        with pytest.raises(ConsentError):
            reg.budget_of(bad)
        with pytest.raises(ConsentError):
            reg.remaining(bad)
    reg.revoke("a", erase=True)
    with pytest.raises(ConsentError):
        reg.budget_of(a)


# --- schema version -----------------------------------------------------------------------


def test_older_schema_version_is_refused(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 2
    reg, _ = new_registry(tmp_path)
    reg.opt_in("a", T)
    reg.close()
    db = tmp_path / "consent.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(MalformedMessageError, match=r"schema version '1'.*older file"):
        ConsentRegistry.open(db)
    # A file claiming version 2 without the new column is refused before any round.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        conn.execute("ALTER TABLE participation DROP COLUMN dp_guarantee")
    with pytest.raises(MalformedMessageError, match="columns missing from participation"):
        ConsentRegistry.open(db)
