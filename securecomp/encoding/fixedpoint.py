"""Fixed-point encoding of real numbers into the rings Z_2^64 and Z_2^32.

A real ``x`` is represented by the integer ``round(x * 2^f)`` taken modulo ``2^k`` in two's
complement, where ``f`` is the number of fractional bits and ``k`` the ring width. This is the
encoding of SecureML (Mohassel and Zhang, IEEE S&P 2017, section 4.1) and of every
additive-sharing framework built on Z_2^k (ABY, SPDZ2k, CrypTen): addition of encodings is
ring addition, and a product of two encodings carries ``2f`` fractional bits until it is
truncated.

Design points
-------------
* Vectorized end to end: one scaled multiply written straight into the output buffer, one
  rounding cast in place, and a two-value reduction (``min``/``max``) that checks the range.
  ``min``/``max`` propagate NaN, so the same comparison that rejects out-of-range values
  rejects NaN and inf; the detailed diagnosis only runs once a problem is known.
* Decoding reinterprets the ring element as a signed integer (a view, no copy) and converts
  it exactly: ``-k * 2^-f`` decodes to exactly ``-k * 2^-f``. Decoders that compute
  ``(r - 2^k) / 2^f`` in floating point round the subtraction and come out one ulp low.
* Nothing wraps silently: values at or beyond ``2^(k-1-f)`` in magnitude are refused before
  any ring element is produced.
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, ParameterError

__all__ = ["SUPPORTED_RING_BITS", "FixedPoint", "fixed_point"]

#: Ring widths with a native unsigned numpy dtype.
SUPPORTED_RING_BITS = (32, 64)

_UNSIGNED: dict[int, np.dtype[Any]] = {32: np.dtype(np.uint32), 64: np.dtype(np.uint64)}
_SIGNED: dict[int, np.dtype[Any]] = {32: np.dtype(np.int32), 64: np.dtype(np.int64)}


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point encoding with ``frac_bits`` fractional bits in the ring Z_2^ring_bits.

    Create instances with :func:`fixed_point` (cached), not with the constructor.

    Invariant: for finite ``a``, ``b`` with ``|a|, |b|, |a + b| < max_abs``,
    ``decode(encode(a) + encode(b)) == a + b`` to within ``ulp`` (one ``ulp / 2`` of rounding
    per encoding), where ``+`` on encodings is the wrapping addition of the unsigned dtype.
    Also ``decode(encode(m * ulp)) == m * ulp`` exactly for every integer ``m`` with
    ``|m| < 2^min(53, ring_bits - 1)``, negative or not.

    Parameters
    ----------
    frac_bits : int
        Number of fractional bits ``f``; the resolution is ``2^-f``.
    ring_bits : int
        Ring width ``k``: 64 (``uint64``) or 32 (``uint32``).
    """

    frac_bits: int
    ring_bits: int
    _scale: float = field(init=False, repr=False, compare=False)
    _inv_scale: float = field(init=False, repr=False, compare=False)
    _limit: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("frac_bits", "ring_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParameterError(f"{name} must be an int, got {value!r}")
        if self.ring_bits not in SUPPORTED_RING_BITS:
            raise ParameterError(
                f"ring_bits={self.ring_bits} is not supported; use one of {SUPPORTED_RING_BITS}"
            )
        if not 0 <= self.frac_bits <= self.ring_bits - 2:
            raise ParameterError(
                f"frac_bits={self.frac_bits} must lie in [0, {self.ring_bits - 2}] for a "
                f"{self.ring_bits}-bit ring (at least one integer bit and the sign bit)"
            )
        object.__setattr__(self, "_scale", math.ldexp(1.0, self.frac_bits))
        object.__setattr__(self, "_inv_scale", math.ldexp(1.0, -self.frac_bits))
        # Bound on the *scaled, rounded* value: |round(x * 2^f)| < 2^(k-1). Symmetric, so the
        # negation of every encodable value is encodable too.
        object.__setattr__(self, "_limit", math.ldexp(1.0, self.ring_bits - 1))

    # --- properties -----------------------------------------------------------------------

    @property
    def dtype(self) -> np.dtype[Any]:
        """The unsigned dtype holding ring elements (``uint64`` or ``uint32``)."""
        return _UNSIGNED[self.ring_bits]

    @property
    def signed_dtype(self) -> np.dtype[Any]:
        """The signed dtype of the same width (``int64`` or ``int32``)."""
        return _SIGNED[self.ring_bits]

    @property
    def modulus(self) -> int:
        """The ring modulus ``2^ring_bits``."""
        return 1 << self.ring_bits

    @property
    def scale(self) -> float:
        """The scaling factor ``2^frac_bits``."""
        return self._scale

    @property
    def ulp(self) -> float:
        """Resolution of the encoding, ``2^-frac_bits``."""
        return self._inv_scale

    @property
    def max_abs(self) -> float:
        """Exclusive bound on encodable magnitudes, ``2^(ring_bits - 1 - frac_bits)``."""
        return math.ldexp(1.0, self.ring_bits - 1 - self.frac_bits)

    # --- float encoding -------------------------------------------------------------------

    def encode(
        self,
        x: npt.ArrayLike,
        *,
        max_abs: float | None = None,
        out: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[Any]:
        """Encode reals as ring elements (two's complement, round to nearest, ties to even).

        Parameters
        ----------
        x : array_like of real numbers
            Values to encode; any shape.
        max_abs : float, optional
            A tighter bound a protocol needs for headroom (e.g. before a multiplication or
            a probabilistic truncation); values with ``|x| > max_abs`` are refused.
        out : ndarray of ``dtype``, optional
            Destination with the shape of ``x`` (C-contiguous); returned.

        Returns
        -------
        ndarray of ``dtype``
            ``round(x * 2^frac_bits) mod 2^ring_bits``.

        Raises
        ------
        EncodingOverflowError
            If any value is NaN, infinite, or ``|round(x * 2^f)| >= 2^(ring_bits - 1)``, or
            exceeds ``max_abs``. Nothing is written to ``out`` in a usable state then.
        ParameterError
            If ``x`` is not real-valued, or ``out`` has the wrong dtype, shape or layout.
        """
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ParameterError(
                f"cannot fixed-point encode an array of dtype {arr.dtype}; pass real numbers"
            )
        bound = self._check_max_abs(max_abs)
        out = self._prepare_out(out, arr.shape, self.dtype)
        # The float64 scaled values are written into the output buffer itself (same width
        # as the ring dtype for k = 64), so the encoder allocates nothing beyond `out`.
        if self.ring_bits == 64:
            scaled = out.view(np.float64)
        else:
            scaled = np.empty(arr.shape, dtype=np.float64)
        np.multiply(arr, self._scale, out=scaled)
        if scaled.size:
            lo = float(scaled.min())
            hi = float(scaled.max())
            # NaN propagates through min/max and fails both comparisons.
            ok = float(np.rint(lo)) > -self._limit and float(np.rint(hi)) < self._limit
            if bound is not None:
                ok = ok and -bound * self._scale <= lo and hi <= bound * self._scale
            if not ok:
                raise self._overflow(arr, bound)
        signed_out = out.view(self.signed_dtype)
        # Round and cast in one buffered pass; same-position elementwise overlap is safe.
        np.rint(scaled, out=signed_out, casting="unsafe")
        return out

    def decode(
        self, r: npt.ArrayLike, *, out: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """Decode ring elements to float64, reading them as signed (two's complement).

        Parameters
        ----------
        r : array_like of ``dtype`` (or the signed dtype of the same width)
            Ring elements.
        out : ndarray of float64, optional
            Destination with the shape of ``r`` (C-contiguous); returned.

        Returns
        -------
        ndarray of float64
            ``signed(r) * 2^-frac_bits``; exact whenever ``|signed(r)| <= 2^53``.

        Raises
        ------
        ParameterError
            If ``r`` has another dtype (encode first) or ``out`` does not fit.
        """
        signed = self.to_signed(r)
        out = self._prepare_out(out, signed.shape, np.dtype(np.float64))
        # Integer -> float conversion is exact below 2^53, and scaling by a power of two is
        # exact, so negatives come out exactly (no subtraction of 2^k in floating point).
        np.copyto(out, signed, casting="unsafe")
        out *= self._inv_scale
        return out

    # --- integer helpers ------------------------------------------------------------------

    def encode_int(self, n: npt.ArrayLike) -> npt.NDArray[Any]:
        """Encode integers exactly as ``n * 2^frac_bits mod 2^ring_bits``.

        Raises
        ------
        EncodingOverflowError
            If ``|n| >= 2^(ring_bits - 1 - frac_bits)``.
        ParameterError
            If ``n`` is not integer-valued (use :meth:`encode` for reals).
        """
        arr = _as_int_array(n, "encode_int")
        bound = 1 << (self.ring_bits - 1 - self.frac_bits)
        _check_int_range(arr, -bound + 1, bound - 1, self._range_fix(), "encode_int")
        signed = arr.astype(self.signed_dtype)
        signed <<= self.frac_bits
        return signed.view(self.dtype)

    def to_signed(self, r: npt.ArrayLike) -> npt.NDArray[Any]:
        """Reinterpret ring elements as signed integers in ``[-2^(k-1), 2^(k-1))`` (a view)."""
        arr = np.asarray(r)
        if arr.dtype == self.dtype or arr.dtype == self.signed_dtype:
            return arr.view(self.signed_dtype)
        raise ParameterError(
            f"expected ring elements of dtype {self.dtype} for a {self.ring_bits}-bit ring, "
            f"got {arr.dtype}; encode the values first (FixedPoint.encode / encode_int)"
        )

    def from_signed(self, v: npt.ArrayLike) -> npt.NDArray[Any]:
        """Map signed integers in ``[-2^(k-1), 2^(k-1))`` to ring elements.

        Raises
        ------
        EncodingOverflowError
            If a value lies outside that interval (it would wrap).
        """
        arr = _as_int_array(v, "from_signed")
        half = 1 << (self.ring_bits - 1)
        _check_int_range(arr, -half, half - 1, self._range_fix(), "from_signed")
        return arr.astype(self.signed_dtype).view(self.dtype)

    def truncate(self, r: npt.ArrayLike, bits: int | None = None) -> npt.NDArray[Any]:
        """Arithmetic shift right of the signed value by ``bits`` (default ``frac_bits``).

        This is the exact, local rescaling a product of two encodings needs in the clear
        (``truncate(a * b)`` encodes ``decode(a) * decode(b)``, rounded toward -inf); on
        secret shares it must be replaced by an MPC truncation protocol.
        """
        shift = self.frac_bits if bits is None else operator.index(bits)
        if not 0 <= shift < self.ring_bits:
            raise ParameterError(f"shift {shift} must lie in [0, {self.ring_bits})")
        return (self.to_signed(r) >> shift).view(self.dtype)

    # --- internals ------------------------------------------------------------------------

    def _check_max_abs(self, max_abs: float | None) -> float | None:
        if max_abs is None:
            return None
        bound = float(max_abs)
        if not bound > 0.0 or math.isinf(bound):
            raise ParameterError(f"max_abs must be a positive finite number, got {max_abs!r}")
        return bound

    @staticmethod
    def _prepare_out(
        out: npt.NDArray[Any] | None, shape: tuple[int, ...], dtype: np.dtype[Any]
    ) -> npt.NDArray[Any]:
        if out is None:
            return np.empty(shape, dtype=dtype)
        if out.dtype != dtype or out.shape != shape or not out.flags.c_contiguous:
            raise ParameterError(
                f"out must be a C-contiguous {dtype} array of shape {shape}; got "
                f"{out.dtype} of shape {out.shape}"
            )
        if not out.flags.writeable:
            raise ParameterError("out is read-only; pass a writeable buffer")
        return out

    def _range_fix(self) -> str:
        return (
            "scale the inputs down, lower frac_bits (each bit removed doubles the range)"
            + (", or use ring_bits=64" if self.ring_bits == 32 else "")
        )

    def _overflow(self, arr: npt.NDArray[Any], bound: float | None) -> EncodingOverflowError:
        # Slow path, only reached when something is wrong: count and describe the culprits.
        data = arr.astype(np.float64, copy=False)
        n_nan = int(np.count_nonzero(np.isnan(data)))
        n_inf = int(np.count_nonzero(np.isinf(data)))
        finite = np.abs(data[np.isfinite(data)])
        limit = self.max_abs if bound is None else min(bound, self.max_abs)
        rounded = np.rint(finite * self._scale)
        too_big = rounded >= self._limit
        if bound is not None:
            too_big |= finite > bound
        n_big = int(np.count_nonzero(too_big))
        parts = []
        if n_big:
            parts.append(
                f"{n_big} of {data.size} values exceed the bound "
                f"(largest magnitude {float(finite[too_big].max())!r})"
            )
        if n_nan:
            parts.append(f"{n_nan} NaN")
        if n_inf:
            parts.append(f"{n_inf} infinite")
        which = "the caller's max_abs" if bound is not None and bound < self.max_abs else (
            f"2^{self.ring_bits - 1 - self.frac_bits}"
        )
        fix = self._range_fix()
        if bound is not None and bound < self.max_abs:
            fix += ", or give the protocol more headroom (a larger max_abs)"
        if n_nan or n_inf:
            fix = f"clean the NaN/inf entries out (they cannot be encoded); otherwise {fix}"
        return EncodingOverflowError(
            f"{self!r} encodes |x| < {limit:.6g} ({which}); got {', '.join(parts)}. To fix: "
            f"{fix}."
        )


def _as_int_array(n: npt.ArrayLike, what: str) -> npt.NDArray[Any]:
    try:
        arr = np.asarray(n)
    except OverflowError as exc:  # ints too wide for any numpy integer dtype
        raise EncodingOverflowError(f"{what}: value does not fit a 64-bit integer") from exc
    if arr.dtype.kind == "O":
        # Python ints beyond int64: range-check exactly, then they cannot fit anyway.
        flat = [operator.index(v) for v in arr.ravel().tolist()]
        if any(not -(1 << 63) <= v < (1 << 63) for v in flat):
            raise EncodingOverflowError(
                f"{what}: a value does not fit a 64-bit integer; reduce it before encoding"
            )
        return np.asarray(flat, dtype=np.int64).reshape(arr.shape)
    if arr.dtype.kind not in "biu":
        raise ParameterError(
            f"{what} takes integers, got dtype {arr.dtype}; use FixedPoint.encode for reals"
        )
    return arr


def _check_int_range(arr: npt.NDArray[Any], lo: int, hi: int, fix: str, what: str) -> None:
    if arr.size == 0:
        return
    amin = int(arr.min())
    amax = int(arr.max())
    if amin < lo or amax > hi:
        n_bad = int(np.count_nonzero((arr < lo) | (arr > hi))) if arr.dtype.kind != "b" else 0
        worst = amax if amax > hi else amin
        raise EncodingOverflowError(
            f"{what}: {n_bad} of {arr.size} values lie outside [{lo}, {hi}] (e.g. {worst}); "
            f"to fix: {fix}"
        )


@functools.cache
def _fixed_point(frac_bits: int, ring_bits: int) -> FixedPoint:
    return FixedPoint(frac_bits, ring_bits)


def fixed_point(frac_bits: int = 16, ring_bits: int = 64) -> FixedPoint:
    """The (cached) fixed-point encoding with ``frac_bits`` fractional bits in Z_2^ring_bits.

    Parameters
    ----------
    frac_bits : int, default 16
        Fractional bits ``f``.
    ring_bits : int, default 64
        Ring width: 64 or 32.

    Returns
    -------
    FixedPoint
        The same object for the same parameters.

    Raises
    ------
    ParameterError
        For an unsupported ring width or ``frac_bits`` outside ``[0, ring_bits - 2]``.
    """
    for name, value in (("frac_bits", frac_bits), ("ring_bits", ring_bits)):
        # Checked before the cache: True == 1 would otherwise hit the entry for 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"{name} must be an int, got {value!r}")
    return _fixed_point(frac_bits, ring_bits)
