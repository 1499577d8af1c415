"""SecureML's reusable mask for a data matrix: mask ``X`` once, multiply it many times.

Mohassel and Zhang, "SecureML", IEEE S&P 2017, section 4.2 ("vectorization") and 4.3:
in training, the same data matrix ``X`` (m x k) multiplies a fresh vector or matrix
``Y_i`` in every iteration (and its transpose multiplies the errors). A Beaver triple per
product would open ``X - A_i`` again each time; instead

* offline, the parties share one random mask ``U`` (m x k) and, per product, a fresh
  ``V_i`` and ``Z_i = U @ V_i`` (or ``U^T @ V_i`` for the transposed product);
* online, ``E = X - U`` is opened **once** (`open_mask`), and each product opens only
  ``F_i = Y_i - V_i`` (`masked_matmul`), with the shares of
  ``X @ Y_i = E @ F_i + E @ V_i + U @ F_i + Z_i`` (party 0 adds the public ``E @ F_i``).

Single use, twice over: a mask ``U`` may be opened against one ``X`` only (opening it
against ``X'`` would reveal ``X - X'``), and each ``(V_i, Z_i)`` serves one product. Both
are enforced (`PreprocessingReuseError`). The masks here come from the two-party Paillier
generation of `securecomp.mpc.offline.provider` (semi-honest, see its threat model).

Costs (online, per party and peer): ``m k`` words once, then ``|Y_i|`` words and one round
per product, plus the truncation of the product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import ring_matmul
from securecomp.errors import (
    ParameterError,
    PreprocessingReuseError,
    ShapeMismatchError,
    UnsupportedOperationError,
)
from securecomp.mpc import bounds
from securecomp.mpc.backend import SharesBackend, bound_of
from securecomp.mpc.session import Session
from securecomp.mpc.truncation import truncate
from securecomp.tensor import SecureTensor

__all__ = ["MaskTriple", "MaskedMatrix", "MatrixMask", "masked_matmul", "open_mask"]

_TAG_E = "mpc.reusable.open"
_TAG_F = "mpc.reusable.product"


@dataclass(eq=False)
class MatrixMask:
    """One party's share of a reusable mask ``U`` (m x k).

    Invariant: the parties' ``u`` add up to ``U`` modulo 2^64; `open_mask` may use it once.
    The responder also keeps the key holder's encrypted ``U0`` (packed columns and rows),
    which every later `MaskTriple` for this mask reuses.
    """

    ident: int
    u: npt.NDArray[np.uint64]
    enc_cols: list[Any] = field(default_factory=list, repr=False)
    enc_rows: list[Any] = field(default_factory=list, repr=False)
    opened: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """``(m, k)``: the shape of the data matrix this mask covers."""
        m, k = self.u.shape
        return int(m), int(k)

    def __repr__(self) -> str:
        state = "opened" if self.opened else "fresh"
        return f"MatrixMask(#{self.ident}, shape={self.shape}, {state})"


class MaskTriple:
    """One party's shares of ``(V, Z = U @ V)`` (or ``Z = U^T @ V``) for one product.

    Invariant: handed out once by `consume`; a second use raises `PreprocessingReuseError`.
    """

    __slots__ = ("_parts", "mask_ident", "out_shape", "transpose")

    def __init__(
        self,
        mask_ident: int,
        transpose: bool,
        v: npt.NDArray[np.uint64],
        z: npt.NDArray[np.uint64],
        out_shape: tuple[int, ...],
    ) -> None:
        self.mask_ident = mask_ident
        self.transpose = transpose
        self.out_shape = out_shape
        self._parts: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]] | None = (v, z)

    @property
    def v_shape(self) -> tuple[int, ...]:
        """Shape of ``V``, i.e. of the operand ``Y`` of the product.

        Raises
        ------
        PreprocessingReuseError
            If the triple was already consumed.
        """
        if self._parts is None:
            raise PreprocessingReuseError("this mask triple was already used")
        return tuple(self._parts[0].shape)

    def consume(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """This party's shares ``(V_i, Z_i)``, handed out once.

        Raises
        ------
        PreprocessingReuseError
            If the triple was already consumed (reusing ``V`` leaks operand differences).
        """
        parts = self._parts
        if parts is None:
            raise PreprocessingReuseError(
                f"the product triple of mask #{self.mask_ident} was already used; reusing "
                "V reveals the difference of two operands. Request a fresh one per product"
            )
        self._parts = None
        return parts

    def __repr__(self) -> str:
        state = "used" if self._parts is None else "fresh"
        t = "^T" if self.transpose else ""
        return f"MaskTriple(U{t} of mask #{self.mask_ident}, {state})"


@dataclass(frozen=True)
class MaskedMatrix:
    """A shared matrix ``X`` whose masked value ``E = X - U`` is public (after `open_mask`)."""

    x: SecureTensor
    e: npt.NDArray[np.uint64]
    mask: MatrixMask


def _shares(t: SecureTensor, what: str) -> SharesBackend:
    if not isinstance(t, SecureTensor) or not isinstance(t.backend, SharesBackend):
        raise UnsupportedOperationError(f"{what} must be a tensor of the shares backend")
    return t.backend


def open_mask(sess: Session, x: SecureTensor, mask: MatrixMask) -> MaskedMatrix:
    """Open ``E = X - U`` to every party, once per mask (one round, ``m k`` words).

    Raises
    ------
    PreprocessingReuseError
        If this mask was already opened (against any matrix).
    ShapeMismatchError
        If ``x`` is not of the mask's shape.
    """
    _shares(x, "x")
    if tuple(x.shape) != mask.shape:
        raise ShapeMismatchError(f"x has shape {x.shape}, the mask {mask.shape}")
    if mask.opened:
        raise PreprocessingReuseError(
            f"mask #{mask.ident} was already opened; opening it against another matrix "
            "reveals the difference of the two. Generate a fresh mask per data matrix"
        )
    mask.opened = True
    e = sess.open_sum(np.subtract(x.payload, mask.u), tag=_TAG_E)
    sess.ledger.record(sess.party_id, f"masked matrix X - U of shape {mask.shape}", "reusable")
    e.flags.writeable = False
    return MaskedMatrix(x, e, mask)


def masked_matmul(
    sess: Session, masked: MaskedMatrix, y: SecureTensor, triple: MaskTriple
) -> SecureTensor:
    """``X @ Y`` (or ``X^T @ Y`` for a transposed triple), opening only ``Y - V``.

    The product is truncated by ``frac_bits`` with the session's protocol and carries the
    bound ``inner * bound(X) * bound(Y)`` before truncation (checked as for ``a @ b``).

    Raises
    ------
    ParameterError
        If the triple was made for another mask.
    ShapeMismatchError
        If ``y`` does not have the shape the triple was made for.
    PreprocessingReuseError
        If the triple was already used.
    """
    backend = _shares(y, "y")
    if triple.mask_ident != masked.mask.ident:
        raise ParameterError(
            f"{triple!r} was made for mask #{triple.mask_ident}, not #{masked.mask.ident}"
        )
    if tuple(y.shape) != triple.v_shape:
        raise ShapeMismatchError(f"y has shape {y.shape}, the triple expects {triple.v_shape}")
    m, k = masked.mask.shape
    inner = m if triple.transpose else k
    f = sess.frac_bits
    r_pre = max(inner, 1) * bound_of(masked.x) * bound_of(y)
    what = "X^T @ Y" if triple.transpose else "X @ Y"
    bounds.check_truncatable(r_pre, what, f)
    v, z = triple.consume()
    fopen = sess.open_sum(np.subtract(y.payload, v), tag=_TAG_F)
    e = masked.e.T if triple.transpose else masked.e
    u = masked.mask.u.T if triple.transpose else masked.mask.u
    e2 = np.ascontiguousarray(e)
    u2 = np.ascontiguousarray(u)
    # Bilinearity: E @ F + E @ V_i + U_i @ F + Z_i; party 0 folds E @ F into E @ (V_0 + F).
    left = np.add(v, fopen) if sess.is_first else v
    res = np.asarray(ring_matmul(e2, left, 64), dtype=np.uint64)
    res = res + np.asarray(ring_matmul(u2, fopen, 64), dtype=np.uint64)
    res += z.reshape(res.shape)
    out = truncate(sess, res.reshape(triple.out_shape), f)
    return backend.wrap(out, bounds.truncated(r_pre, f))
