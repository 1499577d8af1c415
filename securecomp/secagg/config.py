"""Agreed parameters of a secure-aggregation session: clients, threshold, graph, modulus.

A `SecAggConfig` is fixed before the first round and shared by the server and every
client (its fingerprint travels in every message header, so a message produced under other
parameters is refused). It fixes:

* ``n`` clients with ids ``0 .. n-1`` (Shamir evaluation point of client ``u`` is ``u + 1``);
* the communication graph: complete (SecAgg, Bonawitz et al. CCS 2017) or a random Harary
  graph (SecAgg+, Bell et al. CCS 2020), see `securecomp.secagg.graph`;
* the threshold ``t``: shares of a client's secrets needed for reconstruction, counted
  in its closed neighbourhood (its neighbours and itself);
* the vector length ``d`` and the encoding of the inputs, whose modulus ``2^b``
  (``b <= 64``) is the ring the masks live in. Either a quantization
  (`securecomp.encoding.quantize`) of float vectors: set-up then refuses any configuration
  in which the sum of ``n`` inputs of weight up to ``max_weight`` could wrap modulo ``2^b``
  (`EncodingOverflowError`), so the aggregate is always exact. Or a distributed-DP
  configuration (`securecomp.dp.DistributedDpConfig`, built with `for_distributed_dp`):
  the inputs are then DP-encoded ring elements of Z_2^b summed as they are, and the
  deterministic check gives way to the DP configuration's bound on the wrap probability,
  with the threshold at least its ``min_survivors`` (`securecomp.secagg.dp_binding`);
* the threat model (`ThreatModel`): the configuration is refused if the graph and
  threshold miss its statistical security (2^-40) or correctness (2^-20) budget; the
  refusal reports the window of thresholds that would meet both, or that it is empty;
* against a malicious server (``ThreatModel(malicious_server=True)``, Bonawitz et al.'s
  active model): the clients' pinned Ed25519 identity keys (`PinnedIdentities`, a PKI
  assumption: they reach the clients by a channel the server does not control), a
  threshold above ``(n + n_C) / 2`` (per neighbourhood on a Harary graph, see
  `securecomp.secagg.parameters`), and for SecAgg+ a graph *template* whose labels each
  round derives from the signed key transcript instead of a seed the server picked.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from securecomp.dp.config import DistributedDpConfig
from securecomp.encoding.quantize import QuantizationParams, check_no_wrap, modulus_bits_for
from securecomp.errors import ParameterError
from securecomp.secagg.dp_binding import check_dp_binding, choose_dp_graph, dp_threat
from securecomp.secagg.graph import (
    CommunicationGraph,
    complete_graph,
    harary_graph,
    harary_template,
)
from securecomp.secagg.identity import PinnedIdentities
from securecomp.secagg.parameters import (
    ThreatModel,
    complete_threshold,
    failure_bounds,
    search_parameters,
    threshold_window,
)
from securecomp.secagg.stages import AnyStage, protocol_stages
from securecomp.secagg.transcript import graph_seed

__all__ = ["MAX_DIM", "SESSION_BYTES", "SecAggConfig", "container_dtype"]

#: Default length of a random session id (the envelope allows up to 64 bytes).
SESSION_BYTES = 16
#: Largest vector length (2^32 values; far beyond any model update sent in one piece).
MAX_DIM = 1 << 32


def container_dtype(bits: int) -> np.dtype[np.unsignedinteger]:
    """The smallest little-endian unsigned dtype holding ``bits``-bit values.

    Arithmetic modulo ``2^w`` in that dtype is arithmetic modulo ``2^bits`` after a final
    mask, since ``2^bits`` divides ``2^w``: masks can be drawn and summed in it directly.
    """
    b = operator.index(bits)
    for width in (8, 16, 32, 64):
        if b <= width:
            return np.dtype(f"<u{width // 8}")
    raise ParameterError(f"modulus bits must be <= 64, got {b}")


@dataclass(frozen=True)
class SecAggConfig:
    """Parameters every party of a secure-aggregation session agrees on.

    Invariant: with a quantization, ``n * max_weight * quantization.level_bound <= 2^(b-1)
    - 1``, so the sum of all clients' inputs never wraps modulo ``2^b`` and the aggregate is
    exact. With a distributed-DP encoding, the aggregate is the exact sum modulo ``2^b`` of
    the survivors' ring elements (at least ``dp.min_survivors`` of them), whose centered
    lift is the integer sum except with probability ``2^log2_wrap_probability``.

    Parameters
    ----------
    n : int
        Number of clients (ids ``0 .. n-1``).
    threshold : int
        Shares needed to reconstruct a client's secrets, ``2 <= t <= degree + 1``.
    dim : int
        Length of every client's vector.
    encoding : QuantizationParams or DistributedDpConfig
        How the clients' inputs were made: quantized float vectors (clipping, scale and
        modulus ``2^b``; see `quantization`) or DP-encoded ring elements of Z_2^b
        (`securecomp.dp.encode_update`; see `dp` and `for_distributed_dp`).
    graph : CommunicationGraph
        Who shares keys with whom.
    session : bytes
        Session id (1-64 bytes), bound into every key derivation and message header.
    max_weight : int
        Largest integer weight a client may multiply its quantized input by.
    threat : ThreatModel
        Corrupt and dropout fractions the graph and threshold must withstand, and whether
        the server is semi-honest (default) or malicious.
    identities : PinnedIdentities, optional
        The clients' Ed25519 public keys; required against a malicious server (and
        refused otherwise, where nothing would check them).
    """

    n: int
    threshold: int
    dim: int
    encoding: QuantizationParams | DistributedDpConfig
    graph: CommunicationGraph
    session: bytes
    max_weight: int = 1
    threat: ThreatModel = field(default_factory=ThreatModel)
    identities: PinnedIdentities | None = None

    def __post_init__(self) -> None:
        for name in ("n", "threshold", "dim", "max_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ParameterError(f"{name} must be an int, got {v!r}")
        if not isinstance(self.graph, CommunicationGraph) or self.graph.n != self.n:
            raise ParameterError("graph must be a CommunicationGraph on exactly n clients")
        if not 2 <= self.threshold <= self.graph.degree + 1:
            raise ParameterError(
                f"threshold must lie in [2, degree + 1] = [2, {self.graph.degree + 1}], got "
                f"{self.threshold}: a client's secrets are shared among its "
                f"{self.graph.degree} neighbours and itself"
            )
        if not 1 <= self.dim <= MAX_DIM:
            raise ParameterError(f"dim must lie in [1, 2^32], got {self.dim}")
        if self.max_weight < 1:
            raise ParameterError(f"max_weight must be >= 1, got {self.max_weight}")
        if not isinstance(self.session, bytes) or not 1 <= len(self.session) <= 64:
            raise ParameterError("session must be 1 to 64 bytes")
        if not isinstance(self.encoding, QuantizationParams | DistributedDpConfig):
            raise ParameterError(
                "encoding must be a QuantizationParams (float inputs) or a "
                "DistributedDpConfig (DP-encoded ring elements)"
            )
        if not isinstance(self.threat, ThreatModel):
            raise ParameterError("threat must be a ThreatModel")
        self._check_malicious()
        if isinstance(self.encoding, DistributedDpConfig):
            # DP-encoded sums may wrap by design: the DP configuration bounded that
            # probability when it was built; what is checked here is what its guarantee
            # needs from secure aggregation (threshold, colluders, dimension).
            check_dp_binding(
                self.encoding,
                n=self.n,
                dim=self.dim,
                threshold=self.threshold,
                max_weight=self.max_weight,
                threat=self.threat,
            )
        else:
            # Refuse, before any key exists, a configuration whose sum could wrap mod 2^b.
            check_no_wrap(self.encoding, self.n * self.max_weight)
        bounds = failure_bounds(self.n, self.graph.degree, self.threshold, self.threat)
        if not bounds.meets(self.threat):
            window = threshold_window(self.n, self.graph.degree, self.threat)
            advice = (
                f"thresholds {window[0]}..{window[1]} meet both on this graph"
                if window is not None
                else "no threshold meets both on this graph (the window is empty): lower the "
                "corrupt or dropout fraction, or raise the degree or the number of clients"
            )
            server = "malicious" if self.malicious else "semi-honest"
            raise ParameterError(
                f"threshold {self.threshold} on a degree-{self.graph.degree} graph of {self.n} "
                f"clients misses the threat model ({server} server, corrupt "
                f"{self.threat.corrupt_fraction:g}, dropout {self.threat.dropout_fraction:g}): "
                f"security failure <= 2^{bounds.log2_security_failure:.1f} (need "
                f"2^-{self.threat.security_bits}), abort probability <= "
                f"2^{bounds.log2_too_few_holders:.1f} (need 2^-{self.threat.correctness_bits}); "
                f"{advice}; SecAggConfig.create chooses them"
            )

    def _check_malicious(self) -> None:
        if self.identities is not None and not isinstance(self.identities, PinnedIdentities):
            raise ParameterError("identities must be a PinnedIdentities")
        if not self.malicious:
            if self.identities is not None:
                raise ParameterError(
                    "identity keys are only checked against a malicious server; set "
                    "ThreatModel(malicious_server=True) or drop them"
                )
            if self.graph.is_template:
                raise ParameterError(
                    "a Harary template (labels derived per round) is for the malicious-server "
                    "mode; give a labelled graph (harary_graph) for a semi-honest server"
                )
            return
        if self.identities is None or self.identities.n != self.n:
            raise ParameterError(
                "against a malicious server every client needs a pinned Ed25519 identity key: "
                f"give identities=PinnedIdentities(<{self.n} public keys>)"
            )
        if not self.graph.is_complete and not self.graph.is_template:
            raise ParameterError(
                "against a malicious server the SecAgg+ graph must not be chosen by the server: "
                "use harary_template(n, degree), whose labels each round derives from the "
                "signed key transcript"
            )

    # --- derived values ------------------------------------------------------------------

    @property
    def bits(self) -> int:
        """``b``: values and masks live in Z_2^b."""
        return self.encoding.modulus_bits

    @property
    def quantization(self) -> QuantizationParams:
        """The quantization of float inputs.

        Raises
        ------
        ParameterError
            For a distributed-DP configuration, whose inputs are already ring elements.
        """
        enc = self.encoding
        if isinstance(enc, DistributedDpConfig):
            raise ParameterError(
                "this configuration aggregates DP-encoded ring elements and has no "
                "quantization: encode with securecomp.dp.encode_update and decode the "
                "aggregate with securecomp.dp.decode_sum"
            )
        return enc

    @property
    def dp(self) -> DistributedDpConfig | None:
        """The distributed-DP configuration whose encoded vectors are aggregated, or
        ``None`` for quantized float inputs."""
        enc = self.encoding
        return enc if isinstance(enc, DistributedDpConfig) else None

    @property
    def log2_wrap_probability(self) -> float:
        """log2 of the bound on the aggregate wrapping modulo ``2^b``: ``-inf`` for
        quantized inputs (excluded at set-up), the DP configuration's bound (at most
        ``-dp.wrap_bits``, to be counted in delta) for DP-encoded ones."""
        dp = self.dp
        return float("-inf") if dp is None else dp.log2_wrap_probability

    @property
    def dtype(self) -> np.dtype[np.unsignedinteger]:
        """Container dtype of masked vectors (see `container_dtype`)."""
        return container_dtype(self.bits)

    @property
    def protocol(self) -> str:
        """``"secagg"`` on the complete graph, ``"secagg+"`` on a Harary graph."""
        return "secagg" if self.graph.is_complete else "secagg+"

    @property
    def malicious(self) -> bool:
        """Whether the session defends against a malicious server (signatures, the
        ConsistencyCheck round)."""
        return self.threat.malicious_server

    @property
    def stages(self) -> tuple[AnyStage, ...]:
        """The stages of a round, in order (five against a malicious server)."""
        return protocol_stages(self.malicious)

    @property
    def threshold_window(self) -> tuple[int, int] | None:
        """Thresholds meeting the threat model on this graph (``None``: none does)."""
        return threshold_window(self.n, self.graph.degree, self.threat)

    def round_graph(self, transcript: bytes) -> CommunicationGraph:
        """The graph of a round whose signed key transcript hashes to ``transcript``
        (the configuration's own graph unless it is a template)."""
        if not self.graph.is_template:
            return self.graph
        return self.graph.derive(graph_seed(transcript))

    @property
    def max_input_magnitude(self) -> int:
        """Largest ``|x_i|`` (signed) a client's quantized, weighted input may have
        (`ParameterError` for DP-encoded inputs, which are any ring elements)."""
        return self.quantization.level_bound * self.max_weight

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """SHA-256 of the canonical parameter encoding (sent in every message header;
        computed once, the configuration being immutable)."""
        enc = self.encoding
        # A distinct tag for DP-encoded sessions: the two encodings never share a digest.
        tag = b"securecomp/secagg/config/v1"
        if isinstance(enc, DistributedDpConfig):
            tag = b"securecomp/secagg/config/dp/v1"
        h = hashlib.sha256(tag)
        h.update(
            struct.pack(">QQQQQ", self.n, self.threshold, self.dim, self.bits, self.max_weight)
        )
        if isinstance(enc, DistributedDpConfig):
            # Clients encoding under other DP parameters (noise, clip, scale, modulus,
            # min_survivors...) cannot join: their messages carry another fingerprint.
            h.update(enc.fingerprint)
        else:
            h.update(struct.pack(">dd", enc.clip, enc.scale))
        h.update(self.graph.describe())
        if self.malicious and self.identities is not None:
            # The pinned keys are part of what every party must agree on.
            h.update(b"malicious-server" + self.identities.digest())
        return h.digest()

    def neighbours(self, u: int) -> tuple[int, ...]:
        """Client ``u``'s neighbours (sorted, excluding ``u``)."""
        return self.graph.neighbours(u)

    # --- construction --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        n: int,
        dim: int,
        *,
        clip: float,
        scale: float | None = None,
        scale_bits: int | None = None,
        max_weight: int = 1,
        protocol: Literal["secagg", "secagg+"] = "secagg",
        threat: ThreatModel | None = None,
        threshold: int | None = None,
        session: bytes | None = None,
        graph_seed: bytes | None = None,
        identities: PinnedIdentities | Sequence[bytes] | None = None,
    ) -> SecAggConfig:
        """Choose the modulus, graph and threshold for ``n`` clients and ``dim`` values.

        The modulus is the smallest ``b`` for which ``n * max_weight`` inputs clipped to
        ``clip`` at this scale cannot wrap. ``"secagg"`` uses the complete graph and, unless
        given, a majority threshold above the corrupt count; ``"secagg+"`` runs
        `search_parameters` (Bell et al. bounds) and may fall back to the complete graph
        for small ``n``. The session id and the graph's label seed are drawn from the OS
        CSPRNG unless given.

        Against a malicious server (``threat=ThreatModel(malicious_server=True)``) pass
        the clients' Ed25519 public keys as ``identities``; the threshold is then at least
        ``floor((n + C) / 2) + 1`` (per neighbourhood for SecAgg+), the set-up is refused
        when no threshold fits the dropout budget (the message gives the window), and a
        SecAgg+ graph is a template labelled per round from the signed key transcript
        (``graph_seed`` is then refused: the server must not pick the labels).
        """
        threat = threat if threat is not None else ThreatModel()
        if isinstance(identities, PinnedIdentities) or identities is None:
            pinned = identities
        else:
            pinned = PinnedIdentities(list(identities))
        n = operator.index(n)
        bits = modulus_bits_for(
            n * operator.index(max_weight), clip=clip, scale=scale, scale_bits=scale_bits
        )
        if scale_bits is not None:
            quant = QuantizationParams.from_scale_bits(
                clip=clip, scale_bits=scale_bits, modulus_bits=bits
            )
        elif scale is not None:
            quant = QuantizationParams(clip=clip, scale=scale, modulus_bits=bits)
        else:  # pragma: no cover - modulus_bits_for already refused it
            raise ParameterError("give exactly one of scale and scale_bits")
        if protocol == "secagg":
            graph = complete_graph(n)
            t = threshold if threshold is not None else complete_threshold(n, threat)
        elif protocol == "secagg+":
            found = search_parameters(n, threat)
            if threat.malicious_server:
                if graph_seed is not None:
                    raise ParameterError(
                        "against a malicious server the SecAgg+ labels come from the signed "
                        "key transcript of each round; do not give graph_seed"
                    )
                graph = harary_template(n, found.degree)
            else:
                graph = found.graph(graph_seed)
            t = threshold if threshold is not None else found.threshold
        else:
            raise ParameterError(f"protocol must be 'secagg' or 'secagg+', got {protocol!r}")
        sid = session if session is not None else secrets.token_bytes(SESSION_BYTES)
        return cls(
            n=n,
            threshold=t,
            dim=operator.index(dim),
            encoding=quant,
            graph=graph,
            session=sid,
            max_weight=operator.index(max_weight),
            threat=threat,
            identities=pinned,
        )

    @classmethod
    def for_distributed_dp(
        cls,
        dp: DistributedDpConfig,
        *,
        protocol: Literal["secagg", "secagg+"] = "secagg+",
        threat: ThreatModel | None = None,
        threshold: int | None = None,
        session: bytes | None = None,
        graph_seed: bytes | None = None,
        identities: PinnedIdentities | Sequence[bytes] | None = None,
    ) -> SecAggConfig:
        """Secure aggregation of ``dp``'s encoded vectors, directly in Z_2^b.

        ``n = dp.n_clients``, ``dim = dp.padded_dim`` and ``b = dp.modulus_bits``; the
        clients' inputs are `securecomp.dp.encode_update` values (``uint64`` below
        ``2^b``) and `SecAggResult.aggregate` is their sum modulo ``2^b``, for
        `securecomp.dp.decode_sum`. The threshold is at least ``dp.min_survivors`` (see
        `securecomp.secagg.dp_binding` for why and for the graph choice), and the DP
        configuration's fingerprint is bound into this configuration's.

        Parameters
        ----------
        dp : DistributedDpConfig
            The agreed distributed-DP parameters.
        protocol : {"secagg+", "secagg"}
            Harary graph (its degree raised until a neighbourhood holds ``min_survivors``,
            up to the complete graph) or the complete graph.
        threat : ThreatModel, optional
            Its corrupt count must equal ``dp.corrupt_count`` and its dropout budget leave
            at least ``dp.min_survivors`` clients. Default: ``dp.corrupt_count`` corrupt
            clients and ``n - dp.min_survivors`` dropouts, semi-honest server.
        threshold : int, optional
            Must be ``>= dp.min_survivors`` and meet ``threat``; chosen if omitted.
        session, graph_seed, identities
            As for `create` (identity keys against a malicious server).

        Raises
        ------
        ParameterError
            A threshold below ``dp.min_survivors``, a threat model inconsistent with
            ``dp``, or no graph meeting both.
        """
        if not isinstance(dp, DistributedDpConfig):
            raise ParameterError("dp must be a securecomp.dp.DistributedDpConfig")
        threat = threat if threat is not None else dp_threat(dp)
        if not isinstance(threat, ThreatModel):
            raise ParameterError("threat must be a ThreatModel")
        if isinstance(identities, PinnedIdentities) or identities is None:
            pinned = identities
        else:
            pinned = PinnedIdentities(list(identities))
        graph, t = choose_dp_graph(dp, protocol, threat, threshold=threshold, graph_seed=graph_seed)
        return cls(
            n=dp.n_clients,
            threshold=t,
            dim=dp.padded_dim,
            encoding=dp,
            graph=graph,
            session=session if session is not None else secrets.token_bytes(SESSION_BYTES),
            threat=threat,
            identities=pinned,
        )

    @classmethod
    def harary(
        cls,
        n: int,
        dim: int,
        degree: int,
        threshold: int,
        quantization: QuantizationParams,
        *,
        session: bytes | None = None,
        seed: bytes | None = None,
        threat: ThreatModel | None = None,
        max_weight: int = 1,
        identities: PinnedIdentities | None = None,
    ) -> SecAggConfig:
        """An explicit SecAgg+ configuration (degree and threshold chosen by the caller and
        checked against ``threat``; a template graph against a malicious server)."""
        threat = threat if threat is not None else ThreatModel()
        if threat.malicious_server:
            if seed is not None:
                raise ParameterError("against a malicious server do not give a label seed")
            graph = harary_template(n, degree)
        else:
            graph = harary_graph(n, degree, seed)
        return cls(
            n=n,
            threshold=threshold,
            dim=dim,
            encoding=quantization,
            graph=graph,
            session=session if session is not None else secrets.token_bytes(SESSION_BYTES),
            max_weight=max_weight,
            threat=threat,
            identities=identities,
        )
