"""Agreed parameters of distributed DP over secure aggregation, checked at set-up.

Kairouz, Liu and Steinke, "The Distributed Discrete Gaussian Mechanism for Federated
Learning with Secure Aggregation", ICML 2021, sections 4-5; Agarwal, Kairouz and Liu, "The
Skellam Mechanism for Differentially Private Federated Learning", NeurIPS 2021, section 4.

Units
-----
``l2_clip`` and ``noise_stddev`` are in the units of the clients' vectors; ``scale`` (the
``1 / gamma`` of the papers) maps them to the integer grid. ``noise_stddev`` is the standard
deviation per coordinate of the noise that protects a client in the decoded sum: the noise
of the clients the adversary does not control.

Who adds how much noise
-----------------------
The server may collude with up to ``corrupt_count`` clients, knows their noise and can
subtract it, and (actively) can drop honest clients down to ``min_survivors`` summands.
The worst case leaves ``min_survivors - corrupt_count`` honest summands, so each client adds
variance ``(noise_stddev * scale)^2 / (min_survivors - corrupt_count)``. (The estimate
``(1 - corrupt_fraction) * min_survivors`` is smaller whenever ``min_survivors <
n_clients``: all corrupt clients may be among the survivors.) The secure-aggregation layer
must refuse to unmask a sum of fewer than ``min_survivors`` inputs (threshold ``t >=
min_survivors``), or the guarantee does not hold.

Modulus and wrap-around
-----------------------
The sum of ``n = n_clients`` encoded vectors, coordinate ``k``, is ``scale (R s)_k +
sum_i r_ik + sum_i Z_ik`` with ``s`` the sum of clipped inputs (``||s|| <= n c``), ``r`` the
rounding errors (``|r_ik| < 1``) and ``Z`` the noise. Over the rotation's signs ``scale (R
s)_k`` is ``(scale n c)^2 / d'``-subgaussian (`securecomp.dp.rotation`); the noise is
``n sigma^2``-subgaussian (discrete Gaussian) or ``Sk(n mu)`` (Skellam). With ``T = 2^(b-1)
- 1 - n``, a union bound over the ``d'`` coordinates of the tail bounds of
`securecomp.dp.tails` bounds the probability that some coordinate leaves ``[-2^(b-1),
2^(b-1))``, i.e. wraps. Set-up refuses (`ParameterError`) any configuration where this
exceeds ``2^-wrap_bits`` (default and floor 2^-40; a looser ``wrap_bits`` raises
`InsecureParameterError` outside ``securecomp.params.insecure_test_parameters()``);
`create` picks the smallest ``b`` or the largest scale that meets it. The bound assumes
the inputs do not depend on the round's rotation signs and that all summands follow the
protocol (a corrupt client can always spoil the aggregate). The sampled noise is
truncated, which only lightens its tails.
"""

from __future__ import annotations

import hashlib
import math
import operator
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from securecomp.dp.accounting import PrivacyAccountant, PrivacyEvent, PrivacySpent, RdpBound
from securecomp.dp.ddgauss import (
    MAX_SIGMA,
    MIN_SIGMA,
    DiscreteGaussianSampler,
    ddgauss_rdp_bound,
)
from securecomp.dp.rotation import RandomizedHadamard, padded_dim
from securecomp.dp.rounding import max_attempts, rounded_norm_bound
from securecomp.dp.skellam import SkellamSampler, skellam_rdp_bound
from securecomp.dp.tails import (
    log2_skellam_tail,
    log2_subgaussian_tail,
    skellam_norm_bound,
    subgaussian_norm_bound,
)
from securecomp.errors import ParameterError
from securecomp.params import check_statistical_security

__all__ = [
    "DEFAULT_BETA",
    "WRAP_BITS",
    "DistributedDpConfig",
    "Mechanism",
    "Neighbouring",
]

#: The distributed-DP mechanisms.
Mechanism = Literal["ddgauss", "skellam"]
#: ``zero_out``: a client's vector replaced by zero (the papers' add/remove analysis, the
#: client still adds its noise); ``replace``: replaced by another vector (sensitivity x2).
Neighbouring = Literal["zero_out", "replace"]

#: Conditional-rounding failure probability recommended by Kairouz et al. (section 4.1).
DEFAULT_BETA = math.exp(-0.5)
#: Default bound on the wrap-around probability of one aggregate: 2^-40.
WRAP_BITS = 40


def _int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an int, got {value!r}")
    v = operator.index(value)
    if v < low or (high is not None and v > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ParameterError(f"{name} must be {rng}, got {v}")
    return v


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ParameterError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise ParameterError(f"{name} must be positive and finite, got {value!r}")
    return v


def _log2_wrap(
    mechanism: Mechanism, bits: int, n: int, dim: int, clip_scaled: float, sigma: float
) -> float:
    """log2 of the union bound on some coordinate of the n-client sum wrapping mod 2^bits."""
    room = float((1 << (bits - 1)) - 1 - n)
    if room <= 0.0:
        return 0.0
    v_signal = (clip_scaled * n) ** 2 / dim
    if mechanism == "ddgauss":
        tail = log2_subgaussian_tail(room, v_signal + n * sigma * sigma)
    else:
        tail = log2_skellam_tail(room, v_signal, n * sigma * sigma / 2.0)
    return min(0.0, math.log2(dim) + tail)


def _smallest_bits(
    mechanism: Mechanism, n: int, dim: int, clip_scaled: float, sigma: float, wrap_bits: int
) -> int | None:
    for bits in range(2, 65):
        if _log2_wrap(mechanism, bits, n, dim, clip_scaled, sigma) <= -wrap_bits:
            return bits
    return None


@dataclass(frozen=True)
class DistributedDpConfig:
    """Parameters of one distributed-DP aggregation, shared by the server and all clients.

    Invariant: the per-client noise is within the sampler's range, the rounding threshold
    fits int64 exactly, and the sum of ``n_clients`` encoded vectors wraps modulo
    ``2^modulus_bits`` with probability at most ``2^-wrap_bits`` (see the module docstring).

    Parameters
    ----------
    mechanism : {"ddgauss", "skellam"}
        Distributed discrete Gaussian (Kairouz et al.) or Skellam (Agarwal et al.).
    dim : int
        Length ``d`` of the clients' vectors (padded to ``d' = 2^ceil(log2 d)``).
    l2_clip : float
        ``c``: every client's vector is clipped to L2 norm ``c``.
    noise_stddev : float
        ``sigma``: std. dev. per coordinate of the honest clients' noise in the decoded sum.
    scale : float
        Multiplier to the integer grid (``1 / gamma``).
    modulus_bits : int
        ``b``: the aggregate lives in Z_2^b (``2 <= b <= 64``).
    n_clients : int
        Clients in the cohort (the most vectors summed).
    min_survivors : int
        Fewest vectors a released sum may contain (secure aggregation's threshold).
    corrupt_count : int
        Clients that may collude with the server.
    beta : float
        Conditional-rounding parameter (`securecomp.dp.rounding`).
    wrap_bits : int
        The wrap-around probability of one aggregate must be at most ``2^-wrap_bits``:
        at least 40 (`securecomp.params.STATISTICAL_SECURITY_BITS`, the default), smaller
        only inside ``securecomp.params.insecure_test_parameters()``.
    neighbouring : {"zero_out", "replace"}
        What neighbouring inputs are (see `Neighbouring`).
    """

    mechanism: Mechanism
    dim: int
    l2_clip: float
    noise_stddev: float
    scale: float
    modulus_bits: int
    n_clients: int
    min_survivors: int
    corrupt_count: int = 0
    beta: float = DEFAULT_BETA
    wrap_bits: int = WRAP_BITS
    neighbouring: Neighbouring = "zero_out"
    padded_dim: int = field(init=False)
    honest_clients: int = field(init=False)
    client_sigma: float = field(init=False)
    rounding_threshold: int = field(init=False)
    log2_wrap_probability: float = field(init=False)

    def __post_init__(self) -> None:
        if self.mechanism not in ("ddgauss", "skellam"):
            raise ParameterError(
                f"mechanism must be 'ddgauss' or 'skellam', got {self.mechanism!r}"
            )
        if self.neighbouring not in ("zero_out", "replace"):
            raise ParameterError(
                f"neighbouring must be 'zero_out' or 'replace', got {self.neighbouring!r}"
            )
        set_ = object.__setattr__
        set_(self, "dim", _int("dim", self.dim, 1))
        set_(self, "l2_clip", _positive("l2_clip", self.l2_clip))
        set_(self, "noise_stddev", _positive("noise_stddev", self.noise_stddev))
        set_(self, "scale", _positive("scale", self.scale))
        set_(self, "modulus_bits", _int("modulus_bits", self.modulus_bits, 2, 64))
        n = _int("n_clients", self.n_clients, 1)
        set_(self, "n_clients", n)
        set_(self, "min_survivors", _int("min_survivors", self.min_survivors, 1, n))
        set_(self, "corrupt_count", _int("corrupt_count", self.corrupt_count, 0, n - 1))
        # Below 2^-40 per aggregate only inside insecure_test_parameters() (the shared floor).
        set_(self, "wrap_bits", check_statistical_security(self.wrap_bits, "wrap_bits"))
        honest = self.min_survivors - self.corrupt_count
        if honest < 1:
            raise ParameterError(
                f"{self.corrupt_count} corrupt clients may be among the {self.min_survivors} "
                "survivors, leaving no honest noise: raise min_survivors (the secure-"
                "aggregation threshold) above corrupt_count"
            )
        set_(self, "honest_clients", honest)
        set_(self, "padded_dim", padded_dim(self.dim))
        sigma = self.noise_stddev * self.scale / math.sqrt(honest)
        low = MIN_SIGMA if self.mechanism == "ddgauss" else 0.0
        if not low <= sigma <= MAX_SIGMA or sigma == 0.0:
            raise ParameterError(
                f"per-client noise of {sigma:.4g} integer units is outside [{low}, "
                f"{MAX_SIGMA:g}] for {self.mechanism}: "
                + (
                    "raise the scale (each client's noise must span at least half a grid step)"
                    if sigma < max(low, 1e-300)
                    else "lower the scale (beyond 2^14 units the rounding error is already "
                    "below 1e-9 of the noise variance)"
                )
            )
        set_(self, "client_sigma", sigma)
        set_(
            self,
            "rounding_threshold",
            rounded_norm_bound(self.l2_clip * self.scale, self.padded_dim, self.beta),
        )
        log2p = _log2_wrap(
            self.mechanism,
            self.modulus_bits,
            n,
            self.padded_dim,
            self.l2_clip * self.scale,
            sigma,
        )
        set_(self, "log2_wrap_probability", log2p)
        if log2p > -self.wrap_bits:
            need = _smallest_bits(
                self.mechanism,
                n,
                self.padded_dim,
                self.l2_clip * self.scale,
                sigma,
                self.wrap_bits,
            )
            fix = f"use modulus_bits >= {need}" if need is not None else "lower the scale"
            raise ParameterError(
                f"the sum of {n} vectors wraps modulo 2^{self.modulus_bits} with probability "
                f"up to 2^{log2p:.1f}, above the allowed 2^-{self.wrap_bits}: {fix}, or "
                "lower the scale (DistributedDpConfig.create chooses either)"
            )

    # --- construction --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        mechanism: Mechanism,
        *,
        dim: int,
        l2_clip: float,
        noise_stddev: float,
        n_clients: int,
        min_survivors: int | None = None,
        corrupt_count: int = 0,
        modulus_bits: int | None = None,
        scale: float | None = None,
        beta: float = DEFAULT_BETA,
        wrap_bits: int = WRAP_BITS,
        neighbouring: Neighbouring = "zero_out",
    ) -> DistributedDpConfig:
        """Choose the modulus for a given scale, or the largest scale for a given modulus.

        Parameters
        ----------
        mechanism, dim, l2_clip, noise_stddev, n_clients, corrupt_count, beta, wrap_bits,
        neighbouring
            As for the class.
        min_survivors : int, optional
            Defaults to ``n_clients`` (no dropout tolerated).
        modulus_bits : int, optional
            Given alone: the largest scale meeting the wrap bound is chosen (at most the one
            giving per-client noise of 2^14 integer units).
        scale : float, optional
            Given alone: the smallest ``b`` meeting the wrap bound is chosen. Give both to
            have them checked.

        Raises
        ------
        ParameterError
            If no configuration meets the bounds; the message says what to change.
        """
        m = n_clients if min_survivors is None else min_survivors

        def build(s: float, bits: int) -> DistributedDpConfig:
            return cls(
                mechanism=mechanism,
                dim=dim,
                l2_clip=l2_clip,
                noise_stddev=noise_stddev,
                scale=s,
                modulus_bits=bits,
                n_clients=n_clients,
                min_survivors=m,
                corrupt_count=corrupt_count,
                beta=beta,
                wrap_bits=wrap_bits,
                neighbouring=neighbouring,
            )

        if scale is None:
            if modulus_bits is None:
                raise ParameterError("give scale, modulus_bits, or both")
            honest = _int("min_survivors", m, 1) - _int("corrupt_count", corrupt_count, 0)
            return _largest_scale(build, mechanism, modulus_bits, noise_stddev, honest)
        if modulus_bits is not None:
            return build(scale, modulus_bits)
        probe = build(scale, 64)  # refuses what no modulus can hold
        bits = _smallest_bits(
            probe.mechanism,
            probe.n_clients,
            probe.padded_dim,
            probe.l2_clip * probe.scale,
            probe.client_sigma,
            probe.wrap_bits,
        )
        return build(scale, 64 if bits is None else bits)

    # --- derived values ------------------------------------------------------------------

    @property
    def l2_sensitivity(self) -> float:
        """L2 norm bound of the change of the sum's input, integer units."""
        base = math.sqrt(self.rounding_threshold)
        return 2.0 * base if self.neighbouring == "replace" else base

    @property
    def l1_sensitivity(self) -> float:
        """L1 bound, integer units: an integer vector with ``||v||^2 <= N`` has
        ``||v||_1 <= min(N, sqrt(d' N))`` (``|v_k| <= v_k^2``; Cauchy-Schwarz)."""
        n = float(self.rounding_threshold)
        base = min(n, math.sqrt(self.padded_dim * n))
        return 2.0 * base if self.neighbouring == "replace" else base

    @property
    def rounding_attempts(self) -> int:
        """Most conditional-rounding attempts a client makes (failure <= 2^-128)."""
        return max_attempts(self.beta)

    @property
    def mask(self) -> int:
        """``2^modulus_bits - 1``."""
        return (1 << self.modulus_bits) - 1

    @property
    def sampler(self) -> DiscreteGaussianSampler | SkellamSampler:
        """The per-client noise sampler (its table is built on first use and cached)."""
        if self.mechanism == "ddgauss":
            return DiscreteGaussianSampler(self.client_sigma)
        return SkellamSampler(self.client_sigma**2 / 2.0)

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the canonical parameter encoding (clients and server must agree)."""
        h = hashlib.sha256(b"securecomp/dp/config/v1")
        h.update(self.mechanism.encode() + b"\x00" + self.neighbouring.encode() + b"\x00")
        h.update(
            struct.pack(
                ">QQQQQQdddd",
                self.dim,
                self.modulus_bits,
                self.n_clients,
                self.min_survivors,
                self.corrupt_count,
                self.wrap_bits,
                self.l2_clip,
                self.noise_stddev,
                self.scale,
                self.beta,
            )
        )
        return h.digest()

    def rotation(
        self, public_seed: bytes, *, session: bytes | str, round: int
    ) -> RandomizedHadamard:
        """The round's rotation (see `RandomizedHadamard.for_round`)."""
        return RandomizedHadamard.for_round(self.dim, public_seed, session=session, round=round)

    # --- privacy -------------------------------------------------------------------------

    def rdp_bound(self) -> RdpBound:
        """Renyi-DP bound of one release, from the mechanism's paper."""
        if self.mechanism == "ddgauss":
            return ddgauss_rdp_bound(
                sigma=self.client_sigma,
                n_honest=self.honest_clients,
                l2_sensitivity=self.l2_sensitivity,
                l1_sensitivity=self.l1_sensitivity,
                dim=self.padded_dim,
            )
        return skellam_rdp_bound(
            variance=self.honest_clients * self.client_sigma**2,
            l2_sensitivity=self.l2_sensitivity,
            l1_sensitivity=self.l1_sensitivity,
        )

    def privacy_event(self) -> PrivacyEvent:
        """One release: its Renyi bound, its distance from the ideal mechanism and the
        wrap-around probability.

        The distance covers the samplers' truncation (all ``n_clients * d'`` noise draws)
        and a client giving up conditional rounding (at most 2^-128 each), the two ways the
        implementation departs from the mechanism the bound is about.
        """
        per_draw = self.sampler.tv_bound
        departure = self.n_clients * (self.padded_dim * per_draw + 2.0**-128)
        return PrivacyEvent(
            bound=self.rdp_bound(),
            sampler_tv=min(0.5, departure),
            wrap_probability=2.0**self.log2_wrap_probability,
        )

    def epsilon(self, rounds: int, delta: float) -> PrivacySpent:
        """``(epsilon, delta)`` after ``rounds`` releases with these parameters."""
        return PrivacyAccountant().compose(self.privacy_event(), rounds).get_epsilon(delta)

    # --- accuracy ------------------------------------------------------------------------

    def error_bound(self, log2_failure: float = 40.0, n_summands: int | None = None) -> float:
        """L2 bound on ``decoded sum - sum of clipped inputs``, in the inputs' units.

        Holds with probability at least ``1 - 2^-log2_failure`` (given no wrap-around)
        for a sum of ``n_summands`` (default ``n_clients``) honestly encoded vectors:
        rounding contributes less than ``sqrt(d')`` per vector, the noise is bounded with
        `securecomp.dp.tails` (Laurent-Massart for the discrete Gaussian, a coordinate bound
        and Bernstein for Skellam). The inverse rotation is orthogonal and dropping the
        padding only shortens the error.
        """
        n = self.n_clients if n_summands is None else _int("n_summands", n_summands, 1)
        f = float(log2_failure)
        d = self.padded_dim
        rounding = n * math.sqrt(d)
        if self.mechanism == "ddgauss":
            noise = subgaussian_norm_bound(n * self.client_sigma**2, d, f)
        else:
            noise = skellam_norm_bound(n * self.client_sigma**2 / 2.0, d, f)
        return (rounding + noise) / self.scale


def _largest_scale(
    build: Callable[[float, int], DistributedDpConfig],
    mechanism: str,
    modulus_bits: int,
    noise_stddev: float,
    honest: int,
) -> DistributedDpConfig:
    """The valid configuration with the largest scale at ``modulus_bits`` (bisection on
    log2 scale: the wrap-around bound grows with the scale)."""

    def attempt(scale: float) -> DistributedDpConfig | None:
        try:
            return build(scale, modulus_bits)
        except ParameterError:
            return None

    sigma = _positive("noise_stddev", noise_stddev)
    if honest < 1:
        raise ParameterError("min_survivors must exceed corrupt_count")
    root = math.sqrt(honest) / sigma
    top = MAX_SIGMA * root
    low = (MIN_SIGMA if mechanism == "ddgauss" else 2.0**-30) * root
    best = attempt(top)
    if best is not None:
        return best
    best = attempt(low)
    if best is None:
        build(low, modulus_bits)  # raises the specific reason (e.g. the wrap-around bound)
        raise ParameterError("no scale works")  # pragma: no cover - build raised
    a, b = math.log2(low), math.log2(top)
    for _ in range(60):
        mid = 0.5 * (a + b)
        found = attempt(2.0**mid)
        if found is not None:
            a, best = mid, found
        else:
            b = mid
    return best
