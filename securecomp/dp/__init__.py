"""Distributed differential privacy for secure aggregation.

Clients privatize their own updates before secure aggregation so that the server learns only
a noisy sum: the distributed discrete Gaussian (Kairouz, Liu and Steinke, ICML 2021) and the
Skellam mechanism (Agarwal, Kairouz and Liu, NeurIPS 2021), with noise drawn from AES-CTR
keystreams and privacy accounted through zCDP from the papers' own bounds.

* :mod:`~securecomp.dp.config`: `DistributedDpConfig` (noise split, modulus and wrap-around
  bound, privacy event, error bound);
* :mod:`~securecomp.dp.mechanism`: `encode_update` (client) and `decode_sum` (server);
* :mod:`~securecomp.dp.rotation`, :mod:`~securecomp.dp.clipping`,
  :mod:`~securecomp.dp.rounding`: the quantization steps;
* :mod:`~securecomp.dp.ddgauss`, :mod:`~securecomp.dp.skellam`, :mod:`~securecomp.crypto.cdt`:
  samplers and per-mechanism privacy bounds;
* :mod:`~securecomp.dp.accounting`: composition and conversion to ``(epsilon, delta)``;
* :mod:`~securecomp.dp.tails`: the tail bounds behind the modulus and error bounds.

Importing this package builds no sampling table and draws no randomness.
"""

from securecomp.crypto.cdt import CdtSampler
from securecomp.dp.accounting import (
    ApproxZcdp,
    PrivacyAccountant,
    PrivacyEvent,
    PrivacySpent,
    RdpBound,
    bun_steinke_epsilon,
    rdp_to_epsilon,
)
from securecomp.dp.clipping import clip_l2
from securecomp.dp.config import (
    DEFAULT_BETA,
    WRAP_BITS,
    DistributedDpConfig,
    Mechanism,
    Neighbouring,
)
from securecomp.dp.ddgauss import (
    DiscreteGaussianSampler,
    ddgauss_rdp_bound,
    ddgauss_tau,
)
from securecomp.dp.mechanism import (
    EncodedUpdate,
    decode_sum,
    encode_update,
    lift_centered,
    reduce_modulo,
)
from securecomp.dp.rotation import RandomizedHadamard, fwht, padded_dim
from securecomp.dp.rounding import conditional_round, max_attempts, rounded_norm_bound
from securecomp.dp.skellam import PoissonSampler, SkellamSampler, skellam_rdp_bound

__all__ = [
    "DEFAULT_BETA",
    "WRAP_BITS",
    "ApproxZcdp",
    "CdtSampler",
    "DiscreteGaussianSampler",
    "DistributedDpConfig",
    "EncodedUpdate",
    "Mechanism",
    "Neighbouring",
    "PoissonSampler",
    "PrivacyAccountant",
    "PrivacyEvent",
    "PrivacySpent",
    "RandomizedHadamard",
    "RdpBound",
    "SkellamSampler",
    "bun_steinke_epsilon",
    "clip_l2",
    "conditional_round",
    "ddgauss_rdp_bound",
    "ddgauss_tau",
    "decode_sum",
    "encode_update",
    "fwht",
    "lift_centered",
    "max_attempts",
    "padded_dim",
    "rdp_to_epsilon",
    "reduce_modulo",
    "rounded_norm_bound",
    "skellam_rdp_bound",
]
