"""Federated learning with consent: the registry, data minimisation and test data.

* `ConsentRegistry` (SQLite): per-purpose opt-in and withdrawal, round selection,
  participation, per-user privacy-budget ledger, retention purges, audit log, user report
  and export (GDPR Art. 5, 6, 7, 15, 17, 20);
* `PseudonymKey`: HMAC-SHA256 pseudonyms under a key kept apart from the database;
* `FeatureSchema`: the features a client declares; anything else is refused;
* `synthetic_fedprox`, `federated_breast_cancer`: heterogeneous per-user data (Li et al.
  2020; Dirichlet label split).

Importing this package loads only the standard library and numpy; scikit-learn is imported
by `federated_breast_cancer` alone.
"""

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

__all__ = [
    "DEFAULT_BUDGET",
    "ClientData",
    "ConsentEvent",
    "ConsentRegistry",
    "Feature",
    "FeatureSchema",
    "FederatedData",
    "PrivacyBudget",
    "PseudonymKey",
    "PurgeReason",
    "PurgeReport",
    "PurgedUser",
    "Purpose",
    "RetentionPolicy",
    "UserReport",
    "dirichlet_split",
    "federated_breast_cancer",
    "synthetic_fedprox",
    "synthetic_iid",
]
