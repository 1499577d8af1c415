"""L2 clipping: the norm bound, direction, no-op below the bound, refusal of NaN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.dp import clip_l2
from securecomp.errors import EncodingOverflowError, ParameterError

finite = st.floats(-1e150, 1e150, allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=50), bound=st.floats(1e-6, 1e6))
def test_clipped_norm_is_at_most_the_bound_and_direction_is_kept(
    values: list[float], bound: float
) -> None:
    x = np.array(values)
    before = x.copy()
    out, clipped = clip_l2(x, bound)
    assert np.array_equal(x, before)  # the caller's array is untouched
    norm = float(np.linalg.norm(x))
    assert float(np.linalg.norm(out)) <= bound * (1.0 + 1e-12)
    assert clipped == (norm > bound)
    if not clipped:
        assert np.array_equal(out, x)
    else:
        # Same direction: out is x times bound / norm (up to subnormal underflow).
        np.testing.assert_allclose(out, x * (bound / norm), rtol=1e-12, atol=1e-300)


def test_overflowing_norm_is_handled_without_nan() -> None:
    x = np.array([1e200, -1e200, 3e199])
    out, clipped = clip_l2(x, 2.0)
    assert clipped
    assert np.isfinite(out).all()
    assert abs(float(np.linalg.norm(out)) - 2.0) < 1e-12


def test_nan_and_bad_bounds_are_refused() -> None:
    with pytest.raises(EncodingOverflowError):
        clip_l2(np.array([1.0, np.inf]), 1.0)
    with pytest.raises(EncodingOverflowError):
        clip_l2(np.array([np.nan]), 1.0)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ParameterError):
            clip_l2(np.ones(3), bad)
