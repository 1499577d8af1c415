"""The bound tracker: public magnitude bounds that guarantee each protocol's precondition.

Every shared tensor carries, in its public metadata, an integer ``R`` with the guarantee
``|x| <= R`` for the signed ring value ``x`` of each element (``R = ceil(B * 2^f)`` for a
declared real bound ``B``). Each operation derives the bound of its result from the
bounds of its operands (and from the public values of plaintext operands) with exact
integer arithmetic, and refuses, *before* any communication and identically on every
party (bounds are public), an operation whose precondition the bounds cannot guarantee:

* every value must stay representable: ``R < 2^63`` (else it wraps silently);
* truncation needs ``R < 2^62`` for the dealer protocol (`securecomp.mpc.truncation`)
  and for SecureML local truncation alike;
* comparison needs ``|x - y| < 2^63``, which ``R_x + R_y < 2^63`` guarantees.

A violated precondition raises `EncodingOverflowError` saying which operation, the bound
reached and how to fix it (declare tighter input bounds, fewer fractional bits, or
rescale). The bound is worst-case: it can be far above the actual values, so programs
that know better (for instance after a clip) may state a tighter bound explicitly with
`securecomp.mpc.backend.assume_bound`, a documented, unverified claim.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, ParameterError

__all__ = [
    "REPRESENTABLE",
    "TRUNCATABLE",
    "check_representable",
    "check_truncatable",
    "plain_ring_max",
    "ring_bound",
    "to_real",
    "truncated",
]

#: Exclusive bound on any signed value in Z_2^64.
REPRESENTABLE = 1 << 63
#: Exclusive bound on a value before truncation.
TRUNCATABLE = 1 << 62

_FIX = (
    "declare tighter input bounds (share(..., bound=B)), scale the data down, or use fewer "
    "fractional bits"
)


def ring_bound(bound: float, frac_bits: int) -> int:
    """``ceil(bound * 2^frac_bits)`` for a real bound; checked to be representable."""
    b = float(bound)
    if not b > 0 or math.isinf(b) or math.isnan(b):
        raise ParameterError(f"a bound must be a positive finite number, got {bound!r}")
    r = math.ceil(math.ldexp(b, frac_bits))
    return check_representable(r, f"declared bound {b:g}", frac_bits)


def to_real(r: int, frac_bits: int) -> float:
    """The real magnitude of a ring bound."""
    return math.ldexp(float(r), -frac_bits)


def plain_ring_max(encoded: npt.NDArray[Any]) -> int:
    """``max |v|`` over signed ring elements (a public plaintext operand), exactly."""
    if encoded.size == 0:
        return 0
    signed = encoded.view(np.int64)
    return max(abs(int(signed.min())), abs(int(signed.max())))


def check_representable(r: int, what: str, frac_bits: int) -> int:
    """Return ``r`` if ``r < 2^63``; otherwise refuse ``what`` (`EncodingOverflowError`)."""
    if r >= REPRESENTABLE:
        raise EncodingOverflowError(
            f"{what}: the result may reach |x| = {to_real(r, frac_bits):.6g} "
            f"(2^{math.log2(r):.1f} ring units), beyond the 2^63 of Z_2^64 at "
            f"{frac_bits} fractional bits, and would wrap around. To fix: {_FIX}."
        )
    return r


def check_truncatable(r: int, what: str, frac_bits: int) -> int:
    """Return ``r`` if ``r < 2^62`` (truncation precondition); otherwise refuse ``what``."""
    if r >= TRUNCATABLE:
        raise EncodingOverflowError(
            f"{what}: the product before truncation may reach 2^{math.log2(r):.1f} ring units "
            f"(|x * y| up to {to_real(r, 2 * frac_bits):.6g}); truncation needs |x| < 2^62. "
            f"To fix: {_FIX}."
        )
    return r


def truncated(r: int, frac_bits: int) -> int:
    """Bound after truncating by ``frac_bits``: ``floor(r / 2^f) + 1`` (one ulp of rounding)."""
    return (r >> frac_bits) + 1
