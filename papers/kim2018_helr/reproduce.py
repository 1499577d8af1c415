"""Kim, Song, Kim, Lee, Cheon, "Logistic regression model training based on the approximate
homomorphic encryption", BMC Med. Genomics 11(Suppl 4):83, 2018 (iDASH 2017 Track 3).

The paper's task shape: 1,579 samples x 18 features, binary outcome, Nesterov's accelerated
gradient on CKKS ciphertexts with a least-squares polynomial sigmoid (degrees 3 and 7).
The iDASH data set is not public here, so the data are **synthetic, of the same shape**:
18 correlated Gaussian features (a random covariance), labels drawn from a logistic model
with random weights, features standardized with the training fold's statistics.

For each sigmoid degree the script runs ``--folds``-fold cross-validation (stratified) of
`securecomp.models.ckks.CKKSProtocol` (secure planned parameters, N = 8192, 128-bit; the
server trains on column-packed ciphertexts, the key holder refreshes once per step) and
reports the wall-clock time (key generation and public-context transfer once, then per fold
data encryption and training), the accuracy and AUC of the key holder's model on the
held-out fold, and, for comparison, the same algorithm and polynomial in float64 and
scikit-learn's ``LogisticRegression``.

Usage::

    python papers/kim2018_helr/reproduce.py                # 5 folds, degrees 3 and 7
    python papers/kim2018_helr/reproduce.py --folds 1      # one 80/20 split (quick)
    python papers/kim2018_helr/reproduce.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from securecomp.models.ckks import CKKSProtocol, CKKSSession
from securecomp.models.protocol import TrainingSpec

N_SAMPLES, N_FEATURES = 1579, 18


def synthetic_idash_shape(seed: int = 2017) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic data of the iDASH 2017 shape (1,579 x 18, binary outcome)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(N_FEATURES, N_FEATURES))
    cov = a @ a.T / N_FEATURES + 0.5 * np.eye(N_FEATURES)
    X = rng.multivariate_normal(np.zeros(N_FEATURES), cov, size=N_SAMPLES)
    w = rng.normal(scale=0.4, size=N_FEATURES)
    p = 1.0 / (1.0 + np.exp(-(X @ w - 0.3)))
    y = (rng.random(N_SAMPLES) < p).astype(float)
    return X, y


def _folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    idx = np.arange(y.size)
    if k == 1:
        tr, te = train_test_split(idx, test_size=0.2, stratify=y, random_state=seed)
        return [(tr, te)]
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(idx, y))


def run(
    degree: int, folds: int, epochs: int, learning_rate: float, interval: float
) -> dict[str, Any]:
    X, y = synthetic_idash_shape()
    spec_args: dict[str, Any] = {
        "task": "logistic",
        "optimizer": "nesterov",
        "learning_rate": learning_rate,
        "max_iter": epochs,
        "sigmoid_degree": degree,
        "sigmoid_interval": interval,
    }
    splits = _folds(y, folds, seed=0)
    # One key for all folds: keys and the public context (Galois keys) are made once.
    tr0 = splits[0][0]
    scaler = StandardScaler().fit(X[tr0])
    start = time.perf_counter()
    params = CKKSProtocol(TrainingSpec(**spec_args)).prepare(scaler.transform(X[tr0]), y[tr0])
    session = CKKSSession.establish(params.plan.params)
    setup = time.perf_counter() - start
    rows = []
    for tr, te in splits:
        sc = StandardScaler().fit(X[tr])
        Xtr, Xte = sc.transform(X[tr]), sc.transform(X[te])
        proto = CKKSProtocol(TrainingSpec(**spec_args, options={"session": session}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t0 = time.perf_counter()
            fit = proto.fit(Xtr, y[tr])
            seconds = time.perf_counter() - t0
        coef, intercept = proto.float64_reference(Xtr, y[tr])
        sk = LogisticRegression().fit(Xtr, y[tr])
        z = Xte @ fit.coef + fit.intercept
        z_ref = Xte @ coef + intercept
        rows.append(
            {
                "seconds": seconds,
                "accuracy": float(np.mean((z > 0) == (y[te] == 1))),
                "auc": float(roc_auc_score(y[te], z)),
                "float64_accuracy": float(np.mean((z_ref > 0) == (y[te] == 1))),
                "sklearn_accuracy": float(sk.score(Xte, y[te])),
                "sklearn_auc": float(roc_auc_score(y[te], sk.decision_function(Xte))),
                "max_weight_gap": float(
                    max(np.max(np.abs(fit.coef - coef)), abs(fit.intercept - intercept))
                ),
                "refreshes": fit.report.metrics["refreshes"],
                "bytes": fit.report.comm.bytes_sent if fit.report.comm else 0,
                "logits_out_of_range": fit.report.metrics["logits_out_of_range"],
            }
        )
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "logits_out_of_range"}
    return {
        "degree": degree,
        "params": str(session.params),
        "folds": len(rows),
        "epochs": epochs,
        "setup_seconds": setup,
        "per_fold": rows,
        "mean": mean,
        "total_seconds": setup + sum(r["seconds"] for r in rows),
        "sigmoid": fit.report.metrics["sigmoid"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--degrees", type=int, nargs="+", default=[3, 7])
    ap.add_argument("--learning-rate", type=float, default=1.0)
    ap.add_argument("--interval", type=float, default=8.0)
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)
    results = [
        run(d, args.folds, args.epochs, args.learning_rate, args.interval) for d in args.degrees
    ]
    how = "one stratified 80/20 split" if args.folds == 1 else f"{args.folds}-fold CV"
    print(f"synthetic data {N_SAMPLES} x {N_FEATURES}, {how}, {args.epochs} epochs")
    print(
        "| degree | parameters | key setup (s) | train per fold (s) | total (s) | accuracy | AUC "
        "| float64 accuracy | sklearn accuracy | sklearn AUC | max abs w gap |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        m = r["mean"]
        print(
            f"| {r['degree']} | {r['params']} | {r['setup_seconds']:.1f} | {m['seconds']:.1f} | "
            f"{r['total_seconds']:.1f} | {m['accuracy']:.3f} | {m['auc']:.3f} | "
            f"{m['float64_accuracy']:.3f} | {m['sklearn_accuracy']:.3f} | {m['sklearn_auc']:.3f} "
            f"| {m['max_weight_gap']:.1e} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
