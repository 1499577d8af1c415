"""Paillier slot packing: Python-integer reference, sums of packings, headroom refusals, phe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.encoding import PaillierPacking, paillier_packing
from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError


def reference_pack(values: list[int], p: PaillierPacking) -> list[int]:
    """Slot j of plaintext c is values[c*k + j] + offset at bit j*w, with Python integers."""
    out = []
    for start in range(0, len(values), p.n_slots):
        chunk = values[start : start + p.n_slots]
        out.append(sum((v + p.offset) << (j * p.slot_bits) for j, v in enumerate(chunk)))
    return out


@st.composite
def packings(draw: st.DrawFn) -> PaillierPacking:
    value_bits = draw(st.integers(1, 48))
    max_additions = draw(st.integers(1, 2 ** min(16, 64 - value_bits)))
    modulus_bits = draw(st.integers(value_bits + 16 + 3, 1024))
    return paillier_packing(modulus_bits, value_bits, max_additions)


@settings(max_examples=60, deadline=None)
@given(p=packings(), data=st.data())
def test_pack_matches_reference_and_sums_unpack(p: PaillierPacking, data: st.DataObject) -> None:
    lo, hi = p.value_range
    count = data.draw(st.integers(0, 3 * p.n_slots + 2))
    m = data.draw(st.integers(1, min(p.max_additions, 6)))
    vectors = [
        np.array(data.draw(st.lists(st.integers(lo, hi), min_size=count, max_size=count)),
                 dtype=np.int64)
        for _ in range(m)
    ]
    packed = [p.pack(v) for v in vectors]
    assert packed[0] == reference_pack(vectors[0].tolist(), p)
    assert len(packed[0]) == p.n_plaintexts(count)
    assert all(0 <= c < 2**p.plaintext_bits for c in packed[0])
    # Paillier addition of ciphertexts adds the plaintext integers.
    summed = [sum(col) for col in zip(*packed, strict=True)]
    got = p.unpack(summed, n_additions=m, count=count)
    assert got.dtype == np.int64
    assert got.tolist() == np.sum(vectors, axis=0, dtype=np.int64).reshape(count).tolist()


@pytest.mark.parametrize("value_bits", [1, 2, 63, 64])
def test_extreme_value_widths(value_bits: int) -> None:
    p = paillier_packing(3072, value_bits, 1)
    lo, hi = p.value_range
    v = np.array([lo, hi, 0, lo, hi] * 7, dtype=np.int64)
    assert p.unpack(p.pack(v), 1, v.size).tolist() == v.tolist()


def test_full_64_bit_slots_with_additions() -> None:
    p = paillier_packing(2048, 60, 16)
    assert p.slot_bits == 64 and p.max_additions == 16
    lo, hi = p.value_range
    vs = [np.full(70, lo, dtype=np.int64), np.full(70, hi, dtype=np.int64)] * 8
    summed = [sum(col) for col in zip(*(p.pack(v) for v in vs), strict=True)]
    assert p.unpack(summed, 16, 70).tolist() == [8 * lo + 8 * hi] * 70


def test_factory_layout_and_margin() -> None:
    p = paillier_packing(3072, 32, 1000)
    assert p.slot_bits == 32 + 10
    assert p.n_slots == (3072 - 3) // 42
    assert p.max_additions == (2**42 - 1) // (2**32 - 1) >= 1000
    assert p is paillier_packing(3072, 32, 1000)
    # Packed integers stay below n / 3 for any n of 3072 bits (phe's positive range).
    hi = p.value_range[1]
    packed = p.pack(np.full(p.n_slots, hi, dtype=np.int64))
    worst = sum(packed) * p.max_additions
    assert worst < 2**3071 // 3


def test_scalar_multiplication_budget() -> None:
    p = paillier_packing(1024, 16, 64)
    v = np.array([-5, 7, -32768, 32767, 0], dtype=np.int64)
    (c,) = p.pack(v)
    weight = p.check_scalar(3, n_additions=2)
    assert weight == 6
    two = c + p.pack(v[::-1].copy())[0]
    assert p.unpack([3 * two], weight, v.size).tolist() == (3 * (v + v[::-1])).tolist()
    assert p.scalar_budget(2) == p.max_additions // 2
    assert p.unpack([0 * c], p.check_scalar(0), v.size).tolist() == [0] * v.size
    with pytest.raises(EncodingOverflowError, match="negative scalar"):
        p.check_scalar(-1)
    with pytest.raises(EncodingOverflowError, match="headroom"):
        p.check_scalar(p.max_additions + 1)


def test_headroom_overflow_is_refused_before_it_happens() -> None:
    p = paillier_packing(512, 8, 4)
    with pytest.raises(EncodingOverflowError, match="headroom"):
        p.check_additions(p.max_additions + 1)
    with pytest.raises(EncodingOverflowError, match="headroom"):
        p.unpack([0], n_additions=p.max_additions + 1, count=1)
    with pytest.raises(EncodingOverflowError, match=r"outside \[-128, 127\]"):
        p.pack(np.array([1, 128], dtype=np.int64))
    with pytest.raises(EncodingOverflowError):
        p.pack(np.array([-129], dtype=np.int64))


def test_inconsistent_plaintexts_are_detected() -> None:
    p = paillier_packing(512, 8, 4)
    v = np.array([100, -100, 127], dtype=np.int64)
    a, b = p.pack(v)[0], p.pack(v)[0]
    with pytest.raises(EncodingOverflowError, match="n_additions is wrong"):
        p.unpack([a + b], n_additions=1, count=3)  # claims one packing, holds two
    with pytest.raises(EncodingOverflowError, match="does not fit"):
        p.unpack([2**p.plaintext_bits], 1, 1)
    with pytest.raises(EncodingOverflowError, match="negative"):
        p.unpack([-1], 1, 1)
    with pytest.raises(ShapeMismatchError):
        p.unpack([a, b], 1, 3)


def test_validation() -> None:
    with pytest.raises(ParameterError, match="64"):
        paillier_packing(3072, 60, 100)
    with pytest.raises(ParameterError):
        paillier_packing(36, 32, 4)  # a 34-bit slot needs 34 + 1 + 2 bits
    with pytest.raises(ParameterError):
        paillier_packing(3072, 0, 4)
    with pytest.raises(ParameterError):
        PaillierPacking(slot_bits=10, n_slots=3, value_bits=8, max_additions=5)
    p = paillier_packing(512, 8, 4)
    with pytest.raises(ParameterError):
        p.pack(np.array([1.5]))
    with pytest.raises(ShapeMismatchError):
        p.pack(np.zeros((2, 2), dtype=np.int64))
    assert p.pack(np.array([], dtype=np.int64)) == []
    assert p.unpack([], 1, 0).tolist() == []


def test_round_trip_through_real_paillier() -> None:
    phe = pytest.importorskip("phe")
    # A small key keeps the test fast; the packing only depends on the modulus size.
    public, private = phe.generate_paillier_keypair(n_length=512)
    p = paillier_packing(public.n.bit_length(), 20, 8)
    rng = np.random.default_rng(9)
    lo, hi = p.value_range
    vectors = [rng.integers(lo, hi + 1, size=2 * p.n_slots + 3) for _ in range(3)]
    ciphertexts = [[public.encrypt(c) for c in p.pack(v)] for v in vectors]
    summed = [sum(col[1:], col[0]) for col in zip(*ciphertexts, strict=True)]
    scaled = [c * 2 for c in summed]  # plaintext scalar: weight 3 * 2
    decrypted = [private.decrypt(c) for c in scaled]
    got = p.unpack(decrypted, p.check_scalar(2, n_additions=3), vectors[0].size)
    assert got.tolist() == (2 * np.sum(vectors, axis=0)).tolist()
