"""MAC mode (SPDZ2k, k = s = 64) against the semi-honest engine: the cost of active security.

Run with ``python -m pytest benchmarks/bench_mpc_active.py --benchmark-only -s``. Both
modes run the same SPMD program style, as threads of this process over in-memory
channels (a simulation: compute plus serialization, no network latency), driven in lock
step from the benchmark thread by `Lockstep`. The preprocessing of every round is fetched
from the dealer in the untimed setup, so the times are the **online** phase.

* ``mul_1m_2p``: fixed-point multiply of 1M elements, 2 parties. ``__ours`` is the
  authenticated multiply (Beaver with MACs in Z_2^128 fused with the authenticated
  truncation) **plus the MAC check of its three openings** (coin toss, random linear combination,
  commit-then-open): the complete price of a checked product. ``__semihonest`` is the
  same product in the semi-honest engine (dealer truncation). Goal: ours/semihonest
  <= 10 (a straightforward numpy version measured about 26x).
* ``mul_1m_2p_unchecked``: the authenticated multiply alone, the check deferred (as in a
  program that multiplies many times and checks once before its output); the check then
  runs in the untimed setup.

Bytes and rounds of one operation (the parties' online counters) are printed beside the
times, and so is the CPU time of one party's thread: on a machine shared with other
processes the wall clock of two party threads (which also contend for the GIL) varies
by 2x between runs, the CPU time much less. The MAC check adds 4 rounds and 4 small
messages per check, not per product.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from securecomp.mpc import run_local
from securecomp.mpc.beaver import triple_spec as semi_triple_spec
from securecomp.mpc.material import Bilinear
from securecomp.mpc.spdz2k import run_local_active
from securecomp.mpc.spdz2k.protocols import multrunc_spec
from securecomp.mpc.truncation import trunc_spec as semi_trunc_spec

N = 1_000_000
FRAC_BITS = 16
Job = Callable[[Any, dict[str, Any]], Any]


class Lockstep:
    """Parties of a ``run_local``-style runner, each looping over jobs sent from here.

    A simulation: every job runs on every party's session, in its own thread, and `run`
    returns when all parties finished it (raising the first error).
    """

    def __init__(self, runner: Callable[..., Any], parties: int, **kw: Any) -> None:
        self.parties = parties
        self._jobs: list[queue.SimpleQueue[Job | None]] = [
            queue.SimpleQueue() for _ in range(parties)
        ]
        self._done: queue.SimpleQueue[tuple[int, Any, BaseException | None]] = (
            queue.SimpleQueue()
        )

        def program(sess: Any) -> None:
            state: dict[str, Any] = {}
            jobs = self._jobs[sess.party_id]
            while (job := jobs.get()) is not None:
                try:
                    self._done.put((sess.party_id, job(sess, state), None))
                except BaseException as exc:
                    self._done.put((sess.party_id, None, exc))
                    raise

        self._thread = threading.Thread(
            target=runner, args=(program, parties), kwargs={"timeout": 300, **kw}, daemon=True
        )
        self._thread.start()

    def run(self, job: Job) -> list[Any]:
        for q in self._jobs:
            q.put(job)
        out: list[Any] = [None] * self.parties
        errors = []
        for _ in range(self.parties):
            party, result, error = self._done.get(timeout=600)
            out[party] = result
            if error is not None:
                errors.append(error)
        if errors:
            raise errors[0]
        return out

    def close(self) -> None:
        for q in self._jobs:
            q.put(None)
        self._thread.join(60)


def _inputs(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    scale = float(1 << FRAC_BITS)
    return (
        np.round(rng.normal(size=n) * scale) / scale,
        np.round(rng.normal(size=n) * scale) / scale,
    )


def _share_inputs(sess: Any, state: dict[str, Any]) -> None:
    x, y = _inputs(N)
    state["x"] = sess.share(x if sess.party_id == 0 else None, bound=8)
    state["y"] = sess.share(y if sess.party_id == 1 else None, owner=1, bound=8)


@pytest.fixture(scope="module")
def active() -> Iterator[Lockstep]:
    lock = Lockstep(run_local_active, 2)
    lock.run(_share_inputs)
    yield lock
    lock.close()


@pytest.fixture(scope="module")
def semihonest() -> Iterator[Lockstep]:
    lock = Lockstep(run_local, 2)
    lock.run(_share_inputs)
    yield lock
    lock.close()


def _counted(op: Callable[[Any, dict[str, Any]], Any]) -> Job:
    """``op`` returning (bytes sent, rounds) of this party's online channel."""

    def job(sess: Any, state: dict[str, Any]) -> tuple[int, int]:
        stats = sess.channel.stats
        sent, rounds = stats.bytes_sent, stats.rounds
        op(sess, state)
        return stats.bytes_sent - sent, stats.rounds - rounds

    return job


def _cpu(op: Job) -> Job:
    """``op`` returning the CPU seconds of this party's thread (robust to a busy machine,
    where the wall clock of two threads also measures the other processes)."""

    def job(sess: Any, state: dict[str, Any]) -> float:
        start = time.thread_time()
        op(sess, state)
        return time.thread_time() - start

    return job


def _measure(
    benchmark: Any, lock: Lockstep, op: Job, setup: Job, what: str
) -> None:
    def prepare() -> None:  # pedantic reads a setup's return value as arguments
        lock.run(setup)

    benchmark.pedantic(lambda: lock.run(op), setup=prepare, rounds=7, warmup_rounds=1)
    lock.run(setup)
    sent, rounds = lock.run(_counted(op))[0]
    cpu = []
    for _ in range(3):
        lock.run(setup)
        cpu.append(max(lock.run(_cpu(op))))
    cpu_ms = float(np.median(cpu)) * 1e3
    benchmark.extra_info.update(
        {"bytes_per_element_per_peer": round(sent / N, 3), "rounds": rounds,
         "cpu_ms_per_party": round(cpu_ms, 1)}
    )
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    line = f"\n{what}: {sent / N:.2f} B/element to the peer, {rounds} rounds"
    if stats is not None:
        line += f"; best {stats.min * 1e3:.1f} ms, median {stats.median * 1e3:.1f} ms"
    print(line + f"; CPU per party {cpu_ms:.1f} ms (thread time, median of 3)")


def _active_setup(sess: Any, state: dict[str, Any]) -> None:
    sess.check()  # a deferred check of the previous round, outside the timing
    sess.prefetch([multrunc_spec((N,), (N,), FRAC_BITS)])


def _semi_setup(sess: Any, state: dict[str, Any]) -> None:
    sess.prefetch([semi_triple_spec(Bilinear.MUL, (N,), (N,)), semi_trunc_spec((N,), FRAC_BITS)])


def _mul(sess: Any, state: dict[str, Any]) -> None:
    state["z"] = state["x"] * state["y"]


def _mul_checked(sess: Any, state: dict[str, Any]) -> None:
    state["z"] = state["x"] * state["y"]
    sess.check()


@pytest.mark.benchmark(group="mul_1m_2p")
def test_mul_1m_2p__ours(benchmark: Any, active: Lockstep) -> None:
    what = "MAC-mode mul 1M + MAC check, 2 parties, k = s = 64"
    _measure(benchmark, active, _mul_checked, _active_setup, what)
    x, y = _inputs(N)
    got = active.run(lambda sess, st: sess.reveal(st["z"][:1000]))[0]
    np.testing.assert_allclose(got, (x * y)[:1000], atol=2.0**-15)


@pytest.mark.benchmark(group="mul_1m_2p")
def test_mul_1m_2p__semihonest(benchmark: Any, semihonest: Lockstep) -> None:
    _measure(benchmark, semihonest, _mul, _semi_setup, "semi-honest mul 1M, 2 parties")


@pytest.mark.benchmark(group="mul_1m_2p_unchecked")
def test_mul_1m_2p_unchecked__ours(benchmark: Any, active: Lockstep) -> None:
    what = "MAC-mode mul 1M, check deferred, 2 parties, k = s = 64"
    _measure(benchmark, active, _mul, _active_setup, what)


@pytest.mark.benchmark(group="mul_1m_2p_unchecked")
def test_mul_1m_2p_unchecked__semihonest(benchmark: Any, semihonest: Lockstep) -> None:
    _measure(benchmark, semihonest, _mul, _semi_setup, "semi-honest mul 1M, 2 parties")
