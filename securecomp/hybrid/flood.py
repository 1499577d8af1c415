"""Ciphertext-level CKKS masking: re-randomize, add a mask and complex flooding noise.

TenSEAL's vectors take real slot values only, so a flooding plaintext built through them
would cover the real parts of the slots and leave the imaginary parts of the decryption
error, which the key holder computes as easily from its secret key, unflooded. This module
therefore works one level down, on the SEAL ciphertext inside a TenSEAL vector, with
TenSEAL's own bindings of Microsoft SEAL (``tenseal.sealapi``):

1. copy the ciphertext (TenSEAL hands out copies: the input is never modified);
2. add a fresh public-key encryption of zero, mod-switched to the ciphertext's level:
   its ``c1`` becomes pseudorandom and its randomness independent of what the key holder
   knows about the input's encryption;
3. add the mask plaintext (real values) and, as a *separate* plaintext, the noise (complex
   values: real and imaginary parts), each encoded at the ciphertext's level and scale.
   Encoding the small noise apart from the large mask keeps it exact in float64;
4. rebuild a TenSEAL vector around the result. SEAL serializes ciphertexts to files only,
   so the bytes pass through a private temporary directory (they are a ciphertext:
   nothing secret is written), and the vector's protobuf message
   ``{1: size, 2: SEAL ciphertext, 3: scale}`` is assembled around them.

Slot vectors passed in are already multiplied by the ciphertext's gain (TenSEAL's untracked
scale drift, see `securecomp.he.ckks.kernels`), so that decryption divides it back out.
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

__all__ = ["mask_and_flood"]

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


class _Seal:
    """SEAL encoder and evaluator of one TenSEAL context (cheap to build)."""

    def __init__(self, kernel: Kernel) -> None:
        self.data = kernel.data
        seal = self.data.seal_context()
        self.encoder = sealapi.CKKSEncoder(seal)
        self.evaluator = sealapi.Evaluator(seal)
        self.slots = int(self.encoder.slot_count())

    def plaintext(self, values: NDArray[Any], parms_id: Any, scale: float) -> Any:
        pt = sealapi.Plaintext()
        self.encoder.encode(values.tolist(), parms_id, scale, pt)
        return pt


def mask_and_flood(
    kernel: Kernel,
    cts: Sequence[Ct],
    masks: Sequence[NDArray[np.float64]],
    noises: Sequence[NDArray[np.complex128]],
) -> tuple[Ct, ...]:
    """Re-randomized ciphertexts with ``masks[i]`` and ``noises[i]`` added slot by slot.

    Parameters
    ----------
    kernel : Kernel
        The CKKS backend's kernel (its context holds the public key).
    cts : sequence of TenSEAL CKKS vectors
        Never modified.
    masks : sequence of float arrays
        Real values for the first slots of each ciphertext (already times the gain).
    noises : sequence of complex arrays
        One value per slot (``N/2``) of each ciphertext (already times the gain).
    """
    if not len(cts) == len(masks) == len(noises):
        raise ParameterError("mask_and_flood needs one mask and one noise vector per ciphertext")
    seal = _Seal(kernel)
    out = []
    for ct, mask, noise in zip(cts, masks, noises, strict=True):
        if noise.shape != (seal.slots,) or mask.ndim != 1 or mask.size > seal.slots:
            raise ParameterError(
                f"noise must cover the {seal.slots} slots and the mask at most as many"
            )
        raw = ct.ciphertext()[0]  # a copy: the tensor's ciphertext stays untouched
        parms, scale = raw.parms_id(), raw.scale
        zero = _CKKSVector(seal.data, [0.0]).ciphertext()[0]
        seal.evaluator.mod_switch_to_inplace(zero, parms)
        zero.scale = scale
        seal.evaluator.add_inplace(raw, zero)
        seal.evaluator.add_plain_inplace(raw, seal.plaintext(mask, parms, scale))
        seal.evaluator.add_plain_inplace(raw, seal.plaintext(noise, parms, scale))
        out.append(_CKKSVector(seal.data, _proto(int(ct.size()), _seal_bytes(raw), scale)))
    return tuple(out)
