"""Actively secure MPC over Z_2^k: SPDZ2k with a trusted dealer (MAC mode).

Implements the online phase of SPDZ2k (Cramer, Damgård, Escudero, Scholl, Xing,
"SPDZ2k: Efficient MPC mod 2^k for Dishonest Majority", CRYPTO 2018, section 3) on top of
the SPMD engine of `securecomp.mpc`: authenticated additive shares in Z_2^(k+s) with a
global MAC key, Beaver products from authenticated triples, truncation and comparison
from authenticated dealer material (edaBits: Escudero, Ghosh, Keller, Rachuri, Scholl,
CRYPTO 2020), and a batched MAC check by random linear combination with coin-tossed
coefficients (commit-then-open) before any output.

Threat model
------------
Active security with abort against any number of malicious computing parties, **given
an honest dealer**: the dealer generates the MAC keys and all preprocessing (it knows
the keys and every mask) and does not collude with a computing party. Cheating parties
are caught with probability ``1 - 2^-(s - log2(s + 1))`` (about ``1 - 2^-58`` for the
default ``k = s = 64``); the protocol then raises `MACCheckError` and releases nothing.
Not protected: availability (any party can force an abort), and the dealer.

Entry points: `run_local_active` (all parties in one process, a labelled simulation),
`ActiveSession` (a party's view), `Spdz2kParameters`. The insecure ``k = s = 32`` mode
(MAC check soundness about 2^-27, only 32 authenticated bits, too few for f = 16 fixed
point) exists only inside ``securecomp.params.insecure_test_parameters()``.

Importing this package opens no socket and generates no key.
"""

from securecomp.mpc.spdz2k.authshare import AuthShare
from securecomp.mpc.spdz2k.backend import LAYOUT, ActiveSharesBackend
from securecomp.mpc.spdz2k.dealer import AuthDealer, AuthDealerClient
from securecomp.mpc.spdz2k.material import (
    AuthKind,
    AuthMaterial,
    AuthPreprocessing,
    AuthSpec,
    Field,
)
from securecomp.mpc.spdz2k.ring import (
    BINARY_PARAMETERS,
    DEFAULT_PARAMETERS,
    Ring,
    Spdz2kParameters,
)
from securecomp.mpc.spdz2k.runner import run_local_active
from securecomp.mpc.spdz2k.session import ActiveSession

__all__ = [
    "BINARY_PARAMETERS",
    "DEFAULT_PARAMETERS",
    "LAYOUT",
    "ActiveSession",
    "ActiveSharesBackend",
    "AuthDealer",
    "AuthDealerClient",
    "AuthKind",
    "AuthMaterial",
    "AuthPreprocessing",
    "AuthShare",
    "AuthSpec",
    "Field",
    "Ring",
    "Spdz2kParameters",
    "run_local_active",
]
