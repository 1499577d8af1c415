"""Plaintext arithmetic of federated gradient training: local gradients, quantization, updates.

Holders compute in plaintext on their own rows, so the logistic loss uses the exact
sigmoid (no polynomial approximation is needed, unlike CKKS training). Objective, for
parameters ``theta = (w, b)`` and rows ``a_i = (x_i, 1)``::

    linear:    J = 1/(2n) sum_i (a_i . theta - y_i)^2             + l2/2 |w|^2
    logistic:  J = 1/n    sum_i logloss(sigmoid(a_i . theta), y_i) + l2/2 |w|^2

whose gradient is ``1/n sum_i (p_i - y_i) a_i + l2 w`` with ``p_i = a_i . theta`` or
``sigmoid(a_i . theta)``. The optimizer is gradient descent or Nesterov's accelerated
gradient in the form used by Kim, Song, Kim, Lee and Cheon (BMC Med Genomics 11:83, 2018),
after Nesterov (1983):
``w+ = v - lr * grad J(v)``, ``v+ = (1 - gamma_t) w+ + gamma_t w`` with
``gamma_t = (1 - lambda_t) / lambda_{t+1}``, ``lambda_0 = 0``,
``lambda_{t+1} = (1 + sqrt(1 + 4 lambda_t^2)) / 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from securecomp.encoding.quantize import QuantizationParams, quantize
from securecomp.errors import EncodingOverflowError, ParameterError

__all__ = ["Optimizer", "Task", "quantize_signed", "row_gradient_sum", "sigmoid"]

Task = str  # "linear" | "logistic" (validated where a spec is read)
FloatArray = npt.NDArray[np.float64]


def sigmoid(z: FloatArray) -> FloatArray:
    """The logistic function, computed as ``(1 + tanh(z/2)) / 2`` (no overflow for any z)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def row_gradient_sum(
    task: Task, X: FloatArray, y: FloatArray, theta: FloatArray, fit_intercept: bool
) -> FloatArray:
    """``sum_i (p_i - y_i) a_i`` over the rows of ``X`` (not divided by anything).

    ``theta`` is ``(w, b)`` when ``fit_intercept`` else ``w``; the result has its length.
    """
    w = theta[: X.shape[1]]
    z = X @ w
    if fit_intercept:
        z = z + theta[-1]
    residual = sigmoid(z) - y if task == "logistic" else z - y
    grad = X.T @ residual
    if fit_intercept:
        grad = np.append(grad, residual.sum())
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


@dataclass
class Optimizer:
    """Gradient descent or Nesterov's accelerated gradient on a parameter vector.

    Invariant: `point` is where the next gradient is evaluated; `step` consumes that
    gradient; `params` is the current estimate (``w`` in the module docstring).
    """

    n_params: int
    learning_rate: float
    nesterov: bool
    l2: float = 0.0
    n_penalized: int = 0  # the first n_penalized parameters get the ridge term

    def __post_init__(self) -> None:
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not (
            math.isfinite(lr) and lr > 0
        ):
            raise ParameterError(f"learning_rate must be a positive finite number, got {lr!r}")
        if isinstance(self.l2, bool) or not (math.isfinite(self.l2) and self.l2 >= 0):
            raise ParameterError(f"l2 must be a non-negative finite number, got {self.l2!r}")
        self._w = np.zeros(self.n_params)
        self._v = np.zeros(self.n_params)
        self._lambda = 0.0
        self.steps = 0

    @property
    def point(self) -> FloatArray:
        """Parameters at which holders evaluate the next gradient (a copy)."""
        return self._v.copy()

    @property
    def params(self) -> FloatArray:
        """The current estimate (a copy)."""
        return self._w.copy()

    def step(self, grad: FloatArray) -> None:
        """One update with the mean loss gradient at `point` (the ridge term is added here).

        Raises
        ------
        EncodingOverflowError
            If the gradient or the update is not finite (training diverged: lower the
            learning rate); the state is left unchanged.
        """
        g = np.array(grad, dtype=np.float64)
        if g.shape != (self.n_params,):
            raise ParameterError(f"gradient of shape {g.shape}, expected ({self.n_params},)")
        if self.l2:
            g[: self.n_penalized] += self.l2 * self._v[: self.n_penalized]
        w_next = self._v - self.learning_rate * g
        if self.nesterov:
            lam_next = (1.0 + math.sqrt(1.0 + 4.0 * self._lambda**2)) / 2.0
            gamma = (1.0 - self._lambda) / lam_next
            v_next = (1.0 - gamma) * w_next + gamma * self._w
        else:
            lam_next, v_next = self._lambda, w_next
        if not (np.isfinite(w_next).all() and np.isfinite(v_next).all()):
            raise EncodingOverflowError(
                f"the model diverged at step {self.steps + 1} (non-finite parameters); lower "
                "the learning rate or standardize the features"
            )
        self._w, self._v, self._lambda = w_next, v_next, lam_next
        self.steps += 1
