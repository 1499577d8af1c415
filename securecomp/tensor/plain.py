"""The ``plain`` backend: the reference semantics and test oracle of `SecureTensor`.

It protects nothing: its "ciphertext" is a read-only float64 array. It exists so that models
and protocols are written once against `SecureTensor` and checked, op by op, against the
same code running on plaintext. It keeps the rules of the real backends that a test should
see fail: a key id (mixing keys raises `KeyMismatchError`), no implicit reveal, value
semantics (payloads are read-only), and the shape checks every backend shares.

Threat model: none. Anyone holding a plain tensor holds its values. Use it for reference
runs and tests only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import KeyMismatchError, ShapeMismatchError
from securecomp.tensor.backend import Backend, Implementation
from securecomp.tensor.core import SecureTensor, as_plaintext
from securecomp.tensor.ops import Op

__all__ = ["PlainBackend", "PlainKey", "plain_keygen"]


@dataclass(frozen=True)
class PlainKey:
    """The "key" of the plain backend: an identifier, so key mismatches are testable."""

    key_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))


def _frozen(values: NDArray[Any]) -> NDArray[np.float64]:
    out = np.array(values, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out


def _numpy_call(
    fn: Callable[..., NDArray[Any]], what: str, *operands: NDArray[Any]
) -> NDArray[Any]:
    """Run a numpy op, turning numpy's shape complaints into `ShapeMismatchError`."""
    try:
        return fn(*operands)
    except ValueError as exc:
        shapes = " and ".join(str(np.shape(o)) for o in operands)
        raise ShapeMismatchError(f"{what}: incompatible shapes {shapes} ({exc})") from exc


class PlainBackend(Backend):
    """Plaintext reference backend. Invariant: every op equals the numpy op on float64."""

    name = "plain"

    def __init__(self, key: PlainKey) -> None:
        self._key_id = key.key_id
        self._fingerprint = hashlib.sha256(b"securecomp/plain/v1|" + key.key_id).digest()
        self._table = self._build_table()

    @property
    def fingerprint(self) -> bytes:
        return self._fingerprint

    def encrypt(self, values: ArrayLike) -> SecureTensor:
        """Wrap `values` (validated: numeric and finite) as a plain `SecureTensor`."""
        arr = as_plaintext(values)
        return self._wrap(arr)

    def _wrap(self, values: NDArray[Any]) -> SecureTensor:
        arr = _frozen(values)
        return SecureTensor._wrap(self, arr, arr.shape, layout="dense")

    def decrypt(self, tensor: SecureTensor, key: Any) -> NDArray[np.float64]:
        if not isinstance(key, PlainKey) or key.key_id != self._key_id:
            raise KeyMismatchError(
                "this key did not produce the tensor; decrypt with the key it was encrypted under"
            )
        return np.array(tensor.payload, dtype=np.float64, copy=True)

    def table(self, layout: str) -> Mapping[Op, Implementation]:
        return self._table

    def _build_table(self) -> dict[Op, Implementation]:
        def lift2(fn: Callable[..., NDArray[Any]], what: str) -> Implementation:
            def impl(a: SecureTensor, b: Any) -> SecureTensor:
                other = b.payload if isinstance(b, SecureTensor) else b
                return self._wrap(_numpy_call(fn, what, a.payload, other))

            return impl

        def rlift2(fn: Callable[..., NDArray[Any]], what: str) -> Implementation:
            def impl(a: SecureTensor, b: NDArray[Any]) -> SecureTensor:
                return self._wrap(_numpy_call(fn, what, b, a.payload))

            return impl

        def neg(a: SecureTensor) -> SecureTensor:
            return self._wrap(-a.payload)

        def total(a: SecureTensor, axis: int | None = None) -> SecureTensor:
            return self._wrap(np.sum(a.payload, axis=axis))

        def getitem(a: SecureTensor, key: Any, result_shape: tuple[int, ...]) -> SecureTensor:
            return self._wrap(a.payload[key])

        def reshape(a: SecureTensor, shape: tuple[int, ...]) -> SecureTensor:
            return self._wrap(a.payload.reshape(shape))

        def transpose(a: SecureTensor) -> SecureTensor:
            return self._wrap(a.payload.T)

        def polyval(a: SecureTensor, coeffs: NDArray[np.float64]) -> SecureTensor:
            # Horner, highest degree first, exactly as the encrypted backends evaluate it.
            acc = np.full(a.shape, coeffs[-1])
            for c in coeffs[-2::-1]:
                acc = acc * a.payload + c
            return self._wrap(acc)

        return {
            Op.ADD: lift2(np.add, "a + b"),
            Op.ADD_PLAIN: lift2(np.add, "a + plaintext"),
            Op.SUB: lift2(np.subtract, "a - b"),
            Op.SUB_PLAIN: lift2(np.subtract, "a - plaintext"),
            Op.RSUB_PLAIN: rlift2(np.subtract, "plaintext - a"),
            Op.NEG: neg,
            Op.MUL: lift2(np.multiply, "a * b"),
            Op.MUL_PLAIN: lift2(np.multiply, "a * plaintext"),
            Op.MATMUL: lift2(np.matmul, "a @ b"),
            Op.MATMUL_PLAIN: lift2(np.matmul, "a @ plaintext"),
            Op.RMATMUL_PLAIN: rlift2(np.matmul, "plaintext @ a"),
            Op.DOT: lift2(np.dot, "a.dot(b)"),
            Op.DOT_PLAIN: lift2(np.dot, "a.dot(plaintext)"),
            Op.SUM: total,
            Op.GETITEM: getitem,
            Op.RESHAPE: reshape,
            Op.TRANSPOSE: transpose,
            Op.POLYVAL: polyval,
            Op.LT: lift2(lambda x, y: np.less(x, y).astype(np.float64), "a < b"),
            Op.LT_PLAIN: lift2(lambda x, y: np.less(x, y).astype(np.float64), "a < pt"),
            Op.GT_PLAIN: lift2(lambda x, y: np.greater(x, y).astype(np.float64), "a > pt"),
        }


def plain_keygen() -> tuple[PlainBackend, PlainKey]:
    """A fresh plain backend and its key."""
    key = PlainKey()
    return PlainBackend(key), key
