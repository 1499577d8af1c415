"""Paillier keys: generation above the floor, identifiers, validation and serialization.

The scheme is Paillier's (EUROCRYPT 1999, section 4) with the generator ``g = n + 1``
(Damgård and Jurik, PKC 2001, section 3), so that ``g^m = 1 + m*n (mod n^2)``; decryption
uses the Chinese remainder theorem over ``p^2`` and ``q^2`` (Paillier 1999, section 7).
Key generation is phe's (``phe.generate_paillier_keypair``: two primes of ``bits/2`` bits
from ``random.SystemRandom``, i.e. the OS CSPRNG), called only after the modulus size has
passed :func:`securecomp.params.check_paillier_key_bits`: 3072 bits by default (about
128-bit security), 2048 allowed and labelled about 112-bit, smaller only inside
``securecomp.params.insecure_test_parameters()``. phe itself accepts any size.

Keys travel in the securecomp envelope (`securecomp.net.wire`): the public key (kind
``paillier.public_key``) holds ``n`` only, so ``g = n + 1`` cannot be altered in transit;
the secret key is a separate bundle of its own kind (``paillier.secret_key``) that no
public export ever contains (`SecretKeyExportError`). Loading validates everything it
reads: the modulus size against the floor, that ``n`` is odd, not a square and free of
small factors, that the envelope fingerprint is the hash of ``n``, and for a secret key
that ``p * q = n`` with ``p != q`` both prime.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NoReturn

import gmpy2
import msgpack
import phe

from securecomp.errors import (
    MalformedMessageError,
    ParameterError,
    SecretKeyExportError,
)
from securecomp.net.wire import (
    Envelope,
    decode_envelope,
    encode_envelope,
    register_kind,
)
from securecomp.params import DEFAULT_PAILLIER_BITS, SecurityLabel, check_paillier_key_bits

__all__ = [
    "PUBLIC_KEY_KIND",
    "SCHEME",
    "SECRET_KEY_KIND",
    "PaillierPublicKey",
    "PaillierSecretKey",
    "export_public_key",
    "export_secret_key",
    "load_public_key",
    "load_secret_key",
    "paillier_keypair",
]

#: Envelope ``scheme`` field of every Paillier message.
SCHEME = "paillier"
#: Envelope kind of a public key (registered by `securecomp.net.wire`).
PUBLIC_KEY_KIND = register_kind("paillier.public_key")
#: Envelope kind of the separate secret-key bundle.
SECRET_KEY_KIND = register_kind("paillier.secret_key")

_FINGERPRINT_DOMAIN = b"securecomp/paillier/modulus/v1\x00"
_KEY_ID_DOMAIN = b"securecomp/paillier/key-id/v1\x00"
_FORMAT_VERSION = 1
# Primes below this bound are ruled out as factors of a loaded modulus: a cheap check that
# catches corrupted or hand-made moduli (a real one has two primes of bits/2 bits).
_SMALL_PRIMES = gmpy2.primorial(1 << 12)
# Miller-Rabin rounds for the primes of a loaded secret key (error below 4^-32).
_MR_ROUNDS = 32
_MAX_KEY_PAYLOAD = 4096


def _modulus_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


@dataclass(frozen=True, eq=False, repr=False)
class PaillierPublicKey:
    """A validated Paillier public key ``(n, g = n + 1)``.

    Invariant: ``n`` passed the key-size floor when the key was built, is odd, not a perfect
    square and has no prime factor below 4096; ``fingerprint`` is SHA-256 of ``n`` (domain
    separated) and ``key_id`` its first 16 bytes under another domain. Two keys are equal
    exactly when their moduli are.

    Build it with :func:`paillier_keypair`, :func:`load_public_key` or :meth:`from_phe`.

    Attributes
    ----------
    n : int
        The modulus.
    bits : int
        Bit length of ``n``.
    security : SecurityLabel
        Estimated security of the modulus size (NIST SP 800-57 Pt. 1, Table 2).
    fingerprint : bytes
        32-byte hash of ``n``: equal iff two keys are the same.
    key_id : bytes
        16-byte identifier carried in envelopes.
    """

    n: int
    security: SecurityLabel = field(init=False)
    fingerprint: bytes = field(init=False)
    key_id: bytes = field(init=False)
    _n: Any = field(init=False)
    _nsquare: Any = field(init=False)

    def __post_init__(self) -> None:
        n = self.n
        if isinstance(n, bool) or not isinstance(n, int):
            raise ParameterError(f"a Paillier modulus must be an int, got {type(n).__name__}")
        # The size check first: it is the policy (InsecureParameterError below the floor).
        label = check_paillier_key_bits(n.bit_length())
        mn = gmpy2.mpz(n)
        if not mn & 1 or gmpy2.is_square(mn) or gmpy2.gcd(mn, _SMALL_PRIMES) != 1:
            raise ParameterError(
                "invalid Paillier modulus: it is even, a perfect square or has a small prime "
                "factor, so it is not a product of two large distinct primes; generate the "
                "key with paillier_keypair"
            )
        raw = _modulus_bytes(n)
        object.__setattr__(self, "security", label)
        object.__setattr__(self, "fingerprint", hashlib.sha256(_FINGERPRINT_DOMAIN + raw).digest())
        object.__setattr__(self, "key_id", hashlib.sha256(_KEY_ID_DOMAIN + raw).digest()[:16])
        object.__setattr__(self, "_n", mn)
        object.__setattr__(self, "_nsquare", mn * mn)

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    @property
    def g(self) -> int:
        """The generator, always ``n + 1``."""
        return self.n + 1

    @property
    def n_mpz(self) -> Any:
        """``n`` as a gmpy2 ``mpz`` (for the arithmetic kernels)."""
        return self._n

    @property
    def nsquare(self) -> Any:
        """``n^2`` as a gmpy2 ``mpz``: the ciphertext modulus."""
        return self._nsquare

    @property
    def ciphertext_bytes(self) -> int:
        """Fixed width of one serialized ciphertext (``ceil(bits(n^2) / 8)``)."""
        return (2 * self.bits + 7) // 8

    @classmethod
    def from_phe(cls, key: phe.PaillierPublicKey) -> PaillierPublicKey:
        """Validate and wrap a phe public key (its ``g`` must be ``n + 1``).

        Raises
        ------
        ParameterError
            If ``key`` is not a phe public key or its ``g`` is not ``n + 1``.
        InsecureParameterError
            If ``n`` is below the key-size floor outside the insecure opt-in.
        """
        if not isinstance(key, phe.PaillierPublicKey):
            raise ParameterError(f"expected a phe.PaillierPublicKey, got {type(key).__name__}")
        if key.g != key.n + 1 or key.nsquare != key.n * key.n:
            raise ParameterError(
                "the phe public key has g != n + 1 (or a wrong n^2): encryption here assumes "
                "g = n + 1 (Damgård-Jurik), so its ciphertexts would not decrypt; rebuild the "
                "key from n alone"
            )
        return cls(int(key.n))

    def to_phe(self) -> phe.PaillierPublicKey:
        """The same key as a phe object (for interoperability and baselines)."""
        return phe.PaillierPublicKey(self.n)

    def to_bytes(self) -> bytes:
        """Public export in the securecomp envelope (never contains a secret)."""
        return export_public_key(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and other.n == self.n

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"PaillierPublicKey(bits={self.bits}, key_id={self.key_id.hex()[:8]})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("keys cannot be pickled; use export_public_key / load_public_key")


class PaillierSecretKey:
    """A Paillier secret key ``(p, q)`` with its CRT decryption constants.

    Invariant: ``p * q == public_key.n`` and ``p < q`` (checked here); ``p`` and ``q`` are
    prime (generated so by :func:`paillier_keypair`, checked by :func:`load_secret_key`).
    ``repr`` never shows the primes; the key cannot be pickled and its only serialization
    is the separate secret bundle of :func:`export_secret_key`.
    """

    __slots__ = ("_hp", "_hq", "_p", "_p_inv", "_psq", "_q", "_qsq", "public_key")

    def __init__(self, public_key: PaillierPublicKey, p: int, q: int) -> None:
        if not isinstance(public_key, PaillierPublicKey):
            raise ParameterError("public_key must be a PaillierPublicKey")
        for name, v in (("p", p), ("q", q)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 3:
                raise ParameterError(f"{name} must be an int prime, got {type(v).__name__}")
        if p * q != public_key.n or p == q:
            raise ParameterError(
                "p * q does not equal the public modulus (or p == q): this secret key does not "
                "belong to that public key"
            )
        self.public_key = public_key
        lo, hi = (p, q) if p < q else (q, p)
        self._p, self._q = gmpy2.mpz(lo), gmpy2.mpz(hi)
        self._psq, self._qsq = self._p * self._p, self._q * self._q
        self._p_inv = gmpy2.invert(self._p, self._q)
        g = public_key.n_mpz + 1
        self._hp = self._h(g, self._p, self._psq)
        self._hq = self._h(g, self._q, self._qsq)

    @staticmethod
    def _h(g: Any, x: Any, xsq: Any) -> Any:
        # h_p = L_p(g^(p-1) mod p^2)^(-1) mod p (Paillier 1999, section 7).
        return gmpy2.invert((gmpy2.powmod(g, x - 1, xsq) - 1) // x, x)

    def raw_decrypt(self, c: Any) -> Any:
        """Decrypt one raw ciphertext ``c`` to its plaintext in ``[0, n)`` (an ``mpz``).

        The caller validated ``c`` (``0 < c < n^2``, coprime to ``n``); this is the CRT
        decryption of Paillier 1999, section 7, with gmpy2 arithmetic throughout.
        """
        p, q = self._p, self._q
        mp = (gmpy2.powmod(c, p - 1, self._psq) - 1) // p * self._hp % p
        mq = (gmpy2.powmod(c, q - 1, self._qsq) - 1) // q * self._hq % q
        return mp + (mq - mp) * self._p_inv % q * p

    @property
    def fingerprint(self) -> bytes:
        """The public key's fingerprint (hash of ``n``)."""
        return self.public_key.fingerprint

    @classmethod
    def from_phe(cls, key: phe.PaillierPrivateKey) -> PaillierSecretKey:
        """Validate and wrap a phe private key (and its public key)."""
        if not isinstance(key, phe.PaillierPrivateKey):
            raise ParameterError(f"expected a phe.PaillierPrivateKey, got {type(key).__name__}")
        return cls(PaillierPublicKey.from_phe(key.public_key), int(key.p), int(key.q))

    def to_phe(self) -> phe.PaillierPrivateKey:
        """The same key as a phe object (for interoperability and baselines)."""
        return phe.PaillierPrivateKey(self.public_key.to_phe(), int(self._p), int(self._q))

    def to_bytes(self) -> NoReturn:
        """Refused: a secret key has no implicit serialization.

        Raises
        ------
        SecretKeyExportError
            Always; use ``key.public_key.to_bytes()`` for the public key or
            :func:`export_secret_key` for the separate secret bundle.
        """
        raise SecretKeyExportError(
            "a secret key has no to_bytes(): use key.public_key.to_bytes() to publish the "
            "public key, or export_secret_key(key) for the separate secret bundle that only "
            "the key holder may store"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PaillierSecretKey) and other._p == self._p and (other._q == self._q)
        )

    def __hash__(self) -> int:
        return hash(self.public_key.fingerprint)

    def __repr__(self) -> str:
        return f"PaillierSecretKey(for {self.public_key!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("secret keys cannot be pickled; use export_secret_key / load_secret_key")


def paillier_keypair(
    bits: int = DEFAULT_PAILLIER_BITS,
) -> tuple[PaillierPublicKey, PaillierSecretKey]:
    """Generate a Paillier key pair with a ``bits``-bit modulus.

    Parameters
    ----------
    bits : int, default 3072
        Modulus size: 3072 is about 128-bit security, 2048 about 112-bit (allowed,
        labelled); smaller sizes only inside ``insecure_test_parameters()``.

    Returns
    -------
    (PaillierPublicKey, PaillierSecretKey)

    Raises
    ------
    InsecureParameterError
        If ``bits < 2048`` outside the insecure opt-in (checked before any prime is drawn).
    ParameterError
        If ``bits`` is odd or outside 128..16384.
    """
    check_paillier_key_bits(bits)
    pk, sk = phe.generate_paillier_keypair(n_length=bits)
    public = PaillierPublicKey(int(pk.n))
    return public, PaillierSecretKey(public, int(sk.p), int(sk.q))


# --- serialization -----------------------------------------------------------------------------


def _envelope(kind: str, key: PaillierPublicKey, body: dict[str, Any]) -> bytes:
    payload = msgpack.packb({"v": _FORMAT_VERSION, **body}, use_bin_type=True)
    return encode_envelope(
        Envelope(
            kind=kind,
            scheme=SCHEME,
            fingerprint=key.fingerprint,
            key_id=key.key_id,
            session=b"",
            round=0,
            sender=0,
            recipient=0,
            payload=payload,
        )
    )


def export_public_key(key: PaillierPublicKey) -> bytes:
    """Serialize a public key (kind ``paillier.public_key``): ``n`` only.

    Raises
    ------
    SecretKeyExportError
        If given a `PaillierSecretKey`: a public export never holds secret material.
    """
    if isinstance(key, PaillierSecretKey):
        raise SecretKeyExportError(
            "a public export cannot hold a secret key: pass key.public_key, or use "
            "export_secret_key(key) for the separate secret bundle"
        )
    if not isinstance(key, PaillierPublicKey):
        raise ParameterError(f"expected a PaillierPublicKey, got {type(key).__name__}")
    return _envelope(PUBLIC_KEY_KIND, key, {"n": _modulus_bytes(key.n)})


def export_secret_key(key: PaillierSecretKey) -> bytes:
    """Serialize a secret key as its own bundle (kind ``paillier.secret_key``).

    The bundle holds ``n``, ``p`` and ``q``: store it only where the key holder keeps
    secrets (it is not encrypted here), and never send it to a computing party.
    """
    if not isinstance(key, PaillierSecretKey):
        raise ParameterError(f"expected a PaillierSecretKey, got {type(key).__name__}")
    n = key.public_key.n
    return _envelope(
        SECRET_KEY_KIND,
        key.public_key,
        {
            "n": _modulus_bytes(n),
            "p": _modulus_bytes(int(key._p)),
            "q": _modulus_bytes(int(key._q)),
        },
    )


def _open(data: bytes, kind: str, fields: tuple[str, ...]) -> tuple[Envelope, dict[str, int]]:
    env = decode_envelope(data, max_bytes=_MAX_KEY_PAYLOAD + 512)
    if env.kind != kind or env.scheme != SCHEME:
        other = (
            " (a secret-key bundle is not a public key)"
            if env.kind == SECRET_KEY_KIND and kind == PUBLIC_KEY_KIND
            else ""
        )
        raise MalformedMessageError(
            f"expected a {kind!r} envelope of scheme {SCHEME!r}, got {env.kind!r} / "
            f"{env.scheme!r}{other}"
        )
    if env.sealed:
        raise MalformedMessageError("the key envelope is sealed: open it with its key first")
    try:
        body = msgpack.unpackb(
            env.payload,
            raw=False,
            strict_map_key=True,
            max_bin_len=_MAX_KEY_PAYLOAD,
            max_str_len=8,
            max_array_len=0,
            max_map_len=len(fields) + 1,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several types; all mean "not well formed"
        raise MalformedMessageError(f"malformed Paillier key payload: {exc}") from None
    if type(body) is not dict or set(body) != {"v", *fields}:
        raise MalformedMessageError(
            f"malformed Paillier key payload: expected the fields {['v', *fields]}"
        )
    if body["v"] != _FORMAT_VERSION or type(body["v"]) is not int:
        raise MalformedMessageError(
            f"unsupported Paillier key format version {body['v']!r}; this build reads "
            f"{_FORMAT_VERSION}"
        )
    values = {}
    for name in fields:
        raw = body[name]
        if type(raw) is not bytes or not raw or raw[0] == 0:
            raise MalformedMessageError(
                f"malformed Paillier key field {name!r}: expected minimal big-endian bytes"
            )
        values[name] = int.from_bytes(raw, "big")
    return env, values


def _public_from(env: Envelope, n: int) -> PaillierPublicKey:
    try:
        key = PaillierPublicKey(n)
    except ParameterError as exc:
        if type(exc) is not ParameterError:
            raise  # InsecureParameterError: the policy, reported as such
        raise MalformedMessageError(f"invalid Paillier public key: {exc}") from None
    if env.fingerprint != key.fingerprint or env.key_id != key.key_id:
        raise MalformedMessageError(
            "the envelope fingerprint is not the hash of the modulus it carries: the key was "
            "altered in transit"
        )
    return key


def load_public_key(data: bytes) -> PaillierPublicKey:
    """Load and validate a public key written by :func:`export_public_key`.

    Raises
    ------
    MalformedMessageError
        Not a Paillier public-key envelope (a secret bundle included), bad fields, an
        invalid modulus, or a fingerprint that is not the hash of ``n``.
    InsecureParameterError
        If the modulus is below the floor outside the insecure opt-in.
    """
    env, values = _open(data, PUBLIC_KEY_KIND, ("n",))
    return _public_from(env, values["n"])


def load_secret_key(data: bytes) -> PaillierSecretKey:
    """Load and validate a secret-key bundle written by :func:`export_secret_key`.

    Raises
    ------
    MalformedMessageError
        Bad envelope or fields, ``p * q != n``, ``p == q``, or ``p`` or ``q`` not prime.
    InsecureParameterError
        If the modulus is below the floor outside the insecure opt-in.
    """
    env, values = _open(data, SECRET_KEY_KIND, ("n", "p", "q"))
    public = _public_from(env, values["n"])
    p, q = values["p"], values["q"]
    if (
        p * q != public.n
        or p == q
        or not gmpy2.is_prime(p, _MR_ROUNDS)
        or not gmpy2.is_prime(q, _MR_ROUNDS)
    ):
        raise MalformedMessageError(
            "invalid Paillier secret key: p and q must be distinct primes with p * q = n"
        )
    return PaillierSecretKey(public, p, q)
