"""CKKS ciphertexts <-> additive shares over Z_2^64: the two roles, without I/O.

Roles: the **evaluator** holds a CKKS tensor (public context only: it computed on the key
holder's data with its own private operands); the **key holder** holds the secret context.

CKKS -> shares (`mask_ckks`, then `unmask_ckks`)
------------------------------------------------
1. The evaluator sizes the flooding and the mask from public data
   (`securecomp.hybrid.budget.ckks_flooding`: the value bound ``B``, the error bound ``t``
   of its computation, the number of ciphertexts and of conversions under the key).
2. For every slot ``j`` of every ciphertext (the unused ones too) it draws the mask
   ``M_j = K_j 2^-g``, ``K_j`` uniform in ``[-2^(sigma + b + g), 2^(sigma + b + g))`` with
   ``g = scale_bits``, encodes it *exactly* (`securecomp.hybrid.embedding`: the integer
   polynomial ``round(Delta sigma^-1(M))``, no float64), adds a discrete Gaussian of
   parameter ``sigma_c`` to every coefficient (`securecomp.he.ckks.gaussian`), and adds the
   polynomial to the ciphertext together with a fresh encryption of zero
   (`securecomp.hybrid.flood`); it sends the result. Its share is
   ``-round(M 2^f) mod 2^64`` (exact integers).
3. The key holder decrypts, lifts the plaintext to integer coefficients and decodes it
   exactly (`securecomp.hybrid.rns`, `securecomp.hybrid.embedding`):
   ``z = y + error + M + noise``, and takes ``round(z 2^f) mod 2^64``.

Hiding (the argument is in `securecomp.hybrid.budget`): a grid mask alone would not do. A
mask on the multiples of ``2^e`` over a real ``y`` leaves ``z mod 2^e = (y + noise) mod
2^e``, which shows the low bits of ``y`` unless the noise is wide against ``2^e``. A mask
on the float64 grid (``e = sigma + b - 52``) encoded by SEAL in float64 is in that
situation at usual error bounds, and what then hides the low bits is SEAL's rounding
error, a deterministic function of the mask, not anything a proof can use (the tests show
the leak once that rounding is taken away). Here the key holder's view is the integer
polynomial ``m_y + P_M + P_n``: the real part of ``y + error`` rounded to the grid
``2^-scale`` is absorbed by the mask (statistical distance ``2^-sigma`` per slot between
any two admissible values), and what is left, the grid residual below ``2^-(scale+1)``,
the imaginary error and the coefficient rounding, is an integer shift of the Gaussian,
covered by flooding with KL divergence at most ``2^-sigma`` over all conversions (which
also floods the real error a later revealed value carries). Modulus:
``scale + sigma + b + 3`` bits at the ciphertext's level (`plan_ckks_conversion` plans
the chain). Precision: ``t + z sigma_n + N / Delta + 2^-f``, with no float64 term: at the
defaults the flooding tail ``z sigma_n`` dominates.

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

Threat model: semi-honest key holder and evaluator; the key holder's view is
statistically close to independent of the input (masks) and of the evaluator's operands
(flooding); the evaluator sees only ciphertexts (IND-CPA under RLWE). The error bound
must come from the evaluator's own plan of its computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import tenseal.sealapi as sealapi

from securecomp.crypto import AesCtrPrg
from securecomp.errors import EncodingOverflowError, KeyMismatchError, ParameterError
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
    ckks_budget_bits,
    ckks_flooding,
)
from securecomp.hybrid.embedding import decode_real, encode_real
from securecomp.hybrid.flood import ciphertext_scales, mask_and_flood
from securecomp.hybrid.ring import centered, ints_to_ring
from securecomp.hybrid.rns import from_ntt_words, plaintext_words, primes_at
from securecomp.params import STATISTICAL_SECURITY_BITS, check_statistical_security
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


def _slot_map(tensor: SecureTensor, slots: int) -> list[list[int]]:
    """For each ciphertext, the flat tensor indices its first slots hold (payload order)."""
    flat = np.arange(tensor.size, dtype=np.float64).reshape(tensor.shape)  # exact < 2^53
    ops = _operands(tensor.layout, tensor.shape, flat, slots)
    return [o.astype(np.int64).tolist() for o in ops]


def _uniform_signed(rng: AesCtrPrg, bits: int, count: int) -> npt.NDArray[Any]:
    """``count`` integers uniform in ``[-2^bits, 2^bits)`` (Python ints, from ``rng``)."""
    words = (bits + 1 + 63) // 64
    raw = rng.random_uint64((count, words)).astype(object)
    acc = raw[:, 0]
    for w in range(1, words):
        acc = acc | (raw[:, w] << (64 * w))
    return (acc & ((1 << (bits + 1)) - 1)) - (1 << bits)


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
        A CKKS tensor (any layout) whose slots all satisfy ``|y| <= bound``.
    bound : float
        Public bound on the values.
    error_bound : float
        Bound on each slot's decryption error, from the evaluator's plan.
    n_conversions : int
        Conversions planned under this key in total (the flooding budget is shared).
    frac_bits : int
        Fractional bits of the shares (the MPC session's).
    sigma : int
        Statistical hiding parameter (default 40; smaller only inside
        ``insecure_test_parameters()``).
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
        n_conversions=n_conversions, frac_bits=frac_bits, sigma=sigma, gain=p.gain,
    )
    rng = prg if prg is not None else AesCtrPrg.from_random()
    sampler = DiscreteGaussian(flood.noise_units)
    degree, grid = params.poly_modulus_degree, flood.grid_bits
    width = check_statistical_security(sigma, "sigma") + flood.mask_bits + grid
    ints = [0] * tensor.size
    polys = []
    for scale, places in zip(
        ciphertext_scales(p.cts), _slot_map(tensor, params.slot_count), strict=True
    ):
        k = _uniform_signed(rng, width, params.slot_count)
        delta = Fraction(scale) * Fraction(p.gain)
        noise = sampler.sample(degree, rng).astype(object)
        polys.append(encode_real(k, grid, delta, degree) + noise)
        # -round(M 2^f) = -round(K 2^(f - g)): exact integer arithmetic.
        shift = grid - frac_bits
        for flat, kj in zip(places, k[: len(places)].tolist(), strict=True):
            ints[flat] = -((kj + (1 << (shift - 1))) >> shift) if shift > 0 else -(kj << -shift)
    cts = mask_and_flood(backend.kernel, p.cts, polys)
    out = backend.wrap(cts, tensor.shape, tensor.layout, p.level, p.gain)
    return CKKSMasked(out, ints_to_ring(ints, tensor.shape), flood)


def unmask_ckks(
    masked: SecureTensor, key: CKKSContext, *, frac_bits: int = 16
) -> npt.NDArray[np.uint64]:
    """Key holder, CKKS -> shares (step 3): ``round(z 2^f) mod 2^64`` of the exact decryption.

    Raises
    ------
    KeyMismatchError
        If ``key`` is not the secret context the tensor was encrypted under.
    EncodingOverflowError
        If a decrypted plaintext fills its modulus (a corrupted ciphertext or an overflowed
        mask): nothing is shared.
    """
    backend = ckks_backend(masked)
    if not isinstance(key, CKKSContext) or key.fingerprint != backend.fingerprint:
        raise KeyMismatchError("unmask_ckks needs the secret CKKS context of the tensor's key")
    if not key.is_private:
        raise KeyMismatchError("this CKKS context is public: only the key holder can unmask")
    p = payload_of(masked)
    seal = key.tenseal_context.data.seal_context()
    decryptor = sealapi.Decryptor(seal, key.secret_key())
    ints = [0] * masked.size
    for ct, places in zip(p.cts, _slot_map(masked, backend.params.slot_count), strict=True):
        raw = ct.ciphertext()[0]
        plain = sealapi.Plaintext()
        decryptor.decrypt(raw, plain)
        primes = primes_at(seal, raw.parms_id())
        coeffs = from_ntt_words(plaintext_words(plain), primes)
        # A masked plaintext stays below Q/4 (MARGIN_BITS); the N coefficients of a corrupted
        # one are uniform in (-Q/2, Q/2], all below 3Q/8 with probability (3/4)^N.
        if 8 * max(abs(int(v)) for v in coeffs) > 3 * math.prod(primes):
            raise EncodingOverflowError(
                "a decrypted plaintext fills its modulus: the ciphertext is corrupted or the "
                "mask overflowed its budget; nothing was shared"
            )
        delta = Fraction(float(raw.scale)) * Fraction(p.gain)
        for flat, v in zip(places, decode_real(coeffs, delta, frac_bits, len(places)), strict=True):
            ints[flat] = v
    return ints_to_ring(ints, masked.shape)


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
    s = check_statistical_security(sigma, "sigma")
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
