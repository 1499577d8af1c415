"""The SecureTensor contract itself: construction, dispatch, capabilities, pickling."""

from __future__ import annotations

import pickle
from collections.abc import Mapping

import numpy as np
import pytest

from securecomp.errors import UnsupportedOperationError
from securecomp.tensor import Backend, Implementation, Op, SecureTensor, plain_keygen


class AddOnlyBackend(Backend):
    """A backend that can only add: exercises capability enforcement and advice."""

    name = "addonly"

    @property
    def fingerprint(self) -> bytes:
        return b"addonly"

    def table(self, layout: str) -> Mapping[Op, Implementation]:
        def add(a: SecureTensor, b: SecureTensor) -> SecureTensor:
            return SecureTensor._wrap(self, a.payload + b.payload, a.shape, layout=layout)

        return {Op.ADD: add}

    def advice(self, op: Op, layout: str) -> str:
        return "use the plain backend instead"


def test_constructor_is_not_public() -> None:
    with pytest.raises(TypeError, match="created by a backend"):
        SecureTensor(np.ones(2))


def test_unsupported_op_names_backend_and_alternative() -> None:
    backend = AddOnlyBackend()
    t = SecureTensor._wrap(backend, np.ones(2), (2,), layout="x")
    assert (t + t).payload.tolist() == [2.0, 2.0]
    with pytest.raises(UnsupportedOperationError) as info:
        t * t
    msg = str(info.value)
    assert "addonly" in msg and "a * b" in msg and "plain backend instead" in msg
    assert backend.capabilities("x") == frozenset({Op.ADD})
    with pytest.raises(UnsupportedOperationError):
        t.decrypt(None)
    with pytest.raises(UnsupportedOperationError):
        t.reveal(to=0)


def test_secure_tensor_cannot_be_pickled() -> None:
    backend, _ = plain_keygen()
    with pytest.raises(TypeError, match="to_bytes"):
        pickle.dumps(backend.encrypt(np.ones(2)))


def test_plain_payload_is_read_only_and_decrypt_returns_a_copy() -> None:
    backend, key = plain_keygen()
    t = backend.encrypt(np.arange(3.0))
    with pytest.raises(ValueError):
        t.payload[0] = 5.0
    out = t.decrypt(key)
    out[0] = 99.0
    assert t.decrypt(key)[0] == 0.0


def test_comparisons_follow_numpy() -> None:
    backend, key = plain_keygen()
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])
    ea, eb = backend.encrypt(a), backend.encrypt(b)
    np.testing.assert_array_equal((ea < eb).decrypt(key), a < b)
    np.testing.assert_array_equal((ea > eb).decrypt(key), a > b)
    np.testing.assert_array_equal((ea <= b).decrypt(key), a <= b)
    np.testing.assert_array_equal((ea >= 2.0).decrypt(key), a >= 2.0)


def test_unknown_numpy_functions_are_not_silently_applied() -> None:
    backend, _ = plain_keygen()
    t = backend.encrypt(np.ones(3))
    with pytest.raises(TypeError):
        np.exp(t)
    with pytest.raises(TypeError):
        np.concatenate([t, t])
    assert np.shape(t) == (3,) and np.ndim(t) == 1 and len(t) == 3
