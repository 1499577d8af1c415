"""Authenticated Beaver products and truncation (the interactive steps of SPDZ2k).

Beaver multiplication with MACs (Cramer et al., CRYPTO 2018, section 3; Beaver, CRYPTO
1991; the matrix form as in SecureML, S&P 2017, section 4.2)
-----------------------------------------------------------------------------------
For a bilinear ``f`` and an authenticated dealer triple ``([a], [b], [c = f(a, b)])``:

1. open ``d = x - a`` and ``e = y - b`` in Z_2^(k+s) (one round; both in one message per
   limb); they are uniform because ``a`` and ``b`` are; both are queued for the check;
2. with ``d' = d mod 2^64`` and ``e' = e mod 2^64`` (the MAC-protected low bits; every
   parameter set has ``k <= 64``), each party computes
   ``[z] = [c] + f(d', [b]) + f([a], e')`` on value *and* MAC shares, and the public term
   ``f(d', e') mod 2^64`` goes into the offset. Public factors keep MACs consistent
   whatever they are, and ``z = f(x, y) mod 2^k`` because ``a + d' = x`` modulo 2^k: no
   MAC key multiplication in the online phase, and the 128-bit arithmetic sees 64-bit
   factors only (`securecomp.mpc.spdz2k.limbs.lincomb`).

Truncation (probabilistic, with an authenticated dealer pair)
------------------------------------------------------------
The shares of a product sum to ``z + 2^k g`` with garbage ``g`` in the upper ``s`` bits:
shifting the shares (SecureML-style local truncation) would move ``g`` into the value, and
opening ``2^s z`` would put the value where the MAC check is weakest (an error in the top
bit of Z_2^(k+s) passes with probability 1/2). So the shares are never shifted. As in the
edaBits truncation of Escudero, Ghosh, Keller, Rachuri and Scholl (CRYPTO 2020, section 5),
with the dealer in place of the edaBit generation:

1. open ``c = z + 2^(k-2) + r`` for a uniform authenticated ``r`` and keep only
   ``c_k = c mod 2^k`` (MAC-protected; the upper bits are uniform and unused);
2. with dealer shares of ``t = -(r_k >> f)`` and ``w = msb(r_k) 2^(k-f)`` (the correction
   for ``z + r`` wrapping past 2^k, which happens exactly when ``msb(r_k) = 1`` and
   ``msb(c_k) = 0``), output ``[t] + (1 - msb(c_k)) [w]`` (a public bit times a share: a
   mask on every word, no multiplication) plus the public offset
   ``(c_k >> f) - 2^(k-2-f)``.

The result is ``floor(z / 2^f) + beta`` with ``P(beta = 1) = (z mod 2^f) / 2^f``: at most one
ulp of error and unbiased, for ``|z| < 2^(k-2)`` (guaranteed by the bound tracker). One
round; the opening is checked like any other.

Fixed-point products (`mul_truncate`) fuse the two: the dealer's triple carries ``c + r``
instead of ``c``, so the Beaver step directly yields the shares of ``z + r`` that the
truncation opens (and their MAC shares, queued as they are): two rounds, three openings
per element (``d``, ``e``, ``z + r``), and no ``[z]`` is ever formed.

Online cost per element of a fixed-point product, ``k = s = 64``: 48 bytes to each peer
(16 each for ``d``, ``e`` and ``z + r``), two rounds, plus a share of the next MAC check
(four rounds for any number of openings).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from securecomp.errors import UnsupportedOperationError
from securecomp.mpc.material import Bilinear
from securecomp.mpc.spdz2k import authshare as A
from securecomp.mpc.spdz2k.material import AuthKind, AuthSpec, Field, check_material
from securecomp.mpc.spdz2k.ring import BINARY_PARAMETERS, Ring, Spdz2kParameters
from securecomp.mpc.spdz2k.session import ActiveSession

__all__ = [
    "beaver",
    "mul_truncate",
    "multrunc_spec",
    "public_low",
    "triple_spec",
    "trunc_spec",
    "truncate",
]

U64 = np.uint64


def triple_spec(
    op: Bilinear, shape_x: tuple[int, ...], shape_y: tuple[int, ...], field: Field = Field.ARITH
) -> AuthSpec:
    """The authenticated triple `beaver` consumes."""
    return AuthSpec(AuthKind.TRIPLE, (tuple(shape_x), tuple(shape_y)), int(op), field)


def trunc_spec(shape: tuple[int, ...], bits: int) -> AuthSpec:
    """The authenticated truncation pair `truncate` consumes."""
    return AuthSpec(AuthKind.TRUNC, (tuple(shape),), bits)


def _domain(sess: ActiveSession, field: Field) -> tuple[Ring, Spdz2kParameters]:
    params = sess.params if field is Field.ARITH else BINARY_PARAMETERS
    return params.ring, params


def public_low(
    opened: npt.NDArray[np.uint64],
    offset: npt.NDArray[np.uint64] | None,
    out: npt.NDArray[np.uint64] | None = None,
) -> npt.NDArray[np.uint64]:
    """The low 64 bits of opened sums plus the operand's public offset (into ``out``).

    Never in place: the opened sums stay untouched in the check queue.
    """
    low = opened[0]
    if offset is None:
        if out is None:
            return low.copy()
        np.copyto(out, low)
        return out
    return np.add(low, offset.reshape(-1), out=out)


def _open_differences(
    sess: ActiveSession,
    x: A.AuthShare,
    y: A.AuthShare,
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    field: Field,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Step 1: open ``x - a`` and ``y - b`` (queued); their low 64 bits plus offsets."""
    ring, _ = _domain(sess, field)
    nx, ny = x.size, y.size
    n_limbs = ring.limbs
    entry = sess.entry_buffer(field, nx + ny)
    sw = entry.swapaxes(0, 1)
    xa = x.data.reshape((2, n_limbs, nx)).swapaxes(0, 1)
    ya = y.data.reshape((2, n_limbs, ny)).swapaxes(0, 1)
    ring.sub(xa, a.reshape((2, n_limbs, nx)).swapaxes(0, 1), out=sw[:, :, :nx])
    ring.sub(ya, b.reshape((2, n_limbs, ny)).swapaxes(0, 1), out=sw[:, :, nx:])
    opened = sess.open_queued(field, entry, tag=f"spdz2k.beaver.{field.name.lower()}")
    d = public_low(opened[:, :nx], x.offset, sess.scratch("beaver.d", (nx,))).reshape(x.shape)
    e = public_low(opened[:, nx:], y.offset, sess.scratch("beaver.e", (ny,))).reshape(y.shape)
    return d, e


def beaver(
    sess: ActiveSession,
    op: Bilinear,
    x: A.AuthShare,
    y: A.AuthShare,
    field: Field = Field.ARITH,
) -> A.AuthShare:
    """``[f(x, y)]`` (no rescaling) from an authenticated triple; one round.

    Elementwise products broadcast like numpy; matrix products take 1-d or 2-d operands.
    """
    ring, _ = _domain(sess, field)
    spec = triple_spec(op, x.shape, y.shape, field)
    (a, b, c), _ = check_material(sess.material(spec), spec).consume()
    d, e = _open_differences(sess, x, y, a, b, field)
    if op is Bilinear.MUL:
        out_shape = tuple(np.broadcast_shapes(x.shape, y.shape))
        nd = len(out_shape)
        a_s = A.aligned(A.AuthShare(a, None), nd)
        b_s = A.aligned(A.AuthShare(b, None), nd)
        c_s = c.swapaxes(0, 1)
        # c is ours alone after consume(): accumulate in place (no allocation).
        ring.lincomb([d, e], [b_s, a_s], c_s, out=c_s)
        return A.auth_share(c, np.multiply(d, e))
    if x.data.ndim > 4 or y.data.ndim > 4:
        raise UnsupportedOperationError(
            "MAC-mode matrix products take 1-d or 2-d operands; loop over the batch axis"
        )
    from securecomp.encoding import ring_matmul

    parts = []
    for i in range(2):  # value shares, then MAC shares
        acc = ring.matmul_public_left(d, b[i])
        acc = ring.add(acc, ring.matmul_public_right(a[i], e), out=acc)
        parts.append(ring.add(acc, c[i], out=acc))
    return A.auth_share(np.stack(parts), ring_matmul(d, e, 64))


def truncate(sess: ActiveSession, z: A.AuthShare, bits: int) -> A.AuthShare:
    """``[floor(z / 2^bits) + beta]`` (unbiased, at most 1 ulp); one round.

    Precondition: ``|z| < 2^(k-2)`` (the caller's bound tracker guarantees it).
    """
    ring = sess.params.ring
    spec = trunc_spec(z.shape, bits)
    (r, t, w), _ = check_material(sess.material(spec), spec).consume()
    n = z.size
    entry = sess.entry_buffer(Field.ARITH, n)
    ring.add(
        z.data.reshape((2, ring.limbs, n)).swapaxes(0, 1),
        r.reshape((2, ring.limbs, n)).swapaxes(0, 1),
        out=entry.swapaxes(0, 1),
    )
    return _finish_truncation(sess, entry, z.offset, t, w, bits, z.shape)


def _finish_truncation(
    sess: ActiveSession,
    entry: npt.NDArray[np.uint64],
    offset: npt.NDArray[np.uint64] | None,
    t: npt.NDArray[np.uint64],
    w: npt.NDArray[np.uint64],
    bits: int,
    shape: tuple[int, ...],
) -> A.AuthShare:
    """Steps 1-2 of the truncation, from the shares of ``z + r`` in ``entry``."""
    params = sess.params
    ring, k = params.ring, params.k
    n = entry.shape[-1]
    opened = sess.open_queued(Field.ARITH, entry, tag="spdz2k.trunc")
    c = public_low(opened, offset, sess.scratch("trunc.c", (n,)))
    c += U64(1 << (k - 2))
    c = params.reduce(c)
    # (1 - msb(c)) as a word mask, all ones or all zeros: (c >> (k-1)) - 1.
    keep = sess.scratch("trunc.keep", (n,))
    np.right_shift(c, U64(k - 1), out=keep)
    keep -= U64(1)
    # t and w are ours alone after consume(): mask w and accumulate into t in place.
    np.bitwise_and(w.reshape((2, ring.limbs, n)), keep, out=w.reshape((2, ring.limbs, n)))
    ring.add(t.swapaxes(0, 1), w.swapaxes(0, 1), out=t.swapaxes(0, 1))
    out = np.right_shift(c, U64(bits))
    out -= U64(1 << (k - 2 - bits))
    return A.auth_share(t.reshape((2, ring.limbs, *shape)), params.reduce(out).reshape(shape))


def multrunc_spec(shape_x: tuple[int, ...], shape_y: tuple[int, ...], bits: int) -> AuthSpec:
    """The material `mul_truncate` consumes."""
    return AuthSpec(AuthKind.MULTRUNC, (tuple(shape_x), tuple(shape_y)), bits)


def mul_truncate(
    sess: ActiveSession, x: A.AuthShare, y: A.AuthShare, bits: int
) -> A.AuthShare:
    """``[floor(x y / 2^bits) + beta]``: the fixed-point product in two rounds.

    The Beaver step and the truncation fused: the dealer's triple carries ``c + r`` in
    place of ``c`` (``r`` the truncation mask), so step 2 of the Beaver protocol yields
    shares of ``z + r`` directly, and these very buffers (value and MAC shares) are
    opened and queued for the check: no ``[z]`` is ever formed. Precondition:
    ``|x y| < 2^(k-2)``.
    """
    ring = sess.params.ring
    spec = multrunc_spec(x.shape, y.shape, bits)
    (a, b, cr, t, w), _ = check_material(sess.material(spec), spec).consume()
    d, e = _open_differences(sess, x, y, a, b, Field.ARITH)
    nd = cr.ndim - 2
    cs = cr.swapaxes(0, 1)
    ring.lincomb([d, e], [A.aligned(A.AuthShare(b, None), nd),
                          A.aligned(A.AuthShare(a, None), nd)], cs, out=cs)
    n = cr[0, 0].size
    entry = cr.reshape((2, ring.limbs, n))
    return _finish_truncation(sess, entry, np.multiply(d, e), t, w, bits, cr.shape[2:])
