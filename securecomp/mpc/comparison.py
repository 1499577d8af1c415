"""Comparison and sign: arithmetic-to-binary conversion and a log-depth adder on XOR shares.

``x < y`` is the sign bit of ``z = x - y`` (``|z| < 2^63``, guaranteed by the bound
tracker). The sign bit of an additively shared ``z`` is computed in 8 rounds for any
number of parties:

1. **Masked opening** (1 round). The dealer supplies an edaBit: a uniform ``r`` shared
   additively *and* bitwise (XOR), as in Escudero, Ghosh, Keller, Rachuri and Scholl,
   "Improved primitives for MPC over mixed arithmetic-binary circuits", CRYPTO 2020.
   Everyone opens ``c = z + r`` (uniform, reveals nothing), so ``z = c + ~r + 1`` with a
   public ``c`` and a XOR-shared ``~r``: an arithmetic-to-binary conversion where the
   adder has one public operand.
2. **Carries** (6 rounds). With one public operand, the generate and propagate bits
   ``g = c & ~r``, ``p = c ^ ~r`` are local; the carry-in 1 folds into bit 0
   (``g_0 <- g_0 | p_0``). The carry into bit 63 is the group generate of bits 0..62,
   computed by a binary tree of the prefix operator
   ``(g, p) o (g', p') = (g ^ (p & g'), p & p')`` (Brent and Kung, IEEE TC 1982; the
   ``^`` replaces ``|`` because a group cannot both generate and propagate). Bits are
   permuted once, locally, by the bit-reversal of their index, so that every tree level
   pairs the high and low halves of a word: level ``j`` works on ``2^(6-j)``-bit words
   with two AND gates per pair that share an operand (one opening of three half-words,
   `securecomp.mpc.beaver.beaver_and`). Six levels, one round each.
3. **Sign** (local). ``msb(z) = c_63 ^ ~r_63 ^ carry_63``, XOR-shared.
4. **Bit to arithmetic** (1 round). With a dealer daBit ``s`` (shared both ways), open
   ``m = b ^ s`` (packed, 1 bit per element) and output ``m + s - 2 m s``, linear in the
   additive shares of ``s``.

Cost per element, per peer: 8 bytes (step 1) + 29 bytes (step 2: 3 x 4, 3 x 2, and 1-byte
words below) + 1 bit (step 4); 8 rounds.

Threat model: semi-honest parties and a non-colluding dealer; every opened value (``c``,
the Beaver-masked words, ``m``) is uniformly random, so parties learn only the output
shares.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.mpc.beaver import beaver_and
from securecomp.mpc.material import Kind, Spec
from securecomp.mpc.session import Session

__all__ = [
    "b2a",
    "comparison_specs",
    "dabit_spec",
    "edabit_spec",
    "index_reverse64",
    "ltz",
    "msb",
]

_TAG_A2B = "mpc.a2b"
_TAG_B2A = "mpc.b2a"
_TOP = np.uint64(1 << 63)
_WORD = {32: np.uint32, 16: np.uint16, 8: np.uint8, 4: np.uint8, 2: np.uint8, 1: np.uint8}
_LEVELS = (32, 16, 8, 4, 2, 1)


def _delta_swaps() -> tuple[tuple[np.uint64, np.uint64], ...]:
    """Masks and distances of the three delta swaps that exchange bit-index bits
    (0, 5), (1, 4) and (2, 3): together the 6-bit index reversal ``i -> rev6(i)``."""
    out = []
    for j, k in ((0, 5), (1, 4), (2, 3)):
        mask = sum(1 << i for i in range(64) if (i >> j) & 1 and not (i >> k) & 1)
        out.append((np.uint64(mask), np.uint64((1 << k) - (1 << j))))
    return tuple(out)


#: Constant masks of the index-reversal permutation.
_SWAPS = _delta_swaps()


def index_reverse64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Move bit ``i`` of every word to bit ``rev6(i)`` (the FFT bit-reversal permutation).

    After it, bits ``2m`` and ``2m + 1`` of the original word sit in the low and high
    halves at the same offset, and recursively so: each tree level of `msb` then pairs the
    halves of a word. A bit permutation, hence linear over XOR shares.
    """
    out = x.copy()
    t = np.empty_like(out)
    for mask, delta in _SWAPS:
        # Delta swap (Knuth, TAOCP 7.1.3): exchange the bits under `mask` with those
        # `delta` positions higher.
        np.right_shift(out, delta, out=t)
        t ^= out
        t &= mask
        out ^= t
        t <<= delta
        out ^= t
    return out


def edabit_spec(shape: tuple[int, ...]) -> Spec:
    return Spec(Kind.EDABIT, (tuple(shape),))


def dabit_spec(shape: tuple[int, ...]) -> Spec:
    return Spec(Kind.DABIT, (tuple(shape),))


def comparison_specs(n: int) -> list[Spec]:
    """All the material one `ltz` on ``n`` elements consumes, in order (for prefetching)."""
    from securecomp.mpc.beaver import and_spec

    specs = [edabit_spec((n,))]
    for h in _LEVELS:
        bits = np.dtype(_WORD[h]).itemsize * 8
        specs.append(and_spec((n,), (n,) if h == 1 else (2, n), bits))
    specs.append(dabit_spec((n,)))
    return specs


def msb(sess: Session, z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """XOR shares (0/1 in uint8) of the sign bit of the additively shared ``z``; 7 rounds."""
    flat = np.asarray(z, order="C").reshape(-1)
    n = flat.size
    r, rb = sess.material(edabit_spec((n,))).consume()
    np.add(flat, r, out=r)  # r is spent once masked: reuse it as the send buffer
    c = sess.open_sum(r, tag=_TAG_A2B)
    nr = rb
    if sess.is_first:
        np.invert(nr, out=nr)  # XOR shares of ~r: one party flips every bit
    g = np.bitwise_and(nr, c)
    if sess.is_first:
        np.bitwise_xor(nr, c, out=nr)
    p = nr
    top = ((p >> np.uint64(63)) & np.uint64(1)).astype(np.uint8)  # share of c_63 ^ ~r_63
    g ^= p & np.uint64(1)  # carry-in 1 at bit 0
    # Position 63 becomes the identity of the operator: g = 0, p = 1.
    g &= ~_TOP
    p &= ~_TOP
    if sess.is_first:
        p |= _TOP
    gw: npt.NDArray[Any] = index_reverse64(g)
    pw: npt.NDArray[Any] = index_reverse64(p)
    for h in _LEVELS:
        word = _WORD[h]
        low = gw.dtype.type((1 << h) - 1)
        shift = gw.dtype.type(h)
        g_hi = (gw >> shift).astype(word)
        g_lo = (gw & low).astype(word)
        p_hi = (pw >> shift).astype(word)
        if h > 1:
            p_lo = (pw & low).astype(word)
            both = beaver_and(sess, p_hi, np.stack([g_lo, p_lo]))
            gw = g_hi ^ both[0]
            pw = both[1]
        else:
            gw = g_hi ^ beaver_and(sess, p_hi, g_lo)
    carry = gw.astype(np.uint8) & np.uint8(1)
    return (top ^ carry).reshape(z.shape)


def b2a(sess: Session, bits: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """Additive shares of the integer 0/1 from XOR shares of a bit; one round."""
    flat = np.asarray(bits, order="C").reshape(-1)
    n = flat.size
    sx, sa = sess.material(dabit_spec((n,))).consume()
    masked = np.packbits(flat ^ sx)  # 1 bit per element on the wire
    m = np.unpackbits(sess.open_xor(masked, tag=_TAG_B2A), count=n).astype(np.uint64)
    # m + s - 2 m s: each party's share of s is negated where m = 1; party 0 adds m.
    out = np.where(m.astype(bool), np.negative(sa), sa)
    if sess.is_first:
        out += m
    return out.reshape(bits.shape)


def ltz(sess: Session, z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Additive shares of ``[z < 0]`` (integer 0/1) for a shared ``z`` with ``|z| < 2^63``.

    8 rounds (`msb` then `b2a`).
    """
    if z.size == 0:
        return np.zeros(z.shape, dtype=np.uint64)
    return b2a(sess, msb(sess, z))
