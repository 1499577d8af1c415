"""Beaver multiplication for every bilinear operation, arithmetic and boolean.

Protocol (Beaver, CRYPTO 1991; the matrix form as in SecureML, Mohassel and Zhang,
S&P 2017, section 4.2): for a bilinear map ``f`` (elementwise product, matrix product,
bitwise AND, ...) and a dealer triple ``(a, b, c = f(a, b))`` shared among the parties,

1. each party masks its operands, ``d_i = x_i - a_i`` and ``e_i = y_i - b_i``, and sends
   both in **one** message to every peer (one round: ``|x| + |y|`` words per peer);
2. everyone opens ``d = x - a`` and ``e = y - b``; these are uniformly random and reveal
   nothing about ``x`` and ``y`` (``a`` and ``b`` are uniform and used once);
3. each party computes its share of ``f(x, y) = c + f(d, b) + f(a, e) + f(d, e)``; the
   public term ``f(d, e)`` is added by party 0 only. Bilinearity lets party 0 fold it:
   ``f(d, b_0 + e)``, so every party evaluates ``f`` twice.

Over XOR shares the same identity holds with ``^`` for ``+`` and ``&`` for ``f``
(`beaver_and`), which the binary circuits of `securecomp.mpc.comparison` use.

Threat model: semi-honest parties, a non-colluding dealer; each party learns ``d`` and
``e`` (uniform) and nothing else. Reusing a triple would reveal ``x - x'``; material is
single use (`PreprocessingReuseError`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import ShapeMismatchError
from securecomp.mpc.material import Bilinear, Kind, Material, Spec
from securecomp.mpc.session import Session

__all__ = ["and_spec", "beaver", "beaver_and", "triple_spec"]

_TAG = "mpc.beaver"
_TAG_AND = "mpc.and"


def triple_spec(op: Bilinear, shape_x: tuple[int, ...], shape_y: tuple[int, ...]) -> Spec:
    """The material `beaver` needs for ``op`` on operands of these shapes."""
    return Spec(Kind.TRIPLE, (tuple(shape_x), tuple(shape_y)), int(op))


def and_spec(shape_x: tuple[int, ...], shape_y: tuple[int, ...], word_bits: int) -> Spec:
    """The material `beaver_and` needs (words of ``word_bits`` bits)."""
    return Spec(Kind.AND_TRIPLE, (tuple(shape_x), tuple(shape_y)), word_bits)


def _check_material(material: Material, spec: Spec) -> None:
    if material.spec != spec:
        raise ShapeMismatchError(
            f"material {material!r} was made for {material.spec}, not for {spec}"
        )


def beaver(
    sess: Session,
    op: Bilinear,
    x: npt.NDArray[np.uint64],
    y: npt.NDArray[np.uint64],
    *,
    material: Material | None = None,
    out: npt.NDArray[np.uint64] | None = None,
) -> npt.NDArray[np.uint64]:
    """This party's share of ``op(x, y)`` over Z_2^64 (no rescaling), in one round.

    Parameters
    ----------
    sess : Session
    op : Bilinear
    x, y : ndarray of uint64
        This party's shares of the operands.
    material : Material, optional
        A triple for exactly this op and these shapes (fetched from the dealer if None).
    out : ndarray of uint64, optional
        Where to write the result (must have the result shape).

    Returns
    -------
    ndarray of uint64
        The share of ``op(x, y) mod 2^64``; without ``out`` it may be a view into the
        received message buffer (owned by the caller from then on).
    """
    spec = triple_spec(op, x.shape, y.shape)
    if material is None:
        material = sess.material(spec)
    _check_material(material, spec)
    a, b, c = material.consume()
    nx, ny = x.size, y.size
    # Both masked operands in one buffer: one message per peer, one round.
    send = sess.buffer("beaver.send", (nx + ny,))
    np.subtract(x.reshape(-1), a.reshape(-1), out=send[:nx])
    np.subtract(y.reshape(-1), b.reshape(-1), out=send[nx:])
    opened = sess.open_sum(send, tag=_TAG)
    d = opened[:nx].reshape(x.shape)
    e = opened[nx:].reshape(y.shape)
    if sess.is_first:
        np.add(b, e, out=b)  # b is ours alone after consume(): fold f(d, e) into f(d, b)
    if op is Bilinear.MUL:
        shape = np.broadcast_shapes(x.shape, y.shape)
        if out is None and d.shape == shape:
            out = d  # the received buffer is ours: no fresh allocation (page faults)
        res = np.multiply(d, b, out=out)
        # e is no longer needed once f(a, e) is formed: reuse its memory when it fits.
        tmp = np.multiply(a, e, out=e) if e.shape == shape else np.multiply(a, e)
        np.add(res, tmp, out=res)
    else:
        res = op.apply(d, b)
        res += op.apply(a, e)
        if out is not None:
            out[...] = res
            res = out
    np.add(res, c, out=res)
    return res


def beaver_and(
    sess: Session,
    x: npt.NDArray[Any],
    y: npt.NDArray[Any],
    *,
    material: Material | None = None,
) -> npt.NDArray[Any]:
    """This party's XOR share of ``x & y`` (numpy broadcasting), in one round.

    ``x`` and ``y`` are XOR shares held in unsigned words of one width (8 to 64 bits);
    a broadcast lets one operand serve several products with one opening, e.g.
    ``p & [g, p']`` with ``x`` of shape ``(n,)`` and ``y`` of shape ``(2, n)``.
    """
    if x.dtype != y.dtype or x.dtype.kind != "u":
        raise ShapeMismatchError(
            f"AND operands must share an unsigned dtype, got {x.dtype}, {y.dtype}"
        )
    spec = and_spec(x.shape, y.shape, x.dtype.itemsize * 8)
    if material is None:
        material = sess.material(spec)
    _check_material(material, spec)
    a, b, c = material.consume()
    nx = x.size
    send = np.empty(nx + y.size, dtype=x.dtype)
    np.bitwise_xor(x.reshape(-1), a.reshape(-1), out=send[:nx])
    np.bitwise_xor(y.reshape(-1), b.reshape(-1), out=send[nx:])
    opened = sess.open_xor(send, tag=_TAG_AND)
    d = opened[:nx].reshape(x.shape)
    e = opened[nx:].reshape(y.shape)
    if sess.is_first:
        np.bitwise_xor(b, e, out=b)
    res = np.bitwise_and(d, b)
    res ^= np.bitwise_and(a, e)
    res ^= c
    return res
