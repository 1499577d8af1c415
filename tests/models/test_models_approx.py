"""The least-squares polynomial sigmoid and the detection of logits outside its interval."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import EncodingOverflowError, ParameterError
from securecomp.models.approx import (
    DEGREES,
    PolynomialSigmoid,
    check_logits,
    fit_sigmoid,
    logits_out_of_range,
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("degree", DEGREES)
@pytest.mark.parametrize("interval", [4.0, 8.0, 12.0])
def test_fit_is_the_odd_least_squares_polynomial(degree: int, interval: float) -> None:
    p = fit_sigmoid(degree, interval)
    c = np.array(p.coefficients)
    assert c.shape == (degree + 1,)
    assert c[0] == 0.5
    assert np.all(c[2::2] == 0.0)  # exactly: the fit is odd around 1/2
    # Independent check: numpy's least squares on the same grid, odd basis in z.
    grid = np.linspace(-interval, interval, 20001)
    odd = np.arange(1, degree + 1, 2)
    ref, *_ = np.linalg.lstsq(grid[:, None] ** odd, _sigmoid(grid) - 0.5, rcond=None)
    np.testing.assert_allclose(c[odd], ref, rtol=1e-6, atol=1e-12)
    err = p(grid) - _sigmoid(grid)
    assert p.max_error == pytest.approx(np.max(np.abs(err)), rel=1e-9)
    assert p.rms_error == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-9)
    assert p.rms_error <= p.max_error


def test_error_shrinks_with_degree_and_grows_with_interval() -> None:
    errs = [fit_sigmoid(d, 8.0).max_error for d in DEGREES]
    assert errs == sorted(errs, reverse=True)
    widths = [fit_sigmoid(5, b).max_error for b in (4.0, 8.0, 12.0)]
    assert widths == sorted(widths)
    # Known magnitudes (Kim et al. 2018 use degree 3 and 7 on about [-8, 8]).
    assert 0.10 < fit_sigmoid(3, 8.0).max_error < 0.13
    assert 0.02 < fit_sigmoid(7, 8.0).max_error < 0.04


def test_chebyshev_weighting_lowers_the_maximum_error() -> None:
    uniform = fit_sigmoid(7, 8.0)
    cheb = fit_sigmoid(7, 8.0, weighting="chebyshev")
    assert cheb.weighting == "chebyshev"
    assert cheb.max_error < uniform.max_error
    assert cheb.rms_error > uniform.rms_error  # the L2 fit is best in L2


@settings(max_examples=50, deadline=None)
@given(
    z=st.floats(-30.0, 30.0, allow_nan=False),
    scale=st.floats(0.01, 10.0, allow_nan=False),
)
def test_coefficients_for_a_scaled_variable_give_the_same_polynomial(
    z: float, scale: float
) -> None:
    p = fit_sigmoid(5, 10.0)
    q = np.polynomial.polynomial.polyval(scale * z, p.coefficients_for(scale))
    assert q == pytest.approx(float(p(z)), rel=1e-9, abs=1e-9)


def test_depth_and_bound() -> None:
    assert [fit_sigmoid(d, 8.0).depth for d in DEGREES] == [2, 3, 3]
    p = fit_sigmoid(5, 8.0)
    assert p.bound(0.0) == pytest.approx(0.5)
    grid = np.linspace(-12.0, 12.0, 100001)
    assert p.bound(12.0) == pytest.approx(np.max(np.abs(p(grid))), rel=1e-3)
    assert "degree-5" in p.describe()


@pytest.mark.parametrize("degree", [0, 1, 2, 4, 9, 2.0, True, "5"])
def test_bad_degree(degree: object) -> None:
    with pytest.raises(ParameterError):
        fit_sigmoid(degree, 8.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan"), float("inf"), 100.0, "8"])
def test_bad_interval(interval: object) -> None:
    with pytest.raises(ParameterError):
        fit_sigmoid(5, interval)  # type: ignore[arg-type]


def test_bad_weighting_and_scale() -> None:
    with pytest.raises(ParameterError):
        fit_sigmoid(5, 8.0, weighting="minimax")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        fit_sigmoid(5, 8.0).coefficients_for(0.0)
    with pytest.raises(ParameterError):
        fit_sigmoid(5, 8.0).bound(float("nan"))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-50.0, 50.0, allow_nan=False), min_size=1, max_size=40))
def test_out_of_range_counts_match_numpy(z: list[float]) -> None:
    arr = np.array(z)
    r = logits_out_of_range(arr, 8.0)
    assert r.count == int(np.sum(np.abs(arr) > 8.0))
    assert r.total == arr.size
    assert r.fraction == pytest.approx(r.count / arr.size)
    assert r.max_abs == pytest.approx(float(np.max(np.abs(arr))))
    assert r.ok == (r.count == 0)


def test_nan_logits_count_as_outside() -> None:
    r = logits_out_of_range(np.array([0.0, np.nan]), 8.0)
    assert r.count == 1 and r.max_abs == np.inf


def test_check_logits_warns_with_the_fraction_or_raises() -> None:
    z = np.array([0.0, 1.0, -9.0, 20.0])
    with pytest.warns(RuntimeWarning, match=r"50\.0% of rows \(2 of 4\)"):
        r = check_logits(z, 8.0)
    assert r.count == 2
    with pytest.raises(EncodingOverflowError, match=r"50\.0% of rows"):
        check_logits(z, 8.0, policy="raise", where="before step 1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_logits(z, 8.0, policy="ignore").count == 2
        assert check_logits(np.zeros(3), 8.0, policy="raise").ok
    with pytest.raises(ParameterError):
        check_logits(z, 8.0, policy="silent")  # type: ignore[arg-type]


def test_polynomial_is_a_value_object() -> None:
    p = fit_sigmoid(3, 8.0)
    q = PolynomialSigmoid(3, 8.0, p.coefficients, p.max_error, p.rms_error, "uniform")
    assert p == q
    np.testing.assert_array_equal(p(np.array([[1.0, -2.0]])).shape, (1, 2))
