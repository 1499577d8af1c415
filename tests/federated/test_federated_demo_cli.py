"""``securecomp demo`` and ``securecomp bench`` as subprocesses, the scenario, the progress bar."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from securecomp.federated import bench_cli
from securecomp.federated.progress import Progress

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def test_demo_quick_writes_report_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run("-m", "securecomp.cli", "demo", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for needle in ("UTILITY", "PRIVACY", "COST", "CONSENT", "bytes per client per round",
                   "users who withdrew", "records purged", "self-checks: 10/10 passed"):
        assert needle in text
    assert "demo [" in proc.stderr  # the progress bar
    report = json.loads((out / "report.json").read_text())
    assert report["simulation"] is True
    assert all(report["checks"].values())
    assert report["consent"]["withdrew"] == 2 and report["consent"]["records_purged"] > 0
    assert report["personalization"]["mean_personalized"] > report["personalization"][
        "mean_global"
    ]
    assert 0 < report["privacy"]["epsilon_max"] < report["config"]["budget_epsilon"]
    assert report["cost"]["bytes_sent_per_client_per_round"] > 0
    assert report["inference"]["server_holds_secret_key"] is False
    names = ("accuracy_per_round.png", "epsilon_per_round.png", "accuracy_per_user.png")
    for name in names:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC
    image = pytest.importorskip("matplotlib.image")
    for name in names:
        pixels = image.imread(out / name)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100


@pytest.mark.parametrize(
    "args,status,message",
    [
        (["--seed", "-1"], 2, "seed"),
        (["--seed", "x"], 2, "seed"),
        (["--tour", "--quick"], 2, "--tour takes no"),
        (["--bogus"], 2, "unrecognized arguments"),
    ],
)
def test_demo_bad_arguments_fail_clearly(args: list[str], status: int, message: str) -> None:
    proc = _run("-m", "securecomp.cli", "demo", *args)
    assert proc.returncode == status
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_out_pointing_to_a_file_fails(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("not a folder")
    proc = _run("-m", "securecomp.cli", "demo", "--quick", "--out", str(target))
    assert proc.returncode == 1
    assert "is a file" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_smoke_prints_the_ratio_table(tmp_path: Path) -> None:
    # Run from elsewhere: the benchmarks folder of the source tree is found anyway.
    proc = _run("-m", "securecomp.federated.bench_cli", "secagg", "--smoke", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "ours vs baselines" in proc.stdout
    assert "ours/baseline" in proc.stdout


@pytest.mark.skipif(
    "bench" not in {ep.name for ep in entry_points(group="securecomp.commands")},
    reason="the bench entry point is not installed in this environment",
)
def test_bench_is_a_securecomp_subcommand() -> None:
    proc = _run("-m", "securecomp.cli", "bench", "--help")
    assert proc.returncode == 0 and "--smoke" in proc.stdout


def test_bench_without_benchmarks_folder_fails(tmp_path: Path) -> None:
    proc = _run("-m", "securecomp.federated.bench_cli", "he", "--smoke", "--dir",
                str(tmp_path / "missing"))
    assert proc.returncode == 1
    assert "no benchmarks folder" in proc.stderr and "Traceback" not in proc.stderr
    bad = _run("-m", "securecomp.federated.bench_cli", "nonsense")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_bench_without_pytest_benchmark_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = bench_cli.importlib.util.find_spec
    monkeypatch.setattr(
        bench_cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pytest_benchmark" else real(name, *a),
    )
    assert bench_cli.main(["he", "--smoke"]) == 1
    assert "pytest-benchmark is not installed" in capsys.readouterr().err


def test_bench_command_lines() -> None:
    folder = bench_cli.find_benchmarks(REPO / "benchmarks")
    cmd = bench_cli.bench_command(folder, "he", smoke=True)
    files = [Path(c).name for c in cmd if c.endswith(".py")]
    assert files and all(f.startswith("bench_he") for f in files)
    assert "--benchmark-only" in cmd and "-k" in cmd
    full = bench_cli.bench_command(folder, "all", smoke=False)
    assert "-k" not in full
    assert len([c for c in full if c.endswith(".py")]) >= len(files)


def test_progress_bar_lines_and_terminal() -> None:
    stream = io.StringIO()
    with Progress(4, "demo", stream=stream) as bar:
        bar.step("one")
        bar.step("two")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "1/4" in lines[0] and lines[1].endswith("two")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    with Progress(2, "x", stream=tty) as bar:
        for _ in range(5):
            bar.step()
    assert tty.getvalue().count("\r") == 5 and "2/2" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
    silent = io.StringIO()
    Progress(3, stream=silent, enabled=False).step("x")
    assert silent.getvalue() == ""
