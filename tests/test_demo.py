"""The demo's protocols compute what numpy computes, and the CLI wires every subcommand."""

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
    from securecomp.demo import run_demo

    assert run_demo(seed=1) == 0
    out = capsys.readouterr().out
    assert "3/3 sections matched numpy" in out and "MISMATCH" not in out
