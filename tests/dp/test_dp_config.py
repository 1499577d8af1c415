"""Set-up checks: noise split, wrap-around bound and its refusal, modulus and scale choice."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from securecomp.crypto import AesCtrPrg
from securecomp.dp import DistributedDpConfig, Mechanism, encode_update, lift_centered
from securecomp.errors import InsecureParameterError, ParameterError
from securecomp.params import InsecureParametersWarning, insecure_test_parameters

BASE: dict[str, Any] = dict(dim=1000, l2_clip=1.0, noise_stddev=2.0, n_clients=50, min_survivors=40)


def make(mechanism: Any, **overrides: Any) -> DistributedDpConfig:
    return DistributedDpConfig.create(mechanism, **{**BASE, **overrides})


def _wrap_log2(mechanism: str, bits: int, n: int, d: int, cs: float, sigma: float) -> float:
    # The union bound of the configuration, written out independently (ddgauss branch).
    assert mechanism == "ddgauss"
    room = 2 ** (bits - 1) - 1 - n
    v = (cs * n) ** 2 / d + n * sigma**2
    return math.log2(d) + 1 - room**2 / (2 * v * math.log(2))


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
def test_noise_is_split_over_the_worst_case_honest_survivors(mechanism: str) -> None:
    cfg = make(mechanism, corrupt_count=5, scale=100.0)
    assert cfg.honest_clients == 40 - 5
    assert cfg.client_sigma**2 == pytest.approx((2.0 * 100.0) ** 2 / 35, rel=1e-14)
    # The honest noise alone has the claimed variance (noise_stddev * scale)^2.
    assert cfg.honest_clients * cfg.client_sigma**2 == pytest.approx((2.0 * 100.0) ** 2)


def test_wrap_probability_is_the_stated_union_bound() -> None:
    cfg = make("ddgauss", scale=64.0, modulus_bits=20)
    want = _wrap_log2("ddgauss", 20, 50, 1024, 64.0, cfg.client_sigma)
    assert cfg.log2_wrap_probability == pytest.approx(want, rel=1e-12)
    assert cfg.log2_wrap_probability <= -40


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
def test_smallest_modulus_is_chosen_and_smaller_ones_are_refused(mechanism: str) -> None:
    cfg = make(mechanism, scale=64.0)
    assert cfg.log2_wrap_probability <= -40
    with pytest.raises(ParameterError, match=rf"modulus_bits >= {cfg.modulus_bits}"):
        make(
            mechanism,
            scale=64.0,
            modulus_bits=cfg.modulus_bits - 1,
        )


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
def test_largest_scale_is_chosen_for_a_modulus(mechanism: str) -> None:
    cfg = make(mechanism, modulus_bits=16)
    assert -40.01 <= cfg.log2_wrap_probability <= -40
    with pytest.raises(ParameterError, match="wraps modulo"):
        make(mechanism, modulus_bits=16, scale=cfg.scale * 1.01)


def test_impossible_configurations_are_refused() -> None:
    with pytest.raises(ParameterError, match="no honest noise"):
        make("ddgauss", min_survivors=5, corrupt_count=5, scale=10.0)
    with pytest.raises(ParameterError, match="raise the scale"):
        make("ddgauss", scale=0.01)
    with pytest.raises(ParameterError, match="lower the scale"):
        make("ddgauss", scale=1e6)
    with pytest.raises(ParameterError):  # 6 bits cannot hold 50 clients at any scale
        make("skellam", modulus_bits=6)
    with pytest.raises(ParameterError):
        make("gauss", scale=10.0)
    with pytest.raises(ParameterError):
        make("ddgauss")


def test_sensitivity_comes_from_the_enforced_threshold() -> None:
    zero = make("ddgauss", scale=64.0)
    assert zero.l2_sensitivity**2 == pytest.approx(zero.rounding_threshold)
    assert zero.l1_sensitivity == pytest.approx(
        min(zero.rounding_threshold, math.sqrt(1024 * zero.rounding_threshold))
    )
    swap = make("ddgauss", scale=64.0, neighbouring="replace")
    assert swap.l2_sensitivity == pytest.approx(2 * zero.l2_sensitivity)
    assert swap.epsilon(10, 1e-5).epsilon > zero.epsilon(10, 1e-5).epsilon


def test_fingerprint_binds_every_parameter() -> None:
    a = make("ddgauss", scale=64.0, modulus_bits=24)
    same = make("ddgauss", scale=64.0, modulus_bits=24)
    assert a.fingerprint == same.fingerprint
    others = [
        make("skellam", scale=64.0, modulus_bits=24),
        make("ddgauss", scale=65.0, modulus_bits=24),
        make("ddgauss", scale=64.0, modulus_bits=25),
        make("ddgauss", scale=64.0, modulus_bits=24, corrupt_count=1),
    ]
    assert len({a.fingerprint, *(o.fingerprint for o in others)}) == 5


def test_observed_wraps_stay_below_a_loose_bound() -> None:
    # With wrap_bits = 2 the configuration allows up to 1/4 wrap probability per aggregate;
    # simulate aggregates and check that coordinates leave the centered range no more often.
    with pytest.warns(InsecureParametersWarning), insecure_test_parameters():
        cfg = DistributedDpConfig.create(
            "ddgauss", dim=60, l2_clip=1.0, noise_stddev=1.0, n_clients=8, scale=8.0, wrap_bits=2
        )
    assert cfg.log2_wrap_probability <= -2
    rot = cfg.rotation(b"r" * 16, session=b"s", round=0)
    rng = np.random.default_rng(5)
    half = 1 << (cfg.modulus_bits - 1)
    trials, wrapped = 200, 0
    for t in range(trials):
        xs = rng.normal(size=(8, 60))
        exact = np.zeros(cfg.padded_dim, dtype=np.int64)
        for i, x in enumerate(xs):
            enc = encode_update(x, cfg, rot, prg=AesCtrPrg(bytes([t % 256, i]) * 16))
            exact += lift_centered(enc.values, cfg.modulus_bits)  # each client's own integers
        wrapped += int(np.any((exact < -half) | (exact >= half)))
    assert wrapped / trials <= 0.25


@pytest.mark.parametrize(("mechanism", "seed"), [("ddgauss", 20), ("skellam", 40)])
def test_honest_noise_sum_has_the_claimed_variance(mechanism: Mechanism, seed: int) -> None:
    # The honest clients' noise summed per coordinate must have variance
    # (noise_stddev * scale)^2; z-test on the sample variance (fourth-moment standard error).
    cfg = DistributedDpConfig.create(
        mechanism,
        dim=100, l2_clip=1.0, noise_stddev=0.3, n_clients=10, min_survivors=9,
        corrupt_count=2, scale=40.0,
    )  # fmt: skip
    coords = 60_000
    total = np.zeros(coords, dtype=np.int64)
    for c in range(cfg.honest_clients):
        total += cfg.sampler.sample(coords, AesCtrPrg(bytes([seed + c]) * 32))
    claimed = (0.3 * 40.0) ** 2
    x = total.astype(np.float64)
    var = x.var(ddof=1)
    se = math.sqrt((np.mean((x - x.mean()) ** 4) - var**2) / coords)
    assert abs(var - claimed) <= 5 * se
    assert abs(x.mean()) <= 5 * math.sqrt(claimed / coords)


def test_wrap_bound_below_40_bits_needs_the_opt_in() -> None:
    # 2^-39 per aggregate is below the library's statistical floor: refused, with the fix.
    with pytest.raises(InsecureParameterError, match=r"wrap_bits >= 40.*insecure_test_parameters"):
        make("ddgauss", scale=64.0, wrap_bits=39)
    with pytest.raises(InsecureParameterError):
        DistributedDpConfig("ddgauss", 1000, 1.0, 2.0, 64.0, 32, 50, 40, wrap_bits=1)
    # Non-integers and out-of-range values are parameter errors, opt-in or not.
    for bad in (True, 40.0, 0, 129):
        with pytest.raises(ParameterError, match="wrap_bits"):
            make("ddgauss", scale=64.0, wrap_bits=bad)
    assert make("ddgauss", scale=64.0, wrap_bits=np.int64(41)).wrap_bits == 41
    with pytest.warns(InsecureParametersWarning), insecure_test_parameters():
        loose = make("ddgauss", modulus_bits=16, wrap_bits=20)
    assert -40 < loose.log2_wrap_probability <= -20
    assert loose.scale > make("ddgauss", modulus_bits=16).scale  # the looser bound is used
