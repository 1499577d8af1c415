"""Authenticated comparison: sign bit through authenticated edaBits and binary triples.

``x < y`` is the sign bit of ``z = x - y`` (``|z| < 2^(k-1)``, guaranteed by the bound
tracker). As in the semi-honest engine (`securecomp.mpc.comparison`), but every bit is
an authenticated share of the binary domain Z_2^64 with ``k = 1, s = 63`` (SPDZ2k over
Z_2 embedded in Z_2^64: Cramer et al., CRYPTO 2018, section 3, with ``k = 1``), where XOR
is addition and AND a Beaver product with an authenticated binary triple:

1. **A2B by masked opening** (1 round). The dealer's edaBit (Escudero, Ghosh, Keller,
   Rachuri, Scholl, CRYPTO 2020, section 3: a uniform ``r`` shared in Z_2^(k+s) with MACs
   *and* its ``k`` low bits as authenticated binary shares) masks ``z``: open
   ``c = z + r`` (checked; only ``c mod 2^k`` is used), so ``z = c + ~r + 1 (mod 2^k)``.
2. **Carries** (``ceil(log2(k - 1))`` rounds: 6 for k = 64). Generate and propagate bits
   ``g_j = c_j ~r_j`` and ``p_j = c_j XOR ~r_j`` are linear in ``[r_j]`` with public
   ``c_j`` (offsets and masks only); the carry-in folds into ``g_0``. A binary tree of the
   prefix operator ``(g, p) o (g', p') = (g + p g', p p')`` (Brent and Kung, IEEE TC 1982)
   over positions ``0 .. k-2`` yields the carry into bit ``k - 1``; each level is one
   authenticated AND of ``p_hi`` with the stacked ``[g_lo, p_lo]`` (one opening).
3. **Sign** (local): ``msb(z) = p_(k-1) + carry``.
4. **B2A** (1 round) with an authenticated daBit ``b`` (binary and arithmetic): open
   ``msb + b`` in the binary domain (bit 0 is ``msb XOR b``; the daBit's random upper bits
   hide the carry above it) and output ``m + [b] - 2 m [b]``.

Every opening is MAC-checked before any output (`securecomp.mpc.spdz2k.session`).
Costs per element and peer: 16 bytes (step 1) + 8 (3 h_j) bytes over the tree levels
(about 1.5 KB for k = 64) + 8 bytes (step 4); 8 rounds for k = 64. Authenticated bits
cost one word each, where the semi-honest circuit packs 64 bits in a word: this is the
price of per-bit MACs.
"""

from __future__ import annotations

import numpy as np

from securecomp.mpc.material import Bilinear
from securecomp.mpc.spdz2k import authshare as A
from securecomp.mpc.spdz2k.material import AuthKind, AuthSpec, Field
from securecomp.mpc.spdz2k.protocols import beaver, public_low, triple_spec
from securecomp.mpc.spdz2k.ring import BINARY_PARAMETERS
from securecomp.mpc.spdz2k.session import ActiveSession

__all__ = ["b2a", "comparison_specs", "dabit_spec", "edabit_spec", "ltz", "msb"]

U64 = np.uint64
_BIN = BINARY_PARAMETERS.ring


def edabit_spec(shape: tuple[int, ...], k: int) -> AuthSpec:
    return AuthSpec(AuthKind.EDABIT, (tuple(shape),), k)


def dabit_spec(shape: tuple[int, ...]) -> AuthSpec:
    return AuthSpec(AuthKind.DABIT, (tuple(shape),))


def _levels(m: int) -> list[tuple[int, bool]]:
    """``(pairs, need_p)`` per tree level over ``m`` positions."""
    out = []
    while m > 1:
        h, odd = m // 2, m % 2
        out.append((h, m > 2))
        m = h + odd
    return out


def comparison_specs(n: int, k: int) -> list[AuthSpec]:
    """All the material one `ltz` on ``n`` elements consumes, in order (for prefetching)."""
    specs = [edabit_spec((n,), k)]
    for h, need_p in _levels(k - 1):
        specs.append(triple_spec(Bilinear.MUL, (h, n), (2, h, n) if need_p else (h, n),
                                 Field.BINARY))
    specs.append(dabit_spec((n,)))
    return specs


def _rows(x: A.AuthShare, sl: slice) -> A.AuthShare:
    return A.auth_share(x.data[:, :, sl], None if x.offset is None else x.offset[sl])


def _index(x: A.AuthShare, i: int) -> A.AuthShare:
    return A.auth_share(x.data[:, :, i], None if x.offset is None else x.offset[i])


def _concat(a: A.AuthShare, b: A.AuthShare) -> A.AuthShare:
    data = np.concatenate([a.data, b.data], axis=2)
    return A.auth_share(data, np.concatenate([a.offset_or_zero(), b.offset_or_zero()]))


def msb(sess: ActiveSession, z: A.AuthShare) -> A.AuthShare:
    """Authenticated binary share (bit 0 of a Z_2^64 element) of the sign bit of ``z``."""
    params = sess.params
    ring, k = params.ring, params.k
    n = z.size
    (r, rbits), _ = sess.material(edabit_spec((n,), k)).consume()
    entry = sess.entry_buffer(Field.ARITH, n)
    ring.add(z.data.reshape((2, ring.limbs, n)).swapaxes(0, 1), r.swapaxes(0, 1),
             out=entry.swapaxes(0, 1))
    opened = sess.open_queued(Field.ARITH, entry, tag="spdz2k.a2b")
    c = params.reduce(public_low(opened, None if z.offset is None else z.offset.reshape(-1)))
    cbits = (c[np.newaxis, :] >> np.arange(k, dtype=U64)[:, np.newaxis]) & U64(1)  # (k, n)
    # p_j = c_j + ~r_j = [r_j] + (1 + c_j);  g_j = c_j ~r_j = c_j ([r_j] + 1)  (mod 2).
    p = A.auth_share(rbits, cbits + U64(1))
    g = A.auth_share(rbits * cbits, cbits)
    # Carry-in 1 at bit 0: g_0 <- g_0 + p_0 (g and p are exclusive).
    g0 = A.add(_BIN, _rows(g, slice(0, 1)), _rows(p, slice(0, 1)))
    big_g = _concat(g0, _rows(g, slice(1, k - 1)))
    big_p = _rows(p, slice(0, k - 1))
    for h, need_p in _levels(k - 1):
        m = big_g.shape[0]
        g_lo, g_hi = _rows(big_g, slice(0, 2 * h, 2)), _rows(big_g, slice(1, 2 * h, 2))
        p_lo, p_hi = _rows(big_p, slice(0, 2 * h, 2)), _rows(big_p, slice(1, 2 * h, 2))
        if need_p:
            both = beaver(sess, Bilinear.MUL, p_hi, A.stack(_BIN, [g_lo, p_lo]), Field.BINARY)
            new_g = A.add(_BIN, g_hi, _index(both, 0))
            new_p = _index(both, 1)
        else:
            new_g = A.add(_BIN, g_hi, beaver(sess, Bilinear.MUL, p_hi, g_lo, Field.BINARY))
            new_p = new_g  # unused: the last level needs no group propagate
        if m % 2:
            new_g = _concat(new_g, _rows(big_g, slice(m - 1, m)))
            new_p = _concat(new_p, _rows(big_p, slice(m - 1, m))) if need_p else new_p
        big_g, big_p = new_g, new_p
    top = _rows(p, slice(k - 1, k))
    return A.reshape(_BIN, A.add(_BIN, top, big_g), z.shape)


def b2a(sess: ActiveSession, bit: A.AuthShare) -> A.AuthShare:
    """Arithmetic ``[b]`` (the integer 0/1) from an authenticated binary ``[b]``; one round."""
    ring = sess.params.ring
    n = bit.size
    (bb, ba), _ = sess.material(dabit_spec((n,))).consume()
    entry = sess.entry_buffer(Field.BINARY, n)
    np.add(bit.data.reshape((2, 1, n)), bb, out=entry)
    opened = sess.open_queued(Field.BINARY, entry, tag="spdz2k.b2a")
    m = public_low(opened, None if bit.offset is None else bit.offset.reshape(-1)) & U64(1)
    flip = m.astype(bool)
    dabit = A.auth_share(ba)
    # m + b - 2 m b: b where m = 0, 1 - b where m = 1.
    out = A.select(ring, flip, A.neg(ring, dabit), dabit)
    return A.reshape(ring, A.auth_share(out.data, m), bit.shape)


def ltz(sess: ActiveSession, z: A.AuthShare) -> A.AuthShare:
    """Arithmetic ``[z < 0]`` (integer 0/1) for ``|z| < 2^(k-1)``; 8 rounds for k = 64."""
    if z.size == 0:
        return A.auth_share(np.zeros((2, sess.params.ring.limbs, *z.shape), dtype=U64))
    return b2a(sess, msb(sess, z))

