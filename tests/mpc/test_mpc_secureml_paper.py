"""The SecureML reproduction script runs at a tiny size and its numbers are sound."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "papers" / "secureml" / "reproduce.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("secureml_reproduce", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_the_table_without_invented_figures(
    script: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert script.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "digits even/odd" in out and "synthetic" in out
    assert "not available" in out  # the paper's figures are not invented
    assert "LAN s" in out and "WAN s" in out


def test_task_matches_float64_and_counts_communication(script: ModuleType) -> None:
    data = script.synthetic_data(800, 8, seed=3)
    row, report = script.run_task(
        "synthetic", data, epochs=2, batch_size=64, truncation="local", optimizer="gd", seed=3
    )
    assert abs(row.mpc_accuracy - row.float64_accuracy) <= 0.01
    assert row.max_weight_gap < 1e-2
    assert row.steps == 2 * 10  # 600 training rows in batches of 64
    # SecureML's local truncation: 11 online rounds per step (1 + 9 + 1), plus set-up.
    assert 11 * row.steps <= row.online_rounds <= 11 * row.steps + 4
    assert row.online_mb_per_party > 0 and row.wan_s > row.lan_s > 0
    assert any(e.party == "dealer" for e in report.leakage)


def test_oversized_shapes_are_refused(script: ModuleType) -> None:
    assert script.memory_estimate(10**6, 10**4, 2, 1 << 24) > script.MEMORY_CAP_BYTES
    assert script.main(["--n", "1000000", "--d", "10000"]) == 2
