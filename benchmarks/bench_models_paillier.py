"""Packed Paillier gradient aggregation against per-element phe: 10,000 parameters, 4 holders.

Run with ``python -m pytest benchmarks/bench_models_paillier.py --benchmark-only -s``; the
conftest prints the ours/baseline ratio of the group after the run.

Setting: a 2048-bit modulus (about 112-bit security, NIST SP 800-57 Pt. 1 Table 2; the
library default is 3072), 4 holders, a gradient of 10,000 parameters per holder quantized
to signed 32-bit integers (clip 4096, scale 2^18, unbiased stochastic rounding); both sides
aggregate the *same* integers and check the decrypted sum.

* ``__ours``: the protocol's aggregation step (`securecomp.models.paillier.aggregation`):
  each holder encrypts its vector in the packed layout (34-bit slots, 60 per ciphertext,
  167 ciphertexts) and serializes it; the aggregator loads and validates the four, adds
  them and serializes the sum (re-randomized); the key holder loads and decrypts it. Sealing
  of the links (AES-GCM) is left out; it costs microseconds.
* ``__phe``: phe used the usual way, one ``EncryptedNumber`` per value: each holder
  encrypts, the aggregator adds element-wise, the key holder decrypts; no serialization.
  It takes minutes for 10,000 values, so it is **timed in one round on a sample of the
  first 1,000 values of each holder and the time is scaled by 10** (per-element cost is
  linear in the number of values): the recorded time is the extrapolated time for
  10,000; ``extra_info`` keeps the measured sample time and the factor.

Target: ours at least 20x faster.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import phe
import phe.util
import pytest

from securecomp.he.paillier import PaillierBackend, PaillierSecretKey, paillier_keygen
from securecomp.models.paillier import PaillierOptions, decrypt_sum, encrypt_update, sum_updates
from securecomp.models.paillier.gradient import quantize_signed

BITS = 2048
N_PARAMS = 10_000
N_HOLDERS = 4
SAMPLE = 1_000
SCALE = N_PARAMS / SAMPLE
OPTIONS = PaillierOptions(n_holders=N_HOLDERS, key_bits=BITS)
_RNG = np.random.default_rng(2024)
GRADIENTS = _RNG.normal(scale=0.05, size=(N_HOLDERS, N_PARAMS))
INTS = [quantize_signed(g, OPTIONS.quantization, _RNG)[0] for g in GRADIENTS]
TOTAL = np.sum(INTS, axis=0)


@pytest.fixture(scope="module")
def keys() -> tuple[PaillierBackend, PaillierSecretKey]:
    # Both sides must run on gmpy2, or the comparison measures Python's pow.
    assert phe.util.HAVE_GMP, "phe runs without gmpy2; install gmpy2"
    backend, secret = paillier_keygen(BITS)
    assert backend.key.security.bits == 112
    return backend, secret


def _label(benchmark: Any, backend: PaillierBackend) -> None:
    benchmark.extra_info["modulus_bits"] = BITS
    benchmark.extra_info["security"] = str(backend.key.security)
    benchmark.extra_info["parameters"] = N_PARAMS
    benchmark.extra_info["holders"] = N_HOLDERS


@pytest.mark.benchmark(group="paillier_aggregate_10000x4")
def test_aggregate__ours(benchmark: Any, keys: tuple[PaillierBackend, PaillierSecretKey]) -> None:
    backend, secret = keys
    sent: list[int] = []

    def run() -> np.ndarray:
        vb = OPTIONS.value_bits
        updates = [
            encrypt_update(backend, q, n_holders=N_HOLDERS, value_bits=vb).to_bytes() for q in INTS
        ]
        total = sum_updates(backend, [backend.from_bytes(u) for u in updates]).to_bytes()
        sent[:] = [*map(len, updates), len(total)]
        return decrypt_sum(backend.from_bytes(total), secret, n_holders=N_HOLDERS)

    out = benchmark.pedantic(run, rounds=2, iterations=1)
    np.testing.assert_array_equal(out, TOTAL)
    _label(benchmark, backend)
    benchmark.extra_info["bytes_per_holder"] = sent[0]
    benchmark.extra_info["bytes_total"] = sum(sent)
    print(f"\nours: {sent[0]} bytes per holder, {sum(sent)} bytes in all")


@pytest.mark.benchmark(group="paillier_aggregate_10000x4")
def test_aggregate__phe(benchmark: Any, keys: tuple[PaillierBackend, PaillierSecretKey]) -> None:
    backend, secret = keys
    public, private = backend.key.to_phe(), secret.to_phe()
    sample = [[int(v) for v in q[:SAMPLE]] for q in INTS]

    def run() -> list[int]:
        encrypted = [[public.encrypt(v) for v in holder] for holder in sample]
        sums = [a + b + c + d for a, b, c, d in zip(*encrypted, strict=True)]
        return [private.decrypt(s) for s in sums]

    start = time.perf_counter()
    # The recorded duration is the sample's, scaled to 10,000 values (see the docstring):
    # the timer pytest-benchmark reads is multiplied by the factor.
    benchmark._timer = lambda: time.perf_counter() * SCALE
    out = benchmark.pedantic(run, rounds=1, iterations=1)
    measured = time.perf_counter() - start
    assert out == [int(v) for v in TOTAL[:SAMPLE]]
    _label(benchmark, backend)
    width = backend.key.ciphertext_bytes
    benchmark.extra_info.update(
        sample_values=SAMPLE,
        scale_factor=SCALE,
        sample_seconds_measured=round(measured, 3),
        bytes_per_holder=N_PARAMS * width,
        bytes_total=(N_HOLDERS + 1) * N_PARAMS * width,
    )
    print(
        f"\nphe: sample of {SAMPLE} values timed at {measured:.2f} s, scaled x{SCALE:g}; "
        f"{N_PARAMS * width} bytes per holder at {width} bytes per ciphertext"
    )
