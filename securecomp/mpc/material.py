"""Preprocessing material: what a trusted dealer hands out, as single-use objects.

Every protocol of the online phase consumes correlated randomness produced ahead of time
(Beaver, CRYPTO 1991): multiplication triples for each bilinear operation, truncation
pairs, edaBits (a random ring element shared both arithmetically and bitwise: Escudero,
Ghosh, Keller, Rachuri, Scholl, CRYPTO 2020), daBits (a random bit shared both ways) and
boolean AND triples. This module defines *what* the material is (a `Spec` naming its kind
and shapes), how a request travels to the dealer (a validated uint64 word list), and the
single-use wrapper `Material`.

Layout of a spec
----------------
Each kind has *random parts*, drawn by every party from its own dealer-seeded PRG (so they
cost no communication), and *correlated parts*, whose shares satisfy a relation with the
random parts. The correlated parts of parties ``0 .. n-2`` come from their PRGs too; the
last party receives its correlated parts from the dealer as a correction (the
seed-compression technique of e.g. Damgård et al., ESORICS 2013, section 4).

=========== =============================== ==========================================
kind        random parts (all parties)      correlated parts (relation)
=========== =============================== ==========================================
TRIPLE      ``a``, ``b`` (ring)             ``c = op(a, b)`` (additive)
AND_TRIPLE  ``a``, ``b`` (w-bit words)      ``c = a & b``, broadcast (XOR)
TRUNC       ``r`` (ring)                    ``-(r >> f)``, ``msb(r) 2^(64-f)`` (additive)
EDABIT      ``r`` (ring)                    bits of ``r`` (XOR)
DABIT       --                              a random bit, XOR-shared and additively
=========== =============================== ==========================================

Single use
----------
Using one triple (or mask) twice reveals the difference of two secrets. A `Material`
therefore hands its arrays out once: a second `consume` raises `PreprocessingReuseError`.
Dealer-side, each request carries a fresh counter (part of the PRG domain), and the dealer
refuses a counter it has already served.
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

from securecomp.encoding import ring_matmul
from securecomp.errors import (
    MalformedMessageError,
    ParameterError,
    PreprocessingReuseError,
    ShapeMismatchError,
)

__all__ = [
    "MAX_REQUEST_ELEMENTS",
    "Bilinear",
    "Combine",
    "Kind",
    "Material",
    "Part",
    "Preprocessing",
    "Spec",
    "decode_requests",
    "encode_requests",
]

#: Largest number of words one request may ask for (2^31 words = 16 GiB of uint64): a
#: malformed or hostile request cannot make the dealer allocate without bound.
MAX_REQUEST_ELEMENTS = 1 << 31

_MAX_NDIM = 8
_U64: np.dtype[Any] = np.dtype("<u8")
_WORDS: dict[int, np.dtype[Any]] = {
    8: np.dtype("<u1"),
    16: np.dtype("<u2"),
    32: np.dtype("<u4"),
    64: np.dtype("<u8"),
}


class Kind(enum.IntEnum):
    """The kinds of preprocessing material (the integer is the wire code)."""

    TRIPLE = 1
    AND_TRIPLE = 2
    TRUNC = 3
    EDABIT = 4
    DABIT = 5


class Bilinear(enum.IntEnum):
    """Bilinear maps over Z_2^64 with a Beaver triple form (the integer is the wire code).

    Beaver's identity ``f(x, y) = f(d, e) + f(d, b) + f(a, e) + f(a, b)`` with
    ``d = x - a`` and ``e = y - b`` holds for every bilinear ``f``, so one protocol serves
    them all; each member only says how to apply ``f`` and what shape it produces.
    """

    MUL = 1  # elementwise product with numpy broadcasting
    MATMUL = 2  # matrix product (np.matmul semantics, 1-d operands promoted)

    def apply(self, x: npt.NDArray[np.uint64], y: npt.NDArray[np.uint64]) -> npt.NDArray[Any]:
        """``f(x, y)`` modulo 2^64 (exact)."""
        if self is Bilinear.MUL:
            return np.multiply(x, y)
        return ring_matmul(x, y, 64)

    def result_shape(self, sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of ``f(x, y)`` for operands of shapes ``sa`` and ``sb``."""
        try:
            if self is Bilinear.MUL:
                return tuple(np.broadcast_shapes(sa, sb))
            return _matmul_shape(sa, sb)
        except ValueError as exc:
            raise ShapeMismatchError(
                f"{self.name.lower()} cannot combine shapes {sa} and {sb}: {exc}"
            ) from exc


def _matmul_shape(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    """``np.matmul`` result shape, computed without touching any data."""
    if not sa or not sb:
        raise ValueError("matmul needs operands with at least one dimension")
    a = sa if len(sa) >= 2 else (1, *sa)
    b = sb if len(sb) >= 2 else (*sb, 1)
    if a[-1] != b[-2]:
        raise ValueError(f"inner dimensions differ ({a[-1]} and {b[-2]})")
    out = (*np.broadcast_shapes(a[:-2], b[:-2]), a[-2], b[-1])
    if len(sb) == 1:
        out = out[:-1]
    if len(sa) == 1:
        out = (*out[:-2], out[-1]) if len(sb) > 1 else out[:-1]
    return tuple(int(d) for d in out)


class Combine(enum.Enum):
    """How the parties' shares of a part combine into its value."""

    ADD = "add"  # sum modulo 2^w
    XOR = "xor"  # bitwise exclusive or


@dataclass(frozen=True, slots=True)
class Part:
    """One array of a piece of material: shape, dtype, how shares combine, bit mask."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    combine: Combine
    #: For XOR parts holding single bits: shares are masked to bit 0 so that they combine
    #: to exactly 0 or 1 (a uniform byte share would carry garbage in the upper bits).
    single_bit: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _check_shape(shape: Sequence[int], what: str) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if len(dims) > _MAX_NDIM or any(d < 0 for d in dims):
        raise ParameterError(f"{what}: invalid shape {dims} (at most {_MAX_NDIM} dims, >= 0)")
    return dims


@dataclass(frozen=True, slots=True)
class Spec:
    """A request for one piece of material.

    Parameters
    ----------
    kind : Kind
    shapes : tuple of shapes
        ``(shape_a, shape_b)`` for triples, ``(shape,)`` for the other kinds.
    param : int
        The `Bilinear` code for TRIPLE, the word width (8, 16, 32, 64) for AND_TRIPLE, the
        number of bits to shift for TRUNC, unused (0) otherwise.
    """

    kind: Kind
    shapes: tuple[tuple[int, ...], ...]
    param: int = 0

    def __post_init__(self) -> None:
        want = 2 if self.kind in (Kind.TRIPLE, Kind.AND_TRIPLE) else 1
        if len(self.shapes) != want:
            raise ParameterError(f"{self.kind.name} material takes {want} shape(s)")
        object.__setattr__(
            self, "shapes", tuple(_check_shape(s, self.kind.name) for s in self.shapes)
        )
        if self.kind is Kind.TRIPLE:
            Bilinear(self.param)  # raises ValueError for an unknown code
            self.bilinear.result_shape(*self.shapes)
        elif self.kind is Kind.AND_TRIPLE:
            if self.param not in _WORDS:
                raise ParameterError(f"AND triple word width must be one of {sorted(_WORDS)}")
            try:
                np.broadcast_shapes(*self.shapes)
            except ValueError as exc:
                raise ShapeMismatchError(f"AND triple shapes do not broadcast: {exc}") from exc
        elif self.kind is Kind.TRUNC:
            if not 0 < self.param < 63:
                raise ParameterError(f"truncation by {self.param} bits must lie in [1, 62]")
        elif self.param != 0:
            raise ParameterError(f"{self.kind.name} material takes no parameter")
        total = sum(p.size for p in (*self.random_parts(), *self.correlated_parts()))
        if total > MAX_REQUEST_ELEMENTS:
            raise ParameterError(
                f"request for {total} words exceeds {MAX_REQUEST_ELEMENTS}; split the operation"
            )

    @property
    def bilinear(self) -> Bilinear:
        return Bilinear(self.param)

    @property
    def word(self) -> np.dtype[Any]:
        """Word dtype of boolean material."""
        return _WORDS[self.param] if self.kind is Kind.AND_TRIPLE else _U64

    def random_parts(self) -> tuple[Part, ...]:
        """Parts every party draws from its own PRG."""
        k = self.kind
        if k is Kind.TRIPLE:
            return (
                Part(self.shapes[0], _U64, Combine.ADD),
                Part(self.shapes[1], _U64, Combine.ADD),
            )
        if k is Kind.AND_TRIPLE:
            w = self.word
            return (Part(self.shapes[0], w, Combine.XOR), Part(self.shapes[1], w, Combine.XOR))
        if k in (Kind.TRUNC, Kind.EDABIT):
            return (Part(self.shapes[0], _U64, Combine.ADD),)
        return ()

    def correlated_parts(self) -> tuple[Part, ...]:
        """Parts whose shares satisfy the kind's relation (the last party's: from the dealer)."""
        k, s = self.kind, self.shapes
        if k is Kind.TRIPLE:
            return (Part(self.bilinear.result_shape(*s), _U64, Combine.ADD),)
        if k is Kind.AND_TRIPLE:
            return (Part(tuple(np.broadcast_shapes(*s)), self.word, Combine.XOR),)
        if k is Kind.TRUNC:
            return (Part(s[0], _U64, Combine.ADD), Part(s[0], _U64, Combine.ADD))
        if k is Kind.EDABIT:
            return (Part(s[0], _U64, Combine.XOR),)
        return (
            Part(s[0], np.dtype(np.uint8), Combine.XOR, single_bit=True),
            Part(s[0], _U64, Combine.ADD),
        )

    def correlated_values(self, random_values: Sequence[npt.NDArray[Any]], rng: Any) -> list[Any]:
        """Dealer side: the correlated values from the reconstructed random parts.

        ``rng`` is the dealer's own CSPRNG (an `AesCtrPrg`), used for daBits.
        """
        k = self.kind
        if k is Kind.TRIPLE:
            return [self.bilinear.apply(random_values[0], random_values[1])]
        if k is Kind.AND_TRIPLE:
            return [np.bitwise_and(random_values[0], random_values[1])]
        if k is Kind.TRUNC:
            # Stored in the form the online phase adds directly (saves two passes there):
            # -(r >> f) and msb(r) * 2^(64 - f).
            r = random_values[0]
            return [
                np.negative(r >> np.uint64(self.param)),
                (r >> np.uint64(63)) << np.uint64(64 - self.param),
            ]
        if k is Kind.EDABIT:
            return [random_values[0].copy()]
        bits = rng.fill(np.empty(self.shapes[0], dtype=np.uint8))
        bits &= np.uint8(1)
        return [bits, bits.astype(np.uint64)]

    def encode(self) -> list[int]:
        """The request words ``[kind, param, n_shapes, (ndim, dims...)...]``."""
        words = [int(self.kind), self.param, len(self.shapes)]
        for s in self.shapes:
            words += [len(s), *s]
        return words


def encode_requests(first_counter: int, specs: Sequence[Spec]) -> npt.NDArray[np.uint64]:
    """One request message: ``[first_counter, count, spec words...]`` as uint64."""
    words = [first_counter, len(specs)]
    for s in specs:
        words += s.encode()
    return np.array(words, dtype=_U64)


def decode_requests(words: npt.NDArray[Any]) -> tuple[int, list[Spec]]:
    """Parse and validate a request message (raises `MalformedMessageError`)."""
    if words.dtype != _U64 or words.ndim != 1 or words.size < 2:
        raise MalformedMessageError("a dealer request is a 1-d uint64 array of at least 2 words")
    w = [int(v) for v in words.tolist()]
    first, count = w[0], w[1]
    pos = 2
    specs: list[Spec] = []

    def take() -> int:
        nonlocal pos
        if pos >= len(w):
            raise MalformedMessageError("dealer request ends in the middle of a spec")
        pos += 1
        return w[pos - 1]

    try:
        for _ in range(count):
            kind, param, n_shapes = Kind(take()), take(), take()
            if n_shapes > 2:
                raise MalformedMessageError(f"dealer request spec with {n_shapes} shapes")
            shapes = []
            for _ in range(n_shapes):
                ndim = take()
                if ndim > _MAX_NDIM:
                    raise MalformedMessageError(f"dealer request shape with {ndim} dimensions")
                shapes.append(tuple(take() for _ in range(ndim)))
            specs.append(Spec(kind, tuple(shapes), param))
    except (ValueError, ParameterError) as exc:
        if isinstance(exc, MalformedMessageError):
            raise
        raise MalformedMessageError(f"invalid dealer request: {exc}") from None
    if pos != len(w):
        raise MalformedMessageError("dealer request has trailing words")
    return first, specs


class Material:
    """One piece of single-use preprocessing material held by one party.

    Invariant: `consume` returns the arrays exactly once (random parts, then correlated
    parts, in the order of `Spec.random_parts` / `Spec.correlated_parts`); any later call
    raises `PreprocessingReuseError`.
    """

    __slots__ = ("_parts", "counter", "spec")

    def __init__(self, spec: Spec, counter: int, parts: Sequence[npt.NDArray[Any]]) -> None:
        self.spec = spec
        self.counter = counter
        self._parts: tuple[npt.NDArray[Any], ...] | None = tuple(parts)

    @property
    def used(self) -> bool:
        return self._parts is None

    def consume(self) -> tuple[npt.NDArray[Any], ...]:
        """Hand out the arrays; the material is spent afterwards."""
        parts = self._parts
        if parts is None:
            raise PreprocessingReuseError(
                f"{self.spec.kind.name} material #{self.counter} was already used; reusing a "
                "triple or mask reveals the difference of two secrets. Request fresh material "
                "for every operation"
            )
        self._parts = None
        return parts

    def __repr__(self) -> str:
        state = "used" if self._parts is None else "fresh"
        return f"Material({self.spec.kind.name}, #{self.counter}, {state})"


class Preprocessing(abc.ABC):
    """Source of preprocessing material for one party (the dealer client, typically).

    All parties must request the same specs in the same order (SPMD); counters are then
    assigned identically everywhere.
    """

    @abc.abstractmethod
    def get(self, spec: Spec) -> Material:
        """Fresh material for ``spec`` (from the prefetched stock, else on demand)."""

    @abc.abstractmethod
    def prefetch(self, specs: Sequence[Spec]) -> None:
        """Obtain material for ``specs`` now (the offline phase) and keep it for `get`."""

    @property
    @abc.abstractmethod
    def offline_seconds(self) -> float:
        """Wall-clock seconds spent producing or fetching material so far."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the link to the dealer (idempotent)."""
