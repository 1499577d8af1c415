"""Packed Paillier against per-element phe, both with gmpy2, on the same 1,000 values.

Run with ``python -m pytest benchmarks/bench_he_paillier.py --benchmark-only``; the
conftest prints the ours/baseline ratio of every group after the run.

Setting: a 2048-bit modulus (about 112-bit security, NIST SP 800-57 Pt. 1 Table 2; the
library default is 3072), 1,000 signed 32-bit integers, headroom for 2^10 additions
(42-bit slots, 48 slots per ciphertext, 21 ciphertexts). The baseline is phe used the
usual way: one ``EncryptedNumber`` per value (``public_key.encrypt``, ``decrypt``, ``+``).

* ``paillier_encrypt_decrypt_1000``: encrypt then decrypt the vector.
* ``paillier_add_1000``: add two encrypted vectors (ciphertext + ciphertext).
* ``paillier_serialize_1000``: serialize the encrypted vector; ``extra_info`` records the
  bytes per value. The phe baseline is its most compact form, each ciphertext as a
  fixed-width 512-byte big-endian integer (phe's documented JSON form is larger).

The phe baselines take seconds per round, so they run three rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import phe
import phe.util
import pytest

from securecomp.he.paillier import PaillierBackend, PaillierSecretKey, paillier_keygen
from securecomp.net.wire import encode_bigints
from securecomp.tensor import SecureTensor

BITS = 2048
COUNT = 1000
VALUE_BITS = 32
MAX_ADDITIONS = 1 << 10
RNG = np.random.default_rng(2024)
LIMIT = 2 ** (VALUE_BITS - 1) - 1
X = RNG.integers(-LIMIT, LIMIT, size=COUNT, endpoint=True)
Y = RNG.integers(-LIMIT, LIMIT, size=COUNT, endpoint=True)
X_LIST = [int(v) for v in X]
Y_LIST = [int(v) for v in Y]
BASELINE_ROUNDS = 3
OURS_ROUNDS = 10


@pytest.fixture(scope="module")
def keys() -> tuple[PaillierBackend, PaillierSecretKey]:
    # Both sides must run on gmpy2, or the comparison measures Python's pow.
    assert phe.util.HAVE_GMP, "phe runs without gmpy2; install gmpy2"
    backend, secret = paillier_keygen(BITS)
    assert backend.key.security.bits == 112
    return backend, secret


def _encrypt(backend: PaillierBackend, values: np.ndarray) -> SecureTensor:
    return backend.encrypt(values, max_additions=MAX_ADDITIONS, value_bits=VALUE_BITS)


def _label(benchmark: Any, backend: PaillierBackend) -> None:
    benchmark.extra_info["modulus_bits"] = BITS
    benchmark.extra_info["security"] = str(backend.key.security)


# --- encrypt + decrypt ------------------------------------------------------------------------


@pytest.mark.benchmark(group="paillier_encrypt_decrypt_1000")
def test_encrypt_decrypt__ours(benchmark: Any, keys: tuple) -> None:
    backend, secret = keys

    def run() -> np.ndarray:
        return _encrypt(backend, X).decrypt(secret)

    out = benchmark.pedantic(run, rounds=OURS_ROUNDS, iterations=1, warmup_rounds=1)
    np.testing.assert_array_equal(out, X)
    _label(benchmark, backend)
    benchmark.extra_info["ciphertexts"] = _encrypt(backend, X).payload.size


@pytest.mark.benchmark(group="paillier_encrypt_decrypt_1000")
def test_encrypt_decrypt__phe(benchmark: Any, keys: tuple) -> None:
    backend, secret = keys
    public, private = backend.key.to_phe(), secret.to_phe()

    def run() -> list[int]:
        return [private.decrypt(public.encrypt(v)) for v in X_LIST]

    out = benchmark.pedantic(run, rounds=BASELINE_ROUNDS, iterations=1)
    assert out == X_LIST
    _label(benchmark, backend)
    benchmark.extra_info["ciphertexts"] = COUNT


# --- ciphertext + ciphertext ------------------------------------------------------------------


@pytest.mark.benchmark(group="paillier_add_1000")
def test_add__ours(benchmark: Any, keys: tuple) -> None:
    backend, secret = keys
    a, b = _encrypt(backend, X), _encrypt(backend, Y)
    out = benchmark(lambda: a + b)
    np.testing.assert_array_equal(out.decrypt(secret), X + Y)
    _label(benchmark, backend)


@pytest.mark.benchmark(group="paillier_add_1000")
def test_add__phe(benchmark: Any, keys: tuple) -> None:
    backend, secret = keys
    public, private = backend.key.to_phe(), secret.to_phe()
    a = [public.encrypt(v) for v in X_LIST]
    b = [public.encrypt(v) for v in Y_LIST]
    out = benchmark(lambda: [u + v for u, v in zip(a, b, strict=True)])
    assert [private.decrypt(c) for c in out[:10]] == [x + y for x, y in zip(X_LIST, Y_LIST)][:10]
    _label(benchmark, backend)


# --- bytes on the wire ------------------------------------------------------------------------


def _bytes(benchmark: Any, size: int) -> None:
    benchmark.extra_info["bytes"] = size
    benchmark.extra_info["bytes_per_value"] = round(size / COUNT, 2)
    print(f"\n{benchmark.name}: {size} bytes, {size / COUNT:.2f} bytes per value")


@pytest.mark.benchmark(group="paillier_serialize_1000")
def test_serialize__ours(benchmark: Any, keys: tuple) -> None:
    backend, secret = keys
    t = _encrypt(backend, X)
    data = benchmark(t.to_bytes)
    np.testing.assert_array_equal(backend.from_bytes(data).decrypt(secret), X)
    _label(benchmark, backend)
    _bytes(benchmark, len(data))


@pytest.mark.benchmark(group="paillier_serialize_1000")
def test_serialize__phe(benchmark: Any, keys: tuple) -> None:
    backend, _ = keys
    public = backend.key.to_phe()
    width = backend.key.ciphertext_bytes
    encrypted = [public.encrypt(v) for v in X_LIST]
    data = benchmark(lambda: encode_bigints((e.ciphertext() for e in encrypted), width))
    assert len(data) == COUNT * width
    _label(benchmark, backend)
    _bytes(benchmark, len(data))
