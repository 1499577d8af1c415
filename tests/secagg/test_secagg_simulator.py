"""The in-process driver: fault injection, determinism, and the cost report."""

from __future__ import annotations

import numpy as np
import pytest
from secagg_fixtures import expected_sum, make_config, make_inputs

from securecomp.errors import ParameterError
from securecomp.secagg import (
    Fault,
    FaultKind,
    SecAggClient,
    SecAggSimulation,
    Stage,
    decode_message,
    dropouts,
    encode_message,
    simulate,
)


@pytest.fixture(scope="module")
def setup():
    cfg = make_config(7, dim=10, threshold=4)
    return cfg, make_inputs(cfg, 3)


@pytest.mark.parametrize("stage", list(Stage))
def test_delayed_upload_is_rejected_late_and_counts_as_dropout(setup, stage) -> None:
    cfg, xs = setup
    out = simulate(cfg, xs, faults=[Fault(FaultKind.DELAY, stage, 2)])
    survivors = tuple(u for u in range(7) if u != 2 or stage is Stage.UNMASKING)
    assert out.survivors == survivors
    assert np.array_equal(out.aggregate, expected_sum(cfg, xs, survivors))
    late = [r for r in out.rejected if r.sender == 2]
    assert late and all(r.error == "ReplayError" for r in late)


@pytest.mark.parametrize("stage", list(Stage)[:3])
def test_dropped_or_delayed_server_message_makes_the_client_drop(setup, stage) -> None:
    cfg, xs = setup
    for kind in (FaultKind.DROP, FaultKind.DELAY):
        out = simulate(cfg, xs, faults=[Fault(kind, stage, 5, direction="down")])
        if stage is Stage.MASKED_INPUT_COLLECTION:
            # Client 5 sent its masked input but never receives the unmask request.
            assert 5 in out.survivors
        else:
            assert 5 not in out.survivors
        assert np.array_equal(out.aggregate, expected_sum(cfg, xs, out.survivors))


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("stage", list(Stage)[:3])
def test_duplicates_are_rejected_and_harmless(setup, stage, direction) -> None:
    cfg, xs = setup
    out = simulate(cfg, xs, faults=[Fault(FaultKind.DUPLICATE, stage, 1, direction=direction)])
    assert out.survivors == tuple(range(7))
    assert np.array_equal(out.aggregate, expected_sum(cfg, xs, range(7)))
    assert len(out.rejected) == 1 and out.rejected[0].error == "ReplayError"


def test_reordering_is_deterministic_and_harmless(setup) -> None:
    cfg, xs = setup
    faults = dropouts({Stage.SHARE_KEYS: [0], Stage.UNMASKING: [6]})
    a = simulate(cfg, xs, faults=faults, reorder=True, seed=11)
    b = simulate(cfg, xs, faults=faults, reorder=True, seed=11)
    assert np.array_equal(a.aggregate, b.aggregate)
    assert a.survivors == b.survivors == (1, 2, 3, 4, 5, 6)
    assert np.array_equal(a.aggregate, expected_sum(cfg, xs, a.survivors))
    ma, mb = a.report.metrics, b.report.metrics
    assert ma["bytes_per_client"] == mb["bytes_per_client"]


def test_report_counts_bytes_per_client_and_stage(setup) -> None:
    cfg, xs = setup
    sim = SecAggSimulation(cfg, xs, faults=dropouts({Stage.MASKED_INPUT_COLLECTION: [3]}))
    out = sim.run()
    rep = out.report
    m = rep.metrics
    assert m["simulation"] is True and "simulation" in rep.protocol
    assert m["survivors"] == 6 and m["dropped"]["masked_input_collection"] == [3]
    per = m["bytes_per_client"]
    assert set(per) == {str(u) for u in range(7)}
    for u in range(7):
        stages = per[str(u)]["per_stage_sent"]
        assert sum(stages.values()) == per[str(u)]["sent"]
    # Client 3's masked input was sent but lost: it is asked for nothing afterwards.
    assert "unmasking" not in per["3"]["per_stage_sent"]
    lost = per["3"]["per_stage_sent"]["masked_input_collection"]
    # Totals: everything sent was received, except the lost message.
    comm = rep.comm
    assert comm is not None and comm.bytes_sent - comm.bytes_received == lost
    total_up = sum(v["clients_sent"] for v in m["bytes_per_stage"].values())
    assert total_up == sum(per[str(u)]["sent"] for u in range(7))
    # A masked input costs its bit-packed size plus a fixed envelope.
    masked = per["0"]["per_stage_sent"]["masked_input_collection"]
    assert (cfg.dim * cfg.bits + 7) // 8 < masked < (cfg.dim * cfg.bits + 7) // 8 + 256
    assert rep.rounds == 7  # 4 uploads + 3 broadcasts on the critical path
    whats = [e.what for e in rep.leakage]
    assert any("sum of the inputs of the 6 surviving clients" in w for w in whats)
    assert any("dropped at masked_input_collection: [3]" in w for w in whats)
    assert "leakage" in rep.summary()


def test_byte_counts_equal_encoded_sizes(setup) -> None:
    cfg, xs = setup
    sim = SecAggSimulation(cfg, xs)
    sim.run()
    # A fresh AdvertiseKeys has the same size as the one sent (fixed-size fields).
    msg = SecAggClient(cfg, 0, xs[0]).advertise_keys()
    size = len(encode_message(msg))
    assert decode_message(encode_message(msg)) == msg
    report = sim.report
    assert report is not None
    assert report.metrics["bytes_per_client"]["0"]["per_stage_sent"]["advertise_keys"] == size


def test_bad_simulation_arguments(setup) -> None:
    cfg, xs = setup
    with pytest.raises(ParameterError):
        SecAggSimulation(cfg, xs[:-1])
    with pytest.raises(ParameterError):
        SecAggSimulation(cfg, xs, faults=[Fault(FaultKind.DROP, Stage.SHARE_KEYS, 99)])
    with pytest.raises(ParameterError):
        Fault(FaultKind.DROP, Stage.UNMASKING, 0, direction="down")
    with pytest.raises(ParameterError):
        Fault("explode", Stage.UNMASKING, 0)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        dropouts({"no-such-stage": [1]})
