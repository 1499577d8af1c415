"""Fixed-point encoding: exact decoding, rounding against Python fractions, range refusals."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.encoding import FixedPoint, fixed_point
from securecomp.errors import EncodingOverflowError, ParameterError

CONFIGS = [(16, 64), (0, 64), (40, 64), (62, 64), (16, 32), (8, 32), (30, 32)]


def reference_encode(x: float, f: int, k: int) -> int:
    """round(x * 2^f) mod 2^k with exact rational arithmetic (Python rounds half to even)."""
    return round(Fraction(x) * 2**f) % 2**k


@st.composite
def in_range(draw: st.DrawFn, f: int, k: int) -> float:
    """A float whose rounded encoding is strictly inside the symmetric ring range."""
    bound = 2.0 ** (k - 1 - f)
    x = draw(st.floats(-bound, bound, allow_nan=False, allow_infinity=False))
    if abs(round(Fraction(x) * 2**f)) >= 2 ** (k - 1):
        x = math.copysign(bound / 2, x)
    return x


@pytest.mark.parametrize(("f", "k"), CONFIGS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_encode_matches_exact_rounding(f: int, k: int, data: st.DataObject) -> None:
    xs = data.draw(st.lists(in_range(f, k), min_size=1, max_size=20))
    fp = fixed_point(f, k)
    enc = fp.encode(np.array(xs))
    assert enc.dtype == np.dtype(f"uint{k}")
    assert [int(v) for v in enc] == [reference_encode(x, f, k) for x in xs]
    # Decoding is within half an ulp of the input (exact integer -> float for |v| <= 2^53).
    dec = fp.decode(enc)
    for x, d, v in zip(xs, dec, enc, strict=True):
        signed = int(v) - (2**k if int(v) >= 2 ** (k - 1) else 0)
        assert d == float(Fraction(signed, 2**f))
        if abs(signed) <= 2**53:
            assert abs(d - x) <= 2.0 ** (-f - 1)


@pytest.mark.parametrize(("f", "k"), CONFIGS)
@settings(max_examples=60, deadline=None)
@given(m=st.integers(min_value=1, max_value=2**62))
def test_negative_multiples_of_ulp_decode_exactly(f: int, k: int, m: int) -> None:
    m = m % min(2**53, 2 ** (k - 1) - 1) or 1
    fp = fixed_point(f, k)
    x = -m * fp.ulp
    assert fp.decode(fp.encode(x)) == x
    assert fp.decode(fp.encode(-x)) == -x


def test_float_subtraction_decoder_is_wrong_where_ours_is_exact() -> None:
    """The naive decoder (r - 2^k) / 2^f rounds r to a float first and loses the low bits."""
    fp = fixed_point(16, 64)
    x = -3 * fp.ulp
    r = fp.encode(x)
    naive = (r.astype(np.float64) - 2.0**64) / fp.scale
    assert naive != x  # the bug: 2^64 - 3 rounds to 2^64, decoding to 0
    assert fp.decode(r) == x


@pytest.mark.parametrize(("f", "k"), CONFIGS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_addition_of_encodings_adds_values(f: int, k: int, data: st.DataObject) -> None:
    fp = fixed_point(f, k)
    quarter = fp.max_abs / 4
    a = data.draw(st.floats(-quarter, quarter, allow_nan=False))
    b = data.draw(st.floats(-quarter, quarter, allow_nan=False))
    total = fp.decode(fp.encode(a) + fp.encode(b))
    # Each encoding rounds by at most ulp/2; decoding is exact below 2^53 ulps.
    slack = fp.ulp + (abs(a) + abs(b)) * 2.0**-52
    assert abs(float(total) - (a + b)) <= slack


def test_truncate_rescales_a_product() -> None:
    fp = fixed_point(16, 64)
    for a, b in [(1.5, -2.25), (-3.0, -0.5), (100.125, 0.001), (-7.0, 7.0)]:
        prod = fp.truncate(fp.encode(a) * fp.encode(b))
        # Floor semantics of the arithmetic shift, checked against Python integers.
        ea, eb = round(a * 2**16), round(b * 2**16)
        assert fp.to_signed(prod) == (ea * eb) >> 16


@pytest.mark.parametrize(("f", "k"), CONFIGS)
def test_range_boundary(f: int, k: int) -> None:
    fp = fixed_point(f, k)
    # The largest encodable float: max_abs - ulp, or the float just below max_abs when the
    # ring is wider than float64's 53-bit significand.
    top = fp.max_abs - fp.ulp
    if top == fp.max_abs:
        top = float(np.nextafter(fp.max_abs, 0))
    assert fp.decode(fp.encode([top, -top])).tolist() == [top, -top]
    for bad in (fp.max_abs, -fp.max_abs, 2 * fp.max_abs):
        with pytest.raises(EncodingOverflowError, match=r"encodes \|x\| <"):
            fp.encode([0.0, bad])


def test_rounding_up_to_the_bound_is_refused() -> None:
    fp = fixed_point(16, 32)
    # 2^15 - 2^-17 scales to 2^31 - 1/2, which rounds (half to even) to 2^31: out of range.
    with pytest.raises(EncodingOverflowError):
        fp.encode(2.0**15 - 2.0**-17)
    assert fp.decode(fp.encode(2.0**15 - 2.0**-16)) == 2.0**15 - 2.0**-16


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused_with_the_fix(bad: float) -> None:
    fp = fixed_point()
    x = np.array([1.0, bad, 2.0])
    with pytest.raises(EncodingOverflowError, match="NaN/inf") as info:
        fp.encode(x)
    assert "2^47" in str(info.value)


def test_overflow_message_counts_offenders_and_suggests_a_fix() -> None:
    fp = fixed_point(16, 32)
    x = np.array([1.0, 40000.0, -50000.5, 3.0])
    with pytest.raises(EncodingOverflowError) as info:
        fp.encode(x)
    msg = str(info.value)
    assert "2 of 4" in msg and "50000.5" in msg
    assert "frac_bits" in msg and "ring_bits=64" in msg
    assert isinstance(info.value, OverflowError)


def test_caller_bound_max_abs() -> None:
    fp = fixed_point()
    fp.encode([-2.0, 2.0], max_abs=2.0)
    with pytest.raises(EncodingOverflowError, match="max_abs"):
        fp.encode([0.5, -2.5], max_abs=2.0)
    with pytest.raises(ParameterError):
        fp.encode([1.0], max_abs=-1.0)


def test_out_buffers_are_used_and_checked() -> None:
    fp = fixed_point()
    x = np.linspace(-5, 5, 101)
    out = np.empty(101, dtype=np.uint64)
    res = fp.encode(x, out=out)
    assert res is out
    assert np.array_equal(out, fp.encode(x))
    dec = np.empty(101)
    assert fp.decode(out, out=dec) is dec
    np.testing.assert_allclose(dec, x, atol=fp.ulp)
    with pytest.raises(ParameterError):
        fp.encode(x, out=np.empty(101, dtype=np.int32))
    with pytest.raises(ParameterError):
        fp.encode(x, out=np.empty(100, dtype=np.uint64))
    with pytest.raises(ParameterError):
        fp.decode(out, out=np.empty(101, dtype=np.float32))


def test_shapes_dtypes_and_inputs_untouched() -> None:
    fp = fixed_point(12, 32)
    x = np.arange(-6.0, 6.0).reshape(3, 4).astype(np.float32)
    before = x.copy()
    enc = fp.encode(x)
    assert enc.shape == (3, 4) and enc.dtype == np.uint32
    assert np.array_equal(x, before)
    assert np.array_equal(fp.decode(enc), x.astype(np.float64))
    assert fp.encode(2.5).shape == ()
    assert fp.encode(np.array([], dtype=np.float64)).shape == (0,)
    assert fp.decode(fp.encode([True, False])).tolist() == [1.0, 0.0]
    assert fp.decode(fp.to_signed(enc)).shape == (3, 4)  # the signed view decodes too
    with pytest.raises(ParameterError):
        fp.encode(np.array([1 + 2j]))
    with pytest.raises(ParameterError):
        fp.decode(np.array([1.0, 2.0]))
    with pytest.raises(ParameterError):
        fp.decode(np.array([1], dtype=np.uint64))  # a 64-bit element in a 32-bit ring


@settings(max_examples=60, deadline=None)
@given(ns=st.lists(st.integers(-(2**47) + 1, 2**47 - 1), min_size=1, max_size=10))
def test_encode_int_is_exact(ns: list[int]) -> None:
    fp = fixed_point(16, 64)
    enc = fp.encode_int(np.array(ns, dtype=np.int64))
    assert [int(v) for v in enc] == [(n << 16) % 2**64 for n in ns]
    assert fp.encode_int(ns).tolist() == enc.tolist()


def test_encode_int_and_from_signed_ranges() -> None:
    fp = fixed_point(16, 32)
    with pytest.raises(EncodingOverflowError):
        fp.encode_int([2**15])
    with pytest.raises(EncodingOverflowError):
        fp.encode_int([2**80])
    with pytest.raises(ParameterError):
        fp.encode_int([1.5])
    v = np.array([-(2**31), -1, 0, 2**31 - 1], dtype=np.int64)
    r = fp.from_signed(v)
    assert r.dtype == np.uint32
    assert r.tolist() == [2**31, 2**32 - 1, 0, 2**31 - 1]
    assert fp.to_signed(r).tolist() == v.tolist()
    with pytest.raises(EncodingOverflowError, match="outside"):
        fp.from_signed([2**31])
    fp64 = fixed_point(16, 64)
    assert fp64.from_signed(np.array([-1], dtype=np.int64)).tolist() == [2**64 - 1]
    with pytest.raises(EncodingOverflowError):
        fp64.from_signed(np.array([2**63], dtype=np.uint64))


def test_factory_is_cached_and_validates() -> None:
    assert fixed_point() is fixed_point(16, 64)
    assert fixed_point(frac_bits=20, ring_bits=32) is fixed_point(20, 32)
    fp = fixed_point()
    assert isinstance(fp, FixedPoint)
    assert fp.ulp == 2.0**-16 and fp.max_abs == 2.0**47 and fp.modulus == 2**64
    with pytest.raises(dataclasses.FrozenInstanceError):
        fp.frac_bits = 3  # type: ignore[misc]
    for bad in [(16, 16), (63, 64), (-1, 64), (31, 32)]:
        with pytest.raises(ParameterError):
            fixed_point(*bad)
    with pytest.raises(ParameterError):
        fixed_point(True, 64)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        fixed_point(16.0, 64)  # type: ignore[arg-type]
