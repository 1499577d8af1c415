"""Secure aggregation: SecAgg (Bonawitz et al., CCS 2017) and SecAgg+ (Bell et al., CCS 2020).

Sans-I/O state machines (`SecAggClient`, `SecAggServer`) exchange typed messages
(`securecomp.secagg.messages`) that travel as securecomp envelopes; drivers move them:

* `simulate`: deterministic, in one process, with fault injection at any stage;
* `run_tcp`: the server in the calling process and each client in its own OS process,
  over loopback TCP, with stage timeouts turning silent clients into dropouts;
* `run_ray` / `SecAggRayPool`: thousands of virtual clients hosted by a pool of
  long-lived Ray workers (optional extra ``securecomp[ray]``, imported only when used).

Each returns the server's result with a `CostReport` (bytes per client and per stage).

Threat model: by default a semi-honest server and clients, up to the configured corrupt
fraction of clients colluding with the server. The server learns the sum of the surviving
clients' inputs and which clients dropped at each stage; nothing else.

Against a malicious server (``ThreatModel(malicious_server=True)``, Bonawitz et al.'s
active model) the clients sign under Ed25519 identity keys pinned in the configuration
(`PinnedIdentities`: a PKI is assumed), bind the broadcast model's hash, run the
ConsistencyCheck round on the survivor set and reveal shares only against ``t`` signatures
on it; the threshold must exceed ``(n + n_C) / 2`` (per neighbourhood for SecAgg+, whose
graph is then derived from the signed key transcript). `securecomp.secagg.server` states
what a deviating server can still do.

Distributed differential privacy (Kairouz et al. ICML 2021; Agarwal et al. NeurIPS 2021):
`SecAggConfig.for_distributed_dp` aggregates the ring elements of
`securecomp.dp.encode_update` directly in Z_2^b (``b = dp.modulus_bits``, no headroom
bits): the DP configuration's bound on the wrap probability replaces the no-wrap check,
the threshold is at least ``dp.min_survivors`` (so no sum of fewer inputs is ever
unmasked, which the noise split needs) and the DP fingerprint is bound into the session's.
The result's ``aggregate`` goes to `securecomp.dp.decode_sum`
(`securecomp.secagg.dp_binding` states the conditions).

Typical use::

    cfg = SecAggConfig.create(n=100, dim=10_000, clip=1.0, scale_bits=12, protocol="secagg+",
                              threat=ThreatModel(corrupt_fraction=0.05, dropout_fraction=0.1))
    q = [quantize(x, cfg.quantization, rng=rng).values for x in updates]
    out = simulate(cfg, q)
    mean = out.result.dequantized() / len(out.survivors)

    # Against a malicious server: identities pinned at set-up, the model hash per round.
    ids = [Ed25519KeyPair.generate() for _ in range(100)]   # each on its own device
    cfg = SecAggConfig.create(100, 10_000, clip=1.0, scale_bits=12, protocol="secagg",
                              threat=ThreatModel(0.05, 0.1, malicious_server=True),
                              identities=[k.public_bytes for k in ids])
    out = simulate(cfg, q, identities=ids, model_hash=hashlib.sha256(weights).digest())

    # Distributed DP: clients send DP-encoded vectors, the server decodes the noisy sum.
    dp = DistributedDpConfig.create("ddgauss", dim=10_000, l2_clip=1.0, noise_stddev=0.5,
                                    n_clients=100, min_survivors=90, corrupt_count=5,
                                    modulus_bits=20)
    cfg = SecAggConfig.for_distributed_dp(dp, protocol="secagg+")
    rotation = dp.rotation(public_seed, session=cfg.session, round=0)
    out = simulate(cfg, [encode_update(x, dp, rotation).values for x in updates])
    noisy_sum = decode_sum(out.aggregate, dp, rotation)
"""

from __future__ import annotations

from securecomp.secagg.bitpack import pack_bits, packed_size, unpack_bits
from securecomp.secagg.client import ClientState, SecAggClient, check_input
from securecomp.secagg.config import SecAggConfig, container_dtype
from securecomp.secagg.driver_report import DriverResult
from securecomp.secagg.graph import (
    CommunicationGraph,
    complete_graph,
    harary_graph,
    harary_template,
)
from securecomp.secagg.identity import PinnedIdentities
from securecomp.secagg.messages import (
    SERVER,
    ActiveStage,
    AdvertiseKeys,
    AnyStage,
    ClientMessage,
    ConsistencyCheck,
    ConsistencySignature,
    Header,
    KeysBroadcast,
    MaskedInput,
    Message,
    ServerMessage,
    ShareKeys,
    SharesDelivery,
    Stage,
    UnmaskCertificate,
    UnmaskRequest,
    UnmaskShares,
    decode_message,
    encode_message,
    protocol_stages,
)
from securecomp.secagg.parameters import (
    FailureBounds,
    GraphParameters,
    MonteCarloReport,
    ThreatModel,
    failure_bounds,
    monte_carlo_check,
    search_parameters,
    threshold_window,
)
from securecomp.secagg.ray_driver import SecAggRayPool, run_ray
from securecomp.secagg.server import SecAggResult, SecAggServer
from securecomp.secagg.simulator import (
    Fault,
    FaultKind,
    RejectedMessage,
    SecAggSimulation,
    SimulationResult,
    dropouts,
    simulate,
)
from securecomp.secagg.tcp_driver import FaultMode, ProcessFault, SecAggTCPRun, run_tcp

__all__ = [
    "SERVER",
    "ActiveStage",
    "AdvertiseKeys",
    "AnyStage",
    "ClientMessage",
    "ClientState",
    "CommunicationGraph",
    "ConsistencyCheck",
    "ConsistencySignature",
    "DriverResult",
    "FailureBounds",
    "Fault",
    "FaultKind",
    "FaultMode",
    "GraphParameters",
    "Header",
    "KeysBroadcast",
    "MaskedInput",
    "Message",
    "MonteCarloReport",
    "PinnedIdentities",
    "ProcessFault",
    "RejectedMessage",
    "SecAggClient",
    "SecAggConfig",
    "SecAggRayPool",
    "SecAggResult",
    "SecAggServer",
    "SecAggSimulation",
    "SecAggTCPRun",
    "ServerMessage",
    "ShareKeys",
    "SharesDelivery",
    "SimulationResult",
    "Stage",
    "ThreatModel",
    "UnmaskCertificate",
    "UnmaskRequest",
    "UnmaskShares",
    "check_input",
    "complete_graph",
    "container_dtype",
    "decode_message",
    "dropouts",
    "encode_message",
    "failure_bounds",
    "harary_graph",
    "harary_template",
    "monte_carlo_check",
    "pack_bits",
    "packed_size",
    "protocol_stages",
    "run_ray",
    "run_tcp",
    "search_parameters",
    "simulate",
    "threshold_window",
    "unpack_bits",
]
