"""What a CKKS fit prepares and keeps, input checks, and the in-process byte link.

Shared by `securecomp.models.ckks.protocol` and its inference and release modules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError
from securecomp.models.approx import PolynomialSigmoid
from securecomp.models.ckks.client import InferenceClient
from securecomp.models.ckks.keyholder import PlainBatch, RefreshChecks
from securecomp.models.ckks.plan import TrainingPlan
from securecomp.models.ckks.session import CKKSSession
from securecomp.models.gd import GDConfig, Step
from securecomp.net.report import CostReport
from securecomp.net.stats import CommStats

__all__ = [
    "CLIENT",
    "EXECUTION",
    "KH",
    "SERVER",
    "CKKSFitState",
    "Link",
    "Preparation",
    "ReleasedModel",
    "check_features",
    "check_inputs",
    "count_message",
    "to_data_units",
]

KH, SERVER, CLIENT = "key holder", "server", "inference client"
EXECUTION = (
    "simulation of roles in one process: the key holder and the server are separate "
    "objects that exchange serialized bytes only (securecomp.models.ckks.session runs "
    "them over securecomp.net channels)"
)


def check_features(X: object) -> NDArray[np.float64]:
    """Validated float64 ``X`` (n, d): non-empty, 2-d, finite."""
    try:
        Xa = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"X must be a numeric array: {exc}") from None
    if Xa.ndim != 2 or Xa.shape[0] == 0 or Xa.shape[1] == 0:
        raise ShapeMismatchError(f"X must be a non-empty 2-d array, got shape {Xa.shape}")
    if not np.all(np.isfinite(Xa)):
        raise EncodingOverflowError(
            "X contains NaN or inf, which CKKS would encrypt as garbage; impute or drop them"
        )
    return Xa


def check_inputs(
    X: object, y: object, task: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validated float64 ``X`` (n, d) and ``y`` (n,): shapes, finiteness, 0/1 labels."""
    Xa = check_features(X)
    try:
        ya = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"y must be a numeric array: {exc}") from None
    if ya.shape != (Xa.shape[0],):
        raise ShapeMismatchError(f"y must have shape ({Xa.shape[0]},) to match X, got {ya.shape}")
    if not np.all(np.isfinite(ya)):
        raise EncodingOverflowError("y contains NaN or inf; drop those rows first")
    if task == "logistic" and not np.all((ya == 0.0) | (ya == 1.0)):
        raise ParameterError("logistic labels must be 0 or 1; map the two classes first")
    return Xa, ya


def to_data_units(
    w: NDArray[np.float64], target: tuple[float, float] | None, intercept: bool
) -> tuple[NDArray[np.float64], float]:
    """Training-unit weights (intercept first) as ``(coef, intercept)`` in data units."""
    w = np.asarray(w, dtype=np.float64)
    b, coef = (float(w[0]), w[1:].copy()) if intercept else (0.0, w.copy())
    if target is not None:
        mean, scale = target
        coef, b = coef * scale, b * scale + mean
    return coef, b


@dataclass(frozen=True)
class Preparation:
    """The key holder's plaintext side of a fit (`CKKSProtocol.prepare`).

    ``batches`` are ``(Z, y, rows)`` with the intercept column first and zero rows of
    padding; ``target`` is the affine map of a least-squares target (mean, scale).
    """

    sigmoid: PolynomialSigmoid | None
    cfg: GDConfig
    target: tuple[float, float] | None
    plan: TrainingPlan
    batches: list[PlainBatch]
    steps: list[Step]
    checks: RefreshChecks


@dataclass
class ReleasedModel:
    """A model released to the server through noise flooding.

    Attributes
    ----------
    coef, intercept
        The released (noisy) model, in the units of the data.
    noise_std : float
        σ of the flooding noise per weight (training units).
    error_bound : float
        The bound on the key holder's decryption error it was sized from.
    s : int
        Statistical security parameter.
    report : CostReport
        Its metrics hold the flooding figures and, when data was given, the accuracy
        (or MSE) of the released model beside the key holder's.
    """

    coef: NDArray[np.float64]
    intercept: float
    noise_std: float
    error_bound: float
    s: int
    report: CostReport


@dataclass
class CKKSFitState:
    """What a CKKS fit keeps (protocol-private; `FitResult.state`)."""

    plan: TrainingPlan
    cfg: GDConfig
    width: int
    target: tuple[float, float] | None
    w_train: NDArray[np.float64]
    coef: NDArray[np.float64]
    intercept: float
    error_bound: dict[str, float]
    session: CKKSSession | None = None
    simulated: bool = False
    clients: dict[int, InferenceClient] = field(default_factory=dict)
    registered: set[str] = field(default_factory=set)
    models_sent: set[str] = field(default_factory=set)
    released: ReleasedModel | None = None


def count_message(a: CommStats, b: CommStats, sender: str, nbytes: int, tag: str) -> None:
    """Count one message from ``a``'s party to ``b``'s in both ledgers."""
    receiver = b.party if b.party is not None else "?"
    depth = a.record_send(receiver, nbytes, tag)
    b.record_recv(sender, nbytes, tag, depth)


class Link:
    """The in-process transport between server and key holder: bytes, counted and timed."""

    def __init__(self, handler: Callable[[bytes], bytes], kh: CommStats, srv: CommStats) -> None:
        self.handler, self.kh, self.srv = handler, kh, srv
        self.seconds = 0.0

    def __call__(self, data: bytes) -> bytes:
        count_message(self.srv, self.kh, SERVER, len(data), "ckks.fit.step")
        t0 = time.perf_counter()
        reply = self.handler(data)
        self.seconds += time.perf_counter() - t0
        count_message(self.kh, self.srv, KH, len(reply), "ckks.fit.reply")
        return reply
