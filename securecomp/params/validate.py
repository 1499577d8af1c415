"""Checks a CKKS parameter set against security, SEAL's constraints and TenSEAL's drift.

Each failure raises with the rule broken and the fix:

1. N is a power of two in the HomomorphicEncryption.org table (1024..32768); below it
   there is no secure row (``InsecureParameterError`` outside the opt-in).
2. Every prime has 2..60 bits and SEAL can find enough primes = 1 (mod 2N) of each size.
3. Total log2 q (special prime included) is within the table row for the requested
   security level (``InsecureParameterError`` outside the opt-in).
4. The first prime exceeds the scale (q_0 holds the decrypted value: q_0 / 2^s bounds its
   magnitude).
5. Every middle prime has exactly ``scale_bits`` bits: TenSEAL resets the scale to 2^s
   after each rescale, so a b-bit prime multiplies results by about 2^(s-b).
6. The planned depth fits the chain, and the cumulative scale drift over it (see
   :mod:`securecomp.params.drift`) is within ``drift_tolerance``.
"""

from __future__ import annotations

import math

from securecomp.errors import ParameterError
from securecomp.params.ckks import CKKSParameters
from securecomp.params.drift import scale_drift
from securecomp.params.insecure import require_secure
from securecomp.params.primes import SEAL_POLY_MOD_DEGREE_MAX
from securecomp.params.table import HE_STANDARD_POLY_DEGREES, SECURITY_LEVELS, max_log_q

__all__ = ["DEFAULT_DRIFT_TOLERANCE", "validate_ckks"]

#: Largest cumulative relative scale drift accepted by default (5%).
DEFAULT_DRIFT_TOLERANCE = 0.05


def _check_degree(n: int) -> None:
    smallest, largest = HE_STANDARD_POLY_DEGREES[0], HE_STANDARD_POLY_DEGREES[-1]
    if n > largest or n > SEAL_POLY_MOD_DEGREE_MAX:
        raise ParameterError(
            f"poly_modulus_degree {n} is larger than SEAL/TenSEAL support ({largest}); "
            "use at most 32768, or lower the depth"
        )
    require_secure(
        n >= smallest,
        f"poly_modulus_degree {n} is below {smallest}, the smallest ring degree with a "
        "128-bit row in the HomomorphicEncryption.org table",
    )


def _check_scale(params: CKKSParameters) -> None:
    s = params.scale_bits
    sizes = params.coeff_mod_bit_sizes
    if sizes[0] <= s:
        raise ParameterError(
            f"the first prime has {sizes[0]} bits but the scale is 2^{s}: q_0 must exceed "
            "the scale by the bits of the largest decrypted magnitude (plus a sign bit); "
            f"use a first prime of at least {s + 1} bits, e.g. {min(s + 20, 60)}"
        )
    for i, b in enumerate(sizes[1:-1], start=1):
        if b != s:
            direction = "larger" if b > s else "smaller"
            raise ParameterError(
                f"middle prime #{i} has {b} bits, {direction} than the scale 2^{s}: TenSEAL "
                f"resets the scale after each rescale, so rescaling by it multiplies results by "
                f"about 2^{s - b}; give every middle prime {s} bits (or set scale_bits={b})"
            )


def validate_ckks(
    params: CKKSParameters,
    *,
    depth: int | None = None,
    drift_tolerance: float = DEFAULT_DRIFT_TOLERANCE,
    security_bits: int = 128,
) -> CKKSParameters:
    """Check that a CKKS parameter set is secure, buildable, and does not drift.

    Parameters
    ----------
    params : CKKSParameters
        The parameter set to check.
    depth : int, optional
        Planned number of rescales (default: the whole chain, ``params.depth``).
    drift_tolerance : float
        Largest accepted cumulative relative scale drift over ``depth`` rescales.
    security_bits : int
        Table row to check against: 128, 192 or 256.

    Returns
    -------
    CKKSParameters
        ``params`` itself, so the call can wrap a constructor.

    Raises
    ------
    InsecureParameterError
        If N or total log q is below the requested security level, outside
        ``insecure_test_parameters()``.
    ParameterError
        For any other broken rule (see the module docstring); the message names the fix.
    """
    if security_bits not in SECURITY_LEVELS:
        raise ParameterError(
            f"security_bits must be one of {list(SECURITY_LEVELS)}, got {security_bits!r}"
        )
    if (
        isinstance(drift_tolerance, bool)
        or not isinstance(drift_tolerance, int | float)
        or not math.isfinite(drift_tolerance)
        or drift_tolerance < 0
    ):
        raise ParameterError(
            f"drift_tolerance must be a finite non-negative number, got {drift_tolerance!r}"
        )
    n = params.poly_modulus_degree
    _check_degree(n)
    primes = params.primes  # raises ParameterError if SEAL cannot build the chain
    if len(set(primes)) != len(primes):  # cannot happen with SEAL's selection; cheap to check
        raise ParameterError(f"the chain's primes are not distinct: {primes}")
    if n in HE_STANDARD_POLY_DEGREES:
        bound = max_log_q(n, security_bits)
        require_secure(
            params.total_log_q <= bound,
            f"total log2 q = {params.total_log_q} bits exceeds {bound}, the "
            f"HomomorphicEncryption.org maximum for N = {n} at {security_bits}-bit security "
            f"(TenSEAL refuses it too); shorten the chain or use a larger N",
        )
    _check_scale(params)
    planned = params.depth if depth is None else depth
    if isinstance(planned, bool) or not isinstance(planned, int) or planned < 0:
        raise ParameterError(f"depth must be a non-negative int, got {depth!r}")
    if planned > params.depth:
        raise ParameterError(
            f"depth {planned} needs {planned} rescales but the chain "
            f"{list(params.coeff_mod_bit_sizes)} allows {params.depth}; add "
            f"{planned - params.depth} middle prime(s) of {params.scale_bits} bits "
            "(and a larger N if the table requires it)"
        )
    report = scale_drift(params, planned)
    if report.cumulative_drift > drift_tolerance:
        worst = max(range(report.depth), key=lambda k: abs(report.level_factors[k] - 1.0))
        raise ParameterError(
            f"scale drift: after {planned} rescales TenSEAL's results are off by "
            f"{report.cumulative_drift:.2%} (tolerance {drift_tolerance:.2%}); rescale "
            f"#{worst + 1} alone multiplies by {report.level_factors[worst]:.6f} because its "
            f"prime {report.primes[worst]} is far from 2^{params.scale_bits}. Use larger primes "
            "and scale (e.g. 40 bits), fold securecomp.params.constant_correction() into "
            "plaintext constants, or raise drift_tolerance"
        )
    return params
