"""``securecomp party`` and ``securecomp dealer``: run one MPC role per process over TCP.

Every computing party runs the same program (``--program module:function``, a callable
``program(session)`` or ``program(session, my_input)``) on its own data (``--input
FILE.npy``, loaded without pickle) and gets the explicit ``host:port`` of every party and
of its link to the dealer::

    securecomp dealer --listen 127.0.0.1:7100,127.0.0.1:7101 --session 00ff...
    securecomp party --id 0 --peers 127.0.0.1:7000,127.0.0.1:7001 \\
        --dealer 127.0.0.1:7100 --session 00ff... --program mymod:train --input x0.npy
    securecomp party --id 1 --peers 127.0.0.1:7000,127.0.0.1:7001 \\
        --dealer 127.0.0.1:7101 --session 00ff... --program mymod:train --input x1.npy

Plain TCP is accepted on loopback only (links carry shares and seeds); remote addresses
need mutual TLS, available through `securecomp.mpc.run_party` / `run_dealer` with
`securecomp.net.TLSConfig`. Each role prints one JSON object (result, error, cost report)
on stdout and exits 0 on success, 1 on a protocol failure, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from securecomp.errors import ParameterError, PartyTimeoutError, ProtocolAbort, SecurecompError
from securecomp.mpc.runner import run_dealer, run_party
from securecomp.mpc.session import DEFAULT_FRAC_BITS, DEFAULT_INPUT_BOUND
from securecomp.net import DEFAULT_TIMEOUT, PartyAddress

__all__ = [
    "load_program",
    "main",
    "register_cli",
    "register_dealer_cli",
    "register_party_cli",
    "run_dealer_command",
    "run_party_command",
]

EXIT_FAILED = 1
EXIT_USAGE = 2


def load_program(ref: str) -> Any:
    """Import ``module:function`` (the program every party runs)."""
    module, sep, name = ref.partition(":")
    if not sep or not module or not name.isidentifier():
        raise ParameterError(f"--program must look like package.module:function, got {ref!r}")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ParameterError(f"cannot import {module!r} for --program: {exc}") from None
    program = vars(mod).get(name)
    if not callable(program):
        raise ParameterError(f"{module!r} has no callable {name!r}")
    return program


def _addresses(text: str) -> list[PartyAddress]:
    return [PartyAddress.parse(t.strip()) for t in text.split(",") if t.strip()]


def _session(text: str) -> bytes:
    try:
        sid = bytes.fromhex(text)
    except ValueError:
        raise ParameterError("--session must be hex (the same value for every role)") from None
    if not 8 <= len(sid) <= 64:
        raise ParameterError("--session must be 8 to 64 bytes of hex")
    return sid


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _error(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"error_type": type(exc).__name__, "error": str(exc)}
    if isinstance(exc, PartyTimeoutError):
        out["error_party"] = exc.party
    if isinstance(exc, ProtocolAbort):
        out["culprits"] = list(exc.culprits)
    return out


def run_party_command(args: argparse.Namespace) -> int:
    """Body of ``securecomp party``."""
    out: dict[str, Any] = {"role": "party", "party": args.id}
    try:
        program = load_program(args.program)
        peers = _addresses(args.peers)
        my_input = None
        if args.input is not None:
            my_input = np.load(args.input, allow_pickle=False)
        outcome, report = run_party(
            program,
            args.id,
            peers,
            PartyAddress.parse(args.dealer),
            session_id=_session(args.session),
            my_input=my_input,
            has_input=args.input is not None,
            frac_bits=args.frac_bits,
            truncation=args.truncation,
            input_bound=args.input_bound,
            timeout=args.timeout,
            connect_timeout=args.connect_timeout,
        )
    except ParameterError as exc:
        print(json.dumps({**out, **_error(exc)}), flush=True)
        return EXIT_USAGE
    except (SecurecompError, OSError) as exc:
        print(json.dumps({**out, **_error(exc)}), flush=True)
        return EXIT_FAILED
    if args.output is not None and isinstance(outcome.result, np.ndarray):
        np.save(args.output, outcome.result, allow_pickle=False)
    out.update(
        result=_jsonable(outcome.result),
        online_seconds=outcome.online_seconds,
        offline_seconds=outcome.offline_seconds,
        report=report.as_dict(),
    )
    print(json.dumps(out), flush=True)
    return 0


def run_dealer_command(args: argparse.Namespace) -> int:
    """Body of ``securecomp dealer``."""
    out: dict[str, Any] = {"role": "dealer"}
    try:
        stats = run_dealer(
            _addresses(args.listen),
            session_id=_session(args.session),
            timeout=args.timeout,
            connect_timeout=args.connect_timeout,
            idle_timeout=args.idle_timeout,
        )
    except ParameterError as exc:
        print(json.dumps({**out, **_error(exc)}), flush=True)
        return EXIT_USAGE
    except (SecurecompError, OSError) as exc:
        print(json.dumps({**out, **_error(exc)}), flush=True)
        return EXIT_FAILED
    out["stats"] = stats.as_dict()
    print(json.dumps(out), flush=True)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session", required=True, help="session id in hex, the same for every role")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="receive timeout (s)")
    p.add_argument(
        "--connect-timeout", type=float, default=DEFAULT_TIMEOUT, help="connection deadline (s)"
    )


def register_party_cli(subparsers: Any) -> None:
    """Add the ``party`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    p = subparsers.add_parser(
        "party",
        help="run one computing party of an MPC program over TCP",
        description="Run one computing party of an SPMD program; prints a JSON result.",
    )
    p.add_argument("--id", type=int, required=True, help="this party's id (0-based)")
    p.add_argument("--peers", required=True, help="host:port of every party, comma-separated")
    p.add_argument("--dealer", required=True, help="host:port where the dealer awaits this party")
    p.add_argument("--program", required=True, help="module:function run by every party")
    p.add_argument("--input", help="this party's input, a .npy file (loaded without pickle)")
    p.add_argument("--output", help="save an array result to this .npy file")
    p.add_argument("--truncation", choices=("dealer", "local"), default="dealer")
    p.add_argument("--frac-bits", type=int, default=DEFAULT_FRAC_BITS)
    p.add_argument("--input-bound", type=float, default=DEFAULT_INPUT_BOUND)
    _common(p)
    p.set_defaults(func=run_party_command)


def register_dealer_cli(subparsers: Any) -> None:
    """Add the ``dealer`` subcommand to ``subparsers``."""
    d = subparsers.add_parser(
        "dealer",
        help="run the trusted dealer (preprocessing) of an MPC session over TCP",
        description="Serve seed-compressed preprocessing to the computing parties.",
    )
    d.add_argument(
        "--listen",
        required=True,
        help="host:port per computing party (in party order), comma-separated",
    )
    d.add_argument(
        "--idle-timeout", type=float, default=600.0, help="longest wait between requests"
    )
    _common(d)
    d.set_defaults(func=run_dealer_command)


def register_cli(subparsers: Any) -> None:
    """Add both the ``party`` and the ``dealer`` subcommands."""
    register_party_cli(subparsers)
    register_dealer_cli(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m securecomp.mpc.cli {party,dealer} ...`` (same as ``securecomp ...``)."""
    parser = argparse.ArgumentParser(prog="securecomp", description="MPC roles over TCP")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
