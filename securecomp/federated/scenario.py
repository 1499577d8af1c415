"""The end-to-end scenario behind ``securecomp demo``: consent-aware, private personalization.

A simulation, in one process, of ``users`` people whose data never leave their devices:

1. *Data*: FedProx's Synthetic(alpha, beta) (Li et al., MLSys 2020), heterogeneous per user;
   each device keeps a quarter of its samples as held-out data. Features enter each device
   through a declared `FeatureSchema`; a record with an undeclared feature is refused.
2. *Consent*: an SQLite registry in a temporary file, its pseudonym key in a separate file.
   Most users consent to training and personalization, a few to personalization only; some
   choose a stricter privacy budget than the default.
3. *Federated training*: FedAvg of a logistic model over SecAgg+ with user-level distributed
   DP (`securecomp.federated.fedavg`): the DP-encoded vectors are summed directly in the
   encoding's ring Z_2^b, ``b`` bits per value on the wire; the threshold the DP noise
   needs makes the SecAgg+ graph complete at these sizes
   (`securecomp.federated.dp_aggregation`). After round
   ``withdraw_after``, some users withdraw all consent; the registry purges their records
   and their devices delete their data. Users whose budget is spent stop taking part.
4. *Personalization*: each remaining device fits a Ditto personal model (Li et al., ICML
   2021) that never leaves it; global, personalized and local-only accuracy are compared on
   each user's held-out data.
5. *Encrypted inference*: one user's held-out features are scored by the server under CKKS
   (128-bit); only the user decrypts.
6. *Privacy risk*: the loss-threshold membership-inference attacks on the DP model and on a
   reference model trained without DP (simulation only, never deployed), against the bound
   ``(e^eps - 1 + 2 delta) / (e^eps + 1)``.

Every stage carries a self-check (`ScenarioReport.checks`); the demo exits non-zero if one
fails. Accuracies are measured by the simulation on the users' held-out data: in a
deployment each user would see only their own.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ConsentError, ParameterError
from securecomp.federated.budget import PrivacyBudget
from securecomp.federated.consent import ConsentRegistry
from securecomp.federated.data import synthetic_fedprox
from securecomp.federated.device import Device
from securecomp.federated.dp_aggregation import DpSettings
from securecomp.federated.fedavg import FedAvgConfig, FedAvgTrainer
from securecomp.federated.inference import encrypted_inference
from securecomp.federated.local import LocalTraining
from securecomp.federated.membership import device_losses, membership_report
from securecomp.federated.personalize import personalization_report
from securecomp.federated.pseudonym import PseudonymKey
from securecomp.federated.purpose import Purpose
from securecomp.federated.schema import Feature, FeatureSchema

__all__ = ["ScenarioConfig", "ScenarioReport", "run_scenario", "scenario_steps"]

#: Steps shown by the progress bar besides the training rounds.
_EXTRA_STEPS = 6


@dataclass(frozen=True)
class ScenarioConfig:
    """Sizes and parameters of the scenario (defaults: the ``securecomp demo`` run)."""

    users: int = 100
    dim: int = 10
    alpha: float = 0.5
    beta: float = 0.5
    min_samples: int = 40
    max_samples: int = 400
    test_fraction: float = 0.25
    rounds: int = 12
    clients_per_round: int | None = 50
    local_epochs: int = 5
    learning_rate: float = 0.1
    noise_multiplier: float = 4.0
    l2_clip: float = 0.5
    delta: float = 1e-5
    budget_epsilon: float = 4.0
    strict_users: int = 10
    strict_epsilon: float = 1.5
    training_decliners: int = 5
    withdraw_after: int = 5
    withdrawals: int = 5
    ditto_lambda: float = 0.1
    personal_epochs: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if self.users < 10:
            raise ParameterError("the scenario needs at least 10 users")
        if self.withdrawals + self.training_decliners + self.strict_users >= self.users:
            raise ParameterError("withdrawals, decliners and strict users must leave others")
        if not 0 <= self.withdraw_after < self.rounds:
            raise ParameterError("withdraw_after must be a round of the run")

    @classmethod
    def quick(cls, seed: int = 0) -> ScenarioConfig:
        """A tiny run for tests (a few seconds)."""
        return cls(
            users=20, dim=5, min_samples=20, max_samples=60, rounds=3, clients_per_round=None,
            strict_users=2, training_decliners=1, withdraw_after=0, withdrawals=2,
            personal_epochs=15, seed=seed,
        )


@dataclass
class ScenarioReport:
    """Everything the scenario measured; `to_dict` is the JSON report."""

    config: ScenarioConfig
    rounds: list[dict[str, Any]] = field(default_factory=list)
    accuracy_per_round: list[float] = field(default_factory=list)
    reference_accuracy_per_round: list[float] = field(default_factory=list)
    consent: dict[str, Any] = field(default_factory=dict)
    privacy: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    personalization: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    membership: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every self-check passed."""
        return bool(self.checks) and all(self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (infinite values written as None)."""
        out = {k: v for k, v in self.__dict__.items() if k != "config"}
        out["config"] = asdict(self.config)
        out["simulation"] = True
        return _finite(out)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return _finite(value.item())
    return value


Step = Callable[[str], None]


def _schema(dim: int) -> FeatureSchema:
    # Synthetic(alpha, beta) features lie within a few units of zero; the declared range
    # refuses anything implausible before it is used.
    return FeatureSchema([Feature(f"x{j}", "float64", -100.0, 100.0) for j in range(dim)])


@dataclass
class _Population:
    """The simulated users: devices and user ids by pseudonym, who trains, who is strict."""

    devices: dict[str, Device]
    ids: dict[str, str]
    trainers: set[str]
    strict: set[str]


def _enrol(
    cfg: ScenarioConfig, reg: ConsentRegistry, rng: np.random.Generator, report: ScenarioReport
) -> _Population:
    """Consent, budgets and devices."""
    data = synthetic_fedprox(
        cfg.alpha, cfg.beta, rng=rng, num_users=cfg.users, dim=cfg.dim,
        min_samples=cfg.min_samples, max_samples=cfg.max_samples,
    )
    schema = _schema(cfg.dim)
    order = rng.permutation(cfg.users)
    decliners = set(order[: cfg.training_decliners].tolist())
    strict = set(order[cfg.training_decliners : cfg.training_decliners + cfg.strict_users].tolist())
    pop = _Population({}, {}, set(), set())
    for i, client in enumerate(data.clients):
        uid = f"user-{i:03d}"
        purposes = [Purpose.PERSONALIZATION] if i in decliners else [
            Purpose.TRAINING, Purpose.PERSONALIZATION
        ]
        p = reg.opt_in(uid, *purposes)
        if i in strict:
            reg.set_budget(uid, PrivacyBudget(cfg.strict_epsilon, cfg.delta))
            pop.strict.add(p)
        columns = {name: client.x[:, j] for j, name in enumerate(schema.names)}
        pop.devices[p] = Device.from_records(
            p, columns, client.y, schema, test_fraction=cfg.test_fraction, rng=rng
        )
        pop.ids[p] = uid
        if i not in decliners:
            pop.trainers.add(p)
    # Data minimisation at work: a record with an undeclared feature never gets in.
    first = data.clients[0]
    extra = {name: first.x[:, j] for j, name in enumerate(schema.names)}
    extra["location"] = np.zeros(len(first))
    try:
        Device.from_records("probe", extra, first.y, schema)
        refused = False
    except ConsentError:
        refused = True
    report.checks["undeclared feature refused"] = refused
    report.consent.update(
        {
            "users": cfg.users,
            "declined_training": len(decliners),
            "strict_budget_users": len(strict),
            "default_budget": {"epsilon": cfg.budget_epsilon, "delta": cfg.delta},
            "strict_budget": {"epsilon": cfg.strict_epsilon, "delta": cfg.delta},
        }
    )
    return pop


def _mean_accuracy(devices: dict[str, Device], params: NDArray[np.float64]) -> float:
    values = [d.evaluate(params) for d in devices.values() if not d.erased]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def _train(
    cfg: ScenarioConfig,
    reg: ConsentRegistry,
    pop: _Population,
    rng: np.random.Generator,
    report: ScenarioReport,
    step: Step,
) -> FedAvgTrainer:
    dp = DpSettings(noise_multiplier=cfg.noise_multiplier, l2_clip=cfg.l2_clip, delta=cfg.delta)
    fed = FedAvgConfig(
        rounds=cfg.rounds,
        local=LocalTraining(epochs=cfg.local_epochs, learning_rate=cfg.learning_rate),
        clients_per_round=cfg.clients_per_round,
        dp=dp,
    )
    trainer = FedAvgTrainer(reg, pop.devices, fed, rng=rng)
    withdrawn: list[str] = []
    purged_records = 0
    for _ in range(cfg.rounds):
        rec = trainer.run_round()
        report.rounds.append(rec.to_dict())
        report.accuracy_per_round.append(_mean_accuracy(pop.devices, trainer.params))
        step(f"round {rec.round}: {rec.status}, {rec.survivors} contributors")
        if rec.round == cfg.withdraw_after:
            active = sorted(p for p in pop.trainers if p in trainer.devices)
            chosen = rng.choice(len(active), size=cfg.withdrawals, replace=False)
            withdrawn = [active[i] for i in sorted(chosen.tolist())]
            for p in withdrawn:
                reg.revoke(pop.ids[p])  # every purpose, one call
            purge = reg.purge()
            trainer.forget(purge.pseudonyms)  # the devices delete their data
            purged_records = purge.records
            report.consent["purged_users"] = len(purge.users)
    later = [p for r, sel in trainer.selected.items() if r > cfg.withdraw_after for p in sel]
    report.checks["withdrawn users never selected again"] = not set(withdrawn) & set(later)
    report.checks["withdrawn users' records purged"] = all(
        _absent(reg, p) and pop.devices[p].erased for p in withdrawn
    )
    report.consent.update({"withdrew": len(withdrawn), "records_purged": purged_records})
    return trainer


def _absent(reg: ConsentRegistry, pseudonym: str) -> bool:
    """The registry holds nothing under ``pseudonym`` (its spending can't be looked up)."""
    try:
        reg.spent(pseudonym)
    except ConsentError:
        return True
    return False


def _privacy(
    cfg: ScenarioConfig,
    reg: ConsentRegistry,
    trainer: FedAvgTrainer,
    report: ScenarioReport,
) -> None:
    acct = trainer.accountant
    if acct is None:  # the scenario always trains with DP
        raise ParameterError("the scenario's privacy report needs a DP run")
    contributors = {p for c in trainer.contributors.values() for p in c if p in trainer.devices}
    eps = {p: acct.epsilon(p) for p in contributors}
    spent = {p: reg.spent(p) for p in contributors}
    report.checks["ledger equals the accountant"] = all(
        abs(spent[p][0] - eps[p]) <= 1e-9 * max(1.0, eps[p]) and spent[p][1] <= cfg.delta
        for p in contributors
    )
    # Budgets as the registry holds them (not as the scenario meant to set them).
    budgets = {p: reg.budget_of(p) for p in contributors}
    report.checks["no user over budget"] = all(
        spent[p][0] <= budgets[p].epsilon and spent[p][1] <= budgets[p].delta
        for p in contributors
    )
    # Users who could not pay one more round like the last one: their training is over.
    exhausted = len(trainer.exhausted(contributors))
    values = sorted(eps.values())
    report.privacy.update(
        {
            "mechanism": "user-level distributed discrete Gaussian over secure aggregation",
            "delta": cfg.delta,
            "epsilon_max": values[-1] if values else 0.0,
            "epsilon_median": float(np.median(values)) if values else 0.0,
            "epsilon_max_per_round": [r["epsilon_max"] for r in report.rounds],
            "left_out_for_budget": sum(r["left_out_for_budget"] for r in report.rounds),
            "budget_exhausted_users": exhausted,
            "noise_multiplier": cfg.noise_multiplier,
            "l2_clip": cfg.l2_clip,
        }
    )


def _cost(report: ScenarioReport) -> None:
    ok = [r for r in report.rounds if r["status"] == "ok"]
    report.cost.update(
        {
            "bytes_sent_per_client_per_round": float(
                np.mean([r["bytes_sent_per_client"] for r in ok])
            ) if ok else 0.0,
            "bytes_received_per_client_per_round": float(
                np.mean([r["bytes_received_per_client"] for r in ok])
            ) if ok else 0.0,
            "seconds_per_round": float(np.mean([r["seconds"] for r in ok])) if ok else 0.0,
            "protocol": ok[-1]["protocol"] if ok else "",
            "threshold": ok[-1]["details"].get("threshold") if ok else None,
            "degree": ok[-1]["details"].get("degree") if ok else None,
            # The ring of secure aggregation is the DP encoding's Z_2^b: b bits per value,
            # no extra bits (the field stays for readers of older reports).
            "modulus_bits": ok[-1]["details"].get("modulus_bits") if ok else None,
            "dp_modulus_bits": ok[-1]["details"].get("dp_modulus_bits") if ok else None,
            "extra_bits_per_value": ok[-1]["details"].get("extra_bits_per_value") if ok else None,
        }
    )


def _reference(
    cfg: ScenarioConfig,
    key: PseudonymKey,
    pop: _Population,
    rng: np.random.Generator,
    report: ScenarioReport,
) -> NDArray[np.float64]:
    """A model trained without DP, for the privacy indicator only (never deployed).

    It runs in a throwaway registry so that it neither charges nor records anything in the
    users' ledger; it is the counterfactual "what if there were no DP".
    """
    live = {p: d for p, d in pop.devices.items() if p in pop.trainers and not d.erased}
    with ConsentRegistry.open(":memory:", key) as scratch:
        for p in live:
            scratch.opt_in(pop.ids[p], Purpose.TRAINING)
        fed = FedAvgConfig(
            rounds=cfg.rounds,
            local=LocalTraining(epochs=cfg.local_epochs, learning_rate=cfg.learning_rate),
            clients_per_round=cfg.clients_per_round,
            aggregator="plain",
            clip=cfg.l2_clip,
        )
        ref = FedAvgTrainer(scratch, live, fed, rng=rng)
        for _ in range(cfg.rounds):
            ref.run_round()
            report.reference_accuracy_per_round.append(_mean_accuracy(live, ref.params))
        return ref.params


def run_scenario(
    cfg: ScenarioConfig | None = None,
    *,
    workdir: str | Path | None = None,
    step: Step | None = None,
) -> ScenarioReport:
    """Run the scenario; ``step(what)`` is called after each stage (for a progress bar).

    The registry and its key file live in ``workdir`` (a temporary directory, deleted
    afterwards, when omitted).
    """
    cfg = cfg or ScenarioConfig()
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="securecomp-demo-") as tmp:
            return run_scenario(cfg, workdir=tmp, step=step)
    notify: Step = step or (lambda what: None)
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    report = ScenarioReport(cfg)
    root = Path(workdir)
    (root / "keys").mkdir(parents=True, exist_ok=True)
    key = PseudonymKey.generate()
    key.save(root / "keys" / "consent.key")  # apart from the database
    budget = PrivacyBudget(cfg.budget_epsilon, cfg.delta)
    with ConsentRegistry.open(root / "consent.db", key, create=True, default_budget=budget) as reg:
        pop = _enrol(cfg, reg, rng, report)
        notify(f"{cfg.users} users enrolled")
        trainer = _train(cfg, reg, pop, rng, report, notify)
        _privacy(cfg, reg, trainer, report)
        _cost(report)
        strict = sorted(p for p in pop.strict if p in trainer.devices)
        if strict:
            # A user's own view (GDPR Art. 15): purposes, rounds, budget spent, notices.
            report.consent["example_user_report"] = reg.report(pop.ids[strict[0]]).render()
        report.checks["audit log intact"] = bool(reg.verify_audit())
    params = trainer.params
    live = [d for d in pop.devices.values() if not d.erased]
    spec = LocalTraining(epochs=cfg.personal_epochs, learning_rate=cfg.learning_rate)
    pers = personalization_report(live, params, spec, cfg.ditto_lambda)
    report.personalization = pers.to_dict()
    report.checks["personalized beats global on average"] = (
        pers.mean_personalized > pers.mean_global
    )
    notify("personalized on every device")
    user = live[0]
    x_test, _ = user.test_data()
    inf = encrypted_inference(x_test, params)
    report.inference = {
        "rows": inf.rows,
        "features": inf.features,
        "max_error": inf.max_error,
        "upload_bytes": inf.upload_bytes,
        "download_bytes": inf.download_bytes,
        "server_holds_secret_key": bool(inf.report.metrics["server_holds_secret_key"]),
        "seconds": inf.report.total_seconds,
        "ckks": "N = 8192, [60, 40, 40, 60], scale 2^40 (128-bit)",
    }
    report.checks["encrypted scores match plaintext"] = inf.max_error <= 1e-4
    report.checks["server holds no secret key"] = not report.inference["server_holds_secret_key"]
    notify("encrypted inference for one user")
    reference = _reference(cfg, key, pop, rng, report)
    notify("reference model without DP")
    eps = float(report.privacy["epsilon_max"])
    dp_losses = device_losses(live, params)
    ref_losses = device_losses(live, reference)
    with_dp = membership_report(*dp_losses, epsilon=eps, delta=cfg.delta, rng=rng)
    without = membership_report(*ref_losses, epsilon=math.inf, delta=0.0, rng=rng)
    report.membership = {"with_dp": with_dp.to_dict(), "without_dp": without.to_dict()}
    report.checks["membership advantage within the DP bound"] = with_dp.within_bound
    notify("membership-inference indicator")
    report.seconds = time.perf_counter() - start
    return report


def scenario_steps(cfg: ScenarioConfig) -> int:
    """Number of `run_scenario` progress steps (for sizing a progress bar)."""
    return cfg.rounds + _EXTRA_STEPS - 1


