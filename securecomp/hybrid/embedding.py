"""Exact CKKS encoding and decoding of real slot vectors, in SEAL's slot order.

A CKKS plaintext is an integer polynomial ``p`` of degree below ``N``; its slots are the
values of the canonical embedding ``sigma(p)_j = p(zeta^(e_j)) / Delta`` at the primitive
``2N``-th roots of unity ``zeta^(e_j)``, ``zeta = exp(2 pi i / 2N)``, with
``e_j = 3^j mod 2N`` for slot ``j < N/2`` (the conjugate slots sit at ``-e_j``), as in
Microsoft SEAL's ``CKKSEncoder`` (Cheon, Kim, Kim, Song, "Homomorphic encryption for
arithmetic of approximate numbers", ASIACRYPT 2017, section 3.2; SEAL 4 source, the
``matrix_reps_index_map_`` with generator 3).

SEAL computes both directions in float64, so a slot value of magnitude ``2^m`` carries an
error of about ``2^(m - 52)`` that is a deterministic function of the *whole* vector. The
HE -> MPC conversion adds masks of magnitude ``2^(sigma + b)`` and must know exactly what it
added, and the key holder must read ``y + mask`` without losing the low bits of ``y``; so
this module evaluates the embedding exactly:

* **Fixed point.** Roots of unity are integers scaled by ``2^ROOT_BITS`` (192 bits, from
  the half-angle formulas with exact integer square roots, then powers by multiplication:
  error below ``2^-177``); the transform is a radix-2 FFT on Python integers (numpy object
  arrays), rounding each twiddle product to the nearest integer. An error made at one of
  the ``log2 N`` stages is at most doubled by each later stage, so the rounding of the
  whole transform stays below ``N`` units of its inputs' last bit; the inputs therefore
  carry guard bits: ``2^ROOT_BITS`` for decoding, and for encoding enough that the
  transform's error is below ``2^-GUARD_BITS`` (``2^-20``) of a coefficient.
* **Encoding** (`encode_real`): ``p = round(Delta sigma^-1(v))`` for a real slot vector
  ``v = K 2^-u`` given by integers ``K``; the result differs from the exact real
  ``Delta sigma^-1(v)`` by at most ``1/2 + 2^-20`` per coefficient.
* **Decoding** (`decode_real`): ``round(Re(sigma(p)_j) 2^f / Delta)`` for integer
  coefficients; the transform's error is below ``N 2^-192`` of a slot value.

``Delta`` is passed as an exact `fractions.Fraction` (a ciphertext's scale times the
backend's gain, see `securecomp.he.ckks.kernels`). Cost: ``N log2 N`` multiplications of
~200-bit integers, about 0.1 s for ``N = 16384``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import ParameterError

__all__ = [
    "GUARD_BITS",
    "ROOT_BITS",
    "bit_reversal",
    "decode_real",
    "encode_real",
    "slot_positions",
]

#: Fixed-point bits of the roots of unity.
ROOT_BITS = 192
#: The encoder's transform error is below ``2^-GUARD_BITS`` of a coefficient.
GUARD_BITS = 20
#: SEAL's generator of the slot rotation group for CKKS (``e_j = 3^j mod 2N``).
_GENERATOR = 3
_HALF = 1 << (ROOT_BITS - 1)

Objects = npt.NDArray[Any]


def _check_degree(degree: int) -> int:
    if isinstance(degree, bool) or not isinstance(degree, int):
        raise ParameterError(f"the ring degree must be an int, got {degree!r}")
    if degree < 4 or degree > 1 << 16 or degree & (degree - 1):
        raise ParameterError(f"the ring degree must be a power of two in [4, 2^16], got {degree}")
    return degree


@functools.cache
def _roots(degree: int) -> tuple[Objects, Objects]:
    """``zeta^k`` for ``k < N``, ``zeta = exp(2 pi i / 2N)``: fixed-point real, imaginary."""
    one = 1 << ROOT_BITS
    # Half angles from pi down to 2 pi / 2N: cos(t/2) = sqrt((1 + cos t) / 2) and
    # sin(t/2) = sin t / (2 cos(t/2)); sin(pi/2) = 1 starts the second recurrence.
    c, s, parts = -one, 0, 2
    while parts < 2 * degree:
        c_half = math.isqrt(((one + c) * one) >> 1)
        s = one if parts == 2 else (s * one) // (2 * c_half)
        c, parts = c_half, parts * 2
    re, im = [one], [0]
    for _ in range(1, degree):
        a, b = re[-1], im[-1]
        re.append((a * c - b * s + _HALF) >> ROOT_BITS)
        im.append((a * s + b * c + _HALF) >> ROOT_BITS)
    return np.array(re, dtype=object), np.array(im, dtype=object)


@functools.cache
def bit_reversal(n: int) -> npt.NDArray[np.intp]:
    """The permutation reversing the ``log2 n`` bits of each index (``n`` a power of two)."""
    bits = n.bit_length() - 1
    idx = np.arange(n, dtype=np.intp)
    out = np.zeros(n, dtype=np.intp)
    for b in range(bits):
        out |= ((idx >> b) & 1) << (bits - 1 - b)
    return out


@functools.cache
def slot_positions(degree: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indices ``(e_j - 1) / 2`` and ``(2N - e_j - 1) / 2`` of slot ``j`` and its conjugate.

    Index ``k`` of a length-``N`` DFT of ``p_i zeta^i`` is ``p(zeta^(2k + 1))``.
    """
    n = _check_degree(degree)
    m = 2 * n
    e = np.empty(n // 2, dtype=np.int64)
    pos = 1
    for j in range(n // 2):
        e[j] = pos
        pos = pos * _GENERATOR % m
    return ((e - 1) // 2).astype(np.intp), ((m - e - 1) // 2).astype(np.intp)


def _dft(re: Objects, im: Objects, inverse: bool) -> tuple[Objects, Objects]:
    """``X_k = sum_i x_i w^(+-ik)``, ``w = exp(2 pi i / N)`` (unnormalized), fixed point.

    Radix-2 decimation in time on Python integers; each twiddle product is rounded to the
    nearest integer (the data keep their own scale).
    """
    n = re.size
    zr, zi = _roots(n)
    order = bit_reversal(n)
    xr, xi = re[order], im[order]
    span = 2
    while span <= n:
        half = span // 2
        idx = np.arange(half) * (2 * n // span)  # w^k = zeta^(2 k N / span)
        wr, wi = zr[idx], (-zi[idx] if inverse else zi[idx])
        xr, xi = xr.reshape(-1, span), xi.reshape(-1, span)
        ar, ai, br, bi = xr[:, :half], xi[:, :half], xr[:, half:], xi[:, half:]
        tr = (br * wr - bi * wi + _HALF) >> ROOT_BITS
        ti = (br * wi + bi * wr + _HALF) >> ROOT_BITS
        xr = np.concatenate([ar + tr, ar - tr], axis=1).reshape(-1)
        xi = np.concatenate([ai + ti, ai - ti], axis=1).reshape(-1)
        span *= 2
    return xr, xi


def _round_div(num: Objects, den: int) -> Objects:
    """Nearest integer of ``num / den`` (``den > 0``; ties upward), elementwise."""
    return (num + den // 2) // den


def encode_real(
    numerators: Sequence[int] | Objects, unit_bits: int, scale: Fraction, degree: int
) -> Objects:
    """Coefficients ``round(Delta sigma^-1(v))`` of the real slot vector ``v = K 2^-u``.

    Parameters
    ----------
    numerators : sequence of int
        ``K``: one integer per slot, at most ``N/2`` (the remaining slots are zero).
    unit_bits : int
        ``u``: the slot values are ``K 2^-u``.
    scale : Fraction
        ``Delta > 0``.
    degree : int
        ``N``.

    Returns
    -------
    ndarray of Python int (object), length ``N``
        Within ``1/2 + 2^-20`` of the exact ``Delta sigma^-1(v)`` coefficientwise.
    """
    n = _check_degree(degree)
    k = np.array([int(x) for x in numerators], dtype=object)
    if k.size > n // 2:
        raise ParameterError(f"{k.size} slot values exceed the {n // 2} slots of N = {n}")
    if scale <= 0:
        raise ParameterError(f"the scale must be positive, got {scale}")
    # The transform's rounding stays below N units of the inputs' last bit, i.e. below one
    # such unit after the division by N; in coefficients that unit is Delta 2^-(u + guard).
    log2_scale = scale.numerator.bit_length() - scale.denominator.bit_length() + 1
    guard = max(0, log2_scale - unit_bits) + GUARD_BITS
    first, conj = slot_positions(n)
    vr = np.zeros(n, dtype=object)
    vr[:] = 0
    vr[first[: k.size]] = k << guard
    vr[conj[: k.size]] = k << guard  # real slots: the conjugate holds the same value
    vi = np.zeros(n, dtype=object)
    vi[:] = 0
    xr, xi = _dft(vr, vi, inverse=True)
    zr, zi = _roots(n)
    # p_i = Re(zeta^-i X_i) / N: the real part of the product by the conjugate root.
    twisted = xr * zr + xi * zi
    den = scale.denominator * n << (ROOT_BITS + guard + unit_bits)
    return _round_div(twisted * scale.numerator, den)


def decode_real(coeffs: Objects, scale: Fraction, frac_bits: int, count: int) -> list[int]:
    """``round(Re(sigma(p)_j) 2^f / Delta)`` for the first ``count`` slots (exact integers).

    Parameters
    ----------
    coeffs : ndarray of Python int (object), length ``N``
        The plaintext polynomial, centered (not reduced modulo anything).
    scale : Fraction
        ``Delta > 0``.
    frac_bits : int
        ``f``.
    count : int
        Slots wanted (``<= N/2``).
    """
    p = np.asarray(coeffs, dtype=object)
    n = _check_degree(p.size)
    if not 0 <= count <= n // 2:
        raise ParameterError(f"cannot read {count} slots of a degree-{n} plaintext")
    if scale <= 0:
        raise ParameterError(f"the scale must be positive, got {scale}")
    zr, zi = _roots(n)
    vr, _ = _dft(p * zr, p * zi, inverse=False)
    first, _ = slot_positions(n)
    num = vr[first[:count]] * (scale.denominator << max(frac_bits, 0))
    den = scale.numerator << (ROOT_BITS + max(-frac_bits, 0))
    return [int(v) for v in _round_div(num, den)]
