"""`SimulatedCKKSBackend`: levels, quantization, wrap-around and noise like CKKS."""

from __future__ import annotations

import numpy as np
import pytest

from securecomp.errors import DepthExhaustedError, EncodingOverflowError, KeyMismatchError
from securecomp.he.ckks import ckks_keygen
from securecomp.models.ckks import CKKSProtocol, SimulatedCKKSBackend, SimulationKey
from securecomp.models.protocol import TrainingSpec
from securecomp.params import DEFAULT_CKKS_PARAMETERS, CKKSParameters, scale_drift

DEPTH2 = CKKSParameters(8192, (41, 27, 27, 41), 27)


def _sim(
    params: CKKSParameters = DEPTH2, noise: bool = False, seed: int = 0
) -> SimulatedCKKSBackend:
    return SimulatedCKKSBackend(params, rng=np.random.default_rng(seed), noise=noise)


def test_levels_follow_ckks_and_the_chain_runs_out() -> None:
    sim = _sim()
    x = sim.encrypt(np.array([1.0, 2.0, -0.5]))
    assert x.meta["level"] == 0
    assert (x * x).meta["level"] == 1
    assert (x * 3).meta["level"] == 0  # small integers multiply by additions
    assert (x * 0.5).meta["level"] == 1
    assert (x + x * x).meta["level"] == 1
    assert x.polyval([0.5, 0.2, 0.0, -0.004]).meta["level"] == 2
    x3 = x * x * x
    assert x3.meta["level"] == 2
    with pytest.raises(DepthExhaustedError):
        x3 * x
    with pytest.raises(DepthExhaustedError):
        x.polyval([0.5, 0.2, 0, -0.004, 0, 1e-5, 0, -1e-7])  # degree 7: 3 levels
    X = sim.encrypt(np.ones((4, 2)))
    assert (X.T @ sim.encrypt(np.ones(4))).meta["level"] == 1
    assert (X @ sim.encrypt(np.ones(2))).meta["level"] == 2  # replicate, then multiply


def test_plaintext_constants_are_quantized_with_the_drift_correction() -> None:
    sim = _sim()
    x = np.array([1.0, -3.0, 7.5])
    out = (sim.encrypt(x) * (1.0 / 3.0)).decrypt(sim.key)
    exact = x / 3.0
    delta = 2.0**27
    assert np.all(np.abs(out - exact) <= np.abs(x) * 0.5 / delta * 1.01)
    assert np.any(out != exact)  # 1/3 is not a multiple of 2^-27
    # The rounding grid is shifted by the drift correction p/2^s of the consumed prime.
    f = scale_drift(DEPTH2).level_factors[0]
    k = 1.0 / f
    np.testing.assert_allclose(out, x * np.rint(k * delta / 3.0) / (k * delta), rtol=0, atol=1e-15)


def test_polynomial_coefficients_are_realised_like_the_evaluator() -> None:
    sim = _sim()
    z = np.linspace(-1.5, 1.5, 7)
    coeffs = [0.5, 1.53, 0.0, -2.35, 0.0, 1.38]
    params = CKKSParameters(8192, (41, 27, 27, 27, 41), 27)
    sim3 = _sim(params)
    out = sim3.encrypt(z).polyval(coeffs).decrypt(sim3.key)
    exact = np.polynomial.polynomial.polyval(z, coeffs)
    assert np.max(np.abs(out - exact)) < 1e-6  # only the leaf constants are rounded
    assert sim.encrypt(z).polyval([2.0]).meta["level"] == 0  # a constant is a fresh encryption


def test_values_beyond_the_range_of_their_level_wrap_around() -> None:
    sim = _sim()
    x = sim.encrypt(np.array([1000.0]))
    y = x * 1000.5 * 1000.5  # level 2: only the 41-bit prime is left
    modulus = 2.0 ** (41 - 27)
    got = float(y.decrypt(sim.key)[0])
    assert abs(got) <= modulus / 2
    assert got == pytest.approx(1000.0 * 1000.5**2 - modulus * round(1000.0 * 1000.5**2 / modulus))
    with pytest.raises(EncodingOverflowError):
        sim.encrypt(np.array([1e6]))


def test_keys_do_not_mix() -> None:
    a, b = _sim(), _sim()
    x, y = a.encrypt(np.ones(2)), b.encrypt(np.ones(2))
    with pytest.raises(KeyMismatchError):
        x + y
    with pytest.raises(KeyMismatchError):
        x.decrypt(b.key)
    with pytest.raises(KeyMismatchError):
        x.decrypt(SimulationKey())


def test_fresh_noise_matches_real_tenseal() -> None:
    """The simulated fresh error has the standard deviation TenSEAL's ciphertexts show."""
    backend, key = ckks_keygen()
    n = DEFAULT_CKKS_PARAMETERS.slot_count
    real = np.concatenate([backend.encrypt(np.zeros(n)).decrypt(key) for _ in range(4)])
    sim = _sim(DEFAULT_CKKS_PARAMETERS, noise=True, seed=1)
    simulated = sim.encrypt(np.zeros(4 * n)).decrypt(sim.key)
    ratio = float(np.std(simulated) / np.std(real))
    assert 0.7 < ratio < 1.4, ratio
    # Heavy tails (Laplace, kurtosis 6) in both.
    for e in (real, simulated):
        kurt = float(np.mean(e**4) / np.mean(e**2) ** 2)
        assert 4.0 < kurt < 8.0


def test_simulated_fit_is_close_to_float64_and_reports_itself() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(float)
    spec = TrainingSpec("logistic", learning_rate=0.5, max_iter=4, options={"noise_seed": 5})
    proto = CKKSProtocol(spec, simulate=True)
    fit = proto.fit(X, y)
    coef, intercept = proto.float64_reference(X, y)
    assert np.max(np.abs(fit.coef - coef)) < 1e-3
    assert abs(fit.intercept - intercept) < 1e-3
    assert "simulation" in fit.report.metrics["execution"]
    assert fit.report.metrics["refreshes"] == 4
    assert fit.report.comm is None  # nothing is sent in a simulation
    scores = proto.decision_function(fit, X).scores
    np.testing.assert_allclose(scores, X @ fit.coef + fit.intercept, atol=1e-3)
    probs = proto.infer(fit, X[:10], output="probabilities").scores
    sig = fit.state.cfg.sigmoid
    np.testing.assert_allclose(probs, sig(X[:10] @ fit.coef + fit.intercept), atol=1e-3)


def test_simulated_run_without_refresh_uses_the_tensor_optimizer() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([0.5, -1.0, 2.0]) + 1.0
    spec = TrainingSpec("linear", learning_rate=0.2, max_iter=2, options={"refresh": "never"})
    fit = CKKSProtocol(spec, simulate=True).fit(X, y)
    coef, intercept = CKKSProtocol(spec).float64_reference(X, y)
    np.testing.assert_allclose(fit.coef, coef, atol=1e-4)
    assert fit.report.metrics["refreshes"] == 0
    assert fit.state.plan.chain_depth_used == 8
    assert abs(fit.intercept - intercept) < 1e-4
