"""DP-encoded ring elements through the multi-process drivers (TCP processes, Ray pool).

The configuration blob the drivers ship carries the distributed-DP parameters; each run's
aggregate is checked against numpy's sum modulo 2^b of the survivors' encoded vectors.
"""

from __future__ import annotations

import numpy as np
import pytest

from securecomp.dp import DistributedDpConfig, decode_sum, encode_update
from securecomp.secagg import SecAggConfig, Stage, dropouts, run_tcp

pytestmark = pytest.mark.timeout(300)


def encoded_round(n: int, min_survivors: int) -> tuple[DistributedDpConfig, SecAggConfig, list]:
    dp = DistributedDpConfig.create(
        "skellam",
        dim=12,
        l2_clip=1.0,
        noise_stddev=0.5,
        scale=32.0,
        n_clients=n,
        min_survivors=min_survivors,
    )
    cfg = SecAggConfig.for_distributed_dp(dp, protocol="secagg")
    rotation = dp.rotation(b"r" * 32, session=cfg.session, round=0)
    xs = np.random.default_rng(n).normal(scale=0.3, size=(n, 12))
    return dp, cfg, [encode_update(x, dp, rotation).values for x in xs]


def modular_sum(values: list[np.ndarray], survivors, mask: int) -> np.ndarray:
    total = np.sum(np.stack([values[u] for u in survivors]), axis=0, dtype=np.uint64)
    return np.asarray(total & np.uint64(mask), dtype=np.uint64)


def test_tcp_processes_aggregate_dp_encoded_vectors() -> None:
    dp, cfg, values = encoded_round(5, 4)
    out = run_tcp(cfg, values, stage_timeout=30.0)
    assert out.survivors == (0, 1, 2, 3, 4)
    assert np.array_equal(out.aggregate, modular_sum(values, out.survivors, dp.mask))
    assert out.report.metrics["inputs"] == "distributed-dp"
    rotation = dp.rotation(b"r" * 32, session=cfg.session, round=0)
    assert decode_sum(out.aggregate, dp, rotation).shape == (12,)


def test_ray_pool_aggregates_dp_encoded_vectors_with_dropouts(
    request: pytest.FixtureRequest,
) -> None:
    ray = pytest.importorskip("ray")
    from securecomp.secagg import SecAggRayPool

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        request.addfinalizer(ray.shutdown)
    dp, cfg, values = encoded_round(12, 9)
    faults = dropouts({Stage.MASKED_INPUT_COLLECTION: [3], Stage.UNMASKING: [7]})
    with SecAggRayPool(2) as pool:
        out = pool.run(cfg, values, faults=faults)
    survivors = tuple(u for u in range(12) if u != 3)
    assert out.survivors == survivors
    assert np.array_equal(out.aggregate, modular_sum(values, survivors, dp.mask))
    assert out.report.metrics["log2_wrap_probability"] == dp.log2_wrap_probability
