"""``backend="ckks"``: linear and logistic regression on CKKS ciphertexts.

* :mod:`~securecomp.models.ckks.protocol`: `CKKSProtocol` (threat model in its docstring);
* roles: :mod:`~securecomp.models.ckks.keyholder` (`KeyHolder`), :mod:`~.server`
  (`Server`, public context only), :mod:`~.client` (`InferenceClient`); they exchange the
  bytes of :mod:`~.messages`; :mod:`~.session` shares a key once and runs the roles over
  `securecomp.net` channels;
* :mod:`~securecomp.models.ckks.plan`: parameters, depth, refreshes, sizes, time;
* :mod:`~securecomp.models.ckks.simulate`: ``simulate=True``;
* :mod:`~securecomp.models.ckks.bounds`: error bounds for releasing the model.
"""

from securecomp.models.ckks.client import InferenceClient
from securecomp.models.ckks.keyholder import KeyHolder, RefreshChecks
from securecomp.models.ckks.plan import TrainingPlan, chain_for, plan_inference, plan_training
from securecomp.models.ckks.protocol import (
    CKKSFitState,
    CKKSProtocol,
    Preparation,
    ReleasedModel,
)
from securecomp.models.ckks.server import Server
from securecomp.models.ckks.session import CKKSSession, run_key_holder, serve_training
from securecomp.models.ckks.simulate import SimulatedCKKSBackend, SimulationKey

__all__ = [
    "CKKSFitState",
    "CKKSProtocol",
    "CKKSSession",
    "InferenceClient",
    "KeyHolder",
    "Preparation",
    "RefreshChecks",
    "ReleasedModel",
    "Server",
    "SimulatedCKKSBackend",
    "SimulationKey",
    "TrainingPlan",
    "chain_for",
    "plan_inference",
    "plan_training",
    "run_key_holder",
    "serve_training",
]
