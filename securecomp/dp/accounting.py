"""Privacy accounting for distributed DP through (approximate) zero-concentrated DP.

What is accounted
-----------------
A mechanism is *(xi, rho)-zCDP* if the Renyi divergence of order ``alpha`` between its
outputs on neighbouring inputs is at most ``xi + rho * alpha`` for every ``alpha > 1``
(Bun and Steinke, "Concentrated Differential Privacy: Simplifications, Extensions, and Lower
Bounds", TCC 2016, Definition 1.1; ``xi = 0`` is plain ``rho``-zCDP). Both mechanisms of this
package come with bounds of exactly that shape, as a minimum over a few such lines:

* the distributed discrete Gaussian: Kairouz, Liu and Steinke, "The Distributed Discrete
  Gaussian Mechanism for Federated Learning with Secure Aggregation", ICML 2021,
  Proposition 14 (`securecomp.dp.ddgauss.ddgauss_rdp_bound`);
* the Skellam mechanism: Agarwal, Kairouz and Liu, "The Skellam Mechanism for
  Differentially Private Federated Learning", NeurIPS 2021, the Renyi-DP theorem of
  section 3 (`securecomp.dp.skellam.skellam_rdp_bound`), whose right-hand side is also a
  minimum of two lines in ``alpha``.

Neither is treated as a continuous Gaussian: the accountant only ever sees these bounds.

Composition and conversion
--------------------------
Over rounds the Renyi divergences add (Mironov, "Renyi Differential Privacy", CSF 2017,
Proposition 1), so for zCDP lines the ``xi`` and ``rho`` add; for a minimum over lines the
accountant adds the curves pointwise on a grid of orders, which is never looser. The
composed curve is converted to ``(epsilon, delta)`` with the conversion of Canonne, Kamath
and Steinke ("The Discrete Gaussian for Differential Privacy", NeurIPS 2020, section 2.3,
Proposition 12 of arXiv:2004.00010v4): an ``(alpha, R)``-RDP mechanism is
``(epsilon, delta)``-DP for

    epsilon = R + log(1 - 1/alpha) + (log(1/delta) - log(alpha)) / (alpha - 1),

minimized over the grid. It is never worse than Bun and Steinke's
``epsilon = xi + rho + 2 sqrt(rho log(1/delta))`` (their Proposition 1.3), which
`bun_steinke_epsilon` gives for comparison. A bound flagged ``integer_orders`` (the Skellam
bound, used as the authors' accountant uses it) makes the accountant optimize over integer
orders only.

Extra delta terms
-----------------
* *Sampler*: the noise is drawn from tables truncated to a finite window
  (`securecomp.crypto.cdt`). If every release is within total variation ``eta`` of the ideal
  mechanism, an ``(epsilon, delta)`` guarantee of the ideal one holds for the real one with
  ``delta + (1 + e^epsilon) * eta`` (for any event S: ``P'[S] <= P[S] + eta <=
  e^eps (P'[S'] + eta) + delta + eta``); the ``eta`` of all releases add.
* *Modular wrap-around*: the probability that a round's aggregate wraps modulo ``2^b`` is
  added as well. Reduction modulo ``2^b`` is post-processing of the noisy sum, so this term
  is conservative; it is counted so that one ``delta`` covers every failure of the release.

No amplification by sampling is applied: the server chooses the cohort, so the privacy of a
client does not benefit from the randomness of who is picked.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from securecomp.errors import ParameterError

__all__ = [
    "ApproxZcdp",
    "PrivacyAccountant",
    "PrivacyEvent",
    "PrivacySpent",
    "RdpBound",
    "bun_steinke_epsilon",
    "rdp_to_epsilon",
]

#: Real orders (alpha - 1 from 1e-3 to 1e7, geometric): fine enough that the minimum over
#: the grid is within ~1e-5 relative of the continuous optimum for these smooth curves.
_REAL_ORDERS = 1.0 + np.geomspace(1e-3, 1e7, 6000)
#: Integer orders 2 .. 1e7 (geometric, deduplicated), for bounds stated at integer orders.
_INT_ORDERS = np.unique(np.ceil(np.geomspace(2.0, 1e7, 6000)))


def _finite(name: str, value: object, *, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ParameterError(f"{name} must be a real number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x) or (low is not None and x < low):
        bound = f" and >= {low:g}" if low is not None else ""
        raise ParameterError(f"{name} must be finite{bound}, got {value!r}")
    return x


@dataclass(frozen=True)
class ApproxZcdp:
    """One line ``D_alpha <= xi + rho * alpha`` (for all ``alpha > 1``).

    Invariant: ``rho >= 0`` and both are finite. ``xi`` may be negative when the line is one
    branch of a minimum that is itself non-negative (Agarwal et al.'s first branch).
    """

    xi: float
    rho: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "xi", _finite("xi", self.xi))
        object.__setattr__(self, "rho", _finite("rho", self.rho, low=0.0))


@dataclass(frozen=True)
class RdpBound:
    """A Renyi-DP bound ``R(alpha) = max(0, min_j (xi_j + rho_j * alpha))`` for one release.

    Attributes
    ----------
    lines : tuple of ApproxZcdp
        The lines whose minimum bounds the Renyi divergence.
    integer_orders : bool
        The source states the bound for integer orders only.
    source : str
        Where the bound comes from (paper and statement).
    """

    lines: tuple[ApproxZcdp, ...]
    integer_orders: bool
    source: str

    def __post_init__(self) -> None:
        if not self.lines or not all(isinstance(x, ApproxZcdp) for x in self.lines):
            raise ParameterError("an RdpBound needs at least one ApproxZcdp line")

    def rdp(self, orders: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``R(alpha)`` at each order (orders must exceed 1)."""
        a = np.asarray(orders, dtype=np.float64)
        if a.size and not float(a.min()) > 1.0:
            raise ParameterError("Renyi orders must all exceed 1")
        curves = np.stack([ln.xi + ln.rho * a for ln in self.lines])
        return np.maximum(curves.min(axis=0), 0.0)


@dataclass(frozen=True)
class PrivacyEvent:
    """What one release (one aggregation round) costs.

    Attributes
    ----------
    bound : RdpBound
        Renyi-DP bound of the ideal mechanism (exact noise distribution).
    sampler_tv : float
        Total variation between the noise actually sampled in the release (all honest
        clients, all coordinates) and the ideal noise.
    wrap_probability : float
        Probability that the release's aggregate wraps modulo ``2^b`` (counted in delta).
    """

    bound: RdpBound
    sampler_tv: float = 0.0
    wrap_probability: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.bound, RdpBound):
            raise ParameterError("bound must be an RdpBound")
        for name in ("sampler_tv", "wrap_probability"):
            v = _finite(name, getattr(self, name), low=0.0)
            if v >= 1.0:
                raise ParameterError(f"{name} must be below 1, got {v}")
            object.__setattr__(self, name, v)


@dataclass(frozen=True)
class PrivacySpent:
    """An ``(epsilon, delta)`` guarantee and how delta is split.

    Invariant: ``delta == delta_rdp + delta_sampler + delta_wrap`` (up to float rounding)
    and ``delta_sampler == (1 + e^epsilon) * eta`` for the composed sampler distance.
    """

    epsilon: float
    delta: float
    order: float
    delta_rdp: float
    delta_sampler: float
    delta_wrap: float


def rdp_to_epsilon(orders: npt.ArrayLike, rdp: npt.ArrayLike, delta: float) -> tuple[float, float]:
    """Smallest ``epsilon`` over ``orders`` from the Canonne-Kamath-Steinke conversion.

    Parameters
    ----------
    orders : array_like
        Renyi orders, each > 1.
    rdp : array_like
        The (composed) Renyi divergence bound at each order.
    delta : float
        Target delta in ``(0, 1)``.

    Returns
    -------
    (epsilon, order)
        The best epsilon (at least 0) and the order attaining it.
    """
    d = _finite("delta", delta)
    if not 0.0 < d < 1.0:
        raise ParameterError(f"delta must lie in (0, 1), got {delta!r}")
    a = np.asarray(orders, dtype=np.float64)
    r = np.asarray(rdp, dtype=np.float64)
    if a.shape != r.shape or a.ndim != 1 or a.size == 0:
        raise ParameterError("orders and rdp must be 1-D arrays of the same non-zero length")
    if not float(a.min()) > 1.0:
        raise ParameterError("Renyi orders must all exceed 1")
    if np.isnan(r).any() or (r < 0).any():
        raise ParameterError("Renyi divergences must be >= 0 and not NaN")
    eps = r + np.log1p(-1.0 / a) + (math.log(1.0 / d) - np.log(a)) / (a - 1.0)
    i = int(np.argmin(eps))
    return max(float(eps[i]), 0.0), float(a[i])


def bun_steinke_epsilon(rho: float, delta: float, xi: float = 0.0) -> float:
    """``xi + rho + 2 sqrt(rho log(1/delta))`` (Bun and Steinke 2016, Proposition 1.3)."""
    r = _finite("rho", rho, low=0.0)
    x = _finite("xi", xi)
    d = _finite("delta", delta)
    if not 0.0 < d < 1.0:
        raise ParameterError(f"delta must lie in (0, 1), got {delta!r}")
    return x + r + 2.0 * math.sqrt(r * math.log(1.0 / d))


class PrivacyAccountant:
    """Composition of releases and conversion to ``(epsilon, delta)``.

    Invariant: immutable; `compose` returns a new accountant whose Renyi curve is the
    pointwise sum of this one's and the event's (times ``count``).

    Parameters
    ----------
    events : sequence of (PrivacyEvent, int), optional
        Releases already made, each with how many times it was repeated.
    """

    __slots__ = ("_events",)

    def __init__(self, events: Sequence[tuple[PrivacyEvent, int]] = ()) -> None:
        checked: list[tuple[PrivacyEvent, int]] = []
        for event, count in events:
            if not isinstance(event, PrivacyEvent):
                raise ParameterError("events must be PrivacyEvent instances")
            c = _count(count)
            if c:
                checked.append((event, c))
        self._events = tuple(checked)

    def __repr__(self) -> str:
        return f"PrivacyAccountant(releases={self.releases})"

    @property
    def releases(self) -> int:
        """Number of releases composed so far."""
        return sum(c for _, c in self._events)

    def compose(self, event: PrivacyEvent, count: int = 1) -> PrivacyAccountant:
        """A new accountant with ``count`` more releases of ``event``."""
        if not isinstance(event, PrivacyEvent):
            raise ParameterError(f"event must be a PrivacyEvent, got {type(event).__name__}")
        return PrivacyAccountant((*self._events, (event, _count(count))))

    @property
    def integer_orders(self) -> bool:
        """True if some composed bound holds at integer orders only."""
        return any(e.bound.integer_orders for e, _ in self._events)

    def orders(self) -> npt.NDArray[np.float64]:
        """The grid of orders the accountant optimizes over."""
        return (_INT_ORDERS if self.integer_orders else _REAL_ORDERS).copy()

    def rdp(self, orders: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
        """The composed Renyi-DP curve at ``orders`` (default: `orders`)."""
        a = self.orders() if orders is None else np.asarray(orders, dtype=np.float64)
        total = np.zeros(a.shape, dtype=np.float64)
        for event, count in self._events:
            total += count * event.bound.rdp(a)
        return total

    @property
    def sampler_tv(self) -> float:
        """Composed total variation of the sampled noise from the ideal noise."""
        return math.fsum(c * e.sampler_tv for e, c in self._events)

    @property
    def wrap_probability(self) -> float:
        """Probability that some release wrapped modulo ``2^b`` (union bound)."""
        return math.fsum(c * e.wrap_probability for e, c in self._events)

    def get_epsilon(self, delta: float) -> PrivacySpent:
        """The ``(epsilon, delta)`` guarantee of everything composed, ``delta`` total.

        Parameters
        ----------
        delta : float
            Total delta in ``(0, 1)``, covering the Renyi conversion, the samplers'
            truncation and the wrap-around probability.

        Raises
        ------
        ParameterError
            If the sampler and wrap-around terms alone exceed ``delta``.
        """
        d = _finite("delta", delta)
        if not 0.0 < d < 1.0:
            raise ParameterError(f"delta must lie in (0, 1), got {delta!r}")
        if not self._events:
            return PrivacySpent(0.0, d, math.inf, d, 0.0, 0.0)
        orders = self.orders()
        curve = self.rdp(orders)
        eta = self.sampler_tv
        wrap = self.wrap_probability
        # epsilon depends on delta_rdp, which depends on epsilon through (1 + e^eps) eta:
        # iterate from eps = 0; the sequence increases and stops at a fixed point (eta is
        # ~2^-50 in practice, so two passes suffice).
        if wrap + 2.0 * eta >= d:
            raise ParameterError(
                f"delta {d:.3g} does not cover the wrap-around probability {wrap:.3g} and the "
                f"samplers' distance 2 x {eta:.3g}: raise delta, or modulus_bits (wrap_bits)"
            )
        eps, order = 0.0, math.inf
        for _ in range(100):
            d_rdp = d - wrap - (1.0 + math.exp(min(eps, 700.0))) * eta
            if d_rdp <= 0.0:
                raise ParameterError(
                    f"epsilon exceeds {eps:.1f}, where the samplers' truncation (total variation "
                    f"{eta:.3g}, counted as (1 + e^epsilon) x that) no longer fits in delta "
                    f"{d:.3g}; such a guarantee is vacuous: add noise or compose fewer rounds"
                )
            new, order = rdp_to_epsilon(orders, curve, d_rdp)
            if new <= eps:
                break
            eps = new
        d_rdp = d - wrap - (1.0 + math.exp(min(eps, 700.0))) * eta
        return PrivacySpent(
            epsilon=eps,
            delta=d,
            order=order,
            delta_rdp=d_rdp,
            delta_sampler=d - wrap - d_rdp,
            delta_wrap=wrap,
        )


def _count(count: object) -> int:
    if isinstance(count, bool):
        raise ParameterError("count must be an int, got a bool")
    try:
        c = operator.index(count)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ParameterError(f"count must be an int, got {count!r}") from exc
    if c < 0:
        raise ParameterError(f"count must be >= 0, got {c}")
    return c
