"""One secure-aggregation client as its own OS process: ``python -m securecomp.secagg.tcp_worker``.

Started by `securecomp.secagg.tcp_driver` (one process per client). The process reads its
set-up from standard input as one msgpack map (never a pickle): the server's loopback
address, its client id, the round, the configuration (`securecomp.secagg.driver_wire`)
with its fingerprint, its own quantized input, timeouts and an optional injected fault;
against a malicious server also its identity private key (Ed25519) and the identifier of
the model it received.
It then connects to the server (`securecomp.secagg.driver_star.StarClientChannel`) and
runs the `SecAggClient` state machine: every protocol message travels as its envelope
bytes in one channel frame. At the end it prints one JSON line (its final state, compute
seconds per stage, the reason of an abort) and exits.

Threat model and what this process learns: as `securecomp.secagg.client` states (a
semi-honest server, or a malicious one when the configuration says so): its own input, the
ids and public keys of its live neighbours, and the shares its neighbours sealed for it.
Its input and identity key reach it through its own standard input, never through the
server (the launcher stands for the device holding them).

Injected faults (for tests of the drivers' dropout handling), applied instead of sending
the client's message of the given stage: ``exit`` ends the process at once without
closing anything (as a crash would; the kernel closes the socket), ``silent`` keeps the
connection open and never sends again (the server must time it out); the process then
waits until the server closes the connection.

Exit codes: 0 after a normal end (finished, aborted by the protocol's own rules, or
dropped by the server), `EXIT_FAULT` for an injected ``exit``, `EXIT_SETUP` for an
unusable set-up, 1 for any other error (a securecomp error is reported in the JSON line,
anything else as a traceback on standard error).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import msgpack

from securecomp.crypto.ed25519 import Ed25519KeyPair
from securecomp.errors import (
    ChannelClosedError,
    MalformedMessageError,
    ParameterError,
    PartyTimeoutError,
    ProtocolAbort,
    ReplayError,
    SecurecompError,
)
from securecomp.net.tcp import PartyAddress
from securecomp.secagg.client import ClientState, SecAggClient
from securecomp.secagg.driver_star import StarClientChannel
from securecomp.secagg.driver_wire import decode_config, decode_inputs
from securecomp.secagg.messages import AnyStage, as_stage, decode_message, encode_message

__all__ = [
    "EXIT_FAULT",
    "EXIT_SETUP",
    "FAULT_MODES",
    "TAG",
    "encode_setup",
    "main",
    "run_client",
]

#: Frame tag of every secure-aggregation message (the envelope says which message it is).
TAG = "secagg"
#: Exit code of an injected ``exit`` fault.
EXIT_FAULT = 3
#: Exit code of an unusable set-up.
EXIT_SETUP = 2
#: What an injected fault does.
FAULT_MODES = ("exit", "silent")

_SETUP_KEYS = frozenset(
    {
        "v", "server", "id", "round", "fp", "config", "ids", "input", "fault", "connect",
        "timeout", "identity", "model",
    }
)


def encode_setup(
    *,
    server: PartyAddress,
    client_id: int,
    round: int,
    fingerprint: bytes,
    config: bytes,
    ids: bytes,
    values: bytes,
    fault: tuple[AnyStage, str] | None,
    connect_timeout: float,
    timeout: float,
    identity: bytes = b"",
    model_hash: bytes = b"",
) -> bytes:
    """The set-up map a client process reads from standard input (``identity``: the raw
    Ed25519 private key and ``model_hash`` the model identifier, malicious mode only)."""
    body = {
        "v": 1,
        "server": str(server),
        "id": client_id,
        "round": round,
        "fp": fingerprint,
        "config": config,
        "ids": ids,
        "input": values,
        "fault": None if fault is None else [fault[0].value, fault[1]],
        "connect": float(connect_timeout),
        "timeout": float(timeout),
        "identity": identity,
        "model": model_hash,
    }
    out: bytes = msgpack.packb(body, use_bin_type=True)
    return out


def _parse_setup(raw: bytes) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(raw, raw=False, strict_map_key=True, max_array_len=2)
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"set-up is not msgpack: {exc}") from None
    if type(body) is not dict or set(body) != _SETUP_KEYS or body["v"] != 1:
        raise MalformedMessageError(f"set-up must be a map with the fields {sorted(_SETUP_KEYS)}")
    fault = body["fault"]
    if fault is not None:
        if not isinstance(fault, list) or len(fault) != 2 or fault[1] not in FAULT_MODES:
            raise MalformedMessageError(f"fault must be [stage, one of {FAULT_MODES}]")
        try:
            body["fault"] = (as_stage(fault[0]), fault[1])
        except ParameterError:
            raise MalformedMessageError(f"unknown stage {fault[0]!r} in fault") from None
    if type(body["identity"]) is not bytes or type(body["model"]) is not bytes:
        raise MalformedMessageError("identity and model must be bytes")
    for key in ("connect", "timeout"):
        if not isinstance(body[key], float) or not body[key] > 0:
            raise MalformedMessageError(f"{key} must be a positive number of seconds")
    return body


def _wait_until_closed(chan: StarClientChannel, timeout: float) -> None:
    """A silent client: read (and ignore) until the server closes or the timeout expires."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            chan.recv(0, tag=TAG, timeout=left)
        except (ChannelClosedError, PartyTimeoutError):
            return
        except MalformedMessageError:
            continue


def run_client(setup: Mapping[str, Any]) -> dict[str, Any]:
    """Play one client over TCP; returns its status (printed as JSON by `main`)."""
    config = decode_config(setup["config"], setup["fp"])
    u = setup["id"]
    values = decode_inputs(config, setup["ids"], setup["input"]).get(u)
    if values is None:
        raise MalformedMessageError(f"the set-up holds no input for client {u}")
    fault: tuple[AnyStage, str] | None = setup["fault"]
    timeout: float = setup["timeout"]
    identity = Ed25519KeyPair.from_private_bytes(setup["identity"]) if setup["identity"] else None
    client = SecAggClient(
        config,
        u,
        values,
        round=setup["round"],
        identity=identity,
        model_hash=setup["model"] or None,
    )
    del values, identity
    seconds: dict[str, float] = defaultdict(float)
    rejected: list[list[str]] = []
    status: dict[str, Any] = {"id": u, "abort": None, "rejected": rejected, "seconds": seconds}
    chan = StarClientChannel(
        u,
        PartyAddress.parse(setup["server"]),
        setup["fp"],
        connect_timeout=setup["connect"],
        timeout=timeout,
    )
    try:
        start = time.perf_counter()
        reply: Any = client.advertise_keys()
        data = encode_message(reply)
        seconds[reply.STAGE.value] += time.perf_counter() - start
        while True:
            if fault is not None and fault[0] is reply.STAGE:
                if fault[1] == "exit":
                    sys.stdout.flush()
                    os._exit(EXIT_FAULT)  # a crash: no close, no goodbye
                _wait_until_closed(chan, timeout)
                status["ended"] = f"silent at {reply.STAGE.value} (injected)"
                break
            chan.send(0, data, tag=TAG)
            if client.state is ClientState.DONE:
                status["ended"] = "finished"
                break
            try:
                raw = chan.recv(0, tag=TAG, timeout=timeout)
            except (ChannelClosedError, PartyTimeoutError) as exc:
                # The server closed the round without us (dropped, aborted or finished).
                status["ended"] = f"server went away: {type(exc).__name__}"
                break
            start = time.perf_counter()
            try:
                reply = client.handle(decode_message(raw))  # type: ignore[arg-type]
            except (ReplayError, MalformedMessageError) as exc:
                rejected.append([type(exc).__name__, str(exc)])
                continue
            except ProtocolAbort as exc:
                status["abort"] = str(exc)
                status["ended"] = "aborted"
                break
            data = encode_message(reply)
            seconds[reply.STAGE.value] += time.perf_counter() - start
    finally:
        chan.close()
    status["state"] = client.state.value
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point: set-up from standard input, status JSON on standard output."""
    del argv  # everything comes from standard input (nothing secret on the command line)
    try:
        setup = _parse_setup(sys.stdin.buffer.read())
    except (MalformedMessageError, ParameterError) as exc:
        print(json.dumps({"error": f"unusable set-up: {exc}"}), flush=True)
        return EXIT_SETUP
    try:
        status = run_client(setup)
    except SecurecompError as exc:
        print(json.dumps({"id": setup["id"], "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(status), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
