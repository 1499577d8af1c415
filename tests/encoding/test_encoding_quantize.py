"""Quantization for secure aggregation: unbiasedness, clipping counts, wrap-free sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.encoding import (
    QuantizationParams,
    check_no_wrap,
    dequantize,
    modulus_bits_for,
    quantize,
)
from securecomp.errors import EncodingOverflowError, ParameterError


def signed(values: np.ndarray, bits: int) -> list[int]:
    """Two's complement reading of b-bit values, with Python integers."""
    return [int(v) - (1 << bits) if int(v) >= 1 << (bits - 1) else int(v) for v in values]


def test_stochastic_rounding_is_unbiased() -> None:
    rng = np.random.default_rng(20240601)
    x = rng.uniform(-1, 1, size=64)
    params = QuantizationParams(clip=1.0, scale=8.0, modulus_bits=16)
    reps = 4000
    q = quantize(np.tile(x, reps), params, rng=rng)
    levels = np.array(signed(q.values, 16), dtype=np.float64).reshape(reps, x.size)
    mean = levels.mean(axis=0) / params.scale
    # Each coordinate is a Bernoulli(p) step of 1/scale: standard error sqrt(p(1-p)/reps)/scale.
    frac = x * params.scale - np.floor(x * params.scale)
    se = np.sqrt(frac * (1 - frac) / reps) / params.scale
    z = np.abs(mean - x) / np.maximum(se, 1e-12)
    assert z.max() < 5.0
    # Rounding to nearest would be off by up to half a step; the mean is far closer.
    assert np.abs(mean - x).max() < 0.25 / params.scale


@settings(max_examples=50, deadline=None)
@given(
    xs=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=30),
    scale_bits=st.integers(0, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_each_value_is_floor_or_ceil_of_the_clipped_scaled_input(
    xs: list[float], scale_bits: int, seed: int
) -> None:
    clip = 3.0
    q = quantize(
        np.array(xs), clip=clip, scale_bits=scale_bits, modulus_bits=40,
        rng=np.random.default_rng(seed),
    )
    scale = 2.0**scale_bits
    for x, v in zip(xs, signed(q.values, 40), strict=True):
        y = min(max(x, -clip), clip) * scale
        assert v in (math.floor(y), math.ceil(y))
    assert q.n_clipped == sum(abs(x) > clip for x in xs)


def test_clipping_is_counted_and_exact() -> None:
    x = np.array([-5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 2.0000001, np.float64(-2.0)])
    before = x.copy()
    q = quantize(x, clip=2.0, scale=4.0, modulus_bits=8, rng=np.random.default_rng(0))
    assert q.n_clipped == 3
    # Clipped coordinates are exactly +-clip*scale (integers, no rounding coin involved).
    vals = signed(q.values, 8)
    assert vals[0] == -8 and vals[6] == 8 and vals[7] == 8
    assert vals[1:6] == [-8, -4, 0, 4, 8]
    assert np.array_equal(x, before)  # the caller's array is not modified
    assert q.values.dtype == np.uint64 and int(q.values.max()) < 2**8


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 50),
    dim=st.integers(1, 20),
    bits=st.integers(12, 64),
    seed=st.integers(0, 2**32 - 1),
)
def test_sum_of_quantized_vectors_dequantizes_exactly(
    n: int, dim: int, bits: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    params = QuantizationParams(clip=1.0, scale=2.0 ** (bits // 3), modulus_bits=bits)
    if n > params.max_summands:
        n = params.max_summands
    qs = [quantize(rng.normal(0, 1, dim), params, rng=rng) for _ in range(n)]
    # The server sums modulo 2^b (uint64 wrap-around, then the b-bit mask).
    total = np.zeros(dim, dtype=np.uint64)
    for q in qs:
        total += q.values
    total &= np.uint64(params.mask)
    expected = [sum(col) / params.scale for col in zip(*(signed(q.values, bits) for q in qs))]
    assert dequantize(total, n, params).tolist() == expected


def test_modulus_bits_for_is_minimal() -> None:
    for n, clip, scale_bits in [(1, 1.0, 0), (10, 1.0, 16), (1000, 0.5, 10), (3, 7.3, 5)]:
        b = modulus_bits_for(n, clip=clip, scale_bits=scale_bits)
        total = n * math.ceil(clip * 2**scale_bits)
        assert total <= 2 ** (b - 1) - 1
        assert total > 2 ** (b - 2) - 1
        params = QuantizationParams.from_scale_bits(
            clip=clip, scale_bits=scale_bits, modulus_bits=b
        )
        assert check_no_wrap(params, n) == n
        if b < 64:
            with pytest.raises(EncodingOverflowError, match=f"modulus_bits >= {b + 1}"):
                check_no_wrap(params, 2 * n + 1)
    with pytest.raises(ParameterError, match="64"):
        modulus_bits_for(2**20, clip=1.0, scale_bits=50)


def test_wrapping_configurations_are_refused() -> None:
    params = QuantizationParams(clip=1.0, scale=2.0**10, modulus_bits=16)
    assert params.max_summands == (2**15 - 1) // 2**10
    values = np.zeros(3, dtype=np.uint64)
    with pytest.raises(EncodingOverflowError, match="wraps"):
        dequantize(values, params.max_summands + 1, params)
    # A single value that cannot fit the modulus is refused when the parameters are made.
    with pytest.raises(EncodingOverflowError, match="modulus_bits"):
        QuantizationParams(clip=100.0, scale=2.0**10, modulus_bits=16)


def test_out_of_range_sum_is_detected() -> None:
    params = QuantizationParams(clip=1.0, scale=16.0, modulus_bits=16)
    bogus = np.array([16 * 5], dtype=np.uint64)  # more than 2 honest summands can produce
    with pytest.raises(EncodingOverflowError, match="n_summands"):
        dequantize(bogus, 2, params)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused(bad: float) -> None:
    with pytest.raises(EncodingOverflowError, match="NaN or infinite"):
        quantize(
            np.array([0.0, bad]), clip=1.0, scale=4.0, modulus_bits=8,
            rng=np.random.default_rng(0),
        )


def test_argument_validation() -> None:
    rng = np.random.default_rng(0)
    params = QuantizationParams(clip=1.0, scale=4.0, modulus_bits=8)
    with pytest.raises(ParameterError):
        quantize([0.5], params, clip=1.0, rng=rng)
    with pytest.raises(ParameterError):
        quantize([0.5], clip=1.0, modulus_bits=8, rng=rng)  # no scale
    with pytest.raises(ParameterError):
        quantize([0.5], clip=1.0, scale=4.0, scale_bits=2, modulus_bits=8, rng=rng)
    with pytest.raises(ParameterError):
        quantize([0.5], params, rng=np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        quantize(np.array(["a"]), params, rng=rng)
    for kwargs in [
        {"clip": 0.0, "scale": 1.0, "modulus_bits": 8},
        {"clip": 1.0, "scale": float("nan"), "modulus_bits": 8},
        {"clip": 1.0, "scale": 1.0, "modulus_bits": 65},
        {"clip": 1.0, "scale": 2.0**53, "modulus_bits": 64},
    ]:
        with pytest.raises(ParameterError):
            QuantizationParams(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        check_no_wrap(params, 0)
    with pytest.raises(ParameterError):
        dequantize(np.array([1.0]), 1, params)


def test_64_bit_modulus_and_empty_input() -> None:
    rng = np.random.default_rng(1)
    params = QuantizationParams.from_scale_bits(clip=4.0, scale_bits=40, modulus_bits=64)
    x = np.array([-3.5, 3.25, 0.0])
    q = quantize(x, params, rng=rng)
    assert dequantize(q.values, 1, params).tolist() == x.tolist()  # exact: x*2^40 is integral
    empty = quantize(np.array([]), params, rng=rng)
    assert empty.values.shape == (0,) and empty.n_clipped == 0
