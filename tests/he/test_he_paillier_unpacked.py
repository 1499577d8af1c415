"""Unpacked Paillier tensors: exact against numpy, bounds before decryption, and refusals."""

from __future__ import annotations

import gmpy2
import numpy as np
import phe
import pytest
from harness_paillier import small_keygen
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    ParameterError,
    UnsupportedOperationError,
)
from securecomp.he.paillier import (
    PACKED,
    UNPACKED,
    PaillierBackend,
    PaillierSecretKey,
    load_public_key,
)
from securecomp.params import insecure_test_parameters
from securecomp.tensor import Op

pytestmark = pytest.mark.filterwarnings("ignore::securecomp.params.InsecureParametersWarning")

SETTINGS = settings(max_examples=12, deadline=None)
ints = st.integers(-(2**20), 2**20)


@pytest.fixture(scope="module")
def pair() -> tuple[PaillierBackend, PaillierSecretKey]:
    return small_keygen(frac_bits=16)


def _enc(backend: PaillierBackend, x: np.ndarray) -> object:
    return backend.encrypt(x, layout=UNPACKED)


@SETTINGS
@given(data=st.data())
def test_linear_ops_on_integers_are_exact(pair: tuple, data: st.DataObject) -> None:
    backend, sk = pair
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=5))
    a = data.draw(hnp.arrays(np.int64, shape, elements=ints))
    b = data.draw(hnp.arrays(np.int64, shape, elements=ints))
    k = data.draw(hnp.arrays(np.int64, shape[-1:], elements=st.integers(-1000, 1000)))
    ea, eb = _enc(backend, a), _enc(backend, b)
    cases = {
        "add": (ea + eb, a + b),
        "sub": (ea - eb, a - b),
        "neg": (-ea, -a),
        "add_plain": (ea + b, a + b),
        "radd_plain": (b + ea, a + b),
        "sub_plain": (ea - b, a - b),
        "rsub_plain": (b - ea, b - a),
        "mul_plain": (ea * k, a * k),
        "rmul_scalar": (-7 * ea, -7 * a),
        "sum": (ea.sum(), a.sum()),
        "sum0": (ea.sum(axis=0), a.sum(axis=0)),
        "sum_last": (np.sum(ea, axis=-1), a.sum(axis=-1)),
        "index": (ea[..., :1], a[..., :1]),
        "reshape": (ea.reshape(-1), a.reshape(-1)),
        "transpose": (ea.T, a.T),
        "combo": ((3 * ea - eb * 2 + 5).sum(axis=0), (3 * a - b * 2 + 5).sum(axis=0)),
    }
    for name, (got, want) in cases.items():
        assert got.shape == want.shape, name
        assert np.array_equal(got.decrypt(sk), want), name
        assert got.meta["scale"] == 0, name


@SETTINGS
@given(m=st.integers(1, 4), k=st.integers(1, 4), n=st.integers(1, 4), data=st.data())
def test_products_with_plaintext_matrices_are_exact(
    pair: tuple, m: int, k: int, n: int, data: st.DataObject
) -> None:
    backend, sk = pair
    x = data.draw(hnp.arrays(np.int64, (m, k), elements=ints))
    w = data.draw(hnp.arrays(np.int64, (k, n), elements=st.integers(-500, 500)))
    v = data.draw(hnp.arrays(np.int64, (n, m), elements=st.integers(-500, 500)))
    u = data.draw(hnp.arrays(np.int64, (k,), elements=st.integers(-500, 500)))
    ex = _enc(backend, x)
    assert np.array_equal((ex @ w).decrypt(sk), x @ w)
    assert np.array_equal((v @ (ex @ w)).decrypt(sk), v @ (x @ w))
    assert np.array_equal(np.dot(v, ex @ w).decrypt(sk), v @ (x @ w))
    assert np.array_equal(ex.dot(u).decrypt(sk), x.dot(u))
    assert np.array_equal(_enc(backend, x[0]).dot(u).decrypt(sk), x[0] @ u)
    assert np.array_equal((u @ ex.T).decrypt(sk), u @ x.T)


def test_float_products_track_the_scale(pair: tuple) -> None:
    backend, sk = pair
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    ex = _enc(backend, x)
    ulp = 2.0**-16
    assert ex.meta["scale"] == 16
    prod = ex @ w
    assert prod.meta["scale"] == 32
    # Each term: |x| * ulp/2 + |w| * ulp/2 (+ ulp^2/4) of rounding; 4 terms.
    bound = 4 * (np.abs(x).max() + np.abs(w).max()) * ulp / 2 + ulp
    np.testing.assert_allclose(prod.decrypt(sk), x @ w, rtol=0, atol=bound)
    shifted = prod + 0.5  # aligned to the finer scale, not rounded to it
    assert shifted.meta["scale"] == 32
    np.testing.assert_allclose(shifted.decrypt(sk), x @ w + 0.5, rtol=0, atol=bound)
    integer = _enc(backend, np.arange(4))
    assert integer.meta["scale"] == 0
    np.testing.assert_array_equal((integer + 0.25).decrypt(sk), np.arange(4) + 0.25)
    np.testing.assert_array_equal((integer * 3).decrypt(sk), np.arange(4) * 3)
    assert (integer * 3).meta["scale"] == 0


def test_numpy_scalar_types_are_converted(pair: tuple) -> None:
    backend, sk = pair
    e = backend.encrypt(np.float32(1.5))
    assert e.shape == ()
    assert (e * np.int16(3)).decrypt(sk) == 4.5
    assert (e + np.float64(0.25)).decrypt(sk) == 1.75
    assert (np.uint8(2) - e).decrypt(sk) == 0.5
    assert (backend.encrypt(np.int64(-9)) * np.bool_(True)).decrypt(sk) == -9


def test_ciphertexts_decrypt_with_phe(pair: tuple) -> None:
    backend, sk = pair
    a = np.array([[5, -7], [0, 123456789]])
    e = _enc(backend, a) * 3 - 1
    phe_key = sk.to_phe()
    got = [
        phe_key.decrypt(phe.EncryptedNumber(backend.key.to_phe(), int(c)))
        for c in e.payload.ravel()
    ]
    assert got == (a * 3 - 1).ravel().tolist()


def test_overflow_past_half_n_is_refused_before_decryption(pair: tuple) -> None:
    backend, sk = pair
    # phe wraps silently: E(max_int) * 3 decrypts to a wrong value.
    pk = backend.key.to_phe()
    wrong = sk.to_phe().decrypt(pk.encrypt(pk.max_int) * 3)
    assert wrong != pk.max_int * 3
    e = _enc(backend, np.array([1, -2, 3]))  # bound 2^63 (value_bits 64)
    big = np.int64(2**62)
    for _ in range(7):  # 63 + 7 * 63 = 504 <= 510 bits
        e = e * big
    assert e.meta["bound_bits"] == 504
    np.testing.assert_array_equal(e.decrypt(sk), np.array([1.0, -2.0, 3.0]) * 2.0 ** (62 * 7))
    with pytest.raises(EncodingOverflowError, match="n/2"):
        e * big
    with pytest.raises(EncodingOverflowError, match="n/2"):
        e * 100 + e
    with pytest.raises(EncodingOverflowError, match="n/2"):
        (e * 64).sum()
    narrow = backend.encrypt(np.array([100, -100]), value_bits=8)
    assert narrow.meta["bound_bits"] == 7
    with pytest.raises(EncodingOverflowError, match="8-bit"):
        backend.encrypt(np.array([200]), value_bits=8)
    with pytest.raises(EncodingOverflowError):
        backend.encrypt(np.array([1.0, np.nan]))


def test_a_forged_bound_is_caught_at_decryption(pair: tuple) -> None:
    backend, sk = pair
    e = _enc(backend, np.array([2**40]))
    lie = backend.wrap(e.payload, e.shape, UNPACKED, {**e.meta, "bound_bits": 10})
    with pytest.raises(EncodingOverflowError, match="altered"):
        lie.decrypt(sk)


def test_ciphertext_products_and_comparisons_are_unsupported(pair: tuple) -> None:
    backend, _ = pair
    a = _enc(backend, np.ones((2, 2)))
    for fn in (lambda: a * a, lambda: a @ a, lambda: a.dot(a)):
        with pytest.raises(UnsupportedOperationError, match="cannot multiply two ciphertexts"):
            fn()
    with pytest.raises(UnsupportedOperationError, match="CKKS or MPC"):
        a.polyval([1.0, 2.0])
    with pytest.raises(UnsupportedOperationError, match="MPC"):
        a < 1
    assert backend.capabilities(UNPACKED) > backend.capabilities(PACKED)
    assert Op.MUL not in backend.capabilities(UNPACKED)


def test_mixed_keys_are_refused(pair: tuple) -> None:
    backend, sk = pair
    other, other_sk = small_keygen(frac_bits=16)
    a, b = _enc(backend, np.ones(3)), _enc(other, np.ones(3))
    with pytest.raises(KeyMismatchError):
        a + b
    with pytest.raises(KeyMismatchError):
        a - b
    with pytest.raises(KeyMismatchError):
        a.decrypt(other_sk)
    with pytest.raises(KeyMismatchError):
        a.decrypt(backend.key)  # the public key cannot decrypt
    with pytest.raises(KeyMismatchError):
        backend.decrypt(b, sk)
    with pytest.raises(UnsupportedOperationError, match="same layout"):
        a + backend.encrypt(np.ones(3), layout=PACKED)


def test_an_aggregator_computes_with_the_public_key_only(pair: tuple) -> None:
    # The computing party's backend is built from the public key bytes: it has no means
    # to decrypt, so every result below is computed without decryption.
    backend, sk = pair
    with insecure_test_parameters():
        aggregator = PaillierBackend(load_public_key(backend.key.to_bytes()), frac_bits=16)
    x = np.array([[1, 2, 3], [4, 5, 6]])
    updates = [aggregator.from_bytes(_enc(backend, x * i).to_bytes()) for i in (1, 2, 3)]
    total = aggregator.add_all(updates) @ np.array([1, -1, 2])
    result = backend.from_bytes(aggregator.to_bytes(total))
    np.testing.assert_array_equal(result.decrypt(sk), (6 * x) @ np.array([1, -1, 2]))


def test_layout_is_chosen_from_the_declaration(pair: tuple) -> None:
    backend, _ = pair
    x = np.arange(6).reshape(2, 3)
    assert backend.encrypt(x).layout == UNPACKED
    assert backend.encrypt(x, ops={Op.ADD, Op.SUM}).layout == PACKED
    assert backend.encrypt(x, max_additions=100).layout == PACKED
    assert backend.encrypt(x, ops={Op.ADD, Op.MATMUL_PLAIN}).layout == UNPACKED
    assert backend.encrypt(x, ops=[Op.TRANSPOSE]).layout == UNPACKED
    with pytest.raises(UnsupportedOperationError, match="cannot multiply two ciphertexts"):
        backend.encrypt(x, ops={Op.ADD, Op.MUL})
    with pytest.raises(UnsupportedOperationError, match="per-slot products"):
        backend.encrypt(x, layout=PACKED, ops={Op.MATMUL_PLAIN})
    with pytest.raises(UnsupportedOperationError, match="per-slot products"):
        backend.encrypt(x, max_additions=8, ops={Op.DOT_PLAIN})
    with pytest.raises(ParameterError, match="max_additions"):
        backend.encrypt(x, layout=UNPACKED, max_additions=8)
    with pytest.raises(ParameterError, match="unknown Paillier layout"):
        backend.encrypt(x, layout="dense")
    with pytest.raises(ParameterError):
        backend.encrypt(x, ops={"add"})  # type: ignore[arg-type]


def test_payloads_are_immutable_and_ops_pure(pair: tuple) -> None:
    backend, sk = pair
    a = _enc(backend, np.array([1, 2, 3]))
    before = [gmpy2.mpz(c) for c in a.payload]
    with pytest.raises(ValueError):
        a.payload[0] = gmpy2.mpz(1)
    for t in (a + a, -a, a * 5, a.sum(), a[1:], backend.rerandomize(a), a.to_bytes()):
        assert t is not None
    assert list(a.payload) == before
    np.testing.assert_array_equal(a.decrypt(sk), [1, 2, 3])
