"""SPDZ2k parameters ``(k, s)`` and the ring Z_2^(k+s) they compute in.

SPDZ2k (Cramer, Damgård, Escudero, Scholl, Xing, "SPDZ2k: Efficient MPC mod 2^k for
Dishonest Majority", CRYPTO 2018, section 3) shares a value ``x`` of Z_2^k as elements of
the larger ring Z_2^(k+s) together with shares of its MAC ``alpha x mod 2^(k+s)``, under a
global key ``alpha`` uniform in Z_2^s. Only ``x mod 2^k`` is meaningful: the upper ``s``
bits of the shared sum are garbage (carries of earlier steps) and are never used. The
batched MAC check lets a wrong opening through with probability at most
``2^-(s - log2(s + 1))`` (the paper's theorem on its check), so ``s`` is the statistical
security parameter.

Parameter sets
--------------
========== ====== ================ ========================================================
(k, s)     ring   check soundness  use
========== ====== ================ ========================================================
(64, 64)   Z_2^128 ~2^-58          default: 64-bit fixed-point values, two uint64 limbs
(32, 32)   Z_2^64  ~2^-27          **insecure**, tests only (opt-in): authenticates only 32
                                   bits, too few for f = 16 fixed point, and 27 bits of
                                   soundness are below the 40-bit floor
(1, 63)    Z_2^64  ~2^-57          the binary domain: authenticated bits (XOR is addition)
========== ====== ================ ========================================================

`Ring` gives the protocols one interface over both widths: elements are *wide arrays*
whose first axis holds the uint64 limbs (one for Z_2^64, two for Z_2^128;
`securecomp.mpc.spdz2k.limbs`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import ring_matmul
from securecomp.errors import ParameterError
from securecomp.mpc.spdz2k import limbs
from securecomp.mpc.spdz2k.matmul import matmul_u64, wide_matmul_left, wide_matmul_right
from securecomp.params import require_secure

__all__ = [
    "BINARY_PARAMETERS",
    "DEFAULT_PARAMETERS",
    "Ring",
    "Spdz2kParameters",
]

U64 = np.uint64
Wide = npt.NDArray[np.uint64]


class Ring:
    """Arithmetic in Z_2^(64 L) on wide arrays with ``L`` uint64 limbs on the first axis.

    Invariant: every method returns the exact result modulo ``2^bits``; 64-bit public
    factors (``mul_public``, ``lincomb``) act as the integers they hold.
    """

    __slots__ = ("bits", "limbs")

    def __init__(self, n_limbs: int) -> None:
        if n_limbs not in (1, 2):
            raise ParameterError(f"rings of 1 or 2 limbs are supported, not {n_limbs}")
        self.limbs = n_limbs
        self.bits = 64 * n_limbs

    def __repr__(self) -> str:
        return f"Ring(Z_2^{self.bits})"

    @property
    def modulus_mask(self) -> int:
        return (1 << self.bits) - 1

    # --- element-wise -------------------------------------------------------------------

    def add(self, a: Wide, b: limbs.Limbs, out: Wide | None = None) -> Wide:
        if self.limbs == 2:
            return limbs.add(a, b, out)
        res = np.add(a, b, out=out)
        return np.asarray(res)

    def sub(self, a: Wide, b: Wide, out: Wide | None = None) -> Wide:
        if self.limbs == 2:
            return limbs.sub(a, b, out)
        return np.asarray(np.subtract(a, b, out=out))

    def neg(self, a: Wide, out: Wide | None = None) -> Wide:
        if self.limbs == 2:
            return limbs.neg(a, out)
        return np.asarray(np.negative(a, out=out))

    def lincomb(
        self,
        factors: list[npt.NDArray[np.uint64]],
        xs: list[Wide],
        c: Wide | None = None,
        out: Wide | None = None,
    ) -> Wide:
        """``c + sum_t factors[t] * xs[t]`` for public uint64 factors (broadcast)."""
        if self.limbs == 2:
            return limbs.lincomb(factors, xs, c, out)
        acc: Any = None
        for f, x in zip(factors, xs, strict=True):
            term = np.multiply(f, x[0])  # wraps modulo 2^64: the ring's arithmetic
            acc = term if acc is None else np.add(acc, term)
        if c is not None:
            acc = np.add(acc, c[0])
        res = np.asarray(acc, dtype=U64)
        if out is None:
            return res[np.newaxis]
        out[0] = res
        return out

    def mul_public(self, f: npt.ArrayLike, x: Wide) -> Wide:
        """``f * x`` for a public uint64 factor ``f`` (broadcast)."""
        return self.lincomb([np.asarray(f, dtype=U64)], [x])

    def mul_int(self, c: int, x: Wide) -> Wide:
        """``c * x`` for a Python integer ``c`` (a MAC key share or key)."""
        if self.limbs == 2:
            return limbs.mul_int(c, x)
        return np.asarray(np.multiply(x, U64(c & 0xFFFFFFFFFFFFFFFF)))

    def mul(self, a: Wide, b: Wide) -> Wide:
        """Elementwise ``a * b`` of two ring elements (the dealer's triples)."""
        if self.limbs == 2:
            return limbs.mul(a, b)
        return np.asarray(np.multiply(a, b))

    # --- linear algebra -------------------------------------------------------------------

    def matmul(self, a: Wide, b: Wide) -> Wide:
        """``a @ b`` of two ring matrices (the dealer's matrix triples)."""
        if self.limbs == 1:
            return np.asarray(ring_matmul(a[0], b[0], 64))[np.newaxis]
        res = matmul_u64(a[0], b[0])
        np.add(res[1, ...], ring_matmul(a[0], b[1], 64), out=res[1, ...])
        np.add(res[1, ...], ring_matmul(a[1], b[0], 64), out=res[1, ...])
        return res

    def matmul_public_left(self, p: npt.NDArray[np.uint64], x: Wide) -> Wide:
        """``p @ x`` for a public uint64 matrix ``p``."""
        if self.limbs == 1:
            return np.asarray(ring_matmul(p, x[0], 64))[np.newaxis]
        return wide_matmul_left(p, x)

    def matmul_public_right(self, x: Wide, p: npt.NDArray[np.uint64]) -> Wide:
        """``x @ p`` for a public uint64 matrix ``p``."""
        if self.limbs == 1:
            return np.asarray(ring_matmul(x[0], p, 64))[np.newaxis]
        return wide_matmul_right(x, p)

    def sum(self, x: Wide, axis: int | None) -> Wide:
        """Sum over ``axis`` of the trailing shape (all when None)."""
        if self.limbs == 2:
            return limbs.sum_axis(x, axis)
        return np.asarray(np.sum(x[0], axis=axis, dtype=U64))[np.newaxis]

    def dot(self, chi: npt.NDArray[np.uint64], x: Wide) -> list[int]:
        """``sum_j chi_j x[:, r, j]`` for each row ``r`` of ``x`` (shape ``(L, R, n)``)."""
        if self.limbs == 2:
            return limbs.dot(chi, x)
        # numpy's integer dot wraps modulo 2^64, exactly the ring's arithmetic.
        return [int(v) for v in np.dot(x[0], chi)]

    # --- embedding ------------------------------------------------------------------------

    def from_u64(self, v: npt.NDArray[np.uint64]) -> Wide:
        """The ring elements of the integers ``v`` in ``[0, 2^64)``."""
        if self.limbs == 2:
            return limbs.from_u64(v)
        return np.asarray(v, dtype=U64)[np.newaxis].copy()

    def shifted(self, x: Wide, k: int) -> Wide:
        """``2^k x`` for ``k`` in ``{32, 64}`` (masks the upper bits of an opening)."""
        out = np.zeros_like(x)
        if self.limbs == 2 and k == 64:
            out[1] = x[0]
        elif self.limbs == 1 and k < 64:
            np.left_shift(x[0], U64(k), out=out[0])
        else:
            raise ParameterError(f"no shift by {k} in Z_2^{self.bits}")
        return out

    def to_int(self, x: Wide) -> int:
        """A single element (trailing shape ``()``) as a Python integer."""
        if self.limbs == 2:
            return int(x[0]) | (int(x[1]) << 64)
        return int(x[0])

    def from_int(self, v: int) -> Wide:
        """A single element from a Python integer (reduced)."""
        v &= self.modulus_mask
        if self.limbs == 2:
            return np.array([v & 0xFFFFFFFFFFFFFFFF, v >> 64], dtype=U64)
        return np.array([v], dtype=U64)


@functools.cache
def _ring(n_limbs: int) -> Ring:
    return Ring(n_limbs)


_SUPPORTED = {(64, 64), (32, 32), (1, 63)}


@dataclass(frozen=True, slots=True)
class Spdz2kParameters:
    """The SPDZ2k parameters: ``k`` meaningful bits, ``s`` bits of statistical security.

    Supported: ``(64, 64)`` (default), ``(1, 63)`` (the binary domain) and ``(32, 32)``,
    which only `securecomp.params.insecure_test_parameters` allows (its check passes a
    cheat with probability about 2^-27, and 32 bits hold no f = 16 product).

    Raises
    ------
    ParameterError
        For any other pair.
    InsecureParameterError
        For ``(32, 32)`` outside the opt-in.
    """

    k: int = 64
    s: int = 64

    def __post_init__(self) -> None:
        if (self.k, self.s) not in _SUPPORTED:
            raise ParameterError(
                f"SPDZ2k parameters (k={self.k}, s={self.s}) are not supported; use "
                "(64, 64), or (32, 32) for tests inside insecure_test_parameters()"
            )
        require_secure(
            self.s - math.log2(self.s + 1) >= 40,
            f"SPDZ2k with k = s = {self.s}: the MAC check lets a cheat through with "
            f"probability about 2^-{self.s - math.log2(self.s + 1):.0f} and authenticates only "
            f"{self.k} bits",
        )

    @property
    def ring(self) -> Ring:
        """Z_2^(k+s)."""
        return _ring((self.k + self.s) // 64)

    @property
    def value_mask(self) -> int:
        """``2^k - 1``: the meaningful bits."""
        return (1 << self.k) - 1

    @property
    def key_bound(self) -> int:
        """MAC keys are uniform in ``[0, 2^s)``."""
        return 1 << self.s

    @property
    def soundness_bits(self) -> float:
        """``s - log2(s + 1)``: minus log2 of the probability that a cheat passes a check."""
        return self.s - math.log2(self.s + 1)

    def reduce(self, v: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """``v mod 2^k`` for uint64 arrays (a no-op for k = 64)."""
        if self.k >= 64:
            return v
        return np.asarray(v & U64(self.value_mask))


#: k = s = 64 in Z_2^128.
DEFAULT_PARAMETERS = Spdz2kParameters(64, 64)
#: Authenticated bits: k = 1, s = 63 in Z_2^64 (XOR is addition modulo 2).
BINARY_PARAMETERS = Spdz2kParameters(1, 63)
