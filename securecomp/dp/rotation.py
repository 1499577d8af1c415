"""Randomized Hadamard rotation: flatten a vector before quantization, undo it after the sum.

Kairouz, Liu and Steinke (ICML 2021), section 4.2 ("flattening"), after Suresh, Yu, Kumar
and McMahan ("Distributed Mean Estimation with Limited Communication", ICML 2017): the
vector is zero-padded to ``d' = 2^k`` coordinates, its signs are flipped at random
(``D = diag(xi)``, ``xi`` uniform in ``{-1, +1}^d'``) and the normalized Walsh-Hadamard matrix
``H / sqrt(d')`` is applied. ``R = H D / sqrt(d')`` is orthogonal, so L2 norms are preserved
(clipping before or after it is the same), and each rotated coordinate ``sum_j H_kj xi_j
x_j / sqrt(d')`` is a Rademacher sum, hence ``||x||^2 / d'``-subgaussian (Hoeffding): the
energy of the vector is spread evenly, which is what keeps the modular sum from wrapping
(`securecomp.dp.config`). Being linear and shared by every client of a round, it commutes
with the sum, and the server inverts it: ``R^-1 = R^T = D H / sqrt(d')``.

The signs must be the same for all clients of a round and known to the server, so their
seed is public: `RandomizedHadamard.for_round` derives it with HKDF (`securecomp.crypto.kdf`)
from a public per-session value, the session id and the round number. They hide nothing
(privacy rests on the clients' noise); the Hoeffding bound assumes only that the inputs do
not depend on the signs.

The transform is the iterative butterfly (``log2 d'`` vectorized passes of ``a + b, a - b``).
On integer inputs it is exact in int64 (``fwht(fwht(v)) == d' * v`` while values stay below
2^63); on floats the inverse is exact up to float64 rounding (relative ~1e-15).
"""

from __future__ import annotations

import math
import operator

import numpy as np
import numpy.typing as npt

from securecomp.crypto.kdf import Domain, derive_key
from securecomp.crypto.prg import SEED_BYTES, AesCtrPrg
from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError

__all__ = ["MAX_PADDED_DIM", "RandomizedHadamard", "fwht", "padded_dim"]

#: Largest padded dimension (2^30 coordinates, 8 GiB of float64).
MAX_PADDED_DIM = 1 << 30


def padded_dim(dim: int) -> int:
    """The smallest power of two ``>= dim``."""
    d = operator.index(dim)
    if not 1 <= d <= MAX_PADDED_DIM:
        raise ParameterError(f"dim must lie in [1, 2^30], got {d}")
    return 1 << (d - 1).bit_length()


def fwht(values: npt.ArrayLike) -> npt.NDArray[np.float64] | npt.NDArray[np.int64]:
    """Unnormalized Walsh-Hadamard transform along the last axis (a new array).

    Integer inputs are transformed in int64 (exact while no intermediate exceeds 2^63 in
    magnitude), real inputs in float64. ``fwht(fwht(v)) == len * v``.

    Raises
    ------
    ParameterError
        If the last axis is not a power of two, or the dtype is not real.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "biu":
        out: np.ndarray = arr.astype(np.int64, copy=True)
    elif arr.dtype.kind == "f":
        out = arr.astype(np.float64, copy=True)
    else:
        raise ParameterError(f"fwht needs real numbers, got dtype {arr.dtype}")
    if out.ndim == 0:
        raise ParameterError("fwht needs at least one axis")
    n = out.shape[-1]
    if n < 1 or n & (n - 1):
        raise ParameterError(f"fwht needs a power-of-two length, got {n}")
    lead = out.shape[:-1]
    h = 1
    while h < n:
        view = out.reshape(*lead, n // (2 * h), 2, h)
        a = view[..., 0, :]
        b = view[..., 1, :]
        total = a + b
        np.subtract(a, b, out=b)  # b <- a - b, elementwise (reads precede the write)
        a[...] = total
        h *= 2
    return out


class RandomizedHadamard:
    """The rotation ``R = H D / sqrt(d')`` for vectors of length ``dim``.

    Invariant: ``inverse(forward(x)) == x`` up to float64 rounding, and
    ``||forward(x)||_2 == ||x||_2`` (orthogonality).

    Parameters
    ----------
    dim : int
        Length of the vectors rotated.
    seed : bytes
        32 bytes from which the random signs are expanded (AES-256-CTR). Use `for_round`.
    """

    __slots__ = ("_signs", "dim", "padded_dim")

    def __init__(self, dim: int, seed: bytes) -> None:
        self.dim = operator.index(dim)
        self.padded_dim = padded_dim(self.dim)
        if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
            raise ParameterError(f"the rotation seed must be {SEED_BYTES} bytes; use for_round")
        bits = np.frombuffer(AesCtrPrg(bytes(seed)).bytes((self.padded_dim + 7) // 8), np.uint8)
        signs = 1.0 - 2.0 * np.unpackbits(bits, count=self.padded_dim).astype(np.float64)
        signs.flags.writeable = False
        self._signs = signs

    @classmethod
    def for_round(
        cls, dim: int, public_seed: bytes, *, session: bytes | str, round: int
    ) -> RandomizedHadamard:
        """The rotation of one aggregation round, derivable by every client and the server.

        Parameters
        ----------
        dim : int
            Vector length.
        public_seed : bytes
            At least 16 public, unpredictable-in-advance bytes agreed for the session (e.g.
            a value the server broadcasts, or a hash of the signed key transcript).
        session : bytes or str
            Session id (domain separation between sessions).
        round : int
            Round number (fresh signs every round).
        """
        domain = Domain(protocol="dp", purpose="rotation-signs", session=session, round=round)
        return cls(dim, derive_key(public_seed, domain, SEED_BYTES))

    def __repr__(self) -> str:
        return f"RandomizedHadamard(dim={self.dim}, padded_dim={self.padded_dim})"

    @property
    def signs(self) -> npt.NDArray[np.float64]:
        """The diagonal of ``D`` (read-only)."""
        return self._signs

    def forward(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``R x`` for a real vector of length ``dim``: a float64 vector of length ``d'``."""
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ParameterError(f"cannot rotate an array of dtype {arr.dtype}; pass reals")
        if arr.shape != (self.dim,):
            raise ShapeMismatchError(f"expected a vector of shape ({self.dim},), got {arr.shape}")
        padded = np.zeros(self.padded_dim, dtype=np.float64)
        padded[: self.dim] = arr
        if not np.isfinite(padded).all():
            raise EncodingOverflowError("the vector holds NaN or infinity; it cannot be rotated")
        padded *= self._signs
        out = np.asarray(fwht(padded), dtype=np.float64)  # float in, float out
        out *= 1.0 / math.sqrt(self.padded_dim)
        return out

    def inverse(self, y: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``R^T y`` for a vector of length ``d'``, truncated to the first ``dim`` entries."""
        arr = np.asarray(y)
        if arr.dtype.kind not in "biuf":
            raise ParameterError(f"cannot rotate an array of dtype {arr.dtype}; pass reals")
        if arr.shape != (self.padded_dim,):
            raise ShapeMismatchError(
                f"expected a vector of shape ({self.padded_dim},), got {arr.shape}"
            )
        out = np.asarray(fwht(arr.astype(np.float64)), dtype=np.float64)
        out *= self._signs
        out *= 1.0 / math.sqrt(self.padded_dim)
        return out[: self.dim].copy()
