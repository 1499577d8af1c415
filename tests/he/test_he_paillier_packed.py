"""Packed Paillier tensors: slot arithmetic exact against numpy, headroom, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from harness_paillier import small_keygen
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    UnsupportedOperationError,
)
from securecomp.he.paillier import PACKED, PaillierBackend, PaillierSecretKey
from securecomp.tensor import Op

pytestmark = pytest.mark.filterwarnings("ignore::securecomp.params.InsecureParametersWarning")

VALUE_BITS = 16
LIMIT = 2 ** (VALUE_BITS - 1) - 1
SETTINGS = settings(max_examples=12, deadline=None)
values = st.integers(-LIMIT, LIMIT)


@pytest.fixture(scope="module")
def pair() -> tuple[PaillierBackend, PaillierSecretKey]:
    return small_keygen(frac_bits=8)


def _enc(backend: PaillierBackend, x: np.ndarray, budget: int = 64) -> object:
    return backend.encrypt(x, max_additions=budget, value_bits=VALUE_BITS)


@SETTINGS
@given(rows=st.integers(1, 3), length=st.integers(1, 60), data=st.data())
def test_packed_ops_are_exact(pair: tuple, rows: int, length: int, data: st.DataObject) -> None:
    backend, sk = pair
    a = data.draw(hnp.arrays(np.int64, (rows, length), elements=values))
    b = data.draw(hnp.arrays(np.int64, (rows, length), elements=values))
    k = data.draw(st.integers(-5, 5))
    per_row = data.draw(hnp.arrays(np.int64, (rows, 1), elements=st.integers(-3, 3)))
    ea, eb = _enc(backend, a), _enc(backend, b)
    slots = ea.payload.shape[-1]
    assert ea.layout == PACKED and ea.payload.shape == (rows, slots)
    assert slots < length or length == 1  # several values per ciphertext
    cases = {
        "add": (ea + eb, a + b, 2),
        "sub": (ea - eb, a - b, 2),
        "neg": (-ea, -a, 1),
        "add_plain": (ea + b, a + b, 2),
        "sub_plain": (ea - b, a - b, 2),
        "rsub_plain": (b - ea, b - a, 2),
        "scalar": (ea * k, a * k, abs(k)),
        "rscalar": (k * ea, a * k, abs(k)),
        "per_row": (ea * per_row, a * per_row, int(np.abs(per_row).max())),
        "sum0": (ea.sum(axis=0), a.sum(axis=0), rows),
        "row": (ea[-1], a[-1], 1),
        "rows": (ea[::-1], a[::-1], 1),
        "reshape": (ea.reshape(rows, 1, length), a.reshape(rows, 1, length), 1),
        "combo": ((ea * 3 - eb + 7).sum(axis=0), (a * 3 - b + 7).sum(axis=0), 5 * rows),
    }
    for name, (got, want, weight) in cases.items():
        assert got.shape == want.shape, name
        assert got.meta["weight"] == weight, name
        np.testing.assert_array_equal(got.decrypt(sk), want, err_msg=name)


def test_slots_hold_the_offset_values(pair: tuple) -> None:
    # Known answer: the plaintext of one ciphertext, decrypted by phe, is the sum of
    # (v_j + 2^(b-1)) * 2^(j * w) computed here with Python ints.
    backend, sk = pair
    x = np.array([3, -1, 0, LIMIT, -LIMIT])
    e = _enc(backend, x, budget=4)
    width = VALUE_BITS + 2
    want = sum((int(v) + 2 ** (VALUE_BITS - 1)) << (j * width) for j, v in enumerate(x))
    assert e.payload.shape == (1,)
    assert sk.to_phe().raw_decrypt(int(e.payload[0])) == want


def test_floats_and_scales(pair: tuple) -> None:
    backend, sk = pair
    x = np.array([[0.5, -1.25, 3.0], [2.0, -0.75, 0.125]])
    e = backend.encrypt(x, ops={Op.ADD, Op.MUL_PLAIN}, value_bits=24)
    assert e.layout == PACKED and e.meta["scale"] == 8
    np.testing.assert_array_equal((e + e).decrypt(sk), 2 * x)
    np.testing.assert_array_equal((e * -3).decrypt(sk), -3 * x)
    np.testing.assert_array_equal((e - 0.5).decrypt(sk), x - 0.5)
    lifted = backend.encrypt(np.array([[1, 2, 3], [4, 5, 6]]), max_additions=1 << 10)
    mixed = lifted + 0.5  # the integer tensor is lifted to 8 fractional bits (weight 2^8)
    assert mixed.meta["scale"] == 8 and mixed.meta["weight"] == 2**8 + 1
    np.testing.assert_array_equal(mixed.decrypt(sk), [[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]])


def test_zero_dim_and_empty_tensors(pair: tuple) -> None:
    backend, sk = pair
    s = _enc(backend, np.int64(-42))
    assert s.shape == () and s.payload.shape == (1,)
    assert (s * -2 + 1).decrypt(sk) == 85
    assert s.sum().decrypt(sk) == -42
    empty = _enc(backend, np.zeros((0, 4), dtype=np.int64))
    assert empty.sum(axis=0).decrypt(sk).tolist() == [0, 0, 0, 0]
    assert (empty + empty).decrypt(sk).shape == (0, 4)


def test_headroom_overflow_is_refused_before_computing(pair: tuple) -> None:
    backend, sk = pair
    x = np.full(10, LIMIT)
    e = _enc(backend, x, budget=4)  # 2 headroom bits: at most 4 additions
    total = e + e + e + e
    np.testing.assert_array_equal(total.decrypt(sk), 4 * x)
    with pytest.raises(EncodingOverflowError, match="headroom of 4"):
        total + e
    with pytest.raises(EncodingOverflowError, match="headroom"):
        e * 5
    with pytest.raises(EncodingOverflowError, match="headroom"):
        e - e - e + (-e) + e
    with pytest.raises(EncodingOverflowError, match="headroom"):
        _enc(backend, np.tile(x, (5, 1)), budget=4).sum(axis=0)
    with pytest.raises(EncodingOverflowError, match="headroom"):
        e * 0.5  # a float scalar at 8 fractional bits weighs 128
    # The range is symmetric so that negation cannot leave it.
    with pytest.raises(EncodingOverflowError):
        _enc(backend, np.array([-(2 ** (VALUE_BITS - 1))]))
    with pytest.raises(EncodingOverflowError):
        e + np.array([LIMIT + 1])


def test_a_corrupted_weight_is_caught_at_decryption(pair: tuple) -> None:
    backend, sk = pair
    e = _enc(backend, np.full(5, LIMIT)) * 3
    lie = backend.wrap(e.payload, e.shape, PACKED, {**e.meta, "weight": 1})
    with pytest.raises(EncodingOverflowError):
        lie.decrypt(sk)


def test_per_slot_operations_are_unsupported(pair: tuple) -> None:
    backend, _ = pair
    x = np.arange(12).reshape(3, 4)
    e = _enc(backend, x)
    with pytest.raises(UnsupportedOperationError, match="per-slot products need the unpacked"):
        e * np.array([1, 2, 3, 4])
    for fn in (lambda: e @ np.ones((4, 2)), lambda: np.ones((2, 3)) @ e, lambda: e.dot(np.ones(4))):
        with pytest.raises(UnsupportedOperationError, match="per-slot products"):
            fn()
    with pytest.raises(UnsupportedOperationError, match="cannot multiply two ciphertexts"):
        e * e
    for fn in (
        lambda: e.sum(),
        lambda: e.sum(axis=1),
        lambda: e[0, 1],
        lambda: e[:, :2],
        lambda: e.reshape(-1),
        lambda: e.T,
        lambda: _enc(backend, x[:, :1]) + np.ones((3, 4)),
        lambda: _enc(backend, x[:, :1]) * np.ones((3, 4)),
    ):
        with pytest.raises(UnsupportedOperationError, match="unpacked layout"):
            fn()
    assert Op.MATMUL_PLAIN not in backend.capabilities(PACKED)


def test_packings_and_keys_must_match(pair: tuple) -> None:
    backend, sk = pair
    other, _ = small_keygen(frac_bits=8)
    a = _enc(backend, np.arange(5))
    with pytest.raises(KeyMismatchError, match="different packings"):
        a + backend.encrypt(np.arange(5), max_additions=1024, value_bits=VALUE_BITS)
    with pytest.raises(KeyMismatchError, match="different keys"):
        a + _enc(other, np.arange(5))
    # Budgets that round to the same headroom give the same packing.
    same = backend.encrypt(np.arange(5), max_additions=60, value_bits=VALUE_BITS)
    np.testing.assert_array_equal((a + same).decrypt(sk), 2 * np.arange(5))


def test_packing_saves_ciphertexts(pair: tuple) -> None:
    backend, _ = pair
    x = np.arange(200)
    packed, unpacked = _enc(backend, x), backend.encrypt(x)
    # 512-bit key: (512 - 3) // (16 + 6) = 23 slots per ciphertext.
    assert packed.payload.size == 9 and unpacked.payload.size == 200
    assert len(unpacked.to_bytes()) > 15 * len(packed.to_bytes())
