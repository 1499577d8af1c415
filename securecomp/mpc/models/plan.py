"""The public schedule of MPC training: batches, steps, optimizer coefficients and bounds.

Everything here is public and identical at every computing party (SPMD): the number of
rows each party contributes, the permutation that cuts the joint rows into mini-batches,
the step sizes and Nesterov coefficients, and the magnitude bounds that the bound tracker
needs. `TrainPlan` is built once by whoever launches the run, from the `TrainingSpec`,
the options and the public shapes; the party program (`securecomp.mpc.models.program`)
and the float64 reference (`securecomp.mpc.models.reference`) both follow it, so that
"the same algorithm" means the same batches in the same order with the same steps.

The optimizer is that of `securecomp.models.gd` (gradient descent or Nesterov's
accelerated gradient, Kim et al. 2018, section Methods): `update_coefficients` expresses
`securecomp.models.gd.update` as one public linear combination of ``(v, g, w)`` per output,
so that a party applies it with a single truncation (`securecomp.mpc.models.program`).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import ParameterError
from securecomp.models.approx import PolynomialSigmoid, fit_sigmoid
from securecomp.models.gd import GDConfig, Step, nesterov_etas
from securecomp.models.protocol import TrainingSpec
from securecomp.mpc import bounds
from securecomp.mpc.beaver import triple_spec
from securecomp.mpc.comparison import comparison_specs
from securecomp.mpc.material import Bilinear, Spec
from securecomp.mpc.models.options import MPCOptions
from securecomp.mpc.session import Truncation
from securecomp.mpc.truncation import trunc_spec

__all__ = ["POLY_INPUT_CLAIM", "TrainPlan", "make_plan", "piecewise_sigmoid"]

#: Claimed bound on u = z / B, the scaled logit fed to a polynomial sigmoid fitted on
#: [-B, B]. Beyond |u| = 1 the polynomial has already left the sigmoid (the range check
#: reports it); the claim only keeps the bound tracker's worst case from exploding.
POLY_INPUT_CLAIM = 4.0


def piecewise_sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """SecureML's activation in float64: 0 below -1/2, ``z + 1/2`` between, 1 above 1/2."""
    return np.clip(z + 0.5, 0.0, 1.0)


@dataclass(frozen=True)
class TrainPlan:
    """The public plan of one MPC training run.

    Invariant: ``cuts`` partitions ``range(n)`` into consecutive batches of the permuted
    joint rows (party 0's rows first, then party 1's, ...), and ``steps()`` visits them
    ``epochs`` times in the same order, with the Nesterov coefficient of each step.
    """

    task: Literal["linear", "logistic"]
    rows: tuple[int, ...]
    n_features: int
    intercept: bool
    perm: NDArray[np.intp] | None
    cuts: tuple[tuple[int, int], ...]
    epochs: int
    cfg: GDConfig
    sigmoid: Literal["piecewise", "poly"] | None
    poly: PolynomialSigmoid | None
    feature_bound: float
    target_bound: float
    weight_bound: float
    frac_bits: int
    truncation: Truncation
    model: Literal["reveal", "shared"]
    prefetch_words: int
    out_of_range: Literal["warn", "raise"]
    seed: int

    # --- shapes ------------------------------------------------------------------------

    @property
    def n(self) -> int:
        return sum(self.rows)

    @property
    def width(self) -> int:
        """Columns of the design matrix: the features, plus the ones column of the intercept."""
        return self.n_features + int(self.intercept)

    @property
    def z_bound(self) -> float:
        """Public bound on every entry of the design matrix (features and the ones column)."""
        return max(self.feature_bound, 1.0) if self.intercept else self.feature_bound

    @property
    def y_bound(self) -> float:
        return 1.0 if self.task == "logistic" else self.target_bound

    def batch_rows(self, b: int) -> int:
        start, stop = self.cuts[b]
        return stop - start

    def steps(self) -> Iterator[Step]:
        """The steps of training, in order (as `securecomp.models.gd.schedule` numbers them)."""
        n_steps = self.epochs * len(self.cuts)
        etas = nesterov_etas(n_steps) if self.cfg.optimizer == "nesterov" else [0.0] * n_steps
        for i in range(n_steps):
            epoch, b = divmod(i, len(self.cuts))
            rows = self.batch_rows(b)
            yield Step(i, epoch, b, rows, rows, etas[i])

    @property
    def n_steps(self) -> int:
        return self.epochs * len(self.cuts)

    # --- the optimizer as public linear combinations ---------------------------------------

    def update_coefficients(self, step: Step) -> NDArray[np.float64]:
        """Coefficients ``C`` with ``out[r] = C[r,0] v + C[r,1] g + C[r,2] w`` (per entry).

        ``out[0]`` is w⁺ and, for a Nesterov step with η ≠ 0, ``out[1]`` is v⁺; for
        gradient descent (and the first Nesterov step) v⁺ = w⁺ and ``C`` has one row. This
        is `securecomp.models.gd.update` with the gradient *sum* g: w⁺ = v − (α/m) g − pen v
        and v⁺ = (1 − η) w⁺ + η w, pen = α·l2 (0 on the intercept).
        """
        width = self.width
        a = self.cfg.learning_rate / step.rows
        one_minus_pen = 1.0 - self.cfg.penalty(width) * self.cfg.learning_rate
        rows = [np.stack([one_minus_pen, np.full(width, -a), np.zeros(width)])]
        if self.cfg.optimizer == "nesterov" and step.eta != 0.0:
            keep = 1.0 - step.eta
            nesterov = [keep * one_minus_pen, np.full(width, -keep * a), np.full(width, step.eta)]
            rows.append(np.stack(nesterov))
        return np.stack(rows)

    # --- bounds (ring units: |x| <= R means |x| * 2^f <= R) --------------------------------

    def ring(self, real: float) -> int:
        return bounds.ring_bound(real, self.frac_bits)

    def residual_bound(self) -> float:
        """A bound on ``|f(z) - y|`` for every row, from the public bounds and the claim."""
        ulp = 2.0**-self.frac_bits
        if self.task == "linear":
            logits = self.width * self.z_bound * self.weight_bound
            return logits + self.y_bound + 4 * ulp
        if self.sigmoid == "poly" and self.poly is not None:
            b = self.poly.interval
            u = POLY_INPUT_CLAIM
            odd = sum(abs(c) * b**k * u**k for k, c in enumerate(self.poly.coefficients) if k % 2)
            return 0.5 + odd + 1.0 + 16 * ulp
        return 1.0 + 4 * ulp  # σ ∈ [0, 1] exactly and y ∈ {0, 1}

    def gradient_ring_bound(self, m: int) -> int:
        """A bound (ring units) on each entry of the gradient sum ``Z_bᵀ r`` of ``m`` rows."""
        return self.ring(m * self.z_bound * self.residual_bound()) + 2

    def update_shift(self, m: int) -> int:
        """Fractional bits of the update's public coefficients for batches of ``m`` rows.

        With dealer truncation, as many bits beyond ``f`` (up to ``2f``) as keep the
        pre-truncation value below 2^62, so that a small step α/m keeps its precision.
        SecureML's local truncation fails with probability growing with the magnitude
        truncated, so it keeps ``f``.
        """
        f = self.frac_bits
        if self.truncation is not Truncation.DEALER:
            return f
        r_w = self.ring(self.weight_bound)
        r_g = self.gradient_ring_bound(m)
        pen = float(np.max(np.abs(self.cfg.penalty(self.width)))) * self.cfg.learning_rate
        c_v = 2.0 * (1.0 + pen)  # keep = 1 - η ∈ [1, 2)
        c_g = 2.0 * self.cfg.learning_rate / m
        for shift in range(min(2 * f, 61), f, -1):
            scale = math.ldexp(1.0, shift)
            total = sum(
                r * (math.ceil(c * scale) + 1) for r, c in ((r_w, c_v), (r_g, c_g), (r_w, 1.0))
            )
            if total < bounds.TRUNCATABLE:
                return shift
        return f

    # --- preprocessing ---------------------------------------------------------------------

    def step_specs(self, step: Step) -> list[Spec]:
        """The material one training step consumes, in order (for prefetching).

        The polynomial sigmoid's material is fetched when it is used (its products go
        through the backend, whose choice of rescaling bits is its own).
        """
        m, w, f = step.rows, self.width, self.frac_bits
        dealer = self.truncation is Truncation.DEALER
        out = [triple_spec(Bilinear.MATMUL, (m, w), (w,))]
        if dealer:
            out.append(trunc_spec((m,), f))
        if self.task == "logistic" and self.sigmoid == "piecewise":
            out += comparison_specs(2 * m)
            out.append(triple_spec(Bilinear.MUL, (2, m), (2, m)))
        out.append(triple_spec(Bilinear.MATMUL, (w, m), (m,)))
        if dealer:
            out.append(trunc_spec((w,), f))
            outputs = self.update_coefficients(step).shape[0]
            out.append(trunc_spec((outputs * w,), self.update_shift(m)))
        return out

    def chunks(self) -> Iterator[list[Step]]:
        """Consecutive runs of steps whose material fits in ``prefetch_words`` per party."""
        chunk: list[Step] = []
        words = 0
        for step in self.steps():
            need = sum(spec_words(s) for s in self.step_specs(step))
            if chunk and words + need > self.prefetch_words:
                yield chunk
                chunk, words = [], 0
            chunk.append(step)
            words += need
        if chunk:
            yield chunk


def spec_words(spec: Spec) -> int:
    """Array entries one piece of material holds at a party (an upper bound on its words)."""
    return sum(p.size for p in (*spec.random_parts(), *spec.correlated_parts()))


def _cuts(n: int, batch_size: int | None) -> tuple[tuple[int, int], ...]:
    if batch_size is None or batch_size >= n:
        return ((0, n),)
    return tuple((i, min(i + batch_size, n)) for i in range(0, n, batch_size))


def make_plan(
    spec: TrainingSpec, options: MPCOptions, rows: Sequence[int], n_features: int
) -> TrainPlan:
    """The public plan for ``spec`` on rows split as ``rows`` among the parties.

    Shuffling (mini-batches only) is public and not secret: with ``spec.random_state``
    None a fresh seed is drawn, and the same seed is handed to every party.
    """
    counts = tuple(int(r) for r in rows)
    n = sum(counts)
    if n < 1 or n_features < 1:
        raise ParameterError(
            f"training needs at least one row and one feature, got {n} x {n_features}"
        )
    seed = spec.random_state if spec.random_state is not None else secrets.randbits(63)
    batch = spec.batch_size
    perm = np.random.default_rng(seed).permutation(n) if batch is not None and batch < n else None
    poly = None
    sigmoid: Literal["piecewise", "poly"] | None = None
    if spec.task == "logistic":
        sigmoid = options.sigmoid
        if sigmoid == "poly":
            poly = fit_sigmoid(spec.sigmoid_degree, spec.sigmoid_interval)
    # GDConfig drives the optimizer update only (learning rate, penalty, Nesterov); the
    # link is evaluated by the party program, so the config is built as least squares,
    # which needs no polynomial (SecureML's piecewise sigmoid is not one).
    cfg = GDConfig(
        task="linear",
        optimizer=spec.optimizer,
        learning_rate=float(spec.learning_rate),
        epochs=int(spec.max_iter),
        l2=float(spec.l2),
        intercept=bool(spec.fit_intercept),
    )
    return TrainPlan(
        task=spec.task,
        rows=counts,
        n_features=int(n_features),
        intercept=bool(spec.fit_intercept),
        perm=perm,
        cuts=_cuts(n, batch),
        epochs=int(spec.max_iter),
        cfg=cfg,
        sigmoid=sigmoid,
        poly=poly,
        feature_bound=options.feature_bound,
        target_bound=options.target_bound,
        weight_bound=options.weight_bound,
        frac_bits=options.frac_bits,
        truncation=options.truncation,
        model=options.model,
        prefetch_words=options.prefetch_words,
        out_of_range=spec.out_of_range,
        seed=int(seed),
    )
