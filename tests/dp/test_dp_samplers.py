"""Noise samplers from AES-CTR: exact table inversion, and goodness of fit of the outputs.

Statistical design: every test draws from fixed-seed keystreams, so it is deterministic;
the thresholds are those of a test at level about 1e-3 (chi-square p-value > 1e-3; moments
within 5 standard errors, the standard error of a variance estimated with the sample's
fourth moment). The reference pmfs come from scipy.stats or are written out here, never
from the samplers' own tables.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from securecomp.crypto import AesCtrPrg
from securecomp.dp import CdtSampler, DiscreteGaussianSampler, PoissonSampler, SkellamSampler
from securecomp.errors import ParameterError

N = 200_000
ALPHA = 1e-3


def _chi_square_p(samples: npt.NDArray[np.int64], support: np.ndarray, pmf: np.ndarray) -> float:
    """Chi-square p-value, merging tail cells until every expected count is at least 5."""
    expected = pmf / pmf.sum() * samples.size
    counts = np.array([np.count_nonzero(samples == v) for v in support], dtype=np.float64)
    counts[0] += np.count_nonzero(samples < support[0])
    counts[-1] += np.count_nonzero(samples > support[-1])
    cells_o: list[float] = []
    cells_e: list[float] = []
    acc_o = acc_e = 0.0
    for o, e in zip(counts, expected, strict=True):
        acc_o += o
        acc_e += e
        if acc_e >= 5.0:
            cells_o.append(acc_o)
            cells_e.append(acc_e)
            acc_o = acc_e = 0.0
    cells_o[-1] += acc_o
    cells_e[-1] += acc_e
    return float(stats.chisquare(cells_o, cells_e).pvalue)


def _assert_moments(samples: npt.NDArray[np.int64], mean: float, variance: float) -> None:
    x = samples.astype(np.float64)
    n = x.size
    assert abs(x.mean() - mean) <= 5.0 * math.sqrt(variance / n)
    fourth = float(np.mean((x - x.mean()) ** 4))
    se_var = math.sqrt(max(fourth - variance**2, 0.0) / n)
    assert abs(x.var(ddof=1) - variance) <= 5.0 * se_var


def _dgauss_pmf(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    support = np.arange(-math.ceil(15 * sigma) - 3, math.ceil(15 * sigma) + 4)
    weights = np.exp(-(support.astype(np.float64) ** 2) / (2 * sigma * sigma))
    return support, weights / weights.sum()


# --- the table ------------------------------------------------------------------------------


def test_inversion_matches_python_integer_bisection() -> None:
    # Weights whose cumulative entries share high halves exercise the exact low-half compare.
    weights = [3, 0, 1 << 70, 5, 1 << 90, 1, 1]
    table = CdtSampler(weights, -2, tail_mass=0.0)
    total = sum(weights)
    entries = [(sum(weights[: i + 1]) << 128) // total for i in range(len(weights) - 1)]
    rng = np.random.default_rng(0)
    draws = [int(h) << 64 | int(lo) for h, lo in rng.integers(0, 2**64, (2000, 2), np.uint64)]
    # Small draws (high half 0, like most entries here) and the entries themselves, +-1.
    draws += [int(v) for v in rng.integers(0, 2**64, 500, np.uint64)]
    draws += [e + k for e in entries for k in (-1, 0, 1) if 0 <= e + k < 1 << 128]
    u_hi = np.array([d >> 64 for d in draws], dtype=np.uint64)
    u_lo = np.array([d & ((1 << 64) - 1) for d in draws], dtype=np.uint64)
    want = [-2 + bisect.bisect_right(entries, d) for d in draws]
    assert table.invert(u_hi, u_lo).tolist() == want


def test_table_of_small_weights_fits() -> None:
    table = CdtSampler([1, 2, 3, 4], 10, tail_mass=0.0)
    x = table.sample(N, AesCtrPrg(b"\x10" * 32))
    assert set(np.unique(x).tolist()) <= {10, 11, 12, 13}
    assert _chi_square_p(x, np.arange(10, 14), np.array([1, 2, 3, 4.0])) > ALPHA
    assert table.mean == pytest.approx(12.0) and table.variance == pytest.approx(1.0)


def test_table_refuses_bad_weights() -> None:
    with pytest.raises(ParameterError):
        CdtSampler([0, 0], 0, tail_mass=0.0)
    with pytest.raises(ParameterError):
        CdtSampler([1, -1], 0, tail_mass=0.0)
    with pytest.raises(ParameterError):
        CdtSampler([1], 0, tail_mass=0.0).sample(3, np.random.default_rng(0))  # type: ignore[arg-type]


# --- discrete Gaussian ----------------------------------------------------------------------


@pytest.mark.parametrize(("sigma", "seed"), [(0.5, 1), (3.7, 2), (40.0, 3)])
def test_discrete_gaussian_fits_its_pmf(sigma: float, seed: int) -> None:
    sampler = DiscreteGaussianSampler(sigma)
    x = sampler.sample(N, AesCtrPrg(bytes([seed]) * 32))
    support, pmf = _dgauss_pmf(sigma)
    assert _chi_square_p(x, support, pmf) > ALPHA
    variance = float(np.sum(support.astype(np.float64) ** 2 * pmf))
    _assert_moments(x, 0.0, variance)
    assert sampler.variance == pytest.approx(variance, rel=1e-9)
    assert np.abs(x).max() <= sampler.bound


def test_discrete_gaussian_table_cut_and_distance() -> None:
    for sigma in (0.5, 1.0, 100.0, 1000.0):
        sampler = DiscreteGaussianSampler(sigma)
        # Cut where the subgaussian tail bound falls to 2^-100 (independently recomputed).
        k = sampler.bound
        assert 2 * math.exp(-((k + 1) ** 2) / (2 * sigma**2)) <= 2.0**-100
        assert 2 * math.exp(-(k**2) / (2 * sigma**2)) > 2.0**-100
        assert sampler.tv_bound < 2.0**-99


def test_discrete_gaussian_refuses_out_of_range_sigma() -> None:
    for bad in (0.49, 0.0, -1.0, float("nan"), 2.0**15):
        with pytest.raises(ParameterError):
            DiscreteGaussianSampler(bad)


# --- Poisson and Skellam --------------------------------------------------------------------


@pytest.mark.parametrize(("mu", "seed"), [(0.3, 4), (7.5, 5), (1000.5, 6)])
def test_poisson_fits_scipy(mu: float, seed: int) -> None:
    sampler = PoissonSampler(mu)
    x = sampler.sample(N, AesCtrPrg(bytes([seed]) * 32))
    support = np.arange(sampler.low, sampler.high + 1)
    assert _chi_square_p(x, support, stats.poisson.pmf(support, mu)) > ALPHA
    _assert_moments(x, mu, mu)
    assert sampler.mean == pytest.approx(mu, rel=1e-12)
    assert sampler.variance == pytest.approx(mu, rel=1e-12)
    # The window leaves at most 2^-100 of scipy's probability outside.
    outside = stats.poisson.cdf(sampler.low - 1, mu) + stats.poisson.sf(sampler.high, mu)
    assert outside <= sampler.tail_mass + 1e-300


def test_large_poisson_moments() -> None:
    mu = 2.0**20 + 0.25
    x = PoissonSampler(mu).sample(N, AesCtrPrg(b"\x07" * 32))
    _assert_moments(x, mu, mu)


@pytest.mark.parametrize(("mu", "seed"), [(2.0, 8), (50.0, 9)])
def test_skellam_fits_scipy(mu: float, seed: int) -> None:
    sampler = SkellamSampler(mu)
    x = sampler.sample(N, AesCtrPrg(bytes([seed]) * 32))
    bound = math.ceil(12 * math.sqrt(2 * mu)) + 10
    support = np.arange(-bound, bound + 1)
    assert _chi_square_p(x, support, stats.skellam.pmf(support, mu, mu)) > ALPHA
    _assert_moments(x, 0.0, 2 * mu)
    assert sampler.variance == pytest.approx(2 * mu, rel=1e-12)


def test_sum_of_skellam_clients_is_skellam_of_the_sum() -> None:
    # Closure under summation (Agarwal et al., section 3): 16 clients adding Sk(mu) each give
    # Sk(16 mu); checked against scipy's Skellam pmf for the sum.
    mu, clients, n = 0.75, 16, 60_000
    sampler = SkellamSampler(mu)
    total = np.zeros(n, dtype=np.int64)
    for c in range(clients):
        total += sampler.sample(n, AesCtrPrg(bytes([100 + c]) * 32))
    m = clients * mu
    support = np.arange(-60, 61)
    assert _chi_square_p(total, support, stats.skellam.pmf(support, m, m)) > ALPHA
    _assert_moments(total, 0.0, 2 * m)


def test_samplers_draw_from_the_keystream_only() -> None:
    # Same seed, same samples; another seed, other samples (no hidden generator state).
    a = DiscreteGaussianSampler(5.0).sample(1000, AesCtrPrg(b"\x01" * 32))
    b = DiscreteGaussianSampler(5.0).sample(1000, AesCtrPrg(b"\x01" * 32))
    c = DiscreteGaussianSampler(5.0).sample(1000, AesCtrPrg(b"\x02" * 32))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ParameterError):
        PoissonSampler(0.0)
    with pytest.raises(ParameterError):
        SkellamSampler(2.0**28)
