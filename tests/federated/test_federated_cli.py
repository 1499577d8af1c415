"""``securecomp consent report|export|revoke USER --db FILE [--key-file FILE]``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from federated_fixtures import USER_TABLES, new_registry, raw, rows_mentioning

from securecomp.federated import ConsentRegistry, PseudonymKey, Purpose
from securecomp.federated.cli import register_cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="securecomp")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Path, Path, str]:
    """A registry file with one trained-on user; returns (db, key file, pseudonym)."""
    reg, key_file = new_registry(tmp_path)
    nym = reg.opt_in("zoë", Purpose.TRAINING, Purpose.EVALUATION)
    reg.opt_in("other", Purpose.TRAINING)
    reg.record_participation(
        Purpose.TRAINING, 0, reg.select(Purpose.TRAINING, 0), epsilon=0.5, delta=1e-7
    )
    reg.close()
    return tmp_path / "consent.db", key_file, nym


def test_report(registry: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    db, key_file, nym = registry
    assert run(["consent", "report", "zoë", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert nym in out and "evaluation" in out and "not anonymity" in out
    assert "no unlearning" in out and "spent     0.5" in out
    assert (
        run(["consent", "report", "zoë", "--db", str(db), "--key-file", str(key_file), "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["rounds"] == {"training": [0]} and data["spent"]["epsilon"] == 0.5
    assert set(data["active_purposes"]) == {"training", "evaluation"}


def test_export_round_trips(
    registry: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, nym = registry
    assert run(["consent", "export", "zoë", "--db", str(db)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["user"] == {
        "user_id": "zoë",
        "pseudonym": nym,
        "enrolled_at": data["user"]["enrolled_at"],
        "budget": {"epsilon": 2.0, "delta": 1e-6},
    }
    assert [p["round"] for p in data["participation"]] == [0]
    assert json.loads(json.dumps(data)) == data


def test_revoke_and_erase(
    registry: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, nym = registry
    assert run(["consent", "revoke", "zoë", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "training, evaluation" in out and "no unlearning" in out
    with ConsentRegistry.open(db) as reg:
        assert nym not in reg.eligible(Purpose.TRAINING, 1)
    assert run(["consent", "revoke", "zoë", "--db", str(db), "--erase"]) == 0
    assert "nothing to withdraw" in capsys.readouterr().out
    conn = raw(db)
    assert rows_mentioning(conn, nym, USER_TABLES) == 0
    assert rows_mentioning(conn, "zoë", USER_TABLES) == 0
    conn.close()
    assert run(["consent", "report", "zoë", "--db", str(db)]) == 1
    assert "no records are held" in capsys.readouterr().err


def test_failures_are_clear_and_non_zero(
    registry: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, _ = registry
    missing = tmp_path / "missing.db"
    assert run(["consent", "report", "zoë", "--db", str(missing)]) == 1
    assert "no consent registry" in capsys.readouterr().err
    assert not missing.exists()

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"\x00garbage" * 512)
    for action in ("report", "export", "revoke"):
        assert run(["consent", action, "zoë", "--db", str(corrupt)]) == 1
        assert "not a usable securecomp consent registry" in capsys.readouterr().err

    other_key = tmp_path / "keys" / "other.key"
    PseudonymKey.generate().save(other_key)
    assert run(["consent", "report", "zoë", "--db", str(db), "--key-file", str(other_key)]) == 1
    assert "not this registry's" in capsys.readouterr().err
    assert (
        run(["consent", "report", "zoë", "--db", str(db), "--key-file", str(tmp_path / "nokey")])
        == 1
    )
    assert "cannot read key file" in capsys.readouterr().err
    assert run(["consent", "export", "nobody", "--db", str(db)]) == 1
    assert "no records" in capsys.readouterr().err
    assert run(["consent"]) == 2
    assert "choose an action" in capsys.readouterr().err
    for argv in (
        ["consent", "report", "zoë"],
        ["consent", "report"],
        ["consent", "delete", "zoë", "--db", str(db)],
    ):
        with pytest.raises(SystemExit) as info:
            run(argv)
        assert info.value.code == 2
        assert "usage" in capsys.readouterr().err


def _module(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "securecomp.federated.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_module_runs_as_a_subprocess(registry: tuple[Path, Path, str], tmp_path: Path) -> None:
    db, key_file, nym = registry
    ok = _module("consent", "export", "zoë", "--db", str(db), "--key-file", str(key_file))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["user"]["pseudonym"] == nym
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    bad = _module("consent", "report", "zoë", "--db", str(corrupt))
    assert bad.returncode == 1
    assert "not a usable securecomp consent registry" in bad.stderr
    assert "Traceback" not in bad.stderr
    usage = _module("consent", "revoke")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_report_of_rounds_without_dp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg, _ = new_registry(tmp_path)
    nym = reg.opt_in("ida", Purpose.TRAINING)
    reg.select(Purpose.TRAINING, 0)
    reg.record_participation(Purpose.TRAINING, 0, [nym], dp=False)
    reg.close()
    db = str(tmp_path / "consent.db")
    assert run(["consent", "report", "ida", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "spent     unbounded: 1 round without a differential-privacy guarantee" in out
    assert "remaining not meaningful" in out and "does not bound" in out
    assert run(["consent", "report", "ida", "--db", db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["spent"]["epsilon"] == "unbounded"
    assert data["remaining"] == {"epsilon": "not meaningful", "delta": "not meaningful"}
    assert data["rounds_without_dp"] == {"training": [0]}
    assert any("without a differential-privacy guarantee" in n for n in data["notices"])
