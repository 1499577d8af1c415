"""Vetted parameter sets and security checks (layer 0: no securecomp imports but errors).

* :mod:`~securecomp.params.table` — the HomomorphicEncryption.org RLWE table;
* :mod:`~securecomp.params.ckks` — :class:`CKKSParameters` and its fingerprint;
* :mod:`~securecomp.params.primes` — SEAL's prime selection, replicated;
* :mod:`~securecomp.params.drift` — TenSEAL's scale drift and its correction;
* :mod:`~securecomp.params.validate` — :func:`validate_ckks`;
* :mod:`~securecomp.params.noise` and :mod:`~securecomp.params.planner` — CKKS error
  model and parameter planner;
* :mod:`~securecomp.params.paillier` — Paillier key-size floor;
* :mod:`~securecomp.params.insecure` — the one opt-in for test-sized parameters;
* :mod:`~securecomp.params.statistical` — the 40-bit statistical security floor;
* :mod:`~securecomp.params.cli` — ``securecomp params check|plan``.
"""

from securecomp.params.ckks import DEFAULT_CKKS_PARAMETERS, CKKSParameters
from securecomp.params.cli import register_cli
from securecomp.params.drift import DriftReport, constant_correction, rescale_primes, scale_drift
from securecomp.params.insecure import (
    SMALL_TEST_PAILLIER_BITS,
    InsecureParametersWarning,
    insecure_allowed,
    insecure_test_parameters,
    require_secure,
)
from securecomp.params.noise import CKKSNoiseModel, ErrorBound, ErrorModel, heuristic_tail_sigmas
from securecomp.params.paillier import (
    DEFAULT_PAILLIER_BITS,
    MIN_PAILLIER_BITS,
    check_paillier_key_bits,
)
from securecomp.params.planner import plan_ckks, predicted_error
from securecomp.params.primes import seal_primes
from securecomp.params.security import (
    DEFAULT_SECURITY_BITS,
    STATISTICAL_SECURITY_BITS,
    SecurityLabel,
)
from securecomp.params.statistical import MAX_STATISTICAL_BITS, check_statistical_security
from securecomp.params.table import (
    ERROR_STD_DEV,
    HE_STANDARD_MAX_LOG_Q,
    HE_STANDARD_POLY_DEGREES,
    SECURITY_LEVELS,
    ckks_security_bits,
    max_log_q,
)
from securecomp.params.validate import DEFAULT_DRIFT_TOLERANCE, validate_ckks

__all__ = [
    "DEFAULT_CKKS_PARAMETERS",
    "DEFAULT_DRIFT_TOLERANCE",
    "DEFAULT_PAILLIER_BITS",
    "DEFAULT_SECURITY_BITS",
    "ERROR_STD_DEV",
    "HE_STANDARD_MAX_LOG_Q",
    "HE_STANDARD_POLY_DEGREES",
    "MAX_STATISTICAL_BITS",
    "MIN_PAILLIER_BITS",
    "SECURITY_LEVELS",
    "SMALL_TEST_PAILLIER_BITS",
    "STATISTICAL_SECURITY_BITS",
    "CKKSNoiseModel",
    "CKKSParameters",
    "DriftReport",
    "ErrorBound",
    "ErrorModel",
    "InsecureParametersWarning",
    "SecurityLabel",
    "check_paillier_key_bits",
    "check_statistical_security",
    "ckks_security_bits",
    "constant_correction",
    "heuristic_tail_sigmas",
    "insecure_allowed",
    "insecure_test_parameters",
    "max_log_q",
    "plan_ckks",
    "predicted_error",
    "register_cli",
    "require_secure",
    "rescale_primes",
    "scale_drift",
    "seal_primes",
    "validate_ckks",
]
