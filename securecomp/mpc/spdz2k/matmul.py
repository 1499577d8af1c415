"""Exact matrix products in Z_2^128 with 64-bit public factors, through float64 BLAS.

The MAC-mode matrix products (`securecomp.mpc.spdz2k.protocols.beaver` with a matrix
triple, products with public matrices) multiply a wide (two-limb) matrix by a public
uint64 matrix modulo 2^128. numpy's integer matmul is slow and has no 128-bit type, so,
as `securecomp.encoding.ring` does for Z_2^64 (after Ozaki, Ogita, Oishi, Rump, Numer.
Algorithms 59, 2012), the low limbs are split into 16-bit digits whose float64 products
are exact, and the digit products are recombined with their shifts in 128-bit
arithmetic (`securecomp.mpc.spdz2k.limbs`); the high limbs only matter modulo 2^64 and
go through `securecomp.encoding.ring_matmul`.

Invariant (tested against Python integers): results are exact modulo 2^128.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from securecomp.encoding import ring_matmul
from securecomp.errors import ShapeMismatchError
from securecomp.mpc.spdz2k.limbs import Wide, add

__all__ = ["matmul_u64", "wide_matmul_left", "wide_matmul_right"]

U64 = np.uint64


#: Inner dimension up to which one float64 product of 16-bit digits is exact:
#: n (2^16 - 1)^2 < 2^53.
_EXACT_INNER = 1 << 21


def _digits16(a: npt.NDArray[np.uint64]) -> list[npt.NDArray[np.float64]]:
    """The four 16-bit digits of every entry, as float64 matrices (exact)."""
    return [((a >> U64(16 * i)) & U64(0xFFFF)).astype(np.float64) for i in range(4)]


def matmul_u64(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> Wide:
    """The exact product ``a @ b`` of uint64 matrices modulo 2^128 (float64 BLAS on digits).

    Both operands are split into four 16-bit digits; every digit product is exact in
    float64 for inner dimensions below 2^21 (longer ones are cut into such chunks), and
    the sixteen products are recombined with their shifts in 128-bit arithmetic. Only
    2-d operands (1-d promoted as by ``np.matmul``).
    """
    x = a[np.newaxis, :] if a.ndim == 1 else a
    y = b[:, np.newaxis] if b.ndim == 1 else b
    if x.ndim != 2 or y.ndim != 2:
        raise ShapeMismatchError("128-bit matrix products take 1-d or 2-d operands")
    if x.shape[1] != y.shape[0]:
        raise ShapeMismatchError(f"inner dimensions differ: {a.shape} @ {b.shape}")
    m, k = x.shape
    p = y.shape[1]
    groups = np.zeros((7, m, p), dtype=U64)  # products grouped by shift 16 * (i + j)
    for start in range(0, max(k, 1), _EXACT_INNER):
        stop = min(k, start + _EXACT_INNER)
        dx = _digits16(x[:, start:stop])
        dy = _digits16(y[start:stop, :])
        for i in range(4):
            for j in range(4):
                groups[i + j] += (dx[i] @ dy[j]).astype(U64)  # each < 2^53: exact
    out = np.zeros((2, m, p), dtype=U64)
    for g in range(7):
        sh = 16 * g
        part = np.empty_like(out)
        if sh == 0:
            part[0], part[1] = groups[g], 0
        elif sh < 64:
            part[0] = groups[g] << U64(sh)
            part[1] = groups[g] >> U64(64 - sh)
        else:
            part[0], part[1] = 0, groups[g] << U64(sh - 64)
        add(out, part, out=out)
    if a.ndim == 1:
        out = out[:, 0]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def wide_matmul_right(x: Wide, p: npt.NDArray[np.uint64]) -> Wide:
    """``x @ p`` modulo 2^128 for a wide ``x`` and a uint64 matrix ``p``."""
    res = matmul_u64(x[0], p)
    np.add(res[1, ...], ring_matmul(x[1], p, 64), out=res[1, ...])
    return res


def wide_matmul_left(p: npt.NDArray[np.uint64], x: Wide) -> Wide:
    """``p @ x`` modulo 2^128 for a uint64 matrix ``p`` and a wide ``x``."""
    res = matmul_u64(p, x[0])
    np.add(res[1, ...], ring_matmul(p, x[1], 64), out=res[1, ...])
    return res
