"""Packed Paillier gradient aggregation against per-element phe: 10,000 parameters, 4 holders.

Run with ``python -m pytest benchmarks/bench_models_paillier.py --benchmark-only -s``; the
conftest prints the ours/baseline ratio of each group after the run.

Setting: a 2048-bit modulus (about 112-bit security, NIST SP 800-57 Pt. 1 Table 2; the
library default is 3072), 4 holders, a gradient of 10,000 parameters per holder quantized
to signed 32-bit integers (clip 4096, scale 2^18, unbiased stochastic rounding); both sides
aggregate the *same* integers and check the decrypted sum. Every test runs ``ROUNDS``
rounds.

* ``__ours``: the protocol's aggregation step (`securecomp.models.paillier.aggregation`):
  each holder encrypts its vector in the packed layout (34-bit slots, 60 per ciphertext,
  167 ciphertexts for 10,000 values) and serializes it; the aggregator loads and validates
  the four, adds them and serializes the sum; the key holder loads and decrypts it. Sealing
  of the links (AES-GCM) is left out; it costs microseconds.
* ``__phe``: phe used the usual way, one ``EncryptedNumber`` per value: each holder
  encrypts, the aggregator adds element-wise, the key holder decrypts; no serialization.

Groups:

* ``paillier_aggregate_10000x4``: ours on the full 10,000 parameters (measured).
* ``paillier_aggregate_per_element_sample_1000x4``: ours and phe on the *same sample* of the
  first 1,000 values of each holder, both measured (phe takes minutes for 10,000 values).
  The conftest's ratio for this group is a measured one, at 1,000 values.

The phe test also reports (``extra_info`` and printed, never as its measured time) the
sample's median scaled by 10 to 10,000 parameters (per-element cost is linear in the
number of values) and the ratio of ours at 10,000 to that extrapolation.

Target: ours at least 20x faster.
"""

from __future__ import annotations

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
ROUNDS = 2
OPTIONS = PaillierOptions(n_holders=N_HOLDERS, key_bits=BITS)
_RNG = np.random.default_rng(2024)
GRADIENTS = _RNG.normal(scale=0.05, size=(N_HOLDERS, N_PARAMS))
INTS = [quantize_signed(g, OPTIONS.quantization, _RNG)[0] for g in GRADIENTS]
TOTAL = np.sum(INTS, axis=0)

FULL_GROUP = "paillier_aggregate_10000x4"
SAMPLE_GROUP = "paillier_aggregate_per_element_sample_1000x4"

#: Median seconds of ours on the full 10,000 parameters, for the phe test's extrapolation.
_MEDIANS: dict[str, float] = {}


@pytest.fixture(scope="module")
def keys() -> tuple[PaillierBackend, PaillierSecretKey]:
    # Both sides must run on gmpy2, or the comparison measures Python's pow.
    assert phe.util.HAVE_GMP, "phe runs without gmpy2; install gmpy2"
    backend, secret = paillier_keygen(BITS)
    assert backend.key.security.bits == 112
    return backend, secret


def _label(benchmark: Any, backend: PaillierBackend, values: int) -> None:
    benchmark.extra_info["modulus_bits"] = BITS
    benchmark.extra_info["security"] = str(backend.key.security)
    benchmark.extra_info["parameters"] = values
    benchmark.extra_info["holders"] = N_HOLDERS


def _fmt(seconds: float | None) -> str:
    return "n/a (benchmarks disabled)" if seconds is None else f"{seconds:.3f} s"


def _median(benchmark: Any) -> float | None:
    """The measured median in seconds (None when benchmarking is disabled)."""
    meta = getattr(benchmark, "stats", None)
    return None if meta is None else float(meta.stats.median)


def _ours(
    benchmark: Any, keys: tuple[PaillierBackend, PaillierSecretKey], ints: list[np.ndarray]
) -> list[int]:
    """Time ours on ``ints``; check the sum; returns the message sizes (holders', sum)."""
    backend, secret = keys
    sent: list[int] = []

    def run() -> np.ndarray:
        vb = OPTIONS.value_bits
        updates = [
            encrypt_update(backend, q, n_holders=N_HOLDERS, value_bits=vb).to_bytes() for q in ints
        ]
        total = sum_updates(backend, [backend.from_bytes(u) for u in updates]).to_bytes()
        sent[:] = [*map(len, updates), len(total)]
        return decrypt_sum(backend.from_bytes(total), secret, n_holders=N_HOLDERS)

    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    np.testing.assert_array_equal(out, np.sum(ints, axis=0))
    _label(benchmark, backend, ints[0].size)
    benchmark.extra_info["bytes_per_holder"] = sent[0]
    benchmark.extra_info["bytes_total"] = sum(sent)
    return sent


@pytest.mark.benchmark(group=FULL_GROUP)
def test_aggregate_10000__ours(
    benchmark: Any, keys: tuple[PaillierBackend, PaillierSecretKey]
) -> None:
    sent = _ours(benchmark, keys, INTS)
    median = _median(benchmark)
    if median is not None:
        _MEDIANS["ours_10000"] = median
    print(
        f"\nours, {N_PARAMS} parameters: median {_fmt(median)}; {sent[0]} bytes per holder, "
        f"{sum(sent)} bytes in all"
    )


@pytest.mark.benchmark(group=SAMPLE_GROUP)
def test_aggregate_sample__ours(
    benchmark: Any, keys: tuple[PaillierBackend, PaillierSecretKey]
) -> None:
    sent = _ours(benchmark, keys, [q[:SAMPLE] for q in INTS])
    median = _median(benchmark)
    print(f"\nours, sample of {SAMPLE}: median {_fmt(median)}; {sent[0]} bytes per holder")


@pytest.mark.benchmark(group=SAMPLE_GROUP)
def test_aggregate_sample__phe(
    benchmark: Any, keys: tuple[PaillierBackend, PaillierSecretKey]
) -> None:
    backend, secret = keys
    public, private = backend.key.to_phe(), secret.to_phe()
    sample = [[int(v) for v in q[:SAMPLE]] for q in INTS]

    def run() -> list[int]:
        encrypted = [[public.encrypt(v) for v in holder] for holder in sample]
        sums = [a + b + c + d for a, b, c, d in zip(*encrypted, strict=True)]
        return [private.decrypt(s) for s in sums]

    # The measured result is the sample's own time (this group holds the sample only).
    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    assert out == [int(v) for v in TOTAL[:SAMPLE]]
    _label(benchmark, backend, SAMPLE)
    width = backend.key.ciphertext_bytes
    benchmark.extra_info.update(
        sample_values=SAMPLE,
        scale_factor=SCALE,
        bytes_per_holder_10000=N_PARAMS * width,
        bytes_total_10000=(N_HOLDERS + 1) * N_PARAMS * width,
    )
    median = _median(benchmark)
    if median is None:
        return
    scaled = median * SCALE
    benchmark.extra_info["extrapolated_seconds_10000"] = round(scaled, 3)
    line = (
        f"\nphe, sample of {SAMPLE}: median {median:.3f} s measured; scaled x{SCALE:g} to "
        f"{N_PARAMS} parameters: {scaled:.1f} s (extrapolated); "
        f"{N_PARAMS * width} bytes per holder at {width} bytes per ciphertext"
    )
    ours = _MEDIANS.get("ours_10000")
    if ours is not None:
        benchmark.extra_info["ours_10000_seconds"] = round(ours, 3)
        benchmark.extra_info["ours_over_extrapolated_phe_10000"] = round(ours / scaled, 5)
        benchmark.extra_info["speedup_10000_extrapolated"] = round(scaled / ours, 2)
        line += (
            f"\nours at {N_PARAMS}: {ours:.3f} s; ours / extrapolated phe = {ours / scaled:.4f} "
            f"(speedup {scaled / ours:.1f}x)"
        )
    else:
        line += f"\n(run test_aggregate_10000__ours in the same session for the {N_PARAMS} ratio)"
    print(line)
