"""Releasing CKKS results: noise flooding sized from a bound, budget, heuristic rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from securecomp.crypto import AesCtrPrg
from securecomp.errors import KeyMismatchError, ParameterError, ReleaseError
from securecomp.he.ckks import (
    CKKSBackend,
    CKKSContext,
    ckks_keygen,
    flooding_std,
    planned_error_bound,
    release,
    release_rounded_heuristic,
)
from securecomp.he.ckks.gaussian import BASE_SIGMA, DiscreteGaussian
from securecomp.params import DEFAULT_CKKS_PARAMETERS, CKKSNoiseModel
from securecomp.tensor import plain_keygen

P = DEFAULT_CKKS_PARAMETERS


@pytest.fixture()
def pair() -> tuple[CKKSBackend, CKKSContext]:
    # function-scoped: every test starts with an unspent release budget
    return ckks_keygen()


def test_release_refuses_without_a_bound_or_a_release_count(
    pair: tuple[CKKSBackend, CKKSContext],
) -> None:
    be, key = pair
    t = be.encrypt(np.ones(4))
    with pytest.raises(ReleaseError, match="no error bound"):
        release(t, key, n_releases=1)
    with pytest.raises(ReleaseError, match="n_releases"):
        release(t, key, error_bound=1e-6)
    with pytest.raises(ReleaseError):
        release(t, key, error_bound=0.0, n_releases=1)
    with pytest.raises(ReleaseError):
        release(t, key, error_bound=math.inf, n_releases=1)
    with pytest.raises(ParameterError):
        release(t, key, error_bound=1e-6, n_releases=0)
    with pytest.raises(KeyMismatchError):
        release(t, key.public(), error_bound=1e-6, n_releases=1)
    with pytest.raises(KeyMismatchError):
        release(t, ckks_keygen()[1], error_bound=1e-6, n_releases=1)
    plain, pkey = plain_keygen()
    with pytest.raises(ParameterError):
        release(plain.encrypt(np.ones(2)), pkey, error_bound=1e-6, n_releases=1)  # type: ignore[arg-type]


def test_flooding_has_the_claimed_scale(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, 4096)
    t = be.encrypt(x)
    bound = 1e-7  # a (made-up, small) bound so that the noise is measurable against x
    r = release(t, key, error_bound=bound, n_releases=4, s=20, prg=AesCtrPrg(bytes(32)))
    target = flooding_std(bound, s=20, n_releases=4, n_values=4096)
    assert target == pytest.approx(bound * math.sqrt(4 * 4096 / 2) * 2**10)
    assert target <= r.noise_std <= 1.1 * target
    err = r.values - x
    # 4096 samples: the sample std is within ~5% of σ w.h.p. (std error ~1.1%); mean ~ 0
    assert abs(err.std() / r.noise_std - 1) < 0.05
    assert abs(err.mean()) < 5 * r.noise_std / 64
    kurtosis = np.mean((err / err.std()) ** 4)
    assert 2.6 < kurtosis < 3.4  # Gaussian, not uniform (1.8) or Laplace (6)
    # released values are multiples of 2^-40 (integer units of the scale)
    units = r.values * 2.0**40
    np.testing.assert_array_equal(units, np.rint(units))
    assert r.n_values == 4096 and r.s == 20 and r.error_bound == bound
    assert r.flooding_bits == pytest.approx(math.log2(r.noise_std / bound))
    assert r.budget_used == pytest.approx(0.25, rel=0.1)


def test_release_budget_is_enforced(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    t = be.encrypt(np.zeros(8))
    for _ in range(2):
        release(t, key, error_bound=1e-9, n_releases=2)
    with pytest.raises(ReleaseError, match="budget"):
        release(t, key, error_bound=1e-9, n_releases=2)
    # a fresh key has a fresh budget; the first key's stays spent
    be2, key2 = ckks_keygen()
    release(be2.encrypt(np.zeros(8)), key2, error_bound=1e-9, n_releases=1)
    with pytest.raises(ReleaseError):
        release(t, key, error_bound=1e-9, n_releases=1000)


def test_precision_left_is_reported(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 16)
    bound = planned_error_bound(P, depth=1, input_bound=1.0)
    t = be.encrypt(x) * be.encrypt(x)
    r = release(t, key, error_bound=bound, n_releases=1)
    # worst-case bound ~2^-13 at a 2^40 scale, plus s/2 = 20 bits: nothing fractional left
    assert r.precision_bits < 0 and "WARNING" in r.note
    assert r.precision > r.noise_std * 7
    assert "fractional bits" in repr(r) and "noise" in repr(r)
    # with a tiny bound (e.g. a heuristic one, the caller's responsibility) bits survive
    r2 = CKKSContext.generate()
    be2 = CKKSBackend(r2)
    good = release(be2.encrypt(x), r2, error_bound=1e-12, n_releases=1)
    assert good.precision_bits > 8 and "WARNING" not in good.note
    assert np.max(np.abs(good.values - x)) < good.precision


def test_planned_error_bound_follows_the_noise_model() -> None:
    model = CKKSNoiseModel(P)
    tree = model.product_tree(2, 4.0)
    assert planned_error_bound(P, depth=2, input_bound=4.0) == pytest.approx(tree.worst_case())
    base = planned_error_bound(P, depth=1, input_bound=1.0)
    assert planned_error_bound(P, depth=1, input_bound=1.0, summands=8) == pytest.approx(8 * base)
    assert planned_error_bound(P, depth=1, input_bound=1.0, rotations=12) > base
    assert planned_error_bound(P, depth=2, input_bound=1.0) > base
    # an ErrorBound is accepted directly (its worst case is used)
    be, key = ckks_keygen()
    r = release(be.encrypt(np.ones(2)), key, error_bound=model.fresh(1.0), n_releases=1)
    assert r.error_bound == pytest.approx(model.fresh(1.0).worst_case())
    # measured errors respect the worst-case bound
    x = np.random.default_rng(4).uniform(-1, 1, 4096)
    err = np.abs((be.encrypt(x) * x).decrypt(key) - x * x)
    assert err.max() < planned_error_bound(P, depth=1, input_bound=1.0)


def test_rounding_is_a_labelled_heuristic(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    x = np.array([0.123456789, -2.5, 3.0000001])
    out = release_rounded_heuristic(be.encrypt(x), key, bits=10)
    np.testing.assert_array_equal(out * 1024, np.rint(out * 1024))
    np.testing.assert_allclose(out, x, atol=2**-10)
    assert "HEURISTIC" in (release_rounded_heuristic.__doc__ or "")
    with pytest.raises(ParameterError):
        release_rounded_heuristic(be.encrypt(x), key, bits=0)


def test_discrete_gaussian_sampler() -> None:
    prg = AesCtrPrg(bytes(range(32)))
    for target in (3.0, 1000.0, 2.0**35):
        g = DiscreteGaussian(target)
        assert target <= g.sigma <= max(1.1 * target, BASE_SIGMA)
        x = g.sample(40_000, prg)
        assert x.dtype == np.int64
        z = x / g.sigma
        assert abs(z.std() - 1) < 0.02 and abs(z.mean()) < 0.02
        assert 2.85 < np.mean(z**4) / np.mean(z**2) ** 2 < 3.15
    # deterministic from the seed, different across streams
    a = DiscreteGaussian(500.0).sample(16, AesCtrPrg(bytes(32)))
    b = DiscreteGaussian(500.0).sample(16, AesCtrPrg(bytes(32)))
    c = DiscreteGaussian(500.0).sample(16, AesCtrPrg(bytes(32), stream=1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the base distribution: P(0)/P(1) = exp(1/(2 σ0²))
    base = DiscreteGaussian(1.0).sample(200_000, prg)
    assert abs(base.std() / BASE_SIGMA - 1) < 0.01
    for bad in (0.0, -1.0, math.nan, 2.0**60):
        with pytest.raises(ParameterError):
            DiscreteGaussian(bad)
