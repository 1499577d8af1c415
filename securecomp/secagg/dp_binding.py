"""Secure aggregation of distributed-DP ring elements: the checks and choices that bind a
`DistributedDpConfig` to a secure-aggregation configuration.

Kairouz, Liu and Steinke ("The Distributed Discrete Gaussian Mechanism for Federated
Learning with Secure Aggregation", ICML 2021, sections 4-5) and Agarwal, Kairouz and Liu
("The Skellam Mechanism", NeurIPS 2021, section 4) encode each client's update into
Z_2^b and rely on secure aggregation (Bonawitz et al. CCS 2017; Bell et al. CCS 2020) to
reveal only the sum modulo ``2^b``. The masked inputs are then the encoded vectors
themselves, masked in the same ring: no float quantizer and no ``log2(n)`` headroom bits.

What the binding requires, and why
----------------------------------
* ``n = dp.n_clients`` and ``d = dp.padded_dim``: the wrap bound of the DP configuration is
  computed for exactly these (`securecomp.dp.config`), and the encoded vectors have the
  padded length of the randomized Hadamard rotation.
* ``b = dp.modulus_bits``, and no deterministic no-wrap check: DP-encoded sums may wrap by
  design; the DP configuration has already refused any modulus whose wrap probability
  exceeds ``2^-wrap_bits``, and that probability is recorded
  (`SecAggConfig.log2_wrap_probability`) for the DP accountant's delta.
* threshold ``t >= dp.min_survivors``: each client's noise is sized for ``min_survivors -
  corrupt_count`` honest summands, so the guarantee needs secure aggregation never to
  unmask a sum of fewer than ``min_survivors`` inputs. The honest server closes a stage
  only with ``t`` live clients, and the clients check it themselves (at least ``t`` live
  members of their neighbourhood when revealing shares; against a malicious server, a
  certified ``U3`` of at least ``t``), so every unmasked sum has at least ``t`` summands.
* the threat model's corrupt count equals ``dp.corrupt_count`` (the DP noise split and the
  secure-aggregation threshold must be sized against the same colluders: fewer would leave
  the DP claim unsupported, more would let the colluders reconstruct masks the DP
  accounting assumed secret), and its dropout budget leaves at least ``dp.min_survivors``
  clients, or no threshold could serve both.
* ``max_weight = 1``: a weighted DP-encoded vector would scale its noise and its
  sensitivity, which the accounting does not cover.

The DP configuration's fingerprint is part of the secure-aggregation fingerprint, so
clients encoding under other DP parameters cannot join the session (their messages are
refused as made under another configuration). Remaining failure events to add to the DP
accountant's delta: the wrap probability above, and secure aggregation's own statistical
security failure (``failure_bounds(...).log2_security_failure <= 2^-security_bits``; on a
Harary graph, e.g. a disconnected honest subgraph whose sum may have fewer summands).
"""

from __future__ import annotations

import operator

from securecomp.dp.config import DistributedDpConfig
from securecomp.errors import ParameterError
from securecomp.secagg.graph import (
    CommunicationGraph,
    complete_graph,
    harary_graph,
    harary_template,
)
from securecomp.secagg.parameters import (
    ThreatModel,
    complete_threshold,
    search_parameters,
    threshold_window,
)

__all__ = ["check_dp_binding", "choose_dp_graph", "dp_threat"]


def dp_threat(dp: DistributedDpConfig, *, malicious_server: bool = False) -> ThreatModel:
    """The threat model a DP configuration implies: ``dp.corrupt_count`` colluding clients
    and up to ``n - dp.min_survivors`` dropouts (the most the noise sizing tolerates)."""
    n = dp.n_clients
    return ThreatModel(
        corrupt_fraction=dp.corrupt_count / n,
        dropout_fraction=(n - dp.min_survivors) / n,
        malicious_server=malicious_server,
    )


def check_dp_threat(dp: DistributedDpConfig, threat: ThreatModel) -> None:
    """Refuse a threat model inconsistent with the DP configuration (see the module
    docstring)."""
    n = dp.n_clients
    c, d = threat.corrupt_count(n), threat.dropout_count(n)
    if c != dp.corrupt_count:
        raise ParameterError(
            f"the DP noise is split assuming {dp.corrupt_count} of {n} clients collude with "
            f"the server, but the threat model allows {c}: both must be sized against the "
            f"same colluders; use ThreatModel(corrupt_fraction={dp.corrupt_count}/{n}, ...) "
            "or rebuild the DP configuration with corrupt_count="
            f"{c}"
        )
    if n - d < dp.min_survivors:
        raise ParameterError(
            f"the threat model tolerates {d} dropouts, leaving {n - d} survivors, but the DP "
            f"noise is sized for at least min_survivors = {dp.min_survivors} summands and the "
            "threshold must not be lower: lower the dropout fraction to at most "
            f"{n - dp.min_survivors}/{n}, or lower min_survivors (more noise per client)"
        )


def check_dp_binding(
    dp: DistributedDpConfig,
    *,
    n: int,
    dim: int,
    threshold: int,
    max_weight: int,
    threat: ThreatModel,
) -> None:
    """Refuse secure-aggregation parameters that do not carry ``dp``'s guarantee.

    Raises
    ------
    ParameterError
        ``n``, ``dim`` or ``max_weight`` differ from what ``dp`` needs, the threshold is
        below ``dp.min_survivors``, or the threat model is inconsistent with ``dp``.
    """
    if n != dp.n_clients:
        raise ParameterError(
            f"the DP configuration is for {dp.n_clients} clients (its wrap bound counts "
            f"them), the secure-aggregation session has {n}"
        )
    if dim != dp.padded_dim:
        raise ParameterError(
            f"DP-encoded vectors have the padded length {dp.padded_dim} (dim {dp.dim} "
            f"rounded up to a power of two by the rotation), got dim={dim}"
        )
    if max_weight != 1:
        raise ParameterError(
            f"max_weight must be 1 for DP-encoded inputs (got {max_weight}): weighting a "
            "vector scales its noise and sensitivity, which the DP accounting does not cover"
        )
    _check_threshold(dp, threshold)
    check_dp_threat(dp, threat)


def _check_threshold(dp: DistributedDpConfig, threshold: int) -> None:
    if threshold < dp.min_survivors:
        raise ParameterError(
            f"threshold {threshold} is below the DP configuration's min_survivors = "
            f"{dp.min_survivors}: each client's noise is sized for {dp.honest_clients} honest "
            "summands, so secure aggregation must never unmask fewer than min_survivors "
            f"inputs; use a threshold >= {dp.min_survivors} (for_distributed_dp chooses one)"
        )


def _fit(window: tuple[int, int] | None, need: int, threshold: int | None) -> int | None:
    """The threshold to use in ``window``: ``threshold`` if given and inside, else the
    smallest one ``>= need``; ``None`` if there is none."""
    if window is None:
        return None
    lo, hi = window
    if threshold is not None:
        return threshold if max(lo, need) <= threshold <= hi else None
    t = max(lo, need)
    return t if t <= hi else None


def choose_dp_graph(
    dp: DistributedDpConfig,
    protocol: str,
    threat: ThreatModel,
    *,
    threshold: int | None = None,
    graph_seed: bytes | None = None,
) -> tuple[CommunicationGraph, int]:
    """Graph and threshold for ``dp``: the sparsest graph of ``protocol`` whose threshold
    window (`threshold_window`) holds a threshold ``>= dp.min_survivors``.

    ``"secagg"``: the complete graph, with the conventional majority threshold raised to
    ``min_survivors`` if needed. ``"secagg+"``: starting from Bell et al.'s sparsest
    degree (`search_parameters`), the degree is raised until a Harary graph holds such a
    threshold (its closed neighbourhoods must have ``t >= min_survivors`` members), falling
    back to the complete graph. A given ``threshold`` must lie in the chosen window.

    Raises
    ------
    ParameterError
        No graph of the protocol meets the threat model with such a threshold.
    """
    n, need = dp.n_clients, dp.min_survivors
    check_dp_threat(dp, threat)
    if threshold is not None:
        threshold = operator.index(threshold)
        # Stated first rather than as "outside the window": it is the DP requirement.
        _check_threshold(dp, threshold)
    if protocol == "secagg+":
        if threat.malicious_server and graph_seed is not None:
            raise ParameterError(
                "against a malicious server the SecAgg+ labels come from the signed key "
                "transcript of each round; do not give graph_seed"
            )
        found = search_parameters(n, threat)
        want = threshold if threshold is not None else need
        first = max(found.degree, want - 1 + (want - 1) % 2)  # even, closed size >= want
        for k in range(first, n - 1, 2):
            fitted = _fit(threshold_window(n, k, threat), need, threshold)
            if fitted is not None:
                if threat.malicious_server:
                    return harary_template(n, k), fitted
                return harary_graph(n, k, graph_seed), fitted
    elif protocol != "secagg":
        raise ParameterError(f"protocol must be 'secagg' or 'secagg+', got {protocol!r}")
    window = threshold_window(n, n - 1, threat)
    if threshold is None and window is not None:
        # The conventional majority where it fits, never below min_survivors.
        t = _fit(window, max(need, complete_threshold(n, threat)), None)
    else:
        t = _fit(window, need, threshold)
    if t is None:
        lo_hi = f"{window[0]}..{window[1]}" if window is not None else "empty"
        asked = f"threshold {threshold}" if threshold is not None else f"a threshold >= {need}"
        raise ParameterError(
            f"no {protocol} graph of {n} clients holds {asked} under the threat model "
            f"(corrupt {threat.corrupt_count(n)}, dropouts {threat.dropout_count(n)}, "
            f"{'malicious' if threat.malicious_server else 'semi-honest'} server; the "
            f"complete graph's threshold window is {lo_hi}): lower the dropout fraction or "
            "min_survivors, or add clients"
        )
    return complete_graph(n), t
