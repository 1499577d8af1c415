"""CKKS error model against TenSEAL, and the planner's promise checked by real encryption."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tenseal as ts

from securecomp.errors import DepthExhaustedError, ParameterError
from securecomp.params import (
    CKKSNoiseModel,
    CKKSParameters,
    ErrorBound,
    ErrorModel,
    heuristic_tail_sigmas,
    max_log_q,
    plan_ckks,
    predicted_error,
    scale_drift,
    validate_ckks,
)

# A 30-bit scale makes noise visible (~1e-6) while drift stays small (~5e-5 per level).
P30 = CKKSParameters(8192, (50, 30, 30, 50), 30)


def make_context(params: CKKSParameters) -> ts.Context:
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
    )
    ctx.global_scale = params.scale
    return ctx


@pytest.fixture(scope="module")
def ctx30() -> ts.Context:
    return make_context(P30)


@pytest.fixture(scope="module")
def fresh_errors(ctx30: ts.Context) -> np.ndarray:
    rng = np.random.default_rng(11)
    errs = []
    for _ in range(4):
        x = rng.uniform(-1.0, 1.0, P30.slot_count)
        errs.append(np.asarray(ctx_decrypt(ts.ckks_vector(ctx30, x))) - x)
    return np.concatenate(errs)


def ctx_decrypt(vec: ts.CKKSVector) -> np.ndarray:
    return np.asarray(vec.decrypt(), dtype=np.float64)


def test_tail_sigmas() -> None:
    # Laplace: P(|X| > z std) = exp(-sqrt(2) z) = 2^-40.
    z = heuristic_tail_sigmas(40)
    assert z == pytest.approx(19.6, abs=0.05)
    assert math.exp(-math.sqrt(2) * z) == pytest.approx(2.0**-40, rel=1e-9)
    assert heuristic_tail_sigmas(20) < z
    for bad in (0, -1, float("nan"), True):
        with pytest.raises(ParameterError):
            heuristic_tail_sigmas(bad)


def test_fresh_error_std_matches_tenseal(fresh_errors: np.ndarray) -> None:
    model = CKKSNoiseModel(P30).fresh(1.0)
    # 16384 samples: the std estimate is good to about 1-2%.
    assert fresh_errors.std() == pytest.approx(model.std, rel=0.1)
    assert abs(fresh_errors.mean()) < 0.05 * model.std


def test_fresh_error_has_laplace_tails(fresh_errors: np.ndarray) -> None:
    z = fresh_errors / fresh_errors.std()
    kurtosis = float(np.mean(z**4))
    assert 4.5 < kurtosis < 7.5  # Laplace: 6; a Gaussian would give 3
    # Beyond 4 std: Laplace predicts exp(-4 sqrt 2) = 0.35%, a Gaussian 0.006%.
    assert np.mean(np.abs(z) > 4) > 0.001


def test_fresh_bounds_hold_and_are_ordered(fresh_errors: np.ndarray) -> None:
    bound = CKKSNoiseModel(P30).fresh(1.0)
    assert np.abs(fresh_errors).max() <= bound.heuristic()
    assert bound.heuristic() < bound.worst_case()
    assert bound.bound(ErrorModel.WORST_CASE) == bound.worst_case()
    assert bound.bound(ErrorModel.HEURISTIC) == bound.heuristic()


def test_product_error_and_bias_match_tenseal(ctx30: ts.Context) -> None:
    rng = np.random.default_rng(12)
    x = rng.uniform(-1.0, 1.0, P30.slot_count)
    y = rng.uniform(-1.0, 1.0, P30.slot_count)
    got = ctx_decrypt(ts.ckks_vector(ctx30, x) * ts.ckks_vector(ctx30, y))
    model = CKKSNoiseModel(P30)
    prod = model.multiply(model.fresh(1.0), model.fresh(1.0))
    assert prod.level == 1
    f = scale_drift(P30).level_factors[0]
    # The bias is the drift: slope of decrypted vs exact.
    slope = float(np.polyfit(x * y, got, 1)[0])
    assert slope == pytest.approx(f, abs=2e-6)
    assert prod.bias == pytest.approx(abs(f - 1.0), rel=1e-9)
    # Random part: the model's std is an upper bound (it assumes |x| = |y| = 1 everywhere).
    residual = got - f * x * y
    assert residual.std() <= prod.std
    assert residual.std() > 0.3 * prod.std  # ... and not a vacuous one
    assert np.abs(got - x * y).max() <= prod.heuristic() <= prod.worst_case()


def test_plain_product_error(ctx30: ts.Context) -> None:
    rng = np.random.default_rng(13)
    x = rng.uniform(-2.0, 2.0, P30.slot_count)
    c = rng.uniform(-0.5, 0.5, P30.slot_count)
    got = ctx_decrypt(ts.ckks_vector(ctx30, x) * c.tolist())
    model = CKKSNoiseModel(P30)
    bound = model.multiply_plain(model.fresh(2.0), 0.5)
    assert bound.magnitude == 1.0
    assert np.abs(got - x * c).max() <= bound.heuristic()


def test_depth_is_enforced() -> None:
    model = CKKSNoiseModel(P30)
    a = model.product_tree(2, 1.0)
    assert a.level == 2
    with pytest.raises(DepthExhaustedError, match="only 2"):
        model.multiply(a, model.fresh(1.0))
    with pytest.raises(DepthExhaustedError):
        model.multiply_plain(a, 1.0)


def test_add_and_mixed_levels() -> None:
    model = CKKSNoiseModel(P30)
    a, b = model.fresh(1.0), model.fresh(3.0)
    s = model.add(a, b)
    assert s.magnitude == 4.0 and s.std == a.std + b.std and s.worst == a.worst + b.worst
    deep = model.multiply(a, b)
    mixed = model.multiply(deep, a)  # the fresh operand is mod-switched down: level 2
    assert mixed.level == 2


def test_value_bound_caps_magnitude() -> None:
    model = CKKSNoiseModel(P30)
    a = model.fresh(10.0)
    assert model.multiply(a, a).magnitude == 100.0
    assert model.multiply(a, a, value_bound=5.0).magnitude == 5.0


def test_overflow_is_refused_not_nan() -> None:
    deep = CKKSParameters(32768, (60, *[30] * 40, 60), 30)
    model = CKKSNoiseModel(deep)
    with pytest.raises(ParameterError, match="overflow"):
        model.product_tree(40, 100.0)
    saturated = model.product_tree(40, 1.0)  # errors double 40 times: honest inf, no NaN
    assert not math.isnan(saturated.heuristic())
    with pytest.raises(ParameterError):
        ErrorBound(magnitude=1.0, bias=float("nan"), std=0.0, worst=0.0, level=0)
    with pytest.raises(ParameterError):
        model.fresh(-1.0)


# --- planner -------------------------------------------------------------------------------


def _product_tree_error(params: CKKSParameters, depth: int, bound: float) -> float:
    """Max |error| of a depth-``depth`` product tree of random inputs in [-bound, bound]."""
    ctx = make_context(params)
    rng = np.random.default_rng(depth)
    xs = [rng.uniform(-bound, bound, params.slot_count) for _ in range(2**depth)]
    for x in xs:
        x[:8] = bound  # the extreme magnitude is reached in some slots
    cts = [ts.ckks_vector(ctx, x) for x in xs]
    vals = xs
    while len(cts) > 1:
        cts = [cts[i] * cts[i + 1] for i in range(0, len(cts), 2)]
        vals = [vals[i] * vals[i + 1] for i in range(0, len(vals), 2)]
    return float(np.abs(ctx_decrypt(cts[0]) - vals[0]).max())


@pytest.mark.parametrize(
    "depth,precision,bound",
    [(1, 1e-2, 1.0), (2, 1e-2, 1.0), (1, 1e-3, 10.0), (2, 1e-3, 1.0)],
)
def test_planner_promise_holds_in_tenseal(depth: int, precision: float, bound: float) -> None:
    params = plan_ckks(depth, precision, bound)
    assert params.depth == depth
    assert params.total_log_q <= max_log_q(params.poly_modulus_degree)
    validate_ckks(params, depth=depth)
    assert predicted_error(params, depth, bound) <= precision
    assert _product_tree_error(params, depth, bound) <= precision


def test_planner_picks_the_smallest_ring() -> None:
    loose = plan_ckks(1, 1e-2, 1.0)
    tight = plan_ckks(1, 1e-6, 1.0)
    assert loose.poly_modulus_degree <= tight.poly_modulus_degree
    # Minimal: no smaller ring degree of the table can hold any chain that meets the target.
    smaller = loose.poly_modulus_degree // 2
    for s in range(2, 61):
        q0 = s + 2
        candidate = (q0, s, q0)
        if sum(candidate) > max_log_q(smaller):
            break
        try:
            err = predicted_error(CKKSParameters(smaller, candidate, s), 1, 1.0)
        except ParameterError:
            continue
        assert err > 1e-2


def test_planner_options() -> None:
    heuristic = plan_ckks(1, 1e-2, 1.0)
    worst = plan_ckks(1, 1e-2, 1.0, model=ErrorModel.WORST_CASE)
    assert worst.total_log_q >= heuristic.total_log_q
    assert predicted_error(worst, 1, 1.0, model=ErrorModel.WORST_CASE) <= 1e-2
    high = plan_ckks(1, 1e-2, 1.0, security_bits=192)
    assert high.security_bits >= 192
    capped = plan_ckks(2, 1e-3, 10.0, value_bound=10.0)
    uncapped = plan_ckks(2, 1e-3, 10.0)
    assert capped.total_log_q <= uncapped.total_log_q


def test_planner_says_what_would_be_needed() -> None:
    with pytest.raises(ParameterError, match=r"N > 32768"):
        plan_ckks(20, 1e-4, 1.0)
    with pytest.raises(ParameterError, match="60 bits above the scale"):
        plan_ckks(8, 1e-3, 100.0)
    with pytest.raises(ParameterError, match="60-bit scale"):
        plan_ckks(1, 1e-15, 1.0)


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((-1, 1e-3, 1.0), {}),
        ((1, 0.0, 1.0), {}),
        ((1, float("nan"), 1.0), {}),
        ((1, 1e-3, float("inf")), {}),
        ((1, 1e-3, 1.0), {"security_bits": 100}),
        ((61, 1e-3, 1.0), {}),
        ((1, 1e-3, 1.0), {"model": "heuristic"}),
    ],
)
def test_planner_rejects_bad_arguments(args: tuple, kwargs: dict) -> None:
    with pytest.raises(ParameterError):
        plan_ckks(*args, **kwargs)
