"""Communication graphs and the SecAgg+ parameter search (Bell et al. bounds)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from securecomp.errors import ParameterError
from securecomp.secagg import (
    ThreatModel,
    complete_graph,
    failure_bounds,
    harary_graph,
    monte_carlo_check,
    search_parameters,
)
from securecomp.secagg.graph import random_permutation


@pytest.mark.parametrize(("n", "k"), [(5, 2), (12, 4), (31, 6), (64, 10)])
def test_harary_graph_is_regular_symmetric_and_a_relabelled_ring(n: int, k: int) -> None:
    g = harary_graph(n, k)
    adj = {u: set(g.neighbours(u)) for u in range(n)}
    assert all(len(a) == k and u not in a for u, a in adj.items())
    assert all(u in adj[v] for u in range(n) for v in adj[u])
    assert g.closed_neighbourhood(0) == tuple(sorted(adj[0] | {0}))
    # Undo the labelling: position i holds client perm[i]; neighbours are ring-adjacent.
    perm = random_permutation(n, g.seed)
    pos = {int(c): i for i, c in enumerate(perm)}
    for u in range(n):
        dists = sorted(min((pos[u] - pos[v]) % n, (pos[v] - pos[u]) % n) for v in adj[u])
        assert dists == sorted([d for d in range(1, k // 2 + 1)] * 2)
    assert g.are_neighbours(0, next(iter(adj[0]))) and not g.are_neighbours(0, 0)


def test_harary_graph_is_reproducible_from_its_seed_and_differs_across_seeds() -> None:
    a = harary_graph(40, 6, b"\x01" * 32)
    b = harary_graph(40, 6, b"\x01" * 32)
    c = harary_graph(40, 6, b"\x02" * 32)
    assert all(a.neighbours(u) == b.neighbours(u) for u in range(40))
    assert any(a.neighbours(u) != c.neighbours(u) for u in range(40))
    assert a.describe() == b.describe() != c.describe()


def test_permutation_is_uniform_on_small_sets() -> None:
    # All 24 permutations of 4 elements appear about equally often (chi-square, 23 dof).
    counts: dict[tuple[int, ...], int] = {}
    trials = 2400
    for i in range(trials):
        p = tuple(random_permutation(4, i.to_bytes(32, "big")).tolist())
        counts[p] = counts.get(p, 0) + 1
    assert len(counts) == 24
    expected = trials / 24
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 60  # 23 dof: P[chi2 > 60] < 1e-4


def test_complete_graph_and_degree_limits() -> None:
    g = complete_graph(5)
    assert g.is_complete and g.neighbours(2) == (0, 1, 3, 4)
    assert harary_graph(6, 5).is_complete  # degree >= n - 1 falls back to complete
    for bad in (3, 0, -2):
        with pytest.raises(ParameterError):
            harary_graph(10, bad)
    with pytest.raises(ParameterError):
        complete_graph(1)
    with pytest.raises(ParameterError):
        g.neighbours(5)


# --- parameter search -----------------------------------------------------------------------

# Degrees and thresholds published with Google's federated-compute SecAgg+ implementation
# (graph_parameter_finder tests, semi-honest server, sigma = 40, eta = 20). Our model counts
# a client's own share and draws neighbours from the n - 1 others, so small differences
# are expected; degree and threshold must stay within 3% (or a few units) of theirs.
REFERENCE = [
    (100, 0.05, 0.05, 12, 6),
    (1000, 0.05, 0.05, 30, 17),
    (100, 0.33, 0.33, 68, 34),
    (1000, 0.33, 0.33, 286, 150),
    (10000, 0.33, 0.33, 422, 221),
    (1000, 0.05, 0.33, 72, 24),
    (10000, 0.05, 0.33, 86, 29),
    (10000, 0.33, 0.05, 92, 70),
]


@pytest.mark.parametrize(("n", "gamma", "delta", "k_ref", "t_ref"), REFERENCE)
def test_search_agrees_with_reference_table(n, gamma, delta, k_ref, t_ref) -> None:
    p = search_parameters(n, ThreatModel(gamma, delta))
    assert abs(p.degree - k_ref) <= max(4, 0.03 * k_ref)
    assert abs(p.threshold - t_ref) <= max(2, 0.03 * t_ref)
    assert p.degree % 2 == 0 and 2 <= p.threshold <= p.degree + 1
    assert p.bounds.log2_security_failure <= -40 and p.bounds.log2_too_few_holders <= -20
    # Minimality: the next smaller even degree misses the budget with every threshold.
    if p.degree > 2:
        assert not any(
            failure_bounds(n, p.degree - 2, t, p.threat).meets(p.threat) for t in range(2, p.degree)
        )


def test_degree_grows_logarithmically() -> None:
    threat = ThreatModel(0.05, 0.05)
    degrees = [search_parameters(n, threat).degree for n in (1000, 10_000, 100_000)]
    assert degrees == sorted(degrees) and degrees[-1] < 3 * degrees[0]


def test_small_n_falls_back_to_complete_graph_and_bad_models_refused() -> None:
    p = search_parameters(8, ThreatModel(0.3, 0.3))
    assert p.degree <= 7 and p.bounds.meets(p.threat)
    q = search_parameters(6, ThreatModel(0.34, 0.34))
    assert q.complete and q.bounds.meets(q.threat)
    with pytest.raises(ParameterError):
        ThreatModel(0.6, 0.5)
    with pytest.raises(ParameterError):
        ThreatModel(-0.1, 0.0)


def _exact_tail(pop: int, succ: int, draws: int, m: int) -> Fraction:
    den = math.comb(pop, draws)
    return Fraction(
        sum(math.comb(succ, i) * math.comb(pop - succ, draws - i) for i in range(m, draws + 1)),
        den,
    )


@pytest.mark.parametrize(
    ("n", "k", "t", "gamma", "delta"), [(60, 8, 4, 0.1, 0.1), (200, 12, 5, 0.05, 0.2)]
)
def test_bounds_match_exact_rational_formulas(n, k, t, gamma, delta) -> None:
    threat = ThreatModel(gamma, delta)
    c, d = threat.corrupt_count(n), threat.dropout_count(n)
    b = failure_bounds(n, k, t, threat)
    corrupt = n * _exact_tail(n - 1, c, k, t)
    holders = n * max(_exact_tail(n - 1, d, k, k + 2 - t), _exact_tail(n - 1, d - 1, k, k + 1 - t))
    bad = c + d
    disc = Fraction(n * (n - k - 1), 2) * Fraction(math.perm(bad, k), math.perm(n, k))
    for ours, exact in (
        (b.log2_corrupt_neighbours, corrupt),
        (b.log2_too_few_holders, holders),
        (b.log2_disconnected, disc),
    ):
        exact = min(exact, Fraction(1))
        if exact == 0:
            assert ours == float("-inf")
        else:
            assert ours == pytest.approx(math.log2(exact), abs=1e-6)


def test_monte_carlo_finds_no_failure_at_searched_parameters() -> None:
    threat = ThreatModel(0.1, 0.2)
    p = search_parameters(120, threat)
    assert not p.complete
    mc = monte_carlo_check(
        120, p.degree, p.threshold, threat, trials=300, rng=np.random.default_rng(7)
    )
    assert (mc.disconnected, mc.corrupt_neighbours, mc.too_few_holders) == (0, 0, 0)


def test_monte_carlo_frequencies_stay_below_the_union_bounds() -> None:
    # Deliberately weak parameters, where the events are frequent: every measured
    # frequency must respect its bound (up to sampling error), and the events must occur.
    n, k, t = 60, 4, 2
    threat = ThreatModel(0.15, 0.25)
    trials = 400
    mc = monte_carlo_check(n, k, t, threat, trials=trials, rng=np.random.default_rng(3))
    slack = 4 * math.sqrt(0.25 / trials)
    for count, log2_bound in (
        (mc.disconnected, mc.bounds.log2_disconnected),
        (mc.corrupt_neighbours, mc.bounds.log2_corrupt_neighbours),
        (mc.too_few_holders, mc.bounds.log2_too_few_holders),
    ):
        assert count / trials <= 2.0**log2_bound + slack
    assert mc.disconnected > 0 and mc.corrupt_neighbours > 0 and mc.too_few_holders > 0
