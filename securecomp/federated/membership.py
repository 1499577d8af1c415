"""Privacy risk indicators: membership-inference attacks and the bound DP puts on them.

Membership inference asks, for a sample ``(x, y)``, whether it was in the training data.
The attacker's *advantage* is ``TPR - FPR`` of its guess (Yeom, Giacomelli, Fredrikson and
Jha, "Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting", CSF 2018,
Definition 4). Two attacks, both using only the model's loss on the sample:

1. `yeom_attack`: guess "member" when the loss is below the model's average training loss
   (Yeom et al., section 3.2, the threshold adversary that knows the expected training
   loss). Its advantage grows with the generalization gap.
2. `calibrated_attack`: the threshold is tuned instead of assumed. The attacker holds a
   labelled sample of members and non-members, picks the loss threshold maximizing
   ``TPR - FPR`` on one half of it and is evaluated on the other half; no shadow models
   (Shokri et al., S&P 2017) are trained. This is the "global threshold" baseline of
   Carlini et al. ("Membership Inference Attacks From First Principles", S&P 2022).

What DP promises: an (epsilon, delta)-DP training algorithm makes membership a hypothesis
test that no attacker can win by much. From Kairouz, Oh and Viswanath ("The Composition
Theorem for Differential Privacy", ICML 2015, Theorem 2.1), every test satisfies
``FPR + e^eps FNR >= 1 - delta`` and ``FNR + e^eps FPR >= 1 - delta``; adding them gives

    TPR - FPR <= (e^eps - 1 + 2 delta) / (e^eps + 1)         (`advantage_bound`)

for the membership of one record; user-level DP covers each of a user's records. The
measured advantage is an estimate from finitely many samples: `AttackResult.standard_error`
gives its sampling error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import ParameterError
from securecomp.federated.device import Device
from securecomp.federated.local import ModelKind

__all__ = [
    "AttackResult",
    "MembershipReport",
    "advantage_bound",
    "calibrated_attack",
    "device_losses",
    "membership_report",
    "threshold_attack",
    "yeom_attack",
]


def advantage_bound(epsilon: float, delta: float) -> float:
    """Largest membership advantage ``(e^eps - 1 + 2 delta) / (e^eps + 1)`` under (eps, delta)-DP.

    1 for ``epsilon = inf`` (no guarantee); never above 1.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or epsilon < 0:
        raise ParameterError(f"epsilon must be a number >= 0, got {epsilon!r}")
    if not isinstance(delta, int | float) or not 0.0 <= delta < 1.0:
        raise ParameterError(f"delta must lie in [0, 1), got {delta!r}")
    if math.isinf(epsilon) or epsilon > 700.0:
        return 1.0
    e = math.exp(epsilon)
    return min(1.0, (e - 1.0 + 2.0 * delta) / (e + 1.0))


def _losses(name: str, values: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ParameterError(f"{name} must be a non-empty 1-D array of losses")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} hold NaN or infinity")
    return arr


@dataclass(frozen=True)
class AttackResult:
    """Outcome of a loss-threshold attack: it guesses "member" when ``loss <= threshold``."""

    name: str
    threshold: float
    tpr: float
    fpr: float
    members: int
    non_members: int

    @property
    def advantage(self) -> float:
        """``TPR - FPR`` (Yeom et al. 2018, Definition 4)."""
        return self.tpr - self.fpr

    @property
    def standard_error(self) -> float:
        """Sampling standard error of `advantage` (two independent binomial rates)."""
        return math.sqrt(
            self.tpr * (1 - self.tpr) / self.members
            + self.fpr * (1 - self.fpr) / self.non_members
        )

    def to_dict(self) -> dict[str, float | int | str]:
        """JSON-compatible form."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "tpr": self.tpr,
            "fpr": self.fpr,
            "advantage": self.advantage,
            "standard_error": self.standard_error,
            "members": self.members,
            "non_members": self.non_members,
        }


def threshold_attack(
    member_losses: ArrayLike, non_member_losses: ArrayLike, threshold: float, name: str = ""
) -> AttackResult:
    """Evaluate the guess "member iff loss <= threshold" on known members and non-members."""
    m = _losses("member_losses", member_losses)
    n = _losses("non_member_losses", non_member_losses)
    if not math.isfinite(threshold):
        raise ParameterError("the threshold must be finite")
    return AttackResult(
        name=name or "loss threshold",
        threshold=float(threshold),
        tpr=float(np.mean(m <= threshold)),
        fpr=float(np.mean(n <= threshold)),
        members=m.size,
        non_members=n.size,
    )


def yeom_attack(
    member_losses: ArrayLike, non_member_losses: ArrayLike, train_loss: float | None = None
) -> AttackResult:
    """Yeom et al.'s threshold adversary: threshold = the average training loss.

    ``train_loss`` defaults to the mean of ``member_losses`` (the members are the training
    samples).
    """
    m = _losses("member_losses", member_losses)
    tau = float(m.mean()) if train_loss is None else float(train_loss)
    return threshold_attack(m, non_member_losses, tau, "loss threshold (Yeom et al. 2018)")


def _best_threshold(m: NDArray[np.float64], n: NDArray[np.float64]) -> float:
    """The threshold maximizing ``TPR - FPR`` on (m, n).

    Every observed loss is a candidate; the threshold is placed halfway to the next observed
    loss, so a gap between the two sets is split rather than hugged.
    """
    candidates = np.unique(np.concatenate([m, n]))
    ms, ns = np.sort(m), np.sort(n)
    tpr = np.searchsorted(ms, candidates, side="right") / m.size
    fpr = np.searchsorted(ns, candidates, side="right") / n.size
    i = int(np.argmax(tpr - fpr))
    if i + 1 < candidates.size:
        return float(0.5 * (candidates[i] + candidates[i + 1]))
    return float(candidates[i])


def calibrated_attack(
    member_losses: ArrayLike,
    non_member_losses: ArrayLike,
    *,
    rng: np.random.Generator,
    calibration_fraction: float = 0.5,
) -> AttackResult:
    """Threshold tuned on a labelled calibration split, evaluated on the rest (no shadow models).

    Parameters
    ----------
    member_losses, non_member_losses : losses of known members and non-members.
    rng : shuffles the samples into calibration and evaluation splits (not a secret).
    calibration_fraction : share of each set given to the attacker for calibration.
    """
    m = _losses("member_losses", member_losses)
    n = _losses("non_member_losses", non_member_losses)
    if not 0.0 < calibration_fraction < 1.0:
        raise ParameterError("calibration_fraction must lie in (0, 1)")
    if min(m.size, n.size) < 2:
        raise ParameterError("need at least 2 members and 2 non-members to calibrate")
    m, n = rng.permutation(m), rng.permutation(n)
    cm = min(max(1, round(calibration_fraction * m.size)), m.size - 1)
    cn = min(max(1, round(calibration_fraction * n.size)), n.size - 1)
    tau = _best_threshold(m[:cm], n[:cn])
    return threshold_attack(m[cm:], n[cn:], tau, "calibrated loss threshold")


def device_losses(
    devices: Iterable[Device], params: NDArray[np.float64], kind: ModelKind = "logistic"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-sample losses of ``params`` on the devices' training (members) and held-out
    (non-members) samples, concatenated (a simulation's view of every device)."""
    members: list[NDArray[np.float64]] = []
    non_members: list[NDArray[np.float64]] = []
    for dev in devices:
        if dev.erased:
            continue
        members.append(dev.sample_losses(params, kind))
        non_members.append(dev.sample_losses(params, kind, held_out=True))
    if not members:
        raise ParameterError("no device holds data")
    return np.concatenate(members), np.concatenate(non_members)


@dataclass(frozen=True)
class MembershipReport:
    """Both attacks on one model, beside the bound its DP guarantee implies."""

    epsilon: float
    delta: float
    yeom: AttackResult
    calibrated: AttackResult

    @property
    def bound(self) -> float:
        """`advantage_bound` at the model's (epsilon, delta)."""
        return advantage_bound(self.epsilon, self.delta)

    @property
    def max_advantage(self) -> float:
        """The larger advantage of the two attacks."""
        return max(self.yeom.advantage, self.calibrated.advantage)

    @property
    def within_bound(self) -> bool:
        """Whether both measured advantages are at most the bound (point estimates)."""
        return self.max_advantage <= self.bound

    def to_dict(self) -> dict[str, object]:
        """JSON-compatible form (an infinite epsilon is written as None)."""
        return {
            "epsilon": self.epsilon if math.isfinite(self.epsilon) else None,
            "delta": self.delta,
            "bound": self.bound,
            "within_bound": self.within_bound,
            "yeom": self.yeom.to_dict(),
            "calibrated": self.calibrated.to_dict(),
        }


def membership_report(
    member_losses: ArrayLike,
    non_member_losses: ArrayLike,
    *,
    epsilon: float,
    delta: float,
    rng: np.random.Generator,
) -> MembershipReport:
    """Run both attacks on the same losses and pair them with the DP bound."""
    return MembershipReport(
        epsilon=float(epsilon),
        delta=float(delta),
        yeom=yeom_attack(member_losses, non_member_losses),
        calibrated=calibrated_attack(member_losses, non_member_losses, rng=rng),
    )
