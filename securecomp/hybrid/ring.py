"""Exact maps from integers and floats into Z_2^64 (the additive-share ring), and back.

Conversions produce shares of values that may be far larger than 2^63 (a masked value is
``sigma`` bits wider than the value), so `FixedPoint`'s range check does not apply: here
only the residue modulo 2^64 matters, and it must be computed exactly, never through a
float-to-int cast that saturates or an int64 that overflows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError

__all__ = ["centered", "float_to_ring", "ints_to_ring", "ring_to_ints"]

_MOD = 1 << 64
_TWO64 = float(_MOD)


def ints_to_ring(values: Sequence[int], shape: tuple[int, ...]) -> npt.NDArray[np.uint64]:
    """Python integers (any size and sign) modulo 2^64, as a uint64 array of ``shape``."""
    out = np.fromiter((int(v) % _MOD for v in values), dtype=np.uint64, count=len(values))
    return out.reshape(shape)


def float_to_ring(x: npt.NDArray[np.float64], frac_bits: int) -> npt.NDArray[np.uint64]:
    """``round(x 2^frac_bits) mod 2^64``, exact for any finite float64.

    ``x 2^f`` is exact (a power of two) and ``rint`` rounds half to even. Values below
    2^63 in magnitude go through int64 (exact); larger ones are multiples of 2^11, so the
    residue ``v - 2^64 floor(v / 2^64)`` is exact in float64 (a multiple of ``ulp(v)``
    below 2^64 has at most 53 significant bits). The naive ``v + 2^64`` for a small
    negative ``v`` would not be: it rounds to a multiple of 2^11.

    Raises
    ------
    EncodingOverflowError
        If a value is NaN or infinite.
    """
    v = np.rint(np.ldexp(np.asarray(x, dtype=np.float64), frac_bits))
    if v.size and not np.isfinite(v).all():
        raise EncodingOverflowError(
            "a decrypted value is NaN or infinite: the ciphertext is corrupted or the mask "
            "overflowed its modulus; nothing was shared"
        )
    small = np.abs(v) < 2.0**63
    out = np.where(small, v, 0.0).astype(np.int64).view(np.uint64)
    if not small.all():
        big = v[~small]
        out[~small] = (big - _TWO64 * np.floor(big / _TWO64)).astype(np.uint64)
    return out


def centered(u: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """The representative of each residue in ``[-2^63, 2^63)``."""
    return np.asarray(u, dtype=np.uint64).view(np.int64)


def ring_to_ints(u: npt.NDArray[np.uint64]) -> list[int]:
    """Centered representatives as Python integers (for encryption)."""
    return [int(v) for v in centered(u).ravel().tolist()]
