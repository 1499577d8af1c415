"""The SPMD programs of MPC model training and scoring: what each computing party runs.

Training (SecureML, Mohassel and Zhang, S&P 2017, section 4.1 for linear and 4.2 for
logistic regression, with mini-batch gradient descent; Nesterov's method as in
`securecomp.models.gd`). Party ``j`` holds rows ``X_j, y_j`` of a horizontally partitioned
data set; every party runs `train_party` with its own rows and the public `TrainPlan`:

1. Each party secret-shares its design matrix ``Z_j = [1 | X_j]`` and labels ``y_j``
   among all computing parties (`securecomp.mpc.sharing.share`: seeds only, checked
   against the public bounds); everyone stacks the shares in party order and cuts them
   into the plan's mini-batches with the public permutation (local operations).
2. Material for a chunk of steps is fetched from the dealer first (offline phase).
3. Each step on batch ``(Z_b, y_b)`` of ``m`` rows, with the look-ahead weights v:
   (a) logits ``z = Z_b v``: a Beaver matrix product and a truncation;
   (b) ``f(z)``: SecureML's piecewise sigmoid ``relu(z + 1/2) - relu(z - 1/2)`` (one
   comparison on ``2m`` values, one Beaver product), the identity for least squares,
   or a polynomial (option);
   (c) gradient sum ``g = Z_bᵀ (f(z) - y_b)``: a Beaver matrix product and a truncation;
   (d) the optimizer update ``w⁺, v⁺`` as public linear combinations of ``(v, g, w)``
   (`TrainPlan.update_coefficients`): local products and a single truncation.
4. The model is revealed to every party, or kept secret-shared.

Online cost per step with dealer truncation, logistic regression with the piecewise
sigmoid: 14 rounds (2 + 9 + 2 + 1); with SecureML's local truncation, 11.

The bound tracker guarantees each truncation's precondition from the public bounds and
the claimed weight bound; SecureML additionally reuses one masked copy of each batch
across epochs (its section 4.2 "vectorization" with fixed masks), which this dealer's
single-use triples do not provide: each product here masks its operands afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from securecomp.encoding import fixed_point, ring_sum
from securecomp.errors import EncodingOverflowError
from securecomp.models.gd import Step
from securecomp.mpc import bounds
from securecomp.mpc import nonlinear as nl
from securecomp.mpc.backend import assume_bound
from securecomp.mpc.comparison import ltz
from securecomp.mpc.models.plan import POLY_INPUT_CLAIM, TrainPlan
from securecomp.mpc.session import Session
from securecomp.mpc.sharing import reveal_ring
from securecomp.mpc.truncation import truncate
from securecomp.tensor import SecureTensor

__all__ = [
    "PartyModel",
    "ReleaseInput",
    "ScoreInput",
    "TrainInput",
    "design",
    "release_party",
    "score_party",
    "train_party",
]


def design(X: NDArray[np.float64], intercept: bool) -> NDArray[np.float64]:
    """``[1 | X]`` (or ``X``): the ones column carries the intercept, as in `gd`."""
    return np.hstack([np.ones((X.shape[0], 1)), X]) if intercept else np.asarray(X, np.float64)


@dataclass(frozen=True)
class TrainInput:
    """One party's input to `train_party`: the public plan and its own rows only."""

    plan: TrainPlan
    X: NDArray[np.float64] | None
    y: NDArray[np.float64] | None


@dataclass
class PartyModel:
    """What one party holds after training.

    ``weights`` (intercept first) when the model was revealed; otherwise ``share``, this
    party's additive share of it (ring Z_2^64, ``frac_bits`` fractional bits) with the
    public ``bound``. ``outside`` counts, per step, the batch rows whose logit left the
    polynomial sigmoid's interval (polynomial sigmoid only; revealed to every party).
    """

    weights: NDArray[np.float64] | None
    share: NDArray[np.uint64] | None
    bound: int
    outside: list[int] = field(default_factory=list)


def _share_rows(sess: Session, plan: TrainPlan, mine: TrainInput) -> tuple[Any, Any]:
    """Step 1: everyone's rows, secret-shared and stacked in party order (ring arrays)."""
    Zs, ys = [], []
    for owner, rows in enumerate(plan.rows):
        if rows == 0:
            continue  # a computing party without data contributes nothing
        own = sess.party_id == owner
        z_vals = design(mine.X, plan.intercept) if own and mine.X is not None else None
        y_vals = mine.y if own else None
        if own and (z_vals is None or y_vals is None):
            # An owner without its rows: share() refuses an empty array (its shape is not
            # the plan's) and tells the other parties, who abort instead of waiting.
            z_vals, y_vals = np.zeros((0, 0)), np.zeros(0)
        Zs.append(
            sess.share(z_vals, owner=owner, bound=plan.z_bound, shape=(rows, plan.width)).payload
        )
        ys.append(sess.share(y_vals, owner=owner, bound=plan.y_bound, shape=(rows,)).payload)
    Z = np.concatenate(Zs)
    y = np.concatenate(ys)
    if plan.perm is not None:
        Z, y = Z[plan.perm], y[plan.perm]
    return Z, y


def _batches(
    sess: Session, plan: TrainPlan, Z: NDArray[np.uint64], y: NDArray[np.uint64]
) -> list[tuple[SecureTensor, SecureTensor, SecureTensor]]:
    wrap = sess.backend.wrap
    rz, ry = plan.ring(plan.z_bound), plan.ring(plan.y_bound)
    out = []
    for start, stop in plan.cuts:
        zb = np.ascontiguousarray(Z[start:stop])
        # The transpose is kept too: the gradient's product needs it every epoch.
        out.append((wrap(zb, rz), wrap(np.ascontiguousarray(zb.T), rz), wrap(y[start:stop], ry)))
    return out


def _poly_sigmoid(sess: Session, plan: TrainPlan, z: SecureTensor) -> tuple[SecureTensor, int]:
    """The plan's polynomial sigmoid in the scaled variable u = z / B, and the number of
    rows with |u| > 1 (revealed to every party)."""
    poly = plan.poly
    if poly is None:  # excluded by make_plan; kept for type checkers
        raise EncodingOverflowError("the plan has no polynomial sigmoid")
    b = poly.interval
    # Coefficients in u: b_k = c_k B^k are of order one, so 16 fractional bits keep them
    # exact enough, which the tiny c_k of powers of z would not be.
    odd = [c * b**k for k, c in enumerate(poly.coefficients) if k % 2]
    u = assume_bound(z * (1.0 / b), POLY_INPUT_CLAIM)
    if len(odd) == 1:
        p = u * odd[0] + 0.5
    else:
        sq = u * u
        q = sq * odd[-1] + odd[-2]
        for c in odd[-3::-1]:
            q = q * sq + c
        p = u * q + 0.5
    # Range check: [1 + u < 0] + [1 - u < 0], summed and opened as one count.
    one = np.uint64(1 << sess.frac_bits)
    plus, minus = np.array(u.payload), np.negative(u.payload)
    if sess.is_first:
        plus += one
        minus += one
    bits = ltz(sess, np.stack([plus, minus]))
    count = reveal_ring(
        sess, np.asarray(ring_sum(bits)), None, "count of logits outside the sigmoid interval"
    )
    outside = 0 if count is None else int(count.view(np.int64))
    return p, outside


def _update(
    sess: Session,
    plan: TrainPlan,
    step: Step,
    w: SecureTensor,
    v: SecureTensor,
    g: SecureTensor,
) -> tuple[SecureTensor, SecureTensor]:
    """Step 3(d): w⁺ and v⁺ from public combinations of (v, g, w), one truncation."""
    coeffs = plan.update_coefficients(step)  # (outputs, 3, width)
    shift = plan.update_shift(step.rows)
    enc = fixed_point(shift, 64).encode(coeffs)
    signed = enc.view(np.int64)
    r_claim = plan.ring(plan.weight_bound)
    # The gradient's bound: the tracker's, or the one derived from the public bounds.
    r_g = min(int(g.meta["bound"]), plan.gradient_ring_bound(step.rows))
    operand_bounds = (int(v.meta["bound"]), r_g, int(w.meta["bound"]))
    pre = 0
    for out in range(coeffs.shape[0]):
        total = 0
        for k, r in enumerate(operand_bounds):
            total += r * bounds.plain_ring_max(signed[out, k])
        pre = max(pre, total)
    bounds.check_truncatable(pre, "the optimizer update", sess.frac_bits)
    stacked = np.stack([v.payload, g.payload, w.payload])  # (3, width)
    # Ring arithmetic: uint64 products and sums wrap modulo 2^64 by design.
    z: NDArray[np.uint64] = np.sum(enc * stacked[None, :, :], axis=1, dtype=np.uint64)
    outputs = int(coeffs.shape[0])
    res: NDArray[np.uint64] = truncate(sess, np.ascontiguousarray(z.reshape(-1)), shift)
    res = res.reshape(outputs, plan.width)
    # The claim: every iterate stays within the weight bound (checked on the revealed model).
    r_out = min(bounds.truncated(pre, shift), r_claim)
    w_next = sess.backend.wrap(res[0], r_out)
    v_next = sess.backend.wrap(res[1], r_out) if outputs > 1 else w_next
    return w_next, v_next


def _gradient_sum(
    sess: Session,
    plan: TrainPlan,
    step: Step,
    batch: tuple[SecureTensor, SecureTensor, SecureTensor],
    v: SecureTensor,
    outside: list[int],
) -> SecureTensor:
    """Steps 3(a)-(c): ``Z_bᵀ (f(Z_b v) - y_b)`` on shares."""
    zb, zbt, yb = batch
    z = zb @ v
    if plan.task == "linear":
        r = z - yb
    elif plan.sigmoid == "poly" and plan.poly is not None:
        s, count = _poly_sigmoid(sess, plan, z)
        outside.append(count)
        if count and plan.out_of_range == "raise":
            # Every party opened the same count: all of them stop at this step.
            b = plan.poly.interval
            raise EncodingOverflowError(
                f"{count} of {step.rows} logits left the polynomial sigmoid's interval "
                f"[-{b:g}, {b:g}] at step {step.index + 1}; use sigmoid='piecewise', widen "
                "sigmoid_interval or lower the learning rate"
            )
        r = s - yb
    else:
        r = nl.sigmoid_piecewise(z) - yb
    return zbt @ r


def train_party(sess: Session, mine: TrainInput) -> PartyModel:
    """Run MPC training as one computing party (see the module docstring for the steps).

    Every party calls this with the same ``mine.plan`` and only its own rows.
    """
    plan = mine.plan
    Z, y = _share_rows(sess, plan, mine)
    batches = _batches(sess, plan, Z, y)
    del Z, y
    r_claim = plan.ring(plan.weight_bound)
    zero = np.zeros(plan.width, dtype=np.uint64)
    w = v = sess.backend.wrap(zero, r_claim)
    outside: list[int] = []
    for chunk in plan.chunks():
        # Offline: the whole chunk's material in one request to the dealer.
        sess.prefetch([s for step in chunk for s in plan.step_specs(step)])
        for step in chunk:
            g = _gradient_sum(sess, plan, step, batches[step.batch], v, outside)
            w, v = _update(sess, plan, step, w, v, g)
    if plan.model == "reveal":
        weights = sess.reveal(w)
        return PartyModel(
            weights=np.asarray(weights, dtype=np.float64),
            share=None,
            bound=int(w.meta["bound"]),
            outside=outside,
        )
    return PartyModel(
        weights=None, share=np.array(w.payload), bound=int(w.meta["bound"]), outside=outside
    )


@dataclass(frozen=True)
class ScoreInput:
    """One party's input to `score_party`.

    The query party alone passes ``X``; every party passes the public ``weights`` (a
    revealed model) or its own ``share`` of a secret-shared one, with its public ``bound``.
    """

    query_party: int
    shape: tuple[int, int]
    intercept: bool
    z_bound: float
    X: NDArray[np.float64] | None
    weights: NDArray[np.float64] | None
    share: NDArray[np.uint64] | None
    bound: int


def score_party(sess: Session, mine: ScoreInput) -> NDArray[np.float64] | None:
    """Scores ``[1 | X] w`` on shares, revealed to the query party only (None elsewhere).

    1. The query party secret-shares its rows (seed only, checked against the bound).
    2. Public model: a local product by public weights and a truncation (1 round).
       Shared model: a Beaver matrix product and a truncation (2 rounds).
    3. The scores are opened to the query party (1 round).
    """
    q = mine.query_party
    n, width = mine.shape
    values = design(mine.X, mine.intercept) if sess.party_id == q and mine.X is not None else None
    Z = sess.share(values, owner=q, bound=mine.z_bound, shape=(n, width))
    if mine.weights is not None:
        scores = Z @ np.asarray(mine.weights, dtype=np.float64)
    else:
        share = mine.share if mine.share is not None else np.zeros(width, dtype=np.uint64)
        scores = Z @ sess.backend.wrap(share, mine.bound)
    out = sess.reveal(scores, to=q)
    return None if out is None else np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class ReleaseInput:
    """One party's share of a secret-shared model, and who receives it."""

    share: NDArray[np.uint64]
    bound: int
    to: tuple[int, ...]


def release_party(sess: Session, mine: ReleaseInput) -> NDArray[np.float64] | None:
    """Open a secret-shared model to ``mine.to`` (one round); None at the other parties."""
    out = sess.reveal(sess.backend.wrap(mine.share, mine.bound), to=mine.to)
    return None if out is None else np.asarray(out, dtype=np.float64)
