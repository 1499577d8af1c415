"""A worker of the Ray driver: one long-lived process hosting many virtual clients.

`SecAggWorker` is a plain class (importable without Ray); `securecomp.secagg.ray_driver`
turns it into a Ray actor. Per round it builds one `SecAggClient` per virtual client it
hosts and then answers each stage for all of them in one call: it receives the server's
messages for its clients as one batch of envelopes (`securecomp.secagg.driver_wire`),
decodes each, lets the addressed client handle it, and returns the encoded replies as one
batch. Nothing but bytes, ints and strings crosses the process boundary.

Threat model and what this process learns (as `securecomp.secagg.client`: a semi-honest
server, or a malicious one when the configuration says so, the clients then holding their
identity keys): each hosted client learns its own input, its live neighbours' ids and
public keys and the shares sealed for it. A worker hosting many clients is a *simulation*
of those clients: it holds all their inputs and keys at once, so it stands for a
coalition of the clients it hosts, and a deployment gives each client its own device. The
server never runs here.

Faults (for tests): a hosted client listed as silent at a stage computes its message but
does not return it, and is then left alone by the server (it dropped out there); a worker
told to crash at a stage ends its process (``os._exit``) when asked to run that stage, as
a lost machine would, and all its clients drop out there.
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgpack
import numpy as np

from securecomp.crypto.ed25519 import PRIVATE_KEY_BYTES, Ed25519KeyPair
from securecomp.errors import (
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ReplayError,
)
from securecomp.secagg.client import SecAggClient
from securecomp.secagg.driver_wire import decode_config, decode_inputs, pack_batch, unpack_batch
from securecomp.secagg.messages import (
    MALICIOUS_STAGES,
    SEMI_HONEST_STAGES,
    AnyStage,
    Stage,
    as_stage,
    decode_message,
    encode_message,
)
from securecomp.secagg.stages import reply_stage

__all__ = ["SecAggWorker", "decode_status", "encode_faults"]

# Every stage of either mode, in protocol order (faults travel as indices into it).
_STAGES = MALICIOUS_STAGES
_STATUS_KEYS = frozenset({"batch", "ids", "secs", "aborts", "rejected"})


def encode_faults(silent: dict[int, AnyStage]) -> bytes:
    """Silent clients as ``(id u32, stage index u8)`` records."""
    rec = np.zeros(len(silent), dtype=[("id", "<u4"), ("stage", "u1")])
    for i, (u, stage) in enumerate(sorted(silent.items())):
        rec[i] = (u, _STAGES.index(stage))
    return rec.tobytes()


def _decode_faults(raw: bytes) -> dict[int, AnyStage]:
    dt = np.dtype([("id", "<u4"), ("stage", "u1")])
    if type(raw) is not bytes or len(raw) % dt.itemsize:
        raise MalformedMessageError("silent-client faults must be (u32, u8) records")
    rec = np.frombuffer(raw, dtype=dt)
    if rec.size and int(rec["stage"].max()) >= len(_STAGES):
        raise MalformedMessageError("silent-client fault names an unknown stage")
    return {int(u): _STAGES[int(s)] for u, s in zip(rec["id"], rec["stage"], strict=True)}


def decode_status(raw: bytes) -> dict[str, Any]:
    """Parse a worker's answer: the reply batch, per-client compute seconds, aborts and
    refused messages (`MalformedMessageError` if it is not one)."""
    try:
        body = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"worker status is not msgpack: {exc}") from None
    if type(body) is not dict or set(body) != _STATUS_KEYS:
        raise MalformedMessageError(f"worker status must have the fields {sorted(_STATUS_KEYS)}")
    ids, secs = body["ids"], body["secs"]
    if type(ids) is not bytes or type(secs) is not bytes or len(ids) * 2 != len(secs):
        raise MalformedMessageError("worker timings must be parallel u32 ids and f64 seconds")
    body["seconds"] = dict(
        zip(
            np.frombuffer(ids, "<u4").tolist(),
            np.frombuffer(secs, "<f8").tolist(),
            strict=True,
        )
    )
    return body


class SecAggWorker:
    """Hosts many virtual clients of a secure-aggregation round in one process.

    Invariant: between `begin_round` calls the worker answers only for the clients of the
    current round, each exactly as its `SecAggClient` state machine allows.

    Parameters
    ----------
    index : int
        The worker's position in its pool (for messages).
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self._clients: dict[int, SecAggClient] = {}
        self._silent: dict[int, AnyStage] = {}
        self._crash: AnyStage | None = None
        self._stages: tuple[AnyStage, ...] = SEMI_HONEST_STAGES

    def ping(self) -> int:
        """The worker's process id (the pool uses it to see that the worker is up)."""
        return os.getpid()

    def begin_round(
        self,
        config: bytes,
        fingerprint: bytes,
        ids: bytes,
        values: bytes,
        round: int,
        silent: bytes,
        crash: str,
        identities: bytes = b"",
        model_hash: bytes = b"",
    ) -> bytes:
        """Create this round's clients and return their `AdvertiseKeys` (a status blob).

        ``identities`` holds the hosted clients' raw Ed25519 private keys in the order of
        ``ids`` and ``model_hash`` the model's identifier (malicious-server mode only).
        """
        cfg = decode_config(config, fingerprint)
        inputs = decode_inputs(cfg, ids, values)
        keys: dict[int, Ed25519KeyPair] = {}
        if identities:
            if type(identities) is not bytes or len(identities) != PRIVATE_KEY_BYTES * len(inputs):
                raise MalformedMessageError("identities must be one 32-byte key per hosted client")
            for i, u in enumerate(inputs):
                raw = identities[i * PRIVATE_KEY_BYTES : (i + 1) * PRIVATE_KEY_BYTES]
                keys[u] = Ed25519KeyPair.from_private_bytes(raw)
        self._stages = cfg.stages
        self._silent = _decode_faults(silent)
        self._crash = as_stage(crash) if crash else None
        self._clients = {}
        out: list[bytes] = []
        t_ids: list[int] = []
        t_secs: list[float] = []
        self._maybe_crash(Stage.ADVERTISE_KEYS)
        for u, x in inputs.items():
            start = time.perf_counter()
            client = SecAggClient(
                cfg, u, x, round=round, identity=keys.get(u), model_hash=model_hash or None
            )
            data = encode_message(client.advertise_keys())
            t_ids.append(u)
            t_secs.append(time.perf_counter() - start)
            self._clients[u] = client
            if self._silent.get(u) is not Stage.ADVERTISE_KEYS:
                out.append(data)
        return _status(out, t_ids, t_secs, [], [])

    def handle(self, batch: bytes) -> bytes:
        """Run one stage for the hosted clients addressed in ``batch``; returns a status blob."""
        out: list[bytes] = []
        t_ids: list[int] = []
        t_secs: list[float] = []
        aborts: list[list[Any]] = []
        rejected: list[list[Any]] = []
        crash_checked = False
        for raw in unpack_batch(batch):
            start = time.perf_counter()
            try:
                msg = decode_message(raw)
            except MalformedMessageError as exc:
                rejected.append([-1, type(exc).__name__, str(exc)])
                continue
            recipient = msg.header.recipient
            client = self._clients.get(recipient) if isinstance(recipient, int) else None
            if client is None or client.aborted:
                rejected.append([-1, "ReplayError", f"no live client {recipient!r} here"])
                continue
            u = client.id
            if not crash_checked:
                self._maybe_crash(reply_stage(msg.STAGE, self._stages))
                crash_checked = True
            try:
                reply = client.handle(msg)  # type: ignore[arg-type]
            except (ReplayError, MalformedMessageError) as exc:
                rejected.append([u, type(exc).__name__, str(exc)])
                continue
            except ProtocolAbort as exc:
                aborts.append([u, str(exc)])
                continue
            data = encode_message(reply)
            t_ids.append(u)
            t_secs.append(time.perf_counter() - start)
            silent_from = self._silent.get(u)
            if silent_from is not None and _STAGES.index(silent_from) <= _STAGES.index(reply.STAGE):
                continue  # silent from that stage on: computed, never sent
            out.append(data)
        return _status(out, t_ids, t_secs, aborts, rejected)

    def end_round(self) -> None:
        """Forget this round's clients (their keys and inputs)."""
        self._clients = {}
        self._silent = {}
        self._crash = None

    def _maybe_crash(self, stage: AnyStage) -> None:
        if self._crash is stage:
            os._exit(3)  # an injected machine failure: no clean-up, no answer


def _status(
    out: list[bytes],
    ids: list[int],
    secs: list[float],
    aborts: list[list[Any]],
    rejected: list[list[Any]],
) -> bytes:
    if len(ids) != len(secs):  # pragma: no cover - built in lockstep above
        raise ParameterError("timings out of step")
    body = {
        "batch": pack_batch(out),
        "ids": np.asarray(ids, dtype="<u4").tobytes(),
        "secs": np.asarray(secs, dtype="<f8").tobytes(),
        "aborts": aborts,
        "rejected": rejected,
    }
    blob: bytes = msgpack.packb(body, use_bin_type=True)
    return blob
