"""The hybrid example: CKKS linear layer, conversion, MPC ReLU, result to the client."""

from __future__ import annotations

import numpy as np

from securecomp.hybrid.example import main, run_example


def test_example_matches_numpy_within_the_stated_precision() -> None:
    res = run_example(n_samples=6, n_features=3, n_outputs=2, rng=np.random.default_rng(5))
    x_w_b = res.expected
    assert res.output.shape == (6, 2)
    assert res.ok and res.max_error <= res.precision < 0.1
    np.testing.assert_allclose(res.output, x_w_b, atol=res.precision)
    # ReLU really ran: some outputs are clipped to exactly zero, as numpy's are.
    assert np.any(x_w_b == 0.0) and np.all(res.output[x_w_b == 0.0] <= res.precision)
    # What the client learned is on record: masked values, then the revealed output.
    learned = [e.what for e in res.report.leakage.by_party()[0]]
    assert any("mask" in w for w in learned) and any("value of shape (6, 2)" in w for w in learned)
    assert res.report.metrics["dealer"].startswith("in-process")


def test_example_command_line_exits_zero(capsys) -> None:
    assert main(["--samples", "4", "--features", "2", "--outputs", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "stated precision" in out
