"""Feature schemas: declared features pass, anything outside the declaration is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.errors import ConsentError, ParameterError, ShapeMismatchError
from securecomp.federated import Feature, FeatureSchema

SCHEMA = FeatureSchema(
    [
        Feature("age", "int64", 18, 120),
        Feature("income", "float64", 0.0, 1e6),
        Feature("smoker", "bool", 0, 1),
    ]
)


def good_columns(n: int = 4) -> dict[str, np.ndarray]:
    return {
        "smoker": np.array([True, False] * (n // 2)),
        "age": np.arange(20, 20 + n, dtype=np.int64),
        "income": np.linspace(0.0, 5e4, n),
    }


def test_declared_features_pass_in_declared_order() -> None:
    cols = good_columns()
    x = SCHEMA.validate(cols)
    assert x.dtype == np.float64 and x.shape == (4, 3)
    np.testing.assert_array_equal(x[:, 0], cols["age"])
    np.testing.assert_array_equal(x[:, 1], cols["income"])
    np.testing.assert_array_equal(x[:, 2], cols["smoker"].astype(float))
    # Python lists and safe casts (int32 into int64, int into float) are accepted.
    y = SCHEMA.validate({"age": [30, 40], "income": [1, 2], "smoker": [True, True]})
    np.testing.assert_array_equal(y, [[30, 1, 1], [40, 2, 1]])
    # A matrix has one dtype, which must cast safely to every declared one.
    with pytest.raises(ConsentError, match="cast"):
        SCHEMA.validate_matrix(x[:, ::-1], ["smoker", "income", "age"])
    floats = FeatureSchema([Feature("a", "float64", -1, 1), Feature("b", "float32", 0, 9)])
    m = np.array([[0.5, 2], [-1, 9]], dtype=np.float32)
    np.testing.assert_array_equal(floats.validate_matrix(m[:, ::-1], ["b", "a"]), m)


def test_undeclared_feature_is_refused_before_use() -> None:
    cols = {**good_columns(), "postcode": np.array([1, 2, 3, 4])}
    with pytest.raises(ConsentError, match=r"postcode.*not declared"):
        SCHEMA.validate(cols)
    with pytest.raises(ConsentError):
        SCHEMA.validate_matrix(np.zeros((2, 4)), ["age", "income", "smoker", "zip"])


@pytest.mark.parametrize(
    ("name", "values", "error", "match"),
    [
        ("age", np.array([17, 30, 40, 50]), ConsentError, "1 value.*outside"),
        ("age", np.array([20.0, 30, 40, 50]), ConsentError, "does not cast safely"),
        ("age", np.array([2**62, 30, 40, 50]), ConsentError, "outside"),
        ("income", np.array([1.0, np.nan, 2.0, 3.0]), ConsentError, "NaN"),
        ("income", np.array([1.0, np.inf, 2.0, 3.0]), ConsentError, "outside"),
        ("income", np.array([1.0, -1.0, 2.0, -3.0]), ConsentError, "2 value"),
        ("income", np.array([1 + 1j, 2, 3, 4]), ConsentError, "cast"),
        ("income", np.array(["a", "b", "c", "d"]), ConsentError, "cast"),
        ("income", np.array([1.0, None, 2.0, 3.0], dtype=object), ConsentError, "cast"),
        ("smoker", np.array([0, 1, 1, 0]), ConsentError, "cast"),
        ("smoker", np.array([0.0, 1.0, 1.0, 0.0]), ConsentError, "cast"),
        ("income", np.array([1.0, 2.0]), ShapeMismatchError, "length"),
        ("income", np.zeros((4, 1)), ShapeMismatchError, "1-D"),
    ],
)
def test_values_outside_the_declaration_are_refused(
    name: str, values: np.ndarray, error: type[Exception], match: str
) -> None:
    cols = {**good_columns(), name: values}
    with pytest.raises(error, match=match) as info:
        SCHEMA.validate(cols)
    if error is ConsentError and values.dtype.kind in "if":
        # Messages never echo a data value.
        for v in values.ravel():
            if np.isfinite(v) and v not in (0, 1):
                assert repr(float(v)) not in str(info.value)


def test_missing_feature_and_bad_inputs() -> None:
    cols = good_columns()
    del cols["income"]
    with pytest.raises(ParameterError, match="missing"):
        SCHEMA.validate(cols)
    with pytest.raises(ParameterError):
        SCHEMA.validate([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(ShapeMismatchError):
        SCHEMA.validate_matrix(np.zeros(3), ["age", "income", "smoker"])


def test_integer_bounds_are_exact_at_64_bits() -> None:
    s = FeatureSchema([Feature("n", "int64", -(2**63), 2**63 - 2)])
    ok = np.array([2**63 - 2, -(2**63)], dtype=np.int64)
    np.testing.assert_array_equal(s.validate({"n": ok}), ok.astype(float)[:, None])
    with pytest.raises(ConsentError):
        s.validate({"n": np.array([2**63 - 1], dtype=np.int64)})  # float64 would round it
    half = FeatureSchema([Feature("k", "int32", 0.5, 2.5)])
    np.testing.assert_array_equal(half.validate({"k": np.array([1, 2], np.int32)}), [[1], [2]])
    with pytest.raises(ConsentError):
        half.validate({"k": np.array([0], np.int32)})


@pytest.mark.parametrize(
    "args",
    [
        ("", "float64", 0, 1),
        ("a", "object", 0, 1),
        ("a", "float64", 1, 0),
        ("a", "float64", 0, float("inf")),
        ("a", "float64", float("nan"), 1),
        ("a", "uint8", -1, 10),
        ("a", "int8", 0, 300),
        ("a", "bool", 0, 2),
        ("a", "float64", True, 2),
    ],
)
def test_invalid_feature_declarations(args: tuple[object, ...]) -> None:
    with pytest.raises(ParameterError):
        Feature(*args)  # type: ignore[arg-type]


def test_invalid_schemas() -> None:
    with pytest.raises(ParameterError):
        FeatureSchema([])
    with pytest.raises(ParameterError, match="distinct"):
        FeatureSchema([Feature("a", "bool", 0, 1), Feature("a", "int8", 0, 1)])
    with pytest.raises(ParameterError):
        FeatureSchema.from_dict({"features": [{"name": "a"}]})
    with pytest.raises(ParameterError):
        FeatureSchema.from_dict({"columns": []})


feature_st = st.builds(
    Feature,
    name=st.text(min_size=1, max_size=10),
    dtype=st.sampled_from(["float64", "float32", "int64"]),
    low=st.integers(-1000, 0),
    high=st.integers(0, 1000),
)


@given(st.lists(feature_st, min_size=1, max_size=5, unique_by=lambda f: f.name))
def test_schema_declaration_round_trips_through_json(features: list[Feature]) -> None:
    s = FeatureSchema(features)
    assert FeatureSchema.from_dict(json.loads(json.dumps(s.to_dict()))) == s


@given(
    hnp.arrays(np.float64, st.integers(0, 20), elements=st.floats(-1e3, 1e3)),
    st.floats(-2e3, 2e3),
    st.floats(-2e3, 2e3),
)
def test_accepts_exactly_the_values_in_range(values: np.ndarray, a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    s = FeatureSchema([Feature("v", "float64", low, high)])
    inside = bool(np.all((values >= low) & (values <= high)))
    if inside:
        np.testing.assert_array_equal(s.validate({"v": values})[:, 0], values)
    else:
        with pytest.raises(ConsentError):
            s.validate({"v": values})
