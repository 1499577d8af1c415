"""Crypto primitives: AES-CTR PRG throughput against the raw `cryptography` floor.

Run with ``python -m pytest benchmarks/bench_crypto.py --benchmark-only``. Each test stores
its throughput in ``extra_info["GB/s"]`` (from the fastest round) and prints it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from securecomp.crypto import AesCtrPrg

NBYTES = 64 << 20
SEED = bytes(range(32))


@pytest.fixture(scope="module")
def buffer() -> Iterator[np.ndarray]:
    # Preallocated and touched once, so page faults are not measured.
    out = np.ones(NBYTES // 8, dtype=np.uint64)
    yield out


def _report(benchmark: Any, label: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable
        return
    rate = NBYTES / stats.stats.min / 1e9
    benchmark.extra_info["GB/s"] = round(rate, 2)
    print(f"\n{label}: {rate:.2f} GB/s into a preallocated 64 MiB buffer")


@pytest.mark.benchmark(group="prg_fill_64MiB")
def test_prg_fill__ours(benchmark: Any, buffer: np.ndarray) -> None:
    prg = AesCtrPrg(SEED)
    result = benchmark(prg.fill, buffer)
    assert result is buffer
    _report(benchmark, "AesCtrPrg.fill")


@pytest.mark.benchmark(group="prg_fill_64MiB")
def test_prg_fill__floor(benchmark: Any, buffer: np.ndarray) -> None:
    # The floor: one raw update_into from a same-size zero source (allocated once, outside
    # the timed region); no chunking, no checks.
    zeros = bytes(NBYTES)
    encryptor = Cipher(algorithms.AES(SEED), modes.CTR(bytes(16))).encryptor()
    out = buffer.view(np.uint8).data

    def raw() -> int:
        return encryptor.update_into(zeros, out)

    assert benchmark(raw) == NBYTES
    _report(benchmark, "raw cryptography AES-CTR update_into")
