"""Parameters of HE <-> MPC conversions: mask widths, flooding, modulus budget, precision.

Every conversion hides a value ``|y| <= B`` under a mask drawn over the integers (or over
a float grid for CKKS) with ``sigma`` bits of statistical slack: the distribution seen by
the party that decrypts differs between any two admissible values by at most
``2^-sigma`` in statistical distance (sigma = 40 by default,
`securecomp.params.STATISTICAL_SECURITY_BITS`). This module computes, for each direction,
the widths, the flooding noise and what they cost:

* **Masks.** Integers: ``r`` uniform in ``[0, 2^(beta + 1 + sigma))`` for ``|X| < 2^beta``
  (`integer_mask_bits`). CKKS: ``M`` uniform on ``2^(sigma + b - 52) Z`` within
  ``[-2^(sigma + b), 2^(sigma + b)]`` for ``|y| + noise <= 2^b`` (`ckks_mask_exponent`):
  the finest grid float64 can hold at that magnitude.
* **CKKS flooding** (`ckks_flooding`). The decrypted CKKS error carries the evaluator's
  private operands (``e_x W`` for a client's encryption error ``e_x``). Before the key
  holder decrypts, the evaluator adds discrete Gaussian noise to the real *and imaginary*
  parts of every slot (all ``N`` real dimensions of the plaintext the key holder can
  compute), sized as in `securecomp.he.ckks.release` (Li, Micciancio, Schultz, Sorrell,
  CRYPTO 2022): ``sigma_n = t sqrt(q N C / 2) 2^(sigma / 2)`` for an error bound ``t``,
  ``C`` ciphertexts per conversion and ``q`` conversions under the key, i.e. KL
  divergence at most ``2^-sigma`` in total.
* **CKKS modulus budget** (`ckks_budget_bits`, `plan_ckks_conversion`). The masked value
  needs ``scale + sigma + b + 3`` bits of modulus at the ciphertext's level (value, sign,
  gain and rounding margin) where a plain decryption needs ``scale + log2 B + 2``: a
  ciphertext that ends its computation at the last prime alone (``q_0 <= 60`` bits) has no
  room for a 40-bit mask at any useful scale. `plan_ckks_conversion` therefore keeps
  ``e`` extra scale-size primes in the chain, unused by the computation, so that the
  converted ciphertext still holds ``q_0 ... q_e``.
* **Precision.** CKKS decodes in float64, so a masked value of magnitude ``2^(sigma + b)``
  comes back with an absolute error of about ``2^(sigma + b - 52)`` (measured below
  ``2^(sigma + b - 49)`` including the encoder's FFT); add the CKKS error ``t``, the
  flooding tail ``z sigma_n`` (``z = sqrt(2 ln 2 (sigma + 1))``) and one ulp ``2^-f`` of
  fixed-point rounding. Integer (Paillier) conversions are exact up to that ulp.
* **Z_2^64 room for shares -> HE.** The bounded re-sharing opens ``X + r`` inside Z_2^64,
  so ``beta + 1 + sigma <= 62`` with ``beta = bits(B 2^f)``: ``B <= 2^(21 - f)`` at the
  defaults (32 for f = 16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from securecomp.errors import EncodingOverflowError, ParameterError
from securecomp.he.ckks.gaussian import MAX_SIGMA
from securecomp.he.ckks.release import flooding_std
from securecomp.params import (
    HE_STANDARD_POLY_DEGREES,
    STATISTICAL_SECURITY_BITS,
    CKKSParameters,
    max_log_q,
    validate_ckks,
)

__all__ = [
    "FLOAT_SLACK_BITS",
    "MARGIN_BITS",
    "RESHARE_LIMIT_BITS",
    "CKKSFlooding",
    "check_sigma",
    "ckks_budget_bits",
    "ckks_flooding",
    "ckks_mask_exponent",
    "integer_mask_bits",
    "plan_ckks_conversion",
    "reshare_bits",
    "reshare_precision",
    "tail_sigmas",
]

#: Bits of modulus kept above the masked value: sign, the gain correction and rounding.
MARGIN_BITS = 3
#: The float64 decoding error bound, in bits above ``2^(sigma + b - 52)``.
FLOAT_SLACK_BITS = 3
#: Largest ``bits(|X + r|)`` the bounded re-sharing may open inside Z_2^64.
RESHARE_LIMIT_BITS = 62


def check_sigma(sigma: int) -> int:
    """Validate the statistical hiding parameter (an int in [20, 128]; default 40)."""
    if isinstance(sigma, bool) or not isinstance(sigma, int) or not 20 <= sigma <= 128:
        raise ParameterError(
            f"sigma={sigma!r}: statistical hiding needs an int in [20, 128] bits "
            f"({STATISTICAL_SECURITY_BITS} is the library default)"
        )
    return sigma


def tail_sigmas(sigma: int) -> float:
    """``z`` with ``P(|N(0, 1)| > z) <= 2^-sigma`` (``2 exp(-z^2 / 2) = 2^-sigma``)."""
    return math.sqrt(2.0 * math.log(2.0) * (check_sigma(sigma) + 1))


def integer_mask_bits(beta: int, sigma: int = STATISTICAL_SECURITY_BITS) -> int:
    """Bits of the integer mask for values ``|X| < 2^beta``: ``beta + 1 + sigma``.

    ``X + r`` for ``r`` uniform in ``[0, 2^(beta + 1 + sigma))`` is within statistical
    distance ``|X - X'| / 2^(beta + 1 + sigma) < 2^-sigma`` of ``X' + r``.
    """
    if isinstance(beta, bool) or not isinstance(beta, int) or beta < 0:
        raise ParameterError(f"beta must be a non-negative int, got {beta!r}")
    return beta + 1 + check_sigma(sigma)


def reshare_bits(bound: float, frac_bits: int, sigma: int = STATISTICAL_SECURITY_BITS) -> int:
    """``beta = bits(ceil(B 2^f))`` for the bounded re-sharing, checked against Z_2^64.

    Raises
    ------
    EncodingOverflowError
        If ``beta + 1 + sigma > 62``: the masked value could wrap in Z_2^64.
    """
    b = float(bound)
    if not b > 0 or not math.isfinite(b):
        raise ParameterError(f"bound must be a positive finite number, got {bound!r}")
    beta = math.ceil(math.ldexp(b, frac_bits)).bit_length()
    if beta + 1 + check_sigma(sigma) > RESHARE_LIMIT_BITS:
        limit = math.ldexp(1.0, RESHARE_LIMIT_BITS - 2 - sigma - frac_bits)
        raise EncodingOverflowError(
            f"re-sharing |x| <= {b:g} at {frac_bits} fractional bits with a {sigma}-bit mask "
            f"needs {beta + 1 + sigma} bits, more than the {RESHARE_LIMIT_BITS} Z_2^64 can "
            f"open without wrapping; declare a bound below {limit:g}, or use fewer "
            "fractional bits"
        )
    return beta


def reshare_precision(beta: int, frac_bits: int, sigma: int = STATISTICAL_SECURITY_BITS) -> float:
    """Precision of shares -> CKKS: the masked ``(X + r) 2^-f`` has ``beta + sigma`` bits.

    About ``2^(beta + sigma - f - 52)`` from float64 (the conversion of ``X + r`` and
    SEAL's encoder), with `FLOAT_SLACK_BITS` of margin, plus one ulp ``2^-f``.
    """
    s = check_sigma(sigma)
    return math.ldexp(1.0, beta + s - frac_bits - 52 + FLOAT_SLACK_BITS) + math.ldexp(
        1.0, -frac_bits
    )


def ckks_mask_exponent(b: int, sigma: int = STATISTICAL_SECURITY_BITS) -> int:
    """Grid exponent ``e = sigma + b - 52`` of the CKKS mask ``M = k 2^e``, ``|k| <= 2^52``."""
    return check_sigma(sigma) + int(b) - 52


def ckks_budget_bits(params: CKKSParameters, level: int) -> float:
    """``log2`` of the data modulus a ciphertext at ``level`` still holds (``q_0 ... q_{L-l}``).

    Raises
    ------
    ParameterError
        If ``level`` is outside ``[0, depth]``.
    """
    if not 0 <= level <= params.depth:
        raise ParameterError(f"level {level} outside [0, {params.depth}]")
    data = params.primes[:-1]  # the special prime only serves key switching
    return sum(math.log2(q) for q in data[: params.depth + 1 - level])


@dataclass(frozen=True)
class CKKSFlooding:
    """What a CKKS -> shares conversion adds and costs, per value.

    Attributes
    ----------
    noise_std : float
        ``sigma_n``, standard deviation of the flooding noise per real dimension (value
        units).
    noise_units : float
        The same in integer units of ``2^-scale_bits`` (the discrete Gaussian's target).
    mask_bits : int
        ``b``: ``|y| + noise`` is below ``2^b``; the mask spans ``[-2^(sigma+b), 2^(sigma+b)]``.
    needed_bits, budget_bits : float
        Modulus bits the masked value needs at the ciphertext's level, and what it has.
    precision : float
        Bound on ``|share sum - y|`` (except with probability ``2^-sigma``).
    """

    noise_std: float
    noise_units: float
    mask_bits: int
    needed_bits: float
    budget_bits: float
    precision: float


def ckks_flooding(
    params: CKKSParameters,
    level: int,
    *,
    bound: float,
    error_bound: float,
    n_ciphertexts: int,
    n_conversions: int,
    frac_bits: int,
    sigma: int = STATISTICAL_SECURITY_BITS,
) -> CKKSFlooding:
    """Size the flooding and the mask of a CKKS -> shares conversion, and check the budget.

    Parameters
    ----------
    params : CKKSParameters
    level : int
        Rescales the converted ciphertexts went through.
    bound : float
        Public bound ``B`` on ``|y|`` (the values, before noise).
    error_bound : float
        Bound ``t`` on the decryption error of each slot (canonical embedding), from the
        evaluator's plan of its computation (e.g. `securecomp.params.CKKSNoiseModel`).
    n_ciphertexts : int
        Ciphertexts converted at once (``C``).
    n_conversions : int
        Conversions planned under this key in total (``q``).
    frac_bits : int
        Fractional bits of the MPC fixed-point encoding.
    sigma : int

    Raises
    ------
    ParameterError
        If the masked value does not fit the modulus left at ``level`` (the message gives
        the bits needed), or the flooding noise exceeds the sampler's range.
    """
    s = check_sigma(sigma)
    t, b_val = float(error_bound), float(bound)
    for name, v in (("error_bound", t), ("bound", b_val)):
        if not v > 0 or not math.isfinite(v):
            raise ParameterError(f"{name} must be a positive finite number, got {v!r}")
    unit = math.ldexp(1.0, params.scale_bits)
    dims = params.poly_modulus_degree * int(n_ciphertexts)
    # In units of 2^-scale the worlds differ by t 2^scale plus the encoder's rounding.
    units = flooding_std(t * unit + 1.0, s=s, n_releases=n_conversions, n_values=dims)
    if units > MAX_SIGMA:
        raise ParameterError(
            f"the flooding noise would be {units / unit:.3g}, beyond the sampler's range: "
            "the error bound is too large for this scale; plan a larger scale"
        )
    noise = units / unit
    tail = tail_sigmas(s) * noise
    mask_bits = max(0, math.ceil(math.log2(b_val + tail + t)))
    needed = params.scale_bits + s + mask_bits + MARGIN_BITS
    budget = ckks_budget_bits(params, level)
    if needed > budget:
        raise ParameterError(
            f"a {s}-bit mask over |y| <= 2^{mask_bits} at scale 2^{params.scale_bits} needs "
            f"{needed} bits of modulus at level {level}, and the chain "
            f"{list(params.coeff_mod_bit_sizes)} leaves {budget:.1f}; plan the chain with "
            "securecomp.hybrid.plan_ckks_conversion (extra primes kept for the conversion)"
        )
    float_err = math.ldexp(1.0, s + mask_bits - 52 + FLOAT_SLACK_BITS)
    precision = t + tail + float_err + math.ldexp(1.0, -frac_bits)
    return CKKSFlooding(noise, units, mask_bits, float(needed), budget, precision)


def plan_ckks_conversion(
    depth: int,
    *,
    scale_bits: int,
    bound: float,
    input_bound: float = 1.0,
    sigma: int = STATISTICAL_SECURITY_BITS,
    noise_bits: int = 0,
    security_bits: int = 128,
) -> CKKSParameters:
    """A CKKS chain for ``depth`` rescales whose result can still be masked and converted.

    The chain is ``[q0, scale x (depth + e), special]``: ``q0`` holds the inputs at the
    last level (``scale + log2(input_bound) + 2`` bits, at least ``scale + 2``), and the
    smallest ``e >= 0`` extra scale-size primes keep ``scale + sigma + b + 3`` bits at level
    ``depth`` (``b = ceil(log2(bound)) + noise_bits``, the latter for flooding noise above
    the values). The smallest ring degree whose 128-bit (or ``security_bits``) row admits
    the chain is chosen, then `validate_ckks` checks it.

    Raises
    ------
    ParameterError
        If no ring degree of the table admits the chain (the message says how many bits
        it needed).
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ParameterError(f"depth must be a non-negative int, got {depth!r}")
    if isinstance(scale_bits, bool) or not isinstance(scale_bits, int):
        raise ParameterError(f"scale_bits must be an int, got {scale_bits!r}")
    if not 20 <= scale_bits <= 59:
        raise ParameterError(f"scale_bits must be an int in [20, 59], got {scale_bits!r}")
    s = check_sigma(sigma)
    b = max(0, math.ceil(math.log2(float(bound)))) + int(noise_bits)
    # q0 holds the inputs at the last level: scale, their magnitude, a sign bit and margin.
    q0 = min(60, scale_bits + 2 + max(0, math.ceil(math.log2(float(input_bound)))))
    needed = scale_bits + s + b + MARGIN_BITS
    last_error = "no ring degree tried"
    for n in HE_STANDARD_POLY_DEGREES:
        for extra in range(0, 8):
            chain = (q0, *([scale_bits] * (depth + extra)), 60)
            if sum(chain) > max_log_q(n, security_bits):
                last_error = f"{sum(chain)} bits exceed the {max_log_q(n, security_bits)} of N={n}"
                break
            try:
                params = CKKSParameters(n, chain, scale_bits)
                if ckks_budget_bits(params, depth) < needed:
                    continue
                return validate_ckks(params, depth=depth + extra, security_bits=security_bits)
            except ParameterError as exc:
                last_error = str(exc)
                break
    raise ParameterError(
        f"no CKKS chain holds a {s}-bit mask over 2^{b} at scale 2^{scale_bits} after "
        f"{depth} rescales ({needed} bits at that level): {last_error}; lower the scale or "
        "the bound"
    )
