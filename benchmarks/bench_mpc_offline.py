"""Offline phase: dealer-free Paillier triples against the trusted dealer, per element.

Run with ``python -m pytest benchmarks/bench_mpc_offline.py --benchmark-only -s``.

Both parties run as threads of this process (`securecomp.mpc.LockstepSimulation`, a
labelled simulation: no network latency, the two parties share the 2 cores and the GIL).
Every call produces fresh material for the same spec:

* ``triples_mul[2048|3072]``: ``n`` elementwise triples (``a * b`` over Z_2^64) generated
  by the two parties alone (`securecomp.mpc.offline.PaillierTriples`; 2048-bit keys are
  about 112-bit secure, 3072-bit about 128-bit), against the same ``n`` from the trusted
  dealer (``__dealer``: seed-compressed AES-CTR material plus the last party's correction,
  over the dealer links). Same batch size, so the ratio is per element; the dealer's
  amortized per-element cost at 100,000 elements is printed beside it.
* ``triples_matmul_2048``: one 16 x 16 @ 16 x 16 matrix triple (packed columns and rows,
  simultaneous exponentiation), against the dealer's.

Printed per case: seconds per element, bytes per element (both directions, exact
`CommStats` of the provider's tags, all in the ``offline`` phase) and the projection to
one million elementwise triples, which is hours, not seconds: two key-holder encryptions
per element (about 9 ms each at 3072 bits with the factorization) dominate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from securecomp.he.paillier import paillier_keypair
from securecomp.mpc import LockstepSimulation
from securecomp.mpc.beaver import triple_spec
from securecomp.mpc.material import Bilinear, Spec
from securecomp.mpc.offline import PaillierTriples

#: Elementwise triples per call: small, since one 3072-bit triple costs tens of ms.
BATCH = {2048: 24, 3072: 12}
DEALER_AMORTIZED = 100_000


@pytest.fixture(scope="module", params=[2048, 3072])
def setup(request: pytest.FixtureRequest) -> Iterator[tuple[LockstepSimulation, dict[int, Any]]]:
    bits = int(request.param)
    _, sk = paillier_keypair(bits)  # in the main thread: key generation is not timed
    with LockstepSimulation(2, timeout=600) as sim:
        providers: dict[int, Any] = {}

        def install(sess: Any) -> None:
            providers[sess.party_id] = PaillierTriples(
                sess, secret_key=sk if sess.party_id == 0 else None
            )

        sim.run(install)
        yield sim, providers


def _generate(sim: LockstepSimulation, providers: dict[int, Any] | None, spec: Spec) -> None:
    if providers is None:
        sim.run(lambda sess: sess.preprocessing.get(spec).consume())
    else:
        sim.run(lambda sess: providers[sess.party_id].get(spec).consume())


def _elements(spec: Spec) -> int:
    return int(np.prod(spec.bilinear.result_shape(*spec.shapes)))


def _report(benchmark: Any, what: str, spec: Spec, providers: dict[int, Any] | None) -> None:
    best = getattr(getattr(benchmark, "stats", None), "stats", None)
    if best is None:
        return
    n = _elements(spec)
    per = best.median / n
    benchmark.extra_info["seconds_per_element"] = per
    line = f"\n{what}: {per * 1e3:.3f} ms/element (median of batches of {n})"
    if providers is not None:
        traffic = providers[0].traffic()
        made = providers[0].elements
        nbytes = (traffic.bytes_sent + traffic.bytes_received) / max(made, 1)
        benchmark.extra_info["bytes_per_element"] = nbytes
        line += f", {nbytes:.0f} B/element offline (both directions)"
        if spec.bilinear is Bilinear.MUL:
            line += f"; 1M triples: {per * 1e6 / 3600:.2f} h"
    print(line)


def _dealer_amortized(sim: LockstepSimulation) -> float:
    spec = triple_spec(Bilinear.MUL, (DEALER_AMORTIZED,), (DEALER_AMORTIZED,))
    start = time.perf_counter()
    _generate(sim, None, spec)
    return (time.perf_counter() - start) / DEALER_AMORTIZED


@pytest.mark.benchmark(group="triples_mul")
def test_triples_mul__ours(benchmark: Any, setup: Any) -> None:
    sim, providers = setup
    bits = providers[0].key_bits
    n = BATCH[bits]
    spec = triple_spec(Bilinear.MUL, (n,), (n,))
    benchmark.pedantic(lambda: _generate(sim, providers, spec), rounds=3, warmup_rounds=0)
    label = "about 112-bit" if bits == 2048 else "about 128-bit"
    _report(benchmark, f"Paillier triples, {bits}-bit key ({label})", spec, providers)


@pytest.mark.benchmark(group="triples_mul")
def test_triples_mul__dealer(benchmark: Any, setup: Any) -> None:
    sim, providers = setup
    n = BATCH[providers[0].key_bits]
    spec = triple_spec(Bilinear.MUL, (n,), (n,))
    benchmark.pedantic(lambda: _generate(sim, None, spec), rounds=20, warmup_rounds=1)
    _report(benchmark, "trusted dealer, same batch", spec, None)
    amortized = _dealer_amortized(sim)
    benchmark.extra_info["amortized_seconds_per_element"] = amortized
    print(f"trusted dealer, {DEALER_AMORTIZED} per request: {amortized * 1e9:.1f} ns/element")


@pytest.fixture(scope="module")
def setup_2048() -> Iterator[tuple[LockstepSimulation, dict[int, Any]]]:
    _, sk = paillier_keypair(2048)
    with LockstepSimulation(2, timeout=600) as sim:
        providers: dict[int, Any] = {}

        def install(sess: Any) -> None:
            providers[sess.party_id] = PaillierTriples(
                sess, secret_key=sk if sess.party_id == 0 else None
            )

        sim.run(install)
        yield sim, providers


MATMUL = triple_spec(Bilinear.MATMUL, (16, 16), (16, 16))


@pytest.mark.benchmark(group="triples_matmul_2048")
def test_triples_matmul_2048__ours(benchmark: Any, setup_2048: Any) -> None:
    sim, providers = setup_2048
    benchmark.pedantic(lambda: _generate(sim, providers, MATMUL), rounds=3, warmup_rounds=0)
    _report(benchmark, "Paillier 16x16 @ 16x16 matrix triple, 2048-bit", MATMUL, providers)


@pytest.mark.benchmark(group="triples_matmul_2048")
def test_triples_matmul_2048__dealer(benchmark: Any, setup_2048: Any) -> None:
    sim, _ = setup_2048
    benchmark.pedantic(lambda: _generate(sim, None, MATMUL), rounds=20, warmup_rounds=1)
    _report(benchmark, "trusted dealer, same matrix triple", MATMUL, None)
