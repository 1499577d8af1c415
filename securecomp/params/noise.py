"""CKKS error model: how far a decrypted slot can be from the exact result.

Two estimates, kept apart because they answer different questions:

* **heuristic** (average case): the coefficients of every noise polynomial are treated as
  independent, so by the central limit argument of Costache, Curtis, Hales, Murphy,
  Ogilvie, Player, "On the precision loss in approximate homomorphic encryption"
  (SAC 2023), the real part of one slot has variance ``N * V / 2`` (V the coefficient
  variance). The *shape* matters for the tail: the dominant terms are products with the
  fixed secret (``r1*s`` of every rescale and mod-down, ``e1*s``), and multiplication is
  slot-wise in the canonical embedding, so a slot's error is ``s(zeta_j) * g`` with both
  factors close to complex Gaussians. Conditioned on ``|s(zeta_j)|^2``, which is
  exponentially distributed across slots, the error is Gaussian: the marginal is a
  Gaussian scale mixture with exponential variance, i.e. a **Laplace** law (kurtosis 6;
  measured on TenSEAL fresh ciphertexts: 5.7, tails matching ``exp(-sqrt(2) z)`` from 3 to
  6 sigma, where a Gaussian predicts 1000x fewer 5-sigma slots). The bound returned
  is therefore ``z = failure_log2 * ln 2 / sqrt(2)`` standard deviations (19.6 for 2^-40),
  exceeded by one slot with probability about ``2**-failure_log2`` (union-bound over slots
  when all must hold). This is the estimate to plan with; it is *not* a proof.
* **worst case**: a deterministic bound on the canonical-embedding norm, from
  ``||a||^can <= ||a||_1`` and ``||a*b||^can <= ||a||^can * ||b||^can`` with the bounded
  supports SEAL samples from (ternary secrets, error clipped at 6 sigma). It holds for
  every draw and is far larger (Costache et al. show by how much); use it where a
  guarantee is needed, e.g. to size noise flooding.

Noise sources, following Cheon, Kim, Kim, Song, "Homomorphic Encryption for Arithmetic of
Approximate Numbers" (ASIACRYPT 2017), Lemmas 1-3, adapted to SEAL's RNS implementation:

* encoding rounds each coefficient (error in [-1/2, 1/2]);
* SEAL encrypts at the key level and divides by the special prime P (mod-down), so a fresh
  ciphertext carries the public-key error ``u*e + e0 + e1*s`` divided by P plus the
  rounding ``r0 + r1*s`` of that division (measured: TenSEAL's fresh error matches this
  to 2%; without the mod-down it would be ~16x larger at N = 8192);
* a product adds the cross terms ``x*e_y + y*e_x + e_x*e_y``, relinearization adds
  ``sum_j [c2]_{q_j} * e_j / P`` plus rounding, at scale Δ², and the rescale adds the rounding
  ``r0 + r1*s`` at scale Δ;
* TenSEAL's scale reset multiplies the result of every rescale by ``f = 2^s / p``
  (:mod:`securecomp.params.drift`): a deterministic bias, tracked separately as ``bias``.

All errors are absolute, in the units of the encoded values.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from securecomp.errors import DepthExhaustedError, ParameterError
from securecomp.params.ckks import CKKSParameters
from securecomp.params.drift import scale_drift
from securecomp.params.security import STATISTICAL_SECURITY_BITS
from securecomp.params.table import ERROR_STD_DEV

__all__ = ["CKKSNoiseModel", "ErrorBound", "ErrorModel", "heuristic_tail_sigmas"]

# SEAL samples errors from a normal distribution clipped at 6 standard deviations.
_CLIP_SIGMAS = 6.0
# Uniform ternary secret / encryption randomness: each coefficient is -1, 0, 1 w.p. 1/3.
_TERNARY_VARIANCE = 2.0 / 3.0
# E[x^2] of a coefficient uniform in [0, q): SEAL's key-switching digits are not centred.
_DIGIT_SECOND_MOMENT = 1.0 / 3.0


class ErrorModel(enum.Enum):
    """Which error estimate to use (see the module docstring)."""

    HEURISTIC = "heuristic"
    WORST_CASE = "worst-case"


def heuristic_tail_sigmas(failure_log2: float) -> float:
    """Standard deviations z with ``P(|X| > z*std) = 2**-failure_log2`` for a Laplace X.

    A Laplace law with standard deviation ``std`` has ``P(|X| > z*std) = exp(-sqrt(2)*z)``;
    see the module docstring for why slot errors follow it. For the same tail probability a
    Gaussian needs fewer standard deviations (7.1 instead of 19.6 at 2^-40), so this is
    also conservative for the Gaussian parts of the error.
    """
    if (
        isinstance(failure_log2, bool)
        or not isinstance(failure_log2, int | float)
        or not math.isfinite(failure_log2)
        or failure_log2 <= 0
    ):
        raise ParameterError(f"failure_log2 must be a positive number, got {failure_log2!r}")
    return failure_log2 * math.log(2.0) / math.sqrt(2.0)


@dataclass(frozen=True)
class ErrorBound:
    """What is known about one encrypted slot: magnitude, drift bias and random error.

    Invariant (under the model): ``|decrypted - exact| <= bias + noise``, where the noise
    is at most ``worst`` always, and at most ``z * std`` except with the heuristic tail
    probability.

    Attributes
    ----------
    magnitude : float
        Bound on the magnitude of the exact value.
    bias : float
        Bound on the deterministic error from TenSEAL's scale reset.
    std : float
        Heuristic standard deviation of the random error (real part of one slot).
    worst : float
        Worst-case bound on the random error (canonical-embedding norm).
    level : int
        Rescales this ciphertext has gone through.
    """

    magnitude: float
    bias: float
    std: float
    worst: float
    level: int

    def __post_init__(self) -> None:
        # Errors may saturate at inf (a useless but honest bound); NaN would be silent garbage.
        if any(math.isnan(v) for v in (self.magnitude, self.bias, self.std, self.worst)):
            raise ParameterError(
                "the error estimate overflowed (magnitudes or errors beyond float range); "
                "normalize the inputs or lower the depth"
            )
        if math.isinf(self.magnitude):
            raise ParameterError(
                "the magnitude bound overflowed a float; normalize the inputs, pass a "
                "value_bound, or lower the depth"
            )

    def heuristic(self, failure_log2: float = STATISTICAL_SECURITY_BITS) -> float:
        """High-probability (average-case) bound on the slot error: ``bias + z * std``."""
        return self.bias + heuristic_tail_sigmas(failure_log2) * self.std

    def worst_case(self) -> float:
        """Guaranteed bound on the slot error: ``bias + worst``.

        Guaranteed for the modelled sources (bounded secrets and clipped errors, roundings,
        drift); the double-precision FFT of SEAL's encoder adds a relative error of order
        ``N * 2**-52`` of the magnitude, which is not included.
        """
        return self.bias + self.worst

    def bound(self, model: ErrorModel, failure_log2: float = STATISTICAL_SECURITY_BITS) -> float:
        """The bound of the chosen :class:`ErrorModel`."""
        if model is ErrorModel.WORST_CASE:
            return self.worst_case()
        return self.heuristic(failure_log2)


def _positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f"{what} must be a finite number, got {value!r}")
    if value < 0:
        raise ParameterError(f"{what} must be non-negative, got {value!r}")
    return float(value)


class CKKSNoiseModel:
    """Error propagation for one CKKS parameter set under TenSEAL's evaluation rules.

    Operations mirror TenSEAL with auto-relinearize and auto-rescale: every multiplication
    is followed by one rescale; operands at different levels are mod-switched (no noise).

    Parameters
    ----------
    params : CKKSParameters
        The parameter set (SEAL must be able to build its chain).
    sigma : float
        Standard deviation of the RLWE error (SEAL: 3.2).
    """

    def __init__(self, params: CKKSParameters, *, sigma: float = ERROR_STD_DEV) -> None:
        self.params = params
        self.sigma = _positive(sigma, "sigma")
        self._primes = params.primes
        self._factors = scale_drift(params).level_factors
        n = params.poly_modulus_degree
        self._n = float(n)
        self._delta = math.ldexp(1.0, params.scale_bits)
        clip = _CLIP_SIGMAS * self.sigma
        special = float(self._primes[-1])
        # Rounding of a division (rescale, mod-down by P): r0 + r1*s, |r_i| <= 1/2.
        self._round_var = (1.0 + n * _TERNARY_VARIANCE) / 12.0
        self._round_worst = 0.5 * n + 0.5 * n * n
        # Public-key encryption error u*e + e0 + e1*s, then divided by P.
        pk_var = self.sigma**2 * (1.0 + 2.0 * n * _TERNARY_VARIANCE)
        pk_worst = clip * n * (2.0 * n + 1.0)
        self._encode_var = 1.0 / 12.0
        self._encode_worst = 0.5 * n
        self._fresh_var = self._encode_var + pk_var / special**2 + self._round_var
        self._fresh_worst = self._encode_worst + pk_worst / special + self._round_worst
        self._clip = clip
        self._special = special

    # -- canonical embedding: coefficient statistics -> one slot ---------------------------

    def _slot_std(self, coeff_var: float, scale: float) -> float:
        # Real part of one slot of a polynomial with i.i.d. coefficients of variance V:
        # variance N*V/2 (the cosines of a primitive 2N-th root sum to N/2 exactly).
        return math.sqrt(self._n * coeff_var / 2.0) / scale

    def _keyswitch(self, level: int) -> tuple[float, float]:
        """(std, worst) of relinearization at ``level``, at scale Δ² (decoded units)."""
        data = self._primes[: self.params.depth + 1 - level]
        var = (
            sum(self._n * _DIGIT_SECOND_MOMENT * float(q) ** 2 * self.sigma**2 for q in data)
            / self._special**2
            + self._round_var
        )
        worst = (
            sum(self._n * float(q) * self._n * self._clip for q in data) / self._special
            + self._round_worst
        )
        delta2 = self._delta**2
        return self._slot_std(var, delta2), worst / delta2

    def _next_level(self, level: int) -> int:
        if level >= self.params.depth:
            raise DepthExhaustedError(
                f"a multiplication at level {level} needs a rescale, but the chain "
                f"{list(self.params.coeff_mod_bit_sizes)} has only {self.params.depth}; "
                "plan a longer chain"
            )
        return level + 1

    # -- operations --------------------------------------------------------------------------

    def fresh(self, magnitude: float) -> ErrorBound:
        """A freshly encoded and encrypted vector with ``|x| <= magnitude``."""
        m = _positive(magnitude, "magnitude")
        return ErrorBound(
            magnitude=m,
            bias=0.0,
            std=self._slot_std(self._fresh_var, self._delta),
            worst=self._fresh_worst / self._delta,
            level=0,
        )

    def multiply(
        self, a: ErrorBound, b: ErrorBound, *, value_bound: float | None = None
    ) -> ErrorBound:
        """Ciphertext times ciphertext, relinearized and rescaled.

        Parameters
        ----------
        a, b : ErrorBound
            The operands (the same object twice models squaring: errors add linearly,
            which also covers fully correlated operands).
        value_bound : float, optional
            Known bound on the exact product, if tighter than ``a.magnitude * b.magnitude``.

        Raises
        ------
        DepthExhaustedError
            If no rescale is left.
        """
        level = self._next_level(max(a.level, b.level))
        f = self._factors[level - 1]
        mag = a.magnitude * b.magnitude
        if value_bound is not None:
            mag = min(mag, _positive(value_bound, "value_bound"))
        ma, mb = a.magnitude + a.bias, b.magnitude + b.bias
        ks_std, ks_worst = self._keyswitch(max(a.level, b.level))
        # Laplace errors: E[(e_a e_b)^2] <= 6 std_a^2 std_b^2 (kurtosis 6; equality: e_a = e_b).
        cross_std = ma * b.std + mb * a.std + math.sqrt(6.0) * a.std * b.std
        # hypot: independent terms add in quadrature, saturating at inf rather than raising.
        std = math.hypot(f * cross_std, f * ks_std, self._rescale_std())
        worst = f * (ma * b.worst + mb * a.worst + a.worst * b.worst + ks_worst)
        worst += self._round_worst / self._delta
        bias = f * (a.magnitude * b.bias + b.magnitude * a.bias + a.bias * b.bias)
        bias += abs(f - 1.0) * mag
        return ErrorBound(magnitude=mag, bias=bias, std=std, worst=worst, level=level)

    def multiply_plain(
        self, a: ErrorBound, constant_bound: float, *, value_bound: float | None = None
    ) -> ErrorBound:
        """Ciphertext times an encoded plaintext vector with ``|c| <= constant_bound``, rescaled."""
        c = _positive(constant_bound, "constant_bound")
        level = self._next_level(a.level)
        f = self._factors[level - 1]
        mag = a.magnitude * c
        if value_bound is not None:
            mag = min(mag, _positive(value_bound, "value_bound"))
        enc_std = self._slot_std(self._encode_var, self._delta)
        enc_worst = self._encode_worst / self._delta
        ma = a.magnitude + a.bias
        cross_std = ma * enc_std + c * a.std + a.std * enc_std  # independent factors
        std = math.hypot(f * cross_std, self._rescale_std())
        worst = f * (ma * enc_worst + c * a.worst + a.worst * enc_worst)
        worst += self._round_worst / self._delta
        bias = f * c * a.bias + abs(f - 1.0) * mag
        return ErrorBound(magnitude=mag, bias=bias, std=std, worst=worst, level=level)

    def add(self, a: ErrorBound, b: ErrorBound) -> ErrorBound:
        """Ciphertext plus ciphertext (no rescale; errors add linearly, correlation-safe)."""
        return ErrorBound(
            magnitude=a.magnitude + b.magnitude,
            bias=a.bias + b.bias,
            std=a.std + b.std,
            worst=a.worst + b.worst,
            level=max(a.level, b.level),
        )

    def _rescale_std(self) -> float:
        return self._slot_std(self._round_var, self._delta)

    def product_tree(
        self, depth: int, input_bound: float, *, value_bound: float | None = None
    ) -> ErrorBound:
        """Error of a balanced product of ``2**depth`` fresh inputs with ``|x| <= input_bound``.

        Each level multiplies two ciphertexts carrying the error of the level below (the
        planner's model of a depth-``depth`` computation). ``value_bound``, if given, caps
        every intermediate magnitude.
        """
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ParameterError(f"depth must be a non-negative int, got {depth!r}")
        bound = self.fresh(input_bound)
        for _ in range(depth):
            bound = self.multiply(bound, bound, value_bound=value_bound)
        return bound
