"""The distributed discrete Gaussian: per-client sampler and the privacy bound of the sum.

Kairouz, Liu and Steinke, "The Distributed Discrete Gaussian Mechanism for Federated
Learning with Secure Aggregation", ICML 2021 (arXiv:2102.06387).

Sampler
-------
``N_Z(0, sigma^2)`` gives the integer ``x`` probability proportional to
``exp(-x^2 / (2 sigma^2))`` (Canonne, Kamath and Steinke, "The Discrete Gaussian for
Differential Privacy", NeurIPS 2020). The sampler draws ``|X|`` from an exact table
(`securecomp.crypto.cdt`) of the folded weights ``w(0), 2 w(1), ..., 2 w(K)`` and a sign from one
keystream bit, so the output is exactly symmetric. The weights are computed by the
recurrence ``w(x+1) = w(x) q^(2x+1)``, ``q = exp(-1 / (2 sigma^2))``, with 320 fractional
bits (``q`` from 110-digit decimal arithmetic). The discrete Gaussian is
``sigma^2``-subgaussian (Canonne, Kamath and Steinke, section 2: ``E[e^(tX)] <=
e^(t^2 sigma^2 / 2)``), so ``P[|X| > K] <= 2 exp(-(K+1)^2 /
(2 sigma^2))``; ``K`` is the smallest integer making this at most 2^-100, and that mass is
the sampler's ``tail_mass``. Unlike `securecomp.he.ckks.gaussian` (``sigma >= 256`` reached
by convolution, with the sigma only bounded from below), the table is built for the exact
``sigma`` asked, from ``1/2`` (the smallest the privacy bound below allows) to `MAX_SIGMA`.

Privacy of the sum (Kairouz et al., Proposition 14)
---------------------------------------------------
Let ``n`` honest clients each add independent ``N_Z(0, sigma^2)^d`` noise, ``sigma >= 1/2``,
and let the sum's input change by a vector of L2 norm at most ``D2`` and L1 norm at most
``D1``. With ``tau = 10 * sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k + 1))`` and ``s = sqrt(n)
sigma``, the sum satisfies ``D_alpha <= min(A, B, C)`` for all ``alpha >= 1``, where

* ``A = alpha D2^2 / (2 s^2) + tau d``,
* ``B = (alpha / 2) (D2^2 / s^2 + 2 D1 tau / s + tau^2 d)``,
* ``C = (alpha / 2) (D2 / s + tau sqrt(d))^2``.

``A`` is an ``(xi, rho)`` line with ``xi = tau d``; ``B`` and ``C`` are plain zCDP. The sum of
discrete Gaussians is not a discrete Gaussian, and ``tau`` is what that costs (it vanishes
fast: ``sigma = 1`` and ``n = 10^4`` give ``tau ~ 10^-3``).
"""

from __future__ import annotations

import decimal
import functools
import math
import operator

import numpy as np
import numpy.typing as npt

from securecomp.crypto.cdt import CdtSampler
from securecomp.crypto.prg import AesCtrPrg
from securecomp.dp.accounting import ApproxZcdp, RdpBound
from securecomp.errors import ParameterError

__all__ = [
    "MAX_SIGMA",
    "MIN_SIGMA",
    "TAIL_BITS",
    "DiscreteGaussianSampler",
    "ddgauss_rdp_bound",
    "ddgauss_tau",
]

#: Smallest per-client sigma Proposition 14 of Kairouz et al. covers.
MIN_SIGMA = 0.5
#: Largest per-client sigma served (in integer units): the folded table then has ~194,000
#: entries. Beyond it the rounding error (variance <= 1/4 per coordinate) is below 10^-9 of
#: the noise variance, so a smaller scale loses nothing; `DistributedDpConfig` says so.
MAX_SIGMA = float(1 << 14)
#: Each sampler leaves out at most 2^-TAIL_BITS of probability mass.
TAIL_BITS = 100

_FRAC = 320  # fractional bits of the fixed-point weights (see securecomp.crypto.cdt)


def _check_sigma(sigma: object) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, int | float | np.floating):
        raise ParameterError(f"sigma must be a real number, got {type(sigma).__name__}")
    s = float(sigma)
    if not (math.isfinite(s) and MIN_SIGMA <= s <= MAX_SIGMA):
        raise ParameterError(
            f"per-client discrete Gaussian sigma must lie in [{MIN_SIGMA}, {MAX_SIGMA:g}] "
            f"integer units, got {sigma!r}; adjust the scale (a larger scale raises sigma)"
        )
    return s


def _table_bound(sigma: float) -> int:
    """Smallest ``K`` with ``2 exp(-(K+1)^2 / (2 sigma^2)) <= 2^-TAIL_BITS``."""
    need = sigma * math.sqrt(2.0 * (TAIL_BITS + 1) * math.log(2.0))
    k = max(0, math.ceil(need * (1.0 + 1e-12)) - 1)
    while 2.0 * math.exp(-((k + 1) ** 2) / (2.0 * sigma * sigma)) > 2.0**-TAIL_BITS:
        k += 1
    return k


@functools.lru_cache(maxsize=16)
def _folded_table(sigma: float) -> CdtSampler:
    bound = _table_bound(sigma)
    with decimal.localcontext() as ctx:
        ctx.prec = 110
        d_sigma = decimal.Decimal(sigma)  # exact: floats are binary rationals
        q = (-(decimal.Decimal(1) / (2 * d_sigma * d_sigma))).exp()
        fixed_q = int((q * (decimal.Decimal(2) ** _FRAC)).to_integral_value(decimal.ROUND_FLOOR))
    one = 1 << _FRAC
    q2 = (fixed_q * fixed_q) >> _FRAC
    weights = [one]
    w, ratio = one, fixed_q  # ratio = q^(2x+1) for the step x -> x + 1
    for _ in range(bound):
        w = (w * ratio) >> _FRAC
        ratio = (ratio * q2) >> _FRAC
        weights.append(2 * w)  # folded: +x and -x
    if weights[-1] < 1 << (_FRAC - 130):
        raise ParameterError(f"internal: Gaussian({sigma}) table weight below 2^-130 of w(0)")
    tail = 2.0 * math.exp(-((bound + 1) ** 2) / (2.0 * sigma * sigma))
    return CdtSampler(weights, 0, tail_mass=tail)


class DiscreteGaussianSampler:
    """Samples of ``N_Z(0, sigma^2)`` from an `AesCtrPrg` (see the module docstring).

    Invariant: outputs are exactly symmetric about 0 and within total variation
    `tv_bound` of the discrete Gaussian with parameter `sigma`.

    Parameters
    ----------
    sigma : float
        The parameter ``sigma`` in integer units, ``1/2 <= sigma <= MAX_SIGMA``.
    """

    __slots__ = ("_table", "sigma")

    def __init__(self, sigma: float) -> None:
        self.sigma = _check_sigma(sigma)
        self._table = _folded_table(self.sigma)

    def __repr__(self) -> str:
        return f"DiscreteGaussianSampler(sigma={self.sigma!r})"

    @property
    def bound(self) -> int:
        """Largest magnitude ever produced (``K``)."""
        return self._table.size - 1

    @property
    def tail_mass(self) -> float:
        """Probability mass of ``N_Z(0, sigma^2)`` beyond ``bound`` (<= 2^-100)."""
        return self._table.tail_mass

    @property
    def tv_bound(self) -> float:
        """Total variation distance of one sample from ``N_Z(0, sigma^2)``."""
        return self._table.tv_bound

    @property
    def variance(self) -> float:
        """Variance of the sampled (truncated) distribution; slightly below ``sigma^2``."""
        t = self._table
        return t.variance + t.mean * t.mean  # E[X^2] = E[|X|^2], and E[X] = 0

    def sample(self, size: int, prg: AesCtrPrg) -> npt.NDArray[np.int64]:
        """``size`` independent samples (129 keystream bits each)."""
        n = operator.index(size)
        magnitude = self._table.sample(n, prg)
        signs = np.frombuffer(prg.bytes((n + 7) // 8), dtype=np.uint8)
        negative = np.unpackbits(signs, count=n).astype(bool)
        np.negative(magnitude, out=magnitude, where=negative)
        return magnitude


def ddgauss_tau(sigma: float, n: int) -> float:
    """``tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k+1))`` (Kairouz et al., Prop. 14)."""
    s = float(sigma)
    count = operator.index(n)
    if count < 1:
        raise ParameterError(f"the number of noise summands must be >= 1, got {count}")
    if count == 1:
        return 0.0
    k = np.arange(1, count, dtype=np.float64)
    return 10.0 * float(np.exp(-2.0 * math.pi**2 * s * s * k / (k + 1.0)).sum())


def ddgauss_rdp_bound(
    *,
    sigma: float,
    n_honest: int,
    l2_sensitivity: float,
    l1_sensitivity: float,
    dim: int,
) -> RdpBound:
    """Renyi-DP of the sum of ``n_honest`` discrete Gaussians (Kairouz et al., Prop. 14).

    Parameters
    ----------
    sigma : float
        Per-client parameter (integer units), at least 1/2.
    n_honest : int
        Clients whose noise the adversary does not know (at least 1).
    l2_sensitivity, l1_sensitivity : float
        Bounds on the L2 and L1 norms of the change of the sum's input (integer units).
    dim : int
        Number of coordinates noised.

    Returns
    -------
    RdpBound
        The three lines ``A``, ``B``, ``C`` of the module docstring.
    """
    s1 = float(sigma)
    if not (math.isfinite(s1) and s1 >= MIN_SIGMA):
        raise ParameterError(
            f"Proposition 14 of Kairouz et al. needs sigma >= {MIN_SIGMA}, got {sigma!r}"
        )
    n = operator.index(n_honest)
    d = operator.index(dim)
    d2, d1 = float(l2_sensitivity), float(l1_sensitivity)
    if n < 1 or d < 1 or not (d2 >= 0 and d1 >= 0) or not math.isfinite(d1 + d2):
        raise ParameterError("n_honest and dim must be >= 1 and sensitivities finite, >= 0")
    tau = ddgauss_tau(s1, n)
    s = math.sqrt(n) * s1
    a = ApproxZcdp(xi=tau * d, rho=d2 * d2 / (2.0 * s * s))
    b = ApproxZcdp(xi=0.0, rho=0.5 * (d2 * d2 / (s * s) + 2.0 * d1 * tau / s + tau * tau * d))
    c = ApproxZcdp(xi=0.0, rho=0.5 * (d2 / s + tau * math.sqrt(d)) ** 2)
    return RdpBound(
        lines=(a, b, c),
        integer_orders=False,
        source="Kairouz, Liu, Steinke (ICML 2021), Proposition 14",
    )
