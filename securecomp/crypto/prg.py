"""AES-256-CTR as a pseudorandom generator (PRG) writing into preallocated numpy buffers.

The keystream of AES-256 in counter mode (NIST SP 800-38A, section 6.5) under a uniformly
random 256-bit key is computationally indistinguishable from uniform bytes as long as the
counter never repeats; this is the standard PRG used by secure-aggregation and MPC
implementations to expand a short shared seed into a long mask (Bonawitz et al., CCS 2017,
section 4; Keller et al., MP-SPDZ). The keystream is produced by `cryptography`'s OpenSSL
binding by encrypting a shared, never-written buffer of zeros directly into the caller's
array, so a steady-state `fill` allocates nothing and runs at memory bandwidth.

Counter-block layout
--------------------
The 128-bit initial counter block is ``stream (64-bit big-endian) || 0 (64 bits)``. OpenSSL
increments the whole block as a big-endian integer; since one stream is limited to 2^64
blocks (2^68 bytes, enforced), the low half never carries into the stream id, so distinct
stream ids of one seed give disjoint keystreams.

Seed hygiene
------------
The output is a deterministic function of ``(seed, stream)`` and of the number of bytes
already drawn. A seed must therefore serve exactly one purpose: two uses of the same seed
produce the *same* "random" values (for masks, that cancels or reveals them). Derive one
seed per purpose with `securecomp.crypto.kdf.derive_prg`, or use `AesCtrPrg.from_random`.
"""

from __future__ import annotations

import builtins
import functools
import math
import operator
import secrets
from collections.abc import Sequence
from typing import Any, SupportsIndex, TypeAlias

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from securecomp.errors import ParameterError, ShapeMismatchError

__all__ = ["SEED_BYTES", "AesCtrPrg", "ShapeLike"]

#: Length of a PRG seed: an AES-256 key.
SEED_BYTES = 32

#: Largest number of bytes one (seed, stream) may produce: 2^64 AES blocks. Beyond it the
#: counter would carry into the stream id and overlap the next stream.
MAX_STREAM_BYTES = 16 << 64

#: Size of the shared zero source. One MiB keeps the per-chunk Python overhead negligible
#: (64 calls for 64 MiB) while the source stays cache-resident; it is shared by every
#: instance, so thousands of PRGs (one per pair in secure aggregation) cost nothing extra.
_CHUNK = 1 << 20

#: Little-endian uint64: the values of `random_uint64` do not depend on the host byte order,
#: so two parties on different machines expand a shared seed to the same mask.
_U64 = np.dtype("<u8")

#: An int or a sequence of ints, as numpy accepts.
ShapeLike: TypeAlias = SupportsIndex | Sequence[SupportsIndex]


@functools.cache
def _zeros() -> memoryview:
    """The read-only zero source (allocated on first use, never written)."""
    return memoryview(builtins.bytes(_CHUNK))


@functools.cache
def _output_slack() -> int:
    """Extra output room ``update_into`` demands beyond the input length.

    Recent `cryptography` releases treat CTR as a stream mode (no slack); older ones demand
    ``block_size - 1`` = 15 bytes for every mode. Probe once with a throwaway key instead of
    guessing from version numbers.
    """
    probe = Cipher(algorithms.AES(secrets.token_bytes(32)), modes.CTR(bytes(16))).encryptor()
    try:
        probe.update_into(bytes(16), bytearray(16))
    except ValueError:
        return 15
    return 0


def _normalize_shape(shape: ShapeLike) -> tuple[int, ...]:
    """Validate a shape (an int or a sequence of ints, all non-negative)."""
    try:
        dims = (
            (operator.index(shape),)
            if not isinstance(shape, Sequence)
            else tuple(operator.index(d) for d in shape)
        )
    except TypeError as exc:
        raise ParameterError(f"shape must be an int or a sequence of ints, got {shape!r}") from exc
    if any(d < 0 for d in dims):
        raise ParameterError(f"shape {dims} has a negative dimension; use sizes >= 0")
    return dims


class AesCtrPrg:
    """A stateful AES-256-CTR keystream that continues across calls.

    Invariant: for any split ``n = a + b``, drawing ``a`` bytes and then ``b`` bytes yields
    exactly the first ``n`` bytes of the keystream of ``(seed, stream)``, whatever the
    methods used (``fill``, ``bytes``, ``random_*``), so the output is a deterministic
    function of the seed, the stream id and the sequence of calls.

    Parameters
    ----------
    seed : bytes
        32 uniformly random bytes (an AES-256 key). Never reuse a seed for two purposes:
        derive per-purpose seeds with `securecomp.crypto.kdf.derive_prg`.
    stream : int, optional
        Stream id in ``[0, 2^64)``; distinct ids of one seed give disjoint keystreams.

    Notes
    -----
    Not thread-safe: one instance holds one cipher context. The seed is not retrievable
    from the object and never appears in its ``repr``.
    """

    __slots__ = ("_encryptor", "_position", "_scratch", "_stream")

    def __init__(self, seed: builtins.bytes, stream: int = 0) -> None:
        if not isinstance(seed, builtins.bytes | bytearray | memoryview):
            raise ParameterError(
                f"PRG seed must be bytes, got {type(seed).__name__}; "
                "use AesCtrPrg.from_random() or securecomp.crypto.kdf.derive_prg()"
            )
        seed = builtins.bytes(seed)
        if len(seed) != SEED_BYTES:
            raise ParameterError(
                f"PRG seed must be exactly {SEED_BYTES} bytes (an AES-256 key), got "
                f"{len(seed)}; derive one with securecomp.crypto.kdf.derive_key(..., length=32)"
            )
        try:
            stream = operator.index(stream)
        except TypeError as exc:
            raise ParameterError(f"stream id must be an int, got {stream!r}") from exc
        if not 0 <= stream < 1 << 64:
            raise ParameterError(f"stream id must lie in [0, 2^64), got {stream}")
        nonce = stream.to_bytes(8, "big") + bytes(8)
        self._encryptor = Cipher(algorithms.AES(seed), modes.CTR(nonce)).encryptor()
        self._stream = stream
        self._position = 0
        # Landing pad for the last few bytes when the library wants output slack; 32 bytes
        # per instance, touched only on that path.
        self._scratch = bytearray(32)

    @classmethod
    def from_random(cls, stream: int = 0) -> AesCtrPrg:
        """A PRG seeded with 32 fresh bytes from the OS CSPRNG (`secrets`)."""
        return cls(secrets.token_bytes(SEED_BYTES), stream)

    @property
    def stream(self) -> int:
        """The stream id this generator was created with."""
        return self._stream

    @property
    def position(self) -> int:
        """Number of keystream bytes drawn so far."""
        return self._position

    def __repr__(self) -> str:
        return f"AesCtrPrg(stream={self._stream}, position={self._position})"

    # --- core ----------------------------------------------------------------------------

    def _advance(self, nbytes: int) -> None:
        """Account for ``nbytes`` more keystream, refusing to run past the stream's end."""
        if self._position + nbytes > MAX_STREAM_BYTES:
            raise ParameterError(
                "this PRG stream is exhausted (2^68 bytes); derive a fresh seed or stream id"
            )
        self._position += nbytes

    def _keystream_into(self, dest: memoryview) -> None:
        """Write the next ``len(dest)`` keystream bytes into the flat byte view ``dest``."""
        total = dest.nbytes
        self._advance(total)
        zeros = _zeros()
        slack = _output_slack()
        update_into = self._encryptor.update_into
        offset = 0
        while offset < total:
            n = min(_CHUNK, total - offset)
            if offset + n + slack <= total:
                # Enough room after this chunk inside the caller's buffer to satisfy the
                # library's length check; CTR writes exactly n bytes, nothing beyond.
                update_into(zeros[:n], dest[offset : offset + n + slack])
            else:
                # Final chunk on a library that needs slack: write all but the last `slack`
                # bytes in place, and the rest through the small scratch buffer.
                head = n - slack
                if head > 0:
                    update_into(zeros[:head], dest[offset:])
                else:
                    head = 0
                tail = n - head
                update_into(zeros[:tail], self._scratch)
                dest[offset + head : offset + n] = self._scratch[:tail]
            offset += n

    def fill(self, out: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Overwrite ``out`` with uniformly random bytes, in place.

        Every element becomes uniform over its dtype's full range (for signed dtypes, over
        ``[-2^(w-1), 2^(w-1))``). The bytes are written in memory order, so the values read
        depend on the dtype's byte order: use little-endian dtypes (``'<u8'``) when two
        machines must agree on the values.

        Parameters
        ----------
        out : numpy.ndarray
            A writeable, C-contiguous array of any integer dtype. It is not reallocated.

        Returns
        -------
        numpy.ndarray
            ``out`` itself.

        Raises
        ------
        ParameterError
            If ``out`` is not a numpy integer array, not C-contiguous, or read-only.
        """
        if not isinstance(out, np.ndarray):
            raise ParameterError(
                f"fill() needs a numpy array, got {type(out).__name__}; "
                "use bytes(n) for a bytes object"
            )
        if not np.issubdtype(out.dtype, np.integer):
            raise ParameterError(
                f"fill() needs an integer dtype, got {out.dtype}; uniform bytes are not "
                "uniform floats: draw integers and convert explicitly"
            )
        if not out.flags.c_contiguous:
            raise ParameterError(
                "fill() needs a C-contiguous array (it writes the keystream in place); "
                "fill np.empty(view.shape, view.dtype) and assign it to the view instead"
            )
        if not out.flags.writeable:
            raise ParameterError("fill() needs a writeable array, got a read-only one")
        if out.size:
            self._keystream_into(out.reshape(-1).view(np.uint8).data)
        return out

    def bytes(self, n: int) -> builtins.bytes:
        """The next ``n`` keystream bytes as a `bytes` object."""
        try:
            n = operator.index(n)
        except TypeError as exc:
            raise ParameterError(f"byte count must be an int, got {n!r}") from exc
        if n < 0:
            raise ParameterError(f"byte count must be >= 0, got {n}")
        buf = bytearray(n)
        if n:
            self._keystream_into(memoryview(buf))
        return builtins.bytes(buf)

    # --- typed draws ---------------------------------------------------------------------

    def random_uint64(
        self, shape: ShapeLike = (), out: npt.NDArray[np.uint64] | None = None
    ) -> npt.NDArray[np.uint64]:
        """Uniform 64-bit unsigned integers.

        Parameters
        ----------
        shape : int or tuple of int
            Shape of the result.
        out : numpy.ndarray of uint64, optional
            Preallocated C-contiguous destination of that shape (no allocation then).

        Returns
        -------
        numpy.ndarray of uint64
            Values uniform in ``[0, 2^64)``, read as little-endian words (host-independent)
            when freshly allocated.
        """
        dims = _normalize_shape(shape)
        if out is None:
            out = np.empty(dims, dtype=_U64)
        else:
            if not isinstance(out, np.ndarray) or out.dtype.kind != "u" or out.itemsize != 8:
                raise ParameterError(
                    f"out must be a uint64 numpy array, got "
                    f"{getattr(out, 'dtype', type(out).__name__)}"
                )
            if out.shape != dims:
                raise ShapeMismatchError(f"out has shape {out.shape} but shape {dims} was asked")
        return self.fill(out)

    def random_bits(
        self, shape: ShapeLike, bits: int, *, out: npt.NDArray[np.uint64] | None = None
    ) -> npt.NDArray[np.uint64]:
        """Uniform integers in ``[0, 2^bits)`` as uint64 (bits above ``bits`` are zero).

        Parameters
        ----------
        shape : int or tuple of int
            Shape of the result.
        bits : int
            Number of random low bits, ``1 <= bits <= 64`` (e.g. a ring ``Z_2^bits``).
        out : numpy.ndarray of uint64, optional
            Preallocated destination, as in `random_uint64`.
        """
        bits = self._check_bits(bits)
        values = self.random_uint64(shape, out=out)
        if bits < 64:
            # Masking a uniform word keeps the low bits uniform and independent.
            np.bitwise_and(values, np.uint64((1 << bits) - 1), out=values)
        return values

    def random_below(self, bound: int, shape: ShapeLike) -> npt.NDArray[np.uint64]:
        """Uniform integers in ``[0, bound)`` as uint64, without modulo bias.

        Draws ``k = bitlen(bound - 1)``-bit candidates and keeps those below ``bound``
        (acceptance probability > 1/2), oversampling so one round almost always suffices.
        Rejection is exact, unlike reducing a wide word modulo ``bound``.

        Parameters
        ----------
        bound : int
            Exclusive upper bound, ``1 <= bound <= 2^64``.
        shape : int or tuple of int
            Shape of the result.
        """
        try:
            bound = operator.index(bound)
        except TypeError as exc:
            raise ParameterError(f"bound must be an int, got {bound!r}") from exc
        if not 1 <= bound <= 1 << 64:
            raise ParameterError(
                f"bound must lie in [1, 2^64], got {bound}; "
                "for larger bounds use random_int() per value"
            )
        dims = _normalize_shape(shape)
        if bound == 1 << 64:
            return self.random_uint64(dims)
        count = math.prod(dims)
        result = np.zeros(count, dtype=_U64)
        bits = (bound - 1).bit_length()
        if bits == 0 or count == 0:
            return result.reshape(dims)
        mask = np.uint64((1 << bits) - 1)
        limit = np.uint64(bound)
        accept = bound / (1 << bits)
        filled = 0
        while filled < count:
            need = count - filled
            # Mean need/accept draws plus a margin of several standard deviations: almost
            # always one round, and the loop keeps it exact when the margin falls short.
            draws = math.ceil(need / accept + 6.0 * math.sqrt(need) + 16)
            candidates = self.random_uint64(draws)
            np.bitwise_and(candidates, mask, out=candidates)
            kept = candidates[candidates < limit][:need]
            result[filled : filled + kept.size] = kept
            filled += kept.size
        return result.reshape(dims)

    def random_int(self, bound: int) -> int:
        """A uniform Python integer in ``[0, bound)`` for arbitrarily large ``bound``.

        Rejection sampling on ``ceil(k/8)`` keystream bytes read big-endian and masked to
        ``k = bitlen(bound - 1)`` bits (acceptance > 1/2); e.g. Paillier randomness or masks
        with statistical slack.
        """
        try:
            bound = operator.index(bound)
        except TypeError as exc:
            raise ParameterError(f"bound must be an int, got {bound!r}") from exc
        if bound < 1:
            raise ParameterError(f"bound must be >= 1, got {bound}")
        bits = (bound - 1).bit_length()
        if bits == 0:
            return 0
        nbytes = (bits + 7) // 8
        mask = (1 << bits) - 1
        while True:
            value = int.from_bytes(self.bytes(nbytes), "big") & mask
            if value < bound:
                return value

    @staticmethod
    def _check_bits(bits: int) -> int:
        try:
            bits = operator.index(bits)
        except TypeError as exc:
            raise ParameterError(f"bits must be an int, got {bits!r}") from exc
        if not 1 <= bits <= 64:
            raise ParameterError(f"bits must lie in [1, 64], got {bits}")
        return bits
