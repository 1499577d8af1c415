"""MPC-trained linear and logistic regression: ``backend="mpc"`` of `securecomp.models`.

SecureML (Mohassel and Zhang, IEEE S&P 2017, section 4) on the engine of `securecomp.mpc`:
computing parties holding horizontal slices of the data train jointly on additive shares
(Beaver matrix products, fixed-point truncation, SecureML's piecewise sigmoid), with
gradient descent or Nesterov's method as in `securecomp.models.gd`.

* `MPCProtocol`: the `securecomp.models.ModelProtocol` registered as ``"mpc"`` (entry
  point ``securecomp.models.protocols``), so the estimators of `securecomp.models` take
  ``backend="mpc"``; its docstring states the threat model and who learns what.
* `MPCOptions` / `parse_options`: the protocol options (parties, truncation, bounds...).
* `TrainPlan` / `make_plan`: the public schedule every party follows.
* `train_party`, `score_party`: the SPMD party programs (also runnable over TCP).
* `reference_fit`: the same algorithm in float64, for checking.
"""

from securecomp.mpc.models.options import MPCOptions, parse_options
from securecomp.mpc.models.plan import TrainPlan, make_plan, piecewise_sigmoid
from securecomp.mpc.models.program import (
    PartyModel,
    ScoreInput,
    TrainInput,
    score_party,
    train_party,
)
from securecomp.mpc.models.protocol import MPCModel, MPCProtocol
from securecomp.mpc.models.reference import ReferenceFit, reference_fit

__all__ = [
    "MPCModel",
    "MPCOptions",
    "MPCProtocol",
    "PartyModel",
    "ReferenceFit",
    "ScoreInput",
    "TrainInput",
    "TrainPlan",
    "make_plan",
    "parse_options",
    "piecewise_sigmoid",
    "reference_fit",
    "score_party",
    "train_party",
]
