"""Scale drift: the model, its direction checked against TenSEAL, and constant correction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tenseal as ts

from securecomp.errors import ParameterError
from securecomp.params import (
    DEFAULT_CKKS_PARAMETERS,
    CKKSParameters,
    constant_correction,
    rescale_primes,
    scale_drift,
)

DRIFTY_26 = CKKSParameters(8192, (31, 26, 26, 26, 26, 26, 26, 31), 26)
DRIFTY_21 = CKKSParameters(8192, (40, 21, 21, 21, 21, 21, 21, 40), 21)


def make_context(params: CKKSParameters) -> ts.Context:
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
    )
    ctx.global_scale = params.scale
    return ctx


@pytest.fixture(scope="module")
def ctx26() -> ts.Context:
    return make_context(DRIFTY_26)


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    return np.random.default_rng(7).uniform(0.5, 1.0, DRIFTY_26.slot_count)


def test_known_figures() -> None:
    # Field notes: [31, 26x6, 31] at N=8192 drifts about 2.8% over its 6 levels ...
    assert scale_drift(DRIFTY_26).cumulative_drift == pytest.approx(0.0283, abs=5e-4)
    # ... 21-bit primes at N=8192 reach about 6x ...
    assert scale_drift(DRIFTY_21).cumulative[-1] == pytest.approx(5.98, abs=0.05)
    # ... and 40-bit primes drift about nothing.
    assert scale_drift(DEFAULT_CKKS_PARAMETERS).cumulative_drift < 1e-5
    deep40 = CKKSParameters(16384, (60, *[40] * 7, 60), 40)
    assert scale_drift(deep40).cumulative_drift < 1e-4


def test_report_structure() -> None:
    report = scale_drift(DRIFTY_26)
    primes = DRIFTY_26.primes
    # Consumed from the end: last data prime first, never the special or the first prime.
    assert report.primes == tuple(reversed(primes[1:-1]))
    assert report.primes == rescale_primes(DRIFTY_26)
    assert report.depth == 6
    for p, f in zip(report.primes, report.level_factors, strict=True):
        assert f == 2.0**26 / p
        assert f > 1.0  # SEAL's primes sit below 2^b, so results grow
    np.testing.assert_allclose(report.cumulative, np.cumprod(report.level_factors), rtol=1e-15)
    assert report.max_level_drift == max(abs(f - 1) for f in report.level_factors)
    partial = scale_drift(DRIFTY_26, 2)
    assert partial.level_factors == report.level_factors[:2]
    empty = scale_drift(DRIFTY_26, 0)
    assert empty.cumulative_drift == 0.0 and empty.max_level_drift == 0.0


@pytest.mark.parametrize("depth", [-1, 7, 2.0, True])
def test_depth_out_of_range(depth: object) -> None:
    with pytest.raises(ParameterError, match="depth"):
        scale_drift(DRIFTY_26, depth)  # type: ignore[arg-type]


def test_direction_matches_tenseal(ctx26: ts.Context, values: np.ndarray) -> None:
    """Encrypt x, multiply by plaintext 1.0 with auto-rescale, decrypt: x * prod(2^s/p)."""
    report = scale_drift(DRIFTY_26)
    vec = ts.ckks_vector(ctx26, values)
    for k in range(DRIFTY_26.depth):
        vec = vec * 1.0
        measured = float(np.mean(np.asarray(vec.decrypt()) / values))
        assert measured == pytest.approx(report.cumulative[k], rel=2e-4)
    # The other direction (p/2^s) would be 1/1.028 = 0.972: clearly excluded.
    assert measured > 1.02


def test_huge_drift_matches_tenseal() -> None:
    ctx = make_context(DRIFTY_21)
    vec = ts.ckks_vector(ctx, [1.0] * 16)
    for _ in range(DRIFTY_21.depth):
        vec = vec * 1.0
    got = float(np.mean(vec.decrypt()))
    assert got == pytest.approx(scale_drift(DRIFTY_21).cumulative[-1], rel=1e-2)


def test_constant_correction_values() -> None:
    report = scale_drift(DRIFTY_26)
    for level in range(DRIFTY_26.depth):
        c = constant_correction(DRIFTY_26, level)
        assert c == report.primes[level] / 2.0**26
        assert c * report.level_factors[level] == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("level", [-1, 6, 1.0])
def test_constant_correction_level_out_of_range(level: object) -> None:
    with pytest.raises(ParameterError, match="level"):
        constant_correction(DRIFTY_26, level)  # type: ignore[arg-type]


def test_constant_correction_cancels_drift_in_tenseal(
    ctx26: ts.Context, values: np.ndarray
) -> None:
    c = 0.9
    truth = values * c**DRIFTY_26.depth
    plain = ts.ckks_vector(ctx26, values)
    fixed = ts.ckks_vector(ctx26, values)
    for level in range(DRIFTY_26.depth):
        plain = plain * c
        fixed = fixed * (c * constant_correction(DRIFTY_26, level))
    err_plain = np.abs(np.asarray(plain.decrypt()) - truth).max()
    err_fixed = np.abs(np.asarray(fixed.decrypt()) - truth).max()
    # Uncorrected: the full 2.8% bias; corrected: only noise (26-bit scale, 6 levels).
    assert err_plain > 0.02 * truth.min()
    assert err_fixed < 1e-3
    assert err_fixed < err_plain / 20
    assert math.isfinite(err_fixed)
