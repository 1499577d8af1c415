"""Paillier tensors on the wire: round trips, re-randomization, validation of what is loaded."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from harness_paillier import small_keygen
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import KeyMismatchError, MalformedMessageError, SecurecompError
from securecomp.he.paillier import PACKED, UNPACKED, PaillierBackend, PaillierSecretKey
from securecomp.net.wire import Envelope, decode_envelope, encode_envelope

pytestmark = pytest.mark.filterwarnings("ignore::securecomp.params.InsecureParametersWarning")


@pytest.fixture(scope="module")
def pair() -> tuple[PaillierBackend, PaillierSecretKey]:
    return small_keygen(frac_bits=16)


def _with_body(data: bytes, **changes: object) -> bytes:
    """Re-emit an envelope with fields of its msgpack body changed (header kept)."""
    env = decode_envelope(data)
    body = msgpack.unpackb(env.payload)
    body.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del body[k]
    return encode_envelope(
        Envelope(
            kind=env.kind,
            scheme=env.scheme,
            fingerprint=env.fingerprint,
            key_id=env.key_id,
            session=env.session,
            round=env.round,
            sender=env.sender,
            recipient=env.recipient,
            payload=msgpack.packb(body, use_bin_type=True),
        )
    )


def _cts(data: bytes) -> list[int]:
    body = msgpack.unpackb(decode_envelope(data).payload)
    return [int.from_bytes(body["ct"][i : i + 128], "big") for i in range(0, len(body["ct"]), 128)]


def _ct_bytes(cts: list[int]) -> bytes:
    return b"".join(c.to_bytes(128, "big") for c in cts)


@pytest.mark.parametrize("layout", [UNPACKED, PACKED])
@pytest.mark.parametrize("shape", [(), (0,), (7,), (2, 30), (2, 0, 3)])
def test_round_trip(pair: tuple, layout: str, shape: tuple[int, ...]) -> None:
    backend, sk = pair
    rng = np.random.default_rng(sum(shape) + len(layout))
    x = rng.integers(-1000, 1000, size=shape)
    for t in (backend.encrypt(x, layout=layout), backend.encrypt(x, layout=layout) * 3 - 1):
        loaded = backend.from_bytes(t.to_bytes())
        assert loaded.shape == t.shape and loaded.layout == layout
        assert {k: v for k, v in loaded.meta.items() if k != "randomized"} == {
            k: v for k, v in t.meta.items() if k != "randomized"
        }
        np.testing.assert_array_equal(loaded.decrypt(sk), t.decrypt(sk))


def test_floats_round_trip_with_their_scale(pair: tuple) -> None:
    backend, sk = pair
    x = np.array([[0.5, -2.25], [1e-3, 7.0]])
    t = backend.encrypt(x) * np.array([0.5, 3.0])
    loaded = backend.from_bytes(t.to_bytes())
    assert loaded.meta["scale"] == 32
    np.testing.assert_array_equal(loaded.decrypt(sk), t.decrypt(sk))


def test_derived_ciphertexts_are_rerandomized_on_the_way_out(pair: tuple) -> None:
    backend, sk = pair
    fresh = backend.encrypt(np.array([1, 2, 3]))
    derived = fresh * 5
    payload = list(derived.payload)
    first, second = derived.to_bytes(), derived.to_bytes()
    assert first != second  # a fresh r^n each time
    assert set(_cts(first)).isdisjoint(int(c) for c in payload)
    assert list(derived.payload) == payload  # the tensor itself is unchanged
    for data in (first, second):
        np.testing.assert_array_equal(backend.from_bytes(data).decrypt(sk), [5, 10, 15])
    # A fresh encryption is already random: it is written as is.
    assert fresh.to_bytes() == fresh.to_bytes()
    again = backend.rerandomize(fresh)
    assert set(map(int, again.payload)).isdisjoint(map(int, fresh.payload))
    np.testing.assert_array_equal(again.decrypt(sk), [1, 2, 3])
    # Loaded ciphertexts are not trusted to be fresh: forwarding re-randomizes them.
    loaded = backend.from_bytes(fresh.to_bytes())
    assert set(_cts(loaded.to_bytes())).isdisjoint(map(int, fresh.payload))


def test_forged_or_out_of_range_ciphertexts_are_refused(pair: tuple) -> None:
    backend, sk = pair
    n = backend.key.n
    data = backend.encrypt(np.array([1, 2])).to_bytes()
    good = _cts(data)
    p = int(sk._p)
    for forged, why in [
        (0, "outside"),
        (n * n, "not below its bound"),
        (n * n + 5, "not below its bound"),
        (n, "not a unit"),
        (p * 12345, "not a unit"),
    ]:
        bad = _with_body(data, ct=_ct_bytes([good[0], forged]))
        with pytest.raises(MalformedMessageError, match=why):
            backend.from_bytes(bad)


def test_malformed_fields_are_refused(pair: tuple) -> None:
    backend, _ = pair
    data = backend.encrypt(np.arange(6).reshape(2, 3), max_additions=8).to_bytes()
    for changes, why in [
        ({"weight": 10**6}, "weight"),
        ({"weight": True}, "weight"),
        ({"scale": 10**9}, "scale"),
        ({"value_bits": 1}, "value_bits"),
        ({"headroom_bits": 63}, "headroom_bits"),
        ({"shape": [2, 300]}, "ciphertexts"),
        ({"shape": [-1, 3]}, "shape"),
        ({"shape": "2x3"}, "shape"),
        ({"layout": "dense"}, "layout"),
        ({"v": 2}, "version"),
        ({"bound_bits": 3}, "fields|max_map_len"),
        ({"weight": None}, "fields"),
        ({"ct": b"\x01" * 10}, "ciphertexts"),
    ]:
        with pytest.raises(MalformedMessageError, match=why):
            backend.from_bytes(_with_body(data, **changes))
    unpacked = backend.encrypt(np.arange(3)).to_bytes()
    with pytest.raises(MalformedMessageError, match="bound_bits"):
        backend.from_bytes(_with_body(unpacked, bound_bits=backend.key.bits))
    with pytest.raises(MalformedMessageError, match=r"expected a 'paillier\.ciphertext'"):
        backend.from_bytes(backend.key.to_bytes())


def test_tensors_under_another_key_are_refused(pair: tuple) -> None:
    backend, _ = pair
    other, _ = small_keygen()
    data = other.encrypt(np.arange(3)).to_bytes()
    with pytest.raises(KeyMismatchError):
        backend.from_bytes(data)
    with pytest.raises(KeyMismatchError):
        backend.to_bytes(other.encrypt(np.arange(3)))


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=400))
def test_garbage_raises_securecomp_errors(pair: tuple, data: bytes) -> None:
    backend, _ = pair
    with pytest.raises(SecurecompError):
        backend.from_bytes(data)


def test_truncated_messages_are_refused(pair: tuple) -> None:
    backend, _ = pair
    data = backend.encrypt(np.arange(4), max_additions=4).to_bytes()
    for cut in range(0, len(data), 37):
        with pytest.raises(MalformedMessageError):
            backend.from_bytes(data[:cut])
