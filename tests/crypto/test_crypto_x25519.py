"""X25519 agreement: symmetry, domain separation, key binding, refusal of bad peer keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from securecomp.crypto import Domain, X25519KeyPair, agree
from securecomp.crypto.x25519 import check_public_key
from securecomp.errors import MalformedMessageError, ParameterError

DOMAIN = Domain("secagg", "pair-mask", b"session", 3)


def test_agreement_is_symmetric_and_matches_raw_library() -> None:
    a, b = X25519KeyPair.generate(), X25519KeyPair.generate()
    assert a.exchange(b.public_bytes) == b.exchange(a.public_bytes)
    raw = X25519PrivateKey.from_private_bytes(a.private_bytes())
    assert raw.public_key().public_bytes_raw() == a.public_bytes
    ka = agree(a, b.public_bytes, DOMAIN.for_pair(1, 2))
    kb = agree(b, a.public_bytes, DOMAIN.for_pair(2, 1))
    assert ka == kb and len(ka) == 32


def test_distinct_domains_give_distinct_keys() -> None:
    a, b = X25519KeyPair.generate(), X25519KeyPair.generate()
    domains = [
        DOMAIN.for_pair(1, 2),
        DOMAIN.for_pair(1, 3),
        DOMAIN.for_round(4).for_pair(1, 2),
        Domain("secagg", "pair-mask", b"other", 3).for_pair(1, 2),
        Domain("secagg", "share-encryption", b"session", 3).for_pair(1, 2),
    ]
    keys = {agree(a, b.public_bytes, d) for d in domains}
    assert len(keys) == len(domains)


def test_key_is_bound_to_the_key_pair() -> None:
    a, b, c = (X25519KeyPair.generate() for _ in range(3))
    assert agree(a, b.public_bytes, DOMAIN) != agree(a, c.public_bytes, DOMAIN)


def test_from_private_bytes_round_trip() -> None:
    a = X25519KeyPair.generate()
    again = X25519KeyPair.from_private_bytes(a.private_bytes())
    assert again.public_bytes == a.public_bytes
    assert a.private_bytes().hex() not in repr(a)


@pytest.mark.parametrize(
    "bad",
    [
        bytes(32),  # the identity: all-zero shared secret
        (1).to_bytes(32, "little"),  # a point of order 4 (small subgroup)
    ],
)
def test_low_order_points_are_refused(bad: bytes) -> None:
    a = X25519KeyPair.generate()
    with pytest.raises(MalformedMessageError, match="low-order"):
        agree(a, bad, DOMAIN)


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33), "x" * 32, None])
def test_malformed_public_keys_are_refused(bad: object) -> None:
    with pytest.raises(MalformedMessageError):
        check_public_key(bad)


def test_bad_private_key_length() -> None:
    with pytest.raises(ParameterError):
        X25519KeyPair.from_private_bytes(bytes(31))
