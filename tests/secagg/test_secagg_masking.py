"""Masks: uniformity, domain separation, cancellation; bit-packing on the wire."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto import X25519KeyPair
from securecomp.errors import EncodingOverflowError, MalformedMessageError, ParameterError
from securecomp.secagg import container_dtype, pack_bits, packed_size, unpack_bits
from securecomp.secagg.masking import MaskAccumulator, pair_seed, self_seed, share_key


def _keys():
    return X25519KeyPair.generate(), X25519KeyPair.generate()


def test_pair_seed_is_symmetric_and_purposes_differ() -> None:
    a, b = _keys()
    s_ab = pair_seed(a, b.public_bytes, session=b"s", round=1, me=3, peer=9)
    s_ba = pair_seed(b, a.public_bytes, session=b"s", round=1, me=9, peer=3)
    assert s_ab == s_ba
    assert share_key(a, b.public_bytes, session=b"s", round=1, me=3, peer=9) != s_ab


def test_distinct_session_round_pair_purpose_give_distinct_streams() -> None:
    a, b = _keys()
    secret = bytes(range(32))
    seeds = {
        "base": pair_seed(a, b.public_bytes, session=b"s", round=1, me=3, peer=9),
        "session": pair_seed(a, b.public_bytes, session=b"t", round=1, me=3, peer=9),
        "round": pair_seed(a, b.public_bytes, session=b"s", round=2, me=3, peer=9),
        "pair": pair_seed(a, b.public_bytes, session=b"s", round=1, me=3, peer=8),
        "purpose": share_key(a, b.public_bytes, session=b"s", round=1, me=3, peer=9),
        "self": self_seed(secret, session=b"s", round=1, party=3),
        "self-round": self_seed(secret, session=b"s", round=2, party=3),
        "self-party": self_seed(secret, session=b"s", round=1, party=4),
    }
    dt = container_dtype(32)
    streams = {}
    for name, seed in seeds.items():
        acc = MaskAccumulator(np.zeros(256, dt), dt, 32)
        streams[name] = acc.expand(seed).copy()
    names = list(streams)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            # Independent uniform 32-bit streams agree in a coordinate with prob. 2^-32.
            assert np.count_nonzero(streams[x] == streams[y]) <= 1, (x, y)


@pytest.mark.parametrize("bits", [13, 32, 64])
def test_masked_values_are_uniform(bits: int) -> None:
    # Chi-square over the top 4 bits (16 cells) and per-bit balance of one long mask.
    dt = container_dtype(bits)
    acc = MaskAccumulator(np.zeros(1 << 16, dt), dt, bits)
    acc.add(bytes(range(32)), +1)
    acc.add(bytes(range(1, 33)), -1)
    v = acc.result().astype(np.uint64)
    assert int(v.max()) < (1 << bits) if bits < 64 else True
    cells = np.bincount((v >> np.uint64(bits - 4)).astype(np.int64), minlength=16)
    expected = v.size / 16
    chi2 = float(((cells - expected) ** 2 / expected).sum())
    assert chi2 < 50  # 15 dof: P[chi2 > 50] ~ 1e-5
    for j in range(bits):
        ones = int(np.count_nonzero((v >> np.uint64(j)) & np.uint64(1)))
        assert abs(ones - v.size / 2) < 6 * np.sqrt(v.size / 4)


def test_masks_cancel_and_reduce_mod_2b() -> None:
    dt = container_dtype(20)
    x = np.arange(100, dtype=dt)
    acc = MaskAccumulator(x, dt, 20)
    acc.add(b"\x05" * 32, +1)
    acc.add(b"\x06" * 32, +1)
    acc.add(b"\x05" * 32, -1)
    acc.add(b"\x06" * 32, -1)
    assert np.array_equal(acc.result(), x)
    assert x[5] == 5  # the caller's input is not modified


def test_self_seed_refuses_short_secret() -> None:
    with pytest.raises(ParameterError):
        self_seed(b"short", session=b"s", round=0, party=0)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 64), count=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_bitpack_round_trip(bits: int, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dt = container_dtype(bits)
    raw = rng.integers(0, 2**63, size=count, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    if bits < 64:
        raw &= np.uint64((1 << bits) - 1)
    values = raw.astype(dt)
    data = pack_bits(values, bits)
    assert len(data) == packed_size(count, bits) == (count * bits + 7) // 8
    assert np.array_equal(unpack_bits(data, count, bits, dt), values)


def test_bitpack_layout_is_lsb_first() -> None:
    values = np.array([1, 2, 3], dtype=container_dtype(3))
    # 001 | 010 | 011 (LSB first) -> bits 1,0,0, 0,1,0, 1,1,0 -> bytes 0b11010001, 0b0
    assert pack_bits(values, 3) == bytes([0b11010001, 0b0])


def test_bitpack_refuses_overflow_and_malformed_input() -> None:
    dt = container_dtype(10)
    with pytest.raises(EncodingOverflowError):
        pack_bits(np.array([1 << 10], dtype=dt), 10)
    data = pack_bits(np.array([5, 7, 9], dtype=dt), 10)
    with pytest.raises(MalformedMessageError):
        unpack_bits(data[:-1], 3, 10, dt)
    with pytest.raises(MalformedMessageError):
        unpack_bits(data + b"\x00", 3, 10, dt)
    padded = bytearray(data)
    padded[-1] |= 0x80  # a padding bit
    with pytest.raises(MalformedMessageError):
        unpack_bits(bytes(padded), 3, 10, dt)
    with pytest.raises(ParameterError):
        pack_bits(np.array([1.0]), 3)
