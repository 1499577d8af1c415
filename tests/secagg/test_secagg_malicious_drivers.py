"""The multi-process drivers in malicious-server mode: clients sign with identity keys
handed to their own process (TCP) or worker (Ray), and the round has five stages."""

from __future__ import annotations

import numpy as np
import pytest
from secagg_fixtures import expected_sum, make_inputs

from securecomp.crypto import Ed25519KeyPair
from securecomp.errors import ParameterError
from securecomp.secagg import (
    FaultMode,
    ProcessFault,
    SecAggConfig,
    SecAggRayPool,
    SecAggTCPRun,
    ThreatModel,
    dropouts,
)
from securecomp.secagg.identity import PinnedIdentities
from securecomp.secagg.messages import MALICIOUS_STAGES, ActiveStage, Stage

MODEL = b"sha256:driver-model"

pytestmark = pytest.mark.timeout(240)


def _config(n: int, protocol: str = "secagg") -> tuple[SecAggConfig, list[Ed25519KeyPair]]:
    keys = [Ed25519KeyPair.generate() for _ in range(n)]
    cfg = SecAggConfig.create(
        n, 9, clip=1.0, scale_bits=8, protocol=protocol,  # type: ignore[arg-type]
        threat=ThreatModel(dropout_fraction=0.1, malicious_server=True),
        identities=PinnedIdentities.from_key_pairs(keys), session=b"malicious-drivers",
    )
    return cfg, keys


def test_tcp_processes_run_the_five_stages_with_dropouts() -> None:
    cfg, keys = _config(5)
    assert cfg.threshold == 3
    xs = make_inputs(cfg, 30)
    run = SecAggTCPRun(
        cfg, xs, identities=keys, model_hash=MODEL, stage_timeout=30.0,
        faults=[ProcessFault(4, ActiveStage.CONSISTENCY_CHECK, FaultMode.EXIT)],
    )
    out = run.run()
    # Client 4 sent its masked input, then vanished before signing U3: still in the sum.
    assert out.survivors == tuple(range(5))
    assert np.array_equal(out.aggregate, expected_sum(cfg, xs, range(5)))
    m = out.report.metrics
    assert m["malicious_server"] is True
    assert m["dropped"][ActiveStage.CONSISTENCY_CHECK.value] == [4]
    assert set(m["bytes_per_stage"]) == {s.value for s in MALICIOUS_STAGES}
    assert all(run.client_status[u].get("state") == "done" for u in range(4))
    with pytest.raises(ParameterError, match="identity key pair"):
        SecAggTCPRun(cfg, xs, identities=keys[:4], model_hash=MODEL)


def test_ray_workers_host_signing_clients() -> None:
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cfg, keys = _config(80, "secagg+")
        assert cfg.graph.is_template
        xs = make_inputs(cfg, 31)
        gone = {Stage.SHARE_KEYS: [3], ActiveStage.CONSISTENCY_CHECK: [10], Stage.UNMASKING: [20]}
        with SecAggRayPool(2) as pool:
            out = pool.run(cfg, xs, identities=keys, model_hash=MODEL, faults=dropouts(gone))
        survivors = [u for u in range(cfg.n) if u != 3]
        assert out.survivors == tuple(survivors)
        assert np.array_equal(out.aggregate, expected_sum(cfg, xs, survivors))
        assert not out.client_aborts
    finally:
        if started:
            ray.shutdown()
