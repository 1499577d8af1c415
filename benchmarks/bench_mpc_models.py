"""MPC model training: one epoch of logistic regression on shares against its float64 floor.

Run with ``python -m pytest benchmarks/bench_mpc_models.py --benchmark-only -s``.

* ``logistic_epoch_breast_cancer[dealer|local]``: one epoch of SecureML-style training
  (`securecomp.mpc.models.MPCProtocol`, 2 parties, mini-batches of 64, Nesterov, the
  piecewise sigmoid) on breast cancer (569 x 30, standardized, the 75% training split of
  seed 0: 426 rows, 7 steps), end to end: starting the parties and the dealer (threads of
  this process over in-memory channels: a simulation), secret-sharing the rows, fetching
  the material, the 7 steps and revealing the model. ``__floor`` is the same algorithm in
  float64 numpy (`reference_fit`: same batches, steps and sigmoid): the ratio is the price
  of computing on shares, without network latency. Float64 has no truncation, so
  ``__floor[dealer]`` and ``__floor[local]`` time the same computation (the plan they
  follow differs only in its ``truncation`` field, which `reference_fit` does not read);
  the floor is parametrized only so that the summary table pairs it with each
  ``__ours[...]`` row (rows are matched by parameter id). The communication of one epoch
  (`CommStats` of the run: online bytes per party, online rounds, dealer bytes) and its
  LAN/WAN projection (`CostReport.projected`) are printed beside the times.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from securecomp.models.protocol import TrainingSpec
from securecomp.models.validation import step_size
from securecomp.mpc.models import MPCProtocol, reference_fit
from securecomp.net.costmodel import LAN, WAN

BATCH = 64


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    return StandardScaler().fit_transform(Xtr), ytr.astype(np.float64)


def _spec(X: np.ndarray, truncation: str) -> TrainingSpec:
    return TrainingSpec(
        task="logistic",
        optimizer="nesterov",
        learning_rate=step_size(X, task="logistic", fit_intercept=True, l2=0.0),
        max_iter=1,
        batch_size=BATCH,
        random_state=0,
        options={"parties": 2, "truncation": truncation},
    )


@pytest.mark.benchmark(group="logistic_epoch_breast_cancer")
@pytest.mark.parametrize("truncation", ["dealer", "local"])
def test_logistic_epoch__ours(benchmark: Any, data: Any, truncation: str) -> None:
    X, y = data
    proto = MPCProtocol(_spec(X, truncation))
    fitted = benchmark.pedantic(proto.fit, args=(X, y), rounds=7, warmup_rounds=1)
    ref = reference_fit(proto.make_plan(*X.shape), X, y)
    assert np.max(np.abs(fitted.coef - ref.coef)) < 1e-2
    report = fitted.report
    comm = report.comm
    assert comm is not None
    online = comm.per_phase["online"]
    offline = comm.per_phase.get("offline")
    steps = int(report.metrics["steps"])
    info = {
        "steps": steps,
        "online_bytes_per_party": online.bytes_sent // 2,
        "online_rounds": online.rounds,
        "online_rounds_per_step": round(online.rounds / steps, 2),
        "dealer_bytes": offline.bytes_sent if offline is not None else 0,
        "projected_lan_s": round(report.projected(LAN), 4),
        "projected_wan_s": round(report.projected(WAN), 4),
    }
    benchmark.extra_info.update(info)
    print(
        f"\none epoch, 2 parties, {truncation} truncation: {steps} steps; CommStats online "
        f"{info['online_bytes_per_party'] / 1e6:.2f} MB sent per party, {online.rounds} rounds "
        f"({info['online_rounds_per_step']} per step); dealer {info['dealer_bytes'] / 1e3:.1f} kB"
        f"; projected LAN {info['projected_lan_s'] * 1e3:.1f} ms, WAN "
        f"{info['projected_wan_s']:.2f} s"
    )


@pytest.mark.benchmark(group="logistic_epoch_breast_cancer")
@pytest.mark.parametrize("truncation", ["dealer", "local"])
def test_logistic_epoch__floor(benchmark: Any, data: Any, truncation: str) -> None:
    # ``truncation`` only names the ours[...] row this one is paired with: the float64 fit
    # is one and the same for both, so the plan is built without it.
    X, y = data
    plan = MPCProtocol(_spec(X, "dealer")).make_plan(*X.shape)
    paired = MPCProtocol(_spec(X, truncation)).make_plan(*X.shape)
    for field in fields(plan):  # nothing but the truncation differs
        mine, theirs = getattr(plan, field.name), getattr(paired, field.name)
        if field.name != "truncation":
            assert np.array_equal(mine, theirs) if field.name == "perm" else mine == theirs
    ref = benchmark.pedantic(reference_fit, args=(plan, X, y), rounds=50, warmup_rounds=2)
    assert ref.steps == plan.n_steps
