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

Threat model: semi-honest computing parties and an honest trusted dealer that colludes
with none of them (`securecomp.mpc.dealer`); no security against a deviating party.

Links carry shares and seeds, so plain TCP is accepted on loopback only; any other
address needs mutual TLS 1.3 with pinned certificates (`securecomp.net.tls`, DESIGN.md
section 4). Every role then passes its own certificate and key and the certificate of
each role it talks to (``ID`` is a party id or ``dealer``)::

    securecomp dealer ... --cert dealer.crt --key dealer.key \\
        --peer-cert 0=p0.crt --peer-cert 1=p1.crt
    securecomp party --id 0 ... --cert p0.crt --key p0.key \\
        --peer-cert 1=p1.crt --peer-cert dealer=dealer.crt

A party uses its one certificate on the mesh and on its dealer link. Certificates are
self-signed (no authority); the peer must present exactly the pinned one.
`securecomp.net.generate_party_credentials` makes a key pair, as does ``openssl req
-x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=party-0
-keyout p0.key -out p0.crt``; a key file others can read is refused (``chmod 600``).

Each role prints one JSON object (result, error, cost report) on stdout and exits 0 on
success, 1 on a protocol failure, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import stat
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from securecomp.errors import ParameterError, PartyTimeoutError, ProtocolAbort, SecurecompError
from securecomp.mpc.dealer import LINK_DEALER_ID, LINK_PARTY_ID
from securecomp.mpc.runner import run_dealer, run_party
from securecomp.mpc.session import DEFAULT_FRAC_BITS, DEFAULT_INPUT_BOUND
from securecomp.net import DEFAULT_TIMEOUT, PartyAddress, TLSConfig

__all__ = [
    "THREAT_MODEL",
    "dealer_tls_configs",
    "load_program",
    "main",
    "party_tls_configs",
    "register_cli",
    "register_dealer_cli",
    "register_party_cli",
    "run_dealer_command",
    "run_party_command",
]

EXIT_FAILED = 1
EXIT_USAGE = 2

#: One line for ``--help``: what the MPC roles protect against, and what they do not.
THREAT_MODEL = (
    "Threat model: semi-honest (honest-but-curious) computing parties and an honest "
    "trusted dealer that colludes with none of them; a party that deviates from the "
    "protocol is not detected."
)

#: Name of the dealer in ``--peer-cert dealer=PATH``.
DEALER_NAME = "dealer"


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


def _read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ParameterError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None


def _peer_certs(items: Sequence[str] | None) -> dict[int | str, bytes]:
    """Parse repeated ``--peer-cert ID=PATH`` (ID: a party id or ``dealer``)."""
    pins: dict[int | str, bytes] = {}
    for item in items or ():
        name, sep, path = item.partition("=")
        name = name.strip()
        key: int | str
        if name == DEALER_NAME:
            key = DEALER_NAME
        elif name.isdigit():
            key = int(name)
        else:
            key = ""
        if not sep or not path or key == "":
            raise ParameterError(
                f"--peer-cert takes ID=PATH with ID a party id or 'dealer', got {item!r}"
            )
        if key in pins:
            raise ParameterError(f"--peer-cert {name} is given twice; pin one certificate each")
        pins[key] = _read_file(path, f"certificate of {name}")
    return pins


def _read_key(path: str) -> bytes:
    # Like ssh, refuse a private key other local users can read: it would let them pose
    # as this role, and it is read on every run, so a lax mode is easy to overlook.
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ParameterError(f"cannot read --key {path!r}: {exc.strerror or exc}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ParameterError(
            f"--key {path!r} is accessible to other users (mode {stat.S_IMODE(mode):o}); "
            f"restrict it with 'chmod 600 {path}'"
        )
    return _read_file(path, "--key")


def _own_material(
    cert: str | None, key: str | None, pins: Mapping[int | str, bytes]
) -> tuple[bytes, bytes] | None:
    """This role's certificate and key, or None when no TLS flag was given."""
    if cert is None and key is None and not pins:
        return None
    if cert is None or key is None:
        raise ParameterError(
            "mutual TLS needs --cert and --key (this role's) and --peer-cert for each peer; "
            "give all of them, or none for plain TCP on loopback"
        )
    return _read_file(cert, "--cert"), _read_key(key)


def _check_pins(
    pins: Mapping[int | str, bytes], needed: Sequence[int | str], own: bytes, me: int | str
) -> None:
    missing = [str(p) for p in needed if p not in pins]
    if missing:
        raise ParameterError(
            f"no --peer-cert for {', '.join(missing)}: pin the certificate of every peer "
            "(ID=PATH, ID a party id or 'dealer')"
        )
    unknown = [str(p) for p in pins if p not in needed and p != me]
    if unknown:
        raise ParameterError(f"--peer-cert names {', '.join(unknown)}, not part of this session")
    if me in pins and pins[me].strip() != own.strip():
        # A shared list of every role's certificate may include our own; a different one
        # under our name is a configuration mistake that would fail the peers' checks.
        raise ParameterError(f"--peer-cert {me} differs from --cert; fix the configuration")


def party_tls_configs(
    party_id: int,
    n_parties: int,
    cert: str | None,
    key: str | None,
    peer_certs: Sequence[str] | None,
) -> tuple[TLSConfig | None, TLSConfig | None]:
    """TLS of a computing party from the CLI flags: (mesh config, dealer-link config).

    Parameters
    ----------
    party_id, n_parties : int
        This party and the number of computing parties.
    cert, key : str or None
        Paths of this party's PEM certificate and unencrypted PEM private key.
    peer_certs : sequence of str or None
        ``ID=PATH`` items: the certificate of every other party and of the dealer.

    Returns
    -------
    (TLSConfig or None, TLSConfig or None)
        ``(None, None)`` when no flag is given (plain TCP, refused off loopback). On the
        dealer link the dealer is endpoint 0, so its certificate is pinned as id 0.

    Raises
    ------
    ParameterError
        A flag is missing, malformed, unreadable, or a peer has no pinned certificate.
    """
    pins = _peer_certs(peer_certs)
    own = _own_material(cert, key, pins)
    if own is None:
        return None, None
    others = [j for j in range(n_parties) if j != party_id]
    _check_pins(pins, [*others, DEALER_NAME], own[0], party_id)
    mesh = TLSConfig(own[0], own[1], pinned={j: pins[j] for j in others})
    link = TLSConfig(own[0], own[1], pinned={LINK_DEALER_ID: pins[DEALER_NAME]})
    return mesh, link


def dealer_tls_configs(
    n_parties: int, cert: str | None, key: str | None, peer_certs: Sequence[str] | None
) -> list[TLSConfig] | None:
    """TLS of the dealer from the CLI flags: one config per computing party's link.

    On link ``i`` the dealer is endpoint 0 and party ``i`` endpoint 1, so party ``i``'s
    certificate is pinned as id 1 of that link. None when no flag is given.

    Raises
    ------
    ParameterError
        As for `party_tls_configs`.
    """
    pins = _peer_certs(peer_certs)
    own = _own_material(cert, key, pins)
    if own is None:
        return None
    _check_pins(pins, list(range(n_parties)), own[0], DEALER_NAME)
    return [TLSConfig(own[0], own[1], pinned={LINK_PARTY_ID: pins[i]}) for i in range(n_parties)]


def run_party_command(args: argparse.Namespace) -> int:
    """Body of ``securecomp party``."""
    out: dict[str, Any] = {"role": "party", "party": args.id}
    try:
        program = load_program(args.program)
        peers = _addresses(args.peers)
        tls, dealer_tls = party_tls_configs(
            args.id, len(peers), args.cert, args.key, args.peer_cert
        )
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
            tls=tls,
            dealer_tls=dealer_tls,
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
        listen = _addresses(args.listen)
        tls = dealer_tls_configs(len(listen), args.cert, args.key, args.peer_cert)
        stats = run_dealer(
            listen,
            session_id=_session(args.session),
            timeout=args.timeout,
            connect_timeout=args.connect_timeout,
            idle_timeout=args.idle_timeout,
            tls=tls,
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


_TLS_EPILOG = (
    "Links carry shares and seeds: plain TCP is accepted on loopback only, any other "
    "address needs mutual TLS 1.3 (--cert, --key, and --peer-cert ID=PATH for every role "
    "this one talks to; ID is a party id or 'dealer'). Certificates are self-signed and "
    "pinned exactly; make one with securecomp.net.generate_party_credentials or 'openssl "
    "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "
    "/CN=party-0 -keyout p0.key -out p0.crt'."
)


def _paragraphs(*texts: str) -> str:
    # Raw formatting keeps the threat model a paragraph of its own in --help.
    return "\n\n".join(
        textwrap.fill(t, 79, break_long_words=False, break_on_hyphens=False) for t in texts
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session", required=True, help="session id in hex, the same for every role")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="receive timeout (s)")
    p.add_argument(
        "--connect-timeout", type=float, default=DEFAULT_TIMEOUT, help="connection deadline (s)"
    )
    tls = p.add_argument_group("mutual TLS (required off loopback)")
    tls.add_argument("--cert", metavar="PATH", help="this role's PEM certificate")
    tls.add_argument(
        "--key",
        metavar="PATH",
        help="this role's unencrypted PEM private key (mode 600: refused if others can read it)",
    )
    tls.add_argument(
        "--peer-cert",
        metavar="ID=PATH",
        action="append",
        help="pinned PEM certificate of a peer (ID: party id or 'dealer'); repeat per peer",
    )


def register_party_cli(subparsers: Any) -> None:
    """Add the ``party`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    p = subparsers.add_parser(
        "party",
        help="run one computing party of an MPC program over TCP",
        description=_paragraphs(
            "Run one computing party of an SPMD program; prints a JSON result.", THREAT_MODEL
        ),
        epilog=_paragraphs(_TLS_EPILOG),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        description=_paragraphs(
            "Serve seed-compressed preprocessing to the computing parties.", THREAT_MODEL
        ),
        epilog=_paragraphs(_TLS_EPILOG),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
