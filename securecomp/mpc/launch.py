"""Start every role of a session as its own process on loopback (tests, benchmarks, demos).

`run_processes` allocates loopback ports, writes each party's input to its own ``.npy``
file, starts the dealer and one process per computing party (``python -m
securecomp.mpc.cli``), and collects the JSON each prints. Whatever happens, every process
it started has exited when it returns: stragglers (a party that hangs) are killed after
``wait`` seconds, by their own process handles.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from securecomp.errors import ParameterError

__all__ = ["ProcessRun", "free_ports", "run_processes"]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports that were free a moment ago (the OS picks them)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class ProcessRun:
    """What each process printed and how it exited."""

    parties: list[dict[str, Any]]
    dealer: dict[str, Any]
    returncodes: list[int | None]
    killed: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def run_processes(
    program: str,
    parties: int = 2,
    *,
    inputs: Sequence[np.ndarray | None] | None = None,
    truncation: str = "dealer",
    frac_bits: int = 16,
    input_bound: float | None = None,
    timeout: float = 10.0,
    connect_timeout: float = 20.0,
    dealer_idle_timeout: float = 60.0,
    wait: float = 120.0,
    grace: float = 5.0,
    env: Mapping[str, str] | None = None,
    party_args: Sequence[Sequence[str]] | None = None,
    dealer_args: Sequence[str] = (),
) -> ProcessRun:
    """Run ``program`` (``module:function``) as ``parties`` processes plus a dealer.

    Parameters
    ----------
    program : str
        ``module:function``; the module must be importable in the child processes
        (extend ``PYTHONPATH`` through ``env``).
    inputs : sequence of arrays or None, optional
        Per-party inputs (the program is then called as ``program(session, my_input)``).
    wait : float
        Seconds to wait for the first process to finish.
    grace : float
        Seconds each further process is then given before it is killed (a party that
        hangs while the others have stopped).
    party_args : sequence of sequences of str, optional
        Extra command-line arguments of each party (e.g. its ``--cert``, ``--key`` and
        ``--peer-cert`` flags), one sequence per party.
    dealer_args : sequence of str
        Extra command-line arguments of the dealer.

    Returns
    -------
    ProcessRun
        One JSON dict per party and the dealer's, exit codes (negative: ended by a
        signal), and the names of the processes the launcher had to kill.
    """
    if inputs is not None and len(inputs) != parties:
        raise ParameterError(f"{len(inputs)} inputs for {parties} parties")
    if party_args is not None and len(party_args) != parties:
        raise ParameterError(f"{len(party_args)} party_args for {parties} parties")
    ports = free_ports(2 * parties)
    peers = ",".join(f"127.0.0.1:{p}" for p in ports[:parties])
    dealer_ports = ports[parties:]
    session = secrets.token_hex(16)
    child_env = dict(os.environ)
    if env:
        child_env.update(env)
    base = [sys.executable, "-m", "securecomp.mpc.cli"]
    common = [
        "--session",
        session,
        "--timeout",
        str(timeout),
        "--connect-timeout",
        str(connect_timeout),
    ]
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    with tempfile.TemporaryDirectory(prefix="securecomp-mpc-") as tmp:
        dealer_cmd = [
            *base,
            "dealer",
            "--listen",
            ",".join(f"127.0.0.1:{p}" for p in dealer_ports),
            "--idle-timeout",
            str(dealer_idle_timeout),
            *common,
            *dealer_args,
        ]
        try:
            procs.append(("dealer", _spawn(dealer_cmd, child_env)))
            for i in range(parties):
                cmd = [
                    *base,
                    "party",
                    "--id",
                    str(i),
                    "--peers",
                    peers,
                    "--dealer",
                    f"127.0.0.1:{dealer_ports[i]}",
                    "--program",
                    program,
                    "--truncation",
                    truncation,
                    "--frac-bits",
                    str(frac_bits),
                    *common,
                ]
                if input_bound is not None:
                    cmd += ["--input-bound", str(input_bound)]
                if party_args is not None:
                    cmd += list(party_args[i])
                value = None if inputs is None else inputs[i]
                if inputs is not None:
                    path = Path(tmp) / f"input-{i}.npy"
                    np.save(
                        path,
                        np.asarray(value if value is not None else np.zeros(0)),
                        allow_pickle=False,
                    )
                    cmd += ["--input", str(path)]
                procs.append((f"party {i}", _spawn(cmd, child_env)))
            return _collect(procs, parties, wait, grace)
        finally:
            for _, p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait(timeout=30)


def _spawn(cmd: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env)
    )


def _collect(
    procs: list[tuple[str, subprocess.Popen[str]]], parties: int, wait: float, grace: float
) -> ProcessRun:
    outputs: dict[str, tuple[str, str]] = {}
    killed: list[str] = []
    # Parties first (the dealer ends when the last party says goodbye), then the dealer.
    order = procs[1:] + procs[:1]
    for name, p in order:
        try:
            out, err = p.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=30)
            killed.append(name)
        outputs[name] = (out, err)
        wait = grace  # once one role is done, the others follow within the timeouts
    return ProcessRun(
        parties=[_last_json(outputs[f"party {i}"][0]) for i in range(parties)],
        dealer=_last_json(outputs["dealer"][0]),
        returncodes=[p.returncode for _, p in procs],
        killed=killed,
        stderr=[outputs[name][1] for name, _ in procs],
    )
