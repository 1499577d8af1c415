"""Paillier ciphertexts <-> additive shares over Z_2^64: the two roles, without I/O.

Roles as in `securecomp.hybrid.ckks`: the **evaluator** holds an (unpacked) Paillier
tensor and the public key, the **key holder** the secret key.

Paillier -> shares (`mask_paillier`, then `unmask_paillier`)
------------------------------------------------------------
The tensor's public metadata bounds its integers, ``|X| < 2^beta`` at scale ``s``
(`securecomp.he.paillier.layout`). The evaluator adds ``r`` uniform over the integers in
``[0, 2^(beta + 1 + sigma))`` under encryption and re-randomizes (a fresh ``r^n``); the key
holder decrypts the exact integer ``X + r`` (no wrap: ``beta + 2 + sigma < bits(n) - 1`` is
checked). Statistical distance between the key holder's views of any two admissible
inputs: below ``2^-sigma`` (sigma = 40 by default). The integers are then rescaled to the
MPC's ``f`` fractional bits: multiplied by ``2^(f - s)`` if ``s <= f``; otherwise each side
floors its own term, ``floor((X + r) / 2^(s-f)) - floor(r / 2^(s-f))``, which is
``floor(X / 2^(s-f))`` or one more: one ulp of error and, computed over the integers, no
large error (unlike truncation of Z_2^64 shares). Modulus budget:
``beta + 2 + sigma`` bits below ``n / 2``. Precision: exact (one ulp if ``s > f``).

Shares -> Paillier (`encrypt_masked`, `unmask_encrypted`)
---------------------------------------------------------
After the bounded re-sharing of `securecomp.hybrid.ckks.reshare_mask` (the key holder
holds the integer ``X + r``, the evaluator ``-r``, with ``|r| <= 2^(beta + sigma)``), the
key holder encrypts ``X + r`` (it fits: Paillier plaintexts are integers modulo ``n``) and
the evaluator adds ``-r`` homomorphically: ``Enc(X)`` at scale ``f`` with the bound
``|X| < 2^beta``, exact.

Threat model: semi-honest parties; the key holder sees statistically masked integers, the
evaluator only ciphertexts (IND-CPA under decisional composite residuosity). No proofs of
plaintext knowledge: a malicious party can shift the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2
import numpy as np
import numpy.typing as npt

from securecomp.crypto import AesCtrPrg
from securecomp.errors import EncodingOverflowError, ParameterError, UnsupportedOperationError
from securecomp.he.paillier import UNPACKED, PaillierBackend, PaillierSecretKey
from securecomp.he.paillier.arith import encrypt_raw, rerandomize
from securecomp.hybrid.budget import integer_mask_bits
from securecomp.params import STATISTICAL_SECURITY_BITS
from securecomp.tensor import SecureTensor

__all__ = [
    "PaillierMasked",
    "encrypt_masked",
    "mask_paillier",
    "paillier_backend",
    "rescale_ints",
    "unmask_encrypted",
    "unmask_paillier",
]


def paillier_backend(tensor: SecureTensor) -> PaillierBackend:
    """The backend of an unpacked Paillier tensor (refuses anything else)."""
    if not isinstance(tensor, SecureTensor) or not isinstance(tensor.backend, PaillierBackend):
        raise ParameterError("expected a Paillier tensor (securecomp.he.paillier backend)")
    if tensor.layout != UNPACKED:
        raise UnsupportedOperationError(
            "conversion takes unpacked Paillier tensors (one value per ciphertext); packed "
            "slots cannot be masked one by one: encrypt with layout='unpacked'"
        )
    return tensor.backend


def _objects(values: list[object], shape: tuple[int, ...]) -> npt.NDArray[np.object_]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    out = out.reshape(shape)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class PaillierMasked:
    """The evaluator's output of `mask_paillier`.

    Attributes
    ----------
    tensor : SecureTensor
        ``Enc(X + r)``, re-randomized: what the key holder receives.
    masks : list of int
        The evaluator's ``r`` (C order), its share being ``-r``.
    scale : int
        The fixed-point scale ``s`` of ``X``.
    """

    tensor: SecureTensor
    masks: list[int]
    scale: int


def mask_paillier(
    tensor: SecureTensor,
    *,
    sigma: int = STATISTICAL_SECURITY_BITS,
    prg: AesCtrPrg | None = None,
) -> PaillierMasked:
    """Evaluator, Paillier -> shares: ``Enc(X + r)`` with an integer mask, re-randomized.

    Raises
    ------
    EncodingOverflowError
        If ``X + r`` could reach ``n / 2`` (the key is too small for the mask).
    UnsupportedOperationError
        For a packed tensor.
    """
    backend = paillier_backend(tensor)
    beta, scale = int(tensor.meta["bound_bits"]), int(tensor.meta["scale"])
    width = integer_mask_bits(beta, sigma)
    if width + 1 >= backend.key.bits - 1:
        raise EncodingOverflowError(
            f"masking {beta}-bit values with {sigma} bits of slack needs {width + 1} bits "
            f"below n/2, and the key has {backend.key.bits - 2}; use a larger key"
        )
    rng = prg if prg is not None else AesCtrPrg.from_random()
    masks = [rng.random_int(1 << width) for _ in range(tensor.size)]
    key = backend.key
    n, nsq = key.n_mpz, key.nsquare
    shifted = [
        c * (n * gmpy2.mpz(m) + 1) % nsq
        for c, m in zip(tensor.payload.ravel().tolist(), masks, strict=True)
    ]
    # A fresh r^n: the key holder sees a fresh encryption of X + r, unlinkable to X's.
    payload = _objects(rerandomize(key, shifted), tensor.shape)
    meta = {"scale": scale, "bound_bits": width + 1, "randomized": True}
    return PaillierMasked(backend.wrap(payload, tensor.shape, UNPACKED, meta), masks, scale)


def unmask_paillier(masked: SecureTensor, key: PaillierSecretKey) -> list[int]:
    """Key holder: the exact integers ``X + r`` (C order), checked against the bound.

    Raises
    ------
    EncodingOverflowError
        If a decrypted value breaks the tensor's declared bound (altered ciphertext).
    """
    backend = paillier_backend(masked)
    if not isinstance(key, PaillierSecretKey) or key.public_key != backend.key:
        raise ParameterError("unmask_paillier needs the secret key of the tensor's public key")
    n = key.public_key.n
    half, limit = n // 2, 1 << int(masked.meta["bound_bits"])
    out = []
    for c in masked.payload.ravel().tolist():
        m = int(key.raw_decrypt(c))
        v = m - n if m > half else m
        if not -limit < v < limit:
            raise EncodingOverflowError(
                "a decrypted masked value exceeds its declared bound: the ciphertext was "
                "altered; nothing was shared"
            )
        out.append(v)
    return out


def rescale_ints(values: list[int], scale: int, frac_bits: int) -> list[int]:
    """One side's integers from scale ``s`` to ``f``: ``v 2^(f-s)``, or ``floor(v / 2^(s-f))``."""
    if scale <= frac_bits:
        return [v << (frac_bits - scale) for v in values]
    return [v >> (scale - frac_bits) for v in values]


# --- shares -> Paillier --------------------------------------------------------------------


def encrypt_masked(
    backend: PaillierBackend, masked: npt.NDArray[np.int64], *, frac_bits: int, beta: int,
    sigma: int = STATISTICAL_SECURITY_BITS,
) -> SecureTensor:
    """Key holder: fresh encryptions of the integers ``X + r`` (scale ``f``)."""
    ints = [int(v) for v in np.asarray(masked).ravel().tolist()]
    payload = _objects(encrypt_raw(backend.key, ints), tuple(np.shape(masked)))
    meta = {"scale": frac_bits, "bound_bits": beta + 1 + sigma + 1, "randomized": True}
    return backend.wrap(payload, tuple(np.shape(masked)), UNPACKED, meta)


def unmask_encrypted(tensor: SecureTensor, r: list[int], *, beta: int) -> SecureTensor:
    """Evaluator: ``Enc(X + r) * Enc(-r) = Enc(X)`` with the bound ``|X| < 2^beta``."""
    backend = paillier_backend(tensor)
    key = backend.key
    n, nsq = key.n_mpz, key.nsquare
    cts = [
        c * (n * (gmpy2.mpz(-v) % n) + 1) % nsq
        for c, v in zip(tensor.payload.ravel().tolist(), r, strict=True)
    ]
    meta = {"scale": int(tensor.meta["scale"]), "bound_bits": beta + 1, "randomized": False}
    return backend.wrap(_objects(cts, tensor.shape), tensor.shape, UNPACKED, meta)
