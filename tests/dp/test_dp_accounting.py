"""Privacy accounting: the papers' bounds against exact Renyi divergences, and epsilon against
independent formulas (the analytic Gaussian mechanism, Bun-Steinke, dp-accounting)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp

from securecomp.dp import (
    ApproxZcdp,
    PrivacyAccountant,
    PrivacyEvent,
    RdpBound,
    bun_steinke_epsilon,
    ddgauss_rdp_bound,
    ddgauss_tau,
    rdp_to_epsilon,
    skellam_rdp_bound,
)
from securecomp.errors import ParameterError

# --- independent references ------------------------------------------------------------------


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _gaussian_delta(eps: float, mu: float) -> float:
    """Exact privacy profile of the Gaussian mechanism with sensitivity/sigma = mu (Balle
    and Wang, "Improving the Gaussian Mechanism", ICML 2018, Theorem 8)."""
    return _phi(mu / 2 - eps / mu) - math.exp(eps) * _phi(-mu / 2 - eps / mu)


def _gaussian_epsilon(mu: float, delta: float) -> float:
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _gaussian_delta(mid, mu) > delta else (lo, mid)
    return hi


def _log_conv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log of the convolution of two pmfs given as log-pmfs on 0-based index grids."""
    out = np.full(a.size + b.size - 1, -np.inf)
    for i, la in enumerate(a):
        out[i : i + b.size] = np.logaddexp(out[i : i + b.size], la + b)
    return out


def _renyi(log_p: np.ndarray, shift: int, alpha: float) -> float:
    """D_alpha(P(. - shift) || P) for a pmf on a centered grid (log-domain, exact sum)."""
    log_q = np.full_like(log_p, -np.inf)
    log_q[shift:] = log_p[: log_p.size - shift]
    terms = alpha * log_q + (1 - alpha) * log_p
    return float(logsumexp(terms[np.isfinite(terms)])) / (alpha - 1)


def _dgauss_sum_logpmf(sigma: float, n: int, half_width: int) -> np.ndarray:
    x = np.arange(-half_width, half_width + 1, dtype=np.float64)
    one = -(x**2) / (2 * sigma**2)
    one -= logsumexp(one)
    total = one
    for _ in range(n - 1):
        total = _log_conv(total, one)
    return total


def _skellam_logpmf(m: float, half_width: int) -> np.ndarray:
    # P[K = k] = sum_j Pois(j + k; m) Pois(j; m) for k >= 0, symmetric.
    j = np.arange(0, 8 * half_width + 200, dtype=np.float64)
    log_pois = -m + j * math.log(m) - gammaln(j + 1)
    pos = np.array(
        [logsumexp(log_pois[k:] + log_pois[: log_pois.size - k]) for k in range(half_width + 1)]
    )
    return np.concatenate([pos[:0:-1], pos])


# --- the papers' bounds hold -----------------------------------------------------------------


@pytest.mark.parametrize(("sigma", "n"), [(0.5, 1), (0.5, 3), (0.8, 4), (2.0, 5)])
@pytest.mark.parametrize("shift", [1, 2])
def test_ddgauss_bound_dominates_the_exact_renyi_divergence(
    sigma: float, n: int, shift: int
) -> None:
    log_p = _dgauss_sum_logpmf(sigma, n, half_width=int(40 * sigma) + 20)
    bound = ddgauss_rdp_bound(
        sigma=sigma, n_honest=n, l2_sensitivity=shift, l1_sensitivity=shift, dim=1
    )
    for alpha in (1.5, 2.0, 4.0, 8.0):
        exact = _renyi(log_p, shift, alpha)
        assert exact <= float(bound.rdp([alpha])[0]) * (1 + 1e-9) + 1e-12
        if n == 1:  # a single discrete Gaussian: the bound is the known alpha D^2 / (2 sigma^2)
            assert float(bound.rdp([alpha])[0]) == pytest.approx(alpha * shift**2 / (2 * sigma**2))


@pytest.mark.parametrize("m", [0.5, 2.0, 30.0])
@pytest.mark.parametrize("shift", [1, 3])
def test_skellam_bound_dominates_the_exact_renyi_divergence(m: float, shift: int) -> None:
    log_p = _skellam_logpmf(m, half_width=int(30 * math.sqrt(2 * m)) + 40)
    bound = skellam_rdp_bound(variance=2 * m, l2_sensitivity=shift, l1_sensitivity=shift)
    assert bound.integer_orders
    for alpha in (2, 3, 5, 10):
        exact = _renyi(log_p, shift, float(alpha))
        assert exact <= float(bound.rdp([alpha])[0]) * (1 + 1e-9)


def test_ddgauss_continuous_gaussian_limit() -> None:
    # sigma = 20 per client: tau ~ 10 n e^-3948, so the bound is the Gaussian rho = D^2/(2 n s^2).
    sigma, n, d2, dim = 20.0, 10, 300.0, 4096
    assert ddgauss_tau(sigma, n) < 1e-300
    bound = ddgauss_rdp_bound(
        sigma=sigma, n_honest=n, l2_sensitivity=d2, l1_sensitivity=d2 * 64, dim=dim
    )
    alphas = np.array([1.5, 2.0, 10.0, 100.0])
    np.testing.assert_allclose(bound.rdp(alphas), alphas * d2**2 / (2 * n * sigma**2), rtol=1e-12)


def test_ddgauss_tau_formula() -> None:
    sigma, n = 0.7, 6
    expected = 10 * sum(math.exp(-2 * math.pi**2 * sigma**2 * k / (k + 1)) for k in range(1, n))
    assert ddgauss_tau(sigma, n) == pytest.approx(expected, rel=1e-14)
    assert ddgauss_tau(sigma, 1) == 0.0


# --- conversion to (epsilon, delta) ------------------------------------------------------------


def _zcdp_event(rho: float) -> PrivacyEvent:
    return PrivacyEvent(RdpBound((ApproxZcdp(0.0, rho),), False, "test"))


@pytest.mark.parametrize(
    ("rho", "rounds", "delta"),
    [(0.5, 1, 1e-5), (0.005, 100, 1e-5), (2e-4, 1000, 1e-6), (0.02, 50, 1e-5), (1e-6, 10, 1e-9)],
)
def test_epsilon_is_sound_and_tight_for_the_gaussian_with_the_same_rho(
    rho: float, rounds: int, delta: float
) -> None:
    # The Gaussian mechanism with mu = sqrt(2 rho T) has exactly this Renyi curve, so the
    # conversion must be valid for it (exact epsilon <= ours) and not much looser.
    spent = PrivacyAccountant().compose(_zcdp_event(rho), rounds).get_epsilon(delta)
    mu = math.sqrt(2 * rho * rounds)
    exact = _gaussian_epsilon(mu, delta)
    assert _gaussian_delta(spent.epsilon, mu) <= delta
    assert exact <= spent.epsilon <= 1.1 * exact
    assert spent.epsilon <= bun_steinke_epsilon(rho * rounds, delta)
    # Independent evaluation of the Bun-Steinke formula.
    assert bun_steinke_epsilon(rho * rounds, delta) == pytest.approx(
        rho * rounds + 2 * math.sqrt(rho * rounds * math.log(1 / delta))
    )


def test_epsilon_matches_dp_accounting_for_a_gaussian_curve() -> None:
    dp_accounting = pytest.importorskip("dp_accounting")
    from dp_accounting import rdp

    for z, rounds in ((1.0, 1), (4.0, 100), (10.0, 2000)):
        reference = rdp.RdpAccountant()
        reference.compose(dp_accounting.GaussianDpEvent(z), rounds)
        theirs = reference.get_epsilon(1e-5)
        ours = PrivacyAccountant().compose(_zcdp_event(1 / (2 * z * z)), rounds)
        assert ours.get_epsilon(1e-5).epsilon == pytest.approx(theirs, rel=5e-3)


def test_skellam_approaches_the_gaussian_for_large_variance() -> None:
    d2, variance, rounds, delta = 100.0, 1e8, 20, 1e-5
    event = PrivacyEvent(
        skellam_rdp_bound(variance=variance, l2_sensitivity=d2, l1_sensitivity=d2 * 30)
    )
    spent = PrivacyAccountant().compose(event, rounds).get_epsilon(delta)
    gauss = PrivacyAccountant().compose(_zcdp_event(d2**2 / (2 * variance)), rounds)
    mu = math.sqrt(rounds) * d2 / math.sqrt(variance)
    # Sound for the Gaussian of the same variance and within 0.1% of its epsilon (the
    # 1e-5 slack: the real-order grid may miss the integer optimum by that much).
    assert _gaussian_epsilon(mu, delta) <= spent.epsilon
    assert 1.0 - 1e-5 <= spent.epsilon / gauss.get_epsilon(delta).epsilon <= 1.001


def test_composition_adds_the_curves() -> None:
    a = _zcdp_event(0.01)
    b = PrivacyEvent(RdpBound((ApproxZcdp(0.2, 0.001), ApproxZcdp(0.0, 0.05)), False, "test"))
    acc = PrivacyAccountant().compose(a, 3).compose(b, 2)
    alphas = np.array([1.1, 2.0, 7.0, 50.0])
    want = 3 * 0.01 * alphas + 2 * np.minimum(0.2 + 0.001 * alphas, 0.05 * alphas)
    np.testing.assert_allclose(acc.rdp(alphas), want, rtol=1e-14)
    assert acc.releases == 5
    assert PrivacyAccountant().get_epsilon(1e-5).epsilon == 0.0


def test_delta_split_covers_sampler_and_wrap_terms() -> None:
    event = PrivacyEvent(
        RdpBound((ApproxZcdp(0.0, 0.01),), False, "test"), sampler_tv=1e-20, wrap_probability=1e-12
    )
    acc = PrivacyAccountant().compose(event, 100)
    spent = acc.get_epsilon(1e-6)
    assert spent.delta_wrap == pytest.approx(1e-10)
    assert spent.delta_sampler == pytest.approx((1 + math.exp(spent.epsilon)) * 1e-18, rel=1e-6)
    total = spent.delta_rdp + spent.delta_sampler + spent.delta_wrap
    assert total == pytest.approx(1e-6, rel=1e-12)
    eps_rdp, _ = rdp_to_epsilon(acc.orders(), acc.rdp(), spent.delta_rdp)
    assert eps_rdp == pytest.approx(spent.epsilon, rel=1e-12)
    with pytest.raises(ParameterError, match="wrap-around"):
        acc.get_epsilon(1e-10)  # the wrap-around term alone is 1e-10
    # A guarantee so weak that (1 + e^eps) x the samplers' distance exceeds delta is refused.
    loose = PrivacyEvent(RdpBound((ApproxZcdp(0.0, 5.0),), False, "test"), sampler_tv=1e-20)
    with pytest.raises(ParameterError, match="vacuous"):
        PrivacyAccountant().compose(loose, 100).get_epsilon(1e-6)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ParameterError):
        ApproxZcdp(0.0, -1.0)
    with pytest.raises(ParameterError):
        rdp_to_epsilon([1.0, 2.0], [0.1, 0.2], 1e-5)
    with pytest.raises(ParameterError):
        rdp_to_epsilon([2.0], [0.1], 0.0)
    with pytest.raises(ParameterError):
        ddgauss_rdp_bound(sigma=0.4, n_honest=2, l2_sensitivity=1, l1_sensitivity=1, dim=1)
    with pytest.raises(ParameterError):
        PrivacyAccountant().compose(_zcdp_event(0.1), -1)
