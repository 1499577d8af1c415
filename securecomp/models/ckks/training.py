"""The two ways a CKKS fit runs (roles exchanging bytes, or the plaintext simulation),
the error bounds of its weights, and what its report records.

Called by `CKKSProtocol.fit`; see its docstring for the protocol and the threat model.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from securecomp.models.approx import PolynomialSigmoid
from securecomp.models.ckks.bounds import NoiseConstants, step_error, weight_error
from securecomp.models.ckks.keyholder import PlainBatch, RefreshChecks
from securecomp.models.ckks.options import CKKSOptions
from securecomp.models.ckks.plan import TrainingPlan
from securecomp.models.ckks.session import CKKSSession
from securecomp.models.ckks.simulate import SimulatedCKKSBackend
from securecomp.models.ckks.state import EXECUTION, KH, SERVER, Link, count_message
from securecomp.models.gd import (
    Batch,
    DepthBudget,
    GDConfig,
    RefreshingOptimizer,
    Step,
    TensorOptimizer,
    train,
)
from securecomp.models.protocol import TrainingSpec
from securecomp.net.report import CostReport
from securecomp.net.stats import CommStats
from securecomp.params import ErrorModel

__all__ = ["error_bounds", "fit_encrypted", "fit_simulated", "record_fit"]


def fit_encrypted(
    options: CKKSOptions,
    plan: TrainingPlan,
    batches: list[PlainBatch],
    cfg: GDConfig,
    checks: RefreshChecks,
    steps: list[Step],
    report: CostReport,
) -> tuple[NDArray[np.float64], CKKSSession]:
    """Key holder and server exchanging bytes in one process (see the protocol docstring)."""
    kh_stats, srv_stats = CommStats(KH), CommStats(SERVER)
    session = options.session
    if session is None:
        with report.timer("setup: keys and public context"):
            session = CKKSSession.establish(plan.params)
        count_message(kh_stats, srv_stats, KH, session.context_bytes, "ckks.context")
    kh, server = session.key_holder, session.server
    with report.timer("key holder: encrypt data"):
        data = kh.begin_fit(batches, cfg, checks, steps, refresh=options.refresh)
    count_message(kh_stats, srv_stats, KH, len(data), "ckks.fit.data")
    with report.timer("server: load data"):
        server.load_training(data)
    link = Link(kh.handle, kh_stats, srv_stats)
    t0 = time.perf_counter()
    server.train(link)
    total = time.perf_counter() - t0
    report.phases["server: training steps"] = total - link.seconds
    report.phases["key holder: refreshes"] = link.seconds
    report.comm = CommStats.merge([kh_stats, srv_stats])
    report.rounds = report.comm.rounds
    report.metrics["execution"] = EXECUTION
    report.metrics["refreshes"] = kh.refreshes
    return kh.weights(), session


def fit_simulated(
    spec: TrainingSpec,
    options: CKKSOptions,
    plan: TrainingPlan,
    batches: list[PlainBatch],
    cfg: GDConfig,
    checks: RefreshChecks,
    report: CostReport,
) -> NDArray[np.float64]:
    """The same run on `SimulatedCKKSBackend`: no keys, the key holder's checks kept."""
    # Not secret, and fixed by default so that a refit gives the same model.
    seed = options.noise_seed
    if seed is None:
        seed = spec.random_state if spec.random_state is not None else 0
    sim = SimulatedCKKSBackend(plan.params, rng=np.random.default_rng(seed))
    with report.timer("simulation"):
        tensors = [Batch(sim.encrypt(Z), sim.encrypt(y), r) for Z, y, r in batches]
        width = batches[0][0].shape[1]
        if options.refresh == "never":
            zero = sim.encrypt(np.zeros(width))
            budget = DepthBudget(
                lambda t: t.meta.get("level"), plan.params.depth, plan.step_depth.total
            )
            opt_t = TensorOptimizer(zero, zero, cfg, budget=budget)
            train(tensors, cfg, opt_t)
            w = np.asarray(opt_t.w.decrypt(sim.key))
            refreshes = 0
        else:
            opt = RefreshingOptimizer(
                width,
                cfg,
                encrypt=sim.encrypt,
                decrypt=lambda t: t.decrypt(sim.key),
                check=checks.check,
                on_weights=checks.on_weights,
            )
            train(tensors, cfg, opt)
            w, refreshes = opt.w.copy(), opt.refreshes
    report.metrics["execution"] = (
        "plaintext simulation (simulate=True): no encryption; levels, quantization and "
        "drift of the planned primes, and Laplace noise from the CKKS error model"
    )
    report.metrics["refreshes"] = refreshes
    return w


def error_bounds(
    options: CKKSOptions,
    plan: TrainingPlan,
    cfg: GDConfig,
    checks: RefreshChecks,
    steps: list[Step],
) -> dict[str, float]:
    """Bounds on the final weights' decryption error (heuristic and worst case)."""
    if options.refresh == "never" or not checks.inputs:
        return {}
    out = {}
    for label, model in (
        ("heuristic", ErrorModel.HEURISTIC),
        ("worst-case", ErrorModel.WORST_CASE),
    ):
        nc = NoiseConstants.of(plan.params, model)
        errs = [
            step_error(
                plan.params,
                checks.inputs[st.index],
                sigmoid=cfg.sigmoid,
                model=model,
                constants=nc,
            )
            for st in steps
        ]
        out[label] = weight_error(errs, steps, cfg.learning_rate)
    return out


def record_fit(
    options: CKKSOptions,
    report: CostReport,
    plan: TrainingPlan,
    cfg: GDConfig,
    checks: RefreshChecks,
    steps: list[Step],
    bounds: dict[str, float],
    sigmoid: PolynomialSigmoid | None,
) -> None:
    """The leakage ledger and the metrics of a fit."""
    rows = ", ".join(f"{r}->{p}" for r, p in zip(plan.batch_rows, plan.padded_rows, strict=True))
    report.leakage.record(
        SERVER,
        f"public configuration (task {cfg.task}, optimizer {cfg.optimizer}, step size "
        f"{cfg.learning_rate:g}, {cfg.epochs} epochs, l2 {cfg.l2:g}, the sigmoid polynomial); "
        f"shapes: batches of rows (real->padded) {rows}, {plan.width} columns; "
        f"{len(steps)} steps; ciphertexts only (IND-CPA under RLWE)",
        "fit",
    )
    if options.refresh == "never":
        report.leakage.record(KH, "the final weights (one decryption)", "fit end")
    else:
        for st in steps:
            report.leakage.record(
                KH,
                f"decrypted weights at refresh {st.index + 1} (it decrypts the gradient sum "
                f"of step {st.index + 1}; with its previous weights, the new weights)",
                f"refresh {st.index + 1}",
            )
    report.leakage.record(KH, "the trained model (kept; released only by release(s=...))", "fit")
    worst = checks.worst_logits()
    m = report.metrics
    m.update(
        params=str(plan.params),
        chain=list(plan.params.coeff_mod_bit_sizes),
        security_bits=plan.params.security_bits,
        step_depth=plan.step_depth.total,
        steps=len(steps),
        refresh_policy=options.refresh,
        gradient_capacity=plan.capacity_at_decryption,
        max_abs_gradient_sum=checks.max_gradient,
        plan_estimated_seconds=sum(plan.estimated_seconds.values()),
        weight_error_bound=bounds,
    )
    if sigmoid is not None:
        m["sigmoid"] = sigmoid.describe()
        m["logits_out_of_range"] = (
            {"steps": 0}
            if worst is None
            else {
                "steps": sum(1 for r in checks.logits if not r.ok),
                "worst_fraction": worst.fraction,
                "max_abs_logit": worst.max_abs,
            }
        )
