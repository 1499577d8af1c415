"""Quantization of real vectors into Z_2^b for secure aggregation.

Secure aggregation sums client vectors with masks that cancel modulo 2^b (Bonawitz et al.,
"Practical Secure Aggregation for Privacy-Preserving Machine Learning", CCS 2017),
so real-valued updates must first become integers modulo 2^b. The pipeline follows the
distributed-DP quantizers of Kairouz, Liu and Steinke ("The Distributed Discrete Gaussian
Mechanism for Federated Learning with Secure Aggregation", ICML 2021) and Agarwal
et al. ("The Skellam Mechanism", NeurIPS 2021), minus the noise, which lives elsewhere:

1. clip every coordinate to ``[-clip, clip]`` and count how many were clipped;
2. multiply by ``scale``;
3. round *stochastically*: ``floor(y) + Bernoulli(y - floor(y))``, which is unbiased,
   ``E[q] = y``, so averaging over clients carries no systematic rounding error (rounding
   to nearest would bias every coordinate the same way);
4. map the signed integer to Z_2^b in two's complement.

The server's sum of ``n`` such vectors decodes correctly as long as it never wraps:
``n * ceil(clip * scale) <= 2^(b-1) - 1``. That condition is checked (and refused) before a
sum is interpreted, and :func:`modulus_bits_for` picks the smallest ``b`` that satisfies it.

The random bits of stochastic rounding protect no secret (they only remove bias), so they
come from a caller-supplied ``numpy.random.Generator``; masks come from a CSPRNG elsewhere.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, ParameterError

__all__ = [
    "QuantizationParams",
    "Quantized",
    "check_no_wrap",
    "dequantize",
    "modulus_bits_for",
    "quantize",
]

#: Scaled magnitudes must stay below this so floor/fraction arithmetic in float64 is exact.
_MAX_LEVEL = 1 << 52


@dataclass(frozen=True)
class QuantizationParams:
    """Agreed quantization parameters: clipping bound, scale and modulus ``2^modulus_bits``.

    Invariant: for ``n <= max_summands`` vectors quantized with these parameters (all
    coordinates within ``clip``), ``dequantize(sum mod 2^b, n) == sum of the quantized
    values / scale`` exactly, and its expectation is the sum of the (clipped) inputs.

    Parameters
    ----------
    clip : float
        Coordinates are clipped to ``[-clip, clip]``.
    scale : float
        Multiplier applied before rounding; the resolution is ``1 / scale``.
    modulus_bits : int
        ``b`` with ``1 <= b <= 64``; values live in Z_2^b, stored in ``uint64``.
    """

    clip: float
    scale: float
    modulus_bits: int

    def __post_init__(self) -> None:
        clip = float(self.clip)
        scale = float(self.scale)
        if not (clip > 0.0 and math.isfinite(clip)):
            raise ParameterError(f"clip must be a positive finite number, got {self.clip!r}")
        if not (scale > 0.0 and math.isfinite(scale)):
            raise ParameterError(f"scale must be a positive finite number, got {self.scale!r}")
        bits = self.modulus_bits
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
            raise ParameterError(f"modulus_bits must be an int in [1, 64], got {bits!r}")
        object.__setattr__(self, "clip", clip)
        object.__setattr__(self, "scale", scale)
        level = self.level_bound
        if level >= _MAX_LEVEL:
            raise ParameterError(
                f"clip * scale = {clip * scale:.6g} is too large for exact rounding (must be "
                f"below 2^52); lower the scale"
            )
        if level > (1 << (bits - 1)) - 1:
            raise EncodingOverflowError(
                f"a single quantized value can reach {level}, which does not fit the signed "
                f"range of Z_2^{bits} (|v| <= {(1 << (bits - 1)) - 1}); raise modulus_bits to "
                f"at least {modulus_bits_for(1, clip=clip, scale=scale)} or lower clip/scale"
            )

    @classmethod
    def from_scale_bits(
        cls, *, clip: float, scale_bits: int, modulus_bits: int
    ) -> QuantizationParams:
        """Parameters with ``scale = 2^scale_bits``."""
        scale = math.ldexp(1.0, operator.index(scale_bits))
        return cls(clip=clip, scale=scale, modulus_bits=modulus_bits)

    @property
    def level_bound(self) -> int:
        """Largest magnitude of one quantized value, ``ceil(clip * scale)``."""
        return math.ceil(self.clip * self.scale)

    @property
    def max_summands(self) -> int:
        """Largest number of vectors whose sum cannot wrap modulo ``2^modulus_bits``."""
        return ((1 << (self.modulus_bits - 1)) - 1) // self.level_bound

    @property
    def mask(self) -> int:
        """``2^modulus_bits - 1``."""
        return (1 << self.modulus_bits) - 1


@dataclass(frozen=True)
class Quantized:
    """The result of :func:`quantize`.

    Attributes
    ----------
    values : ndarray of uint64
        Quantized values in ``[0, 2^b)``: signed integers in two's complement modulo 2^b.
    n_clipped : int
        Number of coordinates whose magnitude exceeded ``clip`` (and were clipped).
    params : QuantizationParams
        The parameters used; the sum decodes with the same ones.
    """

    values: npt.NDArray[np.uint64]
    n_clipped: int
    params: QuantizationParams


def quantize(
    x: npt.ArrayLike,
    params: QuantizationParams | None = None,
    *,
    clip: float | None = None,
    scale: float | None = None,
    scale_bits: int | None = None,
    modulus_bits: int | None = None,
    rng: np.random.Generator,
) -> Quantized:
    """Clip, scale, stochastically round and map ``x`` into Z_2^modulus_bits.

    Pass either ``params`` or ``clip``, one of ``scale``/``scale_bits``, and ``modulus_bits``.

    Parameters
    ----------
    x : array_like of real numbers
        The vector (any shape) to quantize.
    params : QuantizationParams, optional
        Agreed parameters.
    clip, scale, scale_bits, modulus_bits : optional
        Build the parameters inline (``scale = 2^scale_bits``).
    rng : numpy.random.Generator
        Source of the rounding coins (they hide nothing, so a seeded generator is fine).

    Returns
    -------
    Quantized
        Values modulo 2^b as uint64, the number of clipped coordinates, the parameters.

    Raises
    ------
    EncodingOverflowError
        If ``x`` contains NaN or infinity (a diverged update: fix it, do not clip it).
    ParameterError
        For inconsistent or invalid parameters, a non-real ``x``, or a missing ``rng``.
    """
    p = _resolve(params, clip, scale, scale_bits, modulus_bits)
    if not isinstance(rng, np.random.Generator):
        raise ParameterError("rng must be a numpy.random.Generator (e.g. np.random.default_rng())")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ParameterError(f"cannot quantize an array of dtype {arr.dtype}; pass real numbers")
    y = arr.astype(np.float64)  # a private copy: the caller's array is never modified
    if y.size:
        lo = float(y.min())
        hi = float(y.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            n_bad = int(np.count_nonzero(~np.isfinite(y)))
            raise EncodingOverflowError(
                f"{n_bad} of {y.size} values are NaN or infinite and cannot be quantized; "
                "find where the update diverged (clipping would hide it)"
            )
    else:
        lo = hi = 0.0
    n_clipped = 0
    if lo < -p.clip or hi > p.clip:
        n_clipped = int(np.count_nonzero(y > p.clip)) + int(np.count_nonzero(y < -p.clip))
        np.clip(y, -p.clip, p.clip, out=y)
    y *= p.scale
    # Unbiased stochastic rounding: q = floor(y) + [u < y - floor(y)], u ~ U[0, 1).
    floor = np.floor(y)
    y -= floor  # fractional part, exact for |y| < 2^52
    coins = rng.random(y.shape)
    floor += coins < y
    signed = floor.astype(np.int64)
    values = signed.view(np.uint64)
    if p.modulus_bits < 64:
        values &= np.uint64(p.mask)
    return Quantized(values=values, n_clipped=n_clipped, params=p)


def dequantize(
    sum_values: npt.ArrayLike, n_summands: int, params: QuantizationParams
) -> npt.NDArray[np.float64]:
    """Decode a sum of ``n_summands`` quantized vectors back to floats.

    Parameters
    ----------
    sum_values : array_like of unsigned ints
        The coordinate-wise sum modulo ``2^b`` (any higher bits are ignored).
    n_summands : int
        How many vectors were summed.
    params : QuantizationParams
        The parameters every summand was quantized with.

    Returns
    -------
    ndarray of float64
        The sum of the quantized vectors divided by ``scale`` (divide by ``n_summands`` for
        the mean).

    Raises
    ------
    EncodingOverflowError
        If ``n_summands`` vectors could wrap modulo 2^b (see :func:`check_no_wrap`), or a
        decoded coordinate exceeds what ``n_summands`` honest vectors can produce (a summand
        was out of range or the count is wrong).
    """
    n = check_no_wrap(params, n_summands)
    arr = np.asarray(sum_values)
    if arr.dtype.kind not in "ui":
        raise ParameterError(f"sum_values must be unsigned integers, got dtype {arr.dtype}")
    v = arr.astype(np.uint64)
    b = params.modulus_bits
    if b < 64:
        # Sign-extend the b-bit two's complement value: (v xor 2^(b-1)) - 2^(b-1).
        half = np.uint64(1 << (b - 1))
        v &= np.uint64(params.mask)
        v ^= half
        v -= half  # wraps to the 64-bit two's complement of the signed value
    signed = v.view(np.int64)
    limit = n * params.level_bound
    if signed.size:
        lo = int(signed.min())
        hi = int(signed.max())
        if lo < -limit or hi > limit:
            raise EncodingOverflowError(
                f"a decoded sum reaches {hi if hi > limit else lo}, beyond the {limit} that "
                f"{n} vectors clipped to {params.clip:g} at scale {params.scale:g} can produce; "
                "a summand was out of range or n_summands is wrong"
            )
    out = signed.astype(np.float64)
    out /= params.scale
    return out


def check_no_wrap(params: QuantizationParams, n_summands: int) -> int:
    """Refuse a sum of ``n_summands`` vectors that could wrap modulo ``2^modulus_bits``.

    Returns
    -------
    int
        ``n_summands`` (validated).

    Raises
    ------
    EncodingOverflowError
        If ``n_summands * ceil(clip * scale) > 2^(b-1) - 1``; the message gives the modulus
        that would work.
    ParameterError
        If ``n_summands`` is not a positive int.
    """
    if isinstance(n_summands, bool):
        raise ParameterError("n_summands must be a positive int, got a bool")
    n = operator.index(n_summands)
    if n < 1:
        raise ParameterError(f"n_summands must be a positive int, got {n}")
    if n > params.max_summands:
        need = modulus_bits_for(n, clip=params.clip, scale=params.scale)
        fix = f"use modulus_bits >= {need}" if need <= 64 else "lower scale or clip"
        raise EncodingOverflowError(
            f"the sum of {n} vectors can reach {n * params.level_bound} in magnitude, which "
            f"wraps modulo 2^{params.modulus_bits} (at most {params.max_summands} summands "
            f"fit); {fix}, or aggregate fewer vectors per sum"
        )
    return n


def modulus_bits_for(
    n_summands: int,
    *,
    clip: float,
    scale: float | None = None,
    scale_bits: int | None = None,
) -> int:
    """Smallest ``b`` such that ``n_summands`` quantized vectors sum without wrapping mod 2^b.

    Raises
    ------
    ParameterError
        If even ``b = 64`` is not enough, or the arguments are invalid.
    """
    s = _scale_of(scale, scale_bits)
    n = operator.index(n_summands)
    if n < 1 or not (clip > 0 and math.isfinite(clip)):
        raise ParameterError("n_summands must be >= 1 and clip positive and finite")
    total = n * math.ceil(clip * s)
    bits = total.bit_length() + 1  # sign bit: |sum| <= 2^(b-1) - 1
    if bits > 64:
        raise ParameterError(
            f"{n} summands of magnitude up to {math.ceil(clip * s)} need a {bits}-bit modulus; "
            "the maximum is 64: lower scale or clip, or sum in smaller groups"
        )
    return bits


def _scale_of(scale: float | None, scale_bits: int | None) -> float:
    if (scale is None) == (scale_bits is None):
        raise ParameterError("give exactly one of scale and scale_bits")
    if scale_bits is not None:
        return math.ldexp(1.0, operator.index(scale_bits))
    return float(scale)  # type: ignore[arg-type]


def _resolve(
    params: QuantizationParams | None,
    clip: float | None,
    scale: float | None,
    scale_bits: int | None,
    modulus_bits: int | None,
) -> QuantizationParams:
    inline: tuple[Any, ...] = (clip, scale, scale_bits, modulus_bits)
    if params is not None:
        if any(v is not None for v in inline):
            raise ParameterError("pass either params or clip/scale/modulus_bits, not both")
        return params
    if clip is None or modulus_bits is None:
        raise ParameterError(
            "quantize needs params, or clip, scale (or scale_bits) and modulus_bits"
        )
    return QuantizationParams(
        clip=clip, scale=_scale_of(scale, scale_bits), modulus_bits=modulus_bits
    )
