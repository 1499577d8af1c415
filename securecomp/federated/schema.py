"""Feature schemas: a client declares the features it needs, and nothing else gets through.

GDPR Art. 5(1)(c) (data minimisation) limits processing to data "adequate, relevant and
limited to what is necessary", and Art. 25(2) (data protection by default) asks that "by
default, only personal data which are necessary for each specific purpose" be processed. A
`FeatureSchema` makes the necessary set explicit: feature names, dtypes and value ranges.
`FeatureSchema.validate` is the gate between a client's raw records and any use of them; it
returns a float matrix in the declared column order, or refuses.

Errors (all raised before any value is used):

* `ConsentError` for data outside the declaration: an undeclared feature, a column whose
  dtype does not cast safely to the declared one (``numpy.can_cast(..., "safe")``), a value
  outside ``[low, high]``, or NaN;
* `ParameterError` for a declared feature that is missing, or for an invalid schema;
* `ShapeMismatchError` for columns that are not 1-D or differ in length.

Messages name the feature and count offending values but never show a value: error text
ends up in logs, and the values are the personal data being protected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import ConsentError, ParameterError, ShapeMismatchError

__all__ = ["DTYPES", "Feature", "FeatureSchema"]

#: Declarable dtypes: booleans, signed and unsigned integers, floats (no objects, strings).
DTYPES = frozenset(
    {
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    }
)

_MAX_NAME = 128


@dataclass(frozen=True)
class Feature:
    """One declared feature: a name, a dtype and the closed range ``[low, high]`` of values.

    Invariant: ``dtype`` is in `DTYPES`, ``low <= high``, both finite and representable in
    ``dtype`` (booleans range within [0, 1]).
    """

    name: str
    dtype: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or len(self.name) > _MAX_NAME:
            raise ParameterError(f"a feature name is a non-empty string of <= {_MAX_NAME} chars")
        if self.dtype not in DTYPES:
            raise ParameterError(
                f"feature {self.name!r}: dtype {self.dtype!r} is not declarable; "
                f"use one of {sorted(DTYPES)}"
            )
        for bound in (self.low, self.high):
            if (
                isinstance(bound, bool)
                or not isinstance(bound, int | float)
                or not math.isfinite(bound)
            ):
                raise ParameterError(f"feature {self.name!r}: bounds must be finite numbers")
        if self.low > self.high:
            raise ParameterError(f"feature {self.name!r}: low {self.low} exceeds high {self.high}")
        kind = np.dtype(self.dtype)
        lo: float
        hi: float
        if kind == np.bool_:
            lo, hi = 0, 1
        elif kind.kind in "iu":
            lo, hi = int(np.iinfo(kind).min), int(np.iinfo(kind).max)
        else:
            lo, hi = float(np.finfo(kind).min), float(np.finfo(kind).max)
        if self.low < lo or self.high > hi:
            raise ParameterError(
                f"feature {self.name!r}: range [{self.low}, {self.high}] does not fit {self.dtype}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {"name": self.name, "dtype": self.dtype, "low": self.low, "high": self.high}


class FeatureSchema:
    """The ordered set of features a client may use; everything else is refused.

    Invariant: ``validate(columns)`` returns an ``(n, len(schema))`` float64 matrix whose
    column ``j`` is ``columns[names[j]]``, or raises before any value is used.
    """

    __slots__ = ("_features",)

    def __init__(self, features: Sequence[Feature]) -> None:
        feats = tuple(features)
        if not feats or not all(isinstance(f, Feature) for f in feats):
            raise ParameterError("a schema is a non-empty sequence of Feature")
        names = [f.name for f in feats]
        if len(set(names)) != len(names):
            raise ParameterError("feature names in a schema must be distinct")
        self._features = feats

    @property
    def features(self) -> tuple[Feature, ...]:
        """The declared features, in column order."""
        return self._features

    @property
    def names(self) -> tuple[str, ...]:
        """Declared feature names, in column order."""
        return tuple(f.name for f in self._features)

    def __len__(self) -> int:
        return len(self._features)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureSchema):
            return NotImplemented
        return self._features == other._features

    def __hash__(self) -> int:
        return hash(self._features)

    def __repr__(self) -> str:
        return f"FeatureSchema({list(self.names)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (what a client publishes as its declaration)."""
        return {"features": [f.to_dict() for f in self._features]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        """Parse `to_dict` output; a malformed declaration raises `ParameterError`."""
        if not isinstance(data, Mapping) or not isinstance(data.get("features"), list):
            raise ParameterError("a schema declaration is {'features': [...]}")
        out = []
        for item in data["features"]:
            if not isinstance(item, Mapping) or set(item) != {"name", "dtype", "low", "high"}:
                raise ParameterError("each feature is {'name', 'dtype', 'low', 'high'}")
            out.append(Feature(item["name"], item["dtype"], item["low"], item["high"]))
        return cls(out)

    # --- the gate ----------------------------------------------------------------------------

    def validate(self, columns: Mapping[str, ArrayLike]) -> NDArray[np.float64]:
        """Check ``columns`` (name -> 1-D values) against the schema; return the matrix.

        Raises
        ------
        ConsentError
            An undeclared feature, a dtype that does not cast safely, a value out of range,
            or NaN (see the module docstring).
        ParameterError
            A declared feature is missing.
        ShapeMismatchError
            A column is not 1-D, or columns differ in length.
        """
        if not isinstance(columns, Mapping):
            raise ParameterError("pass the features as a mapping: name -> 1-D values")
        extra = [str(k) for k in columns if k not in self.names]
        if extra:
            raise ConsentError(
                f"features {sorted(extra)} are not declared in the schema {list(self.names)}; "
                "drop them before handing the data over, or declare them (and obtain consent)"
            )
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ParameterError(f"declared features {missing} are missing from the data")
        cols = [self._column(f, columns[f.name]) for f in self._features]
        lengths = {c.shape[0] for c in cols}
        if len(lengths) > 1:
            raise ShapeMismatchError(f"feature columns differ in length: {sorted(lengths)}")
        return np.stack(cols, axis=1)

    def validate_matrix(self, x: ArrayLike, names: Sequence[str]) -> NDArray[np.float64]:
        """`validate` for a 2-D array whose columns are called ``names``.

        The array has one dtype, which must cast safely to every declared dtype; pass
        mixed-type records (integers, booleans and floats) to `validate` as columns.
        """
        arr = np.asarray(x)
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise ShapeMismatchError(
                f"expected a 2-D array with {len(names)} named columns, got shape {arr.shape}"
            )
        if len(set(names)) != len(names):
            raise ParameterError("column names must be distinct")
        return self.validate({n: arr[:, j] for j, n in enumerate(names)})

    @staticmethod
    def _column(feature: Feature, values: ArrayLike) -> NDArray[np.float64]:
        if isinstance(values, np.ndarray):
            col = values
        else:
            try:
                col = np.asarray(values)
            except (TypeError, ValueError):
                raise ConsentError(
                    f"feature {feature.name!r}: values are not an array of numbers"
                ) from None
        if col.ndim != 1:
            raise ShapeMismatchError(
                f"feature {feature.name!r}: expected a 1-D column, got shape {col.shape}"
            )
        declared = np.dtype(feature.dtype)
        # An empty Python list becomes float64; it holds no values, so its dtype is moot.
        if col.size and not np.can_cast(col.dtype, declared, casting="safe"):
            raise ConsentError(
                f"feature {feature.name!r}: dtype {col.dtype} does not cast safely to the "
                f"declared {feature.dtype}; convert it deliberately or fix the declaration"
            )
        out = col.astype(np.float64)
        if np.isnan(out).any():
            raise ConsentError(f"feature {feature.name!r}: {int(np.isnan(out).sum())} NaN value(s)")
        # Integer bounds are compared exactly on the integer column: float64 rounds above 2^53.
        ref = col.astype(declared) if col.size else col
        if declared.kind in "iu":
            # For integers, v >= low iff v >= ceil(low): compare with exact Python ints.
            below = int(np.count_nonzero(ref < math.ceil(feature.low)))
            above = int(np.count_nonzero(ref > math.floor(feature.high)))
        else:
            below = int(np.count_nonzero(out < feature.low))
            above = int(np.count_nonzero(out > feature.high))
        if below or above:
            raise ConsentError(
                f"feature {feature.name!r}: {below + above} value(s) outside the declared "
                f"range [{feature.low}, {feature.high}]"
            )
        return out
