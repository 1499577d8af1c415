"""CKKS ciphertexts <-> additive shares over Z_2^64: the two roles, without I/O.

Roles: the **evaluator** holds a CKKS tensor (public context only: it computed on the key
holder's data with its own private operands); the **key holder** holds the secret context.

CKKS -> shares (`mask_ckks`, then `unmask_ckks`)
------------------------------------------------
1. The evaluator sizes the flooding and the mask from public data
   (`securecomp.hybrid.budget.ckks_flooding`: the value bound ``B``, the error bound ``t``
   of its computation, the number of ciphertexts and of conversions under the key).
2. It draws the mask ``M = k 2^(sigma + b - 52)``, ``k`` uniform in ``[-2^52, 2^52]``
   (uniform on the finest float64 grid at magnitude ``2^(sigma + b)``), and discrete
   Gaussian noise of parameter ``sigma_n`` for the real and imaginary parts of every slot
   (`securecomp.he.ckks.gaussian`), adds a fresh encryption of zero, the mask and the
   noise (`securecomp.hybrid.flood`), and sends the result. Its share is
   ``-round(M 2^f) mod 2^64``.
3. The key holder decrypts ``z = y + M + noise + error`` and takes ``round(z 2^f) mod 2^64``.

Parameters (defaults): mask over ``[-2^(sigma+b), 2^(sigma+b)]`` with ``sigma = 40`` and
``2^b >= B + t + z sigma_n``: statistical distance ``2^-sigma`` between the key holder's
views of any two admissible values; flooding ``sigma_n = t sqrt(q N C / 2) 2^(sigma/2)``
(KL divergence ``2^-sigma`` over all conversions); modulus: ``scale + sigma + b + 3`` bits
at the ciphertext's level (`plan_ckks_conversion` plans the chain); precision:
``t + z sigma_n + 2^(sigma + b - 49) + 2^-f`` (float64 decoding of a ``2^(sigma+b)``
magnitude dominates at sensible scales).

Shares -> CKKS (`reshare_mask`, `reshare_open`, `encrypt_masked`, `unmask_encrypted`)
-----------------------------------------------------------------------------------
A sum of two Z_2^64 shares has an unknown wrap count, so neither party may encrypt its
share as it is. Bounded re-sharing first: the evaluator draws ``r`` uniform in
``[-2^(beta+sigma), 2^(beta+sigma)]`` for ``|X| <= 2^beta`` (``X = round(x 2^f)``) and
sends ``x_E + r mod 2^64``; the key holder adds its share and takes the centered lift,
which is exactly the integer ``X + r`` because ``|X + r| < 2^62`` (checked from the public
bound: ``beta + 1 + sigma <= 62``). Over the integers ``x = ((X + r) - r) 2^-f`` with both
terms bounded: the key holder encrypts ``(X + r) 2^-f``, the evaluator adds ``-r 2^-f`` as a
plaintext. Precision: about ``2^(beta + sigma - f - 49)``
(`securecomp.hybrid.budget.reshare_precision`: float64 encoding of the masked magnitude).
The key holder learns ``X + r``: statistical distance ``2^-sigma`` between any two inputs;
the evaluator learns a ciphertext. The float64 error of the result depends on ``X + r``
(known to the key holder) and on the evaluator's *ephemeral* mask ``r``, not on any private
operand; if the ciphertext later comes back to the key holder and the value is revealed,
that error can tell the key holder bits of ``x`` below the stated precision, nothing else.
Flooding (`error_bound` of a later `mask_ckks`) is for the error the evaluator's private
operands put in the ciphertext.

Threat model: semi-honest key holder and evaluator; the key holder's view is statistically
independent of the input (masks) and of the evaluator's operands (flooding); the evaluator
sees only ciphertexts (IND-CPA under RLWE). The error bound must come from the evaluator's
own plan of its computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.crypto import AesCtrPrg
from securecomp.errors import EncodingOverflowError, ParameterError
from securecomp.he.ckks import ELEMENT, CKKSBackend, CKKSContext
from securecomp.he.ckks.gaussian import DiscreteGaussian
from securecomp.he.ckks.layouts import (
    COLUMN,
    LAYOUTS,
    VECTOR,
    element_operands,
    slot_operands,
)
from securecomp.he.ckks.payload import payload_of
from securecomp.hybrid.budget import (
    MARGIN_BITS,
    CKKSFlooding,
    check_sigma,
    ckks_budget_bits,
    ckks_flooding,
    ckks_mask_exponent,
)
from securecomp.hybrid.flood import mask_and_flood
from securecomp.hybrid.ring import centered, float_to_ring, ints_to_ring
from securecomp.params import STATISTICAL_SECURITY_BITS
from securecomp.tensor import SecureTensor

__all__ = [
    "CKKSMasked",
    "ckks_backend",
    "encrypt_masked",
    "mask_ckks",
    "reshare_mask",
    "reshare_open",
    "unmask_ckks",
    "unmask_encrypted",
]

_MASK_SPAN = 1 << 52
_DEFAULT_LAYOUT = {0: ELEMENT, 1: VECTOR, 2: COLUMN}


def ckks_backend(tensor: SecureTensor) -> CKKSBackend:
    """The CKKS backend of ``tensor`` (`ParameterError` for any other tensor)."""
    if not isinstance(tensor, SecureTensor) or not isinstance(tensor.backend, CKKSBackend):
        raise ParameterError("expected a CKKS tensor (securecomp.he.ckks backend)")
    return tensor.backend


@dataclass(frozen=True)
class CKKSMasked:
    """The evaluator's output of `mask_ckks`.

    Attributes
    ----------
    tensor : SecureTensor
        Masked, flooded, re-randomized ciphertexts: what the key holder receives.
    share : ndarray of uint64
        The evaluator's share ``-round(M 2^f) mod 2^64`` (tensor shape).
    flooding : CKKSFlooding
        Noise, mask width, modulus budget and the resulting precision.
    """

    tensor: SecureTensor
    share: npt.NDArray[np.uint64]
    flooding: CKKSFlooding


def _operands(
    layout: str, shape: tuple[int, ...], values: npt.NDArray[np.float64], slots: int
) -> list[npt.NDArray[np.float64]]:
    """``values`` (of ``shape``) split into each ciphertext's slots, in payload order."""
    if layout == ELEMENT:
        ops: list[Any] = list(element_operands(shape, values, "conversion"))
    else:
        ops = slot_operands(layout, shape, values, slots, "conversion")
    return [np.atleast_1d(np.asarray(o, dtype=np.float64)) for o in ops]


def mask_ckks(
    tensor: SecureTensor,
    *,
    bound: float,
    error_bound: float,
    n_conversions: int,
    frac_bits: int = 16,
    sigma: int = STATISTICAL_SECURITY_BITS,
    prg: AesCtrPrg | None = None,
) -> CKKSMasked:
    """Evaluator, CKKS -> shares: mask, flood and re-randomize ``tensor`` (steps 1-2).

    Parameters
    ----------
    tensor : SecureTensor
        A CKKS tensor (any layout) whose values satisfy ``|y| <= bound``.
    bound : float
        Public bound on the values.
    error_bound : float
        Bound on each slot's decryption error, from the evaluator's plan.
    n_conversions : int
        Conversions planned under this key in total (the flooding budget is shared).
    frac_bits : int
        Fractional bits of the shares (the MPC session's).
    sigma : int
        Statistical hiding parameter (default 40).
    prg : AesCtrPrg, optional
        Randomness for mask and noise (default: fresh from the OS).

    Raises
    ------
    ParameterError
        If the chain leaves too little modulus at the tensor's level for the mask.
    """
    backend = ckks_backend(tensor)
    p = payload_of(tensor)
    params = backend.params
    flood = ckks_flooding(
        params, p.level, bound=bound, error_bound=error_bound, n_ciphertexts=len(p.cts),
        n_conversions=n_conversions, frac_bits=frac_bits, sigma=sigma,
    )
    rng = prg if prg is not None else AesCtrPrg.from_random()
    exp = ckks_mask_exponent(flood.mask_bits, sigma)
    k = rng.random_below(2 * _MASK_SPAN + 1, tensor.shape).view(np.int64) - _MASK_SPAN
    mask = np.ldexp(k.astype(np.float64), exp)  # exact: |k| <= 2^52
    slots = params.slot_count
    sampler = DiscreteGaussian(flood.noise_units)
    unit = math.ldexp(1.0, -params.scale_bits)
    masks = [m * p.gain for m in _operands(tensor.layout, tensor.shape, mask, slots)]
    noises: list[npt.NDArray[np.complex128]] = []
    for _ in p.cts:
        # Real and imaginary parts: the key holder can compute both from its secret key.
        g = sampler.sample(2 * slots, rng).astype(np.float64) * unit
        noises.append(((g[:slots] + 1j * g[slots:]) * p.gain).astype(np.complex128))
    cts = mask_and_flood(backend.kernel, p.cts, masks, noises)
    out = backend.wrap(cts, tensor.shape, tensor.layout, p.level, p.gain)
    # -round(M 2^f) = -k 2^(exp + f): exact integers, reduced modulo 2^64.
    shift = exp + frac_bits
    ints = [-(v << shift) if shift >= 0 else -round(v / (1 << -shift)) for v in k.ravel().tolist()]
    return CKKSMasked(out, ints_to_ring(ints, tensor.shape), flood)


def unmask_ckks(
    masked: SecureTensor, key: CKKSContext, *, frac_bits: int = 16
) -> npt.NDArray[np.uint64]:
    """Key holder, CKKS -> shares (step 3): ``round(z 2^f) mod 2^64`` of the decryption."""
    backend = ckks_backend(masked)
    return float_to_ring(backend.decrypt(masked, key), frac_bits)


# --- shares -> CKKS ------------------------------------------------------------------------


def reshare_mask(
    share: npt.NDArray[np.uint64],
    beta: int,
    *,
    sigma: int = STATISTICAL_SECURITY_BITS,
    prg: AesCtrPrg | None = None,
) -> tuple[npt.NDArray[np.uint64], list[int]]:
    """Evaluator, bounded re-sharing: ``(share + r mod 2^64, r)`` for ``|X| <= 2^beta``.

    ``r`` is uniform over the integers in ``[-2^(beta+sigma), 2^(beta+sigma)]``.

    Raises
    ------
    EncodingOverflowError
        If ``beta + 1 + sigma > 62`` (``X + r`` could wrap in Z_2^64).
    """
    s = check_sigma(sigma)
    if beta + 1 + s > 62:
        raise EncodingOverflowError(
            f"a {s}-bit mask over {beta}-bit values needs {beta + 1 + s} bits, more than the "
            "62 Z_2^64 can open without wrapping; declare a tighter bound or use fewer "
            "fractional bits"
        )
    rng = prg if prg is not None else AesCtrPrg.from_random()
    half = 1 << (beta + s)
    r = rng.random_below(2 * half + 1, share.shape).view(np.int64) - np.int64(half)
    return np.add(share, r.view(np.uint64)), [int(v) for v in r.ravel().tolist()]


def reshare_open(
    share: npt.NDArray[np.uint64], message: npt.NDArray[np.uint64]
) -> npt.NDArray[np.int64]:
    """Key holder: the integer ``X + r`` (centered lift of ``share + message``)."""
    return centered(np.add(share, message))


def _encrypt_big(
    backend: CKKSBackend, values: npt.NDArray[np.float64], layout: str | None
) -> SecureTensor:
    """Encrypt values beyond the last prime's capacity (checked against the top level)."""
    params = backend.params
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    need = params.scale_bits + max(0, math.ceil(math.log2(peak + 1.0))) + MARGIN_BITS
    if need > ckks_budget_bits(params, 0):
        raise EncodingOverflowError(
            f"masked values of magnitude {peak:.3g} need {need} bits of modulus; the chain "
            f"{list(params.coeff_mod_bit_sizes)} has {ckks_budget_bits(params, 0):.1f}"
        )
    chosen = layout if layout is not None else _DEFAULT_LAYOUT.get(values.ndim)
    if chosen not in LAYOUTS:
        raise ParameterError(f"cannot place a {values.ndim}-d tensor in CKKS layout {chosen!r}")
    ops = _operands(chosen, values.shape, values, params.slot_count)
    cts = tuple(backend.kernel.encrypt(o.tolist()) for o in ops)
    return backend.wrap(cts, values.shape, chosen, 0, 1.0)


def encrypt_masked(
    backend: CKKSBackend,
    masked: npt.NDArray[np.int64],
    *,
    frac_bits: int = 16,
    layout: str | None = None,
) -> SecureTensor:
    """Key holder: a fresh encryption of ``(X + r) 2^-f`` (sent to the evaluator)."""
    values = np.ldexp(np.asarray(masked, dtype=np.float64), -frac_bits)
    return _encrypt_big(backend, values, layout)


def unmask_encrypted(
    tensor: SecureTensor, r: list[int], *, frac_bits: int = 16
) -> SecureTensor:
    """Evaluator: ``Enc((X + r) 2^-f) - r 2^-f = Enc(x)`` (plaintext subtraction)."""
    backend = ckks_backend(tensor)
    p = payload_of(tensor)
    values = np.ldexp(np.array(r, dtype=np.float64).reshape(tensor.shape), -frac_bits)
    ops = _operands(tensor.layout, tensor.shape, values, backend.params.slot_count)
    cts = tuple(backend.kernel.sub_plain(c, o, p.gain) for c, o in zip(p.cts, ops, strict=True))
    return backend.wrap(cts, tensor.shape, tensor.layout, p.level, p.gain)
