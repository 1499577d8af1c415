"""`PaillierProtocol`: ``backend="paillier"`` of the securecomp estimators.

Training is federated gradient aggregation under packed Paillier, not model code written
against `SecureTensor` (see `securecomp.models.paillier.training` for the protocol and
threat model); inference is the client's encrypted features times the server's plaintext
model (`securecomp.models.paillier.inference`). In one process, `fit` and
`decision_function` are a simulation of the roles: the role objects exchange sealed bytes
over in-process channels, and the report says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import NotFittedError, ParameterError, ShapeMismatchError
from securecomp.models.paillier.config import (
    TWO_HOLDERS_DISCLOSURE,
    PaillierOptions,
    warn_two_holders,
)
from securecomp.models.paillier.driver import simulate_training
from securecomp.models.paillier.gradient import ModelIterates
from securecomp.models.paillier.holder import Holder
from securecomp.models.paillier.inference import (
    InferenceClient,
    InferenceServer,
    model_frac_bits,
)
from securecomp.models.paillier.plan import plan_training
from securecomp.models.paillier.role import KEY_HOLDER, connect_roles
from securecomp.models.paillier.session import decode_aggregate, steps_per_epoch
from securecomp.models.paillier.training import Aggregator, KeyHolder, step_size_disclosure
from securecomp.models.protocol import (
    FitResult,
    ModelProtocol,
    ScoreResult,
    TrainingSpec,
    register_protocol,
)
from securecomp.models.validation import check_spec
from securecomp.net.inproc import make_inprocess_channels
from securecomp.net.report import CostReport
from securecomp.net.stats import CommStats

__all__ = ["PaillierFitState", "PaillierProtocol", "partition_rows"]

FloatArray = npt.NDArray[np.float64]

SIMULATION_LABEL = "simulation of roles in one process over in-process channels"
TRAINING = "paillier federated gradient aggregation"


def partition_rows(
    n_rows: int, n_holders: int, random_state: int | None
) -> list[npt.NDArray[np.intp]]:
    """Row indices of each holder: a shuffled split into ``n_holders`` near-equal parts."""
    if n_rows < n_holders:
        raise ParameterError(
            f"n_samples = {n_rows} rows cannot be split among {n_holders} holders (each "
            "needs at least one row); pass more rows or lower the n_holders option"
        )
    order = np.random.default_rng(random_state).permutation(n_rows)
    return [np.sort(part) for part in np.array_split(order, n_holders)]


def _holder_rngs(random_state: int | None, n: int) -> list[np.random.Generator]:
    seeds = np.random.SeedSequence(random_state).spawn(n)
    return [np.random.default_rng(s) for s in seeds]


@dataclass
class PaillierFitState:
    """What `fit` leaves for inference: the options and a lazily created client."""

    options: PaillierOptions
    client: InferenceClient | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@register_protocol
class PaillierProtocol(ModelProtocol):
    """Federated gradient aggregation under packed Paillier; encrypted-feature inference.

    Training (not SecureTensor model code): ``n_holders`` data holders
    (``options["n_holders"]``, default 4) hold horizontal partitions of ``(X, y)``. Each
    step, every holder computes its local gradient in plaintext (exact sigmoid for the
    logistic loss), quantizes it and encrypts it with the packed encoding (many values per
    ciphertext, headroom for ``n_holders`` summands); an aggregator adds the ciphertexts;
    the key holder decrypts only the sum, updates the model and sends it to the holders.
    The update is `securecomp.models.gd.update` on the steps of `securecomp.models.gd.
    schedule` (gradient descent, or Nesterov with λ_1 = 1), the schedule of
    ``backend="plain"``: with full batches the model is `PlainProtocol`'s up to the
    quantization error (each step's mean gradient is off by less than
    ``n_holders · 2^-scale_bits`` per coordinate). Mini-batches follow the same step and
    momentum schedule, but each holder cuts its own rows, so batches hold other rows than
    the plain backend's.

    The step size is a public parameter every role agrees on before the session (recorded
    in the ledger). The estimators' default ``learning_rate="auto"`` computes it from the
    pooled ``X`` (1 / the largest eigenvalue of ``ZᵀZ / n``), which no single party holds
    in a federated deployment: that is a convenience of this one-process simulation, and a
    deployment must agree on the step in advance (it is itself a function of all the
    holders' data).

    Who holds which key: the key holder holds the Paillier secret key (3072-bit modulus by
    default, about 128-bit security; 2048 allowed, about 112-bit); the aggregator and the
    holders hold the public key only.

    Who learns what (recorded in each run's leakage ledger): the key holder learns the
    total row count and, at every step, the aggregate gradient of all holders and the total
    batch size; each holder learns the total row count and every broadcast model (hence
    the aggregate gradients); the aggregator learns only ciphertexts, sizes and the number
    of steps. The aggregator and the key holder must not collude (together they could
    decrypt one holder's gradient); roles are semi-honest. With ``n_holders=2`` the
    aggregate hides nothing between the two holders: each learns the other's row count
    (``n`` minus its own) and, every step, the other's exact quantized gradient (the
    aggregate, from consecutive models, minus its own); `fit` warns and the holders'
    ledger entries say so. Use at least 3 holders.

    Inference: the client encrypts its features under its own key; the server computes
    encrypted scores with its plaintext model and learns only the query's shape; the
    client learns its scores (which, for ``d + 1`` independent rows, determine a linear
    model).

    ``simulate=True`` runs the same holders, quantization, stochastic rounding and updates
    in plaintext (the integer sums the key holder would decrypt are formed directly); with
    the same ``random_state`` it gives exactly the encrypted run's model.
    """

    name = "paillier"
    supports_simulate = True

    def __init__(self, spec: TrainingSpec, *, simulate: bool = False) -> None:
        super().__init__(spec, simulate=simulate)
        check_spec(spec)  # the estimator's checks, also for a spec built by hand
        self.options = PaillierOptions.from_mapping(spec.options)

    # --- input checks ---------------------------------------------------------------------

    def _check_xy(self, X: Any, y: Any) -> tuple[FloatArray, FloatArray]:
        Xa = np.asarray(X, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        if Xa.ndim != 2 or ya.ndim != 1 or Xa.shape[0] != ya.shape[0] or Xa.shape[1] < 1:
            raise ShapeMismatchError(
                f"fit needs X of shape (n, d) and y of shape (n,), got {Xa.shape} and {ya.shape}"
            )
        if not (np.isfinite(Xa).all() and np.isfinite(ya).all()):
            raise ParameterError("X and y must be finite (no NaN or inf)")
        if self.spec.task == "logistic" and not np.isin(ya, (0.0, 1.0)).all():
            raise ParameterError("logistic regression needs labels encoded as 0 and 1")
        return Xa, ya

    def _holders(self, X: FloatArray, y: FloatArray, report: CostReport) -> list[Holder]:
        parts = partition_rows(X.shape[0], self.options.n_holders, self.spec.random_state)
        rngs = _holder_rngs(self.spec.random_state, len(parts))
        return [
            Holder(i, X[rows], y[rows], rng=rng, ledger=report.leakage)
            for i, (rows, rng) in enumerate(zip(parts, rngs, strict=True))
        ]

    # --- training -------------------------------------------------------------------------

    def fit(self, X: FloatArray, y: FloatArray) -> FitResult:
        """Train by federated gradient aggregation (see the class docstring).

        Raises
        ------
        ShapeMismatchError
            ``X`` not 2-d, ``y`` not 1-d, or different numbers of rows.
        ParameterError
            NaN or inf, labels other than 0/1 (logistic), fewer rows than holders, bad
            options.
        InsecureParameterError
            ``key_bits`` below 2048 outside ``insecure_test_parameters()``.

        Warns
        -----
        UserWarning
            ``n_holders == 2``: each holder learns the other's row count and gradients.
        RuntimeWarning
            Gradient values were clipped.
        """
        X, y = self._check_xy(X, y)
        warn_two_holders(self.options.n_holders, stacklevel=2)
        if self.simulate:
            return self._fit_plain(X, y)
        o = self.options
        report = CostReport(protocol=f"{TRAINING} ({SIMULATION_LABEL})")
        with report.timer("key generation"), warnings.catch_warnings():
            # fit warns once itself (below), with the caller's location.
            warnings.filterwarnings("ignore", message="n_holders=2", category=UserWarning)
            key_holder = KeyHolder(self.spec, o, X.shape[1], ledger=report.leakage)
        aggregator = Aggregator(ledger=report.leakage)
        holders = self._holders(X, y, report)
        stats = simulate_training(key_holder, aggregator, holders)
        report.comm, report.rounds = stats, stats.rounds
        report.phases["key holder"] = key_holder.seconds
        report.phases["aggregator"] = aggregator.seconds
        # Holders work in parallel in a deployment: the slowest one is on the critical path.
        report.phases["holders (slowest)"] = max(h.seconds for h in holders)
        clipped = sum(h.n_clipped for h in holders)
        metrics = {
            "roles": SIMULATION_LABEL,
            "key_bits": key_holder.backend.key.bits,
            "security": str(key_holder.backend.key.security),
            "n_holders": o.n_holders,
            "steps": key_holder.steps,
            "holders_seconds_total": sum(h.seconds for h in holders),
            "clipped_values": clipped,
        }
        report.metrics.update(metrics)
        self._warn_clipped(clipped)
        return FitResult(
            coef=key_holder.coef,
            intercept=key_holder.intercept,
            n_iter=self.spec.max_iter,
            report=report,
            state=PaillierFitState(options=o, metrics=metrics),
        )

    def _fit_plain(self, X: FloatArray, y: FloatArray) -> FitResult:
        o, spec = self.options, self.spec
        report = CostReport(protocol=f"{TRAINING} (plaintext simulation)")
        holders = self._holders(X, y, report)
        n, d = X.shape
        s = steps_per_epoch(n, spec.batch_size)
        for h in holders:
            h.configure(task=spec.task, n_features=d, fit_intercept=spec.fit_intercept, options=o)
            h.schedule(n, s)
        model = ModelIterates(spec, d + int(spec.fit_intercept), s)
        with report.timer("plaintext simulation"):
            for t in range(1, model.n_steps + 1):
                point = model.point
                sums = np.sum([h.quantized_update(point, t) for h in holders], axis=0)
                model.apply(*decode_aggregate(sums, o, n / s))
        report.leakage.record(KEY_HOLDER, step_size_disclosure(spec.learning_rate), "setup")
        report.leakage.record(
            KEY_HOLDER,
            "(simulated) the total row count and the aggregate gradient of every step",
            "simulation",
        )
        if o.n_holders == 2:
            for h in holders:
                report.leakage.record(h.name, f"(simulated) {TWO_HOLDERS_DISCLOSURE}", "simulation")
        clipped = sum(h.n_clipped for h in holders)
        report.metrics.update({"roles": "plaintext simulation (nothing encrypted)",
                               "steps": spec.max_iter * s, "clipped_values": clipped})
        self._warn_clipped(clipped)
        params = model.params
        return FitResult(
            coef=params[params.size - d :],
            intercept=float(params[0]) if spec.fit_intercept else 0.0,
            n_iter=spec.max_iter,
            report=report,
            state=PaillierFitState(options=o, metrics=dict(report.metrics)),
        )

    @staticmethod
    def _warn_clipped(clipped: int) -> None:
        if clipped:
            warnings.warn(
                f"{clipped} gradient values were clipped during training; raise the 'clip' "
                "option (with fewer scale_bits or more value_bits) or lower the learning rate",
                RuntimeWarning,
                stacklevel=3,
            )

    # --- inference ------------------------------------------------------------------------

    def decision_function(self, fitted: FitResult, X: FloatArray) -> ScoreResult:
        """Scores of ``X``: the client encrypts, the server multiplies by its plaintext model.

        Raises
        ------
        NotFittedError
            ``fitted`` is not a result of this protocol's `fit`.
        ShapeMismatchError
            ``X`` is not 2-d with the fitted number of features.
        """
        if not isinstance(fitted, FitResult) or not isinstance(fitted.state, PaillierFitState):
            raise NotFittedError("decision_function needs the FitResult of PaillierProtocol.fit")
        coef = np.asarray(fitted.coef, dtype=np.float64)
        Xa = np.asarray(X, dtype=np.float64)
        if Xa.ndim != 2 or Xa.shape[1] != coef.size:
            raise ShapeMismatchError(
                f"X must have shape (m, {coef.size}) for this model, got {Xa.shape}"
            )
        if not np.isfinite(Xa).all():
            raise ParameterError("X must be finite (no NaN or inf)")
        state: PaillierFitState = fitted.state
        # This protocol's options (the estimator passes the same ones as for fit).
        o = self.options
        if self.simulate:
            return self._scores_plain(coef, fitted.intercept, Xa, o)
        report = CostReport(protocol=f"paillier encrypted inference ({SIMULATION_LABEL})")
        server = InferenceServer(
            coef, fitted.intercept, layout=o.inference_layout, ledger=report.leakage
        )
        client = state.client
        if (
            client is None
            or client.backend.key.bits != o.key_bits
            or client.frac_bits != o.inference_frac_bits
        ):
            # The client's key pair is generated once and kept with the fitted model.
            with report.timer("client key generation"):
                client = InferenceClient(key_bits=o.key_bits, frac_bits=o.inference_frac_bits)
            state.client = client
        client.ledger = report.leakage
        client.seconds = 0.0
        connect_roles(server, client)
        ch_server, ch_client = make_inprocess_channels(2)
        ch_server.send(1, server.offer(), tag="offer")
        ch_client.send(0, client.query(_bytes(ch_client.recv(0, tag="offer")), Xa), tag="query")
        ch_server.send(1, server.answer(_bytes(ch_server.recv(1, tag="query"))), tag="scores")
        scores = client.read_scores(_bytes(ch_client.recv(0, tag="scores")))
        stats = CommStats.merge([ch_server.stats, ch_client.stats])
        report.comm, report.rounds = stats, stats.rounds
        report.phases["client"] = client.seconds
        report.phases["server"] = server.seconds
        report.metrics.update(
            {
                "roles": SIMULATION_LABEL,
                "layout": o.inference_layout,
                "key_bits": client.backend.key.bits,
                "security": str(client.backend.key.security),
                "model_frac_bits": server.frac_bits,
                "headroom_bits": server.headroom_bits,
            }
        )
        return ScoreResult(scores=scores, report=report)

    def _scores_plain(
        self, coef: FloatArray, intercept: float, X: FloatArray, o: PaillierOptions
    ) -> ScoreResult:
        report = CostReport(protocol="paillier encrypted inference (plaintext simulation)")
        model = np.append(coef, intercept)
        f = model_frac_bits(model)[0] if o.inference_layout == "packed" else 20
        with report.timer("plaintext simulation"):
            xq = np.ldexp(np.rint(np.ldexp(X, o.inference_frac_bits)), -o.inference_frac_bits)
            wq = np.ldexp(np.rint(np.ldexp(model, f)), -f)
            scores = xq @ wq[:-1] + wq[-1]
        report.metrics["roles"] = "plaintext simulation (nothing encrypted)"
        return ScoreResult(scores=scores, report=report)

    # --- planning -------------------------------------------------------------------------

    def plan(self, X_shape: tuple[int, int]) -> Mapping[str, Any]:
        """Ciphertexts, bytes and estimated time of `fit` and inference on ``X_shape``."""
        return plan_training(self.spec, self.options, X_shape)


def _bytes(got: object) -> bytes:
    if not isinstance(got, bytes):
        raise ParameterError(f"expected message bytes, got {type(got).__name__}")
    return got
