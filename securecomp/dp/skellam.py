"""The Skellam mechanism: Poisson and Skellam samplers and the Renyi-DP bound of the sum.

Agarwal, Kairouz and Liu, "The Skellam Mechanism for Differentially Private Federated
Learning", NeurIPS 2021 (arXiv:2110.04995).

Distribution
------------
``Sk(mu) = Poisson(mu) - Poisson(mu)`` (two independent draws) has mean 0 and variance
``2 mu``, and is closed under summation: ``n`` clients adding ``Sk(mu)`` give ``Sk(n mu)``
exactly, so the aggregate noise is again Skellam (Agarwal et al., section 3).

Sampler
-------
numpy's Poisson sampler runs on its own (non-cryptographic) bit generator, so it is not
used. ``Poisson(mu)`` is sampled by inversion from an exact table (`securecomp.crypto.cdt`) fed
by 128-bit AES-CTR draws, on the window ``[lo, hi]`` outside which the Chernoff bounds
``P[X >= k] <= e^-mu (e mu / k)^k`` (``k > mu``) and ``P[X <= k] <= e^-mu (e mu / k)^k``
(``k < mu``) (Mitzenmacher and Upfal, "Probability and Computing", Theorem 5.4) leave at
most 2^-101 on each side; that mass is the table's ``tail_mass``. The weights are the
pmf ratios from the mode, ``w(k+1) = w(k) mu / (k+1)`` and ``w(k-1) = w(k) k / mu``, in
320-bit fixed point with ``mu`` as an exact rational. A Skellam draw uses two Poisson draws,
so its total variation to ``Sk(mu)`` is at most twice the Poisson table's.

Privacy of the sum (Agarwal et al., Renyi-DP theorem of section 3)
------------------------------------------------------------------
If the honest clients' noise sums to Skellam noise of total variance ``V`` (integer units,
``V = 2 mu_total``) and the input changes by at most ``D2`` in L2 and ``D1`` in L1 norm, then

    D_alpha <= alpha D2^2 / (2V) + min(((2 alpha - 1) D2^2 + 6 D1) / (4 V^2), 3 D1 / (2V)).

The accountant applies it at integer orders ``alpha >= 2`` only, as the authors' reference
accountant does; that is conservative whether or not the bound extends to real orders (the
tests check it against the exact Renyi divergence of shifted Skellam laws at such orders).

Both branches are lines in ``alpha``: ``(xi, rho) = ((6 D1 - D2^2) / (4 V^2), D2^2 / (2V) +
D2^2 / (2 V^2))`` and ``(3 D1 / (2V), D2^2 / (2V))``. As ``V`` grows the bound tends to the
Gaussian ``alpha D2^2 / (2V)``.
"""

from __future__ import annotations

import functools
import math
import operator
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from securecomp.crypto.cdt import CdtSampler
from securecomp.crypto.prg import AesCtrPrg
from securecomp.dp.accounting import ApproxZcdp, RdpBound
from securecomp.dp.ddgauss import MAX_SIGMA, TAIL_BITS
from securecomp.errors import ParameterError

__all__ = [
    "MAX_MU",
    "PoissonSampler",
    "SkellamSampler",
    "skellam_rdp_bound",
]

#: Largest Poisson parameter served: ``Sk(MAX_MU)`` has standard deviation `MAX_SIGMA`
#: (2^14), the same ceiling as the discrete Gaussian; its table has ~280,000 entries.
MAX_MU = MAX_SIGMA * MAX_SIGMA / 2.0

_FRAC = 320  # fractional bits of the fixed-point weights
_SIDE_LOG = -(TAIL_BITS + 1) * math.log(2.0)  # each side's tail at most 2^-101


def _check_mu(mu: object) -> float:
    if isinstance(mu, bool) or not isinstance(mu, int | float | np.floating):
        raise ParameterError(f"mu must be a real number, got {type(mu).__name__}")
    m = float(mu)
    if not (math.isfinite(m) and 0.0 < m <= MAX_MU):
        raise ParameterError(
            f"Poisson parameter mu must lie in (0, {MAX_MU:g}], got {mu!r}; adjust the scale "
            "(a smaller scale lowers the noise in integer units)"
        )
    return m


def _log_chernoff(mu: float, k: int) -> float:
    """Natural log of ``e^-mu (e mu / k)^k`` (``e^-mu`` at ``k = 0``)."""
    if k == 0:
        return -mu
    return -mu + k * (1.0 + math.log(mu) - math.log(k))


def _window(mu: float) -> tuple[int, int, float]:
    """``(lo, hi, tail)``: the kept support ``[lo, hi]`` and the mass outside it."""
    # Upper side: smallest k > mu with the bound <= 2^-101 (the bound decreases in k).
    a, b = mu, mu + 100.0 * math.sqrt(mu) + 200.0
    for _ in range(200):
        mid = 0.5 * (a + b)
        if -mu + mid * (1.0 + math.log(mu) - math.log(mid)) > _SIDE_LOG:
            a = mid
        else:
            b = mid
    k_hi = max(math.ceil(b), math.floor(mu) + 1)
    while _log_chernoff(mu, k_hi) > _SIDE_LOG:
        k_hi += 1
    while k_hi - 1 > mu and _log_chernoff(mu, k_hi - 1) <= _SIDE_LOG:
        k_hi -= 1
    tail = math.exp(_log_chernoff(mu, k_hi))
    # Lower side: largest k < mu with the bound <= 2^-101, if any (P[X <= 0] = e^-mu).
    if -mu > _SIDE_LOG:
        return 0, k_hi - 1, tail
    a, b = 0.0, mu
    for _ in range(200):
        mid = 0.5 * (a + b)
        if mid > 0.0 and -mu + mid * (1.0 + math.log(mu) - math.log(mid)) <= _SIDE_LOG:
            a = mid
        else:
            b = mid
    k_lo = min(math.floor(a), math.ceil(mu) - 1)
    while k_lo > 0 and _log_chernoff(mu, k_lo) > _SIDE_LOG:
        k_lo -= 1
    while k_lo + 1 < mu and _log_chernoff(mu, k_lo + 1) <= _SIDE_LOG:
        k_lo += 1
    tail += math.exp(_log_chernoff(mu, k_lo))
    return k_lo + 1, k_hi - 1, tail


@functools.lru_cache(maxsize=16)
def _poisson_table(mu: float) -> CdtSampler:
    lo, hi, tail = _window(mu)
    ratio = Fraction(mu)  # exact: floats are binary rationals
    num, den = ratio.numerator, ratio.denominator
    mode = min(max(math.floor(mu), lo), hi)
    weights = [0] * (hi - lo + 1)
    w = 1 << _FRAC
    weights[mode - lo] = w
    for k in range(mode, hi):  # w(k+1) = w(k) * mu / (k+1); factor <= 1 above the mode
        w = (w * num) // (den * (k + 1))
        weights[k + 1 - lo] = w
    w = 1 << _FRAC
    for k in range(mode, lo, -1):  # w(k-1) = w(k) * k / mu; factor <= 1 below the mode
        w = (w * k * den) // num
        weights[k - 1 - lo] = w
    if min(weights) < 1 << (_FRAC - 130):
        raise ParameterError(f"internal: Poisson({mu}) table weight below 2^-130 of the mode")
    return CdtSampler(weights, lo, tail_mass=tail)


class PoissonSampler:
    """Samples of ``Poisson(mu)`` from an `AesCtrPrg` (see the module docstring).

    Invariant: outputs lie in ``[low, high]`` and are within total variation `tv_bound` of
    ``Poisson(mu)``.

    Parameters
    ----------
    mu : float
        The mean, ``0 < mu <= MAX_MU``.
    """

    __slots__ = ("_table", "mu")

    def __init__(self, mu: float) -> None:
        self.mu = _check_mu(mu)
        self._table = _poisson_table(self.mu)

    def __repr__(self) -> str:
        return f"PoissonSampler(mu={self.mu!r})"

    @property
    def low(self) -> int:
        """Smallest value produced."""
        return self._table.offset

    @property
    def high(self) -> int:
        """Largest value produced."""
        return self._table.offset + self._table.size - 1

    @property
    def tail_mass(self) -> float:
        """Mass of ``Poisson(mu)`` outside ``[low, high]`` (at most 2^-100)."""
        return self._table.tail_mass

    @property
    def tv_bound(self) -> float:
        """Total variation distance of one sample from ``Poisson(mu)``."""
        return self._table.tv_bound

    @property
    def mean(self) -> float:
        """Mean of the sampled (truncated) distribution."""
        return self._table.mean

    @property
    def variance(self) -> float:
        """Variance of the sampled (truncated) distribution."""
        return self._table.variance

    def sample(self, size: int, prg: AesCtrPrg) -> npt.NDArray[np.int64]:
        """``size`` independent samples (128 keystream bits each)."""
        return self._table.sample(operator.index(size), prg)


class SkellamSampler:
    """Samples of ``Sk(mu) = Poisson(mu) - Poisson(mu)`` (variance ``2 mu``).

    Invariant: outputs are within total variation `tv_bound` of ``Sk(mu)`` and their
    distribution is exactly symmetric (both draws come from the same table).

    Parameters
    ----------
    mu : float
        The parameter of each Poisson draw, ``0 < mu <= MAX_MU``.
    """

    __slots__ = ("_poisson",)

    def __init__(self, mu: float) -> None:
        self._poisson = PoissonSampler(mu)

    def __repr__(self) -> str:
        return f"SkellamSampler(mu={self.mu!r})"

    @property
    def mu(self) -> float:
        """The Poisson parameter; the variance is ``2 mu``."""
        return self._poisson.mu

    @property
    def bound(self) -> int:
        """Largest magnitude ever produced."""
        return self._poisson.high - self._poisson.low

    @property
    def tv_bound(self) -> float:
        """Total variation distance of one sample from ``Sk(mu)`` (two Poisson draws)."""
        return 2.0 * self._poisson.tv_bound

    @property
    def variance(self) -> float:
        """Variance of the sampled distribution (twice the truncated Poisson variance)."""
        return 2.0 * self._poisson.variance

    def sample(self, size: int, prg: AesCtrPrg) -> npt.NDArray[np.int64]:
        """``size`` independent samples (256 keystream bits each)."""
        n = operator.index(size)
        both = self._poisson.sample(2 * n, prg)
        return both[:n] - both[n:]


def skellam_rdp_bound(*, variance: float, l2_sensitivity: float, l1_sensitivity: float) -> RdpBound:
    """Renyi-DP of adding Skellam noise of total ``variance`` (Agarwal et al., section 3).

    Parameters
    ----------
    variance : float
        ``V``: variance per coordinate of the noise the adversary does not know (integer
        units; the honest clients' ``2 mu`` summed).
    l2_sensitivity, l1_sensitivity : float
        Bounds on the L2 and L1 norms of the change of the sum's input (integer units).

    Returns
    -------
    RdpBound
        The two lines of the module docstring, for integer orders.
    """
    v = float(variance)
    d2, d1 = float(l2_sensitivity), float(l1_sensitivity)
    if not (math.isfinite(v) and v > 0.0):
        raise ParameterError(f"the Skellam variance must be positive and finite, got {variance!r}")
    if not (d2 >= 0.0 and d1 >= 0.0 and math.isfinite(d1 + d2)):
        raise ParameterError("sensitivities must be finite and >= 0")
    first = ApproxZcdp(
        xi=(6.0 * d1 - d2 * d2) / (4.0 * v * v), rho=d2 * d2 / (2.0 * v) + d2 * d2 / (2.0 * v * v)
    )
    second = ApproxZcdp(xi=3.0 * d1 / (2.0 * v), rho=d2 * d2 / (2.0 * v))
    return RdpBound(
        lines=(first, second),
        integer_orders=True,
        source="Agarwal, Kairouz, Liu (NeurIPS 2021), Renyi-DP bound of section 3",
    )
