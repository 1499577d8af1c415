"""The payload a CKKS `SecureTensor` carries: its ciphertexts, level and gain.

Kept apart from the backend so the operation modules can build results without importing
it (no cycles). See `securecomp.he.ckks.layouts` for the order of the ciphertexts.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from securecomp.he.ckks.kernels import Ct, Kernel
from securecomp.tensor import SecureTensor

__all__ = ["CKKSPayload", "Wrapper", "combine_gains", "payload_of"]


class CKKSPayload(NamedTuple):
    """Ciphertexts of one tensor, all at the same ``level`` and with the same ``gain``.

    Invariant: every ciphertext went through ``level`` rescales; decrypting one and
    dividing by ``gain`` gives the tensor's values (the gain is TenSEAL's untracked scale
    drift, see `securecomp.he.ckks.kernels`). Ciphertexts are never mutated, so payloads
    may share them.
    """

    cts: tuple[Ct, ...]
    level: int
    gain: float


class Wrapper(Protocol):
    """What the operation modules need from the backend."""

    kernel: Kernel

    def wrap(
        self, cts: tuple[Ct, ...], shape: tuple[int, ...], layout: str, level: int, gain: float
    ) -> SecureTensor: ...


def payload_of(t: SecureTensor) -> CKKSPayload:
    """The CKKS payload of a tensor of this backend."""
    p: CKKSPayload = t.payload
    return p


def combine_gains(ga: float, gb: float) -> float:
    """Gain of a sum of two ciphertexts.

    Equal gains (the usual case: both operands went through the same products) stay exact.
    Otherwise the sum cannot be corrected without a product; the mean halves the residual
    drift, which is of the order of 1e-7 relative for 40-bit primes.
    """
    return ga if ga == gb else 0.5 * (ga + gb)
