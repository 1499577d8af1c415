"""``securecomp consent report|export|revoke USER --db FILE [--key-file FILE]``.

The user-facing rights of the consent registry on the command line: access (GDPR Art. 15,
``report``), portability (Art. 20, ``export``: JSON on stdout), and withdrawal of consent
for every purpose at once (Art. 7(3), ``revoke``; ``--erase`` also deletes the records now,
Art. 17). Every command is recorded in the registry's audit log.

The database must exist: these commands never create one. ``--key-file`` is optional (none
of these commands derives a pseudonym); when given, it must be the registry's key, which
guards against pointing at the wrong database. Exit status: 0 on success, 1 when the
database is missing, corrupt or not a registry, the key does not match, or the user is
unknown, 2 on bad arguments; the message says which, never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from securecomp.errors import SecurecompError
from securecomp.federated.consent import ConsentRegistry
from securecomp.federated.pseudonym import PseudonymKey

__all__ = ["main", "register_cli", "run_consent"]

EXIT_FAILED = 1
EXIT_USAGE = 2

_PROG = "securecomp consent"


def _open(args: argparse.Namespace) -> ConsentRegistry:
    key = PseudonymKey.load(args.key_file) if args.key_file else None
    return ConsentRegistry.open(args.db, key, create=False)


def _report(reg: ConsentRegistry, args: argparse.Namespace) -> None:
    report = reg.report(args.user)
    if args.json:
        summary = report.budget_summary()
        data = {
            "user_id": report.user_id,
            "pseudonym": report.pseudonym,
            "enrolled_at": report.enrolled_at,
            "active_purposes": {p.value: at for p, at in report.active_purposes.items()},
            "rounds": {p.value: list(r) for p, r in report.rounds.items()},
            "budget": {"epsilon": report.budget.epsilon, "delta": report.budget.delta},
            # Strings ("unbounded", "not meaningful") where rounds had no DP guarantee.
            "spent": summary["budget_spent"],
            "remaining": summary["budget_remaining"],
            "rounds_without_dp": summary["rounds_without_dp"],
            "notices": list(report.notices),
        }
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(report.render())


def _export(reg: ConsentRegistry, args: argparse.Namespace) -> None:
    print(reg.export_json(args.user))


def _revoke(reg: ConsentRegistry, args: argparse.Namespace) -> None:
    done = reg.revoke(args.user, erase=args.erase)
    if done:
        print(f"consent withdrawn for: {', '.join(p.value for p in done)}")
    else:
        print("no consent was active; nothing to withdraw")
    print(
        "effective from the next round; contributions already aggregated into a model stay "
        "in it (there is no unlearning)"
    )
    if args.erase:
        print("all records held about this user were erased")


def run_consent(args: argparse.Namespace) -> int:
    """Run one ``consent`` action; returns the exit status (messages go to stderr)."""
    action = getattr(args, "consent_action", None)
    if action is None:
        print(f"{_PROG}: choose an action: report, export or revoke", file=sys.stderr)
        return EXIT_USAGE
    try:
        with _open(args) as reg:
            action(reg, args)
    except SecurecompError as exc:
        print(f"{_PROG} {args.consent_command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (sqlite3.Error, OSError) as exc:
        # Locked, read-only or vanished database files: report, do not trace back.
        print(
            f"{_PROG} {args.consent_command}: database error on {args.db!r}: {exc}", file=sys.stderr
        )
        return EXIT_FAILED
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``consent`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    p = subparsers.add_parser(
        "consent",
        help="a user's consent report, data export, or revocation",
        description="Access, export or revoke one user's consent records in a registry.",
    )
    p.set_defaults(func=run_consent)
    actions = p.add_subparsers(dest="consent_command", metavar="ACTION")
    specs = (
        ("report", _report, "print the user's report: purposes, rounds, budget spent"),
        ("export", _export, "print everything held about the user as JSON"),
        ("revoke", _revoke, "withdraw the user's consent for every purpose"),
    )
    for name, action, text in specs:
        q = actions.add_parser(name, help=text, description=text)
        q.add_argument("user", help="the user's identifier (as registered)")
        q.add_argument("--db", required=True, metavar="FILE", help="the registry database")
        q.add_argument(
            "--key-file",
            metavar="FILE",
            help="the registry's pseudonym key (optional; checked if given)",
        )
        if name == "report":
            q.add_argument("--json", action="store_true", help="print the report as JSON")
        if name == "revoke":
            q.add_argument(
                "--erase",
                action="store_true",
                help="also delete every record held about the user now",
            )
        q.set_defaults(consent_action=action)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``consent ...`` without the ``securecomp`` entry point (``python -m``)."""
    parser = argparse.ArgumentParser(prog="securecomp")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_cli(sub)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    return int(func(args))


if __name__ == "__main__":
    sys.exit(main())
