"""What the multi-process drivers ship besides protocol messages: configurations, inputs
and batches of envelopes, all as plain bytes (msgpack and raw little-endian buffers).

The TCP driver hands each client process its configuration and input on its standard
input, and the Ray driver hands each worker the configuration and its clients' inputs;
neither may pickle (DESIGN.md section 5), so this module gives the few formats they need:

* `encode_config` / `decode_config`: a `SecAggConfig` as a msgpack map of its defining
  values (the Harary graph by its degree and 32-byte label seed, from which every party
  rebuilds the same graph; a malicious-server template by its degree alone; the input
  encoding as the quantization's clip, scale and modulus, or the distributed-DP
  configuration's defining values) and, against a malicious server, the pinned identity
  public keys. A decoded configuration must
  reproduce the fingerprint sent alongside it, so a codec mismatch or a corrupted blob is
  refused rather than silently yielding other parameters;
* `encode_inputs` / `decode_inputs`: several clients' quantized vectors as one raw
  ``(k, d)`` buffer of the container dtype, with their ids as ``uint32``;
* `pack_batch` / `unpack_batch`: many envelopes in one buffer (``u32`` length prefix
  each), so a worker receives and answers a whole stage in one call.

None of these carries a secret of any protocol party: the inputs are the client's own
data, delivered to the process that plays that client only (as is, against a malicious
server, the client's identity private key: see the drivers).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from securecomp.crypto.ed25519 import PUBLIC_KEY_BYTES as IDENTITY_KEY_BYTES
from securecomp.dp.config import DistributedDpConfig
from securecomp.encoding.quantize import QuantizationParams
from securecomp.errors import MalformedMessageError, ParameterError
from securecomp.secagg.config import SecAggConfig, container_dtype
from securecomp.secagg.graph import complete_graph, harary_graph, harary_template
from securecomp.secagg.identity import PinnedIdentities
from securecomp.secagg.parameters import ThreatModel

__all__ = [
    "decode_config",
    "decode_inputs",
    "encode_config",
    "encode_inputs",
    "pack_batch",
    "unpack_batch",
]

_CONFIG_VERSION = 3
_CONFIG_KEYS = frozenset(
    {
        "v", "n", "t", "dim", "enc", "degree", "seed", "session", "w", "threat", "identities",
    }
)
# Tags of the input encoding ("enc": [tag, values...]).
_QUANTIZED = "quantized"
_DISTRIBUTED_DP = "distributed-dp"
_LEN = struct.Struct("<I")


def encode_config(config: SecAggConfig) -> bytes:
    """The defining values of ``config`` as msgpack bytes (see `decode_config`)."""
    if not isinstance(config, SecAggConfig):
        raise ParameterError("config must be a SecAggConfig")
    g, th = config.graph, config.threat
    body = {
        "v": _CONFIG_VERSION,
        "n": config.n,
        "t": config.threshold,
        "dim": config.dim,
        "enc": _encode_encoding(config),
        "degree": g.degree,
        "seed": g.seed if g.seed is not None else b"",
        "session": config.session,
        "w": config.max_weight,
        "threat": [
            th.corrupt_fraction,
            th.dropout_fraction,
            th.security_bits,
            th.correctness_bits,
            th.malicious_server,
        ],
        "identities": b"".join(config.identities.keys) if config.identities is not None else b"",
    }
    out: bytes = msgpack.packb(body, use_bin_type=True)
    return out


def _encode_encoding(config: SecAggConfig) -> list[Any]:
    dp = config.dp
    if dp is None:
        q = config.quantization
        return [_QUANTIZED, q.clip, q.scale, q.modulus_bits]
    # The defining values only; the derived ones are recomputed (and re-checked) on decoding.
    return [
        _DISTRIBUTED_DP,
        dp.mechanism,
        dp.dim,
        dp.l2_clip,
        dp.noise_stddev,
        dp.scale,
        dp.modulus_bits,
        dp.n_clients,
        dp.min_survivors,
        dp.corrupt_count,
        dp.beta,
        dp.wrap_bits,
        dp.neighbouring,
    ]


def _decode_encoding(enc: Any) -> QuantizationParams | DistributedDpConfig:
    if type(enc) is not list or not enc:
        raise ParameterError("the input encoding must be a non-empty list")
    tag, values = enc[0], enc[1:]
    if tag == _QUANTIZED and len(values) == 3:
        clip, scale, bits = values
        return QuantizationParams(clip=clip, scale=scale, modulus_bits=bits)
    if tag == _DISTRIBUTED_DP and len(values) == 12:
        mech, dim, clip, stddev, scale, bits, n, survivors, corrupt, beta, wrap, nb = values
        return DistributedDpConfig(
            mechanism=mech,
            dim=dim,
            l2_clip=clip,
            noise_stddev=stddev,
            scale=scale,
            modulus_bits=bits,
            n_clients=n,
            min_survivors=survivors,
            corrupt_count=corrupt,
            beta=beta,
            wrap_bits=wrap,
            neighbouring=nb,
        )
    raise ParameterError(f"unknown input encoding {tag!r} with {len(values)} values")


def decode_config(data: bytes, fingerprint: bytes) -> SecAggConfig:
    """Rebuild a configuration and check it against the ``fingerprint`` it must have.

    Raises
    ------
    MalformedMessageError
        Not a configuration blob of this version, values that `SecAggConfig` refuses (the
        reason is in the message), or a configuration with another fingerprint (the blob
        and the fingerprint travel together, so a mismatch means corruption).
    """
    try:
        body = msgpack.unpackb(
            data, raw=False, strict_map_key=True, max_array_len=16, max_map_len=16
        )
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"configuration blob is not msgpack: {exc}") from None
    if type(body) is not dict or set(body) != _CONFIG_KEYS or body["v"] != _CONFIG_VERSION:
        raise MalformedMessageError(
            f"configuration blob must be a version-{_CONFIG_VERSION} map with the fields "
            f"{sorted(_CONFIG_KEYS)}"
        )
    try:
        config = _build(body)
    except (ParameterError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedMessageError(f"configuration blob holds refused values: {exc}") from None
    if config.fingerprint != fingerprint:
        raise MalformedMessageError(
            "the decoded configuration does not have the expected fingerprint; the blob is "
            "corrupted or was made by another version"
        )
    return config


def _build(body: dict[str, Any]) -> SecAggConfig:
    n, degree, seed, raw_ids = body["n"], body["degree"], body["seed"], body["identities"]
    if type(seed) is not bytes or type(raw_ids) is not bytes:
        raise ParameterError("graph seed and identities must be bytes")
    corrupt, dropout, sec, corr, malicious = body["threat"]
    if degree >= n - 1:
        graph = complete_graph(n)
    elif malicious:
        graph = harary_template(n, degree)
    else:
        graph = harary_graph(n, degree, seed)
    identities = None
    if raw_ids:
        if len(raw_ids) != n * IDENTITY_KEY_BYTES:
            raise ParameterError(f"identities must be {n} keys of {IDENTITY_KEY_BYTES} bytes")
        size = IDENTITY_KEY_BYTES
        identities = PinnedIdentities([raw_ids[i : i + size] for i in range(0, len(raw_ids), size)])
    return SecAggConfig(
        n=n,
        threshold=body["t"],
        dim=body["dim"],
        encoding=_decode_encoding(body["enc"]),
        graph=graph,
        session=body["session"],
        max_weight=body["w"],
        threat=ThreatModel(corrupt, dropout, sec, corr, malicious),
        identities=identities,
    )


def encode_inputs(
    config: SecAggConfig, ids: Sequence[int], inputs: Sequence[npt.ArrayLike]
) -> tuple[bytes, bytes]:
    """Clients' quantized vectors as ``(ids as <u4, (k, d) values in the container dtype)``.

    Each vector is converted with a range check: a value that does not fit the container
    dtype raises `ParameterError` (the client then re-checks it with `check_input`).
    """
    if len(ids) != len(inputs):
        raise ParameterError(f"{len(ids)} ids but {len(inputs)} inputs")
    dtype = config.dtype
    rows = np.empty((len(ids), config.dim), dtype=dtype)
    for i, x in enumerate(inputs):
        arr = np.asarray(x)
        if arr.shape != (config.dim,) or arr.dtype.kind != "u":
            raise ParameterError(
                f"input of client {ids[i]} must be {config.dim} unsigned quantized values, "
                f"got shape {arr.shape} and dtype {arr.dtype}"
            )
        if arr.size and int(arr.max()) > int(np.iinfo(dtype).max):
            raise ParameterError(
                f"input of client {ids[i]} has values above 2^{config.bits}; quantize it with "
                "this configuration"
            )
        rows[i] = arr
    return np.asarray(ids, dtype="<u4").tobytes(), rows.tobytes()


def decode_inputs(
    config: SecAggConfig, ids: bytes, values: bytes
) -> dict[int, npt.NDArray[np.unsignedinteger]]:
    """Inverse of `encode_inputs`: client id -> its vector (fresh, writable arrays)."""
    if type(ids) is not bytes or len(ids) % 4:
        raise MalformedMessageError("client ids must be bytes holding uint32 values")
    id_list = np.frombuffer(ids, dtype="<u4").tolist()
    dtype = container_dtype(config.bits)
    if type(values) is not bytes or len(values) != len(id_list) * config.dim * dtype.itemsize:
        raise MalformedMessageError(
            f"inputs of {len(id_list)} clients must be {len(id_list)} x {config.dim} values of "
            f"{dtype.itemsize} bytes"
        )
    if len(set(id_list)) != len(id_list) or any(not 0 <= u < config.n for u in id_list):
        raise MalformedMessageError("client ids must be distinct and below n")
    rows = np.frombuffer(values, dtype=dtype).reshape(len(id_list), config.dim)
    return {u: rows[i].copy() for i, u in enumerate(id_list)}


def pack_batch(envelopes: Iterable[bytes]) -> bytes:
    """Concatenate envelopes, each behind its ``u32`` little-endian length."""
    parts: list[bytes] = []
    for env in envelopes:
        if len(env) >= 1 << 32:
            raise ParameterError("an envelope in a batch must be below 4 GiB")
        parts.append(_LEN.pack(len(env)))
        parts.append(env)
    return b"".join(parts)


def unpack_batch(data: bytes | bytearray | memoryview) -> list[bytes]:
    """Split a `pack_batch` buffer; `MalformedMessageError` if a length runs past the end."""
    view = memoryview(data).cast("B")
    out: list[bytes] = []
    pos, end = 0, len(view)
    while pos < end:
        if end - pos < _LEN.size:
            raise MalformedMessageError("batch ends inside a length prefix")
        (size,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if size > end - pos:
            raise MalformedMessageError(
                f"batch entry declares {size} bytes but only {end - pos} remain"
            )
        out.append(bytes(view[pos : pos + size]))
        pos += size
    return out
