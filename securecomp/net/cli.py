"""``securecomp inspect FILE``: validate one stored envelope and print its header.

Only the header is decoded and checked (`securecomp.net.wire.describe`); the payload is
never interpreted, so inspecting an untrusted file is safe.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from securecomp.errors import MalformedMessageError
from securecomp.net.wire import DEFAULT_MAX, describe

__all__ = ["register_cli", "run_inspect"]

#: Exit status for a file that is not a valid envelope.
EXIT_INVALID = 2


def run_inspect(args: argparse.Namespace) -> int:
    """Print the header of the envelope in ``args.file``; 2 if invalid, 1 if unreadable."""
    path: str = args.file
    try:
        size = os.path.getsize(path)
        if size > DEFAULT_MAX:
            raise MalformedMessageError(
                f"file of {size} bytes exceeds the {DEFAULT_MAX}-byte envelope cap"
            )
        with open(path, "rb") as f:
            data = f.read()
        info = describe(data)
    except MalformedMessageError as exc:
        print(f"securecomp inspect: invalid envelope: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        print(f"securecomp inspect: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}}  {v}")
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``inspect`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    p = subparsers.add_parser(
        "inspect",
        help="validate a stored securecomp envelope and print its header",
        description="Decode and validate the header of one envelope; the payload is not parsed.",
    )
    p.add_argument("file", help="file holding exactly one encoded envelope")
    p.add_argument("--json", action="store_true", help="print the header as JSON")
    p.set_defaults(func=run_inspect)
