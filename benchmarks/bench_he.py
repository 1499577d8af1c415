"""HE backends against the raw libraries on the same data.

CKKS: `securecomp.he.ckks` against raw TenSEAL (its Python API: ``ts.ckks_vector`` and the
vector's operators), N = 8192, chain [60, 40, 40, 60], scale 2^40, 4096 slots (one full
ciphertext). Targets: ours/TenSEAL <= 1.15 for encrypt, ct x ct, ct x pt, sum and
decrypt-to-ndarray; <= 1.5 for ct + ct (a ~50 µs operation where Python dispatch shows).

Run with ``python -m pytest benchmarks/bench_he.py --benchmark-only``; the ratio table is
printed by ``benchmarks/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import tenseal as ts

from securecomp.he.ckks import CKKSBackend, CKKSContext, ckks_keygen
from securecomp.params import DEFAULT_CKKS_PARAMETERS
from securecomp.tensor import SecureTensor

SLOTS = DEFAULT_CKKS_PARAMETERS.slot_count


@dataclass
class CKKSSetup:
    backend: CKKSBackend
    key: CKKSContext
    raw: ts.Context
    x: np.ndarray
    y: np.ndarray
    ours_x: SecureTensor
    ours_y: SecureTensor
    raw_x: Any
    raw_y: Any


@pytest.fixture(scope="module")
def ckks() -> Iterator[CKKSSetup]:
    # One key for both sides: the raw baseline runs on the very TenSEAL context ours wraps.
    backend, key = ckks_keygen(galois_keys=True)
    raw = key.tenseal_context
    rng = np.random.default_rng(2024)
    x = rng.uniform(-1.0, 1.0, SLOTS)
    y = rng.uniform(-1.0, 1.0, SLOTS)
    yield CKKSSetup(
        backend,
        key,
        raw,
        x,
        y,
        backend.encrypt(x),
        backend.encrypt(y),
        ts.ckks_vector(raw, x.tolist()),
        ts.ckks_vector(raw, y.tolist()),
    )


# --- encrypt -------------------------------------------------------------------------------


@pytest.mark.benchmark(group="ckks_encrypt_4096")
def test_ckks_encrypt__ours(benchmark: Any, ckks: CKKSSetup) -> None:
    out = benchmark(ckks.backend.encrypt, ckks.x)
    np.testing.assert_allclose(out.decrypt(ckks.key), ckks.x, atol=1e-6)


@pytest.mark.benchmark(group="ckks_encrypt_4096")
def test_ckks_encrypt__tenseal(benchmark: Any, ckks: CKKSSetup) -> None:
    out = benchmark(ts.ckks_vector, ckks.raw, ckks.x)
    np.testing.assert_allclose(out.decrypt(), ckks.x, atol=1e-6)


# --- ct + ct -------------------------------------------------------------------------------


@pytest.mark.benchmark(group="ckks_add_4096")
def test_ckks_add__ours(benchmark: Any, ckks: CKKSSetup) -> None:
    a, b = ckks.ours_x, ckks.ours_y
    out = benchmark(lambda: a + b)
    np.testing.assert_allclose(out.decrypt(ckks.key), ckks.x + ckks.y, atol=1e-6)


@pytest.mark.benchmark(group="ckks_add_4096")
def test_ckks_add__tenseal(benchmark: Any, ckks: CKKSSetup) -> None:
    a, b = ckks.raw_x, ckks.raw_y
    out = benchmark(lambda: a + b)
    np.testing.assert_allclose(out.decrypt(), ckks.x + ckks.y, atol=1e-6)


# --- ct x ct -------------------------------------------------------------------------------


@pytest.mark.benchmark(group="ckks_mul_4096")
def test_ckks_mul__ours(benchmark: Any, ckks: CKKSSetup) -> None:
    a, b = ckks.ours_x, ckks.ours_y
    out = benchmark(lambda: a * b)
    np.testing.assert_allclose(out.decrypt(ckks.key), ckks.x * ckks.y, atol=1e-5)


@pytest.mark.benchmark(group="ckks_mul_4096")
def test_ckks_mul__tenseal(benchmark: Any, ckks: CKKSSetup) -> None:
    a, b = ckks.raw_x, ckks.raw_y
    out = benchmark(lambda: a * b)
    np.testing.assert_allclose(out.decrypt(), ckks.x * ckks.y, atol=1e-5)


# --- ct x pt -------------------------------------------------------------------------------


@pytest.mark.benchmark(group="ckks_mul_plain_4096")
def test_ckks_mul_plain__ours(benchmark: Any, ckks: CKKSSetup) -> None:
    a, y = ckks.ours_x, ckks.y
    out = benchmark(lambda: a * y)
    np.testing.assert_allclose(out.decrypt(ckks.key), ckks.x * y, atol=1e-5)


@pytest.mark.benchmark(group="ckks_mul_plain_4096")
def test_ckks_mul_plain__tenseal(benchmark: Any, ckks: CKKSSetup) -> None:
    a, y = ckks.raw_x, ckks.y
    out = benchmark(lambda: a * y)
    np.testing.assert_allclose(out.decrypt(), ckks.x * y, atol=1e-5)


# --- sum over the 4096 slots ----------------------------------------------------------------


@pytest.mark.benchmark(group="ckks_sum_4096")
def test_ckks_sum__ours(benchmark: Any, ckks: CKKSSetup) -> None:
    a = ckks.ours_x
    out = benchmark(a.sum)
    np.testing.assert_allclose(out.decrypt(ckks.key), ckks.x.sum(), atol=1e-4)


@pytest.mark.benchmark(group="ckks_sum_4096")
def test_ckks_sum__tenseal(benchmark: Any, ckks: CKKSSetup) -> None:
    a = ckks.raw_x
    out = benchmark(a.sum)
    np.testing.assert_allclose(out.decrypt()[0], ckks.x.sum(), atol=1e-4)


# --- decrypt to an ndarray ------------------------------------------------------------------


@pytest.mark.benchmark(group="ckks_decrypt_4096")
def test_ckks_decrypt__ours(benchmark: Any, ckks: CKKSSetup) -> None:
    a, key = ckks.ours_x, ckks.key
    out = benchmark(lambda: a.decrypt(key))
    np.testing.assert_allclose(out, ckks.x, atol=1e-6)


@pytest.mark.benchmark(group="ckks_decrypt_4096")
def test_ckks_decrypt__tenseal(benchmark: Any, ckks: CKKSSetup) -> None:
    a = ckks.raw_x
    out = benchmark(lambda: np.array(a.decrypt(), dtype=np.float64))
    np.testing.assert_allclose(out, ckks.x, atol=1e-6)
