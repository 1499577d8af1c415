"""MPC engine throughput: online time, bytes and rounds of multiplication and comparison.

Run with ``python -m pytest benchmarks/bench_mpc.py --benchmark-only -s``. Every case
runs the parties as threads of this process over in-memory channels (a lock-step
simulation: `securecomp.mpc.LockstepSimulation`), so the figures are compute plus
serialization, without network latency. The preprocessing of each round is fetched from
the dealer in the (untimed) setup, so the timings are the **online** phase only; the
communication counted during one operation is reported beside the time (bytes sent per
element by one party, and rounds).

* ``mul_1m_2p[dealer|local]``: fixed-point multiply of 1M elements, 2 parties, with the
  one-round dealer truncation (goal: <= 24 B/element, 2 rounds) or SecureML's local
  truncation (<= 16 B, 1 round); throughput in M multiplications/s (goal >= 30).
* ``mul_10k_3p``: fixed-point multiply of 10,000 elements, 3 parties.
* ``lt_10k_2p``: less-than on 10,000 elements, 2 parties (<= 8 rounds).

MPyC baselines (``__mpyc``) join these groups later; only ``__ours`` exists so far.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from securecomp.mpc import LockstepSimulation
from securecomp.mpc.beaver import triple_spec
from securecomp.mpc.comparison import comparison_specs
from securecomp.mpc.material import Bilinear, Spec
from securecomp.mpc.truncation import trunc_spec
from securecomp.tensor import SecureTensor


@pytest.fixture(scope="module", params=["dealer", "local"])
def sim2(request: pytest.FixtureRequest) -> Iterator[LockstepSimulation]:
    with LockstepSimulation(2, truncation=request.param, timeout=60) as s:
        yield s


@pytest.fixture(scope="module")
def sim3() -> Iterator[LockstepSimulation]:
    with LockstepSimulation(3, timeout=60) as s:
        yield s


def _mul_specs(sim: LockstepSimulation, n: int) -> list[Spec]:
    specs = [triple_spec(Bilinear.MUL, (n,), (n,))]
    if sim.sessions[0].truncation.value == "dealer":
        specs.append(trunc_spec((n,), sim.sessions[0].frac_bits))
    return specs


def _measure(
    benchmark: Any,
    sim: LockstepSimulation,
    n: int,
    op: Callable[[], SecureTensor],
    specs: list[Spec],
    what: str,
) -> None:
    def setup() -> None:
        sim.run(lambda sess: sess.prefetch(specs))  # offline, not timed

    benchmark.pedantic(op, setup=setup, rounds=7, warmup_rounds=1)
    # One more operation to read its exact communication (party 0's online counters).
    setup()
    stats = [s.channel.stats for s in sim.sessions]
    before = [(s.bytes_sent, s.rounds) for s in stats]
    op()
    sent = stats[0].bytes_sent - before[0][0]
    rounds = max(s.rounds - b[1] for s, b in zip(stats, before, strict=True))
    per_elt = sent / n / (sim.n_parties - 1)
    benchmark.extra_info.update(
        {
            "bytes_per_element_per_peer": round(per_elt, 4),
            "rounds": rounds,
            "parties": sim.n_parties,
        }
    )
    best = getattr(getattr(benchmark, "stats", None), "stats", None)
    line = f"\n{what}: {per_elt:.3f} B/element/peer, {rounds} rounds"
    if best is not None:
        rate = n / best.min / 1e6
        benchmark.extra_info["M_ops_per_s"] = round(rate, 2)
        line += f", best {best.min * 1e3:.2f} ms, median {best.median * 1e3:.2f} ms, {rate:.1f} M/s"
    print(line)


def _operands(sim: LockstepSimulation, n: int) -> tuple[SecureTensor, SecureTensor]:
    rng = np.random.default_rng(0)
    return sim.share(rng.normal(size=n), bound=8), sim.share(rng.normal(size=n), bound=8)


@pytest.mark.benchmark(group="mul_1m_2p")
def test_mul_1m_2p__ours(benchmark: Any, sim2: LockstepSimulation) -> None:
    n = 1_000_000
    x, y = _operands(sim2, n)
    mode = sim2.sessions[0].truncation.value
    _measure(benchmark, sim2, n, lambda: x * y, _mul_specs(sim2, n), f"mul 1M, 2 parties, {mode}")


@pytest.mark.benchmark(group="mul_10k_3p")
def test_mul_10k_3p__ours(benchmark: Any, sim3: LockstepSimulation) -> None:
    n = 10_000
    x, y = _operands(sim3, n)
    _measure(benchmark, sim3, n, lambda: x * y, _mul_specs(sim3, n), "mul 10k, 3 parties")


@pytest.mark.benchmark(group="lt_10k_2p")
def test_lt_10k_2p__ours(benchmark: Any) -> None:
    n = 10_000
    with LockstepSimulation(2, timeout=60) as sim:
        x, y = _operands(sim, n)
        _measure(benchmark, sim, n, lambda: x < y, comparison_specs(n), "less-than 10k, 2 parties")
