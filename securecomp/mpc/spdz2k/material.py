"""Authenticated preprocessing material for SPDZ2k, produced by a dealer who knows the key.

In SPDZ2k the offline phase produces *authenticated* correlated randomness: every value
comes with shares of its MAC under the global key ``alpha`` (Cramer et al., CRYPTO 2018,
section 3, functionality F_Prep). Here a trusted dealer plays F_Prep: it draws ``alpha``
(and the binary-domain key ``beta``), so the threat model is active security against
malicious computing parties *given an honest dealer*; the dealer knows the keys and every
mask and must not collude with a computing party.

=========== ====================================================== ========================
kind        authenticated items (field)                            used by
=========== ====================================================== ========================
TRIPLE      ``a``, ``b``, ``c = op(a, b)`` (arith or binary)        Beaver products, ANDs
MULTRUNC    ``a``, ``b``, ``c + r`` (``c = a b``), ``t``, ``w`` of TRUNC   fixed-point products
TRUNC       ``r``; ``t = -(r_k >> f)``; ``w = msb(r_k) 2^(k-f)``           truncation
EDABIT      ``r`` (arith); the ``k`` bits of ``r_k`` (binary)       comparison (A2B)
DABIT       a random bit ``b`` (binary, upper bits random); ``b``   B2A
MASK        ``r`` uniform in Z_2^(k+s)                             output masking
INPUT       ``r``, whose value the owner also receives             input and private output
=========== ====================================================== ========================

``r_k = r mod 2^k``. The edaBit is that of Escudero, Ghosh, Keller, Rachuri and Scholl
(CRYPTO 2020, section 3): one random value held both arithmetically and bitwise.

Layout for seed compression (as in `securecomp.mpc.dealer`): *random* items have value
shares that every party draws from its own dealer-seeded PRG; *correlated* items are
computed by the dealer, whose value shares the parties ``0 .. n-2`` draw and the last party
receives as a correction; every MAC share is a correction for the last party. A PRG
draws, in order: the owner's part (INPUT, owner only), the random value shares, then
(except the last party) the correlated value shares and all MAC shares.

Semi-honest material (`securecomp.mpc.material.Material`, e.g. Paillier-generated triples)
carries no MAC and is refused by every MAC-mode protocol.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import (
    MalformedMessageError,
    ParameterError,
    PreprocessingReuseError,
    ShapeMismatchError,
)
from securecomp.mpc.material import MAX_REQUEST_ELEMENTS, Bilinear
from securecomp.mpc.spdz2k.ring import BINARY_PARAMETERS, Spdz2kParameters

__all__ = [
    "AuthKind",
    "AuthMaterial",
    "AuthPreprocessing",
    "AuthSpec",
    "Field",
    "Item",
    "correlated_values",
    "decode_requests",
    "encode_requests",
]

U64 = np.uint64
_MAX_NDIM = 8


class AuthKind(enum.IntEnum):
    """Kinds of authenticated material (the integer is the wire code)."""

    TRIPLE = 1
    TRUNC = 2
    EDABIT = 3
    DABIT = 4
    MASK = 5
    INPUT = 6
    MULTRUNC = 7


class Field(enum.IntEnum):
    """The domain of an authenticated item: Z_2^k values or single bits."""

    ARITH = 0
    BINARY = 1


@dataclass(frozen=True, slots=True)
class Item:
    """One authenticated array of a piece of material."""

    shape: tuple[int, ...]
    field: Field
    random: bool  # value shares drawn by every party (else computed by the dealer)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _shape(s: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(int(d) for d in s)
    if len(dims) > _MAX_NDIM or any(d < 0 for d in dims):
        raise ParameterError(f"invalid material shape {dims} (at most {_MAX_NDIM} dims, >= 0)")
    return dims


@dataclass(frozen=True, slots=True)
class AuthSpec:
    """A request for one piece of authenticated material.

    Parameters
    ----------
    kind : AuthKind
    shapes : tuple of shapes
        ``(shape_a, shape_b)`` for TRIPLE and MULTRUNC, ``(shape,)`` otherwise.
    param : int
        The `Bilinear` code (TRIPLE), the shift ``f`` (TRUNC, MULTRUNC), the bit count ``k``
        (EDABIT), the owner's party id (INPUT), else 0.
    field : Field
        ARITH, or BINARY for triples of authenticated bits.
    """

    kind: AuthKind
    shapes: tuple[tuple[int, ...], ...]
    param: int = 0
    field: Field = Field.ARITH

    def __post_init__(self) -> None:
        want = 2 if self.kind in (AuthKind.TRIPLE, AuthKind.MULTRUNC) else 1
        if len(self.shapes) != want:
            raise ParameterError(f"{self.kind.name} material takes {want} shape(s)")
        object.__setattr__(self, "shapes", tuple(_shape(s) for s in self.shapes))
        if self.field is Field.BINARY and not (
            self.kind is AuthKind.TRIPLE and self.param == Bilinear.MUL
        ):
            raise ParameterError("binary-domain material exists for elementwise triples only")
        kind, param = self.kind, self.param
        if kind is AuthKind.TRIPLE:
            if param not in (Bilinear.MUL, Bilinear.MATMUL):
                raise ParameterError(f"unknown bilinear map code {param}")
            Bilinear(param).result_shape(*self.shapes)
        elif kind in (AuthKind.TRUNC, AuthKind.MULTRUNC):
            if not 0 < param < 63:
                raise ParameterError(f"truncation by {param} bits must lie in [1, 62]")
            if kind is AuthKind.MULTRUNC:
                Bilinear.MUL.result_shape(*self.shapes)
        elif kind is AuthKind.EDABIT and param not in (32, 64):
            raise ParameterError(f"edaBits of {param} bits: use k = 32 or 64")
        elif kind is AuthKind.INPUT and not 0 <= param < 1 << 16:
            raise ParameterError(f"input mask for party {param}: not a party id")
        elif kind in (AuthKind.DABIT, AuthKind.MASK) and param != 0:
            raise ParameterError(f"{kind.name} material takes no parameter")
        total = 4 * sum(it.size for it in self.items())
        if total > MAX_REQUEST_ELEMENTS:
            raise ParameterError(
                f"request for about {total} words exceeds {MAX_REQUEST_ELEMENTS}; split it"
            )

    @property
    def owner(self) -> int | None:
        """The party that learns the value of an INPUT mask."""
        return self.param if self.kind is AuthKind.INPUT else None

    def items(self) -> tuple[Item, ...]:
        """The authenticated arrays, in order."""
        k, s = self.kind, self.shapes
        a, b = Field.ARITH, Field.BINARY
        if k is AuthKind.TRIPLE:
            out = Bilinear(self.param).result_shape(*s)
            f = self.field
            return (Item(s[0], f, True), Item(s[1], f, True), Item(out, f, False))
        if k is AuthKind.TRUNC:
            return (Item(s[0], a, True), Item(s[0], a, False), Item(s[0], a, False))
        if k is AuthKind.MULTRUNC:
            out = Bilinear.MUL.result_shape(*s)
            return (Item(s[0], a, True), Item(s[1], a, True),
                    *(Item(out, a, False) for _ in range(3)))
        if k is AuthKind.EDABIT:
            return (Item(s[0], a, True), Item((self.param, *s[0]), b, False))
        if k is AuthKind.DABIT:
            return (Item(s[0], b, False), Item(s[0], a, False))
        if k is AuthKind.MASK:
            return (Item(s[0], a, True),)
        return (Item(s[0], a, False),)  # INPUT: the value is the owner's part

    def encode(self) -> list[int]:
        """Request words ``[kind, field, param, n_shapes, (ndim, dims...)...]``."""
        words = [int(self.kind), int(self.field), self.param, len(self.shapes)]
        for shape in self.shapes:
            words += [len(shape), *shape]
        return words


def limbs_of(field: Field, params: Spdz2kParameters) -> int:
    """Limbs of an item's ring: the arithmetic ring's, or one for bits."""
    return params.ring.limbs if field is Field.ARITH else BINARY_PARAMETERS.ring.limbs


def encode_requests(first: int, specs: Sequence[AuthSpec]) -> npt.NDArray[np.uint64]:
    """One request message ``[first_counter, count, spec words...]``."""
    words = [first, len(specs)]
    for spec in specs:
        words += spec.encode()
    return np.array(words, dtype=U64)


def decode_requests(words: npt.NDArray[Any]) -> tuple[int, list[AuthSpec]]:
    """Parse and validate a request (`MalformedMessageError` on anything unexpected)."""
    if words.dtype != U64 or words.ndim != 1 or words.size < 2:
        raise MalformedMessageError("a dealer request is a 1-d uint64 array of >= 2 words")
    w = [int(v) for v in words.tolist()]
    pos = 2

    def take() -> int:
        nonlocal pos
        if pos >= len(w):
            raise MalformedMessageError("dealer request ends in the middle of a spec")
        pos += 1
        return w[pos - 1]

    specs = []
    try:
        for _ in range(w[1]):
            kind, field, param, n_shapes = AuthKind(take()), Field(take()), take(), take()
            if n_shapes > 2:
                raise MalformedMessageError(f"dealer request spec with {n_shapes} shapes")
            shapes = []
            for _ in range(n_shapes):
                ndim = take()
                if ndim > _MAX_NDIM:
                    raise MalformedMessageError(f"dealer request shape with {ndim} dims")
                shapes.append(tuple(take() for _ in range(ndim)))
            specs.append(AuthSpec(kind, tuple(shapes), param, field))
    except MalformedMessageError:
        raise
    except (ValueError, ParameterError) as exc:
        raise MalformedMessageError(f"invalid dealer request: {exc}") from None
    if pos != len(w):
        raise MalformedMessageError("dealer request has trailing words")
    return w[0], specs


def correlated_values(
    spec: AuthSpec,
    params: Spdz2kParameters,
    randoms: Sequence[npt.NDArray[np.uint64]],
    owner_part: npt.NDArray[np.uint64] | None,
    rng: Any,
) -> list[npt.NDArray[np.uint64]]:
    """Dealer side: the values of the correlated items (wide arrays), in item order.

    ``randoms`` are the reconstructed random items, ``owner_part`` the INPUT owner's value
    and ``rng`` the dealer's own CSPRNG (an `securecomp.crypto.AesCtrPrg`).
    """
    ring = params.ring
    k = params.k
    kind = spec.kind
    if kind is AuthKind.TRIPLE:
        r = ring if spec.field is Field.ARITH else BINARY_PARAMETERS.ring
        a, b = randoms
        if spec.param == Bilinear.MATMUL:
            return [r.matmul(a, b)]
        ndim = len(Bilinear.MUL.result_shape(spec.shapes[0], spec.shapes[1]))
        return [r.mul(_pad(a, ndim), _pad(b, ndim))]
    if kind is AuthKind.MASK:
        return []
    if kind is AuthKind.MULTRUNC:
        # The product's mask r is folded into c: the parties compute shares of z + r
        # directly and open them, without ever holding [z] or [r].
        a, b = randoms
        ndim = len(Bilinear.MUL.result_shape(spec.shapes[0], spec.shapes[1]))
        c = ring.mul(_pad(a, ndim), _pad(b, ndim))
        r = rng.fill(np.empty(c.shape, dtype=U64))
        return [ring.add(c, r, out=c), *_trunc_pair(params, r, spec.param)]
    if kind is AuthKind.INPUT:
        if owner_part is None:
            raise ParameterError("internal: INPUT material without the owner's part")
        return [owner_part]
    if kind is AuthKind.DABIT:
        noise = rng.fill(np.empty(spec.shapes[0], dtype=U64))
        bit = noise & U64(1)
        # The binary part carries random upper bits: opening [x] + [b] then reveals only
        # x XOR b in bit 0, never the carry x AND b above it.
        return [noise[np.newaxis], ring.from_u64(bit)]
    if kind is AuthKind.TRUNC:
        return _trunc_pair(params, randoms[0], spec.param)
    rk = params.reduce(randoms[0][0, ...])
    shifts = np.arange(k, dtype=U64).reshape((k, *(1,) * rk.ndim))
    bits = (rk[np.newaxis] >> shifts) & U64(1)  # EDABIT: the k bits of r mod 2^k
    return [bits[np.newaxis]]


def _trunc_pair(
    params: Spdz2kParameters, r: npt.NDArray[np.uint64], f: int
) -> list[npt.NDArray[np.uint64]]:
    """``t = -(r_k >> f)`` and ``w = msb(r_k) 2^(k-f)`` for the mask ``r`` (wide)."""
    k, ring = params.k, params.ring
    rk = params.reduce(r[0, ...])
    t = np.negative(np.right_shift(rk, U64(f)))
    w = np.left_shift(np.right_shift(rk, U64(k - 1)), U64(k - f))
    # Only the values modulo 2^k matter; they are shared as integers in [0, 2^64).
    return [ring.from_u64(params.reduce(t)), ring.from_u64(params.reduce(w))]


def _pad(x: npt.NDArray[np.uint64], ndim: int) -> npt.NDArray[np.uint64]:
    extra = ndim - (x.ndim - 1)
    return x if extra <= 0 else x.reshape((x.shape[0], *(1,) * extra, *x.shape[1:]))


class AuthMaterial:
    """One piece of single-use authenticated material held by one party.

    Invariant: `consume` returns ``(items, owner_part)`` exactly once; ``items[i]`` is a
    ``(2, L, *shape)`` array (value share, MAC share) of the spec's ``i``-th item.
    """

    __slots__ = ("_parts", "counter", "spec")

    def __init__(
        self,
        spec: AuthSpec,
        counter: int,
        items: Sequence[npt.NDArray[np.uint64]],
        owner_part: npt.NDArray[np.uint64] | None = None,
    ) -> None:
        self.spec = spec
        self.counter = counter
        self._parts: tuple[tuple[npt.NDArray[np.uint64], ...], Any] | None = (
            tuple(items),
            owner_part,
        )

    @property
    def used(self) -> bool:
        return self._parts is None

    def consume(self) -> tuple[tuple[npt.NDArray[np.uint64], ...], npt.NDArray[np.uint64] | None]:
        parts = self._parts
        if parts is None:
            raise PreprocessingReuseError(
                f"{self.spec.kind.name} material #{self.counter} was already used; reusing "
                "authenticated material reveals secrets. Request fresh material"
            )
        self._parts = None
        return parts

    def __repr__(self) -> str:
        return f"AuthMaterial({self.spec.kind.name}, #{self.counter}, " + (
            "used)" if self._parts is None else "fresh)"
        )


class AuthPreprocessing(abc.ABC):
    """Source of authenticated material and MAC key shares for one party.

    All parties request the same specs in the same order (SPMD).
    """

    @property
    @abc.abstractmethod
    def params(self) -> Spdz2kParameters:
        """The arithmetic parameters the material is made for."""

    @abc.abstractmethod
    def key_share(self, field: Field) -> int:
        """This party's share of the MAC key of ``field`` (a secret)."""

    @abc.abstractmethod
    def get(self, spec: AuthSpec) -> AuthMaterial:
        """Fresh material for ``spec``."""

    @abc.abstractmethod
    def prefetch(self, specs: Sequence[AuthSpec]) -> None:
        """Obtain material for ``specs`` now and keep it for `get`."""

    @property
    @abc.abstractmethod
    def offline_seconds(self) -> float:
        """Seconds spent producing or fetching material."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the link to the dealer (idempotent)."""


def check_material(material: object, spec: AuthSpec) -> AuthMaterial:
    """``material`` if it is authenticated material made for ``spec``.

    Raises
    ------
    UnsupportedOperationError
        For semi-honest material (no MACs: from the semi-honest dealer or a Paillier
        triple generator), which MAC mode refuses.
    ShapeMismatchError
        For material made for another spec.
    """
    from securecomp.errors import UnsupportedOperationError

    if not isinstance(material, AuthMaterial):
        raise UnsupportedOperationError(
            f"MAC mode needs authenticated (SPDZ2k) material, got {type(material).__name__}: "
            "semi-honest triples (dealer or Paillier) carry no MACs, so a cheating party "
            "could not be caught. Use the authenticated dealer"
        )
    if material.spec != spec:
        raise ShapeMismatchError(f"material {material!r} was made for {material.spec}, not {spec}")
    return material
