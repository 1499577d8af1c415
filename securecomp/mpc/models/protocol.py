"""``backend="mpc"``: linear and logistic regression trained jointly on secret shares.

The `ModelProtocol` behind ``securecomp.models.LinearRegression(backend="mpc")`` and
``LogisticRegression(backend="mpc")`` (registered through the
``securecomp.models.protocols`` entry-point group, or `register_protocol`). The training
is SecureML's (Mohassel and Zhang, "SecureML: A System for Scalable Privacy-Preserving
Machine Learning", IEEE S&P 2017, section 4): mini-batch (or full-batch) gradient descent
on additive shares over Z_2^64 with Beaver matrix products and fixed-point truncation,
SecureML's piecewise sigmoid for logistic regression, and Nesterov's method as an option
(`securecomp.models.gd`). The parties' programs are in `securecomp.mpc.models.program`;
this module is the driver that runs them with `securecomp.mpc.run_local` (every party a
thread of this process, over in-memory channels: a labelled simulation).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import (
    EncodingOverflowError,
    ParameterError,
    ShapeMismatchError,
)
from securecomp.models.protocol import FitResult, ModelProtocol, ScoreResult, TrainingSpec
from securecomp.models.validation import check_plan_shape, check_spec
from securecomp.mpc.models.options import MPCOptions, parse_options
from securecomp.mpc.models.plan import TrainPlan, make_plan, spec_words
from securecomp.mpc.models.program import (
    PartyModel,
    ReleaseInput,
    ScoreInput,
    TrainInput,
    release_party,
    score_party,
    train_party,
)
from securecomp.mpc.runner import RunResult, run_local
from securecomp.mpc.session import Truncation
from securecomp.net import CostReport

__all__ = ["MPCModel", "MPCProtocol"]

_SIMULATION = (
    "in-process simulation: every computing party and the dealer are threads of one "
    "process over in-memory channels (messages, bytes and rounds are a deployment's)"
)


@dataclass(frozen=True)
class MPCModel:
    """The model an MPC fit leaves behind (`FitResult.state`).

    ``weights`` (intercept first when fitted) if the model was revealed; otherwise
    ``shares``, one additive share per party (ring Z_2^64 with ``frac_bits`` fractional
    bits) and their public ``bound``. In a deployment each party keeps only its own share;
    this in-process simulation holds them all, one per simulated party.
    """

    n_features: int
    intercept: bool
    parties: int
    frac_bits: int
    revealed: bool
    weights: NDArray[np.float64] | None
    shares: tuple[NDArray[np.uint64], ...] | None
    bound: int


def _check_matrix(X: object) -> NDArray[np.float64]:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeMismatchError(f"X must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError("X contains NaN or inf; impute or drop those rows first")
    return arr


def _check_bound(values: NDArray[np.float64], bound: float, what: str, option: str) -> None:
    """A party's own check of its input against the public bound, before sharing it."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    if top > bound:
        raise EncodingOverflowError(
            f"{what} reach |x| = {top:.6g}, beyond the public bound {bound:g} of the MPC "
            f"encoding; standardize the data or raise backend_options[{option!r}]"
        )


def _overflow_advice(exc: EncodingOverflowError) -> None:
    exc.add_note(
        "MPC training: the bound tracker could not guarantee a truncation; lower "
        "backend_options 'feature_bound', 'target_bound' or 'weight_bound', or use a "
        "smaller batch_size"
    )


class MPCProtocol(ModelProtocol):
    """Training and inference by computing parties that never reveal their inputs.

    Setting: ``parties`` computing parties (option, default 2) hold a **horizontal**
    partition of the training rows (each party some rows with all features and labels;
    option ``partition``); vertical partitions are not supported. A trusted dealer, a
    separate party, supplies preprocessing (Beaver triples, truncation pairs, comparison
    material). Runs are **in-process simulations** (`securecomp.mpc.run_local`: threads
    over in-memory channels), labelled so in every report. The party programs
    (`securecomp.mpc.models.program`) are the ones a deployment runs with
    `securecomp.mpc.run_party` over TCP, each process building the same `TrainPlan`
    (`make_plan` with a fixed ``random_state``) and passing only its own rows; that path
    is not exercised by this class.

    Threat model: semi-honest (honest-but-curious) computing parties, any coalition of up
    to n - 1 of them; an honest dealer that colludes with none of them (a dealer colluding
    with a party learns everything that party's peers share). Not covered: malicious
    parties (no MACs; see the active-security engine), a corrupted dealer.

    Who learns what:

    * every computing party: the public parameters (rows per party, number of features,
      the bounds, learning rate, batch schedule and shuffling seed), and, unless
      ``model="shared"``, the trained model (coefficients and intercept), which is
      revealed to all parties at the end. With the polynomial sigmoid, also the number
      of logits outside its interval at each step. Nothing else: every other opened
      value is uniformly masked. Features, labels, gradients and intermediate iterates
      stay secret-shared. The revealed model is itself a function of every party's rows
      (no differential privacy is added: what a model discloses about its training data,
      it discloses here too).
    * the dealer: the number, kinds and shapes of the preprocessing requests (hence the
      data shapes and the number of steps), nothing about the data.
    * inference (`decision_function`): the query party (option ``query_party``) secret-
      shares its rows; only it receives the scores. The others learn the number of rows.
      With a revealed model the query party could score locally; the MPC path matters when
      the model is kept shared (``model="shared"``: Beaver products with the model's
      shares).

    Preconditions (public, agreed before the run): ``feature_bound`` on |x| and, for
    least squares, ``target_bound`` on |y| are checked by each party on its own rows;
    ``weight_bound`` is a claim on every iterate that cannot be checked without revealing
    it (the revealed model is checked against it). With ``learning_rate="auto"`` the
    estimator derives the step from the joint X in the clear (its largest Gram
    eigenvalue), which a deployment would have to agree on publicly instead.

    Step size: SecureML's piecewise sigmoid has slope 1 where the logistic function's is
    at most 1/4, and ``learning_rate="auto"`` assumes the latter; with small mini-batches
    that step can be expansive, and then MPC and float64 runs (which differ by rounding)
    drift apart. A step of ``1 / λmax(ZᵀZ / n)`` (what ``auto`` gives least squares), or
    smaller for batches narrower than the features, keeps them together.

    Options (``TrainingSpec.options``, see `MPCOptions`): ``parties``, ``truncation``
    (``"dealer"`` default, ``"local"`` = SecureML's local truncation, 2 parties),
    ``partition``, ``sigmoid`` (``"piecewise"`` default, ``"poly"``), ``feature_bound``,
    ``target_bound``, ``weight_bound``, ``model`` (``"reveal"`` default, ``"shared"``),
    ``query_party``, ``frac_bits``, ``timeout``, ``prefetch_words``.
    """

    name: ClassVar[str] = "mpc"
    supports_simulate: ClassVar[bool] = False

    def __init__(self, spec: TrainingSpec, *, simulate: bool = False) -> None:
        super().__init__(check_spec(spec), simulate=simulate)
        self.options: MPCOptions = parse_options(spec.options)

    # --- training ------------------------------------------------------------------------

    def make_plan(self, n_rows: int, n_features: int) -> TrainPlan:
        """The public plan (batches, steps, bounds) a fit on ``n_rows x n_features`` follows."""
        return make_plan(self.spec, self.options, self.options.rows_per_party(n_rows), n_features)

    def _split(
        self, X: NDArray[np.float64], y: NDArray[np.float64], rows: tuple[int, ...]
    ) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
        edges = np.cumsum((0, *rows))
        return [(X[a:b], y[a:b]) for a, b in itertools.pairwise(edges)]

    def fit(self, X: NDArray[np.float64], y: NDArray[np.float64]) -> FitResult:
        """Train on ``X`` (n, d) and ``y`` (n,), the rows split among the parties.

        Party ``j`` holds the ``j``-th contiguous block of rows (``partition`` option).

        Raises
        ------
        EncodingOverflowError
            A party's data beyond the public bounds, or bounds the tracker cannot work with.
        ParameterError, ShapeMismatchError
            Bad data or options.
        """
        X = _check_matrix(X)
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (X.shape[0],):
            raise ShapeMismatchError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ParameterError("y contains NaN or inf; drop those rows first")
        if self.spec.task == "logistic" and not np.all((y == 0.0) | (y == 1.0)):
            raise ParameterError("logistic labels must be 0 or 1; map the two classes first")
        opts = self.options
        plan = self.make_plan(X.shape[0], X.shape[1])
        parts = self._split(X, y, plan.rows)
        for j, (Xj, yj) in enumerate(parts):
            _check_bound(Xj, opts.feature_bound, f"party {j}'s features", "feature_bound")
            if self.spec.task == "linear":
                _check_bound(yj, opts.target_bound, f"party {j}'s targets", "target_bound")
        inputs = [TrainInput(plan, Xj, yj) for Xj, yj in parts]
        try:
            run = self._run(train_party, inputs, "mpc-train")
        except EncodingOverflowError as exc:
            _overflow_advice(exc)
            raise
        models: list[PartyModel] = run.results
        report = run.report
        self._describe_fit(report, plan)
        state = self._state(plan, models)
        if state.weights is not None:
            w = state.weights
            top = float(np.max(np.abs(w)))
            report.metrics["max_abs_weight"] = top
            if top > opts.weight_bound:
                warnings.warn(
                    f"the trained model reaches |w| = {top:.4g}, beyond the claimed "
                    f"weight_bound {opts.weight_bound:g}: truncations may have been "
                    "unguaranteed; raise backend_options['weight_bound']",
                    RuntimeWarning,
                    stacklevel=2,
                )
            coef = w[1:] if plan.intercept else w
            intercept = float(w[0]) if plan.intercept else 0.0
        else:
            # Nobody knows the model: FitResult.revealed is False, so the estimator exposes
            # no coef_; predictions go through the shares; release() reveals it.
            coef = np.zeros(plan.n_features)
            intercept = 0.0
        outside = models[0].outside
        if outside:
            total = int(sum(outside))
            report.metrics["logits_outside_interval"] = total
            if total:
                seen = sum(plan.batch_rows(s.batch) for s in plan.steps())
                warnings.warn(
                    f"{total / seen:.1%} of logits ({total} of {seen} over all steps) left "
                    "the polynomial sigmoid's interval; widen sigmoid_interval or use "
                    "sigmoid='piecewise'",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return FitResult(
            coef=np.asarray(coef, dtype=np.float64).copy(),
            intercept=intercept,
            n_iter=plan.epochs,
            report=report,
            state=state,
            revealed=state.revealed,
        )

    def _run(self, program: Any, inputs: list[Any], name: str) -> RunResult:
        opts = self.options
        return run_local(
            program,
            opts.parties,
            inputs=inputs,
            frac_bits=opts.frac_bits,
            truncation=opts.truncation,
            timeout=opts.timeout,
            name=name,
        )

    def _state(self, plan: TrainPlan, models: list[PartyModel]) -> MPCModel:
        if plan.model == "reveal":
            weights = models[0].weights
            if weights is None or any(
                m.weights is None or not np.array_equal(m.weights, weights) for m in models
            ):
                raise ParameterError("the parties revealed different models; the run is corrupt")
            return MPCModel(
                plan.n_features,
                plan.intercept,
                len(models),
                plan.frac_bits,
                True,
                weights.copy(),
                None,
                models[0].bound,
            )
        shares = tuple(np.array(m.share, dtype=np.uint64) for m in models if m.share is not None)
        return MPCModel(
            plan.n_features,
            plan.intercept,
            len(models),
            plan.frac_bits,
            False,
            None,
            shares,
            max(m.bound for m in models),
        )

    def _describe_fit(self, report: CostReport, plan: TrainPlan) -> None:
        opts = self.options
        spec = self.spec
        steps = plan.n_steps
        sigmoid = {
            None: "none (least squares)",
            "piecewise": "SecureML piecewise: relu(z + 1/2) - relu(z - 1/2)",
            "poly": plan.poly.describe() if plan.poly is not None else "polynomial",
        }[plan.sigmoid]
        online = report.comm.per_phase.get("online") if report.comm is not None else None
        report.metrics.update(
            execution=_SIMULATION,
            protocol="SecureML (Mohassel-Zhang 2017, section 4) on additive shares over Z_2^64",
            data_partition="horizontal (each party holds a contiguous block of rows)",
            rows_per_party=list(plan.rows),
            model_output="revealed to every party" if plan.model == "reveal" else "secret-shared",
            sigmoid=sigmoid,
            optimizer=spec.optimizer,
            learning_rate=spec.learning_rate,
            epochs=plan.epochs,
            batch_size=spec.batch_size,
            batches_per_epoch=len(plan.cuts),
            steps=steps,
            shuffle_seed=plan.seed,
            feature_bound=opts.feature_bound,
            weight_bound_claim=opts.weight_bound,
            online_rounds_per_step=online.rounds / steps if online is not None else None,
            online_bytes=online.bytes_sent if online is not None else None,
        )
        public = (
            f"public parameters: rows per party {list(plan.rows)}, {plan.n_features} "
            f"features, bounds (features {opts.feature_bound:g}, weights {opts.weight_bound:g}"
            f"), learning rate {spec.learning_rate:g} (public; if derived from the joint data, "
            "as learning_rate='auto' does, it reveals the largest eigenvalue of Z^T Z / n), "
            f"{len(plan.cuts)} batches per epoch, shuffling seed"
        )
        for p in range(opts.parties):
            report.leakage.record(p, public, "setup")
            if plan.model == "reveal":
                report.leakage.record(
                    p,
                    "the trained model (coefficients and intercept), revealed at the end",
                    "reveal",
                )
            if plan.sigmoid == "poly":
                report.leakage.record(
                    p,
                    "per step, the number of logits outside the polynomial's interval",
                    "range check",
                )

    # --- inference -----------------------------------------------------------------------

    def _model(self, fitted: FitResult) -> MPCModel:
        state = fitted.state
        if not isinstance(state, MPCModel):
            raise ParameterError(
                "this FitResult was not produced by the 'mpc' backend; fit with backend='mpc'"
            )
        if state.parties != self.options.parties:
            raise ParameterError(
                f"the model is held by {state.parties} parties, the options say "
                f"{self.options.parties}; score with the parties that trained it"
            )
        return state

    def decision_function(self, fitted: FitResult, X: NDArray[np.float64]) -> ScoreResult:
        """Scores ``X @ coef + intercept`` computed on shares, revealed to the query party.

        The query party (option ``query_party``) secret-shares ``X``; the product is with
        the public model (revealed) or with the parties' shares of it (``model="shared"``).
        """
        state = self._model(fitted)
        X = _check_matrix(X)
        if X.shape[1] != state.n_features:
            raise ShapeMismatchError(
                f"X has {X.shape[1]} features but the model has {state.n_features}; "
                "pass the same columns as in fit"
            )
        opts = self.options
        _check_bound(X, opts.feature_bound, "the query party's features", "feature_bound")
        q = opts.query_party
        width = state.n_features + int(state.intercept)
        z_bound = max(opts.feature_bound, 1.0) if state.intercept else opts.feature_bound
        inputs = [
            ScoreInput(
                query_party=q,
                shape=(X.shape[0], width),
                intercept=state.intercept,
                z_bound=z_bound,
                X=X if p == q else None,
                weights=state.weights,
                share=None if state.shares is None else state.shares[p],
                bound=state.bound,
            )
            for p in range(state.parties)
        ]
        try:
            run = self._run(score_party, inputs, "mpc-score")
        except EncodingOverflowError as exc:
            _overflow_advice(exc)
            raise
        scores = run.results[q]
        report = run.report
        report.metrics.update(
            execution=_SIMULATION,
            query_party=q,
            model="public (revealed)" if state.revealed else "secret-shared",
            rows=int(X.shape[0]),
        )
        for p in range(state.parties):
            what = (
                "the scores of its own rows"
                if p == q
                else f"the number of rows scored ({X.shape[0]}) and nothing else"
            )
            report.leakage.record(p, what, "predict")
        return ScoreResult(scores=np.asarray(scores, dtype=np.float64), report=report)

    def release(
        self, fitted: FitResult, *, to: Iterable[int] | None = None
    ) -> tuple[NDArray[np.float64], float, CostReport]:
        """Reveal a secret-shared model (``model="shared"``) to the parties ``to`` (all).

        Returns ``(coef, intercept, report)``; the report's ledger records the release.

        Raises
        ------
        ParameterError
            The model was already revealed at the end of training.
        """
        state = self._model(fitted)
        if state.revealed or state.shares is None:
            raise ParameterError(
                "the model was revealed at the end of training (model='reveal'); its "
                "coefficients are coef_ and intercept_"
            )
        targets = tuple(range(state.parties)) if to is None else tuple(int(p) for p in to)
        if not targets or any(not 0 <= p < state.parties for p in targets):
            raise ParameterError(f"release to parties in range({state.parties}), got {targets}")
        inputs = [ReleaseInput(s, state.bound, targets) for s in state.shares]
        run = self._run(release_party, inputs, "mpc-release")
        w = run.results[targets[0]]
        for p in targets:
            run.report.leakage.record(
                p, "the trained model (coefficients and intercept)", "release"
            )
        run.report.metrics["execution"] = _SIMULATION
        coef = w[1:] if state.intercept else w
        intercept = float(w[0]) if state.intercept else 0.0
        return np.asarray(coef, dtype=np.float64), intercept, run.report

    # --- planning ------------------------------------------------------------------------

    def plan(self, X_shape: tuple[int, int]) -> Mapping[str, Any]:
        """Steps, online rounds and dealer material of a fit on data of ``X_shape``.

        Rounds per step count the online layers with the piecewise sigmoid (the polynomial
        adds its products and a range check); material is counted in 64-bit words per
        party and covers what is fetched ahead of the steps.
        """
        n, d = check_plan_shape(X_shape)
        plan = self.make_plan(n, d)
        dealer = self.options.truncation is Truncation.DEALER
        link = 9 if plan.task == "logistic" else 0
        rounds = (2 + link + 2 + 1) if dealer else (1 + link + 1)
        words = sum(spec_words(s) for step in plan.steps() for s in plan.step_specs(step))
        return {
            "protocol": "mpc",
            "parties": self.options.parties,
            "truncation": self.options.truncation.value,
            "rows_per_party": list(plan.rows),
            "batches_per_epoch": len(plan.cuts),
            "steps": plan.n_steps,
            "online_rounds_per_step": rounds,
            # Sharing takes about one layer per data-holding party; the reveal one more.
            "online_rounds_estimate": rounds * plan.n_steps + len(plan.rows) + 1,
            "material_words_per_party": words,
            "material_bytes_per_party": 8 * words,
            "update_shift_bits": plan.update_shift(plan.batch_rows(0)),
            "sigmoid": plan.sigmoid,
            "estimated": "rounds and material only; time depends on the network "
            f"(report.projected); {math.ceil(words / max(self.options.prefetch_words, 1))} "
            "dealer requests",
        }
