"""AES-256-GCM seal/open: round trips, known answers, tampering, associated data, errors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto import aead
from securecomp.crypto.aead import (
    KEY_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    generate_key,
    open_sealed,
    seal,
)
from securecomp.errors import (
    IntegrityError,
    MalformedMessageError,
    ParameterError,
    SecurecompError,
)

KEY = bytes(range(32))
HEADER = b"securecomp|v1|session=7|round=3|from=1|to=2"


def test_constants() -> None:
    assert (KEY_BYTES, NONCE_BYTES, TAG_BYTES) == (32, 12, 16)
    assert aead.OVERHEAD_BYTES == 28


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=64))
def test_round_trip(plaintext: bytes, ad: bytes) -> None:
    blob = seal(KEY, plaintext, ad)
    assert len(blob) == len(plaintext) + NONCE_BYTES + TAG_BYTES
    assert open_sealed(KEY, blob, ad) == plaintext


def test_accepts_bytes_like_inputs() -> None:
    blob = seal(bytearray(KEY), memoryview(b"abc"), bytearray(HEADER))  # type: ignore[arg-type]
    assert open_sealed(memoryview(KEY), bytearray(blob), HEADER) == b"abc"  # type: ignore[arg-type]


def test_gcm_spec_known_answers() -> None:
    # McGrew–Viega GCM specification, test cases 13 and 14 (256-bit zero key, zero IV).
    zero_key, zero_iv = bytes(32), bytes(12)
    tc13 = zero_iv + bytes.fromhex("530f8afbc74536b9a963b4f1c4cb738b")
    assert open_sealed(zero_key, tc13, b"") == b""
    tc14 = zero_iv + bytes.fromhex(
        "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
    )
    assert open_sealed(zero_key, tc14, b"") == bytes(16)


def test_blob_layout_is_nonce_ciphertext_tag() -> None:
    blob = seal(KEY, b"payload", HEADER)
    nonce, body = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
    assert AESGCM(KEY).decrypt(nonce, body, HEADER) == b"payload"


def test_nonces_are_fresh() -> None:
    blobs = {seal(KEY, b"same message", HEADER) for _ in range(64)}
    assert len(blobs) == 64
    assert len({b[:NONCE_BYTES] for b in blobs}) == 64


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_tampering_any_byte_is_detected(data: st.DataObject) -> None:
    plaintext = data.draw(st.binary(max_size=40))
    blob = bytearray(seal(KEY, plaintext, HEADER))
    position = data.draw(st.integers(0, len(blob) - 1))
    blob[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(IntegrityError, match="tampered"):
        open_sealed(KEY, bytes(blob), HEADER)


def test_wrong_associated_data_or_key_is_detected() -> None:
    blob = seal(KEY, b"share of x", HEADER)
    replayed_header = HEADER.replace(b"round=3", b"round=4")
    with pytest.raises(IntegrityError, match="associated data"):
        open_sealed(KEY, blob, replayed_header)
    with pytest.raises(IntegrityError):
        open_sealed(KEY, blob, b"")
    with pytest.raises(IntegrityError, match="key"):
        open_sealed(generate_key(), blob, HEADER)


def test_truncation_and_extension_are_detected() -> None:
    blob = seal(KEY, b"0123456789", HEADER)
    for cut in range(NONCE_BYTES + TAG_BYTES):
        with pytest.raises(MalformedMessageError, match="shorter"):
            open_sealed(KEY, blob[:cut], HEADER)
    for cut in range(NONCE_BYTES + TAG_BYTES, len(blob)):
        with pytest.raises(IntegrityError):
            open_sealed(KEY, blob[:cut], HEADER)
    with pytest.raises(IntegrityError):
        open_sealed(KEY, blob + b"\x00", HEADER)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_raise_only_securecomp_errors(blob: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        open_sealed(KEY, blob, HEADER)


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_wrong_key_size_is_a_parameter_error(size: int) -> None:
    with pytest.raises(ParameterError, match="32 bytes"):
        seal(bytes(size), b"x", b"")
    with pytest.raises(ParameterError, match="32 bytes"):
        open_sealed(bytes(size), bytes(40), b"")


def test_non_bytes_arguments_are_parameter_errors() -> None:
    with pytest.raises(ParameterError):
        seal("k" * 32, b"x", b"")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        seal(KEY, "text", b"")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        seal(KEY, b"x", None)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        open_sealed(KEY, None, b"")  # type: ignore[arg-type]


def test_errors_are_in_the_securecomp_tree() -> None:
    assert issubclass(IntegrityError, MalformedMessageError)
    assert issubclass(MalformedMessageError, SecurecompError)
    assert issubclass(ParameterError, ValueError)


def test_generate_key() -> None:
    keys = {generate_key() for _ in range(16)}
    assert len(keys) == 16 and all(len(k) == KEY_BYTES for k in keys)
    assert open_sealed(next(iter(keys)), seal(next(iter(keys)), b"m", b"h"), b"h") == b"m"
