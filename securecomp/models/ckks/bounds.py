"""Error bounds of one encrypted training step and of the trained weights, for release.

The key holder's decrypted weights carry the CKKS errors of every gradient sum it
decrypted; those errors depend on the secret key, so the weights leave the key holder only
through noise flooding sized from a bound (`securecomp.he.ckks.release`, Li-Micciancio
2021). The bound follows the step's circuit, row by row, with the per-operation standard
deviations of `securecomp.params.CKKSNoiseModel` (Costache et al., SAC 2023: slot errors
of independent operations add in quadrature) and the values the key holder knows (its own
rows and the weights it encrypted):

1. ``z_i = sum_j X_ij V_j`` (fresh x fresh, relinearized and rescaled);
2. the polynomial sigmoid, by the decomposition of `securecomp.he.ckks.polyval`: the
   coefficient enters at the leaf (``c z``, whose rescale error is absolute, so it grows
   with the powers of ``z`` it is multiplied by afterwards), then products by powers;
3. ``r_i = f(z_i) - y_i`` (y fresh);
4. ``s_j = sum_i X_ij r_i`` (products, then ``log2(rows)`` rotations, each a key switch).

The heuristic bound is ``z`` standard deviations of the Laplace slot law for a tail
``2^-failure_log2`` per value (`securecomp.params.heuristic_tail_sigmas`). A worst-case
bound (canonical-embedding norms, `CKKSNoiseModel` worst case) is also given; it is
several orders of magnitude larger. The weights accumulate ``(α / m) · e_s`` per step
through the optimizer's recurrence (`weight_error`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from securecomp.models.approx import PolynomialSigmoid
from securecomp.models.gd import Step
from securecomp.params import (
    CKKSNoiseModel,
    CKKSParameters,
    ErrorBound,
    ErrorModel,
    heuristic_tail_sigmas,
)

__all__ = ["NoiseConstants", "StepInputs", "step_error", "weight_error"]


@dataclass(frozen=True)
class StepInputs:
    """What the key holder knows about a step: its rows, labels and look-ahead weights."""

    Z: NDArray[np.float64]
    y: NDArray[np.float64]
    v: NDArray[np.float64]
    padded_rows: int


@dataclass(frozen=True)
class NoiseConstants:
    """Per-operation slot errors (decoded units) of a parameter set, for one error model.

    Heuristic: standard deviations, combined in quadrature. Worst case: canonical-norm
    bounds, combined linearly.
    """

    fresh: float
    rescale: float
    product: tuple[float, ...]  # relinearization + rescale of a product at each level
    rotation: tuple[float, ...]  # one key switch at scale Δ, at each level
    linear: bool

    @classmethod
    def of(cls, params: CKKSParameters, model: ErrorModel) -> NoiseConstants:
        nm = CKKSNoiseModel(params)
        worst = model is ErrorModel.WORST_CASE

        def pick(b: ErrorBound) -> float:
            return b.worst if worst else b.std

        zero = ErrorBound(0.0, 0.0, 0.0, 0.0, 0)
        rescale = pick(nm.multiply_plain(zero, 0.0))
        product, rotation = [], []
        for lvl in range(params.depth):
            z = ErrorBound(0.0, 0.0, 0.0, 0.0, lvl)
            prod = pick(nm.multiply(z, z))
            product.append(prod)
            # The key switch alone (no rescale rounding), at scale Δ instead of Δ².
            ks = (prod - rescale) if worst else math.sqrt(max(prod**2 - rescale**2, 0.0))
            rotation.append(max(ks, 0.0) * params.scale)
        return cls(pick(nm.fresh(0.0)), rescale, tuple(product), tuple(rotation), worst)

    def at(self, table: tuple[float, ...], level: int) -> float:
        return table[min(level, len(table) - 1)]

    def add(self, *errors: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Error of a sum of independently perturbed values."""
        if self.linear:
            return np.asarray(sum(np.abs(e) for e in errors), dtype=np.float64)
        return np.sqrt(np.asarray(sum(np.square(e) for e in errors), dtype=np.float64))

    def mul(
        self,
        a: NDArray[np.float64],
        ea: NDArray[np.float64] | float,
        b: NDArray[np.float64] | float,
        eb: NDArray[np.float64] | float,
        added: float,
    ) -> NDArray[np.float64]:
        """Error of ``a * b`` from the operands' errors and the product's own."""
        terms: list[NDArray[np.float64] | float] = [np.abs(b) * ea, np.abs(a) * eb, added]
        if self.linear:
            terms.append(np.abs(ea) * np.abs(eb))
        return self.add(*terms)


def _split(i: int) -> tuple[int, int]:
    a = i.bit_length() - 1
    r = i - (1 << a)
    return (i // 2, i // 2) if r == 0 else (r, 1 << a)


def _polynomial_error(
    nc: NoiseConstants, z: NDArray[np.float64], ez: NDArray[np.float64], coeffs: Sequence[float]
) -> NDArray[np.float64]:
    degree = len(coeffs) - 1
    top = 1 << (degree.bit_length() - 1)
    val: dict[int, NDArray[np.float64]] = {1: z}
    err: dict[int, NDArray[np.float64]] = {1: ez}
    level = {1: 1}
    p = 1
    while p * 2 <= top:
        val[2 * p] = val[p] * val[p]
        err[2 * p] = nc.mul(val[p], err[p], val[p], err[p], nc.at(nc.product, level[p]))
        level[2 * p] = level[p] + 1
        p *= 2

    def term(c: float, i: int) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
        if i == 1:  # the leaf: c z, rescaled (absolute rounding error)
            return c * z, nc.add(abs(c) * ez, nc.rescale), 2
        left, right = _split(i)
        tv, te, tl = term(c, left)
        top_level = max(tl, level[right])
        e = nc.mul(tv, te, val[right], err[right], nc.at(nc.product, top_level))
        return tv * val[right], e, top_level + 1

    return nc.add(*(term(c, i)[1] for i, c in enumerate(coeffs[1:], start=1) if c != 0.0))


def step_error(
    params: CKKSParameters,
    inputs: StepInputs,
    *,
    sigmoid: PolynomialSigmoid | None,
    model: ErrorModel = ErrorModel.HEURISTIC,
    failure_log2: float = 40.0,
    constants: NoiseConstants | None = None,
) -> float:
    """Bound on the error of every decrypted gradient sum of one step.

    Parameters
    ----------
    params : CKKSParameters
    inputs : StepInputs
        The key holder's rows (real rows only), labels and look-ahead weights.
    sigmoid : PolynomialSigmoid or None
        The link (None for least squares).
    model : ErrorModel
        Heuristic (tail ``2^-failure_log2`` per value) or worst case.
    constants : NoiseConstants, optional
        Precomputed for ``params`` and ``model``.
    """
    nc = constants or NoiseConstants.of(params, model)
    Z, y = inputs.Z, inputs.y
    # The key holder encrypts v / B (logistic): the polynomial runs on z / B.
    scale = 1.0 if sigmoid is None else 1.0 / sigmoid.interval
    v = inputs.v * scale
    rows, width = Z.shape
    rotations = max(1, math.ceil(math.log2(max(inputs.padded_rows, 2))))
    e0 = nc.fresh
    prod0 = nc.at(nc.product, 0)
    # z_i = sum_j X_ij V_j: each product perturbed by both fresh errors and its own.
    if nc.linear:
        ez = (
            np.abs(Z) @ np.full(width, e0)
            + e0 * float(np.sum(np.abs(v)))
            + width * (prod0 + e0 * e0)
        )
    else:
        ez = np.sqrt(e0**2 * (np.sum(Z**2, axis=1) + float(np.sum(v**2))) + width * prod0**2)
    z = Z @ v
    if sigmoid is not None:
        fz = sigmoid(z / scale)
        ef = _polynomial_error(nc, z, ez, sigmoid.coefficients_for(scale))
    else:
        fz, ef = z, ez
    r = fz - y
    er = nc.add(ef, e0)
    link_levels = 1 + (sigmoid.depth if sigmoid is not None else 0)
    prod = nc.at(nc.product, link_levels)
    rot = nc.at(nc.rotation, link_levels + 1)
    if nc.linear:
        spread = np.abs(Z).T @ er
        eg = spread * (1.0 + e0) + e0 * float(np.sum(np.abs(r))) + rows * prod + rotations * rot
        return float(np.max(eg))
    var_g = (Z**2).T @ er**2 + e0**2 * float(np.sum(r**2)) + rows * prod**2 + rotations * rot**2
    return heuristic_tail_sigmas(failure_log2) * float(np.sqrt(np.max(var_g)))


def weight_error(
    step_errors: Sequence[float], steps: Sequence[Step], learning_rate: float
) -> float:
    """Bound on the error of the final weights: the optimizer's recurrence on the errors.

    ``e_w⁺ = e_v + (α/m) e_s`` and ``e_v⁺ = |1 - η| e_w⁺ + |η| e_w``.
    """
    ew = ev = 0.0
    for e, st in zip(step_errors, steps, strict=True):
        wn = ev + learning_rate / st.rows * e
        vn = abs(1.0 - st.eta) * wn + abs(st.eta) * ew
        ew, ev = wn, vn
    return ew
