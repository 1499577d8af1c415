"""`CKKSProtocol`: ``backend="ckks"``, training and inference on CKKS ciphertexts.

See the class docstring for the protocol and its threat model; `securecomp.models.ckks.plan`
for the depth and parameters; `securecomp.models.ckks.simulate` for ``simulate=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import NotFittedError, ParameterError, ShapeMismatchError
from securecomp.models.approx import PolynomialSigmoid, fit_sigmoid
from securecomp.models.ckks.inference import (
    check_probabilities,
    infer_encrypted,
    infer_simulated,
)
from securecomp.models.ckks.keyholder import RefreshChecks
from securecomp.models.ckks.options import CKKSOptions
from securecomp.models.ckks.plan import (
    TrainingPlan,
    padded_rows,
    plan_inference,
    plan_training,
)
from securecomp.models.ckks.publish import release_model
from securecomp.models.ckks.state import (
    CKKSFitState,
    Preparation,
    ReleasedModel,
    check_features,
    check_inputs,
    to_data_units,
)
from securecomp.models.ckks.training import error_bounds, fit_encrypted, fit_simulated, record_fit
from securecomp.models.gd import (
    Batch,
    GDConfig,
    RefreshingOptimizer,
    make_batches,
    schedule,
    train,
)
from securecomp.models.protocol import (
    FitResult,
    ModelProtocol,
    ScoreResult,
    TrainingSpec,
    register_protocol,
)
from securecomp.models.validation import check_plan_shape, check_spec
from securecomp.net.report import CostReport

__all__ = [
    "CKKSFitState",
    "CKKSProtocol",
    "Preparation",
    "ReleasedModel",
    "check_features",
    "check_inputs",
]

#: Feature magnitude assumed by `CKKSProtocol.plan` without data (standardized features).
_ASSUMED_X = 4.0


class CKKSProtocol(ModelProtocol):
    """Linear and logistic regression trained and evaluated on CKKS ciphertexts.

    Roles and keys
    --------------
    * **Key holder** (the data owner): generates the CKKS key; holds the secret key, the
      plaintext data and the decrypted model.
    * **Server** (untrusted, semi-honest): holds the public context only (with Galois keys
      for slot sums); trains on ciphertexts; evaluates queries.
    * **Inference client**: its own key (no Galois keys); its features and its scores.

    Training (Kim et al., BMC Med. Genomics 2018; Han et al., AAAI 2019)
    ----------------------------------------------------------------------
    1. The key holder standardizes nothing (pass standardized features); for least
       squares it centres and scales the target (a public affine map, undone at the end).
    2. It encrypts each fixed mini-batch column-packed (one ciphertext per feature and block
       of N/2 rows; rows padded with zeros to a power of two) and the labels, and sends
       them with the public configuration (task, optimizer, step size, epochs, l2, the
       least-squares polynomial sigmoid of `securecomp.models.approx`).
    3. Each step, the server computes on ciphertexts the logits ``(Z * V).sum(axis=1)``
       (V: the look-ahead weights replicated over the rows), the polynomial sigmoid, the
       residual and the gradient sum ``Zᵀ r`` (products and slot sums): the step uses the
       whole chain (depth planned ahead, `securecomp.models.ckks.plan`).
    4. Refresh: the server sends the gradient sum; the key holder decrypts it, checks its
       range (and the logits of its own rows: outside [-B, B] it warns with the fraction of
       rows, or raises with ``out_of_range="raise"``), updates w and v in float64 (the
       ``1/m`` scaling after the slot sum), and sends the next look-ahead weights,
       encrypted. Refreshes are counted; with ``refresh="never"`` the server runs every
       step itself if the planner finds a chain for the whole run (`ParameterError` if not).
    5. The key holder keeps the decrypted model; ``release(fitted, s=...)`` releases it to
       the server through noise flooding (Li-Micciancio 2021; LMSS 2022).

    Inference: the client encrypts its rows column-packed; the server evaluates
    ``(X * W).sum(axis=1) + b`` with the model the key holder encrypted under the client's
    public key (``inference_model="encrypted"``, the default), or ``X @ w + b`` with the
    released model; it returns encrypted logits (or probabilities through the polynomial,
    `infer`); the client decrypts.

    Who learns what
    ---------------
    * server: the public configuration, shapes (rows per batch, padded rows, features),
      the number of steps, ciphertext levels; no value (IND-CPA under RLWE);
    * key holder: its own data, the weights after every step (it decrypts the gradient
      sums; with its previous weights these are the new weights), the model;
    * inference client: the scores of its own rows (``d + 1`` queries determine a linear
      model: inherent to any scoring service);
    * after ``release``: the server learns the flooded model.
    Not protected: against a malicious server (wrong results, not privacy: it could
    return any ciphertext; the key holder's range checks catch gross deviations only);
    collusion of the server with a client reveals nothing more than each already learns
    about the other's data under RLWE. ``fit`` in one process is a simulation of the roles
    (they exchange bytes only); `securecomp.models.ckks.session` runs them over channels.
    """

    name: ClassVar[str] = "ckks"
    supports_simulate: ClassVar[bool] = True

    def __init__(self, spec: TrainingSpec, *, simulate: bool = False) -> None:
        super().__init__(check_spec(spec), simulate=simulate)
        if spec.task == "logistic":
            fit_sigmoid(spec.sigmoid_degree, spec.sigmoid_interval)  # validates both
        self.options = CKKSOptions.from_mapping(spec.options)
        if simulate and self.options.session is not None:
            raise ParameterError("a simulation uses no keys: drop the 'session' option")
        self._last: FitResult | None = None

    # --- preparation -----------------------------------------------------------------------

    def _sigmoid(self) -> PolynomialSigmoid | None:
        if self.spec.task != "logistic":
            return None
        s = self.spec
        return fit_sigmoid(
            s.sigmoid_degree, s.sigmoid_interval, weighting=self.options.sigmoid_weighting
        )

    def _config(self, sigmoid: PolynomialSigmoid | None) -> GDConfig:
        s = self.spec
        return GDConfig(
            task=s.task,
            optimizer=s.optimizer,
            learning_rate=s.learning_rate,
            epochs=s.max_iter,
            l2=s.l2,
            sigmoid=sigmoid,
            intercept=s.fit_intercept,
        )

    def _residual_bound(self, sigmoid: PolynomialSigmoid | None) -> float:
        if sigmoid is None:
            return self.options.residual_bound
        # Logits may overshoot the interval by half its width before the key holder stops.
        return sigmoid.bound(1.5 * sigmoid.interval) + 1.0

    def _batch_rows(self, n: int) -> list[int]:
        b = self.spec.batch_size
        if b is None or b >= n:
            return [n]
        return [min(b, n - i) for i in range(0, n, b)]

    def _plan(self, rows: list[int], width: int, grad: float, value: float) -> TrainingPlan:
        o = self.options
        params = o.session.params if o.session is not None else o.params
        return plan_training(
            task=self.spec.task,
            sigmoid_degree=self.spec.sigmoid_degree,
            epochs=self.spec.max_iter,
            batch_rows=rows,
            width=width,
            gradient_bound=grad,
            value_bound=value,
            refresh=o.refresh,
            params=params,
            security_bits=o.security_bits,
        )

    def prepare(self, X: NDArray[np.float64], y: NDArray[np.float64]) -> Preparation:
        """The data owner's plaintext preparation: link, target map, plan, padded batches.

        Used by `fit`, by `float64_reference`, and by callers running the roles
        themselves (`securecomp.models.ckks.session`).
        """
        Xa, ya = check_inputs(X, y, self.spec.task)
        spec = self.spec
        sigmoid = self._sigmoid()
        cfg = self._config(sigmoid)
        target: tuple[float, float] | None = None
        if spec.task == "linear":
            # The data owner's own affine map keeps the target within the planned range.
            mean = float(np.mean(ya)) if spec.fit_intercept else 0.0
            scale = float(np.sqrt(np.mean((ya - mean) ** 2))) or 1.0
            target = (mean, scale)
            ya = (ya - mean) / scale
        rows = self._batch_rows(Xa.shape[0])
        raw = make_batches(
            Xa,
            ya,
            batch_size=spec.batch_size,
            intercept=spec.fit_intercept,
            random_state=spec.random_state,
        )
        colsum = max(float(np.max(np.sum(np.abs(Z), axis=0))) for Z, _, _ in raw)
        grad = colsum * self._residual_bound(sigmoid)
        value = max(1.0, float(np.max(np.abs(Xa))) * 1.01)
        plan = self._plan(rows, raw[0][0].shape[1], grad, value)
        slots = plan.params.slot_count
        batches = make_batches(
            Xa,
            ya,
            batch_size=spec.batch_size,
            intercept=spec.fit_intercept,
            random_state=spec.random_state,
            pad_rows=lambda r: padded_rows(r, slots),
        )
        steps = schedule([(r, z.shape[0]) for z, _, r in batches], cfg)
        checks = RefreshChecks(batches, cfg, plan.capacity_at_decryption, spec.out_of_range)
        return Preparation(sigmoid, cfg, target, plan, batches, steps, checks)

    def float64_reference(
        self, X: NDArray[np.float64], y: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], float]:
        """The same algorithm and polynomial in float64: `securecomp.models.gd` on the
        plain backend, with this protocol's preparation (batches, padding, target map)
        and the key holder's optimizer. Returns ``(coef, intercept)`` in data units."""
        from securecomp.tensor import plain_keygen

        prep = self.prepare(X, y)
        cfg, batches = prep.cfg, prep.batches
        backend, key = plain_keygen()
        tensors = [Batch(backend.encrypt(Z), backend.encrypt(t), r) for Z, t, r in batches]
        opt = RefreshingOptimizer(
            batches[0][0].shape[1],
            cfg,
            encrypt=backend.encrypt,
            decrypt=lambda t: t.decrypt(key),
        )
        train(tensors, cfg, opt)
        return to_data_units(opt.w, prep.target, self.spec.fit_intercept)

    def plan(self, X_shape: tuple[int, int]) -> Mapping[str, Any]:
        """Parameters, depth per step, refreshes, rotation keys, sizes and estimated time.

        Without data the features are assumed standardized (unit RMS per column, so a
        column's absolute sum is at most its number of rows).

        Raises
        ------
        ParameterError
            A bad shape, or a depth that fits no secure parameters.
        """
        n, d = check_plan_shape(X_shape)
        sigmoid = self._sigmoid()
        rows = self._batch_rows(n)
        width = d + int(self.spec.fit_intercept)
        plan = self._plan(rows, width, max(rows) * self._residual_bound(sigmoid), _ASSUMED_X)
        out = plan.as_dict()
        out["protocol"] = "ckks"
        out["assumption"] = f"standardized features (unit RMS per column, |x| < {_ASSUMED_X:g})"
        if sigmoid is not None:
            out["sigmoid"] = sigmoid.describe()
        inference = plan_inference(
            rows=n,
            width=d,
            output="logits",
            sigmoid_degree=self.spec.sigmoid_degree,
            params=self.options.inference_params,
        )
        out["inference"] = inference.as_dict()
        return out

    # --- training ----------------------------------------------------------------------------

    def fit(self, X: NDArray[np.float64], y: NDArray[np.float64]) -> FitResult:
        """Train on ``X`` (n, d) and ``y`` (n,) as the class docstring describes.

        Raises
        ------
        ShapeMismatchError, EncodingOverflowError, ParameterError
            Bad shapes; NaN or inf; labels not 0/1; a depth or magnitude that fits no
            secure parameters (before any key is made).
        EncodingOverflowError
            ``out_of_range="raise"`` and logits left the interval, or a value would leave
            the decryptable range.
        """
        spec = self.spec
        prep = self.prepare(X, y)
        sigmoid, cfg, target, plan = prep.sigmoid, prep.cfg, prep.target, prep.plan
        batches, steps, checks = prep.batches, prep.steps, prep.checks
        width = batches[0][0].shape[1]
        report = CostReport(protocol="ckks" + (" (plaintext simulation)" if self.simulate else ""))
        if self.simulate:
            w = fit_simulated(self.spec, self.options, plan, batches, cfg, checks, report)
            session = None
        else:
            w, session = fit_encrypted(self.options, plan, batches, cfg, checks, steps, report)
        if spec.out_of_range == "warn":
            checks.warn_if_outside()
        bounds = error_bounds(self.options, plan, cfg, checks, steps)
        coef, intercept = to_data_units(w, target, spec.fit_intercept)
        record_fit(self.options, report, plan, cfg, checks, steps, bounds, sigmoid)
        state = CKKSFitState(
            plan=plan,
            cfg=cfg,
            width=width,
            target=target,
            w_train=w,
            coef=coef,
            intercept=intercept,
            error_bound=bounds,
            session=session,
            simulated=self.simulate,
        )
        result = FitResult(coef, intercept, spec.max_iter, report, state)
        self._last = result
        return result

    # --- inference ---------------------------------------------------------------------------

    def _state(self, fitted: FitResult | None) -> CKKSFitState:
        result = fitted if fitted is not None else self._last
        if result is None:
            raise NotFittedError("this CKKS protocol has not been fitted; call fit first")
        if not isinstance(result.state, CKKSFitState):
            raise NotFittedError("this FitResult does not come from a CKKS fit")
        return result.state

    def decision_function(self, fitted: FitResult, X: NDArray[np.float64]) -> ScoreResult:
        """Logits (or regression outputs) of ``X`` by encrypted inference (see `infer`)."""
        return self.infer(fitted, X, output="logits", model=self.options.inference_model)

    def infer(
        self,
        fitted: FitResult | None,
        X: NDArray[np.float64],
        *,
        output: Literal["logits", "probabilities"] = "logits",
        model: Literal["encrypted", "released"] = "encrypted",
    ) -> ScoreResult:
        """Encrypted batch inference: client encrypts, server evaluates, client decrypts.

        Parameters
        ----------
        output : {"logits", "probabilities"}
            Probabilities go through the polynomial sigmoid at the server (logistic only);
            values outside ``[0, 1]`` by more than the fit error reveal logits outside the
            interval: reported (warn or raise, as ``out_of_range``).
        model : {"encrypted", "released"}
            The model encrypted by the key holder under the client's key, or the released
            one (after `release`).

        Raises
        ------
        ShapeMismatchError
            ``X`` has another number of features than the model.
        NotFittedError
            Before ``fit``, or ``model="released"`` before ``release``.
        """
        state = self._state(fitted)
        Xa = check_features(X)
        d = state.coef.shape[0]
        if Xa.shape[1] != d:
            raise ShapeMismatchError(
                f"X has {Xa.shape[1]} features but the model has {d}; pass the columns of fit"
            )
        if output == "probabilities" and state.cfg.sigmoid is None:
            raise ParameterError("probabilities need a logistic model")
        if model == "released" and state.released is None:
            raise NotFittedError("no model has been released yet; call release(fitted, s=...)")
        report = CostReport(protocol="ckks inference")
        if state.simulated:
            scores = infer_simulated(self.options, state, Xa, output, model, report)
        else:
            scores = infer_encrypted(self.options, state, Xa, output, model, report)
        if output == "probabilities" and state.cfg.sigmoid is not None:
            check_probabilities(scores, state.cfg.sigmoid, self.spec.out_of_range, report)
        return ScoreResult(scores=scores, report=report)

    # --- release -----------------------------------------------------------------------------

    def release(
        self,
        fitted: FitResult | None = None,
        *,
        s: int = 40,
        n_releases: int = 1,
        X: NDArray[np.float64] | None = None,
        y: NDArray[np.float64] | None = None,
    ) -> ReleasedModel:
        """Release the key holder's model to the server through noise flooding.

        The weights carry the CKKS errors of every gradient sum the key holder decrypted,
        which depend on the secret key; they leave only with discrete Gaussian noise of
        σ = t · sqrt(n_releases · width / 2) · 2^(s/2), t the bound of
        `securecomp.models.ckks.bounds` (option ``release_bound``), through
        `securecomp.he.ckks.release` and its per-key budget. With ``X`` and ``y`` the
        report compares the released model's accuracy (logistic) or MSE (linear) with the
        key holder's. Afterwards ``infer(..., model="released")`` scores with it.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ReleaseError
            The noise would destroy the values, or the key's release budget is spent.
        """
        state = self._state(fitted)
        return release_model(self.spec, self.options, state, s=s, n_releases=n_releases, X=X, y=y)


register_protocol(CKKSProtocol)
