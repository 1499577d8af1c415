"""FedAvg over SecAgg+ and distributed DP: exactness, error bounds, consent and budgets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from federated_fixtures import USER_TABLES, new_registry, raw, rows_mentioning
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.dp import Mechanism, PrivacyAccountant
from securecomp.errors import (
    BudgetExceededError,
    InsufficientParticipantsError,
    ParameterError,
)
from securecomp.federated import (
    ConsentRegistry,
    PrivacyBudget,
    PseudonymKey,
    Purpose,
    synthetic_fedprox,
)
from securecomp.federated.aggregation import (
    AggregationOutcome,
    PlainAggregator,
    SecAggAggregator,
)
from securecomp.federated.device import Device
from securecomp.federated.dp_aggregation import (
    DpSecAggAggregator,
    DpSettings,
    dp_secagg_config,
    min_survivors,
    secagg_failure_probability,
)
from securecomp.federated.fedavg import FedAvgConfig, FedAvgTrainer
from securecomp.federated.local import LocalTraining
from securecomp.federated.privacy import UserLevelAccountant
from securecomp.secagg import Stage, ThreatModel

NO_THREAT = ThreatModel()
SPEC = LocalTraining(epochs=3, learning_rate=0.2)


def _devices(
    reg: ConsentRegistry, users: int, seed: int, *, dim: int = 5
) -> tuple[dict[str, Device], dict[str, str]]:
    """``users`` heterogeneous users enrolled for training, their devices and ids."""
    rng = np.random.default_rng(seed)
    data = synthetic_fedprox(
        0.5, 0.5, rng=rng, num_users=users, dim=dim, min_samples=20, max_samples=40
    )
    devices, ids = {}, {}
    for i, c in enumerate(data.clients):
        p = reg.opt_in(f"user-{i}", Purpose.TRAINING)
        reg.set_budget(f"user-{i}", PrivacyBudget(10.0, 1e-5))
        devices[p] = Device(p, c.x, c.y)
        ids[p] = f"user-{i}"
    return devices, ids


# --- aggregation ------------------------------------------------------------------------------


def test_secagg_mean_is_exactly_the_mean_of_the_quantized_updates() -> None:
    rng = np.random.default_rng(1)
    updates = [rng.normal(0, 0.5, size=7) for _ in range(8)]
    agg = SecAggAggregator(clip=1.0, scale_bits=12, threat=NO_THREAT, rng=np.random.default_rng(9))
    out = agg.aggregate(updates, round=0, drop=[2])
    assert out.survivors == (0, 1, 3, 4, 5, 6, 7)
    # The same rounding coins, drawn in the same order, give the quantized inputs.
    from securecomp.encoding.quantize import quantize

    params = agg.config(8, 7).quantization
    coins = np.random.default_rng(9)
    q = [quantize(u, params, rng=coins).values.view(np.int64) for u in updates]
    ints = [np.where(v >= 1 << (params.modulus_bits - 1), v - (1 << params.modulus_bits), v)
            for v in q]
    exact = np.sum([ints[i] for i in out.survivors], axis=0)
    assert np.array_equal(out.mean * len(out.survivors) * params.scale, exact.astype(np.float64))
    # Up to quantization, it is the plain mean of the clipped updates.
    plain = PlainAggregator(clip=1.0).aggregate(updates, round=0, drop=[2])
    assert np.max(np.abs(out.mean - plain.mean)) <= 1 / params.scale
    assert out.bytes_sent > 0 and out.report is not None
    assert "simulation" in out.protocol


def test_fedavg_over_secagg_matches_plain_fedavg() -> None:
    results = []
    for name in ("secagg+", "plain"):
        reg = ConsentRegistry.open(":memory:", PseudonymKey.generate())
        devices, _ = _devices(reg, 6, seed=3)
        cfg = FedAvgConfig(
            rounds=3, local=SPEC, aggregator=name, clip=4.0, scale_bits=24, threat=NO_THREAT
        )
        res = FedAvgTrainer(reg, devices, cfg, rng=np.random.default_rng(0)).fit()
        assert res.completed_rounds == 3
        results.append(res)
    # Each round's mean differs by at most 2^-24 per coordinate (stochastic rounding).
    assert np.max(np.abs(results[0].params - results[1].params)) <= 1e-5
    assert math.isinf(results[0].epsilon)  # no DP: no finite guarantee


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
def test_dp_aggregate_is_within_its_error_bound(mechanism: Mechanism) -> None:
    rng = np.random.default_rng(5)
    n, dim = 12, 9
    raw_updates = [rng.normal(size=dim) for _ in range(n)]
    updates = [0.8 * u / np.linalg.norm(u) for u in raw_updates]  # inside the clip: no clipping
    settings_ = DpSettings(noise_multiplier=1.0, l2_clip=1.0, mechanism=mechanism)
    threat = ThreatModel(corrupt_fraction=0.1, dropout_fraction=0.1)
    agg = DpSecAggAggregator(settings_, threat=threat)
    out = agg.aggregate(updates, round=3)
    cfg = out.dp_config
    assert cfg is not None
    assert cfg.min_survivors == min_survivors(n, threat) == n - threat.dropout_count(n)
    assert int(out.details["threshold"]) >= cfg.min_survivors  # secagg enforces DP's survivors
    # Secure aggregation sums in the DP encoding's own ring: no extra bits per value.
    assert out.details["modulus_bits"] == cfg.modulus_bits
    assert out.details["extra_bits_per_value"] == 0
    truth = np.mean(updates, axis=0)
    assert np.linalg.norm(out.mean - truth) <= out.error_bound
    # The noise is real: the decoded mean is not the true mean.
    assert np.linalg.norm(out.mean - truth) > 0


def test_dp_round_with_too_many_dropouts_aborts() -> None:
    agg = DpSecAggAggregator(DpSettings(noise_multiplier=1.0), threat=NO_THREAT)
    updates = [np.full(4, 0.1) for _ in range(5)]
    with pytest.raises(InsufficientParticipantsError):
        agg.aggregate(updates, round=0, drop=[0])  # no dropout tolerated: threshold n


def _clip_l2(x: np.ndarray, clip: float = 1.0) -> np.ndarray:
    """numpy: ``x`` scaled into the L2 ball of radius ``clip``."""
    return x * min(1.0, clip / float(np.linalg.norm(x)))


def _masked_upload(out: AggregationOutcome, client: int = 0) -> int:
    """Bytes client ``client`` sent in the masked-input stage (from the CostReport)."""
    assert out.report is not None
    per = out.report.metrics["bytes_per_client"][str(client)]["per_stage_sent"]
    return int(per[Stage.MASKED_INPUT_COLLECTION.value])


def test_dp_masked_upload_costs_exactly_the_dp_modulus_bits_per_value() -> None:
    rng = np.random.default_rng(21)
    n, dim = 10, 1500  # padded to 2048 values: whole bytes at any b
    updates = [rng.normal(0, 0.6, size=dim) for _ in range(n)]
    updates[4] *= 20.0  # far outside the L2 ball: clipping matters to the truth
    threat = ThreatModel(corrupt_fraction=0.1, dropout_fraction=0.2)
    uploads = {}
    for bits in (20, 28):
        agg = DpSecAggAggregator(
            DpSettings(noise_multiplier=0.5, l2_clip=1.0, modulus_bits=bits), threat=threat
        )
        out = agg.aggregate(updates, round=1, drop=[7])
        cfg = out.dp_config
        assert cfg is not None and cfg.modulus_bits == bits and cfg.padded_dim == 2048
        assert out.details["modulus_bits"] == bits
        assert out.survivors == tuple(u for u in range(n) if u != 7)
        uploads[bits] = _masked_upload(out)
        # Payload of b bits per padded value, plus an envelope smaller than one bit per
        # value (carrying the centered integers instead would add ~log2(n) + 1 bits).
        payload = cfg.padded_dim * bits // 8
        assert payload < uploads[bits] < payload + cfg.padded_dim // 8
        # The decoded sum is within the DP configuration's error bound of the numpy sum of
        # the survivors' L2-clipped updates.
        k = len(out.survivors)
        clipped = [_clip_l2(updates[u]) for u in out.survivors]
        error = float(np.linalg.norm(out.mean * k - np.sum(clipped, axis=0)))
        assert error <= cfg.error_bound(n_summands=k)
        assert out.error_bound == cfg.error_bound(n_summands=k) / k
    # Eight more bits of modulus cost exactly eight more bits per value: the envelope is
    # the same, so every value costs exactly b bits.
    assert uploads[28] - uploads[20] == 2048 * 8 // 8


def test_dp_round_with_fewer_clients_than_planned_counts_them_as_dropped() -> None:
    threat = ThreatModel(corrupt_fraction=0.1, dropout_fraction=0.2)
    agg = DpSecAggAggregator(DpSettings(noise_multiplier=1.0), threat=threat)
    plan = agg.plan(10, 6)
    updates = [np.full(6, 0.05 * (i + 1)) for i in range(9)]
    out = agg.aggregate(updates, round=0, dp_config=plan)
    assert out.survivors == tuple(range(9)) and out.details["clients"] == 10
    truth = np.mean(updates, axis=0)  # all inside the clip
    assert np.linalg.norm(out.mean - truth) <= out.error_bound
    with pytest.raises(InsufficientParticipantsError):
        agg.aggregate(updates[:7], round=0, dp_config=plan)  # below min_survivors = 8


@settings(max_examples=8, deadline=None)
@given(
    drop=st.lists(st.integers(0, 9), unique=True, max_size=2),
    scale=st.floats(0.01, 5.0),
    seed=st.integers(0, 2**16),
)
def test_dp_mean_of_any_survivors_is_within_its_bound(
    drop: list[int], scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    updates = [rng.normal(0, scale, size=6) for _ in range(10)]
    threat = ThreatModel(corrupt_fraction=0.1, dropout_fraction=0.2)
    agg = DpSecAggAggregator(DpSettings(noise_multiplier=0.5, modulus_bits=24), threat=threat)
    out = agg.aggregate(updates, round=2, drop=drop)
    assert out.survivors == tuple(u for u in range(10) if u not in drop)
    clipped = [_clip_l2(updates[u]) for u in out.survivors]
    assert np.linalg.norm(out.mean - np.mean(clipped, axis=0)) <= out.error_bound


@pytest.mark.parametrize("n", [10, 30, 40])
def test_dp_secagg_threshold_holds_the_dp_survivors(n: int) -> None:
    threat = ThreatModel(corrupt_fraction=0.05, dropout_fraction=0.05)
    agg = DpSecAggAggregator(DpSettings(noise_multiplier=1.0), threat=threat)
    plan = agg.plan(n, 16)
    cfg = dp_secagg_config(plan, threat)
    assert cfg.dp is plan and cfg.bits == plan.modulus_bits and cfg.dim == 16
    assert plan.min_survivors <= cfg.threshold <= cfg.graph.degree + 1
    # A threat model with other colluders than the noise split assumed is refused.
    with pytest.raises(InsufficientParticipantsError, match="collude"):
        dp_secagg_config(plan, ThreatModel(corrupt_fraction=0.3, dropout_fraction=0.05))


def test_dp_privacy_event_counts_secagg_failure_in_delta() -> None:
    threat = ThreatModel(corrupt_fraction=0.1, dropout_fraction=0.1)
    agg = DpSecAggAggregator(DpSettings(noise_multiplier=1.0, delta=1e-6), threat=threat)
    plan = agg.plan(20, 8)
    own, event = plan.privacy_event(), agg.privacy_event(plan)
    assert secagg_failure_probability(threat) == 2.0**-threat.security_bits
    assert event.wrap_probability == own.wrap_probability + 2.0**-40
    assert event.bound == own.bound and event.sampler_tv == own.sampler_tv
    spent = PrivacyAccountant([(event, 3)]).get_epsilon(1e-6)
    assert spent.delta_wrap == pytest.approx(3 * (2.0**plan.log2_wrap_probability + 2.0**-40))


# --- consent and budgets -------------------------------------------------------------------


def test_withdrawn_user_is_never_selected_again_and_purged(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    devices, ids = _devices(reg, 6, seed=4)
    cfg = FedAvgConfig(rounds=4, local=SPEC, threat=NO_THREAT)
    trainer = FedAvgTrainer(reg, devices, cfg, rng=np.random.default_rng(1))
    trainer.run_round()
    leaver = sorted(devices)[2]
    assert leaver in trainer.contributors[0]
    reg.withdraw(ids[leaver], Purpose.TRAINING)
    for _ in range(3):
        assert trainer.run_round().status == "ok"
    with raw(tmp_path / "consent.db") as conn:
        rows = conn.execute(
            "SELECT s.round FROM selections s JOIN users u ON s.user_ref = u.id "
            "WHERE u.pseudonym = ? ORDER BY s.round",
            (leaver,),
        ).fetchall()
        assert rows == [(0,)]
        done = conn.execute(
            "SELECT p.round FROM participation p JOIN users u ON p.user_ref = u.id "
            "WHERE u.pseudonym = ?",
            (leaver,),
        ).fetchall()
        assert done == [(0,)]  # the round before withdrawal stays recorded
    report = reg.purge()
    assert report.pseudonyms == (leaver,)
    trainer.forget(report.pseudonyms)
    assert devices[leaver].erased and leaver not in trainer.devices
    with raw(tmp_path / "consent.db") as conn:
        assert rows_mentioning(conn, leaver, USER_TABLES) == 0
    assert trainer.run_round().status == "ok"
    assert leaver not in trainer.selected[4]


def _dp_run(
    tmp_path: Path, users: int, rounds: int, strict_epsilon: float | None = None
) -> tuple[ConsentRegistry, FedAvgTrainer, dict[str, str]]:
    reg, _ = new_registry(tmp_path)
    devices, ids = _devices(reg, users, seed=7)
    if strict_epsilon is not None:
        reg.set_budget(ids[sorted(devices)[0]], PrivacyBudget(strict_epsilon, 1e-5))
    dp = DpSettings(noise_multiplier=3.0, l2_clip=1.0, delta=1e-5)
    cfg = FedAvgConfig(rounds=rounds, local=SPEC, threat=NO_THREAT, dp=dp)
    trainer = FedAvgTrainer(reg, devices, cfg, rng=np.random.default_rng(2))
    trainer.fit()
    return reg, trainer, ids


def test_budget_spent_user_stops_and_ledger_equals_accountant(tmp_path: Path) -> None:
    users = 10
    agg = DpSecAggAggregator(DpSettings(noise_multiplier=3.0, l2_clip=1.0, delta=1e-5),
                             threat=NO_THREAT)
    one_event = agg.privacy_event(agg.plan(users, 6))
    one_round = PrivacyAccountant([(one_event, 1)]).get_epsilon(1e-5).epsilon
    reg, trainer, _ = _dp_run(tmp_path, users, rounds=3, strict_epsilon=1.2 * one_round)
    strict = sorted(trainer.devices)[0]
    assert reg.rounds_of(strict, Purpose.TRAINING) == [0]
    assert [r.participants for r in trainer.history] == [10, 9, 9]
    # The registry does not even select the user whose budget cannot pay the next round.
    assert trainer.history[1].selected == 9 and trainer.history[1].left_out_for_budget == 1
    assert all(strict not in trainer.selected[r] for r in (1, 2))
    assert trainer.exhausted() == [strict]
    assert reg.remaining(strict)[0] == pytest.approx(0.2 * one_round, rel=1e-9)
    # The ledger of a user in every round is the composed guarantee of the rounds' events.
    other = sorted(trainer.devices)[1]
    aggregator = trainer.aggregator
    assert isinstance(aggregator, DpSecAggAggregator)
    events = [aggregator.privacy_event(aggregator.plan(m, 6)) for m in (10, 9, 9)]
    expected = PrivacyAccountant([(e, 1) for e in events]).get_epsilon(1e-5).epsilon
    spent = reg.spent(other)
    assert spent[0] == pytest.approx(expected, rel=1e-12)
    assert spent[0] >= expected  # rounded up, never below the accountant
    assert spent[1] == pytest.approx(1e-5)
    assert reg.spent(strict)[0] == pytest.approx(one_round, rel=1e-12)
    assert trainer.result().epsilon == pytest.approx(expected, rel=1e-12)


def test_over_budget_spend_is_refused_and_ledger_unchanged(tmp_path: Path) -> None:
    reg, trainer, _ = _dp_run(tmp_path, 10, rounds=1)
    p = sorted(trainer.devices)[0]
    before = reg.spent(p)
    with raw(tmp_path / "consent.db") as conn:
        entries = conn.execute("SELECT COUNT(*) FROM budget_ledger").fetchone()[0]
    with pytest.raises(BudgetExceededError):
        reg.spend(p, 10.0, 0.0, purpose=Purpose.TRAINING)
    assert reg.spent(p) == before
    with raw(tmp_path / "consent.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM budget_ledger").fetchone()[0] == entries


def test_aborted_round_changes_neither_model_nor_ledger(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    devices, _ = _devices(reg, 8, seed=8)
    dp = DpSettings(noise_multiplier=3.0)
    cfg = FedAvgConfig(rounds=1, local=SPEC, threat=NO_THREAT, dp=dp, dropout=0.5)
    trainer = FedAvgTrainer(reg, devices, cfg, rng=np.random.default_rng(0))
    rec = trainer.run_round()
    assert rec.status.startswith("aborted")
    assert np.all(trainer.params == 0.0)
    assert all(reg.spent(p) == (0.0, 0.0) for p in devices)


def test_user_level_accountant_charges_increments() -> None:
    agg = DpSecAggAggregator(DpSettings(noise_multiplier=2.0), threat=NO_THREAT)
    event = agg.privacy_event(agg.plan(20, 8))
    acct = UserLevelAccountant(1e-6)
    total = [0.0, 0.0]
    for r in range(4):
        cost = acct.cost("u", event)
        assert cost is not None
        assert cost[1] == (1e-6 if r == 0 else 0.0)
        total[0] += cost[0]
        total[1] += cost[1]
        acct.commit(["u"], event)
    composed = PrivacyAccountant([(event, 4)]).get_epsilon(1e-6).epsilon
    assert total[0] == pytest.approx(composed, rel=1e-12)
    assert acct.epsilon("u") == composed and acct.rounds("u") == 4
    assert acct.epsilon("nobody") == 0.0


def test_configuration_errors() -> None:
    with pytest.raises(ParameterError):
        FedAvgConfig(rounds=0)
    with pytest.raises(ParameterError):
        FedAvgConfig(rounds=1, aggregator="plain", dp=DpSettings(noise_multiplier=1.0))
    with pytest.raises(ParameterError):
        FedAvgConfig(rounds=1, clients_per_round=1)
    with pytest.raises(ParameterError):
        DpSettings(noise_multiplier=0.0)
    with pytest.raises(ParameterError):
        DpSettings(noise_multiplier=1.0, delta=1.0)
    with pytest.raises(ParameterError):
        DpSettings(noise_multiplier=1.0, modulus_bits=65)
    with pytest.raises(ParameterError):
        LocalTraining(learning_rate=0.0)


def test_nobody_selected_when_no_budget_can_pay(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)  # default budget delta 1e-6 < the DP delta 1e-5
    rng = np.random.default_rng(0)
    devices = {}
    for i in range(4):
        p = reg.opt_in(f"u{i}", Purpose.TRAINING)
        devices[p] = Device(p, rng.normal(size=(5, 3)), rng.integers(0, 2, 5))
    cfg = FedAvgConfig(rounds=1, local=SPEC, threat=NO_THREAT, dp=DpSettings(1.0, delta=1e-5))
    rec = FedAvgTrainer(reg, devices, cfg, rng=rng).run_round()
    assert rec.status.startswith("skipped") and rec.selected == 0
    with raw(tmp_path / "consent.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM selections").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM budget_ledger").fetchone()[0] == 0


def test_training_without_dp_is_recorded_as_without_guarantee(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    devices, ids = _devices(reg, 5, seed=11)
    cfg = FedAvgConfig(rounds=2, local=SPEC, aggregator="plain", threat=NO_THREAT)
    trainer = FedAvgTrainer(reg, devices, cfg, rng=np.random.default_rng(3))
    assert trainer.fit().completed_rounds == 2
    with raw(tmp_path / "consent.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM budget_ledger").fetchone()[0] == 0
        assert conn.execute("SELECT DISTINCT dp_guarantee FROM participation").fetchall() == [
            (0,)
        ]
    for p in trainer.contributors[0]:
        assert reg.rounds_of(p, Purpose.TRAINING, dp=False) == [0, 1]
        assert reg.rounds_of(p, Purpose.TRAINING, dp=True) == []
        rep = reg.report(ids[p])
        assert not rep.bounded and rep.remaining is None and math.isinf(rep.epsilon_spent)
        assert "spent     unbounded: 2 rounds without" in rep.render()
        assert any("2 rounds without a differential-privacy guarantee" in n for n in rep.notices)
        export = reg.export(ids[p])
        assert export["budget_spent"]["epsilon"] == "unbounded"
        assert export["budget_remaining"]["epsilon"] == "not meaningful"
        assert export["rounds_without_dp"] == {"training": [0, 1]}
    recorded = [e["detail"] for e in reg.audit_log() if e["event"] == "round_recorded"]
    assert recorded == [{"participants": 5, "dp": False}] * 2


def test_dp_selection_follows_each_users_own_price(tmp_path: Path) -> None:
    reg, _ = new_registry(tmp_path)
    devices, _ = _devices(reg, 6, seed=12)
    dp = DpSettings(noise_multiplier=3.0, l2_clip=1.0, delta=1e-5)
    cfg = FedAvgConfig(rounds=2, local=SPEC, threat=NO_THREAT, dp=dp)
    trainer = FedAvgTrainer(reg, devices, cfg, rng=np.random.default_rng(4))
    assert trainer.run_round().status == "ok"
    veterans = sorted(devices)
    # Two newcomers: a first round costs the whole delta, which only one of them can pay.
    # Every veteran's price (an epsilon increment, no delta) is below the newcomers', so
    # any single price applied to all would let both in or keep a veteran out.
    rng = np.random.default_rng(13)
    newcomers = {}
    for name, delta in (("new-ok", 1e-5), ("new-short", 5e-6)):
        p = reg.opt_in(name, Purpose.TRAINING)
        reg.set_budget(name, PrivacyBudget(10.0, delta))
        newcomers[name] = p
        trainer.devices[p] = Device(p, rng.normal(size=(30, 5)), rng.integers(0, 2, 30))
    assert reg.remaining(newcomers["new-short"]) == (10.0, 5e-6)
    rec = trainer.run_round()
    assert rec.status == "ok" and rec.left_out_for_budget == 1
    assert set(trainer.selected[1]) == {*veterans, newcomers["new-ok"]}
    assert newcomers["new-short"] not in trainer.selected[1]
    # Each paid their own price in one recorded round: deltas once, increments after.
    assert reg.spent(newcomers["new-ok"])[1] == pytest.approx(1e-5)
    assert reg.spent(newcomers["new-short"]) == (0.0, 0.0)
    acct = trainer.accountant
    assert acct is not None
    for p in [*veterans, newcomers["new-ok"]]:
        assert reg.spent(p)[0] == pytest.approx(acct.epsilon(p), rel=1e-12)
        assert reg.spent(p)[1] == pytest.approx(1e-5)
    assert reg.spent(veterans[0])[0] > reg.spent(newcomers["new-ok"])[0]
    recorded = [e["detail"] for e in reg.audit_log() if e["event"] == "round_recorded"]
    assert recorded[1]["participants"] == 7 and recorded[1]["distinct_prices"] == 2
    assert trainer.exhausted() == []  # budgets of 10 pay many more rounds like these
