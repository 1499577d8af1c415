"""The Bonawitz et al. reproduction script runs at a tiny size and its numbers are sound."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "papers" / "bonawitz2017" / "reproduce.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bonawitz2017_reproduce", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_quick_preset_prints_every_table(script: ModuleType, capsys) -> None:
    assert script.main(["--preset", "quick"]) == 0
    out = capsys.readouterr().out
    for title in ("Table 1.", "Table 2.", "Table 3."):
        assert title in out
    assert "not available" in out  # no invented paper timings


def test_server_runs_check_the_sum_at_every_dropout_rate(script: ModuleType) -> None:
    runs = script.server_runs(12, 64, [0.0, 0.25], seed=7)
    assert [r.dropped for r in runs] == [0, 3]
    assert all(set(r.stage_seconds) == {"advertise_keys", "share_keys",
                                        "masked_input_collection", "unmasking"} for r in runs)


def test_counted_upload_matches_the_message_layout(script: ModuleType) -> None:
    n, d = 8, 1000
    sizes, _ = script.counted_upload(n, d)
    bits = script.make_config(n, d, 0.0).bits
    # The masked vector travels bit-packed: ceil(d * b / 8) bytes plus a bounded header.
    packed = (d * bits + 7) // 8
    assert packed < sizes["masked_input"] < packed + 256
    # One sealed pair of shares (108 bytes) and one 4-byte id per peer, plus a header.
    assert 112 * (n - 1) < sizes["share_keys"] < 112 * (n - 1) + 256


def test_shaped_messages_have_the_sizes_of_a_real_round(script: ModuleType) -> None:
    cfg = script.make_config(8, 512, 0.0)
    values = np.zeros(cfg.dim, dtype=cfg.dtype)
    _, real = script.client_round(script.PreparedClient(cfg, cfg.n - 1, values))
    shaped = script._shaped_messages(cfg, cfg.n - 1, values)
    assert [len(m) for m in shaped] == [len(m) for m in real]
