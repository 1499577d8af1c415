"""Ciphertext-level CKKS masking: re-randomize and add an exact plaintext polynomial.

TenSEAL's vectors take real slot values only and encode them in float64, so a plaintext
built through them would (a) leave the imaginary parts of the decryption error, which the
key holder computes as easily from its secret key, unflooded, and (b) add a mask of
magnitude ``2^(sigma + b)`` with a float64 encoding error of about ``2^(sigma + b - 52)``
that is a deterministic function of the mask, beyond any analysis. This module therefore
works one level down, on the SEAL ciphertext inside a TenSEAL vector, with TenSEAL's own
bindings of Microsoft SEAL (``tenseal.sealapi``), and adds an integer polynomial the
caller computed exactly (mask and flooding noise, `securecomp.hybrid.ckks`):

1. copy the ciphertext (TenSEAL hands out copies: the input is never modified);
2. add a fresh public-key encryption of zero, mod-switched to the ciphertext's level:
   its ``c1`` becomes pseudorandom and its randomness independent of what the key holder
   knows about the input's encryption;
3. add the plaintext whose coefficients are exactly the given integers
   (`securecomp.hybrid.rns`: SEAL's NTT of their residues at the ciphertext's level);
4. rebuild a TenSEAL vector around the result. SEAL serializes ciphertexts to files only,
   so the bytes pass through a private temporary directory (they are a ciphertext:
   nothing secret is written), and the vector's protobuf message
   ``{1: size, 2: SEAL ciphertext, 3: scale}`` is assembled around them.

The polynomial must be computed at the ciphertext's scale (`ciphertext_scales`) times its
gain (TenSEAL's untracked scale drift, see `securecomp.he.ckks.kernels`), so that
decryption divides both back out.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import tenseal as ts
import tenseal.sealapi as sealapi
from numpy.typing import NDArray

from securecomp.errors import ParameterError
from securecomp.he.ckks.kernels import Ct, Kernel
from securecomp.hybrid.rns import make_plaintext, primes_at, to_ntt_words

__all__ = ["ciphertext_scales", "mask_and_flood"]

_CKKSVector = ts._ts_cpp.CKKSVector


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _proto(size: int, ciphertext: bytes, scale: float) -> bytes:
    """TenSEAL's CKKSVector protobuf: size (packed), the SEAL ciphertext, the scale."""
    packed_size = _varint(size)
    return (
        b"\x0a" + _varint(len(packed_size)) + packed_size
        + b"\x12" + _varint(len(ciphertext)) + ciphertext
        + b"\x19" + struct.pack("<d", scale)
    )


def _seal_bytes(raw: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="securecomp-ct-") as tmp:
        path = os.path.join(tmp, "ciphertext")
        raw.save(path)
        with open(path, "rb") as fh:
            return fh.read()


def ciphertext_scales(cts: Sequence[Ct]) -> list[float]:
    """The scale SEAL records in each ciphertext (what a plaintext added to it must carry)."""
    return [float(ct.ciphertext()[0].scale) for ct in cts]


def mask_and_flood(
    kernel: Kernel, cts: Sequence[Ct], polys: Sequence[NDArray[Any]]
) -> tuple[Ct, ...]:
    """Re-randomized ciphertexts with the integer polynomial ``polys[i]`` added to ``cts[i]``.

    Parameters
    ----------
    kernel : Kernel
        The CKKS backend's kernel (its context holds the public key).
    cts : sequence of TenSEAL CKKS vectors
        Never modified.
    polys : sequence of integer arrays
        ``N`` coefficients each (Python ints), already at the ciphertext's scale and gain.

    Raises
    ------
    ParameterError
        If the counts or lengths disagree, or SEAL refuses the plaintext.
    """
    if len(cts) != len(polys):
        raise ParameterError("mask_and_flood needs one polynomial per ciphertext")
    data = kernel.data
    seal = data.seal_context()
    evaluator = sealapi.Evaluator(seal)
    degree = 2 * kernel.slots
    out = []
    for ct, poly in zip(cts, polys, strict=True):
        if np.shape(poly) != (degree,):
            raise ParameterError(f"each polynomial must have the {degree} coefficients of N")
        raw = ct.ciphertext()[0]  # a copy: the tensor's ciphertext stays untouched
        parms, scale = raw.parms_id(), raw.scale
        zero = _CKKSVector(data, [0.0]).ciphertext()[0]
        evaluator.mod_switch_to_inplace(zero, parms)
        zero.scale = scale
        evaluator.add_inplace(raw, zero)
        words = to_ntt_words(np.asarray(poly, dtype=object), primes_at(seal, parms))
        evaluator.add_plain_inplace(raw, make_plaintext(seal, parms, scale, words))
        out.append(_CKKSVector(data, _proto(int(ct.size()), _seal_bytes(raw), scale)))
    return tuple(out)
