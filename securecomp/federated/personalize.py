"""Personalization on the device: Ditto (Li, Hu, Beirami and Smith, ICML 2021).

After federated training, each client k fits a personal model to its own data, pulled
towards the global model ``w*`` (Ditto's personal objective, eq. (2) of the paper):

    min_v  h_k(v; w*) = F_k(v) + (lambda / 2) ||v - w*||^2

``F_k`` is the client's local empirical risk (`securecomp.federated.local`). ``lambda = 0``
gives a purely local model started from the global one (fine-tuning); ``lambda -> inf`` gives
the global model. The paper solves it by local gradient steps from ``w*`` (its Algorithm 1,
personal-model update), as done here; solving it once after training, rather than
interleaved with the global rounds, is the variant the paper also evaluates for a fixed
global model.

Privacy: the personal model is computed and kept on the device (`Device.personalize`);
nothing of it is sent anywhere. The per-client comparison `personalization_report` is what
a simulation measures on the users' held-out data; in a deployment, each user would see
only their own line (or report it under an evaluation consent).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ParameterError
from securecomp.federated.device import Device
from securecomp.federated.local import LocalTraining, local_train

__all__ = [
    "ClientAccuracy",
    "PersonalizationReport",
    "ditto_personal_model",
    "personalization_report",
]


def ditto_personal_model(
    global_params: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    spec: LocalTraining,
    lam: float,
) -> NDArray[np.float64]:
    """Minimize ``F_k(v) + (lam/2)||v - w*||^2`` by ``spec.epochs`` gradient steps from ``w*``.

    Parameters
    ----------
    global_params : the global model ``w*`` (not modified).
    x, y : the client's training samples.
    spec : model kind, steps, step size and ridge penalty of the local objective.
    lam : Ditto's ``lambda >= 0``: how strongly the personal model is kept near ``w*``.
    """
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not math.isfinite(lam):
        raise ParameterError(f"lam must be a finite real number, got {lam!r}")
    if lam < 0:
        raise ParameterError(f"lam must be >= 0, got {lam!r}")
    anchor = np.asarray(global_params, dtype=np.float64)
    return local_train(anchor, x, y, spec, anchor=anchor, mu=float(lam))


@dataclass(frozen=True)
class ClientAccuracy:
    """One user's held-out accuracy (R^2 for linear models) under the three models."""

    pseudonym: str
    samples: int
    global_model: float
    personalized: float
    local_only: float


@dataclass(frozen=True)
class PersonalizationReport:
    """Per-client accuracies and their means (clients without held-out data are skipped)."""

    clients: tuple[ClientAccuracy, ...]

    def _mean(self, attr: str) -> float:
        values = [getattr(c, attr) for c in self.clients]
        return float(np.mean(values)) if values else math.nan

    @property
    def mean_global(self) -> float:
        """Mean over clients of the global model's accuracy."""
        return self._mean("global_model")

    @property
    def mean_personalized(self) -> float:
        """Mean over clients of the personalized models' accuracy."""
        return self._mean("personalized")

    @property
    def mean_local_only(self) -> float:
        """Mean over clients of the local-only models' accuracy."""
        return self._mean("local_only")

    @property
    def improved_fraction(self) -> float:
        """Fraction of clients whose personalized model beats the global one."""
        if not self.clients:
            return math.nan
        return sum(c.personalized > c.global_model for c in self.clients) / len(self.clients)

    def to_dict(self) -> dict[str, object]:
        """JSON-compatible form (per-client lines under pseudonyms)."""
        return {
            "mean_global": self.mean_global,
            "mean_personalized": self.mean_personalized,
            "mean_local_only": self.mean_local_only,
            "improved_fraction": self.improved_fraction,
            "clients": [c.__dict__ for c in self.clients],
        }


def personalization_report(
    devices: Iterable[Device],
    global_params: NDArray[np.float64],
    spec: LocalTraining,
    lam: float,
    *,
    local_spec: LocalTraining | None = None,
) -> PersonalizationReport:
    """Personalize every device and compare global, personalized and local-only accuracy.

    Each device fits its personal model (kept on the device) and a local-only model from
    zero (``local_spec``, default ``spec``), and measures all three on its held-out data.
    Devices without held-out samples or erased are skipped.
    """
    rows = []
    for dev in devices:
        if dev.erased:
            continue
        dev.personalize(global_params, spec, lam)
        held_out, _ = dev.test_data()
        if held_out.shape[0] == 0:
            continue
        local = dev.fit_local_only(local_spec or spec)
        rows.append(
            ClientAccuracy(
                pseudonym=dev.pseudonym,
                samples=dev.num_samples,
                global_model=dev.evaluate(global_params, spec.kind),
                personalized=dev.evaluate(None, spec.kind),
                local_only=dev.evaluate(local, spec.kind),
            )
        )
    return PersonalizationReport(tuple(rows))
