"""Planning CKKS training and inference: parameters, depth, refreshes, keys, sizes, time.

Depth of one training step (`securecomp.models.gd`, column packing, Kim et al. 2018):

=================  =====================================  ===============================
stage              refresh every step (default)           no refresh (``refresh="never"``)
=================  =====================================  ===============================
forward ``Z v``    1: ``(Z * V).sum(axis=1)``, V fresh     2: ``Z @ v`` (replicate v_j, mul)
link               ``ceil(log2(degree + 1))`` (0 linear)   same
gradient ``Zᵀr``   1 (products, then slot sums)           1
update             0: done by the key holder in float64   1 (products by constants)
=================  =====================================  ===============================

With a refresh every step the chain holds one step; without, the whole run. The chain is
``[q0, s x depth, q0]``: the scale 2^s as large as the HomomorphicEncryption.org table
allows at the smallest ring degree N, and q0 large enough to decrypt the largest value at
the last level (the gradient *sum*, up to ``max_j ||Z_j||_1 * max|r|``, or the weights).
Every candidate passes `securecomp.params.validate_ckks` (128-bit table, SEAL primes,
scale drift).

The time estimate is a cost model (`CostModel`) whose constants were measured with TenSEAL
0.3.18 on a 2-core machine at N = 8192 and scaled with N log N; the benchmarks print it
beside measured times. Key and ciphertext sizes are uncompressed (SEAL's serialization
compresses about 2x).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from securecomp.errors import ParameterError
from securecomp.he.ckks import polyval_depth
from securecomp.params import (
    DEFAULT_CKKS_PARAMETERS,
    CKKSParameters,
    max_log_q,
    scale_drift,
    validate_ckks,
)

__all__ = [
    "CostModel",
    "InferencePlan",
    "StepDepth",
    "TrainingPlan",
    "capacity",
    "chain_for",
    "padded_rows",
    "plan_inference",
    "plan_training",
    "polyval_products",
]

Refresh = Literal["auto", "never"]

#: Ring degrees searched for training and inference (smaller rings hold too few rows and
#: too little modulus for a useful scale).
TRAINING_DEGREES = (8192, 16384, 32768)
#: Scales below 2^24 leave errors near 1e-4 after a few products: too coarse for training.
MIN_SCALE_BITS = 24
#: Scales above 2^40 buy nothing for these circuits and shorten the chain.
MAX_SCALE_BITS = 40
#: SEAL's largest prime.
_MAX_PRIME_BITS = 60


def capacity(params: CKKSParameters, level: int) -> float:
    """Largest magnitude a ciphertext at ``level`` decrypts without wrapping (2-bit margin)."""
    sizes = params.coeff_mod_bit_sizes
    bits = sizes[0] + (params.depth - level) * params.scale_bits
    return math.ldexp(1.0, bits - params.scale_bits - 2)


def padded_rows(rows: int, slots: int) -> int:
    """Rows after padding: the next power of two (TenSEAL's slot sum is fastest on one),
    or whole ciphertexts beyond the slot count."""
    if rows <= slots:
        return 1 << max(0, (rows - 1).bit_length())
    return -(-rows // slots) * slots


def chain_for(
    depth: int,
    magnitude: float,
    *,
    security_bits: int = 128,
    degrees: Sequence[int] = TRAINING_DEGREES,
    min_scale: int = MIN_SCALE_BITS,
) -> CKKSParameters:
    """The smallest secure chain ``[q0, s x depth, q0]`` decrypting ``magnitude`` at the end.

    Smallest N first, then the largest scale s <= 40 whose chain fits the table row.

    Raises
    ------
    ParameterError
        No ring degree in ``degrees`` fits: the message says what the depth would need.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ParameterError(f"depth must be a positive int, got {depth!r}")
    if not math.isfinite(magnitude) or magnitude <= 0:
        raise ParameterError(f"magnitude must be finite and > 0, got {magnitude!r}")
    extra = max(1, math.ceil(math.log2(magnitude * 1.01)))
    for n in degrees:
        cap = max_log_q(n, security_bits)
        for s in range(MAX_SCALE_BITS, min_scale - 1, -1):
            q0 = s + 2 + extra
            if q0 > _MAX_PRIME_BITS or 2 * q0 + depth * s > cap:
                continue
            params = CKKSParameters(n, (q0, *([s] * depth), q0), s)
            try:
                validate_ckks(params, depth=depth, security_bits=security_bits)
            except ParameterError:
                continue  # SEAL has too few primes of that size, or they drift
            return params
    largest = degrees[-1] if degrees else 0
    raise ParameterError(
        f"a multiplicative depth of {depth} with values up to {magnitude:.3g} does not fit "
        f"secure CKKS parameters: at N = {largest} the {security_bits}-bit table allows "
        f"{max_log_q(largest, security_bits) if largest else 0} bits of modulus, and "
        f"{depth} levels of at least 2^{min_scale} need about "
        f"{2 * (min_scale + 2 + extra) + depth * min_scale}; let the key holder refresh "
        "(refresh='auto'), train for fewer steps, or lower the sigmoid degree"
    )


def polyval_products(degree: int) -> tuple[int, int]:
    """(ciphertext products, plaintext products) of the depth-optimal odd-polynomial
    evaluation in `securecomp.he.ckks.polyval` (squarings included)."""
    if degree < 1:
        return 0, 0
    top = 1 << (degree.bit_length() - 1)
    squarings = top.bit_length() - 1

    def chain(i: int) -> int:
        if i == 1:
            return 0
        a = i.bit_length() - 1
        r = i - (1 << a)
        return chain(i // 2 if r == 0 else r) + 1

    terms = range(1, degree + 1, 2)  # the sigmoid fits are odd around 1/2
    return squarings + sum(chain(i) for i in terms), len(terms)


@dataclass(frozen=True)
class StepDepth:
    """Levels one training step consumes, by stage."""

    forward: int
    link: int
    gradient: int
    update: int

    @property
    def total(self) -> int:
        return self.forward + self.link + self.gradient + self.update


def step_depth(task: str, sigmoid_degree: int, refresh: Refresh) -> StepDepth:
    """Depth of one step (see the module docstring)."""
    link = polyval_depth(sigmoid_degree) if task == "logistic" else 0
    if refresh == "never":
        return StepDepth(forward=2, link=link, gradient=1, update=1)
    return StepDepth(forward=1, link=link, gradient=1, update=0)


@dataclass(frozen=True)
class CostModel:
    """Per-operation costs (milliseconds at N = 8192) of TenSEAL 0.3.18 on a 2-core machine.

    ``k`` is the number of primes of the operand's modulus at its level. Operations scale
    with ``(N / 8192) * log2(N) / 13`` at other ring degrees. The constants are medians of
    runs on a shared machine; expect 2x either way.
    """

    mul_base: float = 0.8  # ciphertext product, relinearization and rescale: base + c k^2
    mul_k2: float = 0.3
    mul_plain_k: float = 0.4  # product by a plaintext and rescale: c k
    rotate_base: float = 0.5  # one rotation (key switch): base + c k^2
    rotate_k2: float = 0.17
    encrypt_prime: float = 1.2  # public-key encryption: per prime (special prime included)
    decrypt_k: float = 0.35
    serialize_mb_per_s: float = 100.0  # serialize + deserialize, per uncompressed MB
    context_mb_per_s: float = 80.0  # export + import of a public context, per uncompressed MB
    keygen_prime: float = 100.0  # key generation with Galois keys, per prime

    def factor(self, n: int) -> float:
        return (n / 8192) * (math.log2(n) / 13.0)

    def mul(self, k: int) -> float:
        return self.mul_base + self.mul_k2 * k * k

    def rotate(self, k: int) -> float:
        return self.rotate_base + self.rotate_k2 * k * k


def ciphertext_bytes(params: CKKSParameters, level: int) -> int:
    """Uncompressed size of a ciphertext at ``level``: 2 polynomials x N x primes x 8 B."""
    return 2 * params.poly_modulus_degree * (params.depth + 1 - level) * 8


def key_bytes(params: CKKSParameters, *, galois: bool) -> dict[str, int]:
    """Uncompressed sizes of the public key material (and the Galois key count)."""
    n, primes = params.poly_modulus_degree, len(params.coeff_mod_bit_sizes)
    data = primes - 1
    one_switch_key = data * 2 * n * primes * 8
    count = 2 * int(math.log2(params.slot_count)) if galois else 0
    return {
        "public_key": 2 * n * primes * 8,
        "relin_keys": one_switch_key,
        "galois_keys": count * one_switch_key,
        "galois_key_count": count,
        "secret_key": n * primes * 8,
    }


@dataclass(frozen=True)
class TrainingPlan:
    """Everything decided before any key exists (see `plan_training`)."""

    params: CKKSParameters
    refresh: Refresh
    step_depth: StepDepth
    chain_depth_used: int
    steps: int
    refreshes: int
    batch_rows: tuple[int, ...]
    padded_rows: tuple[int, ...]
    width: int
    gradient_bound: float
    capacity_at_decryption: float
    rotation_steps: tuple[int, ...]
    key_sizes: dict[str, int]
    ciphertext_sizes: dict[str, int]
    messages_per_step: dict[str, int]
    estimated_seconds: dict[str, float]
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (parameters as text and chain)."""
        out = asdict(self)
        out["params"] = str(self.params)
        out["chain"] = list(self.params.coeff_mod_bit_sizes)
        out["poly_modulus_degree"] = self.params.poly_modulus_degree
        out["security_bits"] = self.params.security_bits
        out["scale_drift"] = scale_drift(self.params, self.chain_depth_used).cumulative_drift
        out["step_depth"] = {**asdict(self.step_depth), "total": self.step_depth.total}
        out["estimated_total_seconds"] = sum(self.estimated_seconds.values())
        return out


def plan_training(
    *,
    task: str,
    sigmoid_degree: int,
    epochs: int,
    batch_rows: Sequence[int],
    width: int,
    gradient_bound: float,
    value_bound: float,
    weight_bound: float = 16.0,
    refresh: Refresh = "auto",
    params: CKKSParameters | None = None,
    security_bits: int = 128,
    cost: CostModel | None = None,
) -> TrainingPlan:
    """Plan an encrypted training run.

    Parameters
    ----------
    task, sigmoid_degree, epochs
        As in `securecomp.models.protocol.TrainingSpec`.
    batch_rows : sequence of int
        Real rows of each mini-batch.
    width : int
        Columns (features plus the intercept column).
    gradient_bound : float
        Bound on ``|Zᵀ r|`` (decrypted at the last level with refreshes).
    value_bound : float
        Bound on the encrypted features (checked against the first prime).
    weight_bound : float
        Bound on the weights, decrypted at the last level without refreshes.
    refresh : {"auto", "never"}
    params : CKKSParameters, optional
        Use these instead of planning; checked against the depth and the bounds.

    Raises
    ------
    ParameterError
        The depth or the magnitudes do not fit secure parameters (or ``params``).
    """
    if refresh not in ("auto", "never"):
        raise ParameterError(f"refresh must be 'auto' or 'never', got {refresh!r}")
    if not batch_rows or min(batch_rows) < 1 or width < 1:
        raise ParameterError("training needs at least one non-empty batch and one column")
    depth = step_depth(task, sigmoid_degree, refresh)
    steps = epochs * len(batch_rows)
    if refresh == "never":
        needed, magnitude = depth.total * steps, max(value_bound, weight_bound)
    else:
        needed, magnitude = depth.total, max(gradient_bound, value_bound)
    if params is None:
        params = chain_for(needed, magnitude, security_bits=security_bits)
    else:
        validate_ckks(params, depth=needed, security_bits=security_bits)
    cap = capacity(params, needed)
    if magnitude >= cap:
        raise ParameterError(
            f"{params} decrypts values up to {cap:.3g} at level {needed}, but this run needs "
            f"{magnitude:.3g} (gradient sums over up to {max(batch_rows)} rows); use a larger "
            "first prime, smaller mini-batches, or let the planner choose (params=None)"
        )
    if value_bound >= capacity(params, params.depth):
        raise ParameterError(
            f"{params} encrypts values up to {capacity(params, params.depth):.3g}, but the "
            f"features reach {value_bound:.3g}; standardize (or clip) them, or use a larger "
            "first prime"
        )
    slots = params.slot_count
    padded = tuple(padded_rows(r, slots) for r in batch_rows)
    rotations = tuple(1 << i for i in range(int(math.log2(min(max(padded), slots)))))
    cm = cost or CostModel()
    seconds = _estimate(cm, params, depth, sigmoid_degree, task, padded, width, steps, refresh)
    fresh = ciphertext_bytes(params, 0)
    chunks = [-(-p // slots) for p in padded]
    notes = [
        "sizes are uncompressed; SEAL's serialization compresses ciphertexts about 2x",
        "times are a cost model (TenSEAL 0.3.18, 2-core machine), not a measurement",
    ]
    if refresh == "auto":
        notes.append(
            "one refresh per step: the key holder decrypts the gradient sum (the chain's "
            "last level) and re-encrypts the next look-ahead weights"
        )
    return TrainingPlan(
        params=params,
        refresh=refresh,
        step_depth=depth,
        chain_depth_used=needed,
        steps=steps,
        refreshes=steps if refresh == "auto" else 0,
        batch_rows=tuple(int(r) for r in batch_rows),
        padded_rows=padded,
        width=width,
        gradient_bound=float(gradient_bound),
        capacity_at_decryption=cap,
        rotation_steps=rotations,
        key_sizes=key_bytes(params, galois=True),
        ciphertext_sizes={
            "fresh": fresh,
            "gradient_sum": ciphertext_bytes(params, min(needed, params.depth)),
            "training_data": sum((width + 1) * c for c in chunks) * fresh,
        },
        messages_per_step=(
            {
                "weights (key holder -> server)": width * max(chunks),
                "gradient (server -> key holder)": width,
            }
            if refresh == "auto"
            else {}
        ),
        estimated_seconds=seconds,
        notes=tuple(notes),
    )


def _estimate(
    cm: CostModel,
    params: CKKSParameters,
    depth: StepDepth,
    degree: int,
    task: str,
    padded: Sequence[int],
    width: int,
    steps: int,
    refresh: Refresh,
) -> dict[str, float]:
    n, slots, top = params.poly_modulus_degree, params.slot_count, params.depth + 1
    f = cm.factor(n) / 1000.0  # ms -> s, scaled to N
    primes = len(params.coeff_mod_bit_sizes)
    mb = 1e-6
    chunks = [-(-p // slots) for p in padded]
    ct_products, pt_products = polyval_products(degree) if task == "logistic" else (0, 0)
    keys = key_bytes(params, galois=True)
    setup = (
        primes * cm.keygen_prime / 1000.0 * cm.factor(n)
        + (keys["public_key"] + keys["relin_keys"] + keys["galois_keys"]) * mb / cm.context_mb_per_s
    )
    data = sum((width + 1) * c for c in chunks) * (
        primes * cm.encrypt_prime * f + ciphertext_bytes(params, 0) * mb / cm.serialize_mb_per_s
    )
    per_epoch_server = 0.0
    per_epoch_keyholder = 0.0
    for c, rows in zip(chunks, padded, strict=True):
        k0 = top  # data primes of a fresh ciphertext
        k_link = top - depth.forward
        k_grad = k_link - depth.link
        rot = int(math.log2(min(rows, slots)))
        server = width * c * cm.mul(k0) * depth.forward
        server += c * (ct_products * cm.mul(k_link) + pt_products * cm.mul_plain_k * k_link)
        server += width * c * (cm.mul(k_grad) + rot * cm.rotate(k_grad - 1))
        per_epoch_server += server * f
        if refresh == "auto":
            kh = width * c * primes * cm.encrypt_prime + width * cm.decrypt_k * (k_grad - 1)
            io = (
                (
                    width * c * ciphertext_bytes(params, 0)
                    + width * ciphertext_bytes(params, params.depth + 1 - (k_grad - 1))
                )
                * mb
                / cm.serialize_mb_per_s
            )
            per_epoch_keyholder += kh * f + io
        else:
            per_epoch_server += width * 3 * cm.mul_plain_k * k_grad * f
    epochs = steps // max(1, len(padded))
    return {
        "setup (keys, public context)": setup,
        "encrypt and send data": data,
        "server steps": per_epoch_server * epochs,
        "key holder refreshes": per_epoch_keyholder * epochs,
    }


@dataclass(frozen=True)
class InferencePlan:
    """Parameters and costs of batch inference."""

    params: CKKSParameters
    depth: int
    rows_per_ciphertext: int
    ciphertexts_per_query: int
    estimated_seconds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["params"] = str(self.params)
        out["chain"] = list(self.params.coeff_mod_bit_sizes)
        return out


def plan_inference(
    *,
    rows: int,
    width: int,
    output: Literal["logits", "probabilities"],
    sigmoid_degree: int,
    logit_bound: float = 1024.0,
    params: CKKSParameters | None = None,
    security_bits: int = 128,
    cost: CostModel | None = None,
) -> InferencePlan:
    """Plan encrypted batch inference on ``rows`` x ``width`` features (intercept excluded).

    Logits need one level (``X @ w``, or ``(X * W).sum(axis=1)`` with an encrypted model);
    probabilities add the polynomial's levels. The default parameters
    ``[60, 40, 40, 60]`` serve logits; deeper outputs get a planned chain.
    """
    if output not in ("logits", "probabilities"):
        raise ParameterError(f"output must be 'logits' or 'probabilities', got {output!r}")
    depth = 1 + (polyval_depth(sigmoid_degree) if output == "probabilities" else 0)
    if params is None:
        if depth <= DEFAULT_CKKS_PARAMETERS.depth:
            params = DEFAULT_CKKS_PARAMETERS
        else:
            params = chain_for(depth, logit_bound, security_bits=security_bits)
    else:
        validate_ckks(params, depth=depth, security_bits=security_bits)
    slots = params.slot_count
    chunks = -(-rows // slots)
    cm = cost or CostModel()
    f = cm.factor(params.poly_modulus_degree) / 1000.0
    primes = len(params.coeff_mod_bit_sizes)
    top = params.depth + 1
    cts = width * chunks
    seconds = {
        "client encrypt": cts * primes * cm.encrypt_prime * f,
        "server evaluate": (cts * cm.mul_plain_k * top + (depth - 1) * chunks * cm.mul(top)) * f,
        "client decrypt": chunks * cm.decrypt_k * (top - depth) * f,
        "serialize and load query and scores": (
            cts * ciphertext_bytes(params, 0) + chunks * ciphertext_bytes(params, depth)
        )
        * 1e-6
        / cm.serialize_mb_per_s,
    }
    return InferencePlan(params, depth, slots, cts, seconds)
