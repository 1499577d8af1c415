"""Releasing a CKKS fit's model to the server: noise flooding sized from the error bound.

The key holder's weights carry the CKKS errors of every gradient sum it decrypted, which
depend on the secret key (Li-Micciancio, EUROCRYPT 2021): they leave only through
`securecomp.he.ckks.release` (discrete Gaussian flooding, Li-Micciancio-Schultz-Sorrell,
CRYPTO 2022) with the bound of `securecomp.models.ckks.bounds`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ParameterError
from securecomp.he.ckks import VECTOR, flooding_std
from securecomp.he.ckks import release as he_release
from securecomp.models.ckks.options import CKKSOptions
from securecomp.models.ckks.state import (
    SERVER,
    CKKSFitState,
    ReleasedModel,
    check_inputs,
    to_data_units,
)
from securecomp.models.protocol import TrainingSpec
from securecomp.net.report import CostReport
from securecomp.params import check_statistical_security

__all__ = ["release_model"]


def release_model(
    spec: TrainingSpec,
    options: CKKSOptions,
    state: CKKSFitState,
    *,
    s: int,
    n_releases: int,
    X: NDArray[np.float64] | None,
    y: NDArray[np.float64] | None,
) -> ReleasedModel:
    """See `CKKSProtocol.release`."""
    s = check_statistical_security(s, "release statistical parameter s")
    kind = options.release_bound
    if kind not in state.error_bound:
        raise ParameterError("this fit has no error bound to size the flooding from")
    t = state.error_bound[kind]
    report = CostReport(protocol="ckks release")
    with report.timer("key holder: flood and release"):
        if state.session is not None:
            kh = state.session.key_holder
            tensor = kh.backend.encrypt(state.w_train, layout=VECTOR)
            rel = he_release(tensor, kh.context, error_bound=t, n_releases=n_releases, s=s)
            values, sigma = rel.values, rel.noise_std
            report.metrics["release"] = rel.note
        else:
            sigma = flooding_std(t, s=s, n_releases=n_releases, n_values=state.width)
            rng = np.random.default_rng(options.noise_seed)
            values = state.w_train + rng.normal(0.0, sigma, state.width)
            report.metrics["release"] = "simulated flooding (numpy noise, no key)"
    coef, intercept = to_data_units(values, state.target, spec.fit_intercept)
    if state.session is not None:
        state.session.server.set_released_model(coef, intercept)
    report.leakage.record(
        SERVER, f"the model, released with noise flooding (σ = {sigma:.3g}, s = {s})", "release"
    )
    report.metrics.update(noise_std=sigma, error_bound=t, bound_kind=kind, s=s)
    if state.target is not None:
        report.leakage.record(
            SERVER, "the target's mean and standard deviation (the model's units)", "release"
        )
    if X is not None and y is not None:
        Xa, ya = check_inputs(X, y, spec.task)
        report.metrics.update(_compare(Xa, ya, state, coef, intercept, spec.task))
    released = ReleasedModel(coef, intercept, sigma, t, s, report)
    state.released = released
    return released


def _compare(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    state: CKKSFitState,
    coef: NDArray[np.float64],
    intercept: float,
    task: str,
) -> dict[str, float]:
    ours = X @ state.coef + state.intercept
    released = X @ coef + intercept
    if task == "logistic":
        return {
            "key_holder_accuracy": float(np.mean((ours > 0) == (y == 1.0))),
            "released_accuracy": float(np.mean((released > 0) == (y == 1.0))),
        }
    return {
        "key_holder_mse": float(np.mean((ours - y) ** 2)),
        "released_mse": float(np.mean((released - y) ** 2)),
    }
