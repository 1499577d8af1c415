"""Slot packing of many small signed integers into one Paillier plaintext.

A Paillier plaintext is an integer modulo ``n`` (3072 bits by default) while the values of a
model update need a few dozen bits, so one ciphertext can carry many values: slot ``j`` of a
plaintext occupies bits ``[j*w, (j+1)*w)``. Because Paillier is additively homomorphic on
the whole integer, adding two packed ciphertexts adds every slot at once, provided no slot
carries into its neighbour. Batching quantized values into one Paillier plaintext with
spare high bits per slot is the approach of BatchCrypt (Zhang et al., "BatchCrypt: Efficient
Homomorphic Encryption for Cross-Silo Federated Learning", USENIX ATC 2020); here the sign
is handled by an offset rather than by two's complement inside the slot:

* Signed values ``v`` in ``[-2^(b-1), 2^(b-1))`` are stored as ``v + 2^(b-1)`` so that every
  slot is non-negative (a negative slot would borrow from its neighbour).
* After adding ``m`` packings, slot ``j`` holds ``sum_i v_i + m * 2^(b-1)``, which is below
  ``m * 2^b``; so a slot of ``w = b + ceil(log2 m_max)`` bits never overflows while
  ``m <= m_max``, and unpacking subtracts ``m * 2^(b-1)``.
* Multiplying a packed ciphertext by a plaintext scalar ``k >= 0`` multiplies every slot by
  ``k``: it consumes ``log2 k`` bits of headroom, i.e. it counts as ``k`` additions.
  Negative scalars are refused (see :meth:`PaillierPacking.check_scalar`).
* The packed integer stays below ``2^(bits(n) - 1 - margin)``; with the default 2-bit margin
  that is below ``n / 3``, the largest positive value phe's encoding accepts.

Packing and unpacking are vectorized: slot values are shifted into 64-bit words with numpy
(a slot of at most 64 bits touches at most two words), and the words become one Python
integer per plaintext through ``int.from_bytes`` / ``int.to_bytes``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, SupportsIndex

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError

__all__ = ["PaillierPacking", "paillier_packing"]

#: Little-endian 64-bit words: the packed integers do not depend on the host byte order.
_WORD = np.dtype("<u8")


@dataclass(frozen=True)
class PaillierPacking:
    """``n_slots`` slots of ``slot_bits`` bits per plaintext, for ``value_bits``-bit values.

    Create instances with :func:`paillier_packing` (cached) unless the layout is given.

    Invariant: for int64 arrays ``v_1 .. v_m`` with entries in
    ``[-2^(value_bits-1), 2^(value_bits-1))`` and ``m <= max_additions``,
    ``unpack([sum_i pack(v_i)[c] for c ...], n_additions=m, count=len(v_1)) == sum_i v_i``,
    where the sums of packed integers are what Paillier addition of the ciphertexts gives.

    Parameters
    ----------
    slot_bits : int
        Width ``w`` of a slot, at most 64.
    n_slots : int
        Slots per plaintext.
    value_bits : int
        Signed width ``b`` of one value (sign included), ``1 <= b <= slot_bits``.
    max_additions : int
        Headroom budget: the largest total weight (number of packings added, scalar
        multiples counted as repeated additions) a slot can hold without overflow.
    """

    slot_bits: int
    n_slots: int
    value_bits: int
    max_additions: int
    _words: int = field(init=False, repr=False, compare=False)
    _word_index: npt.NDArray[np.intp] = field(init=False, repr=False, compare=False)
    _bit_shift: npt.NDArray[np.uint64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("slot_bits", "n_slots", "value_bits", "max_additions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be a positive int, got {value!r}")
        if self.slot_bits > 64:
            raise ParameterError(
                f"slot_bits={self.slot_bits} exceeds 64: unpacked sums must fit int64; lower "
                "value_bits or max_additions"
            )
        if self.value_bits > self.slot_bits:
            raise ParameterError(
                f"value_bits={self.value_bits} does not fit a {self.slot_bits}-bit slot"
            )
        if self.max_additions * ((1 << self.value_bits) - 1) > (1 << self.slot_bits) - 1:
            raise ParameterError(
                f"{self.max_additions} additions of {self.value_bits}-bit values overflow a "
                f"{self.slot_bits}-bit slot; need slot_bits >= "
                f"{self.value_bits + _ceil_log2(self.max_additions)}"
            )
        total = self.slot_bits * self.n_slots
        object.__setattr__(self, "_words", -(-total // 64))
        starts = np.arange(self.n_slots, dtype=np.intp) * self.slot_bits
        object.__setattr__(self, "_word_index", starts // 64)
        object.__setattr__(self, "_bit_shift", (starts % 64).astype(np.uint64))

    # --- properties -----------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """The sign offset ``2^(value_bits - 1)`` added to every value."""
        return 1 << (self.value_bits - 1)

    @property
    def plaintext_bits(self) -> int:
        """Every packed integer (and every sum within budget) is below ``2^plaintext_bits``."""
        return self.slot_bits * self.n_slots

    @property
    def value_range(self) -> tuple[int, int]:
        """Inclusive range ``(-2^(b-1), 2^(b-1) - 1)`` of packable values."""
        return (-self.offset, self.offset - 1)

    def n_plaintexts(self, count: int) -> int:
        """Number of packed integers needed for ``count`` values."""
        return -(-operator.index(count) // self.n_slots)

    # --- budget ---------------------------------------------------------------------------

    def check_additions(self, n_additions: int) -> int:
        """Validate a total weight ``n_additions`` against the headroom; return it.

        Raises
        ------
        EncodingOverflowError
            If ``n_additions > max_additions``: the slots would carry into each other.
        """
        m = _count(n_additions, "n_additions")
        if m > self.max_additions:
            raise EncodingOverflowError(
                f"{m} additions exceed the packing's headroom of {self.max_additions} "
                f"(slots of {self.slot_bits} bits for {self.value_bits}-bit values): the slots "
                "would overflow into each other; decrypt and re-pack before adding more, or "
                "build the packing with a larger max_additions"
            )
        return m

    def check_scalar(self, k: int, n_additions: int = 1) -> int:
        """Weight after multiplying a packing of weight ``n_additions`` by the scalar ``k``.

        Multiplying by ``k`` scales every slot by ``k`` and so consumes ``log2 k`` bits of
        headroom: the result has weight ``k * n_additions``, which must stay within
        ``max_additions``. Unpack the product with ``n_additions=`` the returned weight.

        Raises
        ------
        EncodingOverflowError
            If ``k < 0`` or the new weight exceeds the budget.
        """
        if isinstance(k, bool):
            raise ParameterError("k must be an int, got a bool")
        scalar = operator.index(k)
        m = _count(n_additions, "n_additions")
        if scalar < 0:
            raise EncodingOverflowError(
                f"cannot multiply packed slots by the negative scalar {scalar}: the product "
                "of the whole plaintext is negative, i.e. n minus a positive number modulo "
                "n, and its borrows run across slot boundaries, corrupting every slot. "
                "Multiply by |k| and negate the unpacked result, or negate the values "
                "before packing"
            )
        # k = 0 gives weight 0: every slot is 0 and unpacks to 0.
        return self.check_additions(scalar * m)

    def scalar_budget(self, n_additions: int = 1) -> int:
        """Largest scalar ``k`` a packing of weight ``n_additions`` can be multiplied by."""
        return self.max_additions // _positive_int(n_additions, "n_additions")

    # --- pack / unpack --------------------------------------------------------------------

    def pack(self, values: npt.ArrayLike) -> list[int]:
        """Pack a 1-D integer array into ``ceil(len / n_slots)`` non-negative integers.

        Raises
        ------
        EncodingOverflowError
            If a value lies outside ``value_range``.
        ParameterError
            If ``values`` is not an integer array.
        """
        arr = np.asarray(values)
        if arr.dtype.kind not in "biu":
            raise ParameterError(f"pack takes integers, got dtype {arr.dtype}; quantize first")
        if arr.ndim != 1:
            raise ShapeMismatchError(f"pack takes a 1-D array, got shape {arr.shape}; ravel it")
        count = arr.size
        n_ints = self.n_plaintexts(count)
        if count:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < -self.offset or hi > self.offset - 1:
                bad = int(np.count_nonzero((arr < -self.offset) | (arr > self.offset - 1)))
                raise EncodingOverflowError(
                    f"{bad} of {count} values lie outside [{-self.offset}, {self.offset - 1}] "
                    f"(e.g. {hi if hi > self.offset - 1 else lo}), the range of "
                    f"{self.value_bits}-bit slots; clip or rescale the values, or build the "
                    "packing with more value_bits"
                )
        # Offset values, padded with raw zeros to a whole number of plaintexts.
        raw = np.zeros(n_ints * self.n_slots, dtype=np.uint64)
        raw[:count] = arr.astype(np.int64).view(np.uint64) + np.uint64(self.offset)
        raw2d = raw.reshape(n_ints, self.n_slots)
        # One extra word per plaintext receives the (zero) spill of the last slot.
        words = np.zeros((n_ints, self._words + 1), dtype=np.uint64)
        low = raw2d << self._bit_shift
        # The bits shifted out above: (v >> (64 - s)), written as two shifts so that s = 0
        # never shifts by 64. Distinct slots never share a bit, so adding equals OR-ing.
        high = (raw2d >> (np.uint64(63) - self._bit_shift)) >> np.uint64(1)
        rows = np.arange(n_ints, dtype=np.intp)[:, np.newaxis]
        np.add.at(words, (rows, self._word_index), low)
        np.add.at(words, (rows, self._word_index + 1), high)
        data = words[:, : self._words].astype(_WORD).tobytes()
        width = 8 * self._words
        return [
            int.from_bytes(data[i * width : (i + 1) * width], "little") for i in range(n_ints)
        ]

    def unpack(
        self, packed: Sequence[SupportsIndex], n_additions: int, count: int
    ) -> npt.NDArray[np.int64]:
        """Recover the first ``count`` slot values of a sum of ``n_additions`` packings.

        Parameters
        ----------
        packed : sequence of ints
            Decrypted plaintexts (Python ints, numpy ints or gmpy2 integers).
        n_additions : int
            Total weight of the sum: the number of packings added (a product with a scalar
            ``k`` counts ``k`` times, see :meth:`check_scalar`; 0 after multiplying by 0).
        count : int
            Number of values packed; ``len(packed)`` must equal ``n_plaintexts(count)``.

        Returns
        -------
        ndarray of int64
            ``sum_i v_i`` slot by slot.

        Raises
        ------
        EncodingOverflowError
            If ``n_additions`` exceeds the budget, a plaintext is negative or too wide, or a
            slot holds more than ``n_additions`` values can produce (wrong ``n_additions``,
            or a slot overflowed).
        ShapeMismatchError
            If ``len(packed)`` does not match ``count``.
        """
        m = self.check_additions(n_additions)
        total = operator.index(count)
        if total < 0:
            raise ParameterError(f"count must be >= 0, got {total}")
        n_ints = self.n_plaintexts(total)
        if len(packed) != n_ints:
            raise ShapeMismatchError(
                f"{total} values occupy {n_ints} plaintexts of {self.n_slots} slots, got "
                f"{len(packed)}"
            )
        width = 8 * self._words
        limit = 1 << self.plaintext_bits
        chunks = []
        for i, item in enumerate(packed):
            value = operator.index(item)
            if not 0 <= value < limit:
                raise EncodingOverflowError(
                    f"plaintext {i} does not fit {self.plaintext_bits} bits (value has "
                    f"{value.bit_length()} bits{', negative' if value < 0 else ''}): the "
                    "headroom overflowed or it was not produced by this packing"
                )
            chunks.append(value.to_bytes(width, "little"))
        words = np.zeros((n_ints, self._words + 1), dtype=np.uint64)
        if n_ints:
            words[:, : self._words] = np.frombuffer(b"".join(chunks), dtype=_WORD).reshape(
                n_ints, self._words
            )
        low = words[:, self._word_index] >> self._bit_shift
        high = (words[:, self._word_index + 1] << (np.uint64(63) - self._bit_shift)) << np.uint64(1)
        slots = low | high
        if self.slot_bits < 64:
            slots &= np.uint64((1 << self.slot_bits) - 1)
        slots = slots.reshape(-1)[:total]
        if total:
            ceiling = m * ((1 << self.value_bits) - 1)
            top = int(slots.max())
            if top > ceiling:
                raise EncodingOverflowError(
                    f"a slot holds {top}, more than {m} additions of {self.value_bits}-bit "
                    f"values can produce ({ceiling}); n_additions is wrong or a slot overflowed"
                )
        # slot - m * offset is the signed sum; it fits int64 because slot_bits <= 64.
        slots -= np.uint64(m * self.offset)
        return slots.view(np.int64)


def _ceil_log2(m: int) -> int:
    return (m - 1).bit_length()


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be a non-negative int, got a bool")
    v = operator.index(value)
    if v < 0:
        raise ParameterError(f"{name} must be a non-negative int, got {v}")
    return v


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be a positive int, got a bool")
    v = operator.index(value)
    if v < 1:
        raise ParameterError(f"{name} must be a positive int, got {v}")
    return v


@functools.cache
def _paillier_packing(
    plaintext_modulus_bits: int, value_bits: int, max_additions: int, margin_bits: int
) -> PaillierPacking:
    slot_bits = value_bits + _ceil_log2(max_additions)
    if slot_bits > 64:
        raise ParameterError(
            f"{value_bits}-bit values with headroom for {max_additions} additions need "
            f"{slot_bits}-bit slots; at most 64 are supported: lower value_bits or "
            "max_additions"
        )
    usable = plaintext_modulus_bits - 1 - margin_bits
    n_slots = usable // slot_bits
    if n_slots < 1:
        raise ParameterError(
            f"a {slot_bits}-bit slot does not fit a {plaintext_modulus_bits}-bit plaintext "
            f"with a {margin_bits}-bit margin"
        )
    # Use every bit of the slot for headroom: the budget is floor((2^w - 1) / (2^b - 1)).
    budget = ((1 << slot_bits) - 1) // ((1 << value_bits) - 1)
    return PaillierPacking(
        slot_bits=slot_bits, n_slots=n_slots, value_bits=value_bits, max_additions=budget
    )


def paillier_packing(
    plaintext_modulus_bits: int,
    value_bits: int,
    max_additions: int,
    *,
    margin_bits: int = 2,
) -> PaillierPacking:
    """The (cached) packing for a Paillier modulus of ``plaintext_modulus_bits`` bits.

    Slots are ``value_bits + ceil(log2 max_additions)`` bits wide (the sign is carried by
    the offset inside ``value_bits``), and as many slots are used as keep the packed integer
    below ``2^(plaintext_modulus_bits - 1 - margin_bits)``. The resulting ``max_additions``
    is the full budget the slot width allows (at least the one requested).

    Parameters
    ----------
    plaintext_modulus_bits : int
        Bit length of the Paillier modulus ``n`` (e.g. 3072).
    value_bits : int
        Signed width of one value, sign included.
    max_additions : int
        Number of packings (weight) the sums must support.
    margin_bits : int, default 2
        Bits kept free below ``n``: 2 keeps packed integers below ``n / 3``, inside the
        positive range of phe's ``EncodedNumber``.

    Raises
    ------
    ParameterError
        If the slot would exceed 64 bits or no slot fits.
    """
    args = {
        "plaintext_modulus_bits": plaintext_modulus_bits,
        "value_bits": value_bits,
        "max_additions": max_additions,
    }
    for name, value in args.items():
        _positive_int(value, name)
    if isinstance(margin_bits, bool) or operator.index(margin_bits) < 0:
        raise ParameterError(f"margin_bits must be a non-negative int, got {margin_bits!r}")
    return _paillier_packing(
        operator.index(plaintext_modulus_bits),
        operator.index(value_bits),
        operator.index(max_additions),
        operator.index(margin_bits),
    )

