"""Paillier ciphertext arithmetic in ``Z_{n^2}^*`` with gmpy2 (no decryption anywhere).

With ``g = n + 1`` (Damgård and Jurik, PKC 2001, section 3) a ciphertext of ``m`` is
``c = (1 + m*n) * r^n mod n^2`` for a random unit ``r`` (Paillier, EUROCRYPT 1999,
section 4), and the homomorphisms used by the backend are

* ``c_1 * c_2 mod n^2`` encrypts ``m_1 + m_2 (mod n)``;
* ``c^k mod n^2`` encrypts ``k * m (mod n)``, ``c^(-1)`` encrypts ``-m``;
* ``c * (1 + m'*n) mod n^2`` encrypts ``m + m'`` for a public ``m'`` (no randomness
  needed: the result is as random as ``c``).

Derived ciphertexts are *not* re-randomized here: ``c^k`` with a public ``k`` and an ``r``
someone has seen lets that party test guesses of ``k``. The backend multiplies by a fresh
``r^n`` (:func:`rerandomize`) before any ciphertext leaves the process. Everything runs on
gmpy2 ``mpz`` (phe's own kernels convert to ``int`` after every call); the randomness
``r`` comes from :mod:`secrets` (the OS CSPRNG).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

from securecomp.errors import MalformedMessageError
from securecomp.he.paillier.keys import PaillierPublicKey

__all__ = [
    "Kernels",
    "check_ciphertexts",
    "encrypt_raw",
    "obfuscators",
    "rerandomize",
]

ObjArray = npt.NDArray[np.object_]
_ONE = gmpy2.mpz(1)


def obfuscators(key: PaillierPublicKey, count: int) -> list[Any]:
    """``count`` fresh values ``r^n mod n^2`` with ``r`` uniform among the units mod ``n``."""
    n, nsq = key.n_mpz, key.nsquare
    out: list[Any] = []
    while len(out) < count:
        r = gmpy2.mpz(secrets.randbelow(key.n - 1) + 1)
        # A non-unit r (probability ~2^-(bits/2)) would factor n; draw again rather than
        # produce a ciphertext outside Z_{n^2}^*.
        if gmpy2.gcd(r, n) != 1:
            continue
        out.append(gmpy2.powmod(r, n, nsq))
    return out


def encrypt_raw(key: PaillierPublicKey, plaintexts: Sequence[int]) -> list[Any]:
    """Encrypt integers (reduced mod ``n``; negatives encrypt ``n + m``) with fresh ``r``."""
    n, nsq = key.n_mpz, key.nsquare
    rs = obfuscators(key, len(plaintexts))
    return [(n * (gmpy2.mpz(m) % n) + 1) * r % nsq for m, r in zip(plaintexts, rs, strict=True)]


def rerandomize(key: PaillierPublicKey, ciphertexts: Iterable[Any]) -> list[Any]:
    """Multiply each ciphertext by a fresh ``r^n``: same plaintexts, unlinkable ciphertexts."""
    cts = list(ciphertexts)
    nsq = key.nsquare
    return [c * r % nsq for c, r in zip(cts, obfuscators(key, len(cts)), strict=True)]


def check_ciphertexts(key: PaillierPublicKey, ciphertexts: Iterable[Any]) -> None:
    """Validate ciphertexts received from elsewhere: ``0 < c < n^2`` and ``gcd(c, n) = 1``.

    phe accepts any integer; a ciphertext outside ``Z_{n^2}^*`` is not an encryption of
    anything, and one sharing a factor with ``n`` would reveal the factorization.

    Raises
    ------
    MalformedMessageError
        Naming the index of the first invalid ciphertext.
    """
    n, nsq = key.n_mpz, key.nsquare
    for i, c in enumerate(ciphertexts):
        if not 0 < c < nsq:
            raise MalformedMessageError(
                f"ciphertext {i} is outside (0, n^2): forged or corrupted; discard the message"
            )
        if gmpy2.gcd(c, n) != 1:
            raise MalformedMessageError(
                f"ciphertext {i} is not a unit modulo n (gcd(c, n) != 1): forged; discard the "
                "message"
            )


def _as_object_array(value: Any) -> ObjArray:
    """Wrap a ufunc result (an array, or a bare object for 0-d inputs) as an object array."""
    if isinstance(value, np.ndarray):
        return value
    out = np.empty((), dtype=object)
    out[()] = value
    return out


class Kernels:
    """Vectorized (object-array, numpy-broadcasting) ciphertext operations for one key.

    Every method is pure: inputs are never modified, outputs are fresh arrays of ``mpz``.
    """

    def __init__(self, key: PaillierPublicKey) -> None:
        self.key = key
        n, nsq = key.n_mpz, key.nsquare
        self._n, self._nsq = n, nsq
        self._mul = np.frompyfunc(lambda a, b: a * b % nsq, 2, 1)
        self._add_plain = np.frompyfunc(lambda c, m: c * (n * (m % n) + 1) % nsq, 2, 1)
        self._pow = np.frompyfunc(lambda c, k: gmpy2.powmod(c, k, nsq), 2, 1)
        self._inv = np.frompyfunc(lambda c: gmpy2.invert(c, nsq), 1, 1)

    def add(self, a: ObjArray, b: ObjArray) -> ObjArray:
        """Encrypts ``a + b`` (broadcasting)."""
        return _as_object_array(self._mul(a, b))

    def add_plain(self, a: ObjArray, m: Any) -> ObjArray:
        """Encrypts ``a + m`` for public integers ``m`` (broadcasting)."""
        return _as_object_array(self._add_plain(a, m))

    def neg(self, a: ObjArray) -> ObjArray:
        """Encrypts ``-a``: the inverse modulo ``n^2``."""
        return _as_object_array(self._inv(a))

    def mul_plain(self, a: ObjArray, k: Any) -> ObjArray:
        """Encrypts ``k * a`` for public integers ``k`` of any sign (broadcasting)."""
        return _as_object_array(self._pow(a, k))

    def sum(self, a: ObjArray, axis: int | None) -> ObjArray:
        """Encrypts the sum over ``axis`` (all when None); ``1`` encrypts an empty sum."""
        if axis is None:
            acc = _ONE
            for c in a.ravel():
                acc = acc * c % self._nsq
            return _as_object_array(acc)
        return _as_object_array(self._mul.reduce(a, axis=axis, initial=_ONE))

    def lincomb(self, cts: Iterable[Any], ks: Iterable[int]) -> Any:
        """Encrypts ``sum_i k_i * m_i``: one inversion for all the negative coefficients."""
        nsq = self._nsq
        pos, neg = _ONE, _ONE
        for c, k in zip(cts, ks, strict=True):
            if k > 0:
                pos = pos * gmpy2.powmod(c, k, nsq) % nsq
            elif k < 0:
                neg = neg * gmpy2.powmod(c, -k, nsq) % nsq
        if neg != 1:
            pos = pos * gmpy2.invert(neg, nsq) % nsq
        return pos

    def trivial(self, m: Any) -> Any:
        """``1 + m*n mod n^2``: the encryption of ``m`` with ``r = 1`` (not hiding)."""
        return (self._n * (gmpy2.mpz(m) % self._n) + 1) % self._nsq
