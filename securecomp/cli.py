"""The ``securecomp`` command line.

Subcommands are not listed here: each subpackage registers its own through the
``securecomp.commands`` entry-point group (see ``pyproject.toml``), as a callable
``register_cli(subparsers)`` that adds a parser and sets ``func=`` on it. A new subpackage
adds a command by adding one entry point; this file does not change.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "securecomp.commands"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="securecomp",
        description="Secure computation for privacy-preserving ML: HE, MPC, secure aggregation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        register = ep.load()
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
