"""Ed25519: RFC 8032 known answers, raw key round trips, and refusal of bad signatures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto import (
    ED25519_PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Ed25519KeyPair,
    VerifyingKey,
    verify_signature,
)
from securecomp.errors import IntegrityError, MalformedMessageError, ParameterError

# RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
RFC_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]
# The order L of the base point (RFC 8032 section 5.1).
ORDER_L = 2**252 + 27742317777372353535851937790883648493


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC_VECTORS)
def test_rfc8032_known_answers(secret: str, public: str, message: str, signature: str) -> None:
    pair = Ed25519KeyPair.from_private_bytes(bytes.fromhex(secret))
    assert pair.public_bytes.hex() == public
    sig = pair.sign(bytes.fromhex(message))
    assert sig.hex() == signature and len(sig) == SIGNATURE_BYTES
    verify_signature(bytes.fromhex(public), bytes.fromhex(message), sig)


def test_raw_keys_round_trip_and_never_show_the_secret() -> None:
    pair = Ed25519KeyPair.generate()
    again = Ed25519KeyPair.from_private_bytes(pair.private_bytes())
    assert again.public_bytes == pair.public_bytes
    assert len(pair.public_bytes) == ED25519_PUBLIC_KEY_BYTES
    key = VerifyingKey.from_bytes(pair.public_bytes)
    assert key == pair.verifying_key and hash(key) == hash(pair.verifying_key)
    assert key.raw == pair.public_bytes
    assert pair.private_bytes().hex() not in repr(pair)
    assert pair.private_bytes()[:4].hex() not in repr(pair)


@settings(max_examples=40, deadline=None)
@given(message=st.binary(max_size=300), flip=st.integers(min_value=0, max_value=8 * 64 - 1))
def test_any_flipped_signature_bit_is_refused(message: bytes, flip: int) -> None:
    pair = Ed25519KeyPair.generate()
    sig = bytearray(pair.sign(message))
    pair.verifying_key.verify(message, bytes(sig))
    sig[flip // 8] ^= 1 << (flip % 8)
    with pytest.raises(IntegrityError, match="does not verify"):
        pair.verifying_key.verify(message, bytes(sig), signer=3)


def test_other_message_other_key_and_bad_lengths_are_refused() -> None:
    a, b = Ed25519KeyPair.generate(), Ed25519KeyPair.generate()
    sig = a.sign(b"advertise keys")
    with pytest.raises(IntegrityError):
        a.verifying_key.verify(b"advertise keyz", sig)
    with pytest.raises(IntegrityError, match="client 7"):
        verify_signature(b.public_bytes, b"advertise keys", sig, signer="client 7")
    for bad in (sig[:-1], sig + b"\x00", b""):
        with pytest.raises(IntegrityError, match="64 bytes"):
            a.verifying_key.verify(b"advertise keys", bad)
    # A bad signature is a refused message: callers catching MalformedMessageError see it.
    assert issubclass(IntegrityError, MalformedMessageError)
    with pytest.raises(ParameterError):
        VerifyingKey.from_bytes(a.public_bytes[:31])
    with pytest.raises(ParameterError):
        Ed25519KeyPair.from_private_bytes(b"\x01" * 31)
    with pytest.raises(ParameterError):
        a.sign("text")  # type: ignore[arg-type]


def test_malleated_signature_with_unreduced_s_is_refused() -> None:
    # S and S + L are the same scalar; RFC 8032 section 5.1.7 requires S < L, which
    # rules out this second valid-looking encoding of one signature.
    pair = Ed25519KeyPair.generate()
    sig = pair.sign(b"survivors")
    s = int.from_bytes(sig[32:], "little")
    if s + ORDER_L >= 1 << 256:  # pragma: no cover - S + L always fits: S < L < 2^253
        pytest.skip("cannot encode S + L")
    forged = sig[:32] + (s + ORDER_L).to_bytes(32, "little")
    with pytest.raises(IntegrityError):
        pair.verifying_key.verify(b"survivors", forged)
