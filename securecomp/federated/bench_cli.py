"""``securecomp bench [he|mpc|secagg|all] [--smoke]``: run the benchmarks, print the ratios.

The benchmarks are the ``benchmarks/bench_<area>*.py`` files of a source checkout, run by
pytest-benchmark in a child process (``python -m pytest FILES --benchmark-only -s``);
``benchmarks/conftest.py`` prints the table of ours/baseline median ratios after the run.
Areas: ``he`` (CKKS and Paillier against TenSEAL and phe), ``mpc`` (against MPyC),
``secagg`` (against Flower's SecAgg+ primitives and numpy floors), ``all`` (every file).

``--smoke`` runs one cheap comparison per area, with a single measured round, to check in
seconds that the machinery works (not to measure anything).

Exit status: that of pytest (0 when every selected benchmark ran), 1 when the benchmarks
folder or pytest-benchmark is missing or nothing was selected, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["AREAS", "SMOKE_SELECTION", "bench_command", "find_benchmarks", "main", "register_cli"]

EXIT_FAILED = 1
EXIT_USAGE = 2
_PROG = "securecomp bench"
_PYTEST_NO_TESTS = 5

#: File patterns of each area, inside the benchmarks folder.
AREAS: dict[str, tuple[str, ...]] = {
    "he": ("bench_he*.py",),
    "mpc": ("bench_mpc*.py",),
    "secagg": ("bench_secagg*.py",),
    "all": ("bench_*.py",),
}

#: ``-k`` expression of the one cheap comparison per area that ``--smoke`` runs.
SMOKE_SELECTION: dict[str, str] = {
    "he": "ckks_add",
    "mpc": "mul_10k_3p",
    "secagg": "client_advertise",
    "all": "ckks_add or mul_10k_3p or client_advertise",
}

#: pytest-benchmark options of a smoke run: one round, no warm-up, no calibration time.
_SMOKE_OPTIONS = (
    "--benchmark-min-rounds=1",
    "--benchmark-max-time=0.000001",
    "--benchmark-warmup=off",
)


class BenchError(Exception):
    """A precondition of ``securecomp bench`` is not met (the message says what to do)."""


def find_benchmarks(folder: str | Path | None = None) -> Path:
    """The benchmarks folder: ``folder``, else ``./benchmarks``, else the source tree's.

    Raises
    ------
    BenchError
        No folder holding ``conftest.py`` and ``bench_*.py`` files was found.
    """
    if folder is not None:
        candidates = [Path(folder)]
    else:
        source_tree = Path(__file__).resolve().parents[2] / "benchmarks"
        candidates = [Path.cwd() / "benchmarks", source_tree]
    for path in candidates:
        if path.is_dir() and (path / "conftest.py").is_file() and any(path.glob("bench_*.py")):
            return path.resolve()
    where = ", ".join(str(p) for p in candidates)
    raise BenchError(
        f"no benchmarks folder found (looked in {where}): the benchmarks ship with the source "
        "tree, not with the installed package; run from a checkout of the repository or pass "
        "--dir PATH/TO/benchmarks"
    )


def _require_pytest_benchmark() -> None:
    if importlib.util.find_spec("pytest_benchmark") is None:
        raise BenchError(
            "pytest-benchmark is not installed: pip install 'securecomp[test]' "
            "(or 'securecomp[bench]' for the baselines too)"
        )


def bench_command(folder: Path, area: str, *, smoke: bool) -> list[str]:
    """The pytest command line for ``area`` (files of the area, benchmark-only, unbuffered)."""
    if area not in AREAS:
        raise BenchError(f"unknown area {area!r}; choose one of {', '.join(AREAS)}")
    files = sorted({str(p) for pattern in AREAS[area] for p in folder.glob(pattern)})
    if not files:
        raise BenchError(f"no benchmark file of area {area!r} in {folder}")
    cmd = [sys.executable, "-m", "pytest", *files, "--benchmark-only", "-s", "-q"]
    cmd += ["-p", "no:cacheprovider"]  # leave no cache folder in the source tree
    if smoke:
        cmd += ["-k", SMOKE_SELECTION[area], *_SMOKE_OPTIONS]
    return cmd


def run_bench(area: str, *, smoke: bool = False, folder: str | Path | None = None) -> int:
    """Run the benchmarks of ``area``; returns the exit status (see the module docstring)."""
    _require_pytest_benchmark()
    where = find_benchmarks(folder)
    cmd = bench_command(where, area, smoke=smoke)
    print(f"{_PROG}: running {' '.join(cmd[1:])}", flush=True)
    # The repository root is the folder above benchmarks/: pytest reads its configuration.
    status = subprocess.call(cmd, cwd=where.parent)  # noqa: S603 - our own interpreter
    if status == _PYTEST_NO_TESTS:
        print(
            f"{_PROG}: no benchmark was selected"
            + (f" by the smoke selection -k {SMOKE_SELECTION[area]!r}" if smoke else ""),
            file=sys.stderr,
        )
        return EXIT_FAILED
    return status


def _run(args: argparse.Namespace) -> int:
    try:
        return run_bench(args.area, smoke=args.smoke, folder=args.dir)
    except BenchError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "area", nargs="?", default="all", choices=sorted(AREAS), help="which benchmarks (all)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="one cheap comparison per area, one round"
    )
    parser.add_argument("--dir", metavar="PATH", help="the benchmarks folder to run")
    parser.set_defaults(func=_run)


def register_cli(subparsers: Any) -> None:
    """Add ``securecomp bench``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="run the benchmarks and print the ours/baseline ratio table",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    _configure(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m securecomp.federated.bench_cli``: the same command on its own."""
    parser = argparse.ArgumentParser(prog=_PROG, description="Run the benchmarks.")
    _configure(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
