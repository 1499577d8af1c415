"""Degree and threshold for SecAgg+ from the bounds of Bell et al. (CCS 2020, section 3).

Threat model and events
-----------------------
``n`` clients; at most ``C = floor(gamma n)`` of them are corrupt (semi-honest, colluding
with the server) and at most ``D = floor(delta n)`` drop out over the whole run. Both sets
are fixed independently of the graph's random labels (semi-honest: nobody chooses whom
to corrupt or drop after seeing the graph). Each client ``u`` shares its secrets among its
closed neighbourhood ``N[u]`` (its ``k`` neighbours and itself) with threshold ``t``.
Bell et al.'s semi-honest construction is secure and correct unless one of three events
occurs; we bound each by a union bound over exact hypergeometric tails:

1. *Disconnection* (security). The server learns the sum of every connected component of
   the graph of honest survivors, so that graph must stay connected. In H(n, k) (ring
   positions joined within distance ``k/2``) removing a set disconnects the rest only if
   it contains two disjoint, non-adjacent runs of ``k/2`` consecutive positions. There are
   ``n (n - k - 1) / 2`` such pairs; with uniformly random labels a given set of ``k``
   positions is entirely removed with probability ``B! (n-k)! / (n! (B-k)!)`` where
   ``B = C + D`` (zero if ``k > B``).
2. *Too many corrupt neighbours* (security). If an honest ``u`` has ``t`` corrupt
   neighbours, they reconstruct both its self-mask seed and its mask key. The count is
   hypergeometric ``Hyp(n - 1, C, k)``; the bound is ``n * P[X >= t]``.
3. *Too few surviving holders* (correctness, not security). ``u``'s secrets are
   recoverable if at least ``t`` holders survive: for a surviving ``u``, its own share plus
   ``k - X`` neighbours with ``X ~ Hyp(n - 1, D, k)``; for a dropped one ``k - X`` with
   ``X ~ Hyp(n - 1, D - 1, k)``. The bound is ``n`` times the worse of the two tails.

Malicious server
----------------
With ``ThreatModel(malicious_server=True)`` (Bonawitz et al.'s active model, section 4 and
Fig. 4; per neighbourhood for SecAgg+) the server may also lie to clients about who
dropped, asking some holders of ``u``'s shares for the self-mask share and others for the
key share. Each honest holder reveals one of the two (its own copy of the signed ``U3``
decides which); a corrupt holder may reveal both. With ``X`` corrupt neighbours, the server
can therefore gather ``t`` shares of both secrets only if ``2t <= (k + 1) + X``, so event 2
becomes ``X >= 2t - k - 1``. On the complete graph (``k + 1 = n``, ``X = C``) this is
Bonawitz et al.'s condition for active security, ``t > (n + n_C) / 2`` (its analysis
against active adversaries); two different survivor sets then cannot both collect ``t``
signatures in the ConsistencyCheck round either, since an honest client signs only one.
`threshold_window` reports the thresholds meeting both budgets (security needs ``t`` large,
robustness to dropouts ``t <= n - D`` small); an empty window is refused. Dropouts are
still assumed independent of the graph's labels in event 1, which a malicious server (it
decides who counts as dropped) need not respect: see `securecomp.secagg.server` for what
this leaves open on a Harary graph.

Events 1 and 2 together must stay below the statistical security budget ``2^-sigma``
(``sigma = 40``); event 3 below ``2^-eta`` (``eta = 20``). The search takes
the smallest even ``k`` for which some ``t`` meets all three and returns the smallest such
``t`` (cheapest reconstruction, most robust to dropouts); if no ``k < n - 1`` works it
falls back to the complete graph. The same three conditions are what Bell et al. require
of their random Harary graph; the closed forms above are written out here (rather than
quoted) so they can be checked, and `monte_carlo_check` measures the three events on
sampled graphs for small ``n``.

Tails are evaluated in floating point from log-gamma; results are compared against the
targets with a relative margin of 1e-9 in the safe direction.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from securecomp.errors import ParameterError
from securecomp.params import STATISTICAL_SECURITY_BITS, check_statistical_security
from securecomp.secagg.graph import CommunicationGraph, complete_graph, harary_graph

__all__ = [
    "CORRECTNESS_BITS",
    "FailureBounds",
    "GraphParameters",
    "MonteCarloReport",
    "ThreatModel",
    "complete_threshold",
    "failure_bounds",
    "monte_carlo_check",
    "search_parameters",
    "threshold_window",
]

#: A run fails (aborts for lack of holders) with probability at most 2^-20.
CORRECTNESS_BITS = 20

_NEG_INF = float("-inf")
_MARGIN = 1e-9  # relative slack on log2 comparisons, in the safe direction
_LN2 = math.log(2.0)


@dataclass(frozen=True)
class ThreatModel:
    """Fractions of corrupt and dropped clients a configuration must withstand.

    Attributes
    ----------
    corrupt_fraction : float
        ``gamma``: clients colluding with the (semi-honest) server, in ``[0, 1)``.
    dropout_fraction : float
        ``delta``: clients that may drop out over the whole run, in ``[0, 1)``.
    security_bits : int
        ``sigma``: the graph leaks more than the sum with probability at most 2^-sigma.
    correctness_bits : int
        ``eta``: the run aborts for lack of holders with probability at most 2^-eta.
    malicious_server : bool
        The server may deviate arbitrarily (Bonawitz et al.'s active model): clients sign
        their messages under pinned identity keys, run the ConsistencyCheck round, and the
        threshold must exceed ``(k + 1 + corrupt neighbours) / 2``. Default: semi-honest.
    """

    corrupt_fraction: float = 0.0
    dropout_fraction: float = 0.0
    security_bits: int = STATISTICAL_SECURITY_BITS
    correctness_bits: int = CORRECTNESS_BITS
    malicious_server: bool = False

    def __post_init__(self) -> None:
        g, d = float(self.corrupt_fraction), float(self.dropout_fraction)
        if not (0.0 <= g < 1.0 and 0.0 <= d < 1.0 and g + d < 1.0):
            raise ParameterError(
                "corrupt and dropout fractions must lie in [0, 1) with a sum below 1, got "
                f"{self.corrupt_fraction!r} and {self.dropout_fraction!r}"
            )
        for name in ("security_bits", "correctness_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 256:
                raise ParameterError(f"{name} must be an int in [1, 256], got {v!r}")
        # Privacy rests on security_bits: below 40 only behind the insecure opt-in.
        if self.security_bits <= 128:
            check_statistical_security(self.security_bits, "ThreatModel.security_bits")
        if not isinstance(self.malicious_server, bool):
            raise ParameterError(
                f"malicious_server must be a bool, got {self.malicious_server!r}"
            )
        object.__setattr__(self, "corrupt_fraction", g)
        object.__setattr__(self, "dropout_fraction", d)

    def corrupt_count(self, n: int) -> int:
        """``C = floor(gamma n)`` (a tiny epsilon absorbs float rounding of e.g. 0.1*30)."""
        return math.floor(self.corrupt_fraction * n + 1e-9)

    def dropout_count(self, n: int) -> int:
        """``D = floor(delta n)``."""
        return math.floor(self.dropout_fraction * n + 1e-9)


@dataclass(frozen=True)
class FailureBounds:
    """Union bounds (log2 of probabilities; ``-inf`` for impossible) on the bad events."""

    log2_disconnected: float
    log2_corrupt_neighbours: float
    log2_too_few_holders: float

    @property
    def log2_security_failure(self) -> float:
        """log2 of the bound on events 1 or 2 (leaking more than the sum)."""
        return _log2_add(self.log2_disconnected, self.log2_corrupt_neighbours)

    def meets(self, threat: ThreatModel) -> bool:
        """Whether both budgets of ``threat`` are met."""
        return self.log2_security_failure <= _target(threat.security_bits) and (
            self.log2_too_few_holders <= _target(threat.correctness_bits)
        )


@dataclass(frozen=True)
class GraphParameters:
    """Result of `search_parameters`: degree ``k`` (``n - 1``: complete) and threshold.

    ``window`` is the range ``(lo, hi)`` of thresholds meeting both budgets on this graph
    (`threshold_window`); ``threshold == lo``.
    """

    n: int
    degree: int
    threshold: int
    bounds: FailureBounds
    threat: ThreatModel
    window: tuple[int, int] = (0, 0)

    @property
    def complete(self) -> bool:
        return self.degree >= self.n - 1

    def graph(self, seed: bytes | None = None) -> CommunicationGraph:
        """A graph with these parameters (fresh random labels unless ``seed`` is given)."""
        if self.complete:
            return complete_graph(self.n)
        return harary_graph(self.n, self.degree, seed)


def _target(bits: int) -> float:
    return -float(bits) * (1.0 - _MARGIN)


def _log2_add(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    hi, lo = max(a, b), min(a, b)
    return hi + math.log2(1.0 + 2.0 ** (lo - hi))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _hyper_log2_tails(population: int, successes: int, draws: int) -> np.ndarray:
    """``out[m] = log2 P[X >= m]`` for ``m = 0 .. draws + 1``, ``X ~ Hyp(pop, succ, draws)``."""
    out = np.full(draws + 2, _NEG_INF)
    lo = max(0, draws - (population - successes))
    hi = min(successes, draws)
    if lo > hi:  # pragma: no cover - impossible for valid arguments
        return out
    total = _log_comb(population, draws)
    i = np.arange(lo, hi + 1)
    logpmf = (
        np.array(
            [
                _log_comb(successes, int(j)) + _log_comb(population - successes, draws - int(j))
                for j in i
            ]
        )
        - total
    )
    # Suffix log-sum-exp: tails[m] = log sum_{j >= m} pmf[j].
    suffix = np.logaddexp.accumulate(logpmf[::-1])[::-1] / _LN2
    out[lo : hi + 1] = suffix
    out[:lo] = 0.0
    out = np.minimum(out, 0.0)
    return out


def _log2_disconnected(n: int, k: int, bad: int) -> float:
    if k >= n - 1:
        return _NEG_INF  # removing nodes from a complete graph never disconnects the rest
    if k > bad:
        return _NEG_INF
    pairs = math.log2(n) + math.log2(max(n - k - 1, 1)) - 1.0
    log_p = (
        math.lgamma(bad + 1)
        + math.lgamma(n - k + 1)
        - math.lgamma(n + 1)
        - math.lgamma(bad - k + 1)
    ) / _LN2
    return min(0.0, pairs + log_p)


def _tails_for(n: int, k: int, threat: ThreatModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c, d = threat.corrupt_count(n), threat.dropout_count(n)
    corrupt = _hyper_log2_tails(n - 1, min(c, n - 1), k)
    drop_alive = _hyper_log2_tails(n - 1, min(d, n - 1), k)
    drop_dead = _hyper_log2_tails(n - 1, min(max(d - 1, 0), n - 1), k) if d else None
    none = np.full(k + 2, _NEG_INF)
    return corrupt, drop_alive, drop_dead if drop_dead is not None else none


def _corrupt_index(k: int, t: int, threat: ThreatModel) -> int:
    """Event 2 is ``X >= _corrupt_index``: ``t`` semi-honest, ``2t - k - 1`` malicious."""
    if threat.malicious_server:
        return max(2 * t - k - 1, 0)
    return t


def _holder_failure(k: int, t: int, drop_alive: np.ndarray, drop_dead: np.ndarray) -> float:
    # Surviving u: holders = 1 + k - X < t  <=>  X >= k + 2 - t.
    # Dropped u:   holders = k - X < t      <=>  X >= k + 1 - t.
    def tail(arr: np.ndarray, m: int) -> float:
        if m <= 0:
            return 0.0 if arr[0] > _NEG_INF else _NEG_INF
        return float(arr[m]) if m < arr.size else _NEG_INF

    return max(tail(drop_alive, k + 2 - t), tail(drop_dead, k + 1 - t))


def failure_bounds(n: int, degree: int, threshold: int, threat: ThreatModel) -> FailureBounds:
    """Union bounds on the three bad events of a random H(n, degree) with ``threshold``.

    ``degree >= n - 1`` means the complete graph (Bonawitz et al.), where the events are
    deterministic: corrupt clients ``C >= t``, or fewer than ``t`` holders after ``D``
    dropouts.
    """
    n = operator.index(n)
    k = min(operator.index(degree), n - 1)
    t = operator.index(threshold)
    if n < 2 or k < 1 or not 1 <= t <= k + 1:
        raise ParameterError(
            f"need n >= 2, degree >= 1 and 1 <= threshold <= degree + 1, "
            f"got n={n}, degree={degree}, threshold={t}"
        )
    c, d = threat.corrupt_count(n), threat.dropout_count(n)
    disc = _log2_disconnected(n, k, c + d)
    corrupt, drop_alive, drop_dead = _tails_for(n, k, threat)
    log_n = math.log2(n)
    m = _corrupt_index(k, t, threat)
    corrupt_tail = float(corrupt[m]) if m < corrupt.size else _NEG_INF
    log_corrupt = min(0.0, log_n + corrupt_tail) if corrupt_tail > _NEG_INF else _NEG_INF
    holder = _holder_failure(k, t, drop_alive, drop_dead)
    log_holder = min(0.0, log_n + holder) if holder > _NEG_INF else _NEG_INF
    return FailureBounds(disc, log_corrupt, log_holder)


def _complete_window(n: int, threat: ThreatModel) -> tuple[int, int]:
    c, d = threat.corrupt_count(n), threat.dropout_count(n)
    # Semi-honest: more than the C corrupt clients. Malicious: t > (n + C) / 2
    # (Bonawitz et al., active model). Either way at most n - D, so the survivors suffice.
    lo = (n + c) // 2 + 1 if threat.malicious_server else c + 1
    return max(lo, 2), n - d


def _empty_window(n: int, degree: int, threat: ThreatModel, lo: int, hi: int) -> str:
    c, d = threat.corrupt_count(n), threat.dropout_count(n)
    if threat.malicious_server:
        need = (
            f"t > (k + 1 + corrupt neighbours) / 2 (= (n + C) / 2 = {(n + c) / 2:g} on the "
            "complete graph; Bonawitz et al., active model) against the malicious server"
        )
    else:
        need = "t > corrupt neighbours"
    return (
        f"empty threshold window for n={n}, degree {degree}, {c} corrupt and {d} dropped "
        f"clients: security needs {need}, i.e. t >= {lo}, while surviving the dropouts "
        f"needs t <= {hi}; lower the corrupt or dropout fraction, or add clients"
    )


def complete_threshold(n: int, threat: ThreatModel) -> int:
    """Default threshold on the complete graph: a majority, raised above the corrupt count.

    A majority (``n // 2 + 1``) is the conventional margin; it is lowered to the smallest
    secure value ``C + 1`` only if the dropout budget would otherwise be unmet. Against a
    malicious server the smallest secure value is ``floor((n + C) / 2) + 1``.

    Raises
    ------
    ParameterError
        If no threshold satisfies ``lo <= t <= n - D`` (the window is empty).
    """
    lo, hi = _complete_window(n, threat)
    if lo > hi:
        raise ParameterError(_empty_window(n, n - 1, threat, lo, hi))
    return min(max(lo, n // 2 + 1), hi)


def threshold_window(n: int, degree: int, threat: ThreatModel) -> tuple[int, int] | None:
    """The thresholds ``t`` for which H(n, degree) meets both budgets of ``threat``.

    Security (events 1 and 2) improves with ``t`` and robustness (event 3) worsens, so the
    feasible thresholds form an interval ``(lo, hi)``; ``None`` when it is empty.
    ``degree >= n - 1`` means the complete graph.
    """
    n = operator.index(n)
    k = min(operator.index(degree), n - 1)
    if n < 2 or k < 1:
        raise ParameterError(f"need n >= 2 and degree >= 1, got n={n}, degree={degree}")
    if k >= n - 1:
        lo, hi = _complete_window(n, threat)
        return (lo, hi) if lo <= hi else None
    good = [t for t in range(2, k + 2) if failure_bounds(n, k, t, threat).meets(threat)]
    return (good[0], good[-1]) if good else None


def search_parameters(n: int, threat: ThreatModel) -> GraphParameters:
    """Smallest even Harary degree and its threshold meeting ``threat``'s budgets.

    Parameters
    ----------
    n : int
        Number of clients.
    threat : ThreatModel
        Corrupt and dropout fractions, ``sigma`` and ``eta``.

    Returns
    -------
    GraphParameters
        ``degree == n - 1`` (the complete graph) when no sparser graph meets the bounds,
        which is the case for small ``n``.

    Raises
    ------
    ParameterError
        If not even the complete graph meets them.
    """
    n = operator.index(n)
    if n < 2:
        raise ParameterError(f"need at least 2 clients, got {n}")
    c, d = threat.corrupt_count(n), threat.dropout_count(n)
    sec = _target(threat.security_bits)
    cor = _target(threat.correctness_bits)
    log_n = math.log2(n)
    for k in range(2, n - 1, 2):
        disc = _log2_disconnected(n, k, c + d)
        if disc > sec:
            continue
        corrupt, drop_alive, drop_dead = _tails_for(n, k, threat)
        t_min = None
        for t in range(2, k + 2):
            m = _corrupt_index(k, t, threat)
            log_corrupt = log_n + corrupt[m] if corrupt[m] > _NEG_INF else _NEG_INF
            if _log2_add(disc, log_corrupt) <= sec:
                t_min = t
                break
        if t_min is None:
            continue
        holder = _holder_failure(k, t_min, drop_alive, drop_dead)
        if holder == _NEG_INF or log_n + holder <= cor:
            bounds = failure_bounds(n, k, t_min, threat)
            window = threshold_window(n, k, threat) or (t_min, t_min)
            return GraphParameters(n, k, t_min, bounds, threat, window)
    t = complete_threshold(n, threat)
    window = _complete_window(n, threat)
    return GraphParameters(n, n - 1, t, failure_bounds(n, n - 1, t, threat), threat, window)


@dataclass(frozen=True)
class MonteCarloReport:
    """Counts of the three bad events over sampled graphs, dropout and corruption sets."""

    trials: int
    disconnected: int
    corrupt_neighbours: int
    too_few_holders: int
    bounds: FailureBounds


def _connected(table: np.ndarray | None, n: int, allowed: np.ndarray) -> bool:
    nodes = np.flatnonzero(allowed)
    if nodes.size <= 1:
        return True
    if table is None:
        return True  # complete graph
    seen = np.zeros(n, dtype=bool)
    seen[nodes[0]] = True
    frontier = nodes[:1]
    while frontier.size:
        nbrs = table[frontier].ravel()
        nbrs = nbrs[allowed[nbrs] & ~seen[nbrs]]
        nbrs = np.unique(nbrs)
        seen[nbrs] = True
        frontier = nbrs
    return bool(seen[nodes].all())


def monte_carlo_check(
    n: int,
    degree: int,
    threshold: int,
    threat: ThreatModel,
    *,
    trials: int,
    rng: np.random.Generator,
) -> MonteCarloReport:
    """Sample graphs and bad sets; count the three events of `failure_bounds`.

    Each trial draws a fresh label seed, ``C`` corrupt and ``D`` dropped clients (from
    ``rng``: this is a statistical check, not key material) and tests, on the actual
    graph: connectivity of honest survivors (breadth-first search), the largest number of
    corrupt neighbours of an honest client (``>= threshold`` is a failure; against a
    malicious server ``>= 2 threshold - degree - 1``), and the fewest surviving holders of
    any client's shares (``< threshold`` is a failure).
    """
    if not isinstance(rng, np.random.Generator):
        raise ParameterError("rng must be a numpy.random.Generator")
    trials = operator.index(trials)
    c, d = threat.corrupt_count(n), threat.dropout_count(n)
    disc = bad_c = bad_h = 0
    for _ in range(trials):
        seed = rng.bytes(32)
        graph = complete_graph(n) if degree >= n - 1 else harary_graph(n, degree, seed)
        order = rng.permutation(n)
        corrupt = np.zeros(n, dtype=bool)
        corrupt[order[:c]] = True
        dropped = np.zeros(n, dtype=bool)
        dropped[order[c : c + d]] = True
        alive = ~dropped
        if graph.is_complete:
            table = None
            corrupt_counts = np.full(n, c) - corrupt
            holders = np.full(n, int(alive.sum()))
        else:
            table = graph._table
            corrupt_counts = corrupt[table].sum(axis=1)
            holders = alive[table].sum(axis=1) + alive
        honest = ~corrupt
        if not _connected(table, n, honest & alive):
            disc += 1
        k = min(degree, n - 1)
        if (corrupt_counts[honest] >= _corrupt_index(k, threshold, threat)).any():
            bad_c += 1
        if (holders < threshold).any():
            bad_h += 1
    return MonteCarloReport(
        trials, disc, bad_c, bad_h, failure_bounds(n, degree, threshold, threat)
    )
