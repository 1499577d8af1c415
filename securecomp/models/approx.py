"""Least-squares polynomial approximations of the sigmoid on a declared interval.

CKKS evaluates additions and multiplications only, so logistic regression on encrypted data
replaces σ(z) = 1 / (1 + e^-z) by a low-degree polynomial fitted by least squares on an
interval [-B, B] (Kim, Song, Kim, Lee, Cheon, "Logistic regression model training based on
the approximate homomorphic encryption", BMC Med. Genomics 11(Suppl 4):83, 2018, §Methods,
"least squares approximation of the sigmoid"; degrees 3 and 7 there). Outside the interval
the polynomial diverges quickly, so logits that leave it are detected (`check_logits`) and
reported, or refused on request.

The fit
-------
σ(z) - 1/2 is odd, so the polynomial is ``1/2 + sum_k a_k (z/B)^k`` over odd ``k`` only: the
even coefficients are exactly zero (an encrypted evaluation skips them, and a symmetric fit
stays symmetric in floating point). The odd coefficients solve a least-squares problem in
the scaled variable u = z/B in [-1, 1] (well conditioned), sampled either on a dense uniform
grid (plain least squares: the L2 error on the interval) or at Chebyshev nodes (weight
1/sqrt(1 - u^2): the error is spread towards the ends of the interval, lowering the maximum
error); the coefficients are then returned in powers of z. Errors are measured against the
exact sigmoid on a dense uniform grid, independently of the sampling used to fit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import EncodingOverflowError, ParameterError

__all__ = [
    "DEGREES",
    "LogitRange",
    "PolynomialSigmoid",
    "check_logits",
    "fit_sigmoid",
    "logits_out_of_range",
]

#: Degrees offered: odd (the fit is odd around 1/2), and at most 7 (three levels of depth).
DEGREES = (3, 5, 7)

#: Samples of the fitting grid and of the error grid.
_GRID = 20001

Weighting = Literal["uniform", "chebyshev"]


def _exact_sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass(frozen=True)
class PolynomialSigmoid:
    """A polynomial ``p(z) = sum_i coefficients[i] * z**i`` approximating σ on [-B, B].

    Invariant: ``coefficients[0] == 0.5``, every other even coefficient is exactly 0, and
    ``max |p(z) - σ(z)| == max_error`` over a dense grid of ``[-interval, interval]``.

    Attributes
    ----------
    degree : int
        3, 5 or 7.
    interval : float
        B: the half-width of the fitting interval.
    coefficients : tuple of float
        In increasing degree, in powers of z (what ``SecureTensor.polyval`` takes).
    max_error, rms_error : float
        Fit error against the exact sigmoid on [-B, B] (dense uniform grid).
    weighting : {"uniform", "chebyshev"}
        How the least-squares samples were placed.
    """

    degree: int
    interval: float
    coefficients: tuple[float, ...]
    max_error: float
    rms_error: float
    weighting: Weighting

    @property
    def depth(self) -> int:
        """Multiplicative depth of an encrypted evaluation: ``ceil(log2(degree + 1))``."""
        return math.ceil(math.log2(self.degree + 1))

    def __call__(self, z: ArrayLike) -> NDArray[np.float64]:
        """Evaluate in float64 (Horner, highest degree first, as the encrypted backends do)."""
        x = np.asarray(z, dtype=np.float64)
        acc = np.full(x.shape, self.coefficients[-1])
        for c in self.coefficients[-2::-1]:
            acc = acc * x + c
        return acc

    def coefficients_for(self, scale: float) -> tuple[float, ...]:
        """Coefficients of ``q(u) = p(u / scale)``: the same polynomial in ``u = scale * z``.

        Encrypted training evaluates q on ``u = z / B`` (the key holder folds 1/B into the
        weights it encrypts): the powers of u stay near 1, so the rounding error of the
        leaf product ``c u`` (absolute, about 2^-scale_bits) is not amplified by ``z^4``.
        """
        s = float(scale)
        if not math.isfinite(s) or s <= 0:
            raise ParameterError(f"scale must be finite and > 0, got {scale!r}")
        return tuple(c / s**k for k, c in enumerate(self.coefficients))

    def bound(self, magnitude: float) -> float:
        """``max |p(z)|`` over ``|z| <= magnitude`` (dense grid plus the end points).

        The residual ``p(z) - y`` of a logistic gradient is at most this plus 1; the key
        holder uses it to size and to check decrypted gradient sums.
        """
        m = float(magnitude)
        if not math.isfinite(m) or m < 0:
            raise ParameterError(f"magnitude must be a finite number >= 0, got {magnitude!r}")
        grid = np.linspace(-m, m, 2001)
        return float(np.max(np.abs(self(grid))))

    def describe(self) -> str:
        """One line for reports."""
        return (
            f"degree-{self.degree} least-squares sigmoid on [-{self.interval:g}, "
            f"{self.interval:g}] ({self.weighting}); max error {self.max_error:.2e}, "
            f"RMS {self.rms_error:.2e}"
        )


def _check_degree(degree: object) -> int:
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer):
        raise ParameterError(f"sigmoid degree must be an int, one of {DEGREES}; got {degree!r}")
    d = int(degree)
    if d not in DEGREES:
        raise ParameterError(
            f"sigmoid degree {d} is not offered: use one of {DEGREES} (odd degrees keep the "
            "fit symmetric; beyond 7 the depth exceeds three levels)"
        )
    return d


def _check_interval(interval: object) -> float:
    if isinstance(interval, bool) or not isinstance(interval, int | float | np.floating):
        raise ParameterError(f"sigmoid interval must be a number > 0, got {interval!r}")
    b = float(interval)
    if not math.isfinite(b) or b <= 0:
        raise ParameterError(f"sigmoid interval must be finite and > 0, got {interval!r}")
    if b > 64:
        # z^7 at |z| = 64 is 2^42: beyond it the coefficients underflow the CKKS scale.
        raise ParameterError(
            f"sigmoid interval {b:g} is too wide for a low-degree fit (at most 64); "
            "standardize the features so that the logits stay within about +-16"
        )
    return b


def fit_sigmoid(
    degree: int = 5, interval: float = 8.0, *, weighting: Weighting = "uniform"
) -> PolynomialSigmoid:
    """Fit the least-squares polynomial sigmoid of ``degree`` on ``[-interval, interval]``.

    Parameters
    ----------
    degree : {3, 5, 7}
    interval : float
        B > 0 (at most 64). With standardized features, 8 to 12 covers the logits of a
        well-conditioned problem; a wider interval costs accuracy near 0.
    weighting : {"uniform", "chebyshev"}
        Dense uniform grid (L2 fit) or Chebyshev nodes (smaller maximum error).

    Returns
    -------
    PolynomialSigmoid

    Raises
    ------
    ParameterError
        Degree not in `DEGREES`, interval not finite and positive, unknown weighting.

    Examples
    --------
    >>> p = fit_sigmoid(3, 8.0)
    >>> p.coefficients[0], p.coefficients[2]
    (0.5, 0.0)
    >>> p.max_error < 0.05
    True
    """
    d = _check_degree(degree)
    b = _check_interval(interval)
    if weighting == "uniform":
        u = np.linspace(-1.0, 1.0, _GRID)
    elif weighting == "chebyshev":
        k = np.arange(_GRID)
        u = np.cos(np.pi * (k + 0.5) / _GRID)
    else:
        raise ParameterError(f"weighting must be 'uniform' or 'chebyshev', got {weighting!r}")
    odd = np.arange(1, d + 1, 2)
    design = u[:, None] ** odd[None, :]
    target = _exact_sigmoid(b * u) - 0.5
    a, *_ = np.linalg.lstsq(design, target, rcond=None)
    coeffs = np.zeros(d + 1)
    coeffs[0] = 0.5
    coeffs[odd] = a / b**odd  # back from powers of u = z/B to powers of z
    poly = PolynomialSigmoid(d, b, tuple(float(c) for c in coeffs), 0.0, 0.0, weighting)
    grid = np.linspace(-b, b, _GRID)
    err = poly(grid) - _exact_sigmoid(grid)
    return PolynomialSigmoid(
        degree=d,
        interval=b,
        coefficients=poly.coefficients,
        max_error=float(np.max(np.abs(err))),
        rms_error=float(np.sqrt(np.mean(err * err))),
        weighting=weighting,
    )


@dataclass(frozen=True)
class LogitRange:
    """How many logits fall outside [-B, B].

    Attributes
    ----------
    count : int
        Rows with ``|z| > interval``.
    total : int
        Rows checked.
    max_abs : float
        Largest ``|z|`` seen.
    interval : float
        B.
    """

    count: int
    total: int
    max_abs: float
    interval: float

    @property
    def fraction(self) -> float:
        """``count / total`` (0 for no rows)."""
        return self.count / self.total if self.total else 0.0

    @property
    def ok(self) -> bool:
        """True when every logit is inside the interval."""
        return self.count == 0


def logits_out_of_range(z: ArrayLike, interval: float) -> LogitRange:
    """Count the logits outside ``[-interval, interval]`` (NaN counts as outside).

    Raises
    ------
    ParameterError
        ``interval`` not finite and positive.
    """
    b = _check_interval(interval)
    x = np.asarray(z, dtype=np.float64).reshape(-1)
    mag = np.abs(x)
    outside = ~(mag <= b)  # NaN compares False: it is outside
    max_abs = float(np.max(mag)) if x.size else 0.0
    if x.size and np.isnan(max_abs):
        max_abs = math.inf
    return LogitRange(int(np.count_nonzero(outside)), int(x.size), max_abs, b)


def check_logits(
    z: ArrayLike,
    interval: float,
    *,
    policy: Literal["warn", "raise", "ignore"] = "warn",
    where: str = "",
) -> LogitRange:
    """Detect logits outside the polynomial's interval and warn or raise.

    Parameters
    ----------
    z : array_like
        Logits (the key holder's own rows, computed in plaintext, or decrypted scores).
    interval : float
        B of the polynomial sigmoid.
    policy : {"warn", "raise", "ignore"}
        ``"warn"``: a `RuntimeWarning` stating the fraction of rows; ``"raise"``:
        `EncodingOverflowError`; ``"ignore"``: only return the count.
    where : str
        Context for the message (e.g. ``"before step 3"``).

    Raises
    ------
    EncodingOverflowError
        With ``policy="raise"``, when any logit is outside.
    """
    if policy not in ("warn", "raise", "ignore"):
        raise ParameterError(f"policy must be 'warn', 'raise' or 'ignore', got {policy!r}")
    rng = logits_out_of_range(z, interval)
    if rng.ok or policy == "ignore":
        return rng
    at = f" {where}" if where else ""
    text = (
        f"{rng.fraction:.1%} of rows ({rng.count} of {rng.total}) have logits outside the "
        f"polynomial sigmoid's interval [-{rng.interval:g}, {rng.interval:g}]{at} (largest "
        f"|logit| {rng.max_abs:.3g}); there the polynomial diverges from the sigmoid. Widen "
        "sigmoid_interval, lower the learning rate, or add l2 regularization"
    )
    if policy == "raise":
        raise EncodingOverflowError(text)
    warnings.warn(text, RuntimeWarning, stacklevel=2)
    return rng
