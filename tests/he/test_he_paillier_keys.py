"""Paillier keys: the floor, validation, fingerprints and serialization (against phe)."""

from __future__ import annotations

import hashlib
import pickle
import secrets
import warnings

import gmpy2
import msgpack
import phe
import pytest
from harness_paillier import small_keygen
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import (
    InsecureParameterError,
    MalformedMessageError,
    ParameterError,
    SecretKeyExportError,
    SecurecompError,
)
from securecomp.he.paillier import (
    PaillierBackend,
    PaillierPublicKey,
    PaillierSecretKey,
    export_public_key,
    export_secret_key,
    load_public_key,
    load_secret_key,
    paillier_keygen,
    paillier_keypair,
)
from securecomp.net.wire import Envelope, decode_envelope, encode_envelope
from securecomp.params import InsecureParametersWarning, insecure_test_parameters

pytestmark = pytest.mark.filterwarnings("ignore::securecomp.params.InsecureParametersWarning")


@pytest.fixture(scope="module")
def pair() -> tuple[PaillierBackend, PaillierSecretKey]:
    return small_keygen()


def _reenvelope(data: bytes, payload: bytes) -> bytes:
    """The same envelope header (fingerprint included) around another payload."""
    env = decode_envelope(data)
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
            payload=payload,
        )
    )


@pytest.mark.parametrize("bits", [512, 1024, 2046])
def test_keys_below_the_floor_are_refused_outside_the_opt_in(bits: int) -> None:
    with pytest.raises(InsecureParameterError, match="2048-bit floor"):
        paillier_keypair(bits)
    with pytest.raises(InsecureParameterError):
        paillier_keygen(bits)


def test_2048_bits_is_allowed_and_labelled_112_bit() -> None:
    public, secret = paillier_keypair(2048)
    assert public.bits == 2048
    assert public.security.bits == 112 and not public.security.insecure
    assert "112-bit" in str(public.security)
    # phe's own decryption agrees with our keys.
    assert secret.to_phe().decrypt(public.to_phe().encrypt(-12345)) == -12345


def test_small_keys_inside_the_opt_in_are_labelled_insecure(pair: tuple) -> None:
    backend, _ = pair
    assert backend.key.security.insecure
    with pytest.raises(InsecureParameterError):
        PaillierPublicKey(backend.key.n)  # outside the opt-in again
    with pytest.raises(InsecureParameterError):
        load_public_key(backend.key.to_bytes())


def test_fingerprint_is_the_hash_of_n(pair: tuple) -> None:
    backend, secret = pair
    n = backend.key.n
    domain = b"securecomp/paillier/modulus/v1\x00"
    want = hashlib.sha256(domain + n.to_bytes((n.bit_length() + 7) // 8, "big")).digest()
    assert backend.fingerprint == backend.key.fingerprint == secret.fingerprint == want
    with insecure_test_parameters():
        same = PaillierPublicKey(n)
    assert same == backend.key and same.fingerprint == want and same.key_id == backend.key.key_id
    other, _ = small_keygen()
    assert other.fingerprint != backend.fingerprint


def test_public_and_secret_keys_round_trip(pair: tuple) -> None:
    backend, secret = pair
    with insecure_test_parameters():
        public = load_public_key(backend.key.to_bytes())
        loaded = load_secret_key(export_secret_key(secret))
    assert public == backend.key
    assert loaded == secret and loaded.public_key == backend.key
    c = public.to_phe().encrypt(987654321).ciphertext()
    assert loaded.raw_decrypt(gmpy2.mpz(c)) == 987654321


def test_raw_decrypt_matches_phe(pair: tuple) -> None:
    backend, secret = pair
    phe_public, phe_secret = backend.key.to_phe(), secret.to_phe()
    for _ in range(20):
        m = secrets.randbelow(backend.key.n)
        c = phe_public.raw_encrypt(m)
        assert secret.raw_decrypt(gmpy2.mpz(c)) == phe_secret.raw_decrypt(c) == m


def test_a_public_export_never_holds_a_secret_key(pair: tuple) -> None:
    backend, secret = pair
    with pytest.raises(SecretKeyExportError, match="public export cannot hold a secret key"):
        export_public_key(secret)
    with pytest.raises(SecretKeyExportError):
        secret.to_bytes()
    public_bytes = backend.key.to_bytes()
    assert int(secret._p).to_bytes(32, "big").lstrip(b"\0") not in public_bytes
    # The secret bundle has its own kind and is not accepted as a public key.
    with insecure_test_parameters(), pytest.raises(MalformedMessageError, match="secret-key"):
        load_public_key(export_secret_key(secret))
    with pytest.raises(ParameterError):
        PaillierBackend(secret)  # type: ignore[arg-type]


def test_phe_keys_with_a_wrong_generator_are_refused(pair: tuple) -> None:
    backend, secret = pair
    bad = phe.PaillierPublicKey(backend.key.n)
    bad.g = backend.key.n + 3
    with insecure_test_parameters(), pytest.raises(ParameterError, match="g != n \\+ 1"):
        PaillierPublicKey.from_phe(bad)
    with insecure_test_parameters():
        good = PaillierSecretKey.from_phe(secret.to_phe())
    assert good == secret


def test_invalid_moduli_and_secret_keys(pair: tuple) -> None:
    backend, secret = pair
    n = backend.key.n
    with insecure_test_parameters():
        with pytest.raises(ParameterError, match="even"):
            PaillierPublicKey(n + 1)
        with pytest.raises(ParameterError):
            PaillierPublicKey(int(gmpy2.next_prime(1 << 255)) ** 2)  # a square
        with pytest.raises(ParameterError, match="small prime"):
            PaillierPublicKey(3 * int(gmpy2.next_prime(1 << 510)))
        with pytest.raises(ParameterError, match="does not equal the public modulus"):
            PaillierSecretKey(backend.key, int(secret._p), int(secret._q) + 2)


def test_tampered_key_envelopes_are_malformed(pair: tuple) -> None:
    backend, secret = pair
    data = backend.key.to_bytes()
    body = msgpack.unpackb(decode_envelope(data).payload)
    other, _ = small_keygen()
    swapped = dict(body, n=other.key.n.to_bytes(64, "big"))
    with insecure_test_parameters():
        with pytest.raises(MalformedMessageError, match="altered in transit"):
            load_public_key(_reenvelope(data, msgpack.packb(swapped)))
        with pytest.raises(MalformedMessageError, match="max_map_len"):
            load_public_key(_reenvelope(data, msgpack.packb({**body, "x": 1})))
        with pytest.raises(MalformedMessageError, match="version"):
            load_public_key(_reenvelope(data, msgpack.packb({**body, "v": 2})))
        sdata = export_secret_key(secret)
        sbody = msgpack.unpackb(decode_envelope(sdata).payload)
        q2 = int(gmpy2.next_prime(int(secret._q)))
        forged = dict(sbody, q=q2.to_bytes((q2.bit_length() + 7) // 8, "big"))
        with pytest.raises(MalformedMessageError, match="distinct primes"):
            load_secret_key(_reenvelope(sdata, msgpack.packb(forged)))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300))
def test_key_decoders_raise_securecomp_errors_on_garbage(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            for load in (load_public_key, load_secret_key):
                with pytest.raises(SecurecompError):
                    load(data)


def test_keys_do_not_pickle_or_show_secrets(pair: tuple) -> None:
    backend, secret = pair
    for obj in (backend.key, secret):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    text = repr(secret) + str(secret)
    assert str(int(secret._p)) not in text and str(int(secret._q)) not in text
    assert "PaillierSecretKey" in text
