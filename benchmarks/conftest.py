"""Benchmark run configuration: collect ``bench_*.py`` and print ours/baseline ratios.

Naming convention (DESIGN.md section 9): every comparison is one pytest-benchmark group
holding ``test_<what>__ours`` and one or more ``test_<what>__<baseline>`` (``__floor``,
``__numpy``, ``__tenseal``, ``__phe``, ...), run on the same inputs. After the run, a table
gives for each group and each baseline the two medians, the ratio ours/baseline (below 1
means ours is faster) and the speedup baseline/ours. Parametrized tests are matched by
their parameter id (``test_x__ours[p]`` against ``test_x__floor[p]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

OURS = "ours"


def pytest_configure(config: pytest.Config) -> None:
    # Benchmarks live in bench_<area>.py so that the test run never collects them.
    config.addinivalue_line("python_files", "bench_*.py")


@dataclass(frozen=True)
class _Row:
    group: str
    what: str
    param: str
    baseline: str
    ours: float
    theirs: float


def _split_name(name: str) -> tuple[str, str, str] | None:
    """``test_x__ours[p]`` -> ``("test_x", "ours", "[p]")``; None without a ``__`` role."""
    base, bracket, param = name.partition("[")
    what, sep, role = base.rpartition("__")
    if not sep or not what or not role:
        return None
    return what, role, bracket + param


def _median(bench: Any) -> float | None:
    stats = getattr(bench, "stats", None)
    if not bench or stats is None:  # no data (benchmarks disabled, skipped or errored)
        return None
    try:
        return float(stats.median)
    except (AttributeError, ValueError, TypeError):
        return None


def _rows(benchmarks: list[Any]) -> list[_Row]:
    medians: dict[tuple[str, str, str], dict[str, float]] = {}
    for bench in benchmarks:
        parsed = _split_name(str(getattr(bench, "name", "")))
        median = _median(bench)
        if parsed is None or median is None:
            continue
        what, role, param = parsed
        group = str(getattr(bench, "group", None) or what)
        medians.setdefault((group, what, param), {})[role] = median
    rows = []
    for (group, what, param), roles in sorted(medians.items()):
        ours = roles.get(OURS)
        if ours is None:
            continue
        for role, theirs in sorted(roles.items()):
            if role != OURS:
                rows.append(_Row(group, what, param, role, ours, theirs))
    return rows


def _fmt_speed(ours: float, theirs: float) -> str:
    """``"12.3x faster"`` or ``"4.5x slower"`` (never a rounded-away ``0.00x``)."""
    if theirs >= ours:
        return f"{theirs / ours:.2f}x faster"
    return f"{ours / theirs:.2f}x slower"


def _fmt_time(seconds: float) -> str:
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= factor:
            return f"{seconds / factor:.3f} {unit}"
    return f"{seconds / 1e-9:.1f} ns"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return
    rows = _rows(list(getattr(session, "benchmarks", [])))
    if not rows:
        return
    header = ("group", "baseline", "ours median", "baseline median", "ours/baseline", "speedup")
    table = [header] + [
        (
            r.group + r.param,
            r.baseline,
            _fmt_time(r.ours),
            _fmt_time(r.theirs),
            f"{r.ours / r.theirs:.3f}",
            _fmt_speed(r.ours, r.theirs),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    terminalreporter.write_sep("=", "ours vs baselines (median times)")
    for i, row in enumerate(table):
        terminalreporter.write_line(
            "  ".join(cell.ljust(w) if j < 2 else cell.rjust(w)
                      for j, (cell, w) in enumerate(zip(row, widths, strict=True)))
        )
        if i == 0:
            terminalreporter.write_line("  ".join("-" * w for w in widths))
