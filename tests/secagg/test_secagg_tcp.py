"""The TCP driver: server here, each client in its own process, over loopback.

Each case runs real processes, so there are few of them; every one checks the aggregate
against numpy, the survivors, and that no client process outlives the run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from secagg_fixtures import make_config, make_inputs

from securecomp.errors import (
    ChannelClosedError,
    InsecureParameterError,
    InsufficientParticipantsError,
    MalformedMessageError,
    ParameterError,
)
from securecomp.net.tcp import PartyAddress
from securecomp.secagg import (
    FaultMode,
    ProcessFault,
    SecAggConfig,
    SecAggTCPRun,
    Stage,
    run_tcp,
)
from securecomp.secagg.driver_star import (
    HELLO,
    StarClientChannel,
    StarServerChannel,
    loopback_listener,
)
from securecomp.secagg.driver_wire import (
    decode_config,
    decode_inputs,
    encode_config,
    encode_inputs,
    pack_batch,
    unpack_batch,
)
from securecomp.secagg.tcp_worker import EXIT_FAULT, EXIT_SETUP

pytestmark = pytest.mark.timeout(120)


def numpy_sum(cfg: SecAggConfig, xs: list[np.ndarray], survivors) -> np.ndarray:
    """Sum mod 2^b in uint64 (2^b divides 2^64, so wrapping uint64 sums are exact)."""
    total = np.sum(np.stack([xs[u].astype(np.uint64) for u in survivors]), axis=0, dtype=np.uint64)
    return total & np.uint64((1 << cfg.bits) - 1)


def signed(values: np.ndarray, bits: int) -> np.ndarray:
    v = values.astype(np.int64)
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v)


def worker_children() -> list[int]:
    """Live child processes of this test process running the client entry point."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and b"securecomp.secagg.tcp_worker" in cmd:
            found.append(int(entry.name))
    return found


def assert_no_process_left(run: SecAggTCPRun) -> None:
    assert len(run.pids) == run.config.n
    assert set(run.returncodes) == set(range(run.config.n))
    assert all(code is not None for code in run.returncodes.values())
    assert worker_children() == []
    for pid in run.pids:
        assert not Path(f"/proc/{pid}").exists()


def check_aggregate(cfg: SecAggConfig, xs: list[np.ndarray], out, survivors) -> None:
    assert out.survivors == tuple(survivors)
    assert np.array_equal(out.aggregate, numpy_sum(cfg, xs, survivors))
    # Read as signed numbers, the aggregate is the exact (non-wrapping) integer sum.
    exact = np.sum(np.stack([signed(xs[u], cfg.bits) for u in survivors]), axis=0)
    assert np.array_equal(signed(out.aggregate, cfg.bits), exact)


def test_secagg_without_dropouts_over_processes() -> None:
    cfg = make_config(4, dim=12, threshold=3)
    xs = make_inputs(cfg, 21)
    run = SecAggTCPRun(cfg, xs, stage_timeout=30.0)
    out = run.run()
    check_aggregate(cfg, xs, out, range(4))
    assert_no_process_left(run)
    assert set(run.returncodes.values()) == {0}
    assert all(s.get("state") == "done" for s in run.client_status.values())
    m = out.report.metrics
    assert m["simulation"] is False and m["connected"] == list(range(4))
    assert m["aborted"] is False and m["dropped"] == {s.value: [] for s in Stage}
    # Every client sent one message per stage; the server's view of each link balances.
    for u in range(4):
        per = m["bytes_per_client"][str(u)]
        assert set(per["per_stage_sent"]) == {s.value for s in Stage}
        assert per["sent"] == sum(per["per_stage_sent"].values())
    comm = out.report.comm
    assert comm is not None and comm.bytes_sent == comm.bytes_received
    up = sum(m["bytes_per_stage"][s.value]["clients_sent"] for s in Stage)
    assert up == sum(m["bytes_per_client"][str(u)]["sent"] for u in range(4))
    # Identical clients upload identical sizes at every stage.
    assert len({m["bytes_per_client"][str(u)]["sent"] for u in range(4)}) == 1


def test_secagg_plus_silent_at_masked_input_and_exit_at_unmasking() -> None:
    cfg = make_config(8, dim=9, degree=4, threshold=3)
    assert not cfg.graph.is_complete
    xs = make_inputs(cfg, 22)
    faults = [
        ProcessFault(3, Stage.MASKED_INPUT_COLLECTION, FaultMode.SILENT),
        ProcessFault(6, Stage.UNMASKING, FaultMode.EXIT),
    ]
    run = SecAggTCPRun(cfg, xs, faults=faults, stage_timeout=3.0)
    out = run.run()
    # 3 never sent its masked input: not in the sum. 6 did, then died: still in the sum.
    check_aggregate(cfg, xs, out, [u for u in range(8) if u != 3])
    m = out.report.metrics
    assert m["dropped"]["masked_input_collection"] == [3]
    assert m["dropped"]["unmasking"] == [6]
    assert "unmasking" not in m["bytes_per_client"]["6"]["per_stage_sent"]
    assert "masked_input_collection" not in m["bytes_per_client"]["3"]["per_stage_sent"]
    assert run.returncodes[6] == EXIT_FAULT
    assert run.returncodes[3] == 0 and "silent" in run.client_status[3]["ended"]
    assert_no_process_left(run)


def test_secagg_exits_at_every_early_stage() -> None:
    cfg = make_config(6, dim=10, threshold=3)
    xs = make_inputs(cfg, 23)
    faults = [
        ProcessFault(0, Stage.ADVERTISE_KEYS),
        ProcessFault(2, Stage.SHARE_KEYS),
        ProcessFault(5, Stage.MASKED_INPUT_COLLECTION),
    ]
    run = SecAggTCPRun(cfg, xs, faults=faults, stage_timeout=30.0)
    out = run.run()
    check_aggregate(cfg, xs, out, [1, 3, 4])
    dropped = out.report.metrics["dropped"]
    assert dropped["advertise_keys"] == [0]
    assert dropped["share_keys"] == [2]
    assert dropped["masked_input_collection"] == [5]
    assert {run.returncodes[u] for u in (0, 2, 5)} == {EXIT_FAULT}
    assert_no_process_left(run)


@pytest.mark.parametrize("degree", [None, 2])
def test_too_few_survivors_abort_without_output(degree) -> None:
    cfg = make_config(5, dim=8, degree=degree, threshold=3)
    xs = make_inputs(cfg, 24)
    faults = [ProcessFault(u, Stage.MASKED_INPUT_COLLECTION) for u in (1, 2, 4)]
    run = SecAggTCPRun(cfg, xs, faults=faults, stage_timeout=30.0)
    with pytest.raises(InsufficientParticipantsError) as info:
        run.run()
    assert info.value.stage == Stage.MASKED_INPUT_COLLECTION.value
    assert run.server.aborted and run.server.result is None
    assert run.report is not None and run.report.metrics["aborted"] is True
    assert not any("sum of the inputs" in e.what for e in run.report.leakage)
    assert_no_process_left(run)


def test_bad_arguments_are_refused_before_any_process_starts() -> None:
    cfg = make_config(3, dim=4, threshold=2)
    xs = make_inputs(cfg, 25)
    with pytest.raises(ParameterError):
        run_tcp(cfg, xs[:2])
    with pytest.raises(ParameterError):
        run_tcp(cfg, xs, faults=[ProcessFault(7, Stage.UNMASKING)])
    with pytest.raises(ParameterError):
        run_tcp(cfg, xs, faults=[ProcessFault(1, Stage.UNMASKING)] * 2)
    with pytest.raises(ParameterError):
        ProcessFault(1, "nonsense")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        run_tcp(cfg, [x.astype(np.int64) for x in xs])
    with pytest.raises(ParameterError):
        run_tcp(cfg, xs, stage_timeout=0)
    assert worker_children() == []


# --- what the driver ships besides protocol messages -----------------------------------------


@pytest.mark.parametrize("degree", [None, 4])
def test_config_travels_as_bytes_and_rebuilds_the_same_graph(degree) -> None:
    cfg = make_config(9, dim=7, degree=degree, threshold=3)
    back = decode_config(encode_config(cfg), cfg.fingerprint)
    assert back.fingerprint == cfg.fingerprint
    assert back.threshold == cfg.threshold and back.quantization == cfg.quantization
    assert all(back.neighbours(u) == cfg.neighbours(u) for u in range(9))
    other = make_config(9, dim=8, degree=degree, threshold=3)
    with pytest.raises(MalformedMessageError):
        decode_config(encode_config(cfg), other.fingerprint)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_config_decoder_refuses_garbage(data: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        decode_config(data, bytes(32))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12), st.integers(1, 3))
def test_batches_round_trip_and_truncation_is_refused(items: list[bytes], cut: int) -> None:
    packed = pack_batch(items)
    assert unpack_batch(packed) == items
    if packed:
        with pytest.raises(MalformedMessageError):
            unpack_batch(packed[: max(len(packed) - cut, 0)] + (b"\x01" if cut == 3 else b""))


def test_inputs_travel_as_raw_buffers() -> None:
    cfg = make_config(4, dim=5, threshold=2)
    xs = make_inputs(cfg, 26)
    ids, values = encode_inputs(cfg, [2, 0], [xs[2], xs[0]])
    back = decode_inputs(cfg, ids, values)
    assert sorted(back) == [0, 2]
    assert np.array_equal(back[2], xs[2]) and np.array_equal(back[0], xs[0])
    with pytest.raises(MalformedMessageError):
        decode_inputs(cfg, ids, values[:-1])
    with pytest.raises(MalformedMessageError):
        decode_inputs(cfg, np.asarray([2, 2], "<u4").tobytes(), values)
    with pytest.raises(MalformedMessageError):
        decode_inputs(cfg, np.asarray([2, 9], "<u4").tobytes(), values)


def test_a_client_process_refuses_an_unusable_setup() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "securecomp.secagg.tcp_worker"],
        input=b"\x93not a setup",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == EXIT_SETUP
    assert "unusable set-up" in json.loads(proc.stdout.decode().strip().splitlines()[-1])["error"]


def test_star_handshake_refuses_strangers_and_counts_each_link() -> None:
    fp = bytes(range(32))
    listener = loopback_listener(4)
    port = listener.getsockname()[1]
    stranger = socket.create_connection(("127.0.0.1", port))
    stranger.sendall(HELLO.pack(b"SAHI", 1, 0, bytes(32)))  # wrong fingerprint
    box: dict[str, StarClientChannel] = {}

    def connect() -> None:
        box["c"] = StarClientChannel(1, PartyAddress("127.0.0.1", port), fp, connect_timeout=10)

    thread = threading.Thread(target=connect)
    thread.start()
    server = StarServerChannel(listener, 2, fp, connect_timeout=1.5, timeout=5)
    thread.join()
    client = box["c"]
    try:
        assert server.connected == frozenset({1})
        client.send(0, b"up" * 10, tag="secagg")
        assert server.recv(2, tag="secagg") == b"up" * 10
        server.send(2, b"down", tag="secagg")
        assert client.recv(0, tag="secagg") == b"down"
        mirror = server.client_stats[1]
        assert mirror.bytes_sent == client.stats.bytes_sent
        assert mirror.bytes_received == client.stats.bytes_received
        assert server.client_stats[0].bytes_sent == 0
        with pytest.raises(ChannelClosedError):
            server.send(1, b"x", tag="secagg")  # client 0 never connected
    finally:
        client.close()
        server.close()
        listener.close()
        stranger.close()
    with pytest.raises(InsecureParameterError):
        loopback_listener(1, host="192.0.2.1")
