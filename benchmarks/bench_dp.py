"""Distributed-DP client encoding at d = 10^6 against a numpy floor.

The client pipeline of `securecomp.dp.encode_update` (Kairouz et al. 2021; Agarwal et al.
2021): randomized Hadamard rotation, L2 clipping, scaling, conditional randomized rounding,
noise from AES-CTR through exact CDT samplers, reduction mod 2^b. The floor does the same
arithmetic with numpy alone: the same Walsh-Hadamard transform written as numpy butterflies,
signs, rounding coins and *continuous* Gaussian noise from numpy's PCG64 (not a
cryptographic source, and rounded instead of sampled exactly), with a single rounding
attempt. The ratio is the price of the exact, cryptographically sourced noise.

Run with ``python -m pytest benchmarks/bench_dp.py --benchmark-only -s``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from securecomp.crypto import AesCtrPrg
from securecomp.dp import DistributedDpConfig, encode_update, padded_dim

DIM = 1_000_000
N_CLIENTS = 500
MIN_SURVIVORS = 400
CORRUPT = 50
BITS = 20


def _config(mechanism: str) -> DistributedDpConfig:
    return DistributedDpConfig.create(
        mechanism,  # type: ignore[arg-type]
        dim=DIM,
        l2_clip=1.0,
        noise_stddev=10.0,
        n_clients=N_CLIENTS,
        min_survivors=MIN_SURVIVORS,
        corrupt_count=CORRUPT,
        modulus_bits=BITS,
    )


@pytest.fixture(scope="module")
def update() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(DIM)
    return x / np.linalg.norm(x)


def _numpy_floor(x: np.ndarray, scale: float, sigma: float, rng: np.random.Generator) -> Any:
    d = padded_dim(DIM)
    y = np.zeros(d)
    y[:DIM] = x
    y *= rng.choice(np.array([-1.0, 1.0]), size=d)
    h = 1
    while h < d:  # in-place butterflies of the Walsh-Hadamard transform
        v = y.reshape(-1, 2, h)
        a = v[:, 0, :].copy()
        v[:, 0, :] += v[:, 1, :]
        v[:, 1, :] = a - v[:, 1, :]
        h *= 2
    y *= scale / np.sqrt(d)
    norm = np.linalg.norm(y)
    if norm > scale:
        y *= scale / norm
    low = np.floor(y)
    y = low + (rng.random(d) < (y - low))
    y += np.rint(rng.normal(0.0, sigma, size=d))
    return y.astype(np.int64) & ((1 << BITS) - 1)


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
@pytest.mark.benchmark(group="dp_encode_client_d1e6")
def test_dp_encode__ours(benchmark: Any, update: np.ndarray, mechanism: str) -> None:
    config = _config(mechanism)
    rotation = config.rotation(bytes(32), session=b"bench", round=0)
    prg = AesCtrPrg(bytes(range(32)))
    out = benchmark(encode_update, update, config, rotation, prg=prg)
    assert out.values.shape == (padded_dim(DIM),)
    assert int(out.values.max()) < (1 << BITS)
    print(
        f"\n{mechanism}: b = {BITS}, scale = {config.scale:.1f}, per-client sigma = "
        f"{config.client_sigma:.1f} integer units, d' = {padded_dim(DIM)}"
    )


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
@pytest.mark.benchmark(group="dp_encode_client_d1e6")
def test_dp_encode__numpy(benchmark: Any, update: np.ndarray, mechanism: str) -> None:
    config = _config(mechanism)
    rng = np.random.default_rng(1)
    out = benchmark(_numpy_floor, update, config.scale, config.client_sigma, rng)
    assert out.shape == (padded_dim(DIM),)
