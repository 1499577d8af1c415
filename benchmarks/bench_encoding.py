"""Encodings: fixed point, exact ring matmul and Paillier packing against their baselines.

Run with ``python -m pytest benchmarks/bench_encoding.py --benchmark-only``; the conftest
prints the ours/baseline ratio of every group after the run.

* ``fixedpoint_1M``: encode + decode of 1M float64 with all range checks, against the bare
  numpy conversion ``np.rint(x * 2**f).astype(np.int64)`` and back (``__floor``).
* ``ring_matmul_1024`` / ``ring_matmul_256``: exact Z_2^64 matrix product against numpy's
  ``uint64 @`` (``__numpy``), which is also exact but runs a naive integer loop. The numpy
  baseline at 1024 takes seconds, so it runs three rounds only.
* ``paillier_pack_1000``: pack + unpack of 1000 32-bit values into 3072-bit plaintexts
  against a per-slot Python loop of shifts and masks (``__python``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from securecomp.encoding import fixed_point, paillier_packing, ring_matmul

FRAC_BITS = 16
RNG = np.random.default_rng(1234)
X_1M = RNG.standard_normal(1 << 20) * 1000.0
MATS = {
    n: (
        RNG.integers(0, 2**64, size=(n, n), dtype=np.uint64, endpoint=False),
        RNG.integers(0, 2**64, size=(n, n), dtype=np.uint64, endpoint=False),
    )
    for n in (256, 1024)
}
PACKING = paillier_packing(3072, 32, 1024)
VALUES = RNG.integers(-(2**31), 2**31, size=1000, dtype=np.int64)


# --- fixed point ------------------------------------------------------------------------------


@pytest.mark.benchmark(group="fixedpoint_1M")
def test_fixedpoint_roundtrip__ours(benchmark: Any) -> None:
    fp = fixed_point(FRAC_BITS, 64)

    def run() -> np.ndarray:
        return fp.decode(fp.encode(X_1M))

    out = benchmark(run)
    assert np.abs(out - X_1M).max() <= fp.ulp / 2


@pytest.mark.benchmark(group="fixedpoint_1M")
def test_fixedpoint_roundtrip__floor(benchmark: Any) -> None:
    scale = 2.0**FRAC_BITS

    def run() -> np.ndarray:
        enc = np.rint(X_1M * scale).astype(np.int64)
        return enc.astype(np.float64) / scale

    out = benchmark(run)
    assert np.abs(out - X_1M).max() <= 0.5 / scale


# --- exact ring matmul ------------------------------------------------------------------------


@pytest.mark.benchmark(group="ring_matmul_1024")
def test_ring_matmul_1024__ours(benchmark: Any) -> None:
    a, b = MATS[1024]
    out = benchmark(ring_matmul, a, b)
    assert np.array_equal(out[:4], a[:4] @ b)


@pytest.mark.benchmark(group="ring_matmul_1024")
def test_ring_matmul_1024__numpy(benchmark: Any) -> None:
    a, b = MATS[1024]
    out = benchmark.pedantic(np.matmul, args=(a, b), rounds=3, iterations=1)
    assert out.dtype == np.uint64


@pytest.mark.benchmark(group="ring_matmul_256")
def test_ring_matmul_256__ours(benchmark: Any) -> None:
    a, b = MATS[256]
    out = benchmark(ring_matmul, a, b)
    assert np.array_equal(out, a @ b)


@pytest.mark.benchmark(group="ring_matmul_256")
def test_ring_matmul_256__numpy(benchmark: Any) -> None:
    a, b = MATS[256]
    benchmark(np.matmul, a, b)


# --- Paillier packing -------------------------------------------------------------------------


@pytest.mark.benchmark(group="paillier_pack_1000")
def test_paillier_pack_1000__ours(benchmark: Any) -> None:
    def run() -> np.ndarray:
        return PACKING.unpack(PACKING.pack(VALUES), 1, VALUES.size)

    assert np.array_equal(benchmark(run), VALUES)


@pytest.mark.benchmark(group="paillier_pack_1000")
def test_paillier_pack_1000__python(benchmark: Any) -> None:
    w, k, off = PACKING.slot_bits, PACKING.n_slots, PACKING.offset
    mask = (1 << w) - 1

    def run() -> list[int]:
        values = VALUES.tolist()
        packed = [
            sum((v + off) << (j * w) for j, v in enumerate(values[s : s + k]))
            for s in range(0, len(values), k)
        ]
        out: list[int] = []
        for c in packed:
            out.extend(((c >> (j * w)) & mask) - off for j in range(k))
        return out[: len(values)]

    assert benchmark(run) == VALUES.tolist()
