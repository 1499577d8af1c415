"""Ciphertext-level CKKS kernels over TenSEAL: value semantics, levels and drift correction.

TenSEAL (auto-relinearize, auto-rescale, auto-mod-switch) has three behaviours a tensor
library must not inherit:

* **In-place mod switching of the right operand.** When the right operand of a binary
  operation sits at a higher modulus (fewer rescales) than the left, TenSEAL switches it
  down *in place*; ``.copy()`` costs 27-164 ms. The kernels never copy: the operand with
  fewer rescales goes on the left (TenSEAL copies the left operand anyway), so ``a + b``
  becomes ``b + a`` and ``a - b`` becomes ``(-b) + a`` when ``b`` is fresher.
* **Scale reset.** After a rescale by the prime ``p`` TenSEAL declares the scale to be
  ``2^s`` although it is ``Δ²/p``: every product drifts by ``f = 2^s / p``
  (`securecomp.params.drift`). Each ciphertext's true scale is tracked as a *gain*
  (decrypted value = gain x true value); plaintext factors absorb ``1 / (gain * f)``
  (`securecomp.params.constant_correction`), plaintext addends are encoded times the gain,
  and decryption divides by it, so the drift is cancelled instead of accumulated.
* **Transparent results.** ``a - a`` raises "result ciphertext is transparent", and a
  product by an all-zero plaintext returns a fresh encryption at the *top* level. Both are
  replaced by an encryption of zero at the level the computation expects.

Levels count rescales consumed (0 = fresh); a ciphertext at level ``depth`` cannot be
multiplied again (`DepthExhaustedError`, raised before TenSEAL's "scale out of bounds").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tenseal as ts
from numpy.typing import NDArray

from securecomp.errors import DepthExhaustedError, UnsupportedOperationError
from securecomp.he.ckks.context import CKKSContext
from securecomp.params import constant_correction, scale_drift

__all__ = ["SMALL_INT", "Ct", "Kernel", "Operand"]

#: A TenSEAL ``CKKSVector`` (the C++ object, without the Python wrapper's overhead).
Ct = Any
#: A plaintext operand of one ciphertext: a scalar (all slots) or one value per valid slot.
Operand = float | NDArray[np.float64]

#: Integer scalars up to this magnitude multiply by repeated doubling: no rescale, no level.
SMALL_INT = 64

_CKKSVector = ts._ts_cpp.CKKSVector


def _is_transparent(exc: RuntimeError) -> bool:
    return "transparent" in str(exc)


class Kernel:
    """Primitives on single ciphertexts of one context.

    Invariant: no method mutates a ciphertext passed to it; every result is a new TenSEAL
    object at the level the caller is told (its ``level`` arguments are exact).
    """

    def __init__(self, context: CKKSContext) -> None:
        params = context.params
        self.context = context
        self.data = context.tenseal_context.data
        self.depth = context.depth
        self.slots = params.slot_count
        self.scale_bits = params.scale_bits
        self._factors = scale_drift(params).level_factors
        # constant_correction(params, l) = p / 2^s = 1 / factor(l): what a plaintext factor
        # multiplied at level l must absorb so that the following rescale does not drift.
        self._corrections = tuple(constant_correction(params, lvl) for lvl in range(params.depth))
        self._top = params.depth + 1  # data primes of a fresh ciphertext
        #: Largest magnitude that still decrypts after the last rescale (sign bit and margin).
        self.capacity = 2.0 ** (params.coeff_mod_bit_sizes[0] - params.scale_bits - 2)

    # --- levels ---------------------------------------------------------------------------

    def factor(self, level: int) -> float:
        """Drift ``2^s / p`` of the rescale from ``level`` to ``level + 1``."""
        return self._factors[level]

    def next_level(self, level: int, what: str) -> int:
        """The level after one more rescale, or `DepthExhaustedError`."""
        if level >= self.depth:
            raise DepthExhaustedError(
                f"{what} needs a rescale but its operand is at level {level} of the planned "
                f"depth {self.depth} (chain {list(self.context.params.coeff_mod_bit_sizes)}); "
                "plan a longer chain (securecomp.params.plan_ckks), reorder the computation "
                "to use fewer sequential products, or let the key holder re-encrypt"
            )
        return level + 1

    def level_of(self, ct: Ct) -> int:
        """Rescales a ciphertext has gone through, read from TenSEAL (~20 µs)."""
        return int(self._top - ct.ciphertext()[0].coeff_modulus_size())

    def require_galois(self, what: str) -> None:
        """Make sure rotations are possible: the key holder generates keys lazily."""
        if self.context.has_galois_keys:
            return
        if not self.context.is_private:
            raise UnsupportedOperationError(
                f"{what} sums slots with rotations, which need Galois keys, and this public "
                "context has none (they are shipped only when a computation needs them, "
                "~35 MB at N = 8192); the key holder must export ctx.public(galois_keys=True)"
            )
        self.context.generate_galois_keys()

    # --- fresh ciphertexts --------------------------------------------------------------------

    def encrypt(self, values: Sequence[float]) -> Ct:
        """Encrypt a list of floats with the public key (the caller checked the values)."""
        return _CKKSVector(self.data, values)

    def zero_at(self, size: int, level: int) -> Ct:
        """An encryption of zeros (``size`` slots) at ``level``, never transparent."""
        ct = self._zeros(size)
        for _ in range(level):
            ct = ct.mul_plain(1.0)  # each product by 1 consumes one prime; 0 stays 0
        return ct

    # --- additive ---------------------------------------------------------------------------

    def add(self, a: Ct, la: int, b: Ct, lb: int) -> Ct:
        """``a + b`` with the fresher operand on the left (no in-place switch of ``b``)."""
        if lb < la:
            a, b = b, a
        try:
            return a.add(b)
        except RuntimeError as exc:
            if not _is_transparent(exc):
                raise
            return self._zeros(a.size()).add(a).add(b)

    def sub(self, a: Ct, la: int, b: Ct, lb: int) -> Ct:
        """``a - b``; computed as ``(-b) + a`` when ``b`` is fresher."""
        try:
            if lb < la:
                return b.neg().add(a)
            return a.sub(b)
        except RuntimeError as exc:
            if not _is_transparent(exc):
                raise
            # a - b was exactly zero (e.g. a - a): re-randomize with a fresh zero first.
            left = self._zeros(a.size()).add(a)
            return left.sub(b)

    def _zeros(self, size: int) -> Ct:
        return _CKKSVector(self.data, [0.0] * size)

    def neg(self, a: Ct) -> Ct:
        return a.neg()

    def add_plain(self, a: Ct, p: Operand, gain: float) -> Ct:
        """``a + p`` for ``a`` of the given gain (``p`` is encoded times the gain)."""
        return a.add_plain(_encode(p, gain))

    def sub_plain(self, a: Ct, p: Operand, gain: float) -> Ct:
        return a.sub_plain(_encode(p, gain))

    def rsub_plain(self, a: Ct, p: Operand, gain: float) -> Ct:
        """``p - a``."""
        return a.neg().add_plain(_encode(p, gain))

    def int_mul(self, a: Ct, k: int) -> Ct:
        """``k * a`` for a small integer by doubling and adding: no rescale, gain kept."""
        if k == 0:
            raise ValueError("internal: int_mul by 0")
        n, result, base = abs(k), a, a
        first = True
        while True:
            if n & 1:
                result = base if first else result.add(base)
                first = False
            n >>= 1
            if not n:
                break
            base = base.add(base)
        # k == 1 returns ``a`` itself: ciphertexts are never mutated, so sharing is safe.
        return result.neg() if k < 0 else result

    # --- multiplicative ---------------------------------------------------------------------

    def mul(self, a: Ct, la: int, b: Ct, lb: int) -> Ct:
        """``a * b`` (relinearized, rescaled once); the caller checked the depth."""
        if lb < la:
            a, b = b, a
        return a.mul(b)

    def mul_plain(self, a: Ct, level: int, gain: float, p: Operand) -> Ct:
        """``a * p`` rescaled once, with the drift folded into ``p`` (result gain 1)."""
        out = a.mul_plain(_encode(p, self._corrections[level] / gain))
        if self.level_of(out) != level + 1:
            # TenSEAL replaced a transparent product (p encoded to zero) by a fresh
            # encryption at the top level: put a zero at the level the caller expects.
            return self.zero_at(a.size(), level + 1)
        return out

    def sum(self, a: Ct) -> Ct:
        """Sum of the valid slots into slot 0 (``log2`` rotations); the result has size 1."""
        return a.sum()

    def dot_plain(self, a: Ct, level: int, gain: float, p: NDArray[np.float64]) -> Ct:
        """``sum(a * p)`` into slot 0 (result gain 1)."""
        return self.mul_plain(a, level, gain, p).sum()

    def replicate(self, s: Ct, size: int) -> Ct:
        """Copy slot 0 of a size-1 ciphertext into ``size`` slots.

        TenSEAL masks slot 0 with a plaintext 1 (one rescale: level + 1, gain times the
        drift of that level) and rotates ``ceil(log2 size)`` times; ``s`` is not modified.
        """
        return self._zeros(size).add(s)

    def extract(self, a: Ct, level: int, gain: float, slot: int) -> Ct:
        """Slot ``slot`` of ``a`` into slot 0 of a size-1 ciphertext (level + 1, gain 1)."""
        mask = np.zeros(a.size(), dtype=np.float64)
        mask[slot] = 1.0
        return self.mul_plain(a, level, gain, mask).sum()


def _encode(p: Operand, factor: float) -> float | list[float]:
    if isinstance(p, float):
        return p * factor
    if factor == 1.0:
        return p.tolist()
    return (p * factor).tolist()
