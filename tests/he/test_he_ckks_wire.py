"""CKKS tensors on the wire: round trips, tampering, truncation, wrong keys and parameters."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import (
    IntegrityError,
    KeyMismatchError,
    MalformedMessageError,
    SecurecompError,
)
from securecomp.he.ckks import ELEMENT, CKKSBackend, CKKSContext, ckks_keygen
from securecomp.he.ckks.envelope import payload_digest
from securecomp.he.ckks.serialize import CIPHERTEXT_KIND
from securecomp.net.wire import Envelope, decode_envelope, encode_envelope
from securecomp.params import CKKSParameters
from securecomp.tensor import SecureTensor


@pytest.fixture(scope="module")
def pair() -> tuple[CKKSBackend, CKKSContext]:
    return ckks_keygen(galois_keys=True)


@pytest.fixture(scope="module")
def blob(pair: tuple[CKKSBackend, CKKSContext]) -> bytes:
    be, _ = pair
    return be.encrypt(np.array([1.0, -2.5, 3.25])).to_bytes()


def _same(a: SecureTensor, b: SecureTensor, key: CKKSContext) -> None:
    assert (a.shape, a.layout, a.meta) == (b.shape, b.layout, b.meta)
    np.testing.assert_allclose(a.decrypt(key), b.decrypt(key), atol=1e-9)


def test_round_trips_every_layout(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    x = np.arange(12.0).reshape(4, 3) / 3 - 2
    server = CKKSBackend(CKKSContext.from_bytes(key.to_bytes()))
    for t in (
        be.encrypt(x),
        be.encrypt(x).T,
        be.encrypt(x[:, 0]),
        be.encrypt(x, layout=ELEMENT),
        be.encrypt(x) * be.encrypt(x),
        be.encrypt(x).sum(axis=0),
        be.encrypt(2.0),
        be.encrypt(np.ones((4100, 2))) @ np.array([0.5, 2.0]),
    ):
        data = t.to_bytes()
        _same(be.from_bytes(data), t, key)
        # the server loads it under its public context, computes, sends it back
        remote = server.from_bytes(data)
        back = be.from_bytes((remote * 2 + 1.0).to_bytes())
        np.testing.assert_allclose(back.decrypt(key), t.decrypt(key) * 2 + 1, atol=1e-5)
    key_bytes = bytes(range(32))
    t = be.encrypt(x)
    _same(be.from_bytes(be.to_bytes(t, auth_key=key_bytes), auth_key=key_bytes), t, key)


def test_wrong_key_or_parameters_are_key_mismatches(
    pair: tuple[CKKSBackend, CKKSContext], blob: bytes
) -> None:
    be, _ = pair
    other, _ = ckks_keygen()
    with pytest.raises(KeyMismatchError, match="key"):
        other.from_bytes(blob)
    shallow, _ = ckks_keygen(CKKSParameters(8192, (60, 40, 60), 40))
    with pytest.raises(KeyMismatchError, match="parameters"):
        shallow.from_bytes(blob)
    with pytest.raises(KeyMismatchError):
        be.to_bytes(other.encrypt(np.ones(2)))


def test_truncated_or_flipped_bytes_are_malformed(
    pair: tuple[CKKSBackend, CKKSContext], blob: bytes
) -> None:
    be, _ = pair
    rng = np.random.default_rng(5)
    for cut in (0, 5, 40, len(blob) // 3, len(blob) - 1):
        with pytest.raises(MalformedMessageError):
            be.from_bytes(blob[:cut])
    # flips anywhere: magic, header (fingerprint, key id), digest, body, ciphertext bytes;
    # raw TenSEAL would decrypt most of these to garbage without a word
    positions = [0, 3, 12, 40, 80, 120, len(blob) // 2, len(blob) - 1]
    positions += rng.integers(0, len(blob), 10).tolist()
    for pos in positions:
        flipped = bytearray(blob)
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(MalformedMessageError):
            be.from_bytes(bytes(flipped))


def _forge(blob: bytes, **changes: object) -> bytes:
    env = decode_envelope(blob)
    body = msgpack.unpackb(env.payload[32:], raw=False)
    body.update(changes)
    new = msgpack.packb(body, use_bin_type=True)
    forged = Envelope(
        kind=env.kind,
        scheme=env.scheme,
        fingerprint=env.fingerprint,
        key_id=env.key_id,
        session=b"",
        round=0,
        sender=0,
        recipient=0,
        payload=payload_digest(CIPHERTEXT_KIND, env.fingerprint, env.key_id, new) + new,
    )
    return encode_envelope(forged)


def test_consistent_but_wrong_headers_are_malformed(
    pair: tuple[CKKSBackend, CKKSContext], blob: bytes
) -> None:
    be, _ = pair
    cts = msgpack.unpackb(decode_envelope(blob).payload[32:], raw=False)["cts"]
    deeper = (be.encrypt(np.array([1.0, -2.5, 3.25])) * 0.5).to_bytes()
    deeper_cts = msgpack.unpackb(decode_envelope(deeper).payload[32:], raw=False)["cts"]
    for changes in (
        {"level": 1},  # the ciphertext is at level 0
        {"cts": deeper_cts},  # a level-1 ciphertext declared at level 0
        {"shape": [4]},  # size 3 ciphertext declared as 4 values
        {"shape": [3, 1]},  # vector layout with a 2-d shape
        {"layout": "diagonal"},
        {"gain": 3.0},
        {"cts": cts + cts},
        {"cts": [b"\x00" * 100]},
        {"cts": [cts[0][:-50]]},
        {"v": 2},
        {"level": "0"},
    ):
        with pytest.raises(MalformedMessageError):
            be.from_bytes(_forge(blob, **changes))


def test_sealed_ciphertexts_detect_any_change(pair: tuple[CKKSBackend, CKKSContext]) -> None:
    be, key = pair
    auth = bytes(range(32))
    sealed = be.to_bytes(be.encrypt(np.ones(3)), auth_key=auth)
    with pytest.raises(MalformedMessageError, match="sealed"):
        be.from_bytes(sealed)
    flipped = bytearray(sealed)
    flipped[len(sealed) // 2] ^= 4
    with pytest.raises(IntegrityError):
        be.from_bytes(bytes(flipped), auth_key=auth)
    with pytest.raises(IntegrityError):
        be.from_bytes(sealed, auth_key=bytes(32))
    # a context envelope is not a ciphertext
    with pytest.raises(MalformedMessageError, match=r"ckks\.ciphertext"):
        be.from_bytes(key.to_bytes())


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_ciphertext_decoder_fuzz(pair: tuple[CKKSBackend, CKKSContext], data: bytes) -> None:
    be, _ = pair
    with pytest.raises(SecurecompError):
        be.from_bytes(data)
