"""Consent-aware FedAvg over secure aggregation, with optional user-level distributed DP.

Federated averaging (McMahan et al., "Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS 2017, Algorithm 1) of binary logistic or linear models, in the
DP-FedAvg form of McMahan et al. (ICLR 2018): every participant's update counts equally and
is clipped, so one user's influence on a round is bounded. (Weighting by sample counts would
also reveal those counts to the server.)

One round ``r``, seen from the server (`FedAvgTrainer.run_round`):

1. *Selection* (`securecomp.federated.consent`): users with active consent for
   ``Purpose.TRAINING`` whose privacy budget can pay the round. Under DP the price of a
   round differs per user (the increment of their composed guarantee,
   `securecomp.federated.privacy`), so the trainer prices every reachable user and hands
   the registry that price list: it draws the cohort (up to ``clients_per_round``) among
   exactly the users who can pay their own price, and records it. Users who withdrew (or
   were purged) are not eligible from the next round on, unless they opt in again; users
   whose budget cannot pay are not selected (`RoundRecord.left_out_for_budget`).
2. *Local training* on each participant's device (`Device.local_update`): a few epochs of
   gradient descent from the global model; the device returns ``local - global`` only.
3. *Secure aggregation* (`securecomp.federated.aggregation`): SecAgg+ in the in-process
   simulator, optionally with distributed DP, whose encoded vectors are summed directly in
   the DP encoding's ring Z_2^b (`securecomp.federated.dp_aggregation`). The server obtains
   the (noisy) mean of the survivors' clipped updates and a `CostReport` (bytes per
   client).
4. *Accounting*: participation of the survivors is recorded in the registry with each
   survivor's own price, in one all-or-nothing call (an unaffordable spend raises
   `BudgetExceededError` and leaves the ledger unchanged). A round's price is that of
   `DpSecAggAggregator.privacy_event`: the mechanism's Renyi bound, with the wrap-around
   probability and secure aggregation's failure budget (``2^-security_bits``) in delta.
5. *Update*: ``w <- w + server_learning_rate * mean``.

A round that cannot be run safely (too few affordable participants for the DP noise, or a
secure-aggregation abort) changes neither the model nor any ledger; its record says
"skipped" or "aborted" and why. Without DP, participation is recorded as having *no*
differential-privacy guarantee (never as a zero charge, which would claim perfect privacy):
secure aggregation hides individual updates but the aggregate carries no such guarantee,
`FedAvgResult.epsilon` is infinite, and each participant's report says their budget does
not bound those rounds.

Threat model: that of the aggregator (semi-honest server colluding with at most the threat
model's corrupt fraction of clients; see `securecomp.secagg`), plus the DP guarantee of
`securecomp.dp` on everything the server outputs. The registry is trusted with consent
records. Simulation: all parties run in this process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from securecomp.dp import DistributedDpConfig, PrivacyEvent
from securecomp.errors import ParameterError, ProtocolAbort
from securecomp.federated.aggregation import (
    AggregationOutcome,
    Aggregator,
    PlainAggregator,
    SecAggAggregator,
)
from securecomp.federated.consent import ConsentRegistry
from securecomp.federated.device import Device
from securecomp.federated.dp_aggregation import DpSecAggAggregator, DpSettings
from securecomp.federated.local import LocalTraining, zero_model
from securecomp.federated.privacy import UserLevelAccountant
from securecomp.federated.purpose import Purpose
from securecomp.secagg import ThreatModel

__all__ = ["FedAvgConfig", "FedAvgResult", "FedAvgTrainer", "RoundRecord"]

#: Default threat model of the demo and of FedAvg: 5% corrupt clients, 5% dropouts.
DEFAULT_THREAT = ThreatModel(corrupt_fraction=0.05, dropout_fraction=0.05)


@dataclass(frozen=True)
class FedAvgConfig:
    """Parameters of a federated training run.

    Attributes
    ----------
    rounds : number of rounds.
    local : the devices' local training (model kind, epochs, step size, ridge).
    clients_per_round : cohort size; None takes every eligible user.
    server_learning_rate : step applied to the aggregated mean update.
    aggregator : ``"secagg+"`` (default), ``"secagg"`` (complete graph) or ``"plain"``
        (in the clear: the reference, no protection).
    clip : per-coordinate clipping bound of updates without DP.
    scale_bits : quantization step ``2^-scale_bits`` without DP.
    threat : corrupt and dropout fractions secure aggregation (and DP) must withstand.
    dp : user-level distributed DP; None trains without DP.
    dropout : probability that a participant drops out before sending its masked input
        (simulated faults).
    """

    rounds: int
    local: LocalTraining = field(default_factory=LocalTraining)
    clients_per_round: int | None = None
    server_learning_rate: float = 1.0
    aggregator: Literal["secagg+", "secagg", "plain"] = "secagg+"
    clip: float = 1.0
    scale_bits: int = 16
    threat: ThreatModel = DEFAULT_THREAT
    dp: DpSettings | None = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        r = self.rounds
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ParameterError(f"rounds must be an integer >= 1, got {r!r}")
        k = self.clients_per_round
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 2):
            raise ParameterError(f"clients_per_round must be an integer >= 2 or None, got {k!r}")
        if not isinstance(self.local, LocalTraining):
            raise ParameterError("local must be a LocalTraining")
        lr = self.server_learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0 or lr == math.inf:
            raise ParameterError(f"server_learning_rate must be > 0, got {lr!r}")
        if self.aggregator not in ("secagg+", "secagg", "plain"):
            raise ParameterError(
                f"aggregator must be 'secagg+', 'secagg' or 'plain', got {self.aggregator!r}"
            )
        if self.dp is not None:
            if not isinstance(self.dp, DpSettings):
                raise ParameterError("dp must be a DpSettings or None")
            if self.aggregator != "secagg+":
                raise ParameterError("distributed DP runs over secure aggregation: use 'secagg+'")
        if not isinstance(self.threat, ThreatModel):
            raise ParameterError("threat must be a securecomp.secagg.ThreatModel")
        p = self.dropout
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p < 1.0:
            raise ParameterError(f"dropout must be a probability in [0, 1), got {p!r}")


@dataclass(frozen=True)
class RoundRecord:
    """What one round did (as the server saw it; no client data).

    ``epsilon_max`` is the largest cumulative epsilon of any user after the round (at the
    DP delta); 0 before anyone was charged, inf without DP once anyone participated.
    ``left_out_for_budget`` counts the users with consent and a reachable device whose
    budget could not pay their price for the round (they were not selected).
    """

    round: int
    status: str
    selected: int
    participants: int
    survivors: int
    left_out_for_budget: int
    bytes_sent_per_client: float
    bytes_received_per_client: float
    epsilon_max: float
    epsilon_round: float
    error_bound: float
    seconds: float
    protocol: str
    details: dict[str, float | int | str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class FedAvgResult:
    """The trained global model and the round history."""

    params: NDArray[np.float64]
    rounds: tuple[RoundRecord, ...]
    epsilon: float
    delta: float

    @property
    def completed_rounds(self) -> int:
        """Rounds whose aggregate updated the model."""
        return sum(r.status == "ok" for r in self.rounds)


RoundCallback = Callable[[RoundRecord, NDArray[np.float64]], None]


class FedAvgTrainer:
    """The server's side of consent-aware FedAvg (see the module docstring).

    Invariant: the server object never holds a sample or a personal model; it sees the
    devices only through `Device.local_update` and the aggregate.

    Parameters
    ----------
    registry : the consent registry (selection, participation, budget ledger).
    devices : the devices reachable in the simulation, by pseudonym.
    config : the run's parameters.
    rng : generator of the simulation's non-secret randomness (rounding coins of the
        non-DP quantizer, simulated dropouts).
    dim : number of features (default: that of the first device).
    first_round : number of the first round (round numbers strictly increase in a registry).
    """

    def __init__(
        self,
        registry: ConsentRegistry,
        devices: Mapping[str, Device],
        config: FedAvgConfig,
        *,
        rng: np.random.Generator,
        dim: int | None = None,
        first_round: int = 0,
    ) -> None:
        if not isinstance(registry, ConsentRegistry):
            raise ParameterError("registry must be a ConsentRegistry")
        if not isinstance(config, FedAvgConfig):
            raise ParameterError("config must be a FedAvgConfig")
        if not isinstance(rng, np.random.Generator):
            raise ParameterError("rng must be a numpy.random.Generator (simulation randomness)")
        self.registry = registry
        self.devices = dict(devices)
        if dim is None:
            if not self.devices:
                raise ParameterError("give dim when there is no device")
            dim = next(iter(self.devices.values())).dim
        self.config = config
        self.rng = rng
        self.params = zero_model(dim)
        self.next_round = first_round
        self.history: list[RoundRecord] = []
        self.aggregator: Aggregator = self._make_aggregator()
        self.accountant = (
            UserLevelAccountant(config.dp.delta) if config.dp is not None else None
        )
        self._participated: set[str] = set()
        #: Pseudonyms selected for, and contributing to, each round (the server knows both).
        self.selected: dict[int, tuple[str, ...]] = {}
        self.contributors: dict[int, tuple[str, ...]] = {}
        #: Privacy event of the last round that updated the model (None without DP).
        self.last_event: PrivacyEvent | None = None

    def _make_aggregator(self) -> Aggregator:
        c = self.config
        if c.dp is not None:
            return DpSecAggAggregator(c.dp, threat=c.threat)
        if c.aggregator == "plain":
            return PlainAggregator(c.clip)
        return SecAggAggregator(
            clip=c.clip, scale_bits=c.scale_bits, threat=c.threat, rng=self.rng,
            protocol=c.aggregator,
        )

    # --- selection and pricing ---------------------------------------------------------------

    def _price(
        self, accountant: UserLevelAccountant, pool: list[str], event: PrivacyEvent, r: int
    ) -> tuple[dict[str, tuple[float, float]], set[str]]:
        """Each pooled user's price, and who can pay it (asked of the registry, in one call).

        Users whose composed guarantee would be vacuous get no price, so the registry
        treats them as unable to pay.
        """
        prices: dict[str, tuple[float, float]] = {}
        for p in pool:
            cost = accountant.cost(p, event)
            if cost is not None:
                prices[p] = cost
        affordable = set(self.registry.eligible(Purpose.TRAINING, r, cost=prices))
        return prices, affordable

    def _plan(
        self, pool: list[str], r: int
    ) -> tuple[DistributedDpConfig | None, dict[str, tuple[float, float]], set[str], int]:
        """The round's DP configuration, prices and affordable users, for the cohort size."""
        k = self.config.clients_per_round
        n = len(pool) if k is None else min(k, len(pool))
        if not isinstance(self.aggregator, DpSecAggAggregator) or self.accountant is None:
            return None, {}, set(pool), n  # no DP: nothing to price
        cfg: DistributedDpConfig | None = None
        prices: dict[str, tuple[float, float]] = {}
        affordable: set[str] = set()
        # The price depends on the cohort size and the cohort on who can pay: iterate (the
        # affordable set only shrinks, so this settles within a few passes).
        for _ in range(4):
            if n < 2:
                return None, {}, set(), n
            try:
                cfg = self.aggregator.plan(n, self.params.shape[0])
            except ProtocolAbort:
                return None, {}, set(), n
            event = self.aggregator.privacy_event(cfg)
            prices, affordable = self._price(self.accountant, pool, event, r)
            new = len(affordable) if k is None else min(k, len(affordable))
            if new == n:
                break
            n = new
        return cfg, prices, affordable, n

    # --- one round ---------------------------------------------------------------------------

    def run_round(self) -> RoundRecord:
        """Run the next round (see the module docstring) and return its record."""
        r = self.next_round
        self.next_round += 1
        start = time.perf_counter()
        online = [p for p in self.registry.eligible(Purpose.TRAINING, r) if p in self.devices]
        online = [p for p in online if not self.devices[p].erased]
        cfg, prices, affordable, n_plan = self._plan(online, r)
        k = None if self.config.clients_per_round is None else n_plan
        if self.accountant is not None:
            # The registry draws among exactly the users who can pay their own price; with
            # no sound plan the price list is empty and nobody is selected.
            chosen = self.registry.select(Purpose.TRAINING, r, k=k, cost=prices)
        else:
            chosen = self.registry.select(Purpose.TRAINING, r, k=k)
        self.selected[r] = tuple(chosen)
        participants = [p for p in chosen if p in affordable]
        if cfg is not None:
            participants = participants[: cfg.n_clients]  # the DP plan's most summands
        left_out = sum(1 for p in online if p not in affordable)

        def record(
            status: str, outcome: AggregationOutcome | None = None, survivors: int = 0
        ) -> RoundRecord:
            rec = RoundRecord(
                round=r,
                status=status,
                selected=len(chosen),
                participants=len(participants),
                survivors=survivors,
                left_out_for_budget=left_out,
                bytes_sent_per_client=outcome.bytes_sent if outcome else 0.0,
                bytes_received_per_client=outcome.bytes_received if outcome else 0.0,
                epsilon_max=self._epsilon_max(),
                epsilon_round=self._epsilon_round(cfg),
                error_bound=outcome.error_bound if outcome else 0.0,
                seconds=time.perf_counter() - start,
                protocol=outcome.protocol if outcome else self.aggregator.name,
                details=dict(outcome.details) if outcome else {},
            )
            self.history.append(rec)
            return rec

        if len(participants) < 2 or (cfg is not None and len(participants) < cfg.min_survivors):
            return record("skipped: too few participants")
        updates = [
            self.devices[p].local_update(self.params, self.config.local) for p in participants
        ]
        drop = [
            i for i in range(len(participants)) if self.rng.random() < self.config.dropout
        ]
        try:
            outcome = self.aggregator.aggregate(updates, r, drop=drop, dp_config=cfg)
        except ProtocolAbort as exc:
            return record(f"aborted: {exc.reason}")
        survivors = [participants[i] for i in outcome.survivors]
        self._charge(r, survivors, prices, cfg)
        self.contributors[r] = tuple(survivors)
        self.params = self.params + self.config.server_learning_rate * outcome.mean
        return record("ok", outcome, len(survivors))

    def _charge(
        self,
        r: int,
        survivors: list[str],
        prices: dict[str, tuple[float, float]],
        cfg: DistributedDpConfig | None,
    ) -> None:
        if self.accountant is None:
            # No DP: the registry records that these rounds have no guarantee, so the users'
            # reports say their budget does not bound them (not "0 epsilon spent").
            self.registry.record_participation(Purpose.TRAINING, r, survivors, dp=False)
        else:
            # Each survivor pays their own price, all or nothing in one transaction.
            self.registry.record_participation(
                Purpose.TRAINING, r, survivors, cost={p: prices[p] for p in survivors}
            )
        if self.accountant is not None and cfg is not None:
            self.last_event = self._event(cfg)
            self.accountant.commit(survivors, self.last_event)
        self._participated.update(survivors)

    def _epsilon_max(self) -> float:
        if self.accountant is None:
            return math.inf if self._participated else 0.0
        return max((self.accountant.epsilon(p) for p in self._participated), default=0.0)

    def _epsilon_round(self, cfg: DistributedDpConfig | None) -> float:
        """The epsilon of this round alone (at the DP delta)."""
        if self.config.dp is None:
            return math.inf
        if cfg is None:
            return 0.0
        cost = UserLevelAccountant(self.config.dp.delta).cost("", self._event(cfg))
        return math.inf if cost is None else cost[0]

    def _event(self, cfg: DistributedDpConfig) -> PrivacyEvent:
        """The privacy event of a round under ``cfg`` (secure aggregation's failure budget
        counted in delta, `DpSecAggAggregator.privacy_event`)."""
        if not isinstance(self.aggregator, DpSecAggAggregator):
            raise ParameterError("privacy events exist only for rounds with distributed DP")
        return self.aggregator.privacy_event(cfg)

    def exhausted(self, pseudonyms: Iterable[str] | None = None) -> list[str]:
        """Users who could not pay one more round like the last one that updated the model.

        Each user's price for `last_event` is compared with what their budget has left
        (`ConsentRegistry.remaining`); a user whose guarantee would become vacuous counts
        too. Their training is over unless their budget is raised. A planning figure: the
        registry's check at selection decides each round. Empty without DP or before the
        first DP round.

        Parameters
        ----------
        pseudonyms : the users to check (default: every contributor the registry still
            knows, i.e. not forgotten).
        """
        if self.accountant is None or self.last_event is None:
            return []
        if pseudonyms is None:
            pseudonyms = {p for c in self.contributors.values() for p in c}
            pseudonyms = [p for p in pseudonyms if p in self._participated]
        out: list[str] = []
        for p in sorted(set(pseudonyms)):
            cost = self.accountant.cost(p, self.last_event)
            left = self.registry.remaining(p)
            if cost is None or cost[0] > left[0] or cost[1] > left[1]:
                out.append(p)
        return out

    # --- the run -----------------------------------------------------------------------------

    def forget(self, pseudonyms: list[str] | tuple[str, ...]) -> None:
        """Erase the devices of purged users and drop them from the accountant."""
        for p in pseudonyms:
            dev = self.devices.pop(p, None)
            if dev is not None:
                dev.erase()
            if self.accountant is not None:
                self.accountant.forget(p)
            self._participated.discard(p)

    def fit(self, callback: RoundCallback | None = None) -> FedAvgResult:
        """Run ``config.rounds`` rounds; ``callback(record, params)`` after each."""
        for _ in range(self.config.rounds):
            rec = self.run_round()
            if callback is not None:
                callback(rec, self.params.copy())
        return self.result()

    def result(self) -> FedAvgResult:
        """The model and history so far."""
        delta = self.config.dp.delta if self.config.dp is not None else 0.0
        return FedAvgResult(self.params.copy(), tuple(self.history), self._epsilon_max(), delta)

