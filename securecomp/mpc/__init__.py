"""Additive secret-sharing MPC over Z_2^64 (SPMD), with a trusted dealer for preprocessing.

Semi-honest security with a non-colluding trusted dealer (a separate party, never one of
the computing parties). Entry points:

* `run_local` runs an SPMD ``program(session)`` for ``n`` parties in one process (a
  labelled simulation); `run_party` / `run_dealer` (CLI: ``securecomp party``,
  ``securecomp dealer``) run the same program as separate processes over TCP.
* `Session` is a party's view: ``session.share(...)`` returns a `SecureTensor` of the
  ``shares`` backend (add, sub, mul, matmul, dot, sum, indexing, reshape, comparisons,
  with a bound tracker), ``session.reveal(t, to=...)`` opens it.
* `LockstepSimulation` drives all parties from one thread (exploration, tests).
* `MPCProtocol` (``securecomp.mpc.models``): ``backend="mpc"`` of the estimators of
  `securecomp.models`, imported on first use (it builds on the models layer).

Importing this package opens no socket and generates no key.
"""

from typing import TYPE_CHECKING

from securecomp.mpc.backend import LAYOUT, SharesBackend, assume_bound, bound_of
from securecomp.mpc.dealer import Dealer, DealerClient
from securecomp.mpc.material import Bilinear, Kind, Material, Preprocessing, Spec
from securecomp.mpc.runner import PartyOutcome, RunResult, run_dealer, run_local, run_party
from securecomp.mpc.session import DEFAULT_FRAC_BITS, DEFAULT_INPUT_BOUND, Session, Truncation
from securecomp.mpc.simulation import LockstepSimulation

if TYPE_CHECKING:
    from securecomp.mpc.models import MPCProtocol

__all__ = [
    "DEFAULT_FRAC_BITS",
    "DEFAULT_INPUT_BOUND",
    "LAYOUT",
    "Bilinear",
    "Dealer",
    "DealerClient",
    "Kind",
    "LockstepSimulation",
    "MPCProtocol",
    "Material",
    "PartyOutcome",
    "Preprocessing",
    "RunResult",
    "Session",
    "SharesBackend",
    "Spec",
    "Truncation",
    "assume_bound",
    "bound_of",
    "run_dealer",
    "run_local",
    "run_party",
]


def __getattr__(name: str) -> object:
    # Lazy (PEP 562): the model protocol imports the models layer above this package.
    if name == "MPCProtocol":
        from securecomp.mpc.models import MPCProtocol

        return MPCProtocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
