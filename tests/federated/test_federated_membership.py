"""Membership inference: the attacks, the DP bound, and DP lowering the measured advantage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from securecomp.errors import ParameterError
from securecomp.federated import ConsentRegistry, PrivacyBudget, PseudonymKey, Purpose
from securecomp.federated.device import Device
from securecomp.federated.dp_aggregation import DpSettings
from securecomp.federated.fedavg import FedAvgConfig, FedAvgTrainer
from securecomp.federated.local import LocalTraining
from securecomp.federated.membership import (
    MembershipReport,
    advantage_bound,
    calibrated_attack,
    device_losses,
    membership_report,
    threshold_attack,
    yeom_attack,
)
from securecomp.secagg import ThreatModel


def test_advantage_bound_known_values() -> None:
    assert advantage_bound(0.0, 0.0) == 0.0
    assert advantage_bound(math.log(3.0), 0.0) == pytest.approx(0.5)
    assert advantage_bound(0.0, 0.1) == pytest.approx(0.1)
    assert advantage_bound(math.inf, 0.0) == 1.0
    assert advantage_bound(2.0, 1e-5) == pytest.approx(
        (math.exp(2) - 1 + 2e-5) / (math.exp(2) + 1)
    )
    with pytest.raises(ParameterError):
        advantage_bound(-1.0, 0.0)
    with pytest.raises(ParameterError):
        advantage_bound(1.0, 1.0)


@given(
    eps=st.floats(0, 50, allow_nan=False), delta=st.floats(0, 0.5, allow_nan=False),
    fpr=st.floats(0, 1),
)
def test_bound_is_the_best_test_under_the_dp_constraints(
    eps: float, delta: float, fpr: float
) -> None:
    # Kairouz et al. 2015: FPR + e^eps FNR >= 1 - delta and FNR + e^eps FPR >= 1 - delta.
    # The largest TPR allowed at a given FPR never beats FPR + bound.
    e = math.exp(eps)
    fnr = max(0.0, (1 - delta - fpr) / e, 1 - delta - e * fpr)
    tpr = 1 - fnr
    assert tpr - fpr <= advantage_bound(eps, delta) + 1e-12


def test_threshold_attack_counts() -> None:
    res = threshold_attack([0.1, 0.2, 0.9, 1.5], [0.3, 1.0, 2.0], 0.25)
    assert res.tpr == 0.5 and res.fpr == 0.0
    assert res.advantage == 0.5
    assert res.standard_error == pytest.approx(math.sqrt(0.25 / 4))
    yeom = yeom_attack([0.1, 0.2, 0.9, 1.5], [0.3, 1.0, 2.0])
    assert yeom.threshold == pytest.approx(0.675)
    assert (yeom.tpr, yeom.fpr) == (0.5, pytest.approx(1 / 3))
    with pytest.raises(ParameterError):
        threshold_attack([], [1.0], 0.0)
    with pytest.raises(ParameterError):
        threshold_attack([np.nan], [1.0], 0.0)


def test_calibrated_attack_separates_or_guesses() -> None:
    rng = np.random.default_rng(0)
    separable = calibrated_attack(rng.uniform(0, 1, 400), rng.uniform(2, 3, 400), rng=rng)
    assert separable.advantage == 1.0
    same = calibrated_attack(rng.exponential(size=4000), rng.exponential(size=4000), rng=rng)
    assert abs(same.advantage) < 4 * same.standard_error + 0.02
    report = membership_report([0.1, 0.2], [1.0, 2.0], epsilon=1.0, delta=0.0, rng=rng)
    assert isinstance(report, MembershipReport)
    assert report.bound == pytest.approx(advantage_bound(1.0, 0.0))
    assert report.to_dict()["yeom"]["advantage"] == report.yeom.advantage


def _overfit_run(seed: int, dp: bool) -> tuple[MembershipReport, float]:
    """16 users x 16 noisy samples in 80 dimensions: FedAvg overfits without DP."""
    rng = np.random.default_rng(seed)
    dim, n = 80, 16
    w = rng.normal(size=dim)
    reg = ConsentRegistry.open(
        ":memory:", PseudonymKey.generate(), default_budget=PrivacyBudget(2.0, 1e-5)
    )
    devices = {}
    for i in range(16):
        x = rng.normal(size=(2 * n, dim))
        y = (x @ w > 0).astype(np.int64)
        flip = rng.random(2 * n) < 0.2
        y[flip] = 1 - y[flip]
        p = reg.opt_in(f"u{i}", Purpose.TRAINING)
        devices[p] = Device(p, x[:n], y[:n], x[n:], y[n:])
    cfg = FedAvgConfig(
        rounds=5,
        local=LocalTraining(epochs=20, learning_rate=1.0),
        aggregator="secagg+" if dp else "plain",
        clip=100.0,
        threat=ThreatModel(),
        dp=DpSettings(noise_multiplier=5.0, l2_clip=5.0, delta=1e-5) if dp else None,
    )
    result = FedAvgTrainer(reg, devices, cfg, rng=rng).fit()
    assert result.completed_rounds == 5
    members, non_members = device_losses(devices.values(), result.params)
    eps = result.epsilon if dp else math.inf
    return membership_report(members, non_members, epsilon=eps, delta=1e-5, rng=rng), eps


def test_dp_lowers_membership_advantage_below_the_bound() -> None:
    with_dp, without = [], []
    for seed in range(8):
        rep_dp, eps = _overfit_run(seed, dp=True)
        rep_plain, _ = _overfit_run(seed, dp=False)
        assert eps <= 2.0  # the setting of the claim: epsilon <= 2
        assert rep_dp.within_bound  # both attacks below (e^eps - 1 + 2 delta) / (e^eps + 1)
        with_dp.append(rep_dp.yeom.advantage)
        without.append(rep_plain.yeom.advantage)
    # One-sided paired test over the seeds: the advantage with DP is lower.
    test = stats.ttest_rel(without, with_dp, alternative="greater")
    assert test.pvalue < 0.05
    assert np.mean(without) > 0.1  # the setting does overfit
