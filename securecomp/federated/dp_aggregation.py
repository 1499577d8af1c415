"""Distributed differential privacy over SecAgg+: the `DpSecAggAggregator`.

Each client privatizes its update with `securecomp.dp.encode_update` (randomized Hadamard
rotation, L2 clipping, conditional rounding, and discrete Gaussian or Skellam noise drawn
from its own CSPRNG keystream; Kairouz, Liu and Steinke, "The Distributed Discrete Gaussian
Mechanism for Federated Learning with Secure Aggregation", ICML 2021, Algorithms 1-2) and
the noisy ring elements are summed by SecAgg+ (Bell et al., CCS 2020) in the in-process
simulator. The server only ever holds the noisy sum.

Threat model: that of secure aggregation (semi-honest server colluding with at most
``corrupt_count`` clients, the threat model's corrupt fraction) for the confidentiality of
each update, plus the distributed-DP guarantee (`securecomp.dp`) on the released sum, which
holds as long as at least ``min_survivors - corrupt_count`` honest clients' noise is in it.
Clients are assumed to follow the protocol: a client can always spoil the aggregate.

Distributed DP over secure aggregation: the modulus
---------------------------------------------------
`encode_update` returns values in Z_2^b (``EncodedUpdate.values``, of the rotation's padded
length), and the DP configuration bounds the probability that the *sum* of ``n`` of them
wraps modulo ``2^b``. Secure aggregation sums them in Z_2^b as they are
(`securecomp.secagg.SecAggConfig.for_distributed_dp`): masks live in the same ring, the
masked upload costs exactly ``b`` bits per value (bit-packed), with no headroom bits for
the number of clients, and the server passes the aggregate to `securecomp.dp.decode_sum`.
The wrap-around probability is part of the round's `PrivacyEvent` (counted in delta).

Distributed DP over secure aggregation: the threshold
-----------------------------------------------------
Each client adds a share of the noise sized for ``min_survivors - corrupt_count`` honest
summands (`securecomp.dp.config`); the guarantee holds only if secure aggregation never
unmasks a sum of fewer than ``min_survivors`` inputs. `SecAggConfig.for_distributed_dp`
enforces a threshold of at least ``min_survivors`` and a corrupt count equal to the DP
configuration's (`securecomp.secagg.dp_binding`). Here ``min_survivors = n - D`` with ``D``
the dropout budget of the threat model, so the noise is not inflated more than the
tolerated dropouts require. On a Harary graph the threshold is at most ``degree + 1``; when
the sparse graph SecAgg+ would choose cannot hold it, the degree is raised, up to the
complete graph (the original SecAgg). A sound distributed-DP guarantee with little noise
inflation therefore costs SecAgg+ most of its sparsity; a small threshold would instead
multiply the noise variance by up to ``n / (t - corrupt_count)``.

Distributed DP over secure aggregation: failure events in delta
---------------------------------------------------------------
Two events outside the mechanism's Renyi bound can break the guarantee of a round: the
aggregate wrapping modulo ``2^b`` (the DP configuration's bound), and secure aggregation's
own statistical security failure (e.g. a SecAgg+ graph whose honest part is disconnected,
so a sum of fewer summands is revealed), which the secure-aggregation set-up bounds by
``2^-security_bits`` of the threat model (it refuses any configuration above that). Both
are added, by a union bound, to the delta of every round: `DpSecAggAggregator.privacy_event`
puts the second into the event's ``wrap_probability``, the accountant's term for the
release's failure probabilities (so `PrivacySpent.delta_wrap` covers both). The budget,
not the chosen graph's computed bound (often 0, e.g. on the complete graph against a
semi-honest server), is charged, so the event does not depend on the graph drawn.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from securecomp.dp import (
    DistributedDpConfig,
    Mechanism,
    PrivacyEvent,
    decode_sum,
    encode_update,
)
from securecomp.errors import InsufficientParticipantsError, ParameterError
from securecomp.federated.aggregation import (
    AggregationOutcome,
    check_updates,
    describe,
    positive,
)
from securecomp.net.report import CostReport
from securecomp.secagg import SecAggConfig, Stage, ThreatModel, dropouts, simulate

__all__ = [
    "DpSecAggAggregator",
    "DpSettings",
    "dp_secagg_config",
    "min_survivors",
    "secagg_failure_probability",
]

#: Length of the public per-round seed of the DP rotation (bytes).
_ROTATION_SEED_BYTES = 32


@dataclass(frozen=True)
class DpSettings:
    """User-level distributed DP of every round.

    Invariant: ``noise_multiplier > 0``, ``l2_clip > 0``, ``0 < delta < 1``,
    ``8 <= modulus_bits <= 64``.

    Attributes
    ----------
    noise_multiplier : std. dev. of the honest clients' noise in the sum, per coordinate,
        in units of ``l2_clip`` (``noise_stddev = noise_multiplier * l2_clip``).
    l2_clip : every client's update is clipped to this L2 norm (its sensitivity).
    delta : the delta of every user's (epsilon, delta) guarantee.
    mechanism : ``"ddgauss"`` (distributed discrete Gaussian) or ``"skellam"``.
    modulus_bits : ``b``, the DP encoding's modulus ``2^b``, which is also secure
        aggregation's ring: each value costs ``b`` bits on the wire (the scale is the
        largest the wrap-around bound allows at this ``b``).
    """

    noise_multiplier: float
    l2_clip: float = 1.0
    delta: float = 1e-6
    mechanism: Mechanism = "ddgauss"
    modulus_bits: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "noise_multiplier", positive("noise_multiplier", self.noise_multiplier)
        )
        object.__setattr__(self, "l2_clip", positive("l2_clip", self.l2_clip))
        d = positive("delta", self.delta)
        if d >= 1.0:
            raise ParameterError(f"delta must be below 1, got {self.delta!r}")
        if self.mechanism not in ("ddgauss", "skellam"):
            raise ParameterError(
                f"mechanism must be 'ddgauss' or 'skellam', got {self.mechanism!r}"
            )
        b = self.modulus_bits
        if isinstance(b, bool) or not isinstance(b, int) or not 8 <= b <= 64:
            # Secure aggregation's ring is Z_2^b itself, at most 64 bits; below 8 bits no
            # useful scale survives the wrap-around bound.
            raise ParameterError(f"modulus_bits must be an int in [8, 64], got {b!r}")


def min_survivors(n: int, threat: ThreatModel) -> int:
    """``n`` minus the threat model's dropout budget, above its corrupt count."""
    m = n - threat.dropout_count(n)
    if m <= threat.corrupt_count(n) or m < 2:
        raise InsufficientParticipantsError(
            "planning",
            f"{n} clients leave {m} survivors, not more than the {threat.corrupt_count(n)} "
            "corrupt ones: no honest noise remains; add clients or lower the fractions",
        )
    return m


def dp_secagg_config(
    dp_config: DistributedDpConfig, threat: ThreatModel, *, session: bytes | None = None
) -> SecAggConfig:
    """SecAgg+ summing ``dp_config``'s encoded vectors directly in Z_2^b.

    `SecAggConfig.for_distributed_dp` with ``protocol="secagg+"``: ``dp_config.n_clients``
    clients, vectors of ``dp_config.padded_dim`` values in Z_2^b (``b =
    dp_config.modulus_bits``), threshold ``>= dp_config.min_survivors`` on the sparsest
    Harary graph that holds it (else the complete graph).

    Parameters
    ----------
    dp_config : the round's DP parameters.
    threat : its corrupt count must equal ``dp_config.corrupt_count`` and its dropout
        budget leave ``dp_config.min_survivors`` clients (true of `DpSecAggAggregator.plan`).
    session : session id (default: random).

    Raises
    ------
    InsufficientParticipantsError
        No secure-aggregation graph meets the threat model with such a threshold (e.g. a
        threat model inconsistent with the DP configuration).
    """
    try:
        return SecAggConfig.for_distributed_dp(
            dp_config, protocol="secagg+", threat=threat, session=session
        )
    except ParameterError as exc:
        # A planning failure, not a programming error: FedAvg skips such a round.
        raise InsufficientParticipantsError(
            "planning",
            f"no secure-aggregation graph of {dp_config.n_clients} clients carries the DP "
            f"configuration (threshold >= {dp_config.min_survivors}) under the threat model "
            f"({exc})",
        ) from exc


def secagg_failure_probability(threat: ThreatModel) -> float:
    """Secure aggregation's statistical security failure budget, ``2^-security_bits``.

    Every `SecAggConfig` meets it (set-up refuses graphs and thresholds above it); it is
    the term a round's privacy event adds to delta (see the module docstring).
    """
    return 2.0 ** -threat.security_bits


def _client_bytes(report: CostReport, clients: int) -> tuple[float, float]:
    """Mean bytes sent and received by the first ``clients`` ids (the real participants;
    planned slots nobody filled send nothing and are not averaged in)."""
    per = report.metrics.get("bytes_per_client", {})
    rows = [per[str(u)] for u in range(clients) if str(u) in per]
    if not rows:
        return 0.0, 0.0
    sent = sum(float(v["sent"]) for v in rows) / len(rows)
    received = sum(float(v["received"]) for v in rows) / len(rows)
    return sent, received


class DpSecAggAggregator:
    """Distributed DP (Kairouz et al. 2021) summed by SecAgg+ in Z_2^b (in-process
    simulation).

    Invariant: the server only ever holds the noisy sum modulo ``2^b``; with probability at
    least ``1 - 2^-40`` (and no wrap-around) the decoded mean is within ``error_bound`` of
    the mean of the L2-clipped updates. Every masked value costs ``b = modulus_bits`` bits.

    Parameters
    ----------
    settings : noise, clipping, mechanism and modulus.
    threat : corrupt and dropout fractions (also fix ``corrupt_count`` and ``min_survivors``
        of the DP configuration).
    """

    def __init__(self, settings: DpSettings, *, threat: ThreatModel | None = None) -> None:
        if not isinstance(settings, DpSettings):
            raise ParameterError("settings must be a DpSettings")
        self.settings = settings
        self.threat = threat if threat is not None else ThreatModel()
        self.name = f"secagg+ with distributed DP ({settings.mechanism})"

    def plan(self, n: int, dim: int) -> DistributedDpConfig:
        """The DP parameters of a round of at most ``n`` clients (deterministic in ``n``).

        Raises
        ------
        InsufficientParticipantsError
            Too few survivors for honest noise, or no secure-aggregation graph carrying the
            plan (checked here so that a round is skipped before anyone is selected).
        """
        s = self.settings
        cfg = DistributedDpConfig.create(
            s.mechanism,
            dim=dim,
            l2_clip=s.l2_clip,
            noise_stddev=s.noise_multiplier * s.l2_clip,
            n_clients=n,
            min_survivors=min_survivors(n, self.threat),
            corrupt_count=self.threat.corrupt_count(n),
            modulus_bits=s.modulus_bits,
        )
        dp_secagg_config(cfg, self.threat)
        return cfg

    def privacy_event(self, dp_config: DistributedDpConfig) -> PrivacyEvent:
        """What one round under ``dp_config`` costs, secure aggregation's failure included.

        The DP configuration's event (Renyi bound, sampler distance, wrap-around
        probability), with `secagg_failure_probability` added to its failure term
        ``wrap_probability`` (see the module docstring).
        """
        if not isinstance(dp_config, DistributedDpConfig):
            raise ParameterError("dp_config must be a securecomp.dp.DistributedDpConfig")
        event = dp_config.privacy_event()
        return dataclasses.replace(
            event,
            wrap_probability=event.wrap_probability + secagg_failure_probability(self.threat),
        )

    def aggregate(
        self,
        updates: Sequence[NDArray[np.float64]],
        round: int,
        *,
        drop: Collection[int] = (),
        dp_config: DistributedDpConfig | None = None,
    ) -> AggregationOutcome:
        """Privatize, sum and decode; ``dp_config`` is the round's plan (default: for n).

        With fewer updates than the plan's ``n_clients``, the unfilled slots are clients
        that never connected: they drop out before advertising keys (the threshold still
        holds ``min_survivors``). ``drop`` lists updates whose masked input is lost.
        """
        dim = check_updates(updates)
        n = len(updates)
        cfg = dp_config if dp_config is not None else self.plan(n, dim)
        if cfg.dim != dim or n > cfg.n_clients:
            raise ParameterError(
                f"the DP plan is for at most {cfg.n_clients} vectors of {cfg.dim} values, "
                f"got {n} of {dim}"
            )
        if n < cfg.min_survivors:
            raise InsufficientParticipantsError(
                "aggregation",
                f"{n} clients are fewer than the {cfg.min_survivors} the DP noise is sized for",
            )
        sa = dp_secagg_config(cfg, self.threat)
        # Public, unpredictable per-round randomness for the rotation; the server draws it.
        rotation = cfg.rotation(
            secrets.token_bytes(_ROTATION_SEED_BYTES), session=sa.session, round=round
        )
        # Client side: privatize (noise from the client's own CSPRNG keystream); the ring
        # elements of Z_2^b are secure aggregation's inputs as they are.
        inputs = [encode_update(u, cfg, rotation).values for u in updates]
        absent = list(range(n, cfg.n_clients))
        inputs += [np.zeros(cfg.padded_dim, dtype=np.uint64) for _ in absent]
        faults = dropouts(
            {Stage.ADVERTISE_KEYS: absent, Stage.MASKED_INPUT_COLLECTION: list(drop)}
        )
        out = simulate(sa, inputs, round=round, faults=faults)
        survivors = tuple(out.survivors)
        # Server side: the sum in Z_2^b goes straight to the DP decoder.
        total = decode_sum(out.aggregate, cfg, rotation)
        k = len(survivors)
        sent, received = _client_bytes(out.report, n)
        details: dict[str, float | int | str] = {
            "protocol": sa.protocol,
            "modulus_bits": sa.bits,
            "threshold": sa.threshold,
            "degree": sa.graph.degree,
            "clients": sa.n,
            "dp_modulus_bits": cfg.modulus_bits,
            "dp_scale": cfg.scale,
            "dp_min_survivors": cfg.min_survivors,
            "dp_noise_stddev": cfg.noise_stddev,
            # Secure aggregation works in the DP encoding's own ring: no headroom bits.
            "extra_bits_per_value": sa.bits - cfg.modulus_bits,
            "wrap_probability": 2.0**cfg.log2_wrap_probability,
            "secagg_failure_probability": secagg_failure_probability(self.threat),
        }
        return AggregationOutcome(
            mean=total / k,
            survivors=survivors,
            protocol=f"{describe(sa)} with distributed DP ({cfg.mechanism}) in Z_2^"
            f"{cfg.modulus_bits}, in-process simulation",
            bytes_sent=sent,
            bytes_received=received,
            error_bound=cfg.error_bound(n_summands=k) / k,
            report=out.report,
            dp_config=cfg,
            details=details,
        )
