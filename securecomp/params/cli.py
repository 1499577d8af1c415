"""``securecomp params``: check a CKKS parameter set, or plan one for a computation.

``securecomp params check --n 8192 --chain 60,40,40,60 --scale 40 [--depth D]
[--drift-tolerance 0.05] [--security 128]`` prints the modulus budget against the
HomomorphicEncryption.org table, the primes SEAL will pick, the scale drift of every rescale
and the verdict (exit status 1 with the reason when invalid).

``securecomp params plan --depth D --precision 1e-3 --bound 10 [--security 128]
[--worst-case]`` prints the smallest secure parameters meeting the target.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from securecomp.errors import ParameterError
from securecomp.params.ckks import CKKSParameters
from securecomp.params.drift import scale_drift
from securecomp.params.noise import CKKSNoiseModel, ErrorModel
from securecomp.params.planner import plan_ckks, predicted_error
from securecomp.params.table import HE_STANDARD_MAX_LOG_Q, SECURITY_LEVELS
from securecomp.params.validate import DEFAULT_DRIFT_TOLERANCE, validate_ckks

__all__ = ["register_cli"]


def _chain(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--chain must be comma-separated prime bit sizes like 60,40,40,60, got {text!r}"
        ) from None


def _describe(params: CKKSParameters, security_bits: int, depth: int | None, out: TextIO) -> None:
    """Print everything that can be computed about ``params``; skip what cannot."""
    print(f"parameters:   {params}", file=out)
    print(f"slots:        {params.slot_count}", file=out)
    print(f"depth:        {params.depth} rescales", file=out)
    bound = HE_STANDARD_MAX_LOG_Q[security_bits].get(params.poly_modulus_degree)
    budget = f"{bound}" if bound is not None else "no table entry for this N"
    print(
        f"total log2 q: {params.total_log_q} (max {budget} at {security_bits}-bit, "
        "HomomorphicEncryption.org)",
        file=out,
    )
    print(f"security:     {params.security_label}", file=out)
    print(f"fingerprint:  {params.fingerprint_hex}", file=out)
    try:
        primes = params.primes
    except ParameterError as exc:
        print(f"primes:       unavailable ({exc})", file=out)
        return
    print(f"primes:       {', '.join(str(p) for p in primes)}", file=out)
    planned = params.depth if depth is None or not 0 <= depth <= params.depth else depth
    report = scale_drift(params, planned)
    if report.depth:
        print("scale drift under TenSEAL (factor 2^s/p per rescale, cumulative):", file=out)
        for k, (p, f, c) in enumerate(
            zip(report.primes, report.level_factors, report.cumulative, strict=True), start=1
        ):
            print(
                f"  rescale {k}: p = {p:<20d} x{f:.9f}  cumulative drift {c - 1.0:+.3e}", file=out
            )
    fresh = CKKSNoiseModel(params).fresh(1.0)
    print(
        f"fresh error:  {fresh.heuristic():.3g} (heuristic, 2^-40 per slot), "
        f"{fresh.worst_case():.3g} (worst case), for |x| <= 1",
        file=out,
    )


def _check(args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    try:
        params = CKKSParameters(args.n, args.chain, args.scale)
    except ParameterError as exc:
        print(f"verdict:      INVALID: {exc}", file=out)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _describe(params, args.security, args.depth, out)
    try:
        validate_ckks(
            params,
            depth=args.depth,
            drift_tolerance=args.drift_tolerance,
            security_bits=args.security,
        )
    except ParameterError as exc:
        print(f"verdict:      INVALID: {exc}", file=out)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("verdict:      OK", file=out)
    return 0


def _plan(args: argparse.Namespace) -> int:
    model = ErrorModel.WORST_CASE if args.worst_case else ErrorModel.HEURISTIC
    try:
        params = plan_ckks(
            args.depth,
            args.precision,
            args.bound,
            security_bits=args.security,
            model=model,
        )
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    err = predicted_error(params, args.depth, args.bound, model=model)
    chain = ",".join(str(b) for b in params.coeff_mod_bit_sizes)
    print(
        f"planned:      --n {params.poly_modulus_degree} --chain {chain} "
        f"--scale {params.scale_bits}",
        file=sys.stdout,
    )
    print(
        f"predicted:    error <= {err:.3g} ({model.value}, drift included) for a depth-"
        f"{args.depth} product of inputs with |x| <= {args.bound:g}",
        file=sys.stdout,
    )
    _describe(params, args.security, args.depth, sys.stdout)
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``params`` subcommand to the main CLI.

    Parameters
    ----------
    subparsers
        The object returned by ``argparse.ArgumentParser.add_subparsers()``.
    """
    parser = subparsers.add_parser(
        "params",
        help="check or plan CKKS parameters",
        description="Check CKKS parameters against the security table, SEAL and scale "
        "drift, or plan the smallest secure ones for a computation.",
    )
    actions = parser.add_subparsers(dest="params_command", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="validate a CKKS parameter set and report")
    check.add_argument("--n", type=int, required=True, help="ring degree N, e.g. 8192")
    check.add_argument(
        "--chain", type=_chain, required=True, help="prime bit sizes, e.g. 60,40,40,60"
    )
    check.add_argument("--scale", type=int, required=True, help="scale bits, e.g. 40")
    check.add_argument("--depth", type=int, default=None, help="planned rescales")
    check.add_argument(
        "--drift-tolerance",
        type=float,
        default=DEFAULT_DRIFT_TOLERANCE,
        help="largest accepted cumulative scale drift (default 0.05)",
    )
    check.add_argument("--security", type=int, choices=SECURITY_LEVELS, default=128)
    check.set_defaults(func=_check)

    plan = actions.add_parser("plan", help="smallest secure CKKS parameters for a computation")
    plan.add_argument("--depth", type=int, required=True, help="multiplicative depth")
    plan.add_argument("--precision", type=float, required=True, help="absolute error target")
    plan.add_argument("--bound", type=float, required=True, help="bound on |inputs|")
    plan.add_argument("--security", type=int, choices=SECURITY_LEVELS, default=128)
    plan.add_argument(
        "--worst-case",
        action="store_true",
        help="plan with the guaranteed worst-case bound instead of the heuristic one",
    )
    plan.set_defaults(func=_plan)
