"""Planning CKKS training and inference: chains, depth, refreshes, sizes, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from securecomp.errors import ParameterError
from securecomp.he.ckks import ckks_keygen
from securecomp.models.ckks import CKKSProtocol, chain_for, plan_inference, plan_training
from securecomp.models.ckks.plan import (
    CostModel,
    capacity,
    ciphertext_bytes,
    key_bytes,
    padded_rows,
    polyval_products,
)
from securecomp.models.protocol import TrainingSpec
from securecomp.params import (
    DEFAULT_CKKS_PARAMETERS,
    CKKSParameters,
    max_log_q,
    scale_drift,
    validate_ckks,
)


@pytest.mark.parametrize(("depth", "magnitude"), [(1, 100.0), (2, 4000.0), (5, 1704.0), (6, 7.0)])
def test_chain_is_secure_and_holds_the_magnitude(depth: int, magnitude: float) -> None:
    p = chain_for(depth, magnitude)
    assert p.poly_modulus_degree == 8192  # all of these fit the smallest ring
    assert p.depth == depth
    assert p.total_log_q <= max_log_q(8192)
    validate_ckks(p, depth=depth)
    assert capacity(p, depth) > magnitude
    assert scale_drift(p).cumulative_drift < 0.05
    assert 24 <= p.scale_bits <= 40


def test_chain_for_breast_cancer_training() -> None:
    # Degree-5 logistic regression on 426 rows: the depth-5 chain at N = 8192.
    p = chain_for(5, 426 * 5.4)
    assert p.coeff_mod_bit_sizes[1:-1] == (27,) * 5
    assert p.security_bits >= 128


def test_a_depth_that_fits_nothing_is_refused() -> None:
    with pytest.raises(ParameterError, match="does not fit secure CKKS parameters"):
        chain_for(70, 16.0)
    with pytest.raises(ParameterError):
        chain_for(0, 1.0)


def test_padding_and_products() -> None:
    assert [padded_rows(r, 4096) for r in (1, 2, 3, 426, 512, 4096, 4097, 9000)] == [
        1,
        2,
        4,
        512,
        512,
        4096,
        8192,
        12288,
    ]
    assert polyval_products(3) == (2, 2)
    assert polyval_products(5) == (4, 3)
    assert polyval_products(7) == (6, 4)


def _spec(**kw: object) -> TrainingSpec:
    base: dict[str, object] = {"task": "logistic", "learning_rate": 0.6, "max_iter": 5}
    base.update(kw)
    return TrainingSpec(**base)  # type: ignore[arg-type]


def test_protocol_plan_reports_depth_refreshes_keys_sizes_and_time() -> None:
    plan = CKKSProtocol(_spec()).plan((426, 30))
    assert plan["step_depth"] == {"forward": 1, "link": 3, "gradient": 1, "update": 0, "total": 5}
    assert plan["steps"] == plan["refreshes"] == 5
    assert plan["padded_rows"] == (512,)
    assert plan["rotation_steps"] == tuple(2**i for i in range(9))
    assert plan["security_bits"] >= 128
    assert plan["key_sizes"]["galois_key_count"] == 24
    n, chain = plan["poly_modulus_degree"], plan["chain"]
    assert plan["ciphertext_sizes"]["fresh"] == 2 * n * (len(chain) - 1) * 8
    assert all(v > 0 for v in plan["estimated_seconds"].values())
    assert plan["inference"]["chain"] == [60, 40, 40, 60]
    assert "sigmoid" in plan and plan["assumption"].startswith("standardized")
    lin = CKKSProtocol(_spec(task="linear", max_iter=10)).plan((442, 10))
    assert lin["step_depth"]["total"] == 2 and lin["refreshes"] == 10
    mini = CKKSProtocol(_spec(batch_size=100)).plan((426, 30))
    assert mini["padded_rows"] == (128, 128, 128, 128, 32) and mini["steps"] == 25


def test_sizes_bound_the_real_serializations() -> None:
    backend, ctx = ckks_keygen()
    t = backend.encrypt(np.ones(10))
    assert len(t.to_bytes()) <= ciphertext_bytes(DEFAULT_CKKS_PARAMETERS, 0) + 1024
    assert len(ctx.to_bytes(galois_keys=False)) <= sum(
        v
        for k, v in key_bytes(DEFAULT_CKKS_PARAMETERS, galois=False).items()
        if k != "galois_key_count"
    )


def test_no_refresh_needs_a_chain_for_the_whole_run() -> None:
    spec = _spec(max_iter=10, options={"refresh": "never"})
    with pytest.raises(ParameterError, match="multiplicative depth of 70"):
        CKKSProtocol(spec).plan((569, 30))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), (rng.random(40) > 0.5).astype(float)
    with pytest.raises(ParameterError, match="does not fit"):
        CKKSProtocol(spec).fit(X, y)  # refused before any key exists
    short = CKKSProtocol(_spec(task="linear", max_iter=2, options={"refresh": "never"}))
    plan = short.plan((40, 3))
    assert plan["chain_depth_used"] == 8 and plan["refreshes"] == 0


def test_given_parameters_are_checked_against_depth_and_magnitude() -> None:
    shallow = _spec(options={"params": DEFAULT_CKKS_PARAMETERS})  # depth 2 < 5
    with pytest.raises(ParameterError, match="depth 5"):
        CKKSProtocol(shallow).plan((426, 30))
    small_q0 = CKKSParameters(8192, (30, 26, 26, 26, 26, 26, 30), 26)
    with pytest.raises(ParameterError, match="decrypts values up to"):
        CKKSProtocol(_spec(options={"params": small_q0})).plan((426, 30))
    tutorial = CKKSParameters(8192, (31, 26, 26, 26, 26, 26, 26, 31), 26)
    plan = CKKSProtocol(_spec(options={"params": tutorial})).plan((780, 9))
    assert plan["chain"] == [31, 26, 26, 26, 26, 26, 26, 31]
    assert plan["capacity_at_decryption"] == 2.0**29


@pytest.mark.parametrize("shape", [(0, 3), (3,), (3, 0), [3, 3], (3.0, 3), (True, 3)])
def test_bad_shapes(shape: object) -> None:
    with pytest.raises(ParameterError):
        CKKSProtocol(_spec()).plan(shape)  # type: ignore[arg-type]


def test_bad_options() -> None:
    for options in (
        {"unknown": 1},
        {"refresh": "sometimes"},
        {"params": (8192, (60, 40, 60), 40)},
        {"residual_bound": -1.0},
        {"security_bits": 100},
        {"noise_seed": 1.5},
        {"inference_model": "plain"},
        {"session": object()},
    ):
        with pytest.raises(ParameterError):
            CKKSProtocol(_spec(options=options))
    with pytest.raises(ParameterError):
        plan_training(
            task="linear",
            sigmoid_degree=5,
            epochs=1,
            batch_rows=[],
            width=2,
            gradient_bound=1.0,
            value_bound=1.0,
        )


def test_inference_plans() -> None:
    logits = plan_inference(rows=4096, width=30, output="logits", sigmoid_degree=5)
    assert logits.params == DEFAULT_CKKS_PARAMETERS and logits.ciphertexts_per_query == 30
    probs = plan_inference(rows=5000, width=30, output="probabilities", sigmoid_degree=5)
    assert probs.depth == 4 and probs.params.depth == 4 and probs.ciphertexts_per_query == 60
    assert probs.params.security_bits >= 128


def test_cost_model_scales_with_the_ring() -> None:
    cm = CostModel()
    assert cm.factor(8192) == 1.0
    assert cm.factor(16384) == pytest.approx(2 * 14 / 13)
    assert cm.mul(6) > cm.mul(1) > 0 and cm.rotate(3) > 0
    assert math.isfinite(cm.factor(32768))
