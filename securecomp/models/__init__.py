"""Linear and logistic regression whose protocol is one argument: ``backend=``.

`LinearRegression` and `LogisticRegression` are scikit-learn estimators; the arithmetic
lives in a `ModelProtocol` (`securecomp.models.protocol`) found by name: ``"plain"`` (the
float64 reference), ``"ckks"``, ``"paillier"``, or any protocol registered with
`register_protocol` or installed in the ``securecomp.models.protocols`` entry-point group.

Importing this package loads neither scikit-learn nor any cryptographic library: the two
estimators (which need scikit-learn) are imported on first use (PEP 562), so protocol code
and the processes that run a protocol's roles need only `securecomp.models.protocol`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securecomp.models.protocol import (
    FitResult,
    ModelProtocol,
    ScoreResult,
    TrainingSpec,
    available_protocols,
    get_protocol,
    register_protocol,
)

if TYPE_CHECKING:
    from securecomp.models.linear import LinearRegression
    from securecomp.models.logistic import LogisticRegression

__all__ = [
    "FitResult",
    "LinearRegression",
    "LogisticRegression",
    "ModelProtocol",
    "ScoreResult",
    "TrainingSpec",
    "available_protocols",
    "get_protocol",
    "register_protocol",
]


def __getattr__(name: str) -> object:
    # Only the two estimators are lazy; they pull in scikit-learn (about a second).
    if name == "LinearRegression":
        from securecomp.models.linear import LinearRegression

        return LinearRegression
    if name == "LogisticRegression":
        from securecomp.models.logistic import LogisticRegression

        return LogisticRegression
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
