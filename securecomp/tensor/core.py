"""`SecureTensor`: one array type over ciphertexts and secret shares.

A `SecureTensor` wraps a backend payload (CKKS ciphertexts, Paillier ciphertexts, a party's
additive share, or for the oracle a plain array) with its logical shape and layout. It is
deliberately *not* an ``ndarray``: numpy's ``__array_ufunc__``/``__array_function__``
protocols route the arithmetic numpy users write (``x + 1``, ``np.sum(x)``, ``W @ x``) to the
backend's operation table and return ``NotImplemented`` for everything else.

Invariants
----------
* Value semantics: no operation mutates an operand.
* Nothing reveals by accident: ``bool``, ``float``, ``int``, ``np.asarray`` raise
  `RevealError`; ``repr`` shows shape, backend and fingerprint, never data. Plaintext leaves
  only through ``decrypt(key)`` or ``reveal(to=...)``.
* Every binary operation checks that both operands carry the same fingerprint
  (parameters and key): mixing keys raises `KeyMismatchError`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    RevealError,
    ShapeMismatchError,
)
from securecomp.tensor.backend import Backend
from securecomp.tensor.ops import Op

__all__ = ["SecureTensor", "as_plaintext", "is_secure"]

_REVEAL_HINT = "plaintext leaves a SecureTensor only through decrypt(key) or reveal(to=...)"


def is_secure(obj: object) -> bool:
    """True for a `SecureTensor`."""
    return isinstance(obj, SecureTensor)


def as_plaintext(value: ArrayLike) -> NDArray[Any]:
    """Validate a plaintext operand: numeric, finite, no object dtype.

    NaN or inf in an operand would propagate silently through every scheme, so they are
    refused here, once, for all backends.
    """
    if isinstance(value, SecureTensor):
        raise TypeError("internal: as_plaintext called on a SecureTensor")
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"plaintext operand has dtype {arr.dtype}; pass a numeric array or scalar")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError("complex plaintext operands are not supported")
    if np.issubdtype(arr.dtype, np.floating) and arr.size and not np.isfinite(arr).all():
        raise EncodingOverflowError(
            "plaintext operand contains NaN or inf; clean the input before combining it "
            "with an encrypted or shared tensor"
        )
    return arr


class SecureTensor:
    """An encrypted or secret-shared array. Create it with a backend's ``encrypt``/``share``.

    Attributes
    ----------
    shape : logical shape of the protected array.
    backend : the `Backend` that holds parameters, keys and the operation table.
    layout : backend-specific packing (e.g. ``"column"``, ``"packed"``, ``"unpacked"``).
    meta : backend bookkeeping (level, bounds, scale); never secret material.
    """

    __slots__ = ("_backend", "_layout", "_meta", "_payload", "_shape")
    # Arithmetic with ndarrays must come to us, not to ndarray.__add__ (which would try to
    # convert us to an array and hit __array__).
    __array_priority__ = 1000

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError(
            "SecureTensor is created by a backend (encrypt, share, from_bytes), "
            "not by its constructor"
        )

    @classmethod
    def _wrap(
        cls,
        backend: Backend,
        payload: Any,
        shape: tuple[int, ...],
        *,
        layout: str = "default",
        meta: dict[str, Any] | None = None,
    ) -> SecureTensor:
        self = object.__new__(cls)
        self._backend = backend
        self._payload = payload
        self._shape = tuple(int(s) for s in shape)
        self._layout = layout
        self._meta = dict(meta) if meta else {}
        return self

    # --- read-only properties ---------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def payload(self) -> Any:
        """The backend payload (ciphertexts or shares); for backend code, not for users."""
        return self._payload

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def layout(self) -> str:
        return self._layout

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    @property
    def fingerprint(self) -> bytes:
        return self._backend.fingerprint

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d SecureTensor")
        return self._shape[0]

    def __repr__(self) -> str:
        return (
            f"SecureTensor(shape={self._shape}, backend={self._backend.describe()!r}, "
            f"layout={self._layout!r})"
        )

    # --- no accidental reveal ---------------------------------------------------------------

    def _refuse(self, what: str) -> NoReturn:
        raise RevealError(f"{what} of a SecureTensor would reveal it; {_REVEAL_HINT}")

    def __bool__(self) -> bool:
        self._refuse("bool()")

    def __float__(self) -> float:
        self._refuse("float()")

    def __int__(self) -> int:
        self._refuse("int()")

    def __index__(self) -> int:
        self._refuse("use as an index")

    def __complex__(self) -> complex:
        self._refuse("complex()")

    def __array__(self, dtype: Any = None, copy: Any = None) -> NoReturn:
        self._refuse("np.asarray()")

    def __reduce__(self) -> NoReturn:
        # No pickle for anything that may cross a trust boundary: use to_bytes().
        raise TypeError("SecureTensor cannot be pickled; use to_bytes() and from_bytes()")

    __hash__ = None  # type: ignore[assignment]

    # --- dispatch -----------------------------------------------------------------------------

    def _check_same_key(self, other: SecureTensor) -> None:
        if self._backend.fingerprint != other._backend.fingerprint:
            raise KeyMismatchError(
                f"operands were produced under different keys or parameters "
                f"({self._backend.describe()} vs {other._backend.describe()}); "
                "re-encrypt or re-share both under the same context"
            )

    def _call(self, op: Op, *args: Any, **kwargs: Any) -> SecureTensor:
        impl = self._backend.implementation(op, self._layout)
        return impl(self, *args, **kwargs)

    def _binary(self, other: Any, secure: Op, plain: Op) -> SecureTensor:
        if isinstance(other, SecureTensor):
            self._check_same_key(other)
            return self._call(secure, other)
        return self._call(plain, as_plaintext(other))

    def _binary_reflected(self, other: Any, plain: Op) -> SecureTensor:
        # Only reached when the left operand is not a SecureTensor.
        return self._call(plain, as_plaintext(other))

    def __add__(self, other: Any) -> SecureTensor:
        return self._binary(other, Op.ADD, Op.ADD_PLAIN)

    def __radd__(self, other: Any) -> SecureTensor:
        return self._binary_reflected(other, Op.ADD_PLAIN)

    def __sub__(self, other: Any) -> SecureTensor:
        return self._binary(other, Op.SUB, Op.SUB_PLAIN)

    def __rsub__(self, other: Any) -> SecureTensor:
        return self._binary_reflected(other, Op.RSUB_PLAIN)

    def __mul__(self, other: Any) -> SecureTensor:
        return self._binary(other, Op.MUL, Op.MUL_PLAIN)

    def __rmul__(self, other: Any) -> SecureTensor:
        return self._binary_reflected(other, Op.MUL_PLAIN)

    def __matmul__(self, other: Any) -> SecureTensor:
        return self._binary(other, Op.MATMUL, Op.MATMUL_PLAIN)

    def __rmatmul__(self, other: Any) -> SecureTensor:
        return self._binary_reflected(other, Op.RMATMUL_PLAIN)

    def __neg__(self) -> SecureTensor:
        return self._call(Op.NEG)

    def __pos__(self) -> SecureTensor:
        return self

    def __lt__(self, other: Any) -> SecureTensor:
        return self._binary(other, Op.LT, Op.LT_PLAIN)

    def __gt__(self, other: Any) -> SecureTensor:
        if isinstance(other, SecureTensor):
            self._check_same_key(other)
            return other._call(Op.LT, self)
        return self._call(Op.GT_PLAIN, as_plaintext(other))

    def __le__(self, other: Any) -> SecureTensor:
        return 1 - (self > other)

    def __ge__(self, other: Any) -> SecureTensor:
        return 1 - (self < other)

    def dot(self, other: Any) -> SecureTensor:
        """Inner product (1-d) or matrix product, as ``np.dot``."""
        return self._binary(other, Op.DOT, Op.DOT_PLAIN)

    def sum(self, axis: int | None = None) -> SecureTensor:
        """Sum over `axis` (all elements when None)."""
        if axis is not None:
            axis = _normalize_axis(axis, self.ndim)
        return self._call(Op.SUM, axis=axis)

    def polyval(self, coefficients: Sequence[float]) -> SecureTensor:
        """Evaluate ``sum(c[i] * x**i)`` elementwise (coefficients in increasing degree)."""
        coeffs = as_plaintext(np.asarray(coefficients, dtype=np.float64)).ravel()
        if coeffs.size == 0:
            raise ValueError("polyval needs at least one coefficient")
        return self._call(Op.POLYVAL, coeffs)

    def __getitem__(self, key: Any) -> SecureTensor:
        if isinstance(key, SecureTensor):
            raise RevealError(f"indexing by a SecureTensor would reveal it; {_REVEAL_HINT}")
        # Validate against a plaintext probe of the same shape so errors are numpy's own.
        try:
            shape = np.empty(self._shape, dtype=np.bool_)[key].shape
        except IndexError as exc:
            raise ShapeMismatchError(
                f"index {key!r} invalid for shape {self._shape}: {exc}"
            ) from exc
        return self._call(Op.GETITEM, key, result_shape=shape)

    def __iter__(self) -> Iterator[SecureTensor]:
        if not self._shape:
            raise TypeError("iteration over a 0-d SecureTensor")
        for i in range(self._shape[0]):
            yield self[i]

    def reshape(self, *shape: int | Sequence[int]) -> SecureTensor:
        """Return the same values with a new shape (one dimension may be -1)."""
        target: Any = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        try:
            new_shape = np.empty(self._shape, dtype=np.bool_).reshape(target).shape
        except ValueError as exc:
            raise ShapeMismatchError(f"cannot reshape {self._shape} to {target}: {exc}") from exc
        return self._call(Op.RESHAPE, new_shape)

    def transpose(self) -> SecureTensor:
        return self._call(Op.TRANSPOSE)

    @property
    def T(self) -> SecureTensor:
        return self.transpose()

    # --- explicit verbs -----------------------------------------------------------------------

    def decrypt(self, key: Any) -> NDArray[np.float64]:
        """Decrypt with the secret `key` (HE backends); the value stays with the key holder."""
        return self._backend.decrypt(self, key)

    def reveal(self, to: Any = None) -> NDArray[Any] | None:
        """Open the value to the parties in `to` (MPC backends); None for the others."""
        return self._backend.reveal(self, to)

    def to_bytes(self) -> bytes:
        """Serialize in the versioned wire format."""
        return self._backend.to_bytes(self)

    # --- numpy protocols ----------------------------------------------------------------------

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__" or kwargs:
            return NotImplemented
        handler = _UFUNCS.get(ufunc)
        if handler is None:
            return NotImplemented
        return handler(*inputs)

    def __array_function__(
        self, func: Callable[..., Any], types: Any, args: Any, kwargs: Any
    ) -> Any:
        handler = _FUNCTIONS.get(func)
        if handler is None:
            return NotImplemented
        return handler(*args, **kwargs)


def _normalize_axis(axis: int, ndim: int) -> int:
    if not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise ShapeMismatchError(f"axis {axis!r} out of range for {ndim}-d tensor")
    return int(axis) % ndim


def _sum(a: Any, axis: int | None = None, **kwargs: Any) -> Any:
    if kwargs or not isinstance(a, SecureTensor):
        return NotImplemented
    return a.sum(axis=axis)


def _reshape(a: Any, *args: Any, **kwargs: Any) -> Any:
    shape = kwargs.pop("shape", kwargs.pop("newshape", None))
    if shape is None and args:
        shape, args = args[0], args[1:]
    if args or kwargs or not isinstance(a, SecureTensor):
        return NotImplemented
    return a.reshape(shape)


def _transpose(a: Any, axes: Any = None) -> Any:
    if axes is not None or not isinstance(a, SecureTensor):
        return NotImplemented
    return a.transpose()


def _dot(a: Any, b: Any, out: Any = None) -> Any:
    if out is not None:
        return NotImplemented
    if isinstance(a, SecureTensor):
        return a.dot(b)
    # plaintext . secure: for 1-d and 2-d operands np.dot is matmul.
    return b.__rmatmul__(a)


def _shape(a: Any) -> Any:
    return a.shape


def _ndim(a: Any) -> Any:
    return a.ndim


_UFUNCS: dict[np.ufunc, Callable[..., Any]] = {
    np.add: lambda a, b: a + b if isinstance(a, SecureTensor) else b.__radd__(a),
    np.subtract: lambda a, b: a - b if isinstance(a, SecureTensor) else b.__rsub__(a),
    np.multiply: lambda a, b: a * b if isinstance(a, SecureTensor) else b.__rmul__(a),
    np.matmul: lambda a, b: a @ b if isinstance(a, SecureTensor) else b.__rmatmul__(a),
    np.negative: lambda a: -a,
}

_FUNCTIONS: dict[Callable[..., Any], Callable[..., Any]] = {
    np.sum: _sum,
    np.reshape: _reshape,
    np.transpose: _transpose,
    np.dot: _dot,
    np.shape: _shape,
    np.ndim: _ndim,
}
