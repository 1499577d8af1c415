"""Truncation of shared fixed-point values: dealer-assisted (default) and SecureML local.

A product of two encodings carries ``2f`` fractional bits; dividing it by ``2^f`` on
shares is the truncation protocol. Both protocols below need ``|z| < 2^62`` for the signed
value ``z`` being truncated; the bound tracker (`securecomp.mpc.bounds`) guarantees it
before either runs.

Dealer-assisted truncation (default; any number of parties; one round)
----------------------------------------------------------------------
In the spirit of the probabilistic truncation of Catrina and Saxena (FC 2010) and its
ring variants with a mask bit (Escudero et al., CRYPTO 2020, section 5), made exact in
its carries by the mask's top bit. The dealer supplies shares of a uniform ``r`` in
Z_2^64, of ``-(r >> k)`` and of ``msb(r) * 2^(64-k)``.

1. Party 0 offsets its share by ``2^62`` so that ``z' = z + 2^62`` lies in ``[0, 2^63)``.
2. Everyone opens ``c = z' + r mod 2^64`` (uniform: reveals nothing).
3. Since ``z' < 2^63``, the sum ``z' + r`` wraps past 2^64 exactly when
   ``msb(r) = 1`` and ``msb(c) = 0``; that wrap is linear in the shared ``msb(r)``, so
   ``floor(z' / 2^k) = (c >> k) - (r >> k) + (1 - msb(c)) msb(r) 2^(64-k) - beta`` with
   ``beta = [c mod 2^k < r mod 2^k]``.
4. Each party outputs its share of everything but ``beta``; party 0 adds the public
   ``(c >> k) - 2^(62-k)``.

Result: ``floor(z / 2^k) + beta``, where ``beta`` is 1 with probability exactly
``(z mod 2^k) / 2^k`` (``r mod 2^k`` is uniform). So the error is at most one ulp, never
more, for every input with ``|z| < 2^62``, and the rounding is *unbiased*: its expectation
is ``z / 2^k`` exactly (stochastic rounding). Online cost: one round, one ring element per
element to each peer.

SecureML local truncation (two parties only; no communication)
---------------------------------------------------------------
Mohassel and Zhang, S&P 2017, section 4.1 (Theorem 1): party 0 outputs ``z_0 >> k``,
party 1 outputs ``-((-z_1) >> k)`` (logical shifts of the unsigned shares). The result is
``floor(z / 2^k)`` or one more, *unless* the shares straddle the wrap point in the wrong
way, which happens with probability about ``|z| / 2^63`` per element (about ``2^-22`` at
``|z| = 2^41``); the output is then off by about ``2^(64-k)``, a large error. The
probability is taken over the random shares; nothing is revealed either way. It does not
generalize to three or more parties. Use it when one round per multiplication matters
more than a small chance of a wrong entry (SecureML accepts it for training).

Threat model: semi-honest parties; the dealer (for the default protocol) does not collude
with any party. Parties learn ``c``, which is uniform.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from securecomp.errors import ParameterError, ShapeMismatchError
from securecomp.mpc.material import Kind, Material, Spec
from securecomp.mpc.session import Session, Truncation

__all__ = ["trunc_spec", "truncate", "truncate_dealer", "truncate_local"]

_TAG = "mpc.trunc"
_OFFSET = np.uint64(1 << 62)


def trunc_spec(shape: tuple[int, ...], bits: int) -> Spec:
    """The material `truncate_dealer` needs."""
    return Spec(Kind.TRUNC, (tuple(shape),), bits)


def truncate_dealer(
    sess: Session, z: npt.NDArray[np.uint64], bits: int, *, material: Material | None = None
) -> npt.NDArray[np.uint64]:
    """Shares of ``floor(z / 2^bits) + beta`` (unbiased, at most 1 ulp of error); one round.

    Precondition: ``|z| < 2^62`` (guaranteed by the caller's bound tracker).
    """
    spec = trunc_spec(z.shape, bits)
    if material is None:
        material = sess.material(spec)
    if material.spec != spec:
        raise ShapeMismatchError(f"material {material!r} was made for {material.spec}, not {spec}")
    r, neg_rt, msb_part = material.consume()
    masked = sess.buffer("trunc.send", z.shape)
    np.add(z, r, out=masked)
    if sess.is_first:
        masked += _OFFSET
    c = sess.open_sum(masked, tag=_TAG)
    # (1 - msb(c)) as an all-ones / all-zeros mask: (c >> 63) - 1.
    r = np.right_shift(c, np.uint64(63), out=r)  # r is spent: reuse its memory
    r -= np.uint64(1)
    np.bitwise_and(msb_part, r, out=msb_part)
    res = neg_rt
    res += msb_part
    if sess.is_first:
        c >>= np.uint64(bits)
        c -= np.uint64(1 << (62 - bits))
        res += c
    return res


def truncate_local(sess: Session, z: npt.NDArray[np.uint64], bits: int) -> npt.NDArray[np.uint64]:
    """SecureML local truncation (two parties); fails with probability about |z| / 2^63."""
    if sess.n_parties != 2:
        raise ParameterError("SecureML local truncation works for exactly 2 parties")
    shift = np.uint64(bits)
    if sess.is_first:
        return np.asarray(np.right_shift(z, shift))
    # np.asarray: numpy returns scalars for 0-d operands, and results must be arrays.
    return np.asarray(np.negative(np.right_shift(np.negative(z), shift)))


def truncate(
    sess: Session, z: npt.NDArray[np.uint64], bits: int | None = None
) -> npt.NDArray[np.uint64]:
    """Truncate by ``bits`` (default ``frac_bits``) with the session's protocol."""
    k = sess.frac_bits if bits is None else int(bits)
    if not 0 < k < 62:
        raise ParameterError(f"truncation by {k} bits must lie in [1, 61]")
    if sess.truncation is Truncation.LOCAL:
        return truncate_local(sess, z, k)
    return truncate_dealer(sess, z, k)
