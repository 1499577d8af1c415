"""Real processes over loopback TCP: the same programs, and faults, across process boundaries."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from securecomp.mpc import Session, run_dealer, run_party
from securecomp.mpc.cli import main
from securecomp.mpc.launch import ProcessRun, free_ports, run_processes
from securecomp.net import make_test_tls_configs

pytestmark = pytest.mark.tcp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENV = {"PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")])}


def launch(program: str, parties: int, **kw: object) -> ProcessRun:
    env = dict(ENV)
    env.update(kw.pop("env", {}))  # type: ignore[arg-type]
    run = run_processes(f"mpc_programs:{program}", parties, env=env, **kw)  # type: ignore[arg-type]
    assert all(code is not None for code in run.returncodes)  # every process has exited
    return run


@pytest.mark.parametrize("parties", [2, 3])
def test_arithmetic_across_processes_matches_numpy(parties: int) -> None:
    rng = np.random.default_rng(parties)
    x, y = rng.uniform(-4, 4, (3, 4)), rng.uniform(-4, 4, (3, 4))
    inputs = [x, y] + [None] * (parties - 2)
    run = launch("arith", parties, inputs=inputs)
    assert run.returncodes == [0] * (parties + 1), run.stderr
    for i, out in enumerate(run.parties):
        res = out["result"]
        np.testing.assert_allclose(res["add"], x + y, atol=1e-4)
        np.testing.assert_allclose(res["mul"], x * y, atol=1e-3)
        np.testing.assert_allclose(res["matmul"], x @ y.T, atol=1e-3)
        np.testing.assert_allclose(res["sum"], (x - y).sum(axis=0), atol=1e-4)
        np.testing.assert_array_equal(res["lt"], (x < y).astype(float))
        np.testing.assert_allclose(res["relu"], np.maximum(x, 0), atol=1e-4)
        if i == 1:
            np.testing.assert_allclose(res["to_party_1"], 2 * x, atol=1e-4)
        else:
            assert res["to_party_1"] is None
        comm = out["report"]["comm"]
        assert comm["per_phase"]["online"]["bytes_sent"] > 0
        assert comm["per_phase"]["offline"]["bytes_received"] > 0  # the seed, at least
    assert run.dealer["stats"]["bytes_sent"] > 0


@pytest.mark.parametrize("victim", [1, 2])
def test_killed_party_is_named_by_every_other_party(victim: int) -> None:
    run = launch("killed", 3, timeout=5.0, env={"SECURECOMP_TEST_VICTIM": str(victim)}, wait=60)
    assert run.returncodes[1 + victim] == -9
    for p in range(3):
        if p != victim:
            out = run.parties[p]
            assert out["error_type"] == "PartyTimeoutError", out
            assert out["error_party"] == victim
    assert not run.killed  # nobody hung: everyone noticed and exited by itself


def test_silent_party_times_out_and_nothing_is_left_behind() -> None:
    run = launch("silent", 3, timeout=1.5, env={"SECURECOMP_TEST_VICTIM": "1"}, wait=30, grace=3)
    for p in (0, 2):
        assert run.parties[p]["error_type"] == "PartyTimeoutError"
        assert run.parties[p]["error_party"] == 1
    assert "party 1" in run.killed  # the silent process had to be stopped by the launcher


def test_mismatched_shapes_from_a_peer_across_processes() -> None:
    run = launch("mismatched", 2, timeout=5.0)
    for out in run.parties:
        assert out["error_type"] == "ShapeMismatchError"


def _square(sess: Session, mine: np.ndarray) -> np.ndarray | None:
    t = sess.share(mine if sess.party_id == 0 else None, bound=8)
    return sess.reveal(t * t)


def test_mutual_tls_session_with_dealer_in_threads() -> None:
    """run_party / run_dealer over TLS 1.3 with pinned certificates (threads, loopback)."""
    ports = free_ports(4)
    peers = [f"127.0.0.1:{p}" for p in ports[:2]]
    dealer_addrs = [f"127.0.0.1:{p}" for p in ports[2:]]
    mesh = make_test_tls_configs(2)
    links = [make_test_tls_configs(2) for _ in range(2)]  # per link: [dealer, party]
    sid = b"tls-session-0001"
    x = np.array([1.5, -2.0, 3.25])
    results: dict[int, object] = {}

    def dealer() -> None:
        run_dealer(dealer_addrs, session_id=sid, tls=[cfg[0] for cfg in links], timeout=10)

    def party(i: int) -> None:
        outcome, _ = run_party(
            _square, i, peers, dealer_addrs[i], session_id=sid, my_input=x, has_input=True,
            tls=mesh[i], dealer_tls=links[i][1], timeout=10,
        )  # fmt: skip
        results[i] = outcome.result

    threads = [threading.Thread(target=dealer)]
    threads += [threading.Thread(target=party, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(2):
        np.testing.assert_allclose(np.asarray(results[i]), x * x, atol=1e-3)


def test_cli_reports_bad_arguments_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["party", "--id", "0", "--peers", "127.0.0.1:1,127.0.0.1:2", "--dealer", "127.0.0.1:3",
         "--session", "00" * 16, "--program", "no_such_module:f"]
    )  # fmt: skip
    assert code == 2
    out = json.loads(capsys.readouterr().out)
    assert out["error_type"] == "ParameterError" and "no_such_module" in out["error"]
    assert main(["dealer", "--listen", "127.0.0.1:1,127.0.0.1:2", "--session", "zz"]) == 2
