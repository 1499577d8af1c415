"""Distributed differential privacy over SecAgg+: the `DpSecAggAggregator`.

Each client privatizes its update with `securecomp.dp.encode_update` (randomized Hadamard
rotation, L2 clipping, conditional rounding, and discrete Gaussian or Skellam noise drawn
from its own CSPRNG keystream; Kairouz, Liu and Steinke, "The Distributed Discrete Gaussian
Mechanism for Federated Learning with Secure Aggregation", ICML 2021, Algorithms 1-2) and
the noisy integer vectors are summed by SecAgg+ (Bell et al., CCS 2020) in the in-process
simulator. The server only ever holds the noisy sum.

Threat model: that of secure aggregation (semi-honest server colluding with at most
``corrupt_count`` clients, the threat model's corrupt fraction) for the confidentiality of
each update, plus the distributed-DP guarantee (`securecomp.dp`) on the released sum, which
holds as long as at least ``min_survivors - corrupt_count`` honest clients' noise is in it.
Clients are assumed to follow the protocol: a client can always spoil the aggregate.

Distributed DP over secure aggregation: the modulus
---------------------------------------------------
`encode_update` returns values in Z_2^b, and the DP configuration bounds the probability
that the *sum* of ``n`` of them wraps modulo ``2^b``. The ideal transport sums them in
Z_2^b directly. `securecomp.secagg` refuses any configuration whose sum of inputs could
wrap, so here each client sends its value as the centered integer in ``[-2^(b-1),
2^(b-1))`` (`securecomp.dp.lift_centered`) through a SecAgg configuration of scale 1 and
clip ``2^(b-1)``, whose modulus ``2^B`` holds the sum of ``n`` such integers without
wrapping (``B ~ b + log2(n) + 1``). The server reduces the exact integer sum modulo
``2^b`` and decodes it with `securecomp.dp.decode_sum`: the result is identical to a sum
in Z_2^b (reduction mod 2^b commutes with addition), at the price of about ``log2(n)``
extra bits per value on the wire. A secure-aggregation mode working in Z_2^b directly (for
inputs that may wrap by design) would remove that overhead.

Distributed DP over secure aggregation: the threshold
-----------------------------------------------------
Each client adds a share of the noise sized for ``min_survivors - corrupt_count`` honest
summands (`securecomp.dp.config`); the guarantee holds only if secure aggregation never
unmasks a sum of fewer than ``min_survivors`` inputs. The SecAgg+ server closes a stage only
if every live client keeps ``t`` live members in its closed neighbourhood, so it never
unmasks fewer than ``t`` inputs: the secure-aggregation threshold is set to at least
``min_survivors``. Here ``min_survivors = n - D`` with ``D`` the dropout budget of the
threat model, so the noise is not inflated more than the tolerated dropouts require. On a
Harary graph the threshold is at most ``degree + 1``; when the sparse graph SecAgg+ would
choose cannot hold that threshold, the degree is raised, up to the complete graph (the
original SecAgg). A sound distributed-DP guarantee with little noise inflation therefore
costs SecAgg+ most of its sparsity; a small threshold would instead multiply the noise
variance by up to ``n / (t - corrupt_count)``.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from securecomp.dp import (
    DistributedDpConfig,
    Mechanism,
    decode_sum,
    encode_update,
    lift_centered,
    reduce_modulo,
)
from securecomp.errors import InsufficientParticipantsError, ParameterError
from securecomp.federated.aggregation import (
    AggregationOutcome,
    bytes_per_client,
    check_updates,
    describe,
    positive,
    secagg_details,
)
from securecomp.secagg import SecAggConfig, Stage, ThreatModel, dropouts, simulate

__all__ = [
    "DpSecAggAggregator",
    "DpSettings",
    "dp_secagg_config",
    "from_secagg_sum",
    "min_survivors",
    "to_secagg_input",
]

#: Length of the public per-round seed of the DP rotation (bytes).
_ROTATION_SEED_BYTES = 32


@dataclass(frozen=True)
class DpSettings:
    """User-level distributed DP of every round.

    Invariant: ``noise_multiplier > 0``, ``l2_clip > 0``, ``0 < delta < 1``.

    Attributes
    ----------
    noise_multiplier : std. dev. of the honest clients' noise in the sum, per coordinate,
        in units of ``l2_clip`` (``noise_stddev = noise_multiplier * l2_clip``).
    l2_clip : every client's update is clipped to this L2 norm (its sensitivity).
    delta : the delta of every user's (epsilon, delta) guarantee.
    mechanism : ``"ddgauss"`` (distributed discrete Gaussian) or ``"skellam"``.
    modulus_bits : ``b``, the DP encoding's modulus ``2^b`` (the scale is the largest the
        wrap-around bound allows at this ``b``).
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
        if isinstance(b, bool) or not isinstance(b, int) or not 8 <= b <= 48:
            # Above 48 bits the lifted sum of many clients would not fit secure
            # aggregation's 64-bit ring; below 8 no useful scale survives the wrap bound.
            raise ParameterError(f"modulus_bits must be an int in [8, 48], got {b!r}")


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


def to_secagg_input(
    values: NDArray[np.uint64], dp_bits: int, secagg_bits: int
) -> NDArray[np.uint64]:
    """Client side: Z_2^dp_bits values as centered integers, in secure aggregation's Z_2^B.

    The centered lift of ``v`` lies in ``[-2^(dp_bits-1), 2^(dp_bits-1))``; it is written in
    two's complement modulo ``2^secagg_bits`` (``secagg_bits >= dp_bits``).
    """
    if secagg_bits < dp_bits:
        raise ParameterError(
            f"secure aggregation's ring (2^{secagg_bits}) must hold Z_2^{dp_bits} values"
        )
    return reduce_modulo(lift_centered(values, dp_bits), secagg_bits)


def from_secagg_sum(aggregate: NDArray[np.uint64], dp_bits: int) -> NDArray[np.uint64]:
    """Server side: the sum modulo ``2^B`` of `to_secagg_input` vectors, reduced to Z_2^dp_bits.

    Exact: ``2^dp_bits`` divides ``2^B``, so the sum of the lifts modulo ``2^B``, reduced
    modulo ``2^dp_bits``, is the sum of the original values modulo ``2^dp_bits``.
    """
    mask = np.uint64((1 << dp_bits) - 1)
    return np.asarray(aggregate, dtype=np.uint64) & mask


def dp_secagg_config(
    n: int, dim: int, *, bits: int, min_inputs: int, threat: ThreatModel
) -> SecAggConfig:
    """SecAgg+ parameters for ``n`` DP-encoded vectors in Z_2^bits, threshold >= ``min_inputs``.

    The inputs are the centered lifts of Z_2^bits values (scale 1, clip ``2^(bits-1)``). The
    graph is the sparsest that meets ``threat`` with threshold ``min_inputs``: SecAgg+'s own
    choice if its threshold is high enough, else a Harary graph of raised degree, else the
    complete graph (see the module docstring).

    Raises
    ------
    InsufficientParticipantsError
        ``min_inputs`` exceeds ``n``.
    ParameterError
        No graph meets the threat model with that threshold.
    """
    if min_inputs > n:
        raise InsufficientParticipantsError(
            "planning", f"{n} clients cannot meet a threshold of {min_inputs}"
        )
    clip = float(1 << (bits - 1))
    try:
        sparse = SecAggConfig.create(
            n, dim, clip=clip, scale=1.0, protocol="secagg+", threat=threat
        )
        if sparse.threshold >= min_inputs:
            return sparse
        quant = sparse.quantization
        first = min_inputs - 1 + (min_inputs - 1) % 2  # smallest even degree holding it
        for degree in range(max(first, sparse.graph.degree + 2), n - 1, 2):
            try:
                return SecAggConfig.harary(n, dim, degree, min_inputs, quant, threat=threat)
            except ParameterError:
                continue
        return SecAggConfig.create(
            n, dim, clip=clip, scale=1.0, protocol="secagg", threat=threat, threshold=min_inputs
        )
    except ParameterError as exc:
        # E.g. fewer clients than the round was planned for: the threshold the DP noise
        # needs no longer leaves room for the tolerated dropouts.
        raise InsufficientParticipantsError(
            "planning",
            f"no secure-aggregation graph of {n} clients holds threshold {min_inputs} under "
            f"the threat model ({exc})",
        ) from exc


class DpSecAggAggregator:
    """Distributed DP (Kairouz et al. 2021) summed by SecAgg+ (in-process simulation).

    Invariant: the server only ever holds the noisy sum modulo ``2^b``; with probability at
    least ``1 - 2^-40`` (and no wrap-around) the decoded mean is within ``error_bound`` of
    the mean of the L2-clipped updates.

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
        """The DP parameters of a round of at most ``n`` clients (deterministic in ``n``)."""
        s = self.settings
        return DistributedDpConfig.create(
            s.mechanism,
            dim=dim,
            l2_clip=s.l2_clip,
            noise_stddev=s.noise_multiplier * s.l2_clip,
            n_clients=n,
            min_survivors=min_survivors(n, self.threat),
            corrupt_count=self.threat.corrupt_count(n),
            modulus_bits=s.modulus_bits,
        )

    def aggregate(
        self,
        updates: Sequence[NDArray[np.float64]],
        round: int,
        *,
        drop: Collection[int] = (),
        dp_config: DistributedDpConfig | None = None,
    ) -> AggregationOutcome:
        """Privatize, sum and decode; ``dp_config`` is the round's plan (default: for n)."""
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
        sa = dp_secagg_config(
            n, cfg.padded_dim, bits=cfg.modulus_bits, min_inputs=cfg.min_survivors,
            threat=self.threat,
        )
        # Public, unpredictable per-round randomness for the rotation; the server draws it.
        rotation = cfg.rotation(
            secrets.token_bytes(_ROTATION_SEED_BYTES), session=sa.session, round=round
        )
        inputs = []
        for u in updates:
            # Client side: privatize (noise from the client's own CSPRNG keystream), then
            # send the Z_2^b value as a centered integer (see the module docstring).
            encoded = encode_update(u, cfg, rotation)
            inputs.append(to_secagg_input(encoded.values, cfg.modulus_bits, sa.bits))
        out = simulate(
            sa, inputs, round=round, faults=dropouts({Stage.MASKED_INPUT_COLLECTION: drop})
        )
        survivors = tuple(out.survivors)
        # Server side: the exact integer sum, reduced to Z_2^b, then the DP decoder.
        total = decode_sum(from_secagg_sum(out.aggregate, cfg.modulus_bits), cfg, rotation)
        k = len(survivors)
        sent, received = bytes_per_client(out.report)
        details = secagg_details(sa)
        details.update(
            {
                "dp_modulus_bits": cfg.modulus_bits,
                "dp_scale": cfg.scale,
                "dp_min_survivors": cfg.min_survivors,
                "dp_noise_stddev": cfg.noise_stddev,
                "extra_bits_per_value": sa.bits - cfg.modulus_bits,
            }
        )
        return AggregationOutcome(
            mean=total / k,
            survivors=survivors,
            protocol=f"{describe(sa)} with distributed DP ({cfg.mechanism}), in-process "
            "simulation",
            bytes_sent=sent,
            bytes_received=received,
            error_bound=cfg.error_bound(n_summands=k) / k,
            report=out.report,
            dp_config=cfg,
            details=details,
        )
