"""Federated learning with consent: the registry, data minimisation and test data.

* `ConsentRegistry` (SQLite): per-purpose opt-in and withdrawal, round selection,
  participation, per-user privacy-budget ledger, retention purges, audit log, user report
  and export (GDPR Art. 5, 6, 7, 15, 17, 20);
* `PseudonymKey`: HMAC-SHA256 pseudonyms under a key kept apart from the database;
* `FeatureSchema`: the features a client declares; anything else is refused;
* `synthetic_fedprox`, `federated_breast_cancer`: heterogeneous per-user data (Li et al.
  2020; Dirichlet label split).

Training, personalization and privacy evaluation (imported on first use, PEP 562, since
they load the secure-aggregation, DP and HE packages):

* `FedAvgTrainer`, `FedAvgConfig`, `DpSettings`: consent-aware FedAvg over SecAgg+ with
  optional user-level distributed DP (`securecomp.federated.fedavg`);
* `Device`: a user's device (data behind the schema, local update, personal model);
* `personalization_report`, `ditto_personal_model`: Ditto personalization on the device;
* `encrypted_inference`, `InferenceClient`, `InferenceServer`: CKKS-encrypted scoring;
* `membership_report`, `advantage_bound`: membership-inference risk and its DP bound;
* `ScenarioConfig`, `run_scenario`: the end-to-end scenario of ``securecomp demo``.

Importing this package loads only the standard library and numpy; scikit-learn is imported
by `federated_breast_cancer` alone.
"""

from typing import TYPE_CHECKING

from securecomp.federated.budget import PrivacyBudget
from securecomp.federated.consent import DEFAULT_BUDGET, ConsentRegistry
from securecomp.federated.data import (
    ClientData,
    FederatedData,
    dirichlet_split,
    federated_breast_cancer,
    synthetic_fedprox,
    synthetic_iid,
)
from securecomp.federated.pseudonym import PseudonymKey
from securecomp.federated.purpose import Purpose
from securecomp.federated.report import ConsentEvent, UserReport
from securecomp.federated.retention import PurgedUser, PurgeReason, PurgeReport, RetentionPolicy
from securecomp.federated.schema import Feature, FeatureSchema

if TYPE_CHECKING:
    from securecomp.federated.aggregation import PlainAggregator, SecAggAggregator
    from securecomp.federated.device import Device
    from securecomp.federated.dp_aggregation import DpSecAggAggregator, DpSettings
    from securecomp.federated.fedavg import FedAvgConfig, FedAvgResult, FedAvgTrainer, RoundRecord
    from securecomp.federated.inference import (
        InferenceClient,
        InferenceServer,
        encrypted_inference,
    )
    from securecomp.federated.local import LocalTraining
    from securecomp.federated.membership import (
        MembershipReport,
        advantage_bound,
        calibrated_attack,
        membership_report,
        yeom_attack,
    )
    from securecomp.federated.personalize import (
        PersonalizationReport,
        ditto_personal_model,
        personalization_report,
    )
    from securecomp.federated.privacy import UserLevelAccountant
    from securecomp.federated.scenario import ScenarioConfig, ScenarioReport, run_scenario

#: Lazily imported names and the module holding each.
_LAZY = {
    "PlainAggregator": "aggregation",
    "SecAggAggregator": "aggregation",
    "Device": "device",
    "DpSecAggAggregator": "dp_aggregation",
    "DpSettings": "dp_aggregation",
    "FedAvgConfig": "fedavg",
    "FedAvgResult": "fedavg",
    "FedAvgTrainer": "fedavg",
    "RoundRecord": "fedavg",
    "InferenceClient": "inference",
    "InferenceServer": "inference",
    "encrypted_inference": "inference",
    "LocalTraining": "local",
    "MembershipReport": "membership",
    "advantage_bound": "membership",
    "calibrated_attack": "membership",
    "membership_report": "membership",
    "yeom_attack": "membership",
    "PersonalizationReport": "personalize",
    "ditto_personal_model": "personalize",
    "personalization_report": "personalize",
    "UserLevelAccountant": "privacy",
    "ScenarioConfig": "scenario",
    "ScenarioReport": "scenario",
    "run_scenario": "scenario",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"securecomp.federated.{module}"), name)


__all__ = [
    "DEFAULT_BUDGET",
    "ClientData",
    "ConsentEvent",
    "ConsentRegistry",
    "Device",
    "DpSecAggAggregator",
    "DpSettings",
    "Feature",
    "FeatureSchema",
    "FedAvgConfig",
    "FedAvgResult",
    "FedAvgTrainer",
    "FederatedData",
    "InferenceClient",
    "InferenceServer",
    "LocalTraining",
    "MembershipReport",
    "PersonalizationReport",
    "PlainAggregator",
    "PrivacyBudget",
    "PseudonymKey",
    "PurgeReason",
    "PurgeReport",
    "PurgedUser",
    "Purpose",
    "RetentionPolicy",
    "RoundRecord",
    "ScenarioConfig",
    "ScenarioReport",
    "SecAggAggregator",
    "UserLevelAccountant",
    "UserReport",
    "advantage_bound",
    "calibrated_attack",
    "dirichlet_split",
    "ditto_personal_model",
    "encrypted_inference",
    "federated_breast_cancer",
    "membership_report",
    "personalization_report",
    "run_scenario",
    "synthetic_fedprox",
    "synthetic_iid",
    "yeom_attack",
]
