"""CKKS contexts: key generation, the public/secret split, Galois keys on demand, export."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import (
    InsecureParameterError,
    IntegrityError,
    KeyMismatchError,
    MalformedMessageError,
    ParameterError,
    SecretKeyExportError,
    SecurecompError,
    UnsupportedOperationError,
)
from securecomp.he.ckks import (
    COLUMN,
    ELEMENT,
    VECTOR,
    CKKSBackend,
    CKKSContext,
    needs_galois_keys,
)
from securecomp.he.ckks.envelope import payload_digest
from securecomp.net.wire import Envelope, decode_envelope, encode_envelope
from securecomp.params import CKKSParameters
from securecomp.tensor import Op

SMALL_CHAIN = CKKSParameters(8192, (60, 40, 60), 40)  # depth 1, secure, quick to build


@pytest.fixture(scope="module")
def secret() -> CKKSContext:
    return CKKSContext.generate()


def test_generate_checks_parameters_and_defaults(secret: CKKSContext) -> None:
    assert secret.params == CKKSParameters(8192, (60, 40, 40, 60), 40)
    assert secret.is_private and not secret.has_galois_keys
    assert secret.tenseal_context.is_private() and secret.tenseal_context.has_secret_key()
    assert secret.depth == 2 and len(secret.key_id) == 16
    # a fresh key id (and so a fresh fingerprint) for every key generation
    other = CKKSContext.generate(SMALL_CHAIN)
    assert other.key_id != secret.key_id and other.fingerprint != secret.fingerprint
    with pytest.raises(InsecureParameterError):
        CKKSContext.generate(CKKSParameters(8192, (60, 60, 60, 60), 60))  # 240 > 218 bits
    with pytest.raises(ParameterError, match="depth"):
        CKKSContext.generate(SMALL_CHAIN, depth=2)
    with pytest.raises(ParameterError):
        CKKSContext.generate("default")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CKKSContext()


def test_public_context_has_no_secret_key_and_cannot_decrypt(secret: CKKSContext) -> None:
    public = secret.public()
    assert not public.is_private
    assert not public.tenseal_context.is_private()
    assert not public.tenseal_context.has_secret_key()
    assert public.fingerprint == secret.fingerprint  # same key: ciphertexts combine
    with pytest.raises(SecretKeyExportError):
        public.secret_key()
    # the server encrypts and computes, the key holder decrypts
    server = CKKSBackend(public)
    t = server.encrypt(np.array([1.5, -2.0])) * 2.0 + 1.0
    with pytest.raises(KeyMismatchError, match="public"):
        t.decrypt(public)
    with pytest.raises(KeyMismatchError):
        t.decrypt(None)
    np.testing.assert_allclose(t.decrypt(secret), [4.0, -3.0], atol=1e-6)


def test_galois_keys_only_when_asked_and_only_by_the_key_holder() -> None:
    ctx = CKKSContext.generate()
    small = ctx.to_bytes()
    assert not ctx.has_galois_keys and len(small) < 3_000_000  # ~1.9 MB at N = 8192
    public = CKKSContext.from_bytes(small)
    with pytest.raises(UnsupportedOperationError, match="Galois"):
        public.generate_galois_keys()
    server = CKKSBackend(public)
    with pytest.raises(UnsupportedOperationError, match="Galois"):
        server.encrypt(np.ones(4)).sum()
    # column sums across features need no rotation: fine without Galois keys
    np.testing.assert_allclose(
        server.encrypt(np.ones((3, 2))).sum(axis=1).decrypt(ctx), [2.0] * 3, atol=1e-6
    )
    # the key holder generates them lazily on the first rotating operation
    holder = CKKSBackend(ctx)
    assert float(holder.encrypt(np.arange(4.0)).sum().decrypt(ctx)) == pytest.approx(6.0)
    assert ctx.has_galois_keys
    big = ctx.to_bytes(galois_keys=True)
    assert len(big) > 10 * len(small)
    rotating = CKKSContext.from_bytes(big)
    assert rotating.has_galois_keys and not rotating.is_private
    assert len(ctx.to_bytes(galois_keys=False)) < 3_000_000


def test_needs_galois_keys_per_layout() -> None:
    assert needs_galois_keys([Op.SUM], VECTOR)
    assert needs_galois_keys([Op.RMATMUL_PLAIN], COLUMN)
    assert not needs_galois_keys([Op.MATMUL_PLAIN, Op.ADD_PLAIN, Op.POLYVAL], COLUMN)
    assert not needs_galois_keys([Op.SUM, Op.MATMUL_PLAIN, Op.MUL], ELEMENT)
    with pytest.raises(ParameterError):
        needs_galois_keys([Op.SUM], "diagonal")


def test_context_round_trips(secret: CKKSContext) -> None:
    holder = CKKSBackend(secret)
    t = holder.encrypt(np.array([0.25, -4.0]))
    public = CKKSContext.from_bytes(secret.to_bytes())
    assert not public.is_private and public.key_id == secret.key_id
    assert public.params == secret.params and public.depth == secret.depth
    restored = CKKSContext.from_bytes(secret.to_bytes(include_secret_key=True))
    assert restored.is_private and restored.fingerprint == secret.fingerprint
    np.testing.assert_allclose(t.decrypt(restored), [0.25, -4.0], atol=1e-6)
    # sealed (AES-GCM) exports, e.g. for the secret bundle at rest
    key = bytes(range(32))
    sealed = secret.to_bytes(include_secret_key=True, auth_key=key)
    assert CKKSContext.from_bytes(sealed, auth_key=key).is_private
    with pytest.raises(MalformedMessageError, match="sealed"):
        CKKSContext.from_bytes(sealed)
    with pytest.raises(IntegrityError):
        CKKSContext.from_bytes(sealed, auth_key=bytes(32))
    # planned depth travels with the context
    shallow = CKKSContext.generate(depth=1)
    assert CKKSContext.from_bytes(shallow.to_bytes()).depth == 1


def test_a_public_export_never_holds_a_secret_key(secret: CKKSContext) -> None:
    public = secret.public()
    with pytest.raises(SecretKeyExportError, match="public"):
        public.to_bytes(include_secret_key=True)
    # a "public" envelope that smuggles a secret key is refused on load
    env = decode_envelope(secret.to_bytes(include_secret_key=True))
    forged = Envelope(
        kind="ckks.context",
        scheme=env.scheme,
        fingerprint=env.fingerprint,
        key_id=env.key_id,
        session=env.session,
        round=env.round,
        sender=env.sender,
        recipient=env.recipient,
        payload=_redigest(env, "ckks.context"),
    )
    with pytest.raises(SecretKeyExportError):
        CKKSContext.from_bytes(encode_envelope(forged))
    assert not CKKSContext.from_bytes(secret.to_bytes()).tenseal_context.has_secret_key()


def _redigest(env: Envelope, kind: str) -> bytes:
    body = env.payload[32:]
    return payload_digest(kind, env.fingerprint, env.key_id, body) + body


@pytest.fixture(scope="module")
def public_bytes() -> bytes:
    return CKKSContext.generate(SMALL_CHAIN).to_bytes()


def test_corrupted_or_truncated_context_is_malformed(public_bytes: bytes) -> None:
    for cut in (0, 10, len(public_bytes) // 2, len(public_bytes) - 1):
        with pytest.raises(MalformedMessageError):
            CKKSContext.from_bytes(public_bytes[:cut])
    rng = np.random.default_rng(7)
    for pos in rng.integers(0, len(public_bytes), 12).tolist():
        flipped = bytearray(public_bytes)
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(MalformedMessageError):
            CKKSContext.from_bytes(bytes(flipped))
    with pytest.raises(MalformedMessageError):
        CKKSContext.from_bytes(b"not an envelope")


def test_context_body_is_validated(public_bytes: bytes) -> None:
    env = decode_envelope(public_bytes)
    body = msgpack.unpackb(env.payload[32:], raw=False)

    def reload(**changes: object) -> None:
        new = msgpack.packb({**body, **changes}, use_bin_type=True)
        forged = Envelope(
            kind=env.kind,
            scheme=env.scheme,
            fingerprint=env.fingerprint,
            key_id=env.key_id,
            session=b"",
            round=0,
            sender=0,
            recipient=0,
            payload=payload_digest(env.kind, env.fingerprint, env.key_id, new) + new,
        )
        CKKSContext.from_bytes(encode_envelope(forged))

    with pytest.raises(MalformedMessageError, match="fingerprint"):
        reload(chain=[60, 40, 40, 60])  # declared chain differs from the header's hash
    with pytest.raises(MalformedMessageError):
        reload(galois=True)  # flag that does not match the keys
    with pytest.raises(MalformedMessageError):
        reload(v=2)
    with pytest.raises(MalformedMessageError):
        reload(tenseal=b"\x00" * 64)
    with pytest.raises(MalformedMessageError):
        reload(scale_bits="40")
    # the TenSEAL context of another chain behind a consistent header is caught too
    other = decode_envelope(CKKSContext.generate().to_bytes())
    with pytest.raises(MalformedMessageError, match="chain"):
        reload(tenseal=msgpack.unpackb(other.payload[32:], raw=False)["tenseal"])


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_context_decoder_fuzz(data: bytes) -> None:
    with pytest.raises(SecurecompError):
        CKKSContext.from_bytes(data)


def test_contexts_do_not_pickle(secret: CKKSContext) -> None:
    import pickle

    with pytest.raises(TypeError, match="to_bytes"):
        pickle.dumps(secret)
    assert "secret" in repr(secret) and secret.key_id.hex()[:8] in repr(secret)
