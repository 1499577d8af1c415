"""Harness of the ``shares`` (MPC) backend for the shared SecureTensor tests.

The shared tests protect and open values from one thread, which an SPMD backend cannot do
by itself: each harness drives a `LockstepSimulation` (n parties and a dealer in threads,
a labelled simulation) whose bundles run every operation on all parties' shares.

`mpc_harnesses` lists the configurations the shared tests run on: 2 and 3 parties with the
dealer's one-round truncation, and 2 parties with SecureML local truncation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from harness import Harness

from securecomp.mpc.backend import LAYOUT
from securecomp.mpc.simulation import LockstepSimulation

#: Public input bound used by the harness: small enough for the depth-3 polynomial test,
#: large enough for the values the shared tests draw (|x| <= 8); larger test values
#: (e.g. 123.456 in the no-reveal test) get a larger bound.
SMALL_BOUND = 16.0
LARGE_BOUND = 1024.0

#: Fixed-point error allowance: encoding (2^-17 per input), one ulp per truncation, and
#: their growth through a cubic polynomial of |x| <= 8 (about 4e-3 at worst).
ATOL = 1e-2


def _bound(a: np.ndarray) -> float:
    big = a.size and float(np.max(np.abs(a))) > SMALL_BOUND
    return LARGE_BOUND if big else SMALL_BOUND


def mpc_harness(parties: int = 2, truncation: str = "dealer") -> Harness:
    """A harness over a fresh lock-step simulation of ``parties`` parties."""
    sim = LockstepSimulation(parties, truncation=truncation)
    other = LockstepSimulation(parties, truncation=truncation)

    def close() -> None:
        sim.close()
        other.close()

    return Harness(
        name="shares",
        protect=lambda a: sim.share(np.asarray(a, dtype=np.float64), bound=_bound(np.asarray(a))),
        open=sim.reveal,
        protect_other_key=lambda a: other.share(
            np.asarray(a, dtype=np.float64), bound=_bound(np.asarray(a))
        ),
        atol=ATOL,
        ops=sim.backend.capabilities(LAYOUT),
        close=close,
    )


def mpc_harnesses() -> dict[str, Callable[[], Harness]]:
    """Fixture id -> factory of each MPC configuration the shared tests cover."""
    return {
        "shares-2p-dealer": partial(mpc_harness, 2, "dealer"),
        "shares-3p-dealer": partial(mpc_harness, 3, "dealer"),
        "shares-2p-local": partial(mpc_harness, 2, "local"),
    }
