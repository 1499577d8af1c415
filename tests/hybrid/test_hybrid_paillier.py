"""Paillier <-> additive shares: exact round trips, rescaling, the key holder's view."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from scipy.stats import ks_2samp

from securecomp.crypto import AesCtrPrg
from securecomp.errors import EncodingOverflowError, UnsupportedOperationError
from securecomp.he.paillier import UNPACKED, PaillierBackend, paillier_keypair
from securecomp.hybrid import paillier as pl
from securecomp.hybrid import paillier_to_shares, shares_to_paillier
from securecomp.mpc import bound_of, run_local
from securecomp.params import InsecureParametersWarning, insecure_test_parameters
from securecomp.tensor import SecureTensor

pytestmark = pytest.mark.filterwarnings("ignore::securecomp.params.InsecureParametersWarning")

F = 16
VALUE_BITS = 20  # |X| < 2^19 at scale 16: |x| < 8, within the re-sharing's 62 bits


@pytest.fixture(scope="module")
def keys() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            return paillier_keypair(512)


def _values(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-7.5, 7.5, size=shape)


def test_paillier_to_shares_to_paillier_is_exact(keys: Any) -> None:
    pk, sk = keys
    values = _values(0, (4, 3))
    enc = PaillierBackend(pk).encrypt(values, layout=UNPACKED, value_bits=VALUE_BITS)
    ints = np.rint(values * 2**F).astype(np.int64)

    @insecure_test_parameters()
    def program(sess: Any) -> Any:
        if sess.party_id == 0:  # key holder
            s = paillier_to_shares(sess, key=sk)
            return shares_to_paillier(sess, s, public_key=pk), bound_of(s)
        s = paillier_to_shares(sess, enc)
        return shares_to_paillier(sess, s, public_key=pk), bound_of(s)

    res = run_local(program, 2)
    (none, ring), (back, _) = res.results
    assert none is None
    assert ring == (1 << (VALUE_BITS - 1)) + 1
    got = [int(sk.raw_decrypt(c)) for c in back.payload.ravel()]
    got = [v - pk.n if v > pk.n // 2 else v for v in got]
    assert got == ints.ravel().tolist()  # exact: integers all the way
    assert back.meta["scale"] == F
    np.testing.assert_array_equal(PaillierBackend(pk).decrypt(back, sk), ints / 2**F)


def test_shares_to_paillier_to_shares_with_rescaling(keys: Any) -> None:
    pk, sk = keys
    values = _values(1, (6,))

    @insecure_test_parameters()
    def program(sess: Any, mine: Any) -> Any:
        x = sess.share(mine, owner=1, bound=7.6, shape=(6,)) if sess.party_id == 1 else \
            sess.share(None, owner=1, bound=7.6, shape=(6,))
        if sess.party_id == 0:
            shares_to_paillier(sess, x, public_key=pk)
            back = paillier_to_shares(sess, key=sk)
        else:
            y = shares_to_paillier(sess, x, public_key=pk)
            assert isinstance(y, SecureTensor)
            back = paillier_to_shares(sess, y * 0.5)  # scale 32 -> 16: one side floors each
        return sess.reveal(back, to=0)

    res = run_local(program, 2, inputs=[None, values])
    want = np.rint(values * 2**F) / 2**F * 0.5
    assert np.max(np.abs(res.results[0] - want)) <= 2.0**-F  # one ulp from the rescale


def _key_holder_view(pk: Any, sk: Any, value: float, seed: bytes, lie: bool = False) -> Any:
    backend = PaillierBackend(pk)
    enc = backend.encrypt(np.full(500, value), layout=UNPACKED, value_bits=VALUE_BITS
                          if not lie else 60)
    if lie:  # metadata claiming a smaller bound than the values have: the mask is too short
        enc = backend.wrap(enc.payload, enc.shape, UNPACKED,
                           {**enc.meta, "bound_bits": VALUE_BITS - 1})
    masked = pl.mask_paillier(enc, prg=AesCtrPrg(seed))
    return np.array(pl.unmask_paillier(masked.tensor, sk), dtype=np.float64), masked


def test_key_holder_view_is_independent_of_the_value(keys: Any) -> None:
    pk, sk = keys
    lo, masked = _key_holder_view(pk, sk, -7.5, bytes(32))
    hi, _ = _key_holder_view(pk, sk, 7.5, bytes(range(32)))
    assert ks_2samp(lo, hi).pvalue > 1e-4
    width = VALUE_BITS - 1 + 1 + 40
    assert lo.min() >= -(2**19) and lo.max() < 2**width + 2**19
    # The ciphertext the key holder receives was re-randomized: not X's ciphertext times
    # the trivial encryption of r.
    assert masked.tensor.meta["randomized"]
    leak, _ = _key_holder_view(pk, sk, 2.0**42, bytes(range(32)), lie=True)
    assert ks_2samp(lo, leak).pvalue < 1e-12  # the test sees a mask that is too short


def test_conversions_refuse_what_they_cannot_hide(keys: Any) -> None:
    pk, _ = keys
    backend = PaillierBackend(pk)
    with pytest.raises(UnsupportedOperationError, match="unpacked"):
        pl.mask_paillier(backend.encrypt(np.ones(3), layout="packed"))
    enc = backend.encrypt(np.ones(3), layout=UNPACKED)
    wide = backend.wrap(enc.payload, enc.shape, UNPACKED, {**enc.meta, "bound_bits": 480})
    with pytest.raises(EncodingOverflowError, match="larger key"):
        pl.mask_paillier(wide)  # 480 + 1 + 40 bits do not fit below n/2 (510 bits)


def test_rescale_ints_error_is_one_ulp() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        x = int(rng.integers(-(2**40), 2**40))
        r = int(rng.integers(0, 2**60))
        k = pl.rescale_ints([x + r], 24, 16)[0] - pl.rescale_ints([r], 24, 16)[0]
        assert k - (x >> 8) in (0, 1)
    assert pl.rescale_ints([-3, 5], 8, 16) == [-3 * 256, 5 * 256]
