"""HKDF-SHA256 key derivation with unambiguous domain separation.

Keys and PRG seeds are derived with HKDF (RFC 5869) over SHA-256. The HKDF ``info`` input
is the canonical encoding of a `Domain`: protocol, purpose, session, round, party and pair.
Because the encoding is injective, two different domains never share a derived key, so one
shared secret (an X25519 agreement, say) can safely feed a channel key, a pairwise mask seed
and a self-mask seed; this is the "use each key for one purpose" rule of NIST SP 800-108r1
section 7 and SP 800-56C r2 section 4 (FixedInfo).

Encoding (version ``securecomp/kdf/v1``)
---------------------------------------
Seven fields in fixed order, each as a 4-byte big-endian length followed by its bytes:

1. the version tag ``b"securecomp/kdf/v1"``;
2. ``protocol`` in UTF-8; 3. ``purpose`` in UTF-8; 4. ``session`` bytes (a `str` session is
   its UTF-8 bytes, so ``"s"`` and ``b"s"`` are the *same* domain);
5. ``round`` as 8 bytes big-endian;
6. ``party``: empty when absent, else 8 bytes big-endian;
7. ``pair``: empty when absent, else two 8-byte big-endian ids.

A fixed number of length-prefixed fields parses back uniquely, and each field's own encoding
is injective (UTF-8; fixed-width integers; absence is the only empty integer field), so
``encode`` is injective. Changing any of this requires a new version tag.

Pairs
-----
``pair=(u, v)`` is *ordered*: ``(u, v)`` and ``(v, u)`` are different domains (useful for
directional keys, u→v versus v→u). Secure aggregation needs the pairwise mask seed of u and v
to be the same for both, so use `Domain.for_pair`, which stores the pair sorted.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import SupportsIndex

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from securecomp.crypto.prg import SEED_BYTES, AesCtrPrg
from securecomp.errors import ParameterError

__all__ = [
    "KDF_VERSION",
    "MAX_OUTPUT_BYTES",
    "MIN_IKM_BYTES",
    "Domain",
    "derive_key",
    "derive_keys",
    "derive_prg",
]

#: Version tag opening every encoded domain.
KDF_VERSION = b"securecomp/kdf/v1"

#: RFC 5869 limit on the output length: 255 hash blocks.
MAX_OUTPUT_BYTES = 255 * 32

#: Shortest input keying material accepted. HKDF cannot add entropy; refusing short inputs
#: catches a password or a truncated secret passed by mistake (128-bit security floor).
MIN_IKM_BYTES = 16

_U64_LIMIT = 1 << 64


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def _check_id(name: str, value: object) -> int:
    """An integer id or counter in [0, 2^64) (numpy integers accepted, bools refused)."""
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer, got the bool {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ParameterError(f"{name} must be an integer, got {type(value).__name__}") from exc
    if not 0 <= number < _U64_LIMIT:
        raise ParameterError(f"{name} must lie in [0, 2^64), got {number}")
    return number


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ParameterError(f"{name} must be a non-empty str, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParameterError(f"{name} is not encodable as UTF-8: {exc}") from exc
    return value


@dataclass(frozen=True, slots=True)
class Domain:
    """Where a derived key is used: the HKDF ``info`` context.

    Invariant: ``a.encode() == b.encode()`` if and only if ``a == b``; hence keys derived
    from one secret for two different domains are independent.

    Parameters
    ----------
    protocol : str
        Protocol name, e.g. ``"secagg"``, ``"spdz2k"``, ``"wire"``.
    purpose : str
        What the key is for within the protocol, e.g. ``"pair-mask"``, ``"aead"``.
    session : bytes or str, optional
        Session identifier; a `str` is stored as its UTF-8 bytes.
    round : int, optional
        Round (or epoch) number in ``[0, 2^64)``.
    party : int, optional
        Party id in ``[0, 2^64)`` when the key belongs to one party.
    pair : tuple of int, optional
        Two distinct party ids, *ordered* as given; `for_pair` sorts them.
    """

    protocol: str
    purpose: str
    session: bytes | str = b""
    round: int = 0
    party: int | None = None
    pair: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        # Normalize in place (frozen: via object.__setattr__) so equality matches encoding.
        _check_text("protocol", self.protocol)
        _check_text("purpose", self.purpose)
        session = self.session
        if isinstance(session, str):
            try:
                session = session.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ParameterError(f"session is not encodable as UTF-8: {exc}") from exc
        elif isinstance(session, bytearray | memoryview):
            session = bytes(session)
        elif not isinstance(session, bytes):
            raise ParameterError(f"session must be bytes or str, got {type(session).__name__}")
        if len(session) >= 1 << 32:
            raise ParameterError("session identifier is longer than 2^32 bytes; hash it first")
        object.__setattr__(self, "session", session)
        object.__setattr__(self, "round", _check_id("round", self.round))
        if self.party is not None:
            object.__setattr__(self, "party", _check_id("party", self.party))
        if self.pair is not None:
            pair = self.pair
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ParameterError(f"pair must be a tuple of two party ids, got {pair!r}")
            u, v = _check_id("pair[0]", pair[0]), _check_id("pair[1]", pair[1])
            if u == v:
                raise ParameterError(f"pair must name two different parties, got ({u}, {v})")
            object.__setattr__(self, "pair", (u, v))

    def for_pair(self, u: SupportsIndex, v: SupportsIndex) -> Domain:
        """This domain for the unordered pair ``{u, v}``: stored sorted, so
        ``d.for_pair(u, v) == d.for_pair(v, u)`` and both parties derive the same key."""
        a, b = _check_id("u", u), _check_id("v", v)
        return replace(self, pair=(min(a, b), max(a, b)))

    def for_party(self, party: SupportsIndex) -> Domain:
        """This domain for one party's own key (e.g. a self-mask seed)."""
        return replace(self, party=_check_id("party", party))

    def for_round(self, round: SupportsIndex) -> Domain:
        """This domain in another round (e.g. fresh masks per aggregation round)."""
        return replace(self, round=_check_id("round", round))

    def encode(self) -> bytes:
        """The canonical, injective byte encoding used as the HKDF ``info``."""
        session = self.session
        if isinstance(session, str):  # unreachable after __post_init__; keeps mypy exact
            session = session.encode("utf-8")
        party = b"" if self.party is None else _u64(self.party)
        pair = b"" if self.pair is None else _u64(self.pair[0]) + _u64(self.pair[1])
        return b"".join(
            (
                _field(KDF_VERSION),
                _field(self.protocol.encode("utf-8")),
                _field(self.purpose.encode("utf-8")),
                _field(session),
                _field(_u64(self.round)),
                _field(party),
                _field(pair),
            )
        )


def _check_ikm(ikm: object) -> bytes:
    if not isinstance(ikm, bytes | bytearray | memoryview):
        raise ParameterError(f"input keying material must be bytes, got {type(ikm).__name__}")
    ikm = bytes(ikm)
    if len(ikm) < MIN_IKM_BYTES:
        raise ParameterError(
            f"input keying material is {len(ikm)} bytes; at least {MIN_IKM_BYTES} "
            "uniformly random (or Diffie-Hellman) bytes are required"
        )
    return ikm


def _check_salt(salt: object) -> bytes | None:
    if salt is None:
        return None
    if not isinstance(salt, bytes | bytearray | memoryview):
        raise ParameterError(f"salt must be bytes or None, got {type(salt).__name__}")
    return bytes(salt)


def _check_length(length: object) -> int:
    if isinstance(length, bool):
        raise ParameterError("length must be an int, got a bool")
    try:
        n = operator.index(length)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ParameterError(f"length must be an int, got {length!r}") from exc
    if not 1 <= n <= MAX_OUTPUT_BYTES:
        raise ParameterError(f"length must lie in [1, {MAX_OUTPUT_BYTES}] bytes, got {n}")
    return n


def _check_domain(domain: object) -> Domain:
    if not isinstance(domain, Domain):
        raise ParameterError(
            f"domain must be a securecomp.crypto.Domain, got {type(domain).__name__}"
        )
    return domain


def derive_key(ikm: bytes, domain: Domain, length: int = 32, salt: bytes | None = None) -> bytes:
    """Derive ``length`` bytes for ``domain`` from ``ikm`` with HKDF-SHA256.

    Parameters
    ----------
    ikm : bytes
        Input keying material with at least 128 bits of entropy (e.g. an X25519 shared
        secret); at least 16 bytes.
    domain : Domain
        Where the key is used; its encoding is the HKDF ``info``.
    length : int, optional
        Output length in bytes, ``1 <= length <= 8160``. Default 32.
    salt : bytes, optional
        HKDF salt; ``None`` means RFC 5869's default (32 zero bytes).

    Returns
    -------
    bytes
        ``HKDF-SHA256(ikm, salt, info=domain.encode(), length)``.
    """
    ikm = _check_ikm(ikm)
    domain = _check_domain(domain)
    length = _check_length(length)
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=length, salt=_check_salt(salt), info=domain.encode()
    )
    return hkdf.derive(ikm)


def derive_keys(
    ikm: bytes, domains: Sequence[Domain], length: int = 32, salt: bytes | None = None
) -> list[bytes]:
    """Derive one key per domain; equal to ``[derive_key(ikm, d, length, salt) for d in
    domains]`` but runs the HKDF extract step once (RFC 5869 section 2.2)."""
    ikm = _check_ikm(ikm)
    checked = [_check_domain(d) for d in domains]
    length = _check_length(length)
    salt_bytes = _check_salt(salt)
    # RFC 5869 section 2.2: PRK = HMAC-SHA256(salt, IKM), salt defaulting to HashLen zeros.
    prk = hmac.digest(salt_bytes if salt_bytes else bytes(32), ikm, hashlib.sha256)
    return [
        HKDFExpand(algorithm=hashes.SHA256(), length=length, info=d.encode()).derive(prk)
        for d in checked
    ]


def derive_prg(ikm: bytes, domain: Domain, salt: bytes | None = None) -> AesCtrPrg:
    """An `AesCtrPrg` seeded with ``derive_key(ikm, domain, 32, salt)``.

    Two parties holding the same ``ikm`` and the same domain (use `Domain.for_pair` for
    pairwise masks) obtain identical keystreams; any other domain gives an independent one.
    """
    return AesCtrPrg(derive_key(ikm, domain, SEED_BYTES, salt))
