"""Backend harnesses: how the shared tests create and open tensors on each backend.

Each backend contributes one `Harness`; `tests/conftest.py` parametrizes the `backend`
fixture over all of them so every shared test runs on every backend against numpy.
The HE harnesses register below; the MPC ones (``shares-*``, `harness_mpc`) register from
`tests/conftest.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from securecomp.tensor import Op, SecureTensor, plain_keygen


@dataclass
class Harness:
    """How to protect and open values on one backend, and how exact it is."""

    name: str
    protect: Callable[[np.ndarray], SecureTensor]
    open: Callable[[SecureTensor], np.ndarray]
    #: A second, independent key/context: tensors from it must not combine with ours.
    protect_other_key: Callable[[np.ndarray], SecureTensor]
    atol: float = 0.0
    ops: frozenset[Op] = field(default_factory=frozenset)
    #: Releases what the harness started (threads of a simulation); called at teardown.
    close: Callable[[], None] = field(default=lambda: None)

    def supports(self, *ops: Op) -> bool:
        return all(op in self.ops for op in ops)


def plain_harness() -> Harness:
    backend, key = plain_keygen()
    other, _ = plain_keygen()
    return Harness(
        name="plain",
        protect=backend.encrypt,
        open=lambda t: t.decrypt(key),
        protect_other_key=other.encrypt,
        atol=0.0,
        ops=backend.capabilities("dense"),
    )


#: fixture id -> factory; later backends append theirs (ids are unique, names need not be:
#: one backend may run under several configurations).
HARNESSES: dict[str, Callable[[], Harness]] = {"plain": plain_harness}


def assert_matches(h: Harness, got: SecureTensor, want: Any) -> None:
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(h.open(got), want, rtol=0, atol=h.atol)


def _register_backends() -> None:
    # Imported here: each harness module imports `Harness` from this one.
    from harness_ckks import ckks_harness
    from harness_paillier import paillier_harness

    HARNESSES["ckks"] = ckks_harness
    HARNESSES["paillier"] = paillier_harness


_register_backends()
