"""Mohassel and Zhang, "SecureML: A System for Scalable Privacy-Preserving Machine Learning",
IEEE S&P 2017: two-party logistic regression training on secret shares.

Our implementation of the paper's section 4 protocol (`securecomp.mpc.models.MPCProtocol`:
additive shares over Z_2^64 with 16 fractional bits, Beaver matrix products, truncation,
the piecewise sigmoid ``relu(z + 1/2) - relu(z - 1/2)``, mini-batch SGD) on two task
shapes:

1. **digits** -- scikit-learn's 8x8 digits (1,797 x 64) as a binary task, even against
   odd digits (our choice of task; balanced), pixels scaled to [0, 1], split 75/25
   stratified. A small stand-in for the paper's MNIST (60,000 x 784), which is not bundled.
2. **synthetic** -- Gaussian features and labels drawn from a logistic model with a
   random weight vector (``--n``, ``--d``; default 10,000 x 784, MNIST's width), split
   75/25. Sizes are capped so that the run fits in 24 GB of memory (the machine's):
   the estimate (plaintext, each party's shares, the batch copies and the prefetched
   material) is printed and a larger shape is refused.

For each task: the two computing parties hold the training rows as a horizontal split
(contiguous halves); every step runs on shares; the trained model is revealed to both at
the end and evaluated on the test rows. Beside it: the same algorithm in float64 (same
batches, steps and piecewise sigmoid, `reference_fit`) and scikit-learn's exact logistic
regression. Time is measured in-process (parties and dealer are threads over in-memory
channels: a simulation; offline = dealer material, online = the rest), and projected to a
LAN (0.2 ms RTT, 10 Gbit/s) and a WAN (50 ms RTT, 100 Mbit/s) with
`securecomp.net.CostReport.projected`: measured compute + rounds x RTT + bytes / bandwidth.

What differs from the paper (see README.md): its offline phase generates the triples with
oblivious transfer or linearly homomorphic encryption between the two servers; ours uses
a trusted dealer (a third party that colludes with neither), so our offline cost is a
dealer's, not the paper's. The paper's servers receive the data from clients; here the two
computing parties hold it. The paper's LAN/WAN timings and accuracy are not quoted
("not available").

Usage::

    python papers/secureml/reproduce.py                      # both tasks, ~30 seconds
    python papers/secureml/reproduce.py --quick              # seconds (the smoke test)
    python papers/secureml/reproduce.py --n 60000 --d 784    # MNIST's shape, synthetic
    python papers/secureml/reproduce.py --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression as SkLogistic
from sklearn.model_selection import train_test_split

from securecomp.models.protocol import TrainingSpec
from securecomp.mpc.models import MPCProtocol, reference_fit
from securecomp.net.costmodel import LAN, WAN

#: What the paper reports for two-party logistic regression: its timings and accuracy are
#: not quoted.
REPORTED = {
    "lan_seconds": "not available",
    "wan_seconds": "not available",
    "accuracy": "not available",
    "setting": "two non-colluding servers, C++; offline triples by OT or LHE",
}

#: Memory cap for a run (the machine's 24 GB).
MEMORY_CAP_BYTES = 24 * 10**9

FEATURE_BOUND = 16.0


@dataclass
class Row:
    """One task's results."""

    task: str
    shape: str
    parties: int
    truncation: str
    epochs: int
    batch_size: int
    steps: int
    mpc_accuracy: float
    float64_accuracy: float
    sklearn_accuracy: float
    max_weight_gap: float
    offline_s: float
    online_s: float
    online_rounds: int
    online_mb_per_party: float
    offline_mb: float
    lan_s: float
    wan_s: float


def memory_estimate(n: int, d: int, parties: int, prefetch_words: int) -> int:
    """Bytes a training run on ``n x d`` holds at its peak (an upper estimate).

    Plaintext features (float64), and per party: its stacked shares, the batch copies and
    their transposes (uint64, three copies of ``n x (d + 1)``), and one chunk of material.
    """
    cells = n * (d + 1)
    return 8 * cells * (2 + 3 * parties) + 8 * prefetch_words * parties


def digits_data(seed: int) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    X, digit = load_digits(return_X_y=True)
    y = (digit % 2 == 0).astype(np.float64)
    Xtr, Xte, ytr, yte = train_test_split(
        X / 16.0, y, test_size=0.25, stratify=y, random_state=seed
    )
    return Xtr, Xte, ytr, yte


def synthetic_data(
    n: int, d: int, seed: int
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Standard normal features; labels from a logistic model (test data: numpy's rng)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    np.clip(X, -FEATURE_BOUND, FEATURE_BOUND, out=X)  # |x| > 16 has probability ~1e-57
    w = rng.standard_normal(d) * (3.0 / np.sqrt(d))
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    y = (rng.random(n) < p).astype(np.float64)
    cut = (3 * n) // 4
    return X[:cut], X[cut:], y[:cut], y[cut:]


def accuracy(coef: NDArray[Any], intercept: float, X: NDArray[Any], y: NDArray[Any]) -> float:
    return float(np.mean(((X @ coef + intercept) > 0) == (y == 1)))


def stable_step(plan: Any, X: NDArray[Any]) -> float:
    """``1 / max_b λ_max(Z_bᵀ Z_b / m_b)`` over the plan's mini-batches.

    The piecewise sigmoid has slope 1 (the logistic function's is at most 1/4), and with
    batches smaller than the width the curvature of a batch exceeds that of the full data:
    a step of ``1 / L`` for the full logistic loss (``learning_rate="auto"``) is then
    expansive on some batches, and two runs that differ by rounding drift apart (measured
    at 10,000 x 784: weights 0.66 apart instead of 1e-4). This step is non-expansive on every
    batch. It is a public function of the data, computed here in the clear.
    """
    Z = np.hstack([np.ones((X.shape[0], 1)), X])
    if plan.perm is not None:
        Z = Z[plan.perm]
    top = 0.0
    for start, stop in plan.cuts:
        zb = Z[start:stop]
        gram = zb @ zb.T if zb.shape[0] <= zb.shape[1] else zb.T @ zb
        top = max(top, float(np.linalg.eigvalsh(gram)[-1]) / zb.shape[0])
    return 1.0 / top


def run_task(
    task: str,
    data: tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]],
    *,
    epochs: int,
    batch_size: int,
    truncation: str,
    optimizer: str,
    seed: int,
    sklearn: bool = True,
) -> tuple[Row, Any]:
    """Train on shares and in float64; the row of results and the MPC run's CostReport."""
    Xtr, Xte, ytr, yte = data
    spec = TrainingSpec(
        task="logistic",
        optimizer=optimizer,  # type: ignore[arg-type]
        max_iter=epochs,
        batch_size=batch_size,
        random_state=seed,
        options={"parties": 2, "truncation": truncation, "feature_bound": FEATURE_BOUND},
    )
    # The batches depend on the seed only, so the step can be derived from them first.
    lr = stable_step(MPCProtocol(spec).make_plan(*Xtr.shape), Xtr)
    spec = dataclasses.replace(spec, learning_rate=lr)
    proto = MPCProtocol(spec)
    fitted = proto.fit(Xtr, ytr)
    ref = reference_fit(proto.make_plan(*Xtr.shape), Xtr, ytr)
    sk = SkLogistic(max_iter=1000).fit(Xtr, ytr).score(Xte, yte) if sklearn else float("nan")
    report = fitted.report
    comm = report.comm
    online = comm.per_phase["online"] if comm is not None else None
    offline = comm.per_phase.get("offline") if comm is not None else None
    per_party_online = online.bytes_sent / 2 if online is not None else 0.0
    row = Row(
        task=task,
        shape=f"{Xtr.shape[0] + Xte.shape[0]} x {Xtr.shape[1]}",
        parties=2,
        truncation=truncation,
        epochs=epochs,
        batch_size=batch_size,
        steps=int(report.metrics["steps"]),
        mpc_accuracy=accuracy(fitted.coef, fitted.intercept, Xte, yte),
        float64_accuracy=accuracy(ref.coef, ref.intercept, Xte, yte),
        sklearn_accuracy=float(sk),
        max_weight_gap=float(
            max(np.max(np.abs(fitted.coef - ref.coef)), abs(fitted.intercept - ref.intercept))
        ),
        offline_s=report.phases.get("offline", 0.0),
        online_s=report.phases.get("online", 0.0),
        online_rounds=online.rounds if online is not None else 0,
        online_mb_per_party=per_party_online / 1e6,
        offline_mb=(offline.bytes_sent / 1e6) if offline is not None else 0.0,
        lan_s=report.projected(LAN),
        wan_s=report.projected(WAN),
    )
    return row, report


def _table(rows: Sequence[Row]) -> str:
    head = (
        "task",
        "shape",
        "trunc",
        "epochs x batch",
        "acc MPC",
        "acc float64",
        "acc sklearn",
        "offline s",
        "online s",
        "rounds",
        "MB/party",
        "LAN s",
        "WAN s",
        "paper LAN s",
        "paper WAN s",
        "paper acc",
    )
    body = [
        (
            r.task,
            r.shape,
            r.truncation,
            f"{r.epochs} x {r.batch_size}",
            f"{r.mpc_accuracy:.4f}",
            f"{r.float64_accuracy:.4f}",
            f"{r.sklearn_accuracy:.4f}",
            f"{r.offline_s:.2f}",
            f"{r.online_s:.2f}",
            str(r.online_rounds),
            f"{r.online_mb_per_party:.1f}",
            f"{r.lan_s:.2f}",
            f"{r.wan_s:.1f}",
            REPORTED["lan_seconds"],
            REPORTED["wan_seconds"],
            REPORTED["accuracy"],
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--n", type=int, default=10_000, help="synthetic rows")
    parser.add_argument("--d", type=int, default=784, help="synthetic features")
    parser.add_argument("--epochs", type=int, default=10, help="epochs on digits")
    parser.add_argument("--synthetic-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--optimizer",
        choices=("gd", "nesterov"),
        default="gd",
        help="gd = SecureML's mini-batch SGD (default)",
    )
    parser.add_argument("--truncation", choices=("dealer", "local", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows and reports here")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.d, args.epochs, args.synthetic_epochs = 2_000, 32, 2, 1
        args.truncation = "dealer"
    if min(args.n, args.d, args.epochs, args.synthetic_epochs, args.batch_size) < 1:
        parser.error("sizes, epochs and batch size must be positive")
    need = memory_estimate(
        args.n, args.d, 2, MPCProtocol(TrainingSpec(task="logistic")).options.prefetch_words
    )
    print(
        f"synthetic {args.n} x {args.d}: estimated peak memory {need / 1e9:.2f} GB "
        f"(cap {MEMORY_CAP_BYTES / 1e9:.0f} GB)"
    )
    if need > MEMORY_CAP_BYTES:
        print("refused: the shape does not fit the memory cap; lower --n or --d", file=sys.stderr)
        return 2
    modes = ("dealer", "local") if args.truncation == "both" else (args.truncation,)
    rows: list[Row] = []
    reports: list[dict[str, Any]] = []
    started = time.perf_counter()
    for mode in modes:
        for task, data, epochs in (
            ("digits even/odd", digits_data(args.seed), args.epochs),
            ("synthetic", synthetic_data(args.n, args.d, args.seed), args.synthetic_epochs),
        ):
            row, report = run_task(
                task,
                data,
                epochs=epochs,
                batch_size=args.batch_size,
                truncation=mode,
                optimizer=args.optimizer,
                seed=args.seed,
            )
            rows.append(row)
            reports.append(report.as_dict())
    print()
    print(
        "SecureML-style 2-party logistic regression (in-process simulation; projections "
        "add rounds x RTT and bytes / bandwidth to the measured time)"
    )
    print(_table(rows))
    print(f"\npaper setting: {REPORTED['setting']}; its figures: see README.md")
    print(f"total wall-clock {time.perf_counter() - started:.1f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {"rows": [asdict(r) for r in rows], "reports": reports, "reported": REPORTED},
                fh,
                indent=2,
                default=str,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
