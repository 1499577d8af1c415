"""``securecomp demo``: consent-aware, private personalization end to end, and a tour.

``securecomp demo`` runs the scenario of `securecomp.federated.scenario` (100 simulated
users in one process: consent registry in a temporary SQLite file, FedAvg over SecAgg+
with user-level distributed DP, withdrawals and purges, Ditto personalization on the
devices, CKKS-encrypted inference for one user, and a membership-inference indicator),
shows a progress bar on stderr and prints a report of utility, privacy and cost.
``--out DIR`` also writes ``report.json`` and three PNG plots; ``--quick`` runs a tiny
configuration. The exit status is 1 when any self-check of the run fails.

``securecomp demo --tour`` runs instead three short round trips through each layer, with
secure default parameters, each checked against numpy:

1. CKKS (TenSEAL, N = 8192, [60, 40, 40, 60], 128-bit): a client encrypts a batch of feature
   rows column-packed; a server holding only the public context scores them with a
   plaintext linear model; the client decrypts.
2. Paillier (3072-bit key, about 128-bit security): three holders encrypt integer vectors
   with slot packing; an aggregator adds ciphertexts; the key holder decrypts only the sum.
3. Additive secret sharing over Z_2^64 with fixed point: three parties, each with a private
   vector, compute the sum over in-process channels that count every byte and round.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from securecomp.crypto import AesCtrPrg
from securecomp.encoding import fixed_point
from securecomp.errors import SecurecompError
from securecomp.net import Channel, CommStats, CostReport, make_inprocess_channels

__all__ = [
    "register_cli",
    "render_report",
    "run_demo",
    "run_scenario_demo",
    "run_tour",
    "secure_sum_by_sharing",
]


def secure_sum_by_sharing(
    inputs: list[np.ndarray], *, frac_bits: int = 16, timeout: float = 10.0
) -> tuple[np.ndarray, CostReport]:
    """Sum private vectors of n parties by additive sharing over Z_2^64 (simulation).

    Protocol (semi-honest, any n-1 parties may collude without learning another party's
    input; everybody learns the sum):

    1. Party i encodes x_i in fixed point and splits it into n additive shares with an
       AES-CTR PRG seeded from the OS CSPRNG; it sends share j to party j.
    2. Party j adds the shares it holds and broadcasts the partial sum.
    3. Everybody adds the partial sums and decodes.

    All n parties run in threads of this process over in-process channels (a simulation of
    n machines): every message is serialized and counted as it would be on a network.
    """
    n = len(inputs)
    fp = fixed_point(frac_bits, 64)
    channels = make_inprocess_channels(n, timeout=timeout)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def party(ch: Channel, x: np.ndarray) -> None:
        try:
            prg = AesCtrPrg.from_random()
            encoded = fp.encode(x)
            shares = [prg.random_uint64(encoded.shape) for _ in range(n - 1)]
            own = encoded - np.sum(shares, axis=0, dtype=np.uint64)  # wraps mod 2^64
            it = iter(shares)
            for p in ch.peers:
                ch.send(p, next(it), tag="share")
            held = own.copy()
            for p in ch.peers:
                held += ch.recv_array(p, tag="share")
            ch.broadcast(held, tag="partial-sum")
            total = held.copy()
            for p in ch.peers:
                total += ch.recv_array(p, tag="partial-sum")
            results[ch.party_id] = fp.decode(total)
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)
        finally:
            ch.close()

    report = CostReport(protocol=f"additive sharing secure sum, {n} parties (simulation)")
    with report.timer("online"):
        threads = [
            threading.Thread(target=party, args=(ch, x))
            for ch, x in zip(channels, inputs, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    report.comm = CommStats.merge([ch.stats for ch in channels])
    report.rounds = report.comm.rounds
    for i in range(n):
        report.leakage.record(f"party {i}", "sum of all inputs (the output)", "reveal")
    return results[0], report


def _section(title: str, fn: Callable[[], tuple[list[str], bool]]) -> bool:
    """Print a section; True when its result matched numpy within the stated bound."""
    print(f"\n== {title}")
    lines, ok = fn()
    for line in lines:
        print("  " + line)
    print("  result: " + ("matches numpy within its bound" if ok else "MISMATCH with numpy"))
    return ok


def _sharing_section(rng: np.random.Generator) -> tuple[list[str], bool]:
    inputs = [rng.normal(0, 10, size=10_000) for _ in range(3)]
    got, report = secure_sum_by_sharing(inputs)
    err = float(np.max(np.abs(got - np.sum(inputs, axis=0))))
    return [
        "3 parties, 10,000 values each, fixed point f = 16 over Z_2^64",
        f"max |secure sum - numpy sum| = {err:.2e} (3 roundings to 2^-16: <= {3 * 2**-17:.1e})",
        *report.summary().splitlines(),
    ], err <= 3 * 2**-17 + 1e-9  # plus float64 rounding of numpy's sum


def _ckks_section(rng: np.random.Generator) -> tuple[list[str], bool]:
    from securecomp.he.ckks import CKKSBackend, CKKSContext

    report = CostReport(protocol="CKKS batch scoring, client and server (simulation)")
    with report.timer("keygen (client)"):
        secret = CKKSContext.generate()  # N = 8192, [60, 40, 40, 60], scale 2^40
        client = CKKSBackend(secret)
    public_bytes = secret.public().to_bytes()  # no secret key, no Galois keys
    X = rng.normal(size=(4096, 8))
    w, b = rng.normal(size=8), 0.5
    with report.timer("encrypt (client)"):
        upload = client.to_bytes(client.encrypt(X))  # column-packed: one ciphertext/feature
    with report.timer("score (server)"):
        server = CKKSBackend(CKKSContext.from_bytes(public_bytes))
        download = server.to_bytes(server.from_bytes(upload) @ w + b)
    with report.timer("decrypt (client)"):
        scores = client.from_bytes(download).decrypt(secret)
    report.leakage.record("server", "shapes and ciphertext sizes only", "score")
    err = float(np.max(np.abs(scores - (X @ w + b))))
    mb = 1 / 2**20
    return [
        "4,096 rows x 8 features, N = 8192, [60, 40, 40, 60], scale 2^40 (128-bit)",
        f"max |decrypted scores - numpy X @ w + b| = {err:.2e}",
        f"public context {len(public_bytes) * mb:.1f} MiB, upload {len(upload) * mb:.1f} MiB, "
        f"download {len(download) * mb:.2f} MiB",
        *report.summary().splitlines(),
    ], err <= 3 * 2**-17


def _paillier_section(rng: np.random.Generator) -> tuple[list[str], bool]:
    from securecomp.he.paillier import paillier_keygen

    report = CostReport(protocol="packed Paillier aggregation, 3 holders (simulation)")
    with report.timer("keygen"):
        backend, secret_key = paillier_keygen()  # 3072 bits: about 128-bit security
    gradients = [rng.uniform(-1, 1, size=1000) for _ in range(3)]
    with report.timer("encrypt (holders)"):
        # The aggregator adds at most 8 ciphertexts: that fixes the slot headroom.
        cts = [backend.encrypt(g, layout="packed", max_additions=8) for g in gradients]
    with report.timer("aggregate (aggregator)"):
        total = cts[0] + cts[1] + cts[2]
    with report.timer("decrypt (key holder)"):
        out = total.decrypt(secret_key)
    report.leakage.record("key holder", "sum of the 3 gradients", "decrypt")
    report.leakage.record("aggregator", "ciphertexts and their sizes only", "aggregate")
    err = float(np.max(np.abs(out - np.sum(gradients, axis=0))))
    nbytes = len(backend.to_bytes(total))
    return [
        f"{backend.key.bits}-bit key, 3 holders x 1,000 values in [-1, 1], packed slots",
        f"max |decrypted sum - numpy sum| = {err:.2e} (3 roundings to 2^-16: <= {3 * 2**-17:.1e})",
        f"aggregate ciphertext: {nbytes} bytes ({nbytes / 1000:.1f} B per value)",
        *report.summary().splitlines(),
    ], err <= 3 * 2**-17


def run_tour(seed: int = 0) -> int:
    """Run every tour section; returns 0 when all results match numpy within their bounds."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    results = [
        _section("CKKS: encrypted batch scoring", lambda: _ckks_section(rng)),
        _section("Paillier: packed gradient aggregation", lambda: _paillier_section(rng)),
        _section("Additive secret sharing: secure sum", lambda: _sharing_section(rng)),
    ]
    print(
        f"\n{sum(results)}/{len(results)} sections matched numpy, "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0 if all(results) else 1


def run_demo(seed: int = 0) -> int:
    """The tour (kept under its historical name); see `run_tour`."""
    return run_tour(seed)


# --- the scenario -------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value != value:  # NaN
        return "n/a"
    return format(value, spec)


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.2f} MiB"


def render_report(report: dict[str, Any]) -> str:
    """The scenario report (`ScenarioReport.to_dict`) as a plain-text table."""
    cfg = report["config"]
    acc = report["accuracy_per_round"]
    ref = report.get("reference_accuracy_per_round") or [None]
    pers = report["personalization"]
    priv = report["privacy"]
    cost = report["cost"]
    inf = report["inference"]
    mem = report["membership"]
    con = report["consent"]
    with_dp, without = mem["with_dp"], mem["without_dp"]
    rows: list[tuple[str, str]] = [
        ("UTILITY", ""),
        ("global model, accuracy per user (mean)", f"{_fmt(acc[-1] if acc else None)}"
         f"   (reference without DP: {_fmt(ref[-1])})"),
        ("personalized on device (Ditto)", f"{_fmt(pers['mean_personalized'])}"
         f"   (local-only: {_fmt(pers['mean_local_only'])})"),
        ("users better off personalized", f"{_fmt(100 * pers['improved_fraction'], '.0f')}%"
         f" of {len(pers['clients'])}"),
        ("PRIVACY", ""),
        ("user-level epsilon spent (max / median)",
         f"{_fmt(priv['epsilon_max'], '.2f')} / {_fmt(priv['epsilon_median'], '.2f')}"
         f"  at delta {priv['delta']:g}"),
        ("mechanism", f"{priv['mechanism']}, noise x{priv['noise_multiplier']:g}"),
        ("users whose budget is spent", f"{priv['budget_exhausted_users']}"),
        ("membership advantage with DP",
         f"{_fmt(with_dp['yeom']['advantage'])} (Yeom) / "
         f"{_fmt(with_dp['calibrated']['advantage'])} (calibrated)"
         f"  <= bound {_fmt(with_dp['bound'])}"),
        ("membership advantage without DP",
         f"{_fmt(without['yeom']['advantage'])} (Yeom) / "
         f"{_fmt(without['calibrated']['advantage'])} (calibrated)  no bound"),
        ("COST", ""),
        ("bytes per client per round (sent / recv)",
         f"{cost['bytes_sent_per_client_per_round']:,.0f} / "
         f"{cost['bytes_received_per_client_per_round']:,.0f}"),
        ("secure aggregation", f"{cost['protocol']}"),
        ("", f"threshold {cost['threshold']}, {cost['modulus_bits']} bits/value (the DP "
         f"ring Z_2^b, no extra bits), {_fmt(cost['seconds_per_round'], '.2f')} s/round"),
        ("encrypted inference (CKKS, 128-bit)",
         f"{inf['rows']} rows: up {_mib(inf['upload_bytes'])}, "
         f"down {_mib(inf['download_bytes'])}, max error {inf['max_error']:.1e}"),
        ("CONSENT", ""),
        ("users who withdrew", f"{con.get('withdrew', 0)} of {con['users']}"
         f" (after round {cfg['withdraw_after']})"),
        ("records purged", f"{con.get('records_purged', 0)} "
         f"({con.get('purged_users', 0)} users)"),
        ("users who declined training", f"{con['declined_training']}"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [
        f"Consent-aware private personalization: {cfg['users']} simulated users, "
        f"{cfg['rounds']} rounds (in-process simulation)",
    ]
    for key, value in rows:
        lines.append(f"\n{key}" if not value else f"  {key:<{width}}  {value}")
    checks = report["checks"]
    passed = sum(bool(v) for v in checks.values())
    lines.append(f"\nself-checks: {passed}/{len(checks)} passed")
    lines += [f"  FAILED: {name}" for name, ok in checks.items() if not ok]
    lines.append(f"wall clock: {report['seconds']:.1f} s")
    return "\n".join(lines)


def _check_out(out: str | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise SecurecompError(f"--out {out!r} is a file; give a directory (created if missing)")
    return path


def run_scenario_demo(
    *, quick: bool = False, out: str | None = None, seed: int = 0, progress: bool = True
) -> int:
    """Run the scenario, print its report, write ``out`` if given; 0 iff every check passed."""
    from securecomp.federated.progress import Progress
    from securecomp.federated.scenario import ScenarioConfig, run_scenario, scenario_steps

    folder = _check_out(out)
    cfg = ScenarioConfig.quick(seed) if quick else ScenarioConfig(seed=seed)
    bar = Progress(scenario_steps(cfg), "demo", enabled=progress)
    with bar:
        bar.note("enrolling users")
        report = run_scenario(cfg, step=bar.step)
    data = report.to_dict()
    print(render_report(data))
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(data, indent=2) + "\n")
        print(f"report written to {folder / 'report.json'}")
        from securecomp.federated.plots import write_plots

        for path in write_plots(data, folder):
            print(f"plot written to {path}")
    return 0 if report.ok else 1


def _main(args: argparse.Namespace) -> int:
    try:
        if args.tour:
            if args.quick or args.out:
                print("securecomp demo: --tour takes no --quick or --out", file=sys.stderr)
                return 2
            return run_tour(seed=args.seed)
        return run_scenario_demo(
            quick=args.quick, out=args.out, seed=args.seed, progress=not args.no_progress
        )
    except SecurecompError as exc:
        print(f"securecomp demo: {exc}", file=sys.stderr)
        return 1


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is an integer >= 0, got {value}")
    return value


def register_cli(subparsers: Any) -> None:
    """Add ``securecomp demo``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the private-personalization scenario (or --tour: HE and MPC round trips)",
        description=(
            "Simulate 100 users training a model with consent, secure aggregation and "
            "differential privacy, personalize it on their devices, score one user under "
            "encryption, and measure membership-inference risk."
        ),
    )
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the simulated data")
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (seconds)")
    parser.add_argument(
        "--out", metavar="DIR", help="write report.json and PNG plots into DIR"
    )
    parser.add_argument(
        "--tour", action="store_true", help="run the HE/MPC round trips instead"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar on stderr"
    )
    parser.set_defaults(func=_main)
