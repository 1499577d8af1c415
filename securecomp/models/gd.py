"""Gradient descent and Nesterov's accelerated gradient, written once against `SecureTensor`.

The same code trains on the plain backend (the float64 reference of "the same algorithm and
polynomial"), on CKKS ciphertexts and on any backend with the few operations it uses
(``*``, ``+``, ``-``, ``@``, ``.T``, ``.sum(axis=1)``, ``polyval``).

Algorithm (Kim, Song, Kim, Lee, Cheon, BMC Med. Genomics 11(Suppl 4):83, 2018, §Methods;
Han, Hong, Cheon, Park, AAAI 2019, §3 for mini-batches). With Z the batch (an intercept
column of ones first when fitted), m its number of rows and f the link (identity for least
squares, a polynomial sigmoid `securecomp.models.approx.PolynomialSigmoid` for logistic
regression, labels in {0, 1}):

1. logits ``z = Z v`` at the look-ahead point v;
2. residual ``r = f(z) - y``;
3. gradient *sum* ``s = Zᵀ r`` (a slot sum for column-packed ciphertexts);
4. update ``w⁺ = v - α (s / m + l2 · v)`` (intercept not penalized). The ``1/m`` scaling
   is applied after the sum: scaling each row first would leave values so small that the
   rounding error of a CKKS rescale (about 2^-scale) dominates them;
5. ``v⁺ = w⁺`` (``"gd"``) or ``v⁺ = (1 - η_t) w⁺ + η_t w`` (``"nesterov"``), with
   λ_1 = 1, ``λ_{t+1} = (1 + sqrt(1 + 4 λ_t²)) / 2`` and ``η_t = (1 - λ_t) / λ_{t+1}``
   (so the first step is a plain gradient step and η_t <= 0 pushes past w⁺).
   On tensors, ``v⁺`` is expanded into ``(1 - η) v - (1 - η) α s / m - ... + η w`` so that
   no product follows another: one level for the whole update.

Who holds the model state is an `Optimizer`:

* `TensorOptimizer`: w and v are tensors held by whoever runs `train` (e.g. a server that
  cannot decrypt); a `DepthBudget` hook checks the levels left before each step and calls a
  ``refresh`` hook (or raises `DepthExhaustedError` early) when a step would not fit.
* `RefreshingOptimizer`: w and v are float64 arrays held by the party with the key; each
  step it decrypts the gradient sum (the "refresh" of an exhausted CKKS chain), updates,
  and encrypts the next look-ahead weights, replicated over the batch's rows so that the
  next forward pass is one elementwise product and a sum across columns (one level); for
  the polynomial sigmoid they are scaled by 1/B (`GDConfig.forward_scale`), so that the
  polynomial runs on z/B where its powers stay near 1.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import DepthExhaustedError, ParameterError, ShapeMismatchError
from securecomp.models.approx import PolynomialSigmoid
from securecomp.tensor import SecureTensor

__all__ = [
    "Batch",
    "DepthBudget",
    "GDConfig",
    "Optimizer",
    "RefreshingOptimizer",
    "Step",
    "TensorOptimizer",
    "forward",
    "gradient_sum",
    "make_batches",
    "nesterov_etas",
    "residual",
    "schedule",
    "train",
    "update",
]

Task = Literal["linear", "logistic"]
ArrayOrTensor = TypeVar("ArrayOrTensor", NDArray[np.float64], SecureTensor)


@dataclass(frozen=True)
class GDConfig:
    """What to train: loss, optimizer, step, epochs, penalty and link polynomial.

    Attributes
    ----------
    task : {"linear", "logistic"}
    optimizer : {"gd", "nesterov"}
    learning_rate : float
        α > 0.
    epochs : int
        Passes over the batches.
    l2 : float
        Ridge penalty (not applied to the intercept).
    sigmoid : PolynomialSigmoid or None
        The link of logistic regression (required for it, ignored for least squares).
    intercept : bool
        Column 0 of every batch is the ones column of the intercept.
    """

    task: Task
    optimizer: Literal["gd", "nesterov"] = "nesterov"
    learning_rate: float = 1.0
    epochs: int = 1
    l2: float = 0.0
    sigmoid: PolynomialSigmoid | None = None
    intercept: bool = True

    def __post_init__(self) -> None:
        if self.task not in ("linear", "logistic"):
            raise ParameterError(f"task must be 'linear' or 'logistic', got {self.task!r}")
        if self.optimizer not in ("gd", "nesterov"):
            raise ParameterError(f"optimizer must be 'gd' or 'nesterov', got {self.optimizer!r}")
        lr = self.learning_rate
        if (
            isinstance(lr, bool)
            or not isinstance(lr, int | float)
            or not lr > 0
            or not (math.isfinite(lr))
        ):
            raise ParameterError(f"learning_rate must be a finite number > 0, got {lr!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ParameterError(f"epochs must be a positive int, got {self.epochs!r}")
        if not (isinstance(self.l2, int | float) and math.isfinite(self.l2) and self.l2 >= 0):
            raise ParameterError(f"l2 must be a finite number >= 0, got {self.l2!r}")
        if self.task == "logistic" and not isinstance(self.sigmoid, PolynomialSigmoid):
            raise ParameterError(
                "logistic regression on secure tensors needs a polynomial sigmoid "
                "(securecomp.models.approx.fit_sigmoid)"
            )

    @property
    def forward_scale(self) -> float:
        """Factor a key holder folds into the weights it encrypts: 1/B for the polynomial
        sigmoid (so the polynomial is evaluated on z/B, see `PolynomialSigmoid.coefficients_for`),
        1 for least squares."""
        if self.task == "logistic" and self.sigmoid is not None:
            return 1.0 / self.sigmoid.interval
        return 1.0

    @property
    def link_depth(self) -> int:
        """Multiplicative depth of the link: 0 (least squares) or the polynomial's."""
        if self.task == "linear" or self.sigmoid is None:
            return 0
        return self.sigmoid.depth

    def penalty(self, width: int) -> NDArray[np.float64]:
        """The l2 weight of each coefficient (0 for the intercept)."""
        pen = np.full(width, float(self.l2))
        if self.intercept and width:
            pen[0] = 0.0
        return pen


@dataclass(frozen=True)
class Batch:
    """One mini-batch as protected tensors: ``X`` (rows, width) and ``y`` (rows,).

    ``rows`` is the number of real samples; the tensors may carry zero rows of padding
    beyond it (they add nothing to a gradient sum: their features are zero).
    """

    X: SecureTensor
    y: SecureTensor
    rows: int

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.y.shape != (self.X.shape[0],):
            raise ShapeMismatchError(
                f"a batch needs X of shape (m, d) and y of shape (m,), got {self.X.shape} "
                f"and {self.y.shape}"
            )
        if not 0 < self.rows <= self.X.shape[0]:
            raise ShapeMismatchError(
                f"a batch of {self.X.shape[0]} rows cannot hold {self.rows} samples"
            )


@dataclass(frozen=True)
class Step:
    """One optimizer step: which batch, its size, and the Nesterov coefficient η."""

    index: int
    epoch: int
    batch: int
    rows: int
    padded_rows: int
    eta: float


def nesterov_etas(steps: int) -> list[float]:
    """η_1 .. η_steps of Nesterov's method, starting at λ_1 = 1 (so η_1 = 0)."""
    out: list[float] = []
    lam = 1.0
    for _ in range(steps):
        lam_next = (1.0 + math.sqrt(1.0 + 4.0 * lam * lam)) / 2.0
        out.append((1.0 - lam) / lam_next)
        lam = lam_next
    return out


def schedule(batches: Sequence[Batch] | Sequence[tuple[int, int]], cfg: GDConfig) -> list[Step]:
    """The steps of ``cfg.epochs`` passes over ``batches``, in order.

    ``batches`` are `Batch` objects or ``(rows, padded_rows)`` pairs (a party that holds
    the plaintext batches computes the same schedule as the one training on tensors).
    """
    shapes = [(b.rows, b.X.shape[0]) if isinstance(b, Batch) else b for b in batches]
    n_steps = cfg.epochs * len(shapes)
    etas = nesterov_etas(n_steps) if cfg.optimizer == "nesterov" else [0.0] * n_steps
    steps = []
    for e in range(cfg.epochs):
        for b, (rows, padded) in enumerate(shapes):
            i = e * len(shapes) + b
            steps.append(Step(i, e, b, int(rows), int(padded), etas[i]))
    return steps


# --- the arithmetic, generic over ndarrays and tensors ------------------------------------------


def forward(X: SecureTensor, weights: SecureTensor) -> SecureTensor:
    """Logits ``X w``: ``(X * W).sum(axis=1)`` for weights replicated over the rows, else
    ``X @ w``. The first costs one level and no rotation on column-packed ciphertexts."""
    if weights.shape == X.shape:
        return (X * weights).sum(axis=1)
    return X @ weights


def residual(
    z: SecureTensor, y: SecureTensor, cfg: GDConfig, *, scale: float = 1.0
) -> SecureTensor:
    """``f(z) - y`` for logits given as ``scale * z``: the identity (least squares), or the
    polynomial sigmoid rewritten for the scaled logits."""
    if cfg.task == "logistic":
        if cfg.sigmoid is None:  # excluded by GDConfig; kept for type checkers
            raise ParameterError("logistic regression needs a polynomial sigmoid")
        return z.polyval(cfg.sigmoid.coefficients_for(scale)) - y
    if scale != 1.0:
        raise ParameterError("least squares takes unscaled logits (forward_scale 1)")
    return z - y


def gradient_sum(
    batch: Batch, weights: SecureTensor, cfg: GDConfig, *, scale: float = 1.0
) -> SecureTensor:
    """``Zᵀ (f(Z v) - y)``, not yet divided by the number of rows (``weights`` = scale·v)."""
    r = residual(forward(batch.X, weights), batch.y, cfg, scale=scale)
    return batch.X.T @ r


def update(
    w: ArrayOrTensor, v: ArrayOrTensor, g_sum: ArrayOrTensor, step: Step, cfg: GDConfig
) -> tuple[ArrayOrTensor, ArrayOrTensor]:
    """One optimizer update from the gradient sum; ``(w⁺, v⁺)``.

    Every term is one product by a plaintext constant of an input (no product of a
    product), so on CKKS the update costs a single level.
    """
    a = cfg.learning_rate / step.rows
    width = w.shape[0]
    pen = cfg.penalty(width) * cfg.learning_rate
    w_next = v - g_sum * a
    if cfg.l2 > 0.0:
        w_next = w_next - v * pen
    if cfg.optimizer == "gd" or step.eta == 0.0:
        return w_next, w_next
    keep = 1.0 - step.eta
    v_next = v * keep - g_sum * (keep * a) + w * step.eta
    if cfg.l2 > 0.0:
        v_next = v_next - v * (keep * pen)
    return w_next, v_next


# --- who holds the model state ------------------------------------------------------------------


class Optimizer(ABC):
    """Holds w and v; hands the forward pass its weights and applies gradient sums.

    ``forward_scale``: the forward weights are ``forward_scale * v`` (see
    `GDConfig.forward_scale`); the link is evaluated accordingly.
    """

    forward_scale: float = 1.0

    @abstractmethod
    def forward_weights(self, step: Step) -> SecureTensor:
        """The look-ahead weights for ``step``: a (width,) tensor or rows (padded, width)."""

    @abstractmethod
    def apply(self, g_sum: SecureTensor, step: Step) -> None:
        """Update the state with the gradient sum of ``step``."""


@dataclass
class DepthBudget:
    """Level bookkeeping for `TensorOptimizer` (CKKS: rescales left in the chain).

    Attributes
    ----------
    level_of : callable
        Level of a tensor (rescales consumed; None when the backend has no levels).
    max_level : int
        Levels available before the chain is exhausted.
    step_depth : int
        Levels one step consumes, counted from the level of v.
    """

    level_of: Callable[[SecureTensor], int | None]
    max_level: int
    step_depth: int

    def fits(self, *tensors: SecureTensor) -> bool:
        """True when a step starting from ``tensors`` ends within ``max_level``."""
        levels = [lvl for t in tensors if (lvl := self.level_of(t)) is not None]
        start = max(levels, default=0)
        return start + self.step_depth <= self.max_level


Refresh = Callable[[SecureTensor, SecureTensor], tuple[SecureTensor, SecureTensor]]


class TensorOptimizer(Optimizer):
    """State as tensors held by the party running `train` (it needs no key).

    Parameters
    ----------
    w, v : SecureTensor
        Initial weights and look-ahead point, shape (width,).
    cfg : GDConfig
    budget : DepthBudget, optional
        Checked before every step.
    refresh : callable, optional
        ``(w, v) -> (w, v)`` at fresh levels (a key holder's re-encryption), called when
        the budget says a step would not fit. Without it such a step raises
        `DepthExhaustedError` before any work.
    """

    def __init__(
        self,
        w: SecureTensor,
        v: SecureTensor,
        cfg: GDConfig,
        *,
        budget: DepthBudget | None = None,
        refresh: Refresh | None = None,
    ) -> None:
        if w.shape != v.shape or w.ndim != 1:
            raise ShapeMismatchError(f"w and v must be 1-d of one shape, got {w.shape}, {v.shape}")
        self.w, self.v, self.cfg = w, v, cfg
        self.budget = budget
        self.refresh = refresh
        self.refreshes = 0

    def forward_weights(self, step: Step) -> SecureTensor:
        if self.budget is not None and not self.budget.fits(self.w, self.v):
            if self.refresh is None:
                raise DepthExhaustedError(
                    f"step {step.index + 1} needs {self.budget.step_depth} levels but the "
                    f"weights are at level {self.budget.level_of(self.v)} of "
                    f"{self.budget.max_level}; plan a longer chain or allow the key holder "
                    "to refresh the weights"
                )
            self.w, self.v = self.refresh(self.w, self.v)
            self.refreshes += 1
        return self.v

    def apply(self, g_sum: SecureTensor, step: Step) -> None:
        self.w, self.v = update(self.w, self.v, g_sum, step, self.cfg)


Check = Callable[[NDArray[np.float64], Step], None]


@dataclass
class RefreshingOptimizer(Optimizer):
    """State in float64 at the party holding the key; one decryption per step.

    Each step (i) ``forward_weights`` encrypts ``forward_scale * v`` replicated over the
    batch's padded rows,
    (ii) ``apply`` decrypts the gradient sum, runs ``check`` on it (a range check), and
    updates w and v with `update` on float64 arrays: the same arithmetic as on tensors.
    For CKKS this is the refresh of an exhausted chain: the gradient sum arrives at the
    last level, and the next weights leave fresh.

    Attributes
    ----------
    width : int
    cfg : GDConfig
    encrypt : callable
        ``ndarray -> SecureTensor`` under the training key.
    decrypt : callable
        ``SecureTensor -> ndarray`` (the key holder's local decryption).
    check : callable, optional
        Called with the decrypted gradient sum before the update.
    on_weights : callable, optional
        Called with v before it is encrypted (e.g. to check the logits it will produce).
    """

    width: int
    cfg: GDConfig
    encrypt: Callable[[NDArray[np.float64]], SecureTensor]
    decrypt: Callable[[SecureTensor], NDArray[np.float64]]
    check: Check | None = None
    on_weights: Check | None = None
    refreshes: int = 0
    w: NDArray[np.float64] = field(init=False)
    v: NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        self.w = np.zeros(self.width)
        self.v = np.zeros(self.width)
        self.forward_scale = self.cfg.forward_scale

    def forward_weights(self, step: Step) -> SecureTensor:
        if self.on_weights is not None:
            self.on_weights(self.v, step)
        # Scaling by 1/B here is free: the key holder encrypts the scaled weights.
        rows = np.broadcast_to(self.v * self.forward_scale, (step.padded_rows, self.width))
        return self.encrypt(np.ascontiguousarray(rows))

    def apply(self, g_sum: SecureTensor, step: Step) -> None:
        g = np.asarray(self.decrypt(g_sum), dtype=np.float64).reshape(-1)
        if g.shape != (self.width,):
            raise ShapeMismatchError(
                f"the gradient sum has {g.size} entries, the model {self.width}"
            )
        if self.check is not None:
            self.check(g, step)
        self.w, self.v = update(self.w, self.v, g, step, self.cfg)
        self.refreshes += 1


def train(
    batches: Sequence[Batch],
    cfg: GDConfig,
    optimizer: Optimizer,
    *,
    on_step: Callable[[Step], Any] | None = None,
) -> list[Step]:
    """Run ``cfg.epochs`` passes of the optimizer over ``batches``; returns the steps run.

    Parameters
    ----------
    batches : sequence of Batch
        Fixed mini-batches (visited in the same order every epoch).
    cfg : GDConfig
    optimizer : Optimizer
        Holds the model state (see the module docstring).
    on_step : callable, optional
        Called after each step (progress, timing).
    """
    if not batches:
        raise ShapeMismatchError("training needs at least one batch")
    width = batches[0].X.shape[1]
    if any(b.X.shape[1] != width for b in batches):
        raise ShapeMismatchError("all batches must have the same number of columns")
    steps = schedule(batches, cfg)
    for step in steps:
        weights = optimizer.forward_weights(step)
        g_sum = gradient_sum(batches[step.batch], weights, cfg, scale=optimizer.forward_scale)
        optimizer.apply(g_sum, step)
        if on_step is not None:
            on_step(step)
    return steps


# --- plaintext preparation (the data owner's side) ----------------------------------------------


def make_batches(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    batch_size: int | None,
    intercept: bool,
    random_state: int | None,
    pad_rows: Callable[[int], int] | None = None,
) -> list[tuple[NDArray[np.float64], NDArray[np.float64], int]]:
    """Cut ``(X, y)`` into fixed mini-batches ``(Z_b, y_b, rows)`` for `Batch`.

    Rows are permuted once with ``random_state`` when ``batch_size`` is smaller than the
    data (the permutation is not secret: it only makes batches reproducible), then cut into
    consecutive batches. ``Z_b`` has a first column of ones when ``intercept``; with
    ``pad_rows`` each batch gets zero rows up to ``pad_rows(rows)`` (zero features: they
    add nothing to a gradient sum).
    """
    n = X.shape[0]
    Z = np.hstack([np.ones((n, 1)), X]) if intercept else np.array(X, dtype=np.float64)
    target = np.array(y, dtype=np.float64)
    if batch_size is not None and batch_size < n:
        perm = np.random.default_rng(random_state).permutation(n)
        Z, target = Z[perm], target[perm]
        cuts = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    else:
        cuts = [slice(0, n)]
    out = []
    for cut in cuts:
        zb, yb = Z[cut], target[cut]
        rows = zb.shape[0]
        padded = rows if pad_rows is None else pad_rows(rows)
        if padded > rows:
            zb = np.vstack([zb, np.zeros((padded - rows, zb.shape[1]))])
            yb = np.concatenate([yb, np.zeros(padded - rows)])
        out.append((zb, yb, rows))
    return out
