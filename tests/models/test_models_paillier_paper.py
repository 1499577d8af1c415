"""Smoke test of papers/batchcrypt/reproduce.py: a tiny, insecure run in a few seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "papers" / "batchcrypt" / "reproduce.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_reproduce_smoke_run_reports_both_sides() -> None:
    proc = _run(
        "--params", "400", "--sample", "60", "--bits", "512", "--value-bits", "16",
        "--insecure-smoke-test", "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "INSECURE" in result["setting"]["note"]
    packed, base = result["packed"], result["per_element"]
    # 18-bit slots: 28 per 512-bit plaintext (509 usable bits), so 15 ciphertexts for 400.
    assert packed["ciphertexts_per_holder"] == 15
    assert base["ciphertexts_per_holder"] == 400 and base["extrapolation_factor"] == 400 / 60
    assert base["bytes_per_holder"] == 400 * 128
    assert packed["bytes_per_holder"] < base["bytes_per_holder"]
    assert result["reported"]["training_speedup"] == "23x-93x"
    assert result["reported"]["communication_saving"] == "66x-101x"
    assert result["ours"]["communication_saving"] > 1


def test_reproduce_refuses_small_samples_and_keys() -> None:
    proc = _run("--params", "100", "--sample", "50", "--bits", "2048")
    assert proc.returncode != 0 and "at least 1,000" in proc.stderr
    proc = _run("--params", "100", "--sample", "1000", "--bits", "512")
    assert proc.returncode != 0 and "InsecureParameterError" in proc.stderr
