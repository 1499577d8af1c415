"""HKDF-SHA256 with domain separation: known answers, injective encoding, pairs, errors."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto.kdf import (
    KDF_VERSION,
    MAX_OUTPUT_BYTES,
    Domain,
    derive_key,
    derive_keys,
    derive_prg,
)
from securecomp.crypto.prg import AesCtrPrg
from securecomp.errors import ParameterError

IKM = bytes(range(100, 132))
BASE = Domain("secagg", "pair-mask", session=b"sess-1", round=3)


def hkdf_stdlib(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with the standard library's HMAC (independent of `cryptography`)."""
    prk = hmac.digest(salt or bytes(32), ikm, hashlib.sha256)
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), hashlib.sha256)
        okm += block
        counter += 1
    return okm[:length]


def decode(blob: bytes) -> Domain:
    """Parse an encoded domain back (the encoding's inverse, written from its specification)."""
    fields, offset = [], 0
    while offset < len(blob):
        n = int.from_bytes(blob[offset : offset + 4], "big")
        fields.append(blob[offset + 4 : offset + 4 + n])
        offset += 4 + n
    assert offset == len(blob) and len(fields) == 7
    version, protocol, purpose, session, rnd, party, pair = fields
    assert version == KDF_VERSION
    return Domain(
        protocol.decode("utf-8"),
        purpose.decode("utf-8"),
        session=session,
        round=int.from_bytes(rnd, "big"),
        party=int.from_bytes(party, "big") if party else None,
        pair=(int.from_bytes(pair[:8], "big"), int.from_bytes(pair[8:], "big")) if pair else None,
    )


ids = st.integers(0, 2**64 - 1)
domains = st.builds(
    Domain,
    protocol=st.text(min_size=1, max_size=8),
    purpose=st.text(min_size=1, max_size=8),
    session=st.binary(max_size=12) | st.text(max_size=6),
    round=st.sampled_from([0, 1, 255, 256, 2**64 - 1]) | ids,
    party=st.none() | ids,
    pair=st.none() | st.tuples(ids, ids).filter(lambda p: p[0] != p[1]),
)


# --- known answers ------------------------------------------------------------------------


def test_stdlib_hkdf_matches_rfc5869_case1() -> None:
    # RFC 5869 appendix A.1 anchors the independent implementation used below.
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    okm = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    assert hkdf_stdlib(ikm, salt, info, 42).hex() == okm


def test_encoding_known_answer() -> None:
    d = Domain("p", "q", session="s", round=2, party=5, pair=(1, 9))
    expected = (
        b"\x00\x00\x00\x11securecomp/kdf/v1"
        b"\x00\x00\x00\x01p"
        b"\x00\x00\x00\x01q"
        b"\x00\x00\x00\x01s"
        b"\x00\x00\x00\x08" + (2).to_bytes(8, "big")
        + b"\x00\x00\x00\x08" + (5).to_bytes(8, "big")
        + b"\x00\x00\x00\x10" + (1).to_bytes(8, "big") + (9).to_bytes(8, "big")
    )  # fmt: skip
    assert d.encode() == expected
    assert Domain("p", "q").encode().endswith(b"\x00\x00\x00\x00" * 2)  # absent party, pair


@pytest.mark.parametrize("length", [1, 16, 32, 33, 64, MAX_OUTPUT_BYTES])
@pytest.mark.parametrize("salt", [None, b"", b"salty", bytes(64)])
def test_derive_key_matches_hkdf_with_encoded_info(length: int, salt: bytes | None) -> None:
    info = BASE.encode()
    ours = derive_key(IKM, BASE, length, salt)
    library = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(IKM)
    assert ours == library == hkdf_stdlib(IKM, salt or b"", info, length)


def test_derive_keys_equals_derive_key_per_domain() -> None:
    doms = [BASE, BASE.for_party(2), BASE.for_pair(4, 1), BASE.for_round(9)]
    for salt in (None, b"s"):
        assert derive_keys(IKM, doms, 24, salt) == [derive_key(IKM, d, 24, salt) for d in doms]
    assert derive_keys(IKM, []) == []


def test_derive_prg_is_seeded_by_derive_key() -> None:
    a = derive_prg(IKM, BASE).bytes(64)
    assert a == AesCtrPrg(derive_key(IKM, BASE)).bytes(64)
    assert a == derive_prg(bytearray(IKM), BASE).bytes(64)  # type: ignore[arg-type]
    assert a != derive_prg(IKM, BASE.for_round(4)).bytes(64)
    assert a != derive_prg(IKM, BASE, salt=b"x").bytes(64)


# --- domain separation --------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(domains, domains)
def test_encoding_is_injective(a: Domain, b: Domain) -> None:
    assert (a.encode() == b.encode()) == (a == b)


@settings(max_examples=200, deadline=None)
@given(domains)
def test_encoding_parses_back_to_the_domain(d: Domain) -> None:
    assert decode(d.encode()) == d


def test_nearby_domains_give_unrelated_keys() -> None:
    variants = [
        BASE,
        dataclasses.replace(BASE, protocol="secagg+"),
        dataclasses.replace(BASE, purpose="self-mask"),
        dataclasses.replace(BASE, session=b"sess-2"),
        BASE.for_round(4),
        BASE.for_party(0),
        BASE.for_pair(0, 1),
        dataclasses.replace(BASE, pair=(1, 0)),
        # Field boundaries shifted: same concatenated text, different split.
        Domain("secaggpair-mask", "x", session=b"sess-1", round=3),
        Domain("secagg", "pair-masksess-1", round=3),
    ]
    keys = {derive_key(IKM, d) for d in variants}
    assert len(keys) == len(variants)


def test_str_and_bytes_sessions_are_the_same_domain() -> None:
    assert Domain("p", "q", session="é") == Domain("p", "q", session="é".encode())
    assert hash(Domain("p", "q", session="é")) == hash(Domain("p", "q", session="é".encode()))
    assert Domain("p", "q", session=bytearray(b"ab")).session == b"ab"  # type: ignore[arg-type]


def test_for_pair_is_symmetric_and_plain_pair_is_ordered() -> None:
    assert BASE.for_pair(7, 3) == BASE.for_pair(3, 7)
    assert BASE.for_pair(7, 3).pair == (3, 7)
    assert derive_key(IKM, BASE.for_pair(7, 3)) == derive_key(IKM, BASE.for_pair(3, 7))
    directed = [dataclasses.replace(BASE, pair=p) for p in [(3, 7), (7, 3)]]
    assert derive_key(IKM, directed[0]) != derive_key(IKM, directed[1])
    # numpy ids (e.g. from np.arange) are accepted and normalized to int.
    assert BASE.for_pair(np.int64(7), np.uint32(3)).pair == (3, 7)


def test_domain_is_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BASE.round = 5  # type: ignore[misc]
    assert len({BASE, BASE.for_round(3), BASE.for_round(4)}) == 2


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"protocol": "", "purpose": "x"},
        {"protocol": b"p", "purpose": "x"},
        {"protocol": "p", "purpose": ""},
        {"protocol": "\ud800", "purpose": "x"},
        {"protocol": "p", "purpose": "x", "session": 5},
        {"protocol": "p", "purpose": "x", "round": -1},
        {"protocol": "p", "purpose": "x", "round": 2**64},
        {"protocol": "p", "purpose": "x", "round": 1.0},
        {"protocol": "p", "purpose": "x", "party": True},
        {"protocol": "p", "purpose": "x", "party": -3},
        {"protocol": "p", "purpose": "x", "pair": (1, 1)},
        {"protocol": "p", "purpose": "x", "pair": (1, 2, 3)},
        {"protocol": "p", "purpose": "x", "pair": (1, -2)},
    ],
)
def test_bad_domains_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        Domain(**kwargs)  # type: ignore[arg-type]


def test_bad_derivation_inputs_are_refused() -> None:
    with pytest.raises(ParameterError, match="at least 16"):
        derive_key(bytes(15), BASE)
    with pytest.raises(ParameterError):
        derive_key("a" * 32, BASE)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        derive_key(IKM, ("secagg", "x"))  # type: ignore[arg-type]
    for length in (0, -1, MAX_OUTPUT_BYTES + 1, True):
        with pytest.raises(ParameterError):
            derive_key(IKM, BASE, length)
    with pytest.raises(ParameterError):
        derive_key(IKM, BASE, salt="salt")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        derive_keys(IKM, [BASE, "x"])  # type: ignore[list-item]
    with pytest.raises(ParameterError):
        BASE.for_pair(2, 2)
