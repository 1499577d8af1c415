"""Secure aggregation: SecAgg (Bonawitz et al., CCS 2017) and SecAgg+ (Bell et al., CCS 2020).

Sans-I/O state machines (`SecAggClient`, `SecAggServer`) exchange typed messages
(`securecomp.secagg.messages`) that travel as securecomp envelopes; drivers move them:

* `simulate`: deterministic, in one process, with fault injection at any stage;
* `run_tcp`: the server in the calling process and each client in its own OS process,
  over loopback TCP, with stage timeouts turning silent clients into dropouts;
* `run_ray` / `SecAggRayPool`: thousands of virtual clients hosted by a pool of
  long-lived Ray workers (optional extra ``securecomp[ray]``, imported only when used).

Each returns the server's result with a `CostReport` (bytes per client and per stage).

Threat model: semi-honest server and clients, up to the configured corrupt fraction of
clients colluding with the server. The server learns the sum of the surviving clients'
inputs and which clients dropped at each stage; nothing else.

Typical use::

    cfg = SecAggConfig.create(n=100, dim=10_000, clip=1.0, scale_bits=12, protocol="secagg+",
                              threat=ThreatModel(corrupt_fraction=0.05, dropout_fraction=0.1))
    q = [quantize(x, cfg.quantization, rng=rng).values for x in updates]
    out = simulate(cfg, q)
    mean = out.result.dequantized() / len(out.survivors)
"""

from __future__ import annotations

from securecomp.secagg.bitpack import pack_bits, packed_size, unpack_bits
from securecomp.secagg.client import ClientState, SecAggClient, check_input
from securecomp.secagg.config import SecAggConfig, container_dtype
from securecomp.secagg.driver_report import DriverResult
from securecomp.secagg.graph import CommunicationGraph, complete_graph, harary_graph
from securecomp.secagg.messages import (
    SERVER,
    AdvertiseKeys,
    ClientMessage,
    Header,
    KeysBroadcast,
    MaskedInput,
    Message,
    ServerMessage,
    ShareKeys,
    SharesDelivery,
    Stage,
    UnmaskRequest,
    UnmaskShares,
    decode_message,
    encode_message,
)
from securecomp.secagg.parameters import (
    FailureBounds,
    GraphParameters,
    MonteCarloReport,
    ThreatModel,
    failure_bounds,
    monte_carlo_check,
    search_parameters,
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
    "AdvertiseKeys",
    "ClientMessage",
    "ClientState",
    "CommunicationGraph",
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
    "monte_carlo_check",
    "pack_bits",
    "packed_size",
    "run_ray",
    "run_tcp",
    "search_parameters",
    "simulate",
    "unpack_bits",
]
