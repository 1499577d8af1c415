"""Conditional randomized rounding: the enforced norm bound, the paper's formula, unbiasedness."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto import AesCtrPrg
from securecomp.dp import conditional_round, max_attempts, rounded_norm_bound
from securecomp.errors import EncodingOverflowError, ParameterError


def _paper_bound(c: float, d: int, beta: float) -> float:
    # Kairouz, Liu, Steinke (ICML 2021), Theorem 1, written out independently.
    trivial = (c + math.sqrt(d)) ** 2
    if beta == 0.0:
        return trivial
    return min(trivial, c**2 + d / 4 + math.sqrt(2 * math.log(1 / beta)) * (c + math.sqrt(d) / 2))


@pytest.mark.parametrize(
    ("c", "d", "beta"),
    [(10.0, 16, 0.0), (10.0, 16, math.exp(-0.5)), (1000.0, 1 << 20, math.exp(-0.5)), (3.5, 7, 0.9)],
)
def test_threshold_is_the_floor_of_the_papers_bound(c: float, d: int, beta: float) -> None:
    assert rounded_norm_bound(c, d, beta) == math.floor(_paper_bound(c, d, beta))


@settings(max_examples=60, deadline=None)
@given(
    dim=st.integers(1, 40),
    beta=st.sampled_from([0.0, 0.1, math.exp(-0.5), 0.9]),
    seed=st.binary(min_size=32, max_size=32),
    data=st.data(),
)
def test_rounded_vector_meets_the_threshold_and_moves_less_than_one(
    dim: int, beta: float, seed: bytes, data: st.DataObject
) -> None:
    y = np.array(
        data.draw(st.lists(st.floats(-50, 50, allow_nan=False), min_size=dim, max_size=dim))
    )
    c = float(np.linalg.norm(y))
    limit = rounded_norm_bound(c, dim, beta)
    q, used = conditional_round(y, limit, AesCtrPrg(seed), attempts=max_attempts(beta))
    assert q.dtype == np.int64
    assert int(np.dot(q, q)) <= limit
    assert np.all(np.abs(q - y) < 1.0)
    assert 1 <= used <= max_attempts(beta)


def test_plain_rounding_is_unbiased() -> None:
    # With beta = 0 the first attempt always succeeds: plain randomized rounding, whose mean
    # over many independent roundings approaches y (each coordinate a Bernoulli of mean frac).
    y = np.array([0.25, -1.75, 3.5, 0.0, 7.9, -0.01])
    prg = AesCtrPrg(b"\x01" * 32)
    trials = 20000
    limit = rounded_norm_bound(float(np.linalg.norm(y)), y.size, 0.0)
    total = np.zeros(y.size)
    for _ in range(trials):
        q, used = conditional_round(y, limit, prg)
        assert used == 1
        total += q
    frac = y - np.floor(y)
    se = np.sqrt(frac * (1 - frac) / trials)
    assert np.all(np.abs(total / trials - y) <= 5 * se + 1e-12)


def test_squared_norm_is_decided_exactly_at_the_threshold() -> None:
    # Integer inputs round to themselves: the squared norm is exactly 3 * 10^2 = 300.
    y = np.array([10.0, -10.0, 10.0])
    q, _ = conditional_round(y, 300, AesCtrPrg(b"\x02" * 32))
    assert q.tolist() == [10, -10, 10]
    with pytest.raises(EncodingOverflowError):
        conditional_round(y, 299, AesCtrPrg(b"\x02" * 32), attempts=3)


def test_bad_arguments_are_refused() -> None:
    prg = AesCtrPrg(b"\x03" * 32)
    with pytest.raises(ParameterError):
        rounded_norm_bound(1.0, 4, 1.0)
    with pytest.raises(ParameterError):
        rounded_norm_bound(2.0**31, 4, 0.5)  # squared norm could reach 2^62
    with pytest.raises(EncodingOverflowError):
        conditional_round(np.array([np.nan]), 10, prg)
    with pytest.raises(ParameterError):
        conditional_round(np.ones(2), 10, np.random.default_rng(0))  # type: ignore[arg-type]
