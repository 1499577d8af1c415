"""End to end over a plain modular sum (no secure aggregation): the decoded aggregate is the
true sum of the clipped inputs plus noise of the claimed size, within the stated bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto import AesCtrPrg
from securecomp.dp import (
    DistributedDpConfig,
    Mechanism,
    clip_l2,
    decode_sum,
    encode_update,
    lift_centered,
    reduce_modulo,
)
from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError

PUBLIC = b"round-seed-broadcast-by-server!"


def _run(
    cfg: DistributedDpConfig, xs: np.ndarray, round_: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rot = cfg.rotation(PUBLIC, session=b"session", round=round_)
    total = np.zeros(cfg.padded_dim, dtype=np.uint64)
    for i, x in enumerate(xs):
        enc = encode_update(x, cfg, rot, prg=AesCtrPrg(bytes([round_, i]) * 16))
        assert enc.values.dtype == np.uint64 and int(enc.values.max()) <= cfg.mask
        total += enc.values  # the modular sum secure aggregation would reveal
    total &= np.uint64(cfg.mask)
    decoded = decode_sum(total, cfg, rot)
    truth = np.sum([clip_l2(x, cfg.l2_clip)[0] for x in xs], axis=0)
    return decoded, truth


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
def test_decoded_sum_is_true_sum_plus_noise_within_the_bound(mechanism: Mechanism) -> None:
    n, dim = 12, 300
    cfg = DistributedDpConfig.create(
        mechanism,
        dim=dim, l2_clip=2.0, noise_stddev=0.5, n_clients=n, min_survivors=10,
        corrupt_count=1, modulus_bits=18,
    )  # fmt: skip
    xs = np.random.default_rng(1).normal(size=(n, dim)) * 0.15  # some above the clip norm
    decoded, truth = _run(cfg, xs)
    error = float(np.linalg.norm(decoded - truth))
    assert error <= cfg.error_bound(40)
    assert error > 0.0  # noise was added
    # A subset of survivors decodes too (a dropped client contributes nothing).
    rot = cfg.rotation(PUBLIC, session=b"session", round=0)
    part = np.zeros(cfg.padded_dim, dtype=np.uint64)
    for i in range(10):
        part += encode_update(xs[i], cfg, rot, prg=AesCtrPrg(bytes([9, i]) * 16)).values
    part_truth = np.sum([clip_l2(x, 2.0)[0] for x in xs[:10]], axis=0)
    err = np.linalg.norm(decode_sum(part & np.uint64(cfg.mask), cfg, rot) - part_truth)
    assert err <= cfg.error_bound(40, n_summands=10)


@pytest.mark.parametrize("mechanism", ["ddgauss", "skellam"])
def test_decoding_error_has_the_claimed_variance(mechanism: Mechanism) -> None:
    # Per coordinate, the error is (rotated back) noise of variance n * client_sigma^2 plus
    # rounding of variance at most n / 4 (each in integer units, divided by scale^2). With
    # all n clients present that noise is (n / honest) * noise_stddev^2.
    n, dim = 8, 4000
    cfg = DistributedDpConfig.create(
        mechanism,
        dim=dim, l2_clip=1.0, noise_stddev=0.2, n_clients=n, min_survivors=6,
        corrupt_count=2, scale=40.0,
    )  # fmt: skip
    xs = np.random.default_rng(2).normal(size=(n, dim)) * 0.01
    decoded, truth = _run(cfg, xs, round_=3)
    err = decoded - truth
    noise_var = n * cfg.client_sigma**2 / cfg.scale**2
    assert noise_var == pytest.approx(0.2**2 * n / 4)
    rounding_var = n / 4 / cfg.scale**2
    sample_var = float(np.mean(err**2))
    se = np.sqrt(2.0 / dim) * (noise_var + rounding_var)  # near-Gaussian error coordinates
    assert noise_var - 5 * se <= sample_var <= noise_var + rounding_var + 5 * se
    assert abs(float(np.mean(err))) <= 5 * np.sqrt((noise_var + rounding_var) / dim)


def test_clipping_and_rounding_details_are_reported() -> None:
    cfg = DistributedDpConfig.create(
        "ddgauss", dim=10, l2_clip=1.0, noise_stddev=1.0, n_clients=3, scale=16.0
    )
    rot = cfg.rotation(PUBLIC, session=b"s", round=0)
    x = np.full(10, 5.0)
    before = x.copy()
    enc = encode_update(x, cfg, rot, prg=AesCtrPrg(b"\x05" * 32))
    assert enc.clipped and enc.rounding_attempts >= 1
    assert np.array_equal(x, before)
    assert not encode_update(np.zeros(10), cfg, rot).clipped


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 64), data=st.data())
def test_lift_inverts_reduce_on_the_centered_range(bits: int, data: st.DataObject) -> None:
    half = 1 << (bits - 1)
    values = data.draw(st.lists(st.integers(-half, half - 1), min_size=1, max_size=20))
    v = np.array(values, dtype=np.int64)
    reduced = reduce_modulo(v, bits)
    assert all(0 <= int(r) < 1 << bits for r in reduced)
    assert [int(r) for r in reduced] == [x % (1 << bits) for x in values]
    assert lift_centered(reduced, bits).tolist() == values


def test_bad_inputs_are_refused() -> None:
    cfg = DistributedDpConfig.create(
        "skellam", dim=10, l2_clip=1.0, noise_stddev=1.0, n_clients=3, scale=16.0
    )
    rot = cfg.rotation(PUBLIC, session=b"s", round=0)
    other = DistributedDpConfig.create(
        "skellam", dim=11, l2_clip=1.0, noise_stddev=1.0, n_clients=3, scale=16.0
    ).rotation(PUBLIC, session=b"s", round=0)
    with pytest.raises(EncodingOverflowError):
        encode_update(np.array([np.nan] * 10), cfg, rot)
    with pytest.raises(ShapeMismatchError):
        encode_update(np.zeros(11), cfg, rot)
    with pytest.raises(ShapeMismatchError):
        encode_update(np.zeros(10), cfg, other)
    with pytest.raises(ShapeMismatchError):
        decode_sum(np.zeros(10, dtype=np.uint64), cfg, rot)
    with pytest.raises(ParameterError):
        decode_sum(np.zeros(16, dtype=np.float64), cfg, rot)
    with pytest.raises(ParameterError):
        encode_update(np.zeros(10), cfg, rot, prg=np.random.default_rng(0))  # type: ignore[arg-type]
