"""Smallest secure CKKS parameters for a depth, a target precision and an input bound.

The planner models the computation as a balanced product tree: ``2**depth`` fresh inputs
with ``|x| <= input_bound`` multiplied pairwise, level by level, each product rescaled once
(TenSEAL's auto-rescale), so intermediate magnitudes are ``input_bound ** (2**d)`` unless a
tighter ``value_bound`` is declared. Any circuit of that multiplicative depth whose values
stay within those magnitudes has no larger error under the model of
:mod:`securecomp.params.noise` (plaintext factors are no worse than ciphertext ones).

Search: for each N of the HomomorphicEncryption.org table in increasing order, and each
scale s from small to large, the chain is ``[q0, s × depth, q0]`` with a special prime as
large as q0 (SEAL's recommendation for key switching) and q0 just large enough for the
largest magnitude at every level (sign bit and a margin included). The first candidate
within the table whose predicted error, *including TenSEAL's scale drift*, meets the
target and which passes :func:`validate_ckks` is returned: smallest N, then smallest
total log q.
"""

from __future__ import annotations

import math

from securecomp.errors import ParameterError
from securecomp.params.ckks import CKKSParameters
from securecomp.params.noise import CKKSNoiseModel, ErrorModel
from securecomp.params.primes import SEAL_USER_MOD_BIT_COUNT_MAX
from securecomp.params.security import STATISTICAL_SECURITY_BITS
from securecomp.params.table import HE_STANDARD_POLY_DEGREES, SECURITY_LEVELS, max_log_q
from securecomp.params.validate import validate_ckks

__all__ = ["plan_ckks", "predicted_error"]

# Extra room in q0 above the largest magnitude: values carry error and drift on top.
_MAGNITUDE_MARGIN = 1.01


def _finite_positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f"{what} must be a finite number, got {value!r}")
    if value <= 0:
        raise ParameterError(f"{what} must be positive, got {value!r}")
    return float(value)


def _magnitudes(depth: int, input_bound: float, value_bound: float | None) -> list[float]:
    mags = [input_bound]
    for _ in range(depth):
        nxt = mags[-1] * mags[-1]  # float multiplication saturates at inf instead of raising
        mags.append(nxt if value_bound is None else min(nxt, value_bound))
    return mags


def _first_prime_bits(scale_bits: int, depth: int, mags: list[float]) -> int:
    """Bits of q0 so that every level's modulus holds magnitude * 2^s with a sign bit."""
    need = scale_bits + 2
    for d, m in enumerate(mags):
        if not math.isfinite(m):
            return SEAL_USER_MOD_BIT_COUNT_MAX + 1  # beyond any prime: caller reports it
        extra = max(0, math.ceil(math.log2(m * _MAGNITUDE_MARGIN)))
        # After d rescales the modulus still has q0 and depth - d middle primes of s bits.
        need = max(need, scale_bits + 2 + extra - (depth - d) * scale_bits)
    return need


def predicted_error(
    params: CKKSParameters,
    depth: int,
    input_bound: float,
    *,
    value_bound: float | None = None,
    model: ErrorModel = ErrorModel.HEURISTIC,
    failure_log2: float = STATISTICAL_SECURITY_BITS,
) -> float:
    """Predicted absolute error of the planner's depth-``depth`` product tree under ``params``.

    Parameters
    ----------
    params : CKKSParameters
        The parameter set.
    depth : int
        Multiplicative depth.
    input_bound : float
        Bound on the magnitude of every input.
    value_bound : float, optional
        Bound on every intermediate magnitude (default: ``input_bound ** (2**d)``).
    model : ErrorModel
        Heuristic (average case) or worst case.
    failure_log2 : float
        Per-slot failure probability ``2**-failure_log2`` of the heuristic bound.

    Returns
    -------
    float
        Bound on ``|decrypted - exact|`` per slot, drift bias included.
    """
    bound = CKKSNoiseModel(params).product_tree(depth, input_bound, value_bound=value_bound)
    return bound.bound(model, failure_log2)


def _chain(n: int, scale_bits: int, depth: int, mags: list[float]) -> CKKSParameters | None:
    q0 = _first_prime_bits(scale_bits, depth, mags)
    if q0 > SEAL_USER_MOD_BIT_COUNT_MAX:
        return None
    return CKKSParameters(n, (q0, *([scale_bits] * depth), q0), scale_bits)


def _search(
    depth: int,
    precision: float,
    input_bound: float,
    value_bound: float | None,
    model: ErrorModel,
    failure_log2: float,
    degrees: tuple[int, ...],
    log_q_cap: dict[int, int] | None,
    security_bits: int,
) -> CKKSParameters | None:
    for n in degrees:
        mags = _magnitudes(depth, input_bound, value_bound)
        for s in range(2, SEAL_USER_MOD_BIT_COUNT_MAX + 1):
            params = _chain(n, s, depth, mags)
            if params is None:
                break  # q0 only grows with s
            if log_q_cap is not None and params.total_log_q > log_q_cap[n]:
                break  # total log q only grows with s
            try:
                err = predicted_error(
                    params,
                    depth,
                    input_bound,
                    value_bound=value_bound,
                    model=model,
                    failure_log2=failure_log2,
                )
                if err > precision:
                    continue
                if log_q_cap is not None:
                    validate_ckks(params, depth=depth, security_bits=security_bits)
            except ParameterError:
                continue  # SEAL has no such primes, or the chain drifts: try a larger scale
            return params
    return None


def plan_ckks(
    depth: int,
    precision: float,
    input_bound: float,
    *,
    security_bits: int = 128,
    value_bound: float | None = None,
    model: ErrorModel = ErrorModel.HEURISTIC,
    failure_log2: float = STATISTICAL_SECURITY_BITS,
) -> CKKSParameters:
    """The smallest secure CKKS parameters meeting a precision target at a given depth.

    Parameters
    ----------
    depth : int
        Multiplicative depth (rescales) of the computation.
    precision : float
        Target bound on the absolute error of each output slot.
    input_bound : float
        Bound on the magnitude of every input.
    security_bits : int
        128, 192 or 256 (HomomorphicEncryption.org row).
    value_bound : float, optional
        Bound on every intermediate magnitude (default: ``input_bound ** (2**d)``, the
        product-tree bound).
    model : ErrorModel
        :attr:`ErrorModel.HEURISTIC` (default, average case) or
        :attr:`ErrorModel.WORST_CASE` (guaranteed, much larger parameters).
    failure_log2 : float
        Per-slot failure probability ``2**-failure_log2`` of the heuristic bound.

    Returns
    -------
    CKKSParameters
        Smallest N, then smallest total log q, that meets the target and passes
        :func:`validate_ckks` at ``depth``.

    Raises
    ------
    ParameterError
        If no parameter set in the table fits; the message says what would be needed.

    Examples
    --------
    >>> p = plan_ckks(2, 1e-3, 1.0)
    >>> p.depth, p.security_bits >= 128
    (2, True)
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ParameterError(f"depth must be a non-negative int, got {depth!r}")
    if depth > 60:
        raise ParameterError(
            f"depth {depth} cannot fit any table entry (881 bits at N = 32768 allow fewer "
            "than 60 rescales); split the computation or re-encrypt in between"
        )
    target = _finite_positive(precision, "precision")
    bound = _finite_positive(input_bound, "input_bound")
    cap_value = None if value_bound is None else _finite_positive(value_bound, "value_bound")
    if security_bits not in SECURITY_LEVELS:
        raise ParameterError(
            f"security_bits must be one of {list(SECURITY_LEVELS)}, got {security_bits!r}"
        )
    if not isinstance(model, ErrorModel):
        raise ParameterError(f"model must be an ErrorModel, got {model!r}")
    caps = {n: max_log_q(n, security_bits) for n in HE_STANDARD_POLY_DEGREES}
    args = (depth, target, bound, cap_value, model, failure_log2)
    found = _search(*args, HE_STANDARD_POLY_DEGREES, caps, security_bits)
    if found is not None:
        return found
    raise ParameterError(_explain_failure(*args, security_bits, caps))


def _magnitude_text(mags: list[float]) -> str:
    top = max(mags)
    return f"{top:.3g}" if math.isfinite(top) else "beyond float range"


def _explain_failure(
    depth: int,
    precision: float,
    input_bound: float,
    value_bound: float | None,
    model: ErrorModel,
    failure_log2: float,
    security_bits: int,
    caps: dict[int, int],
) -> str:
    what = (
        f"depth {depth} with error <= {precision:g} for |inputs| <= {input_bound:g} "
        f"({model.value} model) at {security_bits}-bit security"
    )
    largest = HE_STANDARD_POLY_DEGREES[-1]
    mags = _magnitudes(depth, input_bound, value_bound)
    if _first_prime_bits(2, depth, mags) > SEAL_USER_MOD_BIT_COUNT_MAX:
        return (
            f"no parameters for {what}: intermediate values up to {_magnitude_text(mags)} "
            f"need more than {SEAL_USER_MOD_BIT_COUNT_MAX} bits above the scale in the first "
            "prime; "
            "normalize the inputs, declare a tighter value_bound, or lower the depth"
        )
    # Ignore the security cap at the largest N: how long would the chain have to be?
    uncapped = _search(
        depth, precision, input_bound, value_bound, model, failure_log2, (largest,), None, 0
    )
    if uncapped is not None and uncapped.total_log_q > caps[largest]:
        return (
            f"no parameters for {what}: it needs about {uncapped.total_log_q} bits of "
            f"modulus at N = {largest} (e.g. {uncapped}), more than the {caps[largest]} bits "
            f"the table allows there, so it would need N > {largest}, which SEAL does not "
            "support; lower the depth, loosen the precision or shrink the input bound"
        )
    return (
        f"no parameters for {what}: even a 60-bit scale at N = {largest} misses the target, "
        "or every candidate drifts beyond tolerance; loosen the precision or shrink the "
        "input bound"
    )
