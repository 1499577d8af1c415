"""Shamir secret sharing of byte strings over GF(2^31 - 1), vectorized in numpy.

Shamir (CACM 1979): to share ``s`` with threshold ``t``, pick a polynomial
``f(X) = s + a_1 X + ... + a_{t-1} X^{t-1}`` with uniformly random coefficients over a
prime field and give party ``i`` the point ``(x_i, f(x_i))``. Any ``t`` points determine
``f`` and hence ``s = f(0) = sum_i lambda_i f(x_i)`` (Lagrange); any ``t - 1`` points are
uniformly distributed whatever ``s`` is (perfect secrecy).

Field and limbs (the design choice)
-----------------------------------
Secure aggregation shares 32-byte secrets (X25519 private keys and PRG seeds), so the
field would need more than 256 bits and every operation would be a Python big-integer
operation. Instead a secret is split into 30-bit *limbs* (little-endian), each shared with
its own independent polynomial over the Mersenne prime ``p = 2^31 - 1``:

* every limb is below ``2^30 < p``, so the map bytes -> limbs is injective;
* products of two field elements are below ``2^62`` and Horner's step
  ``acc * x + c`` stays below ``2^63``: exact in ``uint64``, so sharing many secrets to
  many parties is a handful of numpy operations on ``(parties, secrets * limbs)`` arrays;
* secrecy holds limb by limb (independent polynomials, each perfectly hiding its constant
  term), hence for the whole secret. A 32-byte secret has 9 limbs, and a share is 9 field
  elements stored as 36 bytes (little-endian ``uint32``).

Evaluation points must be distinct and nonzero modulo ``p``; party ``i`` of a protocol
typically uses ``x_i = i + 1``. Coefficients come from an AES-CTR keystream
(`securecomp.crypto.prg.AesCtrPrg`, fresh OS-random seed by default) with exact rejection
sampling: no modulo bias.

Reconstruction computes the Lagrange coefficients at zero once per set of points (cached:
a server reconstructs many secrets from the same survivors) and applies them to all limbs
of all secrets at once. A reconstructed limb of ``2^30`` or more, or a top limb beyond the
secret's length, cannot come from consistent shares and raises `IntegrityError`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.crypto.prg import AesCtrPrg
from securecomp.errors import IntegrityError, MalformedMessageError, ParameterError

__all__ = [
    "FIELD_PRIME",
    "LIMB_BITS",
    "evaluate_polynomials",
    "lagrange_at_zero",
    "limbs_for",
    "limbs_to_secrets",
    "reconstruct_secrets",
    "secrets_to_limbs",
    "share_bytes_for",
    "share_from_bytes",
    "share_secrets",
    "share_to_bytes",
]

#: The field modulus, the Mersenne prime 2^31 - 1.
FIELD_PRIME = (1 << 31) - 1
#: Bits of secret per field element; 2^30 < p keeps the encoding injective.
LIMB_BITS = 30

_P = np.uint64(FIELD_PRIME)
_LIMB_MASK = (1 << LIMB_BITS) - 1
_SHARE_DTYPE = np.dtype("<u4")
#: Caps the Lagrange cache: each entry is one float-free uint64 vector per point set.
_CACHE_SIZE = 4096


def limbs_for(secret_bytes: int) -> int:
    """Number of field elements that hold a secret of ``secret_bytes`` bytes."""
    n = operator.index(secret_bytes)
    if n < 1:
        raise ParameterError(f"secrets must be at least 1 byte long, got {n}")
    return -(-8 * n // LIMB_BITS)


def share_bytes_for(secret_bytes: int) -> int:
    """Bytes of one share of a ``secret_bytes``-byte secret on the wire (4 per limb)."""
    return 4 * limbs_for(secret_bytes)


def secrets_to_limbs(secrets: Sequence[bytes]) -> npt.NDArray[np.uint64]:
    """Split equal-length secrets into 30-bit little-endian limbs.

    Returns
    -------
    ndarray of uint64, shape ``(len(secrets), limbs_for(len(secret)))``
    """
    if len(secrets) == 0:
        raise ParameterError("give at least one secret")
    length = len(secrets[0])
    limbs = limbs_for(length)
    out = np.empty((len(secrets), limbs), dtype=np.uint64)
    for row, secret in enumerate(secrets):
        if not isinstance(secret, bytes | bytearray | memoryview) or len(secret) != length:
            raise ParameterError(
                f"secrets must be bytes of one common length ({length}); secret {row} is not"
            )
        value = int.from_bytes(secret, "little")
        out[row] = [(value >> (LIMB_BITS * j)) & _LIMB_MASK for j in range(limbs)]
    return out


def limbs_to_secrets(limbs: npt.NDArray[Any], secret_bytes: int) -> list[bytes]:
    """Inverse of `secrets_to_limbs`; refuses limbs no secret of that length produces.

    Raises
    ------
    IntegrityError
        A limb is ``>= 2^30`` or the value does not fit ``secret_bytes`` bytes: the shares
        it was reconstructed from are inconsistent (corrupted, or from different secrets).
    """
    arr = np.asarray(limbs)
    expected = limbs_for(secret_bytes)
    if arr.ndim != 2 or arr.shape[1] != expected:
        raise ParameterError(f"limbs must have shape (count, {expected}), got {arr.shape}")
    if arr.size and int(arr.max()) > _LIMB_MASK:
        raise IntegrityError(
            "reconstructed a field element >= 2^30, which no secret encodes: the shares "
            "are inconsistent (corrupted, or not all from the same secret)"
        )
    out = []
    for row in arr.tolist():
        value = 0
        for j, limb in enumerate(row):
            value |= limb << (LIMB_BITS * j)
        if value.bit_length() > 8 * secret_bytes:
            raise IntegrityError(
                f"reconstructed value exceeds {secret_bytes} bytes: the shares are "
                "inconsistent (corrupted, or not all from the same secret)"
            )
        out.append(value.to_bytes(secret_bytes, "little"))
    return out


def _check_points(points: Sequence[int] | npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    try:
        xs = [operator.index(x) for x in points]
    except TypeError as exc:
        raise ParameterError("evaluation points must be integers") from exc
    if not xs:
        raise ParameterError("give at least one evaluation point")
    if any(not 0 < x < FIELD_PRIME for x in xs):
        raise ParameterError(
            f"evaluation points must lie in [1, {FIELD_PRIME - 1}] (zero is the secret's point)"
        )
    if len(set(xs)) != len(xs):
        raise ParameterError("evaluation points must be distinct")
    return np.asarray(xs, dtype=np.uint64)


def evaluate_polynomials(
    coefficients: npt.NDArray[np.uint64], points: Sequence[int] | npt.NDArray[Any]
) -> npt.NDArray[np.uint64]:
    """Evaluate many polynomials over GF(p) at many points by Horner's rule.

    Parameters
    ----------
    coefficients : ndarray of uint64, shape ``(degree + 1, count)``
        Column ``j`` holds polynomial ``j``, constant term first; entries below ``p``.
    points : sequence of int
        Distinct nonzero evaluation points below ``p``.

    Returns
    -------
    ndarray of uint64, shape ``(len(points), count)``
        ``out[i, j] = f_j(points[i]) mod p``.
    """
    coeffs = np.asarray(coefficients)
    if coeffs.ndim != 2 or coeffs.dtype != np.uint64 or coeffs.shape[0] < 1:
        raise ParameterError("coefficients must be a 2-D uint64 array (degree + 1, count)")
    if coeffs.size and int(coeffs.max()) >= FIELD_PRIME:
        raise ParameterError("coefficients must be reduced modulo the field prime")
    xs = _check_points(points)[:, None]
    acc = np.broadcast_to(coeffs[-1], (xs.shape[0], coeffs.shape[1])).copy()
    # acc < p and x < p, so acc * x + c < 2^62 + 2^31: exact in uint64.
    for row in coeffs[-2::-1]:
        acc *= xs
        acc += row
        acc %= _P
    return acc


def share_secrets(
    secrets: Sequence[bytes],
    threshold: int,
    points: Sequence[int] | npt.NDArray[Any],
    *,
    prg: AesCtrPrg | None = None,
) -> npt.NDArray[np.uint32]:
    """Shamir-share each secret so that any ``threshold`` of the points reconstruct it.

    Parameters
    ----------
    secrets : sequence of bytes
        Secrets of one common length.
    threshold : int
        ``1 <= threshold <= len(points)``: shares needed to reconstruct; fewer reveal
        nothing.
    points : sequence of int
        The holders' distinct evaluation points in ``[1, p)``.
    prg : AesCtrPrg, optional
        Source of the random coefficients; a fresh OS-seeded one by default. Pass one only
        to reproduce shares in tests: the coefficients must stay secret.

    Returns
    -------
    ndarray of uint32, shape ``(len(points), len(secrets), limbs)``
        ``out[i]`` is the share of the holder with ``points[i]``, for every secret.
    """
    t = operator.index(threshold)
    xs = _check_points(points)
    if not 1 <= t <= xs.size:
        raise ParameterError(
            f"threshold must lie in [1, {xs.size}] (the number of holders), got {t}"
        )
    base = secrets_to_limbs(secrets)
    count, limbs = base.shape
    gen = prg if prg is not None else AesCtrPrg.from_random()
    coeffs = np.empty((t, count * limbs), dtype=np.uint64)
    coeffs[0] = base.reshape(-1)
    if t > 1:
        coeffs[1:] = gen.random_below(FIELD_PRIME, (t - 1, count * limbs))
    values = evaluate_polynomials(coeffs, xs)
    return values.astype(np.uint32).reshape(xs.size, count, limbs)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _lagrange_cached(points: tuple[int, ...]) -> npt.NDArray[np.uint64]:
    p = FIELD_PRIME
    xs = np.asarray(points, dtype=np.uint64)
    m = xs.size
    # den_i = prod_{j != i} (x_j - x_i) mod p, built column by column to stay below 2^62.
    den = np.ones(m, dtype=np.uint64)
    num_all = 1
    for j in range(m):
        diff = (xs[j] + _P - xs) % _P
        diff[j] = 1
        den = den * diff % _P
        num_all = num_all * points[j] % p
    out = np.empty(m, dtype=np.uint64)
    for i in range(m):
        # lambda_i = prod_{j != i} x_j / (x_j - x_i) = (prod_j x_j) / (x_i * den_i).
        out[i] = num_all * pow(points[i] * int(den[i]) % p, p - 2, p) % p
    out.setflags(write=False)
    return out


def lagrange_at_zero(points: Sequence[int]) -> npt.NDArray[np.uint64]:
    """Lagrange coefficients ``lambda_i`` with ``f(0) = sum_i lambda_i f(x_i)`` over GF(p).

    Cached per (ordered) point set, so reconstructing many secrets from the same
    survivors computes them once. The returned array is read-only.
    """
    xs = _check_points(points)
    return _lagrange_cached(tuple(int(x) for x in xs))


def reconstruct_secrets(
    points: Sequence[int], shares: npt.NDArray[Any], secret_bytes: int
) -> list[bytes]:
    """Recover the secrets from the shares of the holders at ``points``.

    Parameters
    ----------
    points : sequence of int
        Distinct evaluation points of the holders whose shares are given; at least the
        threshold used when sharing (with fewer the result is garbage, almost always
        detected as `IntegrityError`).
    shares : array, shape ``(len(points), count, limbs)``
        ``shares[i]`` is the holder at ``points[i]``'s share of every secret.
    secret_bytes : int
        Length of each secret.

    Returns
    -------
    list of bytes
        ``count`` secrets.

    Raises
    ------
    IntegrityError
        The shares are inconsistent (see `limbs_to_secrets`).
    MalformedMessageError
        A share value is not a field element.
    """
    lam = lagrange_at_zero(points)
    arr = np.asarray(shares)
    limbs = limbs_for(secret_bytes)
    if arr.ndim != 3 or arr.shape[0] != lam.size or arr.shape[2] != limbs:
        raise ParameterError(
            f"shares must have shape ({lam.size}, count, {limbs}), got {arr.shape}"
        )
    if arr.dtype.kind not in "ui":
        raise ParameterError(f"shares must be integers, got dtype {arr.dtype}")
    values = arr.astype(np.uint64)
    if values.size and int(values.max()) >= FIELD_PRIME:
        raise MalformedMessageError("a share holds a value outside the field GF(2^31 - 1)")
    acc = np.zeros(arr.shape[1:], dtype=np.uint64)
    for coeff, share in zip(lam, values, strict=True):
        acc += share * coeff % _P  # each term < p; the running sum is reduced at once
        acc %= _P
    return limbs_to_secrets(acc, secret_bytes)


def share_to_bytes(share: npt.NDArray[Any]) -> bytes:
    """One holder's share of one secret (``limbs`` field elements) as little-endian bytes."""
    arr = np.asarray(share)
    if arr.ndim != 1:
        raise ParameterError("a share is a 1-D array of field elements")
    return arr.astype(_SHARE_DTYPE).tobytes()


def share_from_bytes(data: bytes, secret_bytes: int) -> npt.NDArray[np.uint32]:
    """Parse `share_to_bytes` output, checking its length and that values are in the field.

    Raises
    ------
    MalformedMessageError
        Wrong length or a value ``>= p``.
    """
    want = share_bytes_for(secret_bytes)
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) != want:
        raise MalformedMessageError(
            f"a share of a {secret_bytes}-byte secret is {want} bytes, got "
            f"{len(data) if isinstance(data, bytes | bytearray | memoryview) else type(data)}"
        )
    arr = np.frombuffer(bytes(data), dtype=_SHARE_DTYPE).astype(np.uint32)
    if int(arr.max()) >= FIELD_PRIME:
        raise MalformedMessageError("a share holds a value outside the field GF(2^31 - 1)")
    return arr
