"""The demo: the tour's protocols compute what numpy computes, the scenario's report and exit
status, and the CLI wiring of every subcommand."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from securecomp.cli import build_parser, main
from securecomp.demo import secure_sum_by_sharing


@pytest.mark.parametrize("n", [2, 3, 5])
def test_secure_sum_by_sharing_matches_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    inputs = [rng.normal(0, 100, size=257) for _ in range(n)]
    got, report = secure_sum_by_sharing(inputs, frac_bits=16)
    # Each input is rounded to the nearest multiple of 2^-16 once.
    assert np.max(np.abs(got - np.sum(inputs, axis=0))) <= n * 2.0**-17 + 1e-12
    # n(n-1) share messages and n(n-1) partial sums; two dependent layers.
    assert report.comm is not None
    assert report.comm.messages_sent == 2 * n * (n - 1)
    assert report.rounds == 2
    assert len(report.leakage) == n


def test_secure_sum_refuses_out_of_range_inputs() -> None:
    from securecomp.errors import EncodingOverflowError

    with pytest.raises(EncodingOverflowError):
        secure_sum_by_sharing([np.array([np.nan]), np.array([1.0])])


def test_cli_registers_subcommands() -> None:
    help_text = build_parser().format_help()
    for command in ("demo", "params", "inspect"):
        assert command in help_text


def test_cli_without_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_console_script_rejects_bad_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "securecomp.cli", "params", "check", "--n", "1000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip()


def test_demo_runs_every_section_and_matches_numpy(capsys: pytest.CaptureFixture[str]) -> None:
    from securecomp.demo import run_tour

    assert run_tour(seed=1) == 0
    out = capsys.readouterr().out
    assert "3/3 sections matched numpy" in out and "MISMATCH" not in out


def test_demo_help_lists_the_scenario_options() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["demo"]  # type: ignore[union-attr]
    text = sub.format_help()
    for option in ("--quick", "--out", "--tour", "--seed", "--no-progress"):
        assert option in text


@pytest.fixture(scope="module")
def quick_report() -> dict:
    from securecomp.federated.scenario import ScenarioConfig, run_scenario

    return run_scenario(ScenarioConfig.quick(seed=3)).to_dict()


def test_render_report_shows_utility_privacy_cost_consent(quick_report: dict) -> None:
    from securecomp.demo import render_report

    text = render_report(quick_report)
    for needle in ("UTILITY", "PRIVACY", "COST", "CONSENT", "epsilon spent",
                   "bytes per client per round", "records purged", "users who withdrew"):
        assert needle in text
    checks = quick_report["checks"]
    assert f"self-checks: {len(checks)}/{len(checks)} passed" in text
    broken = {**quick_report, "checks": {**checks, "encrypted scores match plaintext": False}}
    assert "FAILED: encrypted scores match plaintext" in render_report(broken)


def test_scenario_demo_exits_1_when_a_self_check_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import securecomp.federated.scenario as scenario
    from securecomp.demo import run_scenario_demo

    real = scenario.run_scenario

    def failing(cfg: scenario.ScenarioConfig, **kwargs: object) -> scenario.ScenarioReport:
        report = real(cfg, **kwargs)  # type: ignore[arg-type]
        report.checks["personalized beats global on average"] = False
        return report

    monkeypatch.setattr(scenario, "run_scenario", failing)
    assert run_scenario_demo(quick=True, progress=False) == 1
    assert "FAILED: personalized beats global" in capsys.readouterr().out
