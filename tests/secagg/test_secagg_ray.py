"""The Ray driver: a pool of long-lived workers, each hosting many virtual clients.

The pool is module-scoped (workers live across rounds, as in use); the aggregate of every
run is checked against numpy on the survivors.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from secagg_fixtures import make_config, make_inputs

from securecomp.encoding import quantize
from securecomp.errors import InsufficientParticipantsError, ParameterError
from securecomp.secagg import (
    Fault,
    FaultKind,
    SecAggConfig,
    SecAggRayPool,
    Stage,
    ThreatModel,
    dropouts,
)

pytestmark = pytest.mark.timeout(300)


def numpy_sum(cfg: SecAggConfig, xs: list[np.ndarray], survivors) -> np.ndarray:
    """Sum mod 2^b in uint64 (2^b divides 2^64, so wrapping uint64 sums are exact)."""
    total = np.sum(np.stack([xs[u].astype(np.uint64) for u in survivors]), axis=0, dtype=np.uint64)
    return total & np.uint64((1 << cfg.bits) - 1)


@pytest.fixture(scope="module")
def ray_module(request: pytest.FixtureRequest):
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    if started:
        request.addfinalizer(ray.shutdown)
    return ray


@pytest.fixture(scope="module")
def pool(ray_module):
    with SecAggRayPool(2) as p:
        yield p


def test_small_round_with_dropouts_on_two_workers(pool) -> None:
    cfg = make_config(30, dim=6, threshold=16)
    xs = make_inputs(cfg, 31)
    faults = dropouts(
        {
            Stage.ADVERTISE_KEYS: [0],
            Stage.SHARE_KEYS: [17],
            Stage.MASKED_INPUT_COLLECTION: [4, 29],
            Stage.UNMASKING: [9, 20],
        }
    )
    out = pool.run(cfg, xs, faults=faults)
    survivors = [u for u in range(30) if u not in (0, 17, 4, 29)]
    assert out.survivors == tuple(survivors)
    assert np.array_equal(out.aggregate, numpy_sum(cfg, xs, survivors))
    m = out.report.metrics
    assert m["dropped"]["unmasking"] == [9, 20]
    # Many clients per worker process, never one actor per client.
    assert m["workers"] == 2 and m["clients_per_worker"] == [15, 15]
    pids = pool.worker_pids
    assert len(set(pids)) == 2
    assert len(m["bytes_per_client"]) == 30
    assert "share_keys" not in m["bytes_per_client"]["17"]["per_stage_sent"]
    comm = out.report.comm
    assert comm is not None and comm.bytes_sent == comm.bytes_received
    # Same pool, next round: fresh clients, same workers.
    again = pool.run(cfg, xs, round=1)
    assert again.survivors == tuple(range(30))
    assert np.array_equal(again.aggregate, numpy_sum(cfg, xs, range(30)))
    assert pool.worker_pids == pids


def test_thousand_virtual_clients_secagg_plus(pool) -> None:
    n, dim = 1000, 16
    cfg = SecAggConfig.create(
        n=n,
        dim=dim,
        clip=1.0,
        scale_bits=8,
        protocol="secagg+",
        threat=ThreatModel(corrupt_fraction=0.05, dropout_fraction=0.1),
    )
    assert cfg.protocol == "secagg+" and cfg.graph.degree < n - 1
    rng = np.random.default_rng(32)
    xs = [quantize(rng.uniform(-1, 1, dim), cfg.quantization, rng=rng).values for _ in range(n)]
    gone = {
        Stage.ADVERTISE_KEYS: [11, 500],
        Stage.SHARE_KEYS: [123, 999],
        Stage.MASKED_INPUT_COLLECTION: [0, 640, 641],
        Stage.UNMASKING: [7, 808],
    }
    out = pool.run(cfg, xs, faults=dropouts(gone))
    lost = {u for s in list(Stage)[:3] for u in gone[s]}
    survivors = [u for u in range(n) if u not in lost]
    assert out.survivors == tuple(survivors)
    assert np.array_equal(out.aggregate, numpy_sum(cfg, xs, survivors))
    m = out.report.metrics
    assert m["simulation"] is True and m["clients_per_worker"] == [500, 500]
    assert m["dropped"]["unmasking"] == [7, 808]
    assert len(m["bytes_per_client"]) == n


def test_a_crashed_worker_drops_its_clients_and_is_replaced(pool) -> None:
    cfg = make_config(20, dim=5, threshold=8)
    xs = make_inputs(cfg, 33)
    before = pool.worker_pids
    # Worker 1 (clients 10..19) dies when asked for the unmasking shares: its clients'
    # masked inputs are in, and the other ten hold enough shares to unmask them.
    out = pool.run(cfg, xs, crash_workers={1: Stage.UNMASKING})
    assert out.survivors == tuple(range(20))
    assert np.array_equal(out.aggregate, numpy_sum(cfg, xs, range(20)))
    assert out.report.metrics["lost_workers"] == [1]
    assert out.report.metrics["dropped"]["unmasking"] == list(range(10, 20))
    after = pool.worker_pids
    assert after[0] == before[0] and after[1] != before[1]
    # Too few left to continue: the server aborts and releases nothing.
    strict = make_config(20, dim=5, threshold=11)
    with pytest.raises(InsufficientParticipantsError) as info:
        pool.run(strict, xs, crash_workers={0: Stage.SHARE_KEYS}, round=1)
    assert info.value.stage == Stage.SHARE_KEYS.value
    assert pool.last_report is not None and pool.last_report.metrics["aborted"] is True
    assert len(pool.worker_pids) == 2


def test_unsupported_faults_are_refused(pool) -> None:
    cfg = make_config(4, dim=3, threshold=3)
    xs = make_inputs(cfg, 34)
    with pytest.raises(ParameterError):
        pool.run(cfg, xs, faults=[Fault(FaultKind.DELAY, Stage.SHARE_KEYS, 1)])
    with pytest.raises(ParameterError):
        pool.run(cfg, xs, crash_workers={5: Stage.SHARE_KEYS})
    with pytest.raises(ParameterError):
        pool.run(cfg, xs[:3])


def test_missing_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r"securecomp\[ray\]"):
        SecAggRayPool(2)
