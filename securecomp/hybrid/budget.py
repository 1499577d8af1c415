"""Parameters of HE <-> MPC conversions: mask widths, flooding, modulus budget, precision.

Every conversion hides a value ``|y| <= B`` under a mask drawn uniformly over a grid of
integers (or of multiples of ``2^-g`` for CKKS) with ``sigma`` bits of statistical slack:
the key holder's views of any two admissible values are within statistical distance
``2^-sigma`` per value (sigma = 40 by default, `securecomp.params.STATISTICAL_SECURITY_BITS`,
and never below it outside ``insecure_test_parameters()``: `check_statistical_security`).
This module computes, for each direction, the widths, the flooding noise and what they
cost:

* **Masks.** Integers: ``r`` uniform in ``[0, 2^(beta + 1 + sigma))`` for ``|X| < 2^beta``
  (`integer_mask_bits`). CKKS: every slot ``j`` of every ciphertext gets
  ``M_j = K_j 2^-g``, ``K_j`` uniform in ``[-2^(sigma + b + g), 2^(sigma + b + g))``, with
  ``2^b >= B + t + z sigma_n`` and the grid ``2^-g`` at the CKKS unit (``g = scale``); the
  mask is added as an *exact* plaintext polynomial (`securecomp.hybrid.embedding`), never
  through float64.
* **CKKS hiding and flooding** (`ckks_flooding`). The key holder's view is the integer
  polynomial ``V = m + P_M + P_n`` (plus a fresh encryption of zero, independent of
  everything): ``m`` the computed plaintext, ``sigma(m) / Delta = a = y + error``;
  ``P_M = round(Delta sigma^-1(M))``, computed exactly (within ``1/2 + 2^-20`` per
  coefficient); ``P_n`` a discrete Gaussian ``D_{Z^N, sigma_c}`` on the coefficients, so
  on the real and imaginary parts of every slot (all ``N`` real dimensions the key holder
  can compute). The simulated view ``V_0 = P_M + P_n`` depends on nothing secret. Split
  each slot: ``Re a_j = G_j + phi_j`` with ``G_j`` on the grid ``2^-g`` and
  ``|phi_j| <= 2^-(g+1)``, ``|Im a_j| <= t``. By linearity ``m + P_M = P_(M+G) + D`` with
  ``D`` an *integer* vector, ``|D|_2 <= sqrt(2) Delta (t + 2^-(g+1)) + (1 + 2^-19)
  sqrt(N)`` (Parseval, ``|sigma(e)|_2 = sqrt(N) |e|_2``, for the residual ``phi + i Im a``,
  plus the two encoding roundings). Then (1) for integer shifts the divergence is exact,
  ``KL(D + D_{Z^N,s} || D_{Z^N,s}) = |D|^2 / (2 sigma_c^2)``, additive over the ``C``
  ciphertexts of a conversion and the ``q`` conversions under the key, and
  ``sigma_c = |D| sqrt(q C / 2) 2^(sigma / 2)`` bounds it by ``2^-sigma`` in total (the
  convention of `securecomp.he.ckks.release`: Li, Micciancio, Schultz, Sorrell,
  CRYPTO 2022); (2) ``M + G`` is the uniform box shifted by ``|G_j| 2^g <= (B + t) 2^g +
  1/2`` of its ``2^(sigma + b + g + 1)`` points: statistical distance at most
  ``2^-(sigma + 1)`` per slot. So ``V`` is that close to ``V_0``, and the views of two
  admissible values are ``2^-sigma`` apart per slot (``k 2^-sigma`` for ``k`` slots by a
  union bound). The ``sqrt(2)`` in ``|D|`` also covers a real error of size ``t``: the
  flooding that a value revealed later needs (Li and Micciancio, EUROCRYPT 2021). Per slot
  and real dimension the noise has standard deviation ``sigma_n = sigma_c sqrt(N / 2) /
  Delta`` and is ``sigma_n``-subgaussian. A mask on a coarser grid (the float64 grid
  ``2^(sigma + b - 52)``, say) would put residuals up to half of that grid into ``D``: the
  noise would have to be sized for them, or ``z mod grid`` shows the low bits of ``y``.
* **CKKS modulus budget** (`ckks_budget_bits`, `plan_ckks_conversion`). The masked value
  needs ``scale + sigma + b + 3`` bits of modulus at the ciphertext's level (value, sign,
  and a factor two the key holder uses to detect a corrupted ciphertext) where a plain
  decryption needs ``scale + log2 B + 2``: a ciphertext that ends its computation at the
  last prime alone (``q_0 <= 60`` bits) has no room for a 40-bit mask at any useful
  scale. `plan_ckks_conversion` therefore keeps ``e`` extra scale-size primes in the
  chain, unused by the computation, so that the converted ciphertext still holds
  ``q_0 ... q_e``.
* **Precision.** Both parties compute exactly (the key holder decodes its plaintext with
  `securecomp.hybrid.embedding`), so no float64 error of the ``2^(sigma + b)`` magnitude
  enters: ``|share sum - y| <= t + z sigma_n + N / Delta + 2^-f`` except with probability
  ``2^-sigma`` per value (``z = sqrt(2 ln 2 (sigma + 1))``; ``N / Delta`` bounds the
  coefficient rounding of the mask's encoding; one ulp ``2^-f`` for the two roundings to
  fixed point). Integer (Paillier) conversions are exact up to that ulp.
* **Z_2^64 room for shares -> HE.** The bounded re-sharing opens ``X + r`` inside Z_2^64,
  so ``beta + 1 + sigma <= 62`` with ``beta = bits(B 2^f)``: ``B <= 2^(21 - f)`` at the
  defaults (32 for f = 16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from securecomp.errors import EncodingOverflowError, ParameterError
from securecomp.he.ckks.gaussian import MAX_SIGMA, DiscreteGaussian
from securecomp.he.ckks.release import flooding_std
from securecomp.hybrid.embedding import GUARD_BITS
from securecomp.params import (
    HE_STANDARD_POLY_DEGREES,
    STATISTICAL_SECURITY_BITS,
    CKKSParameters,
    check_statistical_security,
    max_log_q,
    validate_ckks,
)

__all__ = [
    "FLOAT_SLACK_BITS",
    "MARGIN_BITS",
    "RESHARE_LIMIT_BITS",
    "CKKSFlooding",
    "ckks_budget_bits",
    "ckks_flooding",
    "integer_mask_bits",
    "plan_ckks_conversion",
    "reshare_bits",
    "reshare_precision",
    "tail_sigmas",
]

#: Bits of modulus kept above the mask ``2^(sigma + b)``: the value and noise on top of it,
#: the sign, and a factor two below which the key holder recognizes a sound plaintext.
MARGIN_BITS = 3
#: The float64 error bound of a re-shared magnitude, in bits above ``2^(beta + sigma - 52)``.
FLOAT_SLACK_BITS = 3
#: Twice the exact encoder's error beyond the half-unit rounding (`embedding.GUARD_BITS`).
_ENCODE_SLACK = 2.0 ** (1 - GUARD_BITS)
#: Largest ``bits(|X + r|)`` the bounded re-sharing may open inside Z_2^64.
RESHARE_LIMIT_BITS = 62


def tail_sigmas(sigma: int) -> float:
    """``z`` with ``P(|N(0, 1)| > z) <= 2^-sigma`` (``2 exp(-z^2 / 2) = 2^-sigma``)."""
    return math.sqrt(2.0 * math.log(2.0) * (check_statistical_security(sigma, "sigma") + 1))


def integer_mask_bits(beta: int, sigma: int = STATISTICAL_SECURITY_BITS) -> int:
    """Bits of the integer mask for values ``|X| < 2^beta``: ``beta + 1 + sigma``.

    ``X + r`` for ``r`` uniform in ``[0, 2^(beta + 1 + sigma))`` is within statistical
    distance ``|X - X'| / 2^(beta + 1 + sigma) < 2^-sigma`` of ``X' + r``.
    """
    if isinstance(beta, bool) or not isinstance(beta, int) or beta < 0:
        raise ParameterError(f"beta must be a non-negative int, got {beta!r}")
    return beta + 1 + check_statistical_security(sigma, "sigma")


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
    if beta + 1 + check_statistical_security(sigma, "sigma") > RESHARE_LIMIT_BITS:
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
    s = check_statistical_security(sigma, "sigma")
    return math.ldexp(1.0, beta + s - frac_bits - 52 + FLOAT_SLACK_BITS) + math.ldexp(
        1.0, -frac_bits
    )


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
        ``sigma_n``: standard deviation of the flooding noise in each slot, real and
        imaginary part alike (value units; the noise is ``sigma_n``-subgaussian there).
    noise_units : float
        ``sigma_c``: parameter of the discrete Gaussian added to each plaintext coefficient
        (integer units), as the sampler delivers it (at least its target).
    mask_bits : int
        ``b``: ``|y| + error + noise`` is below ``2^b``; each slot's mask is uniform on the
        multiples of ``2^-grid_bits`` in ``[-2^(sigma+b), 2^(sigma+b))``.
    grid_bits : int
        ``g``: the mask grid is ``2^-g`` (the CKKS unit ``2^-scale_bits``).
    needed_bits, budget_bits : float
        Modulus bits the masked value needs at the ciphertext's level, and what it has.
    precision : float
        Bound on ``|share sum - y|`` (except with probability ``2^-sigma`` per value).
    """

    noise_std: float
    noise_units: float
    mask_bits: int
    grid_bits: int
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
    gain: float = 1.0,
) -> CKKSFlooding:
    """Size the flooding and the mask of a CKKS -> shares conversion, and check the budget.

    Both parties call it with the same public arguments (the key holder to learn the
    shares' bound); the derivation is in the module docstring.

    Parameters
    ----------
    params : CKKSParameters
    level : int
        Rescales the converted ciphertexts went through.
    bound : float
        Public bound ``B`` on ``|y|`` (the values, before noise), in *every* slot of the
        ciphertexts: all slots are masked, the unused ones too.
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
        Statistical parameter: 40 by default, smaller only inside
        ``insecure_test_parameters()``.
    gain : float
        The ciphertexts' gain (`securecomp.he.ckks.payload.CKKSPayload.gain`): a plaintext
        coefficient unit is ``2^-scale_bits / gain`` in value units.

    Raises
    ------
    ParameterError
        If the masked value does not fit the modulus left at ``level`` (the message gives
        the bits needed), or the flooding noise exceeds the sampler's range.
    InsecureParameterError
        If ``sigma < 40`` outside ``insecure_test_parameters()``.
    """
    s = check_statistical_security(sigma, "sigma")
    t, b_val, g_val = float(error_bound), float(bound), float(gain)
    for name, v in (("error_bound", t), ("bound", b_val), ("gain", g_val)):
        if not v > 0 or not math.isfinite(v):
            raise ParameterError(f"{name} must be a positive finite number, got {v!r}")
    degree = params.poly_modulus_degree
    grid = params.scale_bits
    unit = math.ldexp(g_val, params.scale_bits)  # Delta: coefficient units per value unit
    # Integer shift of the noise per ciphertext (2-norm over the N coefficients): the error
    # in the imaginary parts and the grid residual in the real parts, through Parseval, and
    # the coefficient rounding of the mask's exact encoding.
    shift = math.sqrt(2.0) * unit * (t + math.ldexp(1.0, -grid - 1)) + (
        1.0 + _ENCODE_SLACK
    ) * math.sqrt(degree)
    target = flooding_std(shift, s=s, n_releases=n_conversions, n_values=n_ciphertexts)
    if target > MAX_SIGMA:
        raise ParameterError(
            f"the flooding noise would be {target * math.sqrt(degree / 2) / unit:.3g} per "
            "slot, beyond the sampler's range: the error bound is too large for this "
            "scale; plan a larger scale"
        )
    units = DiscreteGaussian(target).sigma  # what the sampler delivers (>= target)
    noise = units * math.sqrt(degree / 2.0) / unit
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
    precision = t + tail + degree / unit + math.ldexp(1.0, -frac_bits)
    return CKKSFlooding(noise, units, mask_bits, grid, float(needed), budget, precision)


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
    s = check_statistical_security(sigma, "sigma")
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
