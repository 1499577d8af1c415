"""Encrypted batch inference of a CKKS fit: client, server and (for the model) key holder.

Three parties (`securecomp.models.ckks.protocol` docstring): the client encrypts its rows
column-packed under its own key; the server evaluates with the model the key holder
encrypted under the client's public key (or with a released model) and returns encrypted
scores; the client decrypts. With ``simulate=True`` the same arithmetic runs on
`SimulatedCKKSBackend` (levels and quantization, no noise: scores are then a deterministic
function of each row, as scikit-learn's invariance checks require; the noise is below
1e-5 here).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import EncodingOverflowError, NotFittedError
from securecomp.models.approx import PolynomialSigmoid
from securecomp.models.ckks.client import InferenceClient
from securecomp.models.ckks.options import CKKSOptions
from securecomp.models.ckks.plan import plan_inference
from securecomp.models.ckks.simulate import SimulatedCKKSBackend
from securecomp.models.ckks.state import (
    CLIENT,
    EXECUTION,
    SERVER,
    CKKSFitState,
    count_message,
)
from securecomp.models.gd import forward
from securecomp.net.report import CostReport
from securecomp.net.stats import CommStats
from securecomp.params import CKKSParameters

__all__ = ["check_probabilities", "infer_encrypted", "infer_simulated", "inference_params"]


def inference_params(
    options: CKKSOptions, state: CKKSFitState, output: str, rows: int
) -> CKKSParameters:
    """Parameters of an inference client: the given ones if deep enough, else planned."""
    sig = state.cfg.sigmoid
    depth = 1 if output == "logits" or sig is None else 1 + sig.depth
    given = options.inference_params
    if given is not None and given.depth >= depth:
        return given
    return plan_inference(
        rows=rows,
        width=state.coef.shape[0],
        output="logits" if depth == 1 else "probabilities",
        sigmoid_degree=state.cfg.sigmoid.degree if state.cfg.sigmoid else 5,
    ).params


def _client(options: CKKSOptions, state: CKKSFitState, output: str, rows: int) -> InferenceClient:
    params = inference_params(options, state, output, rows)
    client = state.clients.get(params.depth)
    if client is None:
        client = InferenceClient(params)
        state.clients[params.depth] = client
    return client


def infer_encrypted(
    options: CKKSOptions,
    state: CKKSFitState,
    X: NDArray[np.float64],
    output: str,
    model: str,
    report: CostReport,
) -> NDArray[np.float64]:
    """Client encrypts, server evaluates, client decrypts; the report counts the bytes."""
    if state.session is None:
        raise NotFittedError("this fit kept no session")
    server, kh = state.session.server, state.session.key_holder
    client_stats, srv_stats = CommStats(CLIENT), CommStats(SERVER)
    with report.timer("client: key and public context"):
        client = _client(options, state, output, X.shape[0])
        if client.key not in state.registered:
            ctx = client.public_context()
            server.register_client(ctx)
            count_message(client_stats, srv_stats, CLIENT, len(ctx), "ckks.context")
            state.registered.add(client.key)
    if model == "encrypted" and client.key not in state.models_sent:
        with report.timer("key holder: encrypt model for the client"):
            server.load_model(
                kh.model_for_client(client.public_context(), state.coef, state.intercept)
            )
        state.models_sent.add(client.key)
    with report.timer("client: encrypt"):
        query = client.encrypt_query(X, model=model, output=output)
    count_message(client_stats, srv_stats, CLIENT, len(query), "ckks.infer.query")
    with report.timer("server: evaluate"):
        reply = server.evaluate(query)
    count_message(srv_stats, client_stats, SERVER, len(reply), "ckks.infer.scores")
    with report.timer("client: decrypt"):
        scores = client.decrypt_scores(reply)
    report.comm = CommStats.merge([client_stats, srv_stats])
    report.rounds = report.comm.rounds
    report.metrics.update(
        execution=EXECUTION.replace("the key holder and the server", "client and server"),
        params=str(client.params),
        rows=X.shape[0],
        model=model,
        output=output,
    )
    _record_inference(report, X.shape, model)
    return scores


def infer_simulated(
    options: CKKSOptions,
    state: CKKSFitState,
    X: NDArray[np.float64],
    output: str,
    model: str,
    report: CostReport,
) -> NDArray[np.float64]:
    """The inference arithmetic on `SimulatedCKKSBackend`, without noise."""
    sim = SimulatedCKKSBackend(
        inference_params(options, state, output, X.shape[0]),
        rng=np.random.default_rng(0),
        noise=False,
    )
    coef, b = (state.coef, state.intercept)
    if model == "released" and state.released is not None:
        coef, b = state.released.coef, state.released.intercept
    with report.timer("simulation"):
        Xe = sim.encrypt(X)
        W = sim.encrypt(np.broadcast_to(coef, X.shape))
        z = forward(Xe, W) + sim.encrypt(np.full(X.shape[0], b))
        if output == "probabilities" and state.cfg.sigmoid is not None:
            z = z.polyval(state.cfg.sigmoid.coefficients)
        scores = z.decrypt(sim.key)
    report.metrics["execution"] = "plaintext simulation (simulate=True)"
    _record_inference(report, X.shape, model)
    return np.asarray(scores, dtype=np.float64)


def _record_inference(report: CostReport, shape: tuple[int, ...], model: str) -> None:
    report.leakage.record(CLIENT, "the scores of its own rows", "inference")
    report.leakage.record(
        SERVER,
        f"query shape ({shape[0]} rows in blocks of N/2, {shape[1]} features); "
        "ciphertexts only" + ("" if model == "encrypted" else "; it holds the released model"),
        "inference",
    )


def check_probabilities(
    scores: NDArray[np.float64],
    sigmoid: PolynomialSigmoid,
    policy: Literal["warn", "raise"],
    report: CostReport,
) -> None:
    """Probabilities beyond [0, 1] by more than the fit error betray logits outside [-B, B].

    The client sees only the polynomial's values; outside the interval they leave [0, 1]
    (the polynomial diverges), which is how it detects those rows at decryption.
    """
    eps = sigmoid.max_error + 1e-3
    bad = (scores < -eps) | (scores > 1.0 + eps)
    fraction = float(np.mean(bad))
    report.metrics["probabilities_out_of_range"] = fraction
    if not np.any(bad):
        return
    text = (
        f"{fraction:.1%} of rows ({int(np.sum(bad))} of {bad.size}) got probabilities outside "
        f"[0, 1]: their logits are outside the polynomial sigmoid's interval "
        f"[-{sigmoid.interval:g}, {sigmoid.interval:g}], where it diverges from the sigmoid; "
        "ask for logits instead, or train with a wider sigmoid_interval"
    )
    if policy == "raise":
        raise EncodingOverflowError(text)
    warnings.warn(text, RuntimeWarning, stacklevel=3)
