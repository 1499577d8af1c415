"""Plaintext arithmetic of federated gradient training: local gradients, quantization, updates.

Holders compute in plaintext on their own rows, so the logistic loss uses the exact
sigmoid (`securecomp.models.plain.sigmoid`; no polynomial approximation is needed, unlike
CKKS training). Parameters are laid out as in `securecomp.models.gd` and
`securecomp.models.plain`: ``theta = (b, w)`` with the intercept first when it is fitted,
``theta = w`` otherwise; row ``i`` is ``a_i = (1, x_i)``. Objective::

    linear:    J = 1/(2n) sum_i (a_i . theta - y_i)^2             + l2/2 |w|^2
    logistic:  J = 1/n    sum_i logloss(sigmoid(a_i . theta), y_i) + l2/2 |w|^2

whose gradient *sum* over a batch is ``sum_i (p_i - y_i) a_i`` with ``p_i = a_i . theta``
or ``sigmoid(a_i . theta)``; the ridge term and the division by the batch size are part of
the update.

The update is not re-implemented here: `ModelIterates` holds the key holder's ``w`` and
``v`` and applies `securecomp.models.gd.update` on the steps of `securecomp.models.gd.
schedule` (η_t from `securecomp.models.gd.nesterov_etas`, λ_1 = 1; Kim, Song, Kim, Lee and
Cheon, BMC Med. Genomics 11(Suppl 4):83, 2018, §Methods), so ``backend="paillier"`` follows
exactly the step-size and momentum schedule of ``backend="plain"`` (`PlainProtocol`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from securecomp.encoding.quantize import QuantizationParams, quantize
from securecomp.errors import EncodingOverflowError, ProtocolAbort, ShapeMismatchError
from securecomp.models.gd import GDConfig, Step, schedule, update
from securecomp.models.plain import sigmoid
from securecomp.models.protocol import TrainingSpec

__all__ = ["ModelIterates", "Task", "quantize_signed", "row_gradient_sum", "update_config"]

Task = str  # "linear" | "logistic" (validated where a spec is read)
FloatArray = npt.NDArray[np.float64]


def row_gradient_sum(
    task: Task, X: FloatArray, y: FloatArray, theta: FloatArray, fit_intercept: bool
) -> FloatArray:
    """``sum_i (p_i - y_i) a_i`` over the rows of ``X`` (not divided by anything).

    ``theta`` is ``(b, w)`` when ``fit_intercept`` else ``w`` (the layout of
    `securecomp.models.gd`); the result has its length and layout.
    """
    off = int(fit_intercept)
    z = X @ theta[off:]
    if fit_intercept:
        z = z + theta[0]
    residual = sigmoid(z) - y if task == "logistic" else z - y
    grad = X.T @ residual
    if fit_intercept:
        grad = np.concatenate(([residual.sum()], grad))
    return np.asarray(grad, dtype=np.float64)


def quantize_signed(
    values: FloatArray, params: QuantizationParams, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], int]:
    """Clip, scale and stochastically round to signed ints of ``params.modulus_bits`` bits.

    Returns the integers (``|v| <= ceil(clip * scale) <= 2^(b-1) - 1``, the symmetric range
    packed Paillier slots need) and the number of clipped coordinates.
    """
    q = quantize(values, params, rng=rng)
    ints = q.values.astype(np.int64)
    bits = params.modulus_bits
    if bits < 64:
        # Two's complement in Z_2^b back to signed: values >= 2^(b-1) are negative.
        ints = np.where(ints >= (1 << (bits - 1)), ints - (1 << bits), ints)
    return ints.astype(np.int64), q.n_clipped


def update_config(spec: TrainingSpec) -> GDConfig:
    """The `GDConfig` of the update rule the key holder applies for ``spec``.

    Only the update-rule fields are read (optimizer, step, epochs, penalty, intercept):
    the link is evaluated in plaintext by each holder with the exact sigmoid, so the
    config is built with ``task="linear"`` (which needs no polynomial sigmoid) for either
    task; `securecomp.models.gd.update` does not depend on the task.
    """
    return GDConfig(
        task="linear",
        optimizer=spec.optimizer,
        learning_rate=float(spec.learning_rate),
        epochs=spec.max_iter,
        l2=float(spec.l2),
        intercept=bool(spec.fit_intercept),
    )


class ModelIterates:
    """The key holder's model: the estimate ``w`` and the look-ahead point ``v``.

    Invariant: `point` is where the holders evaluate the next gradient; `apply` consumes
    that step's gradient sum with `securecomp.models.gd.update` on the next step of
    `securecomp.models.gd.schedule` (the schedule of ``backend="plain"``); `params` is the
    current estimate. Both start at zero.

    Parameters
    ----------
    spec : TrainingSpec
    width : int
        Number of parameters (features, plus one for the intercept).
    batches_per_epoch : int
        Steps per epoch; the schedule has ``spec.max_iter * batches_per_epoch`` steps.
    """

    def __init__(self, spec: TrainingSpec, width: int, batches_per_epoch: int) -> None:
        self.config = update_config(spec)
        self.width = width
        # The per-step batch size is only known once the aggregate is decrypted; it is
        # filled in by `apply` (placeholders of 1 row here).
        self._steps = schedule([(1, 1)] * batches_per_epoch, self.config)
        self._w = np.zeros(width)
        self._v = np.zeros(width)
        self.steps_done = 0

    @property
    def n_steps(self) -> int:
        """Number of steps in the schedule."""
        return len(self._steps)

    @property
    def point(self) -> FloatArray:
        """Parameters at which holders evaluate the next gradient (a copy)."""
        return self._v.copy()

    @property
    def params(self) -> FloatArray:
        """The current estimate (a copy)."""
        return self._w.copy()

    def next_step(self, rows: int) -> Step:
        """The next step of the schedule, for a batch of ``rows`` rows in all."""
        if self.steps_done >= len(self._steps):
            raise ProtocolAbort("step", f"all {len(self._steps)} scheduled steps are done")
        return dataclasses.replace(self._steps[self.steps_done], rows=rows, padded_rows=rows)

    def apply(self, gradient_sum: FloatArray, rows: int) -> None:
        """One update with the gradient *sum* over a total batch of ``rows`` rows at `point`.

        Raises
        ------
        ShapeMismatchError
            A gradient of another length than the model.
        EncodingOverflowError
            The update is not finite (training diverged: lower the learning rate or
            standardize the features); the state is left unchanged.
        """
        g = np.asarray(gradient_sum, dtype=np.float64)
        if g.shape != (self.width,):
            raise ShapeMismatchError(f"gradient of shape {g.shape}, expected ({self.width},)")
        step = self.next_step(rows)
        w_next, v_next = update(self._w, self._v, g, step, self.config)
        if not (np.isfinite(w_next).all() and np.isfinite(v_next).all()):
            raise EncodingOverflowError(
                f"the model diverged at step {step.index + 1} (non-finite parameters); lower "
                "the learning rate or standardize the features"
            )
        self._w, self._v = w_next, v_next
        self.steps_done += 1
