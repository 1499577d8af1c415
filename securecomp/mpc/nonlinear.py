"""Nonlinear functions on shared fixed-point tensors, each with its input range and error.

Every function takes and returns tensors of the ``shares`` backend (one party's view; all
parties call it together). Rounds are online rounds with dealer truncation; ``f`` is the
number of fractional bits (default 16, one ulp = 2^-16 ~ 1.5e-5).

============================ ========================= ===================== ==========
function                     input range               error                 rounds
============================ ========================= ===================== ==========
`relu`, `maximum`            any (tracked bound)       exact                 9
`max`, `argmax` (n entries)  any                       exact                 9 ceil(lg n)
`sigmoid_piecewise`          any                       exact (of its formula) 9
`sigmoid_poly` (degree d)    ``|x| <= interval``       fit error + ~d ulps   d + 3
`reciprocal`                 ``lo <= x <= hi``         ~ (k + 2) ulps / lo^2 4k + 2
`divide`                     ``lo <= b <= hi``         see `divide`          4k + 4
`exp`                        ``|x| <= bound``          2^(n-14) e^x + 8 ulp 2n + 8
============================ ========================= ===================== ==========

The comparison behind `relu` and `max` is `securecomp.mpc.comparison.ltz` (8 rounds);
multiplying by the resulting 0/1 integer needs no truncation, hence the exact results.
The ranges of `reciprocal`, `divide`, `sigmoid_poly` and `exp` are preconditions the
caller states: they cannot be checked without revealing the input, and outside them the
iterations diverge or the polynomial leaves the function (documented, not detected).

Threat model: as for the backend (semi-honest, non-colluding dealer); nothing is opened
except uniformly masked values.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import ParameterError, UnsupportedOperationError
from securecomp.mpc import bounds
from securecomp.mpc.backend import SharesBackend
from securecomp.mpc.beaver import beaver
from securecomp.mpc.comparison import ltz
from securecomp.mpc.material import Bilinear
from securecomp.mpc.truncation import truncate
from securecomp.tensor import SecureTensor

if TYPE_CHECKING:
    from securecomp.mpc.session import Session

__all__ = [
    "argmax",
    "divide",
    "exp",
    "max",
    "maximum",
    "reciprocal",
    "relu",
    "sigmoid_piecewise",
    "sigmoid_poly",
    "sigmoid_poly_coefficients",
]

_max = max  # the builtin, before `max` below shadows it


def _backend(t: SecureTensor) -> SharesBackend:
    if not isinstance(t.backend, SharesBackend):
        raise UnsupportedOperationError(
            f"this function needs a tensor of the shares backend, got {t.backend.describe()}"
        )
    return t.backend


def _times_bit(sess: Session, z: npt.NDArray[np.uint64], bit: npt.NDArray[np.uint64]) -> Any:
    """Shares of ``z * bit`` for an additively shared integer bit: exact, one round."""
    return beaver(sess, Bilinear.MUL, z, bit)


def relu(x: SecureTensor) -> SecureTensor:
    """``max(x, 0)``, exactly: ``x - x [x < 0]``. 9 rounds."""
    b = _backend(x)
    sess = b.session
    z = x.payload
    neg = _times_bit(sess, z, ltz(sess, z))
    return b.wrap(np.subtract(z, neg), x.meta["bound"])


def maximum(x: SecureTensor, y: SecureTensor) -> SecureTensor:
    """Elementwise ``max(x, y) = y + relu(x - y)``, exactly. 9 rounds."""
    b = _backend(x)
    d = x - y  # checks shapes, keys and that |x - y| is representable
    # The identity is exact (no truncation), so the result obeys the operands' bounds.
    r = _max(x.meta["bound"], y.meta["bound"])
    return b.wrap(np.add(np.broadcast_to(y.payload, d.shape), relu(d).payload), r)


def _tournament(
    x: SecureTensor, axis: int, with_index: bool
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Shares of the maximum along ``axis`` and of its index (fixed point), by rounds of
    pairwise comparisons of adjacent entries (adjacent, so that each winner stands for a
    contiguous block and ties resolve to the first occurrence)."""
    sess = _backend(x).session
    if x.ndim == 0:
        raise ParameterError("max/argmax of a 0-d tensor; reshape it first")
    v = np.moveaxis(np.asarray(x.payload), axis % x.ndim, -1)
    n = v.shape[-1]
    if n == 0:
        raise ParameterError("max/argmax of an empty axis")
    if sess.is_first:
        one = np.uint64(1 << sess.frac_bits)
        idx = np.broadcast_to(np.arange(n, dtype=np.uint64) * one, v.shape)
    else:
        idx = np.zeros(v.shape, dtype=np.uint64)
    while v.shape[-1] > 1:
        m = v.shape[-1] // 2
        lo, hi, rest = v[..., 0 : 2 * m : 2], v[..., 1 : 2 * m : 2], v[..., 2 * m :]
        bit = ltz(sess, np.subtract(lo, hi))  # [hi > lo]: ties keep the lower index
        diffs = [np.subtract(hi, lo)]
        if with_index:
            diffs.append(np.subtract(idx[..., 1 : 2 * m : 2], idx[..., 0 : 2 * m : 2]))
        # One Beaver round for both products (the bit broadcasts over the stack).
        prod = beaver(sess, Bilinear.MUL, np.stack(diffs), bit)
        v = np.concatenate([lo + prod[0], rest], axis=-1)
        if with_index:
            idx = np.concatenate([idx[..., 0 : 2 * m : 2] + prod[1], idx[..., 2 * m :]], axis=-1)
    return v[..., 0], np.asarray(idx)[..., 0]


def max(x: SecureTensor, axis: int = -1) -> SecureTensor:
    """Maximum along ``axis`` by a tournament of `maximum`; exact. 9 ceil(log2 n) rounds."""
    values, _ = _tournament(x, axis, with_index=False)
    return _backend(x).wrap(values, x.meta["bound"])


def argmax(x: SecureTensor, axis: int = -1) -> SecureTensor:
    """Index of the maximum along ``axis`` (first occurrence on ties), as a shared value.

    The index is a fixed-point integer (reveal gives e.g. ``3.0``); same cost as `max`,
    whose value it computes alongside in the same Beaver rounds.
    """
    _, index = _tournament(x, axis, with_index=True)
    n = x.shape[axis % x.ndim]
    return _backend(x).wrap(index, (n - 1) << _backend(x).session.frac_bits)


def sigmoid_piecewise(x: SecureTensor) -> SecureTensor:
    """SecureML's activation: 0 below -1/2, ``x + 1/2`` in between, 1 above 1/2.

    Mohassel and Zhang, S&P 2017, section 4.3: ``relu(x + 1/2) - relu(x - 1/2)``,
    computed exactly (both comparisons in one `ltz`, both products in one Beaver round).
    Its distance to the logistic function is at most 0.12 (at |x| = 1/2). 9 rounds.
    """
    b = _backend(x)
    sess = b.session
    half = np.uint64(1 << (sess.frac_bits - 1))
    z = x.payload
    bounds.check_representable(x.meta["bound"] + int(half), "sigmoid_piecewise", sess.frac_bits)
    up, down = np.array(z, dtype=np.uint64), np.array(z, dtype=np.uint64)
    if sess.is_first:
        up += half
        down -= half
    stacked = np.stack([up, down])
    prod = beaver(sess, Bilinear.MUL, stacked, ltz(sess, stacked))
    # 1 - (x + 1/2)[x < -1/2] + (x - 1/2)[x < 1/2], which lies in [0, 1] exactly.
    out = np.subtract(prod[1], prod[0])
    if sess.is_first:
        out += np.uint64(1 << sess.frac_bits)
    return b.wrap(out, 1 << sess.frac_bits)


@functools.cache
def sigmoid_poly_coefficients(degree: int = 3, interval: float = 8.0) -> tuple[float, ...]:
    """Least-squares odd polynomial for the logistic function on ``[-interval, interval]``.

    Fitted on 10001 equally spaced points, constant term 1/2, odd powers only (the
    logistic function minus 1/2 is odd). Degree 3 on [-8, 8] gives
    ``0.5 + 0.15012 x - 0.0015930 x^3`` (max error 0.114); degree 5, 0.061; degree 7,
    0.032; on [-4, 4]: 0.038, 0.011 and 0.0028. Coefficients in increasing degree.
    """
    if degree < 1 or degree % 2 == 0:
        raise ParameterError(f"degree must be odd and positive, got {degree}")
    if not interval > 0:
        raise ParameterError(f"interval must be positive, got {interval}")
    xs = np.linspace(-interval, interval, 10001)
    powers = list(range(1, degree + 1, 2))
    design = np.stack([xs**k for k in powers], axis=1)
    target = 1.0 / (1.0 + np.exp(-xs)) - 0.5
    fit, *_ = np.linalg.lstsq(design, target, rcond=None)
    coeffs = [0.5] + [0.0] * degree
    for k, c in zip(powers, fit, strict=True):
        coeffs[k] = float(c)
    return tuple(coeffs)


def sigmoid_poly(x: SecureTensor, degree: int = 3, interval: float = 8.0) -> SecureTensor:
    """Polynomial approximation of the logistic function (`sigmoid_poly_coefficients`).

    Valid for ``|x| <= interval``, where the error is the fit's (0.114 for the default
    degree 3 on [-8, 8]) plus a few ulps; outside it the polynomial diverges.

    Evaluation: ``u = x / interval`` (so ``|u| <= 1`` and the coefficients
    ``a_k interval^k`` are all of order one: evaluating in ``x`` directly would encode
    a coefficient such as 1.7e-4 at 16 fractional bits with a 5% error, then multiply
    that error by ``x^5``), then Horner's rule in ``u^2`` for the odd part, multiplied by
    ``u`` once. ``degree + 3`` rounds.
    """
    coeffs = sigmoid_poly_coefficients(degree, float(interval))
    odd = [coeffs[k] * interval**k for k in range(1, degree + 1, 2)]  # b_1, b_3, ...
    u = x * (1.0 / interval)
    if len(odd) == 1:
        return u * odd[0] + coeffs[0]
    square = u * u
    q = square * odd[-1] + odd[-2]
    for c in odd[-3::-1]:
        q = q * square + c
    return u * q + coeffs[0]


def _with_bound(b: SecureTensor, bound: float) -> SecureTensor:
    backend = _backend(b)
    return backend.wrap(b.payload, bounds.ring_bound(bound, backend.session.frac_bits))


def reciprocal(
    x: SecureTensor, lo: float, hi: float | None = None, iterations: int | None = None
) -> SecureTensor:
    """``1 / x`` by Newton's iteration ``y <- y (2 - x y)``, for ``lo <= x <= hi``.

    Start ``y0 = 2 / (lo + hi)``, so the relative error ``e = 1 - x y`` starts below
    ``(hi - lo) / (hi + lo) < 1`` and squares at every step; the default number of
    iterations ``k`` brings it below ``2^-(f+1)``. Each step is two products (4 rounds).
    Precondition (stated, not checked): ``0 < lo <= x <= hi``; ``hi`` defaults to the
    tracked bound of ``x``. Then ``|y| <= 1 / lo``, which the bound tracker is told.
    Error: about ``(k + 2)`` ulps times ``1 / lo^2`` (fixed-point rounding of ``x y``
    is amplified by ``y``), plus ``2^-(f+1) / x``.
    """
    b = _backend(x)
    f = b.session.frac_bits
    top = bounds.to_real(x.meta["bound"], f) if hi is None else float(hi)
    if not 0 < lo <= top:
        raise ParameterError(f"reciprocal needs 0 < lo <= hi, got lo={lo}, hi={top}")
    e0 = (top - lo) / (top + lo)
    if iterations is None:
        target = (f + 1) * math.log(2)
        iterations = 0 if e0 == 0 else _max(0, math.ceil(math.log2(target / -math.log(e0))))
    y = b.constant(np.full(x.shape, 2.0 / (lo + top)))
    slack = 2.0**-f * 8
    for _ in range(iterations):
        xy = _with_bound(x * y, 2.0 + slack)  # x y = 1 - e lies in (0, 2)
        y = _with_bound(y * (2.0 - xy), 1.0 / lo + slack)  # y <= 1/x after a step
    return y


def divide(a: SecureTensor, b: SecureTensor, lo: float, hi: float | None = None) -> SecureTensor:
    """``a / b = a * reciprocal(b)`` for ``lo <= b <= hi`` (see `reciprocal`).

    Error: ``|a|`` times the reciprocal's error, plus one ulp.
    """
    return a * reciprocal(b, lo, hi)


def exp(x: SecureTensor, bound: float | None = None) -> SecureTensor:
    """``e^x`` for ``|x| <= bound`` by range reduction and repeated squaring.

    ``e^x = (e^(x / 2^n))^(2^n)`` with ``n = ceil(log2(4 bound))``, so that
    ``|x| / 2^n <= 1/4``; the inner exponential is its degree-4 Taylor polynomial
    (truncation error below 8e-6 relative), then ``n`` squarings. The one-ulp rounding of
    ``x / 2^n`` is amplified ``2^n`` times by the squarings, and each squaring rounds by
    one ulp: the error is at most about ``2^(n - 14) e^x + 8`` ulps at 16 fractional bits
    (bound 8: n = 5, 0.2% relative; tested). Results below a few hundred ulps (``x``
    below about -8) are therefore mostly rounding. ``bound`` defaults to the tracked
    bound of ``x``; the bound tracker refuses a ``bound`` whose squarings could overflow
    (about ``e^bound >= 2^(62 - 2f)``). Rounds: 1 + 6 (Taylor, Horner) + 2 n (dealer
    truncation).
    """
    b = _backend(x)
    sess = b.session
    f = sess.frac_bits
    big = bounds.to_real(x.meta["bound"], f) if bound is None else float(bound)
    if not big > 0:
        raise ParameterError(f"exp needs a positive bound, got {bound}")
    n = _max(0, math.ceil(math.log2(big * 4)))
    t = x if n == 0 else b.wrap(truncate(sess, x.payload, n), bounds.truncated(x.meta["bound"], n))
    taylor = [1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24]
    y = t.polyval(taylor)
    for _ in range(n):
        y = y * y
    return y
