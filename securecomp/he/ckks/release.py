"""How decrypted CKKS values may leave the key holder: noise flooding, or a labelled heuristic.

Why
---
A CKKS decryption returns ``m + e``, and the error ``e`` is a known linear function of the
secret key: Li and Micciancio ("On the security of homomorphic encryption on approximate
numbers", EUROCRYPT 2021) recover the key from a few decryptions handed to the adversary
(IND-CPA-D attacks). Decryption is therefore split into two paths:

* **local** (`CKKSBackend.decrypt`, ``tensor.decrypt(key)``): the key holder reads the
  values; they must not be passed on;
* **release** (:func:`release`): noise flooding sized from a worst-case error bound, the
  number of releases and the statistical security parameter ``s`` (Li, Micciancio,
  Schultz, Sorrell, "Securing approximate homomorphic encryption using differential
  privacy", CRYPTO 2022). Without a bound it refuses (`ReleaseError`).

Sizing (what this module implements)
------------------------------------
Let every released value carry a decryption error of magnitude at most ``t`` (a worst-case
bound in the canonical embedding, e.g. the ``worst`` model of
`securecomp.params.CKKSNoiseModel`; see :func:`planned_error_bound`). The key holder rounds
``m + e`` to integer units of ``2^-scale_bits`` and adds discrete Gaussian noise of
parameter σ (`securecomp.he.ckks.gaussian`, randomness from `AesCtrPrg`). Against a view
that does not depend on the errors (the exact values with the same noise), a Gaussian
shifted by ``δ`` has Kullback-Leibler divergence ``δ²/(2σ²)``, additive over independent
values: ``q`` releases of ``k`` values each give at most ``q k t² / (2σ²)``. LMSS 2022 show,
through Rényi/KL arguments and the bit-security framework of Micciancio and Walter
(EUROCRYPT 2018), that a divergence of ``2^-s`` preserves ``s`` bits of security; hence

    σ = t · sqrt(q · k / 2) · 2^(s/2),

i.e. flooding costs ``s/2`` bits (plus ``log2 sqrt(qk/2)``) above the error bound, instead
of the ``s`` bits of a statistical-distance argument. At a 2^40 scale with the worst-case
bound of a fresh ciphertext (about 2^-15 at N = 8192) and ``s = 40``, nothing of the
fraction survives: the :class:`Release` report says how many bits do.

Accounting: each key context accumulates the divergence of its releases, each charged its
nominal share ``2^-s / n_releases``; a release that would take the total past ``2^-s`` is
refused before anything is sampled. Declare the true total ``n_releases`` up front. The
ledger lives in the `CKKSContext` object: a secret context reloaded from bytes starts a
new ledger, so keep one context object per key for the key's lifetime.

Threat model: the key holder is honest; recipients of released values may be malicious
and may choose the computations (IND-CPA-D). Nothing here protects the *values* (that is
differential privacy's job); it protects the *key*. The bound ``t`` must come from the
key holder's own plan, never from the party that computed the ciphertext.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.crypto import AesCtrPrg
from securecomp.errors import (
    EncodingOverflowError,
    ParameterError,
    ReleaseError,
)
from securecomp.he.ckks.backend import CKKSBackend
from securecomp.he.ckks.context import CKKSContext
from securecomp.he.ckks.gaussian import MAX_SIGMA, DiscreteGaussian
from securecomp.params import (
    STATISTICAL_SECURITY_BITS,
    CKKSNoiseModel,
    CKKSParameters,
    ErrorBound,
)
from securecomp.tensor import SecureTensor

__all__ = [
    "Release",
    "flooding_std",
    "planned_error_bound",
    "release",
    "release_rounded_heuristic",
]

#: Fewer fractional bits than this left after flooding earns a warning in the report.
LOW_PRECISION_BITS = 8


@dataclass(frozen=True)
class Release:
    """Values released through noise flooding, with what they cost.

    Invariant: ``|values - exact| <= precision`` for each value, except with probability
    ``2^-s`` per value (Gaussian tail), where ``exact`` is the computation on the plaintexts.

    Attributes
    ----------
    values : ndarray
        The flooded values (shape of the tensor); safe to hand to others.
    noise_std : float
        σ of the flooding noise, in value units.
    error_bound : float
        The worst-case decryption error bound ``t`` the noise was sized from.
    s, n_releases, n_values : int
        Statistical security, planned releases under this key, values in this release.
    flooding_bits : float
        ``log2(noise_std / error_bound)``: precision lost to flooding above the bound.
    precision : float
        ``t + z σ`` with ``P(|N(0, σ²)| > z σ) = 2^-s``.
    precision_bits : float
        ``-log2(precision)``: fractional bits that survive (negative: none, and the
        integer part is blurred too).
    budget_used : float
        Fraction of this key's release budget (divergence ``2^-s``) spent so far.
    note : str
        Plain-language summary, including a warning when little precision is left.
    """

    values: NDArray[np.float64]
    noise_std: float
    error_bound: float
    s: int
    n_releases: int
    n_values: int
    flooding_bits: float
    precision: float
    precision_bits: float
    budget_used: float
    note: str
    path: str = "noise flooding (Li-Micciancio-Schultz-Sorrell 2022)"

    def __repr__(self) -> str:
        return (
            f"Release({self.n_values} values, noise σ={self.noise_std:.3g}, "
            f"precision ±{self.precision:.3g} ({self.precision_bits:.1f} fractional bits), "
            f"s={self.s}, {self.budget_used:.0%} of the key's budget used)"
        )


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def flooding_std(error_bound: float, *, s: int, n_releases: int, n_values: int) -> float:
    """``σ = t · sqrt(q k / 2) · 2^(s/2)``: the flooding noise for KL divergence ``2^-s``.

    Parameters
    ----------
    error_bound : float
        Worst-case bound ``t`` on each released value's decryption error.
    s : int
        Statistical security parameter (bits).
    n_releases : int
        Total releases planned under the key (``q``).
    n_values : int
        Values per release (``k``).
    """
    t = float(error_bound)
    if not math.isfinite(t) or t <= 0:
        raise ParameterError(f"error_bound must be a positive finite number, got {error_bound!r}")
    q = _positive_int(n_releases, "n_releases")
    k = _positive_int(n_values, "n_values")
    bits = _positive_int(s, "s")
    return t * math.sqrt(q * k / 2.0) * 2.0 ** (bits / 2.0)


def planned_error_bound(
    params: CKKSParameters,
    *,
    depth: int,
    input_bound: float,
    value_bound: float | None = None,
    summands: int = 1,
    rotations: int = 0,
) -> float:
    """Worst-case error of a planned computation, for :func:`release`.

    The computation is modelled as `securecomp.params.CKKSNoiseModel.product_tree` of
    ``depth`` levels on inputs ``|x| <= input_bound`` (worst-case, canonical embedding),
    then a sum of ``summands`` such results (errors add) and ``rotations`` slot rotations
    at the final level, each adding one key switch (e.g. ``ceil(log2 n)`` for a slot sum
    of ``n`` values, times the number of chunks).

    Returns
    -------
    float
        Bound on ``|decrypted - exact|`` per value (drift bias included).
    """
    model = CKKSNoiseModel(params)
    tree = model.product_tree(depth, input_bound, value_bound=value_bound)
    n_sum = _positive_int(summands, "summands")
    if isinstance(rotations, bool) or not isinstance(rotations, int) or rotations < 0:
        raise ParameterError(f"rotations must be a non-negative int, got {rotations!r}")
    # A rotation key-switches at scale Δ: the relinearization error of the model (computed
    # at scale Δ², in decoded units) times Δ.
    _, ks_worst = model._keyswitch(tree.level)
    return tree.worst_case() * n_sum + rotations * ks_worst * params.scale


def _bound_value(error_bound: Any) -> float:
    if error_bound is None:
        raise ReleaseError(
            "release refused: no error bound. Flooding must be sized from a worst-case bound "
            "on the decryption error; derive it from the plan (planned_error_bound(params, "
            "depth=..., input_bound=...), or a securecomp.params.CKKSNoiseModel ErrorBound) "
            "and pass error_bound=. To keep the values with the key holder use decrypt()"
        )
    if isinstance(error_bound, ErrorBound):
        return error_bound.worst_case()
    if isinstance(error_bound, bool) or not isinstance(error_bound, int | float):
        raise ParameterError(f"error_bound must be a float or an ErrorBound, got {error_bound!r}")
    t = float(error_bound)
    if not math.isfinite(t) or t <= 0:
        raise ReleaseError(f"release refused: error_bound must be positive and finite, got {t}")
    return t


def _note(precision_bits: float, flooding_bits: float, scale_bits: int, s: int) -> str:
    text = (
        f"flooding adds {flooding_bits:.1f} bits of noise above the error bound (s={s}); "
        f"{precision_bits:.1f} fractional bits survive at scale 2^{scale_bits}"
    )
    if precision_bits < LOW_PRECISION_BITS:
        text += (
            ". WARNING: little or no precision is left: plan a larger scale (a larger N "
            "allows longer primes), fewer releases or fewer values per release, or release "
            "aggregates of larger magnitude"
        )
    return text


def release(
    tensor: SecureTensor,
    key: CKKSContext,
    *,
    error_bound: float | ErrorBound | None = None,
    n_releases: int | None = None,
    s: int = STATISTICAL_SECURITY_BITS,
    prg: AesCtrPrg | None = None,
) -> Release:
    """Decrypt and release values to others, flooded with discrete Gaussian noise.

    Path: release (noise flooding), for values that leave the key holder. See the module
    docstring for the sizing, the accounting and the threat model.

    Parameters
    ----------
    tensor : SecureTensor
        A CKKS tensor under ``key``.
    key : CKKSContext
        The key holder's secret context (it also keeps the release accounting).
    error_bound : float or ErrorBound
        Worst-case bound on each value's decryption error, from the key holder's plan
        (an `ErrorBound` contributes its ``worst_case()``). Required.
    n_releases : int
        Total number of releases planned under this key. Required.
    s : int
        Statistical security parameter (default 40).
    prg : AesCtrPrg, optional
        Randomness for the noise (default: freshly seeded from the OS).

    Raises
    ------
    ReleaseError
        No bound, no declared number of releases, a bound too large to flood, or the
        key's release budget used up.
    KeyMismatchError
        ``key`` is not the secret context of the tensor.
    """
    t = _bound_value(error_bound)
    if n_releases is None:
        raise ReleaseError(
            "release refused: declare n_releases, the total number of releases planned under "
            "this key; the flooding noise grows with its square root"
        )
    q = _positive_int(n_releases, "n_releases")
    bits = _positive_int(s, "s")
    backend = tensor.backend
    if not isinstance(backend, CKKSBackend):
        raise ParameterError(f"release() takes CKKS tensors, got backend {backend.name!r}")
    values = backend.decrypt(tensor, key)  # checks the key (KeyMismatchError)
    k = values.size
    scale_bits = backend.params.scale_bits
    unit = math.ldexp(1.0, scale_bits)
    # In integer units the shift between the two worlds is t·2^scale plus one unit of the
    # rounding of m + e below.
    t_units = t * unit + 1.0
    target = flooding_std(t_units, s=bits, n_releases=q, n_values=k)
    if target > MAX_SIGMA:
        raise ReleaseError(
            f"release refused: the flooding noise would be σ = {target / unit:.3g} (values "
            "would be destroyed); lower n_releases or the values per release, or plan a "
            "computation with a smaller error bound"
        )
    sampler = DiscreteGaussian(target)
    scaled = values * unit
    if values.size and float(np.max(np.abs(scaled))) >= 2.0**62:
        raise EncodingOverflowError("released values exceed the integer range of the flooding")
    units = np.rint(scaled).astype(np.int64)
    # Charge the nominal share 2^-s / q (the divergence at the target σ; the sampler's σ is
    # a few percent larger), so that exactly n_releases releases fit in the budget.
    kl = k * t_units**2 / (2.0 * target**2)
    spent = key._spend_release(kl, 2.0**-bits)
    noise = sampler.sample(k, prg if prg is not None else AesCtrPrg.from_random())
    released = ((units.reshape(-1) + noise) / unit).reshape(values.shape)
    sigma = sampler.sigma / unit
    z = math.sqrt(2.0 * math.log(2.0) * (bits + 1))  # 2·exp(-z²/2) = 2^-s
    precision = t + z * sigma
    precision_bits = -math.log2(precision)
    flooding_bits = math.log2(sigma / t)
    return Release(
        values=released,
        noise_std=sigma,
        error_bound=t,
        s=bits,
        n_releases=q,
        n_values=k,
        flooding_bits=flooding_bits,
        precision=precision,
        precision_bits=precision_bits,
        budget_used=spent / 2.0**-bits,
        note=_note(precision_bits, flooding_bits, scale_bits, bits),
    )


def release_rounded_heuristic(
    tensor: SecureTensor, key: CKKSContext, *, bits: int
) -> NDArray[np.float64]:
    """HEURISTIC, no security proof: decrypt and round to multiples of ``2^-bits``.

    Path: heuristic release. Rounding removes the low-order bits of the decryption error,
    which is what the Li-Micciancio key-recovery attack reads, but nothing bounds what the
    remaining bits (or a value that straddles a rounding boundary) reveal about the key:
    Li and Micciancio (EUROCRYPT 2021) and LMSS (CRYPTO 2022) treat rounding as a
    heuristic, not an equivalent of noise flooding. Prefer :func:`release`; use this only
    where the recipient is trusted not to attack the key.
    """
    b = _positive_int(bits, "bits")
    values = tensor.backend.decrypt(tensor, key)
    step = math.ldexp(1.0, -b)
    return np.rint(values / step) * step
