"""The estimator's extension point: a training/inference protocol behind ``backend=``.

`securecomp.models.LinearRegression` and `LogisticRegression` are thin scikit-learn
estimators. Everything cryptographic lives in a `ModelProtocol`: the estimator validates
and encodes the input (labels to {0, 1}, float64 arrays), builds a `TrainingSpec` from its
hyper-parameters, and asks the protocol registered under ``backend`` to fit and to score.

A protocol is found by name, first among those registered in this process with
`register_protocol`, then in the ``securecomp.models.protocols`` entry-point group (so a
subpackage such as `securecomp.mpc` adds ``backend="mpc"`` by declaring one entry point,
without the models package importing it). Every protocol states its threat model in its
class docstring: who holds which key, who learns what; each run records the same facts in
its `CostReport`'s leakage ledger.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ParameterError
from securecomp.net.report import CostReport

__all__ = [
    "ENTRY_POINT_GROUP",
    "FitResult",
    "ModelProtocol",
    "ScoreResult",
    "TrainingSpec",
    "available_protocols",
    "get_protocol",
    "register_protocol",
]

ENTRY_POINT_GROUP = "securecomp.models.protocols"

Task = Literal["linear", "logistic"]
Optimizer = Literal["gd", "nesterov"]


@dataclass(frozen=True)
class TrainingSpec:
    """What to train, independent of how it is computed.

    Attributes
    ----------
    task : {"linear", "logistic"}
        Least squares, or logistic loss with labels in {0, 1}.
    optimizer : {"gd", "nesterov"}
        Gradient descent or Nesterov's accelerated gradient (Kim et al. 2018, §3).
    learning_rate : float
    max_iter : int
        Number of epochs (passes over the data).
    batch_size : int or None
        Mini-batch size; None means full batch.
    fit_intercept : bool
    l2 : float
        Ridge penalty (0 disables it); not applied to the intercept.
    sigmoid_degree : int
        Degree of the least-squares polynomial sigmoid used by encrypted protocols.
    sigmoid_interval : float
        Half-width B of the interval [-B, B] on which the polynomial is fitted.
    out_of_range : {"warn", "raise"}
        What to do when logits fall outside the interval (detected by the key holder).
    random_state : int or None
        Seed for data shuffling and other *non-secret* randomness only.
    options : mapping
        Protocol-specific options (e.g. CKKS parameters, number of data holders).
    """

    task: Task
    optimizer: Optimizer = "nesterov"
    learning_rate: float = 1.0
    max_iter: int = 10
    batch_size: int | None = None
    fit_intercept: bool = True
    l2: float = 0.0
    sigmoid_degree: int = 5
    sigmoid_interval: float = 8.0
    out_of_range: Literal["warn", "raise"] = "warn"
    random_state: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class FitResult:
    """The outcome of `ModelProtocol.fit` as the *key holder* (or data owner) sees it.

    ``coef`` has shape (n_features,). ``state`` is protocol-private (e.g. the encrypted
    model a server keeps for inference or a later explicit release); the estimator only
    stores it and hands it back to `ModelProtocol.decision_function` and ``release``.
    ``revealed=False`` means nobody learned the model (e.g. it stays secret-shared): then
    ``coef`` and ``intercept`` carry no information and the estimator exposes no ``coef_``
    until an explicit release.
    """

    coef: NDArray[np.float64]
    intercept: float
    n_iter: int
    report: CostReport
    state: Any = None
    revealed: bool = True


@dataclass
class ScoreResult:
    """Decision-function values (logits, or predictions for regression) and their cost."""

    scores: NDArray[np.float64]
    report: CostReport


class ModelProtocol(ABC):
    """How a model is trained and evaluated under one backend.

    Subclasses set ``name`` and state their threat model in the class docstring.
    ``supports_simulate`` says whether ``simulate=True`` (a plaintext simulation of the
    encrypted arithmetic: same polynomial, quantization and noise model) is available.
    """

    name: ClassVar[str]
    supports_simulate: ClassVar[bool] = False

    def __init__(self, spec: TrainingSpec, *, simulate: bool = False) -> None:
        if simulate and not self.supports_simulate:
            raise ParameterError(
                f"backend {self.name!r} has no plaintext simulation; use simulate=False"
            )
        self.spec = spec
        self.simulate = simulate

    @classmethod
    def threat_model(cls) -> str:
        """The protocol's threat model and disclosures (its class docstring)."""
        return (cls.__doc__ or "").strip()

    @abstractmethod
    def fit(self, X: NDArray[np.float64], y: NDArray[np.float64]) -> FitResult:
        """Train on validated float64 ``X`` (n, d) and ``y`` (n,) (labels 0/1 if logistic)."""

    @abstractmethod
    def decision_function(self, fitted: FitResult, X: NDArray[np.float64]) -> ScoreResult:
        """Scores of ``X`` under the fitted model, computed as the protocol prescribes."""

    def plan(self, X_shape: tuple[int, int]) -> Mapping[str, Any]:
        """Parameters, depth, key sizes and estimated time for data of ``X_shape``."""
        raise ParameterError(f"backend {self.name!r} has nothing to plan")


_REGISTRY: dict[str, type[ModelProtocol]] = {}


def register_protocol(cls: type[ModelProtocol]) -> type[ModelProtocol]:
    """Register ``cls`` under ``cls.name`` (usable as a class decorator)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ParameterError("a ModelProtocol needs a non-empty class attribute 'name'")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ParameterError(f"a model protocol named {name!r} is already registered")
    _REGISTRY[name] = cls
    return cls


def _from_entry_points(name: str) -> type[ModelProtocol] | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, ModelProtocol)):
                raise ParameterError(
                    f"entry point {ep.value!r} for backend {name!r} is not a ModelProtocol"
                )
            return register_protocol(cls)
    return None


def get_protocol(name: str) -> type[ModelProtocol]:
    """The protocol class registered as ``name``; `ParameterError` naming the choices."""
    if not isinstance(name, str):
        raise ParameterError(f"backend must be a str, got {type(name).__name__}")
    cls = _REGISTRY.get(name) or _from_entry_points(name)
    if cls is None:
        raise ParameterError(
            f"unknown model backend {name!r}; available: {', '.join(available_protocols())}"
        )
    return cls


def available_protocols() -> list[str]:
    """Names of every registered or installed protocol, sorted."""
    names = set(_REGISTRY) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)
