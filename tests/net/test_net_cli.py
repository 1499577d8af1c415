"""``securecomp inspect FILE``."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import pytest

from securecomp.net import Envelope, encode_envelope, seal_envelope
from securecomp.net.cli import register_cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="securecomp")
    register_cli(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


ENV = Envelope(
    "paillier.ciphertext", "paillier-3072", b"\xaa" * 8, b"k1", b"sess", 7, 0, "server", b"x"
)


def test_inspect_prints_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "msg.scmp"
    f.write_bytes(encode_envelope(ENV))
    assert run(["inspect", str(f)]) == 0
    out = capsys.readouterr().out
    assert "paillier.ciphertext" in out and "server" in out and "aa" * 8 in out
    f.write_bytes(seal_envelope(ENV, bytes(32)))
    assert run(["inspect", "--json", str(f)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sealed"] is True and info["round"] == 7 and info["recipient"] == "server"


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", pickle.dumps({"kind": "array"}), encode_envelope(ENV)[:-1]],
    ids=["empty", "garbage", "pickle", "truncated"],
)
def test_inspect_invalid_exits_2(
    data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.bin"
    f.write_bytes(data)
    assert run(["inspect", str(f)]) == 2
    err = capsys.readouterr().err
    assert "invalid envelope" in err


def test_inspect_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["inspect", str(tmp_path / "nope")]) == 1
    assert "cannot read" in capsys.readouterr().err
