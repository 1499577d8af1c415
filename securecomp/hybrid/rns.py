"""SEAL plaintexts as exact integer polynomials: RNS, SEAL's NTT, and their bytes.

A CKKS plaintext at a ciphertext's level is stored by Microsoft SEAL (the library inside
TenSEAL) in residue-number form: for each prime ``q_l`` of the level, the negacyclic
number-theoretic transform of the coefficients modulo ``q_l``, i.e. the values
``p(psi^(2 rev(t) + 1)) mod q_l`` at position ``t``, where ``psi`` is the *smallest*
primitive ``2N``-th root of unity modulo ``q_l`` and ``rev`` reverses ``log2 N`` bits (SEAL
4 ``NTTTables``: ``try_minimal_primitive_root`` and Harvey's bit-reversed butterflies).
This module converts between that form and centered integer coefficients (NTT, inverse
NTT and the Chinese remainder theorem on Python integers), reads a plaintext's words, and
builds a plaintext from words through SEAL's own loader: TenSEAL's bindings expose no
setter, so the bytes of SEAL's serialization (header, ``parms_id``, coefficient count,
scale, and the data array, uncompressed) are written to a private temporary file and
loaded, which also runs SEAL's validity checks (every word below its prime). The
conversions are checked against SEAL's encoder and decoder in the tests.
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tenseal.sealapi as sealapi

from securecomp.errors import ParameterError
from securecomp.hybrid.embedding import bit_reversal

__all__ = [
    "from_ntt_words",
    "make_plaintext",
    "plaintext_words",
    "primes_at",
    "to_ntt_words",
]

Objects = npt.NDArray[Any]

_MAGIC = 0xA15E
_HEADER = struct.Struct("<HBBBBHQ")  # magic, header size, version, compression, reserved, size
_COMPR_NONE = 0


def primes_at(seal_context: Any, parms_id: Sequence[int]) -> tuple[int, ...]:
    """The primes ``q_0 ... q_l`` of the modulus at the level named by ``parms_id``."""
    data = seal_context.get_context_data(list(parms_id))
    if data is None:
        raise ParameterError("the parms_id names no level of this SEAL context")
    return tuple(int(m.value()) for m in data.parms().coeff_modulus())


@functools.cache
def _psi_powers(q: int, degree: int) -> Objects:
    """``psi^k mod q`` for ``k < 2N``, ``psi`` the smallest primitive ``2N``-th root."""
    m = 2 * degree
    if (q - 1) % m:
        raise ParameterError(f"{q} is not 1 modulo {m}: no negacyclic NTT of degree {degree}")
    g = 0
    for x in range(2, 1 << 16):
        g = pow(x, (q - 1) // m, q)
        if pow(g, degree, q) == q - 1:  # order exactly 2N
            break
    else:  # pragma: no cover - a prime of this form always has such an element
        raise ParameterError(f"no primitive {m}-th root of unity found modulo {q}")
    # The primitive 2N-th roots are the odd powers of g; SEAL takes the smallest.
    g2, cur, best = g * g % q, g, g
    for _ in range(degree - 1):
        cur = cur * g2 % q
        best = min(best, cur)
    powers = [1] * m
    for k in range(1, m):
        powers[k] = powers[k - 1] * best % q
    return np.array(powers, dtype=object)


def _cyclic(x: Objects, q: int, inverse: bool) -> Objects:
    """Length-``N`` DFT modulo ``q`` with ``w = psi^2`` (or its inverse), unnormalized."""
    n = x.size
    powers = _psi_powers(q, n)
    order = bit_reversal(n)
    y = x[order]
    span = 2
    while span <= n:
        half = span // 2
        exps = np.arange(half) * (2 * n // span)  # w^k = psi^(2 k N / span)
        w = powers[(2 * n - exps) % (2 * n)] if inverse else powers[exps]
        y = y.reshape(-1, span)
        a, b = y[:, :half], y[:, half:]
        t = (b * w) % q
        y = np.concatenate([(a + t) % q, (a - t) % q], axis=1).reshape(-1)
        span *= 2
    return y


def to_ntt_words(coeffs: Objects, primes: Sequence[int]) -> npt.NDArray[np.uint64]:
    """SEAL's RNS/NTT words of the integer polynomial ``coeffs`` (one block per prime)."""
    p = np.asarray(coeffs, dtype=object)
    n = p.size
    rev = bit_reversal(n)
    blocks = []
    for q in primes:
        powers = _psi_powers(q, n)
        values = _cyclic((p % q) * powers[:n] % q, q, inverse=False)
        blocks.append(values[rev])  # SEAL stores the value of index rev(t) at position t
    return np.array(np.concatenate(blocks), dtype=np.uint64)


def from_ntt_words(words: npt.NDArray[np.uint64], primes: Sequence[int]) -> Objects:
    """Centered integer coefficients (in ``(-Q/2, Q/2]``) of SEAL's RNS/NTT ``words``."""
    count = len(primes)
    if count == 0 or words.size % count:
        raise ParameterError(f"{words.size} words do not split into {count} RNS blocks")
    n = words.size // count
    rev = bit_reversal(n)
    modulus = 1
    for q in primes:
        modulus *= q
    acc = np.zeros(n, dtype=object)
    acc[:] = 0
    for i, q in enumerate(primes):
        values = words[i * n : (i + 1) * n].astype(object)[rev]
        powers = _psi_powers(q, n)
        residues = _cyclic(values, q, inverse=True) * pow(n, -1, q) % q
        residues = residues * powers[(2 * n - np.arange(n)) % (2 * n)] % q  # times psi^-i
        cofactor = modulus // q
        acc = acc + (residues * pow(cofactor, -1, q) % q) * cofactor
    acc = acc % modulus
    return np.where(acc > modulus // 2, acc - modulus, acc)


def plaintext_words(plaintext: Any) -> npt.NDArray[np.uint64]:
    """The words of a SEAL plaintext (``coeff_count`` of them, in storage order)."""
    count = int(plaintext.coeff_count())
    return np.fromiter((plaintext[i] for i in range(count)), dtype=np.uint64, count=count)


@functools.cache
def _version() -> tuple[int, int]:
    header = sealapi.Serialization.SEALHeader()
    return int(header.version_major), int(header.version_minor)


def _sealed(body: bytes) -> bytes:
    major, minor = _version()
    size = _HEADER.size + len(body)
    return _HEADER.pack(_MAGIC, _HEADER.size, major, minor, _COMPR_NONE, 0, size) + body


def make_plaintext(
    seal_context: Any, parms_id: Sequence[int], scale: float, words: npt.NDArray[np.uint64]
) -> Any:
    """A SEAL plaintext in NTT form at ``parms_id`` holding ``words`` (loaded and validated).

    Raises
    ------
    ParameterError
        If SEAL refuses the plaintext (a word not below its prime, a wrong size or level).
    """
    data = np.ascontiguousarray(words, dtype="<u8")
    array = _sealed(struct.pack("<Q", data.size) + data.tobytes())
    body = (
        struct.pack("<4Q", *[int(v) for v in parms_id])
        + struct.pack("<Q", data.size)
        + struct.pack("<d", float(scale))
        + array
    )
    plaintext = sealapi.Plaintext()
    # The plaintext holds the evaluator's mask and flooding noise, which hide the value from
    # the key holder. SEAL loads plaintexts only from a path, so the bytes go to an
    # anonymous in-memory file (never the filesystem) where the platform offers one.
    with _memory_file(_sealed(body)) as path:
        try:
            plaintext.load(seal_context, path)
        except (RuntimeError, ValueError) as exc:
            raise ParameterError(f"SEAL refused the constructed plaintext: {exc}") from exc
    return plaintext


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """A path to ``data`` held in an anonymous memory file (Linux ``memfd_create``).

    Elsewhere, a 0600 file in a private temporary directory, overwritten with zeros before it
    is removed.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("securecomp-pt", getattr(os, "MFD_CLOEXEC", 0))
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="securecomp-pt-") as tmp:
        path = os.path.join(tmp, "plaintext")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        try:
            yield path
        finally:
            with open(path, "r+b") as fh:
                fh.write(bytes(len(data)))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
