"""`securecomp params check|plan` through register_cli, as the main CLI wires it."""

from __future__ import annotations

import argparse

import pytest

from securecomp.params import CKKSParameters, plan_ckks, register_cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="securecomp")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_check_valid_chain(capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["params", "check", "--n", "8192", "--chain", "60,40,40,60", "--scale", "40"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "total log2 q: 200 (max 218" in out
    assert "about 128-bit" in out
    assert "rescale 2:" in out
    assert "verdict:      OK" in out
    assert CKKSParameters(8192, (60, 40, 40, 60), 40).fingerprint_hex in out


def test_check_reports_drift_per_level(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["params", "check", "--n", "8192", "--chain", "31,26,26,26,26,26,26,31"]
    rc = run([*argv, "--scale", "26"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "rescale 6:" in out and "cumulative drift +2.83" in out
    rc = run([*argv, "--scale", "26", "--drift-tolerance", "0.01"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "INVALID: scale drift" in captured.out
    assert "error: scale drift" in captured.err
    assert run([*argv, "--scale", "26", "--depth", "3", "--drift-tolerance", "0.01"]) == 0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--n", "1000", "--chain", "60,40,60", "--scale", "40"], "power of two"),
        (["--n", "8192", "--chain", "60,61,60", "--scale", "40"], "2 to 60 bits"),
        (["--n", "4096", "--chain", "60,40,60", "--scale", "40"], "exceeds 109"),
        (["--n", "8192", "--chain", "60,30,60", "--scale", "40"], "middle prime"),
        (["--n", "8192", "--chain", "60,40,60", "--scale", "40", "--depth", "2"], "depth 2"),
    ],
)
def test_check_invalid(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["params", "check", *argv]) == 1
    captured = capsys.readouterr()
    assert message in captured.err
    assert "INVALID" in captured.out


def test_check_rejects_malformed_chain(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(["params", "check", "--n", "8192", "--chain", "60,x", "--scale", "40"])
    assert "comma-separated" in capsys.readouterr().err


def test_plan(capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["params", "plan", "--depth", "2", "--precision", "1e-3", "--bound", "10"])
    out = capsys.readouterr().out
    want = plan_ckks(2, 1e-3, 10.0)
    chain = ",".join(map(str, want.coeff_mod_bit_sizes))
    assert rc == 0
    assert f"--n {want.poly_modulus_degree} --chain {chain} --scale {want.scale_bits}" in out
    assert "predicted:" in out


def test_plan_failure(capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["params", "plan", "--depth", "20", "--precision", "1e-4", "--bound", "1"])
    assert rc == 1
    assert "N > 32768" in capsys.readouterr().err


def test_subcommand_required() -> None:
    with pytest.raises(SystemExit):
        run(["params"])
