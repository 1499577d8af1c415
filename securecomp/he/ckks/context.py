"""CKKS key material over TenSEAL: key generation, the public/secret split, Galois keys on
demand, and serialization through the securecomp envelope.

The scheme is CKKS (Cheon, Kim, Kim, Song, ASIACRYPT 2017) in its RNS form as implemented
by Microsoft SEAL and wrapped by TenSEAL (Benaissa et al., "TenSEAL: A Library for Encrypted
Tensor Operations Using Homomorphic Encryption", 2021). SEAL samples keys from its own
CSPRNG (seeded from the OS); parameters are checked by `securecomp.params.validate_ckks`
before any key exists (128-bit HomomorphicEncryption.org row, SEAL primes, scale drift).

Roles and threat model
----------------------
* **Key holder**: holds the secret context (secret key, public key, relinearization keys,
  and Galois keys once a computation needs rotations). It alone decrypts; a value leaves
  it only through :func:`securecomp.he.ckks.release` (noise flooding, Li-Micciancio 2021).
* **Server** (evaluator, semi-honest): holds ``ctx.public()``: no secret key
  (``is_private`` is False, checked again on every import). It encrypts and computes; under
  RLWE (IND-CPA) it learns nothing about the data but sizes: shapes, layouts, levels and
  the number of ciphertexts.

Galois keys (rotations) are ~35 MB at N = 8192 against ~1.9 MB for the rest of a public
context, so they are generated only when asked for (``galois_keys=True``), or lazily by
the key holder the first time an operation rotates; a public context carries them only if
exported with them. Operations that rotate are listed by :func:`needs_galois_keys`.

Wire format
-----------
A CKKS envelope (`securecomp.he.ckks.envelope`) of kind ``ckks.context`` (public) or
``ckks.secret_context`` (the separate secret bundle), fingerprint = the parameter
fingerprint, key id = the 16 random bytes drawn at key generation; the body is a msgpack
map (parameters, planned depth, flags, TenSEAL's own serialization). The payload digest
detects accidental corruption and truncation; it does not stop a forger who recomputes it:
pass ``auth_key`` (AES-256-GCM) when the channel is not authenticated.
Loading re-validates the parameters, checks that TenSEAL's context has exactly them, and
refuses a "public" context that holds a secret key (`SecretKeyExportError`).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, NoReturn

import msgpack
import tenseal as ts

from securecomp.errors import (
    MalformedMessageError,
    ParameterError,
    ReleaseError,
    SecretKeyExportError,
    UnsupportedOperationError,
)
from securecomp.he.ckks.envelope import SCHEME, pack_message, unpack_message
from securecomp.net.wire import DEFAULT_MAX, register_kind
from securecomp.params import DEFAULT_CKKS_PARAMETERS, CKKSParameters, validate_ckks

__all__ = [
    "PUBLIC_CONTEXT_KIND",
    "SCHEME",
    "SECRET_CONTEXT_KIND",
    "CKKSContext",
]

#: Envelope kind of a public context (no secret key, ever).
PUBLIC_CONTEXT_KIND = register_kind("ckks.context")
#: Envelope kind of the separate secret bundle (the key holder's backup).
SECRET_CONTEXT_KIND = register_kind("ckks.secret_context")

KEY_ID_BYTES = 16
_FORMAT_VERSION = 1
_FINGERPRINT_DOMAIN = b"securecomp/ckks/backend/v1\x00"
_BODY_KEYS = frozenset({"v", "n", "chain", "scale_bits", "depth", "galois", "secret", "tenseal"})


def _tenseal_context(params: CKKSParameters) -> ts.Context:
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
    )
    ctx.global_scale = params.scale
    return ctx


def _check_matches(ctx: ts.Context, params: CKKSParameters) -> None:
    """Refuse a TenSEAL context whose ring, chain or scale differ from ``params``."""
    seal = ctx.data.seal_context()
    key_data = seal.key_context_data()
    if key_data.parms().poly_modulus_degree() != params.poly_modulus_degree:
        raise MalformedMessageError("the TenSEAL context's ring degree differs from its header")
    # Walk the chain from the key level down: the bit counts give each prime's size.
    sizes = params.coeff_mod_bit_sizes
    # key level (all primes), then the data levels: q_0..q_L, q_0..q_{L-1}, ..., q_0
    expected = [sum(sizes)] + [sum(sizes[:j]) for j in range(len(sizes) - 1, 0, -1)]
    seen = [key_data.total_coeff_modulus_bit_count()]
    data = seal.first_context_data()
    while data is not None:
        seen.append(data.total_coeff_modulus_bit_count())
        data = data.next_context_data()
    if seen != expected:
        raise MalformedMessageError(
            f"the TenSEAL context's modulus chain (bit counts {seen}) differs from the "
            f"declared chain {list(sizes)}"
        )
    if ctx.global_scale != params.scale:
        raise MalformedMessageError("the TenSEAL context's scale differs from its header")
    if not (ctx.auto_rescale and ctx.auto_relin and ctx.auto_mod_switch):
        raise MalformedMessageError("the TenSEAL context has automatic rescaling switched off")


class CKKSContext:
    """One CKKS key: parameters, key id and TenSEAL context, secret or public.

    Invariant: ``is_private`` is True exactly when the context holds the secret key; a
    context built by `public` or loaded from a ``ckks.context`` envelope never does. Two
    contexts with equal `fingerprint` (parameters and key id) produce combinable
    ciphertexts.

    Create one with :meth:`generate` (key holder) or :meth:`from_bytes` (server).
    """

    __slots__ = (
        "_depth",
        "_galois",
        "_key_id",
        "_params",
        "_private",
        "_released_kl",
        "_sk",
        "_ts",
    )
    _depth: int
    _galois: bool
    _key_id: bytes
    _params: CKKSParameters
    _private: bool
    _released_kl: float
    _sk: Any
    _ts: ts.Context

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("use CKKSContext.generate(...) or CKKSContext.from_bytes(...)")

    @classmethod
    def _build(
        cls, ctx: ts.Context, params: CKKSParameters, key_id: bytes, depth: int
    ) -> CKKSContext:
        self = object.__new__(cls)
        self._ts = ctx
        self._params = params
        self._key_id = key_id
        self._depth = depth
        self._private = bool(ctx.is_private())
        self._galois = bool(ctx.has_galois_keys())
        self._sk = ctx.data.secret_key() if self._private else None
        self._released_kl = 0.0
        return self

    @classmethod
    def generate(
        cls,
        params: CKKSParameters = DEFAULT_CKKS_PARAMETERS,
        *,
        galois_keys: bool = False,
        depth: int | None = None,
        security_bits: int = 128,
    ) -> CKKSContext:
        """Generate a fresh key (the key holder's secret context).

        Parameters
        ----------
        params : CKKSParameters
            Validated first (`validate_ckks`); default ``[60, 40, 40, 60]``, scale 2^40,
            N = 8192 (4096 slots, depth 2, 128-bit).
        galois_keys : bool
            Generate rotation keys now (~0.2 s, ~35 MB once exported). Without them the
            key holder generates them lazily on the first rotating operation.
        depth : int, optional
            Planned multiplicative depth (default: the whole chain). A multiplication
            past it raises `DepthExhaustedError`.
        security_bits : int
            HomomorphicEncryption.org row the parameters must meet (128, 192, 256).

        Raises
        ------
        ParameterError, InsecureParameterError
            From `validate_ckks`.
        """
        if not isinstance(params, CKKSParameters):
            raise ParameterError(f"params must be a CKKSParameters, got {type(params).__name__}")
        validate_ckks(params, depth=depth, security_bits=security_bits)
        ctx = _tenseal_context(params)
        if galois_keys:
            ctx.generate_galois_keys()
        planned = params.depth if depth is None else depth
        return cls._build(ctx, params, secrets.token_bytes(KEY_ID_BYTES), planned)

    # --- facts -------------------------------------------------------------------------------

    @property
    def params(self) -> CKKSParameters:
        return self._params

    @property
    def key_id(self) -> bytes:
        """16 random bytes drawn at key generation; shared by the public and secret views."""
        return self._key_id

    @property
    def depth(self) -> int:
        """Planned multiplicative depth (rescales a ciphertext may go through)."""
        return self._depth

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 over the parameter fingerprint and the key id."""
        material = _FINGERPRINT_DOMAIN + self._params.fingerprint + self._key_id
        return hashlib.sha256(material).digest()

    @property
    def is_private(self) -> bool:
        """True when this context holds the secret key (the key holder's)."""
        return self._private

    @property
    def has_galois_keys(self) -> bool:
        """True when rotation keys are present (needed by slot sums, see `needs_galois_keys`)."""
        return self._galois

    @property
    def tenseal_context(self) -> ts.Context:
        """The underlying TenSEAL context, for backend code. Do not serialize it directly:
        `to_bytes` is the only export that guarantees no secret key leaves by mistake."""
        return self._ts

    def secret_key(self) -> Any:
        """TenSEAL's secret key object (key holder only); for decryption inside securecomp.

        Raises
        ------
        SecretKeyExportError
            On a public context.
        """
        if self._sk is None:
            raise SecretKeyExportError(
                "this is a public CKKS context: it holds no secret key; only the key holder "
                "can decrypt"
            )
        return self._sk

    def __repr__(self) -> str:
        role = "secret" if self._private else "public"
        galois = ", galois keys" if self._galois else ""
        return f"CKKSContext({self._params}, key {self._key_id.hex()[:8]}, {role}{galois})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("CKKSContext cannot be pickled; use to_bytes() and from_bytes()")

    # --- Galois keys --------------------------------------------------------------------------

    def generate_galois_keys(self) -> None:
        """Generate rotation keys in this (secret) context; a no-op if present.

        Raises
        ------
        UnsupportedOperationError
            On a public context: only the key holder can make them; ask it for a public
            context exported with ``galois_keys=True``.
        """
        if self._galois:
            return
        if not self._private:
            raise UnsupportedOperationError(
                "this public CKKS context has no Galois (rotation) keys and cannot make them "
                "without the secret key; the key holder must export ctx.public(galois_keys=True)"
            )
        self._ts.generate_galois_keys()
        self._galois = True

    # --- public/secret split and export ----------------------------------------------------

    def public(self, *, galois_keys: bool | None = None) -> CKKSContext:
        """A copy of this context without the secret key (what a server holds).

        Parameters
        ----------
        galois_keys : bool, optional
            Include rotation keys (default: if this context has them). True on a secret
            context without them generates them first.
        """
        galois = self._resolve_galois(galois_keys)
        raw = self._ts.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=galois,
            save_relin_keys=True,
        )
        ctx = ts.context_from(raw)
        if ctx.is_private():  # TenSEAL promised otherwise: never hand out a secret key
            raise SecretKeyExportError("TenSEAL kept the secret key in a public context")
        return CKKSContext._build(ctx, self._params, self._key_id, self._depth)

    def _resolve_galois(self, galois_keys: bool | None) -> bool:
        if galois_keys is None:
            return self._galois
        if not isinstance(galois_keys, bool):
            raise ParameterError(f"galois_keys must be a bool or None, got {galois_keys!r}")
        if galois_keys and not self._galois:
            self.generate_galois_keys()  # raises on a public context
        return galois_keys

    def to_bytes(
        self,
        *,
        include_secret_key: bool = False,
        galois_keys: bool | None = None,
        auth_key: bytes | None = None,
        sender: int | str = 0,
        recipient: int | str = 0,
    ) -> bytes:
        """Serialize in the securecomp envelope.

        Parameters
        ----------
        include_secret_key : bool
            False (default): a public export (kind ``ckks.context``) that never contains
            the secret key. True: the separate secret bundle (kind
            ``ckks.secret_context``), for the key holder's own storage; seal it with
            ``auth_key`` (AES-256-GCM) unless the storage is trusted.
        galois_keys : bool, optional
            Include rotation keys (default: if present). A secret bundle stores only the
            flag (TenSEAL regenerates the keys from the secret key on load).
        auth_key : bytes, optional
            32-byte key: the envelope is sealed (authenticated and encrypted).

        Raises
        ------
        SecretKeyExportError
            ``include_secret_key=True`` on a public context (there is no secret to put in,
            and a public export must not pretend to hold one).
        """
        if include_secret_key and not self._private:
            raise SecretKeyExportError(
                "a public CKKS context was asked to export a secret key: it holds none, and "
                "public exports never carry one; export the secret bundle from the key holder"
            )
        galois = self._resolve_galois(galois_keys)
        raw = self._ts.serialize(
            save_public_key=True,
            save_secret_key=include_secret_key,
            # A secret bundle stores only the flag: TenSEAL regenerates the keys on load.
            save_galois_keys=galois,
            save_relin_keys=True,
        )
        body = msgpack.packb(
            {
                "v": _FORMAT_VERSION,
                "n": self._params.poly_modulus_degree,
                "chain": list(self._params.coeff_mod_bit_sizes),
                "scale_bits": self._params.scale_bits,
                "depth": self._depth,
                "galois": galois,
                "secret": include_secret_key,
                "tenseal": raw,
            },
            use_bin_type=True,
        )
        kind = SECRET_CONTEXT_KIND if include_secret_key else PUBLIC_CONTEXT_KIND
        return pack_message(
            kind,
            self._params.fingerprint,
            self._key_id,
            body,
            auth_key=auth_key,
            sender=sender,
            recipient=recipient,
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        auth_key: bytes | None = None,
        max_bytes: int = DEFAULT_MAX,
        security_bits: int = 128,
    ) -> CKKSContext:
        """Load a context exported by `to_bytes`, validating everything it reads.

        Raises
        ------
        MalformedMessageError
            Not a CKKS context envelope, corrupted or truncated bytes, digest mismatch, a
            TenSEAL context that does not match its header. `IntegrityError` (a subclass)
            when a sealed envelope fails authentication.
        SecretKeyExportError
            A ``ckks.context`` (public) envelope that carries a secret key.
        ParameterError, InsecureParameterError
            The declared parameters fail `validate_ckks`.
        """
        env, body = unpack_message(
            data,
            (PUBLIC_CONTEXT_KIND, SECRET_CONTEXT_KIND),
            auth_key=auth_key,
            max_bytes=max_bytes,
        )
        fields = _unpack_body(body)
        try:
            params = CKKSParameters(fields["n"], tuple(fields["chain"]), fields["scale_bits"])
        except ParameterError as exc:
            raise MalformedMessageError(
                f"CKKS context declares invalid parameters: {exc}"
            ) from None
        if params.fingerprint != env.fingerprint:
            raise MalformedMessageError(
                "the CKKS context's parameters do not match the envelope fingerprint"
            )
        if len(env.key_id) != KEY_ID_BYTES:
            raise MalformedMessageError(f"CKKS key id must be {KEY_ID_BYTES} bytes")
        depth = fields["depth"]
        validate_ckks(params, depth=depth, security_bits=security_bits)
        try:
            ctx = ts.context_from(fields["tenseal"])
        except Exception as exc:  # TenSEAL raises ValueError/RuntimeError on bad protobufs
            raise MalformedMessageError(f"corrupted TenSEAL context: {exc}") from None
        _check_matches(ctx, params)
        private = bool(ctx.is_private())
        if env.kind == PUBLIC_CONTEXT_KIND and (private or fields["secret"]):
            raise SecretKeyExportError(
                "a public CKKS context (kind 'ckks.context') carried a secret key: it was "
                "refused; the sender's key is exposed and must be replaced"
            )
        if env.kind == SECRET_CONTEXT_KIND and not (private and fields["secret"]):
            raise MalformedMessageError("a secret CKKS bundle without a secret key")
        if bool(ctx.has_galois_keys()) != fields["galois"]:
            raise MalformedMessageError("the Galois key flag does not match the context")
        return cls._build(ctx, params, env.key_id, depth)

    # --- release accounting (key holder) -----------------------------------------------------

    def _spend_release(self, kl: float, limit: float) -> float:
        """Add ``kl`` to the divergence released under this key; refuse past ``limit``."""
        if self._released_kl + kl > limit * (1.0 + 1e-9):
            raise ReleaseError(
                f"this release would bring the divergence released under this key to "
                f"{self._released_kl + kl:.3g}, past the 2^-s budget {limit:.3g}: the declared "
                "number of releases is used up; declare the true total n_releases up front"
            )
        self._released_kl += kl
        return self._released_kl


def _unpack_body(body: bytes) -> dict[str, Any]:
    try:
        fields = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_array_len=64,
            max_map_len=16,
            max_str_len=64,
            max_ext_len=0,
        )
    except Exception as exc:
        raise MalformedMessageError(f"malformed CKKS context body: {exc}") from None
    if type(fields) is not dict or set(fields) != _BODY_KEYS:
        raise MalformedMessageError("malformed CKKS context body: wrong fields")
    if fields["v"] != _FORMAT_VERSION:
        raise MalformedMessageError(f"unsupported CKKS context format {fields['v']!r}")
    ints = (fields["n"], fields["scale_bits"], fields["depth"])
    if (
        any(type(v) is not int for v in ints)
        or type(fields["chain"]) is not list
        or any(type(b) is not int for b in fields["chain"])
        or type(fields["galois"]) is not bool
        or type(fields["secret"]) is not bool
        or type(fields["tenseal"]) is not bytes
    ):
        raise MalformedMessageError("malformed CKKS context body: wrong field types")
    return fields
