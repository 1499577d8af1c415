"""Communication for securecomp: wire format, channels, accounting and cost reports.

- `securecomp.net.wire`: the versioned envelope, arrays and big integers on the wire.
- `securecomp.net.stats`: `CommStats`, exact bytes / messages / rounds.
- `securecomp.net.channel`: the `Channel` interface; `inproc` and `tcp` (+ `tls`)
  implement it.
- `securecomp.net.costmodel` and `securecomp.net.report`: LAN/WAN projections,
  `CostReport` and `LeakageLedger`.

Importing this package opens no socket and generates no key.
"""

from __future__ import annotations

from securecomp.net.channel import DEFAULT_TIMEOUT, Channel, Payload
from securecomp.net.costmodel import LAN, WAN, NetworkSetting, estimate, project
from securecomp.net.inproc import InProcessChannel, make_inprocess_channels
from securecomp.net.report import CostReport, LeakageEntry, LeakageLedger
from securecomp.net.stats import DEFAULT_PHASE, CommStats, Counts
from securecomp.net.tcp import PartyAddress, TCPChannel, is_loopback_host
from securecomp.net.tls import (
    PartyCredentials,
    TLSConfig,
    certificate_fingerprint,
    generate_party_credentials,
    make_test_tls_configs,
)
from securecomp.net.wire import (
    ARRAY_DTYPES,
    DEFAULT_MAX,
    MAGIC,
    SUPPORTED_VERSIONS,
    WIRE_VERSION,
    Envelope,
    array_parts,
    decode_array,
    decode_arrays,
    decode_bigints,
    decode_envelope,
    describe,
    encode_array,
    encode_arrays,
    encode_bigints,
    encode_envelope,
    is_registered_kind,
    open_envelope,
    register_kind,
    registered_kinds,
    seal_envelope,
)

__all__ = [
    "ARRAY_DTYPES",
    "DEFAULT_MAX",
    "DEFAULT_PHASE",
    "DEFAULT_TIMEOUT",
    "LAN",
    "MAGIC",
    "SUPPORTED_VERSIONS",
    "WAN",
    "WIRE_VERSION",
    "Channel",
    "CommStats",
    "CostReport",
    "Counts",
    "Envelope",
    "InProcessChannel",
    "LeakageEntry",
    "LeakageLedger",
    "NetworkSetting",
    "PartyAddress",
    "PartyCredentials",
    "Payload",
    "TCPChannel",
    "TLSConfig",
    "array_parts",
    "certificate_fingerprint",
    "decode_array",
    "decode_arrays",
    "decode_bigints",
    "decode_envelope",
    "describe",
    "encode_array",
    "encode_arrays",
    "encode_bigints",
    "encode_envelope",
    "estimate",
    "generate_party_credentials",
    "is_loopback_host",
    "is_registered_kind",
    "make_inprocess_channels",
    "make_test_tls_configs",
    "open_envelope",
    "project",
    "register_kind",
    "registered_kinds",
    "seal_envelope",
]
