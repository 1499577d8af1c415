"""The backend contract behind `SecureTensor`.

A backend owns a scheme's parameters and key material (or, for MPC, a party's session) and
an operation table ``Op -> implementation``. It declares its capabilities per *layout*
(Paillier's packed layout supports fewer ops than its unpacked one, for instance); an op it
lacks raises `UnsupportedOperationError` carrying the backend's advice on what to use
instead. Every binary operation is preceded by a fingerprint check so that tensors under
different keys or parameters never combine into garbage.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from securecomp.errors import UnsupportedOperationError
from securecomp.tensor.ops import Op

if TYPE_CHECKING:
    import numpy as np

    from securecomp.tensor.core import SecureTensor

Implementation = Callable[..., "SecureTensor"]

__all__ = ["Backend", "Implementation"]


class Backend(abc.ABC):
    """Scheme adapter: parameters, keys and an operation table.

    Invariant: every implementation is a pure function of its operands. It never mutates
    an operand's payload (value semantics), and it returns a new `SecureTensor` built with
    `wrap`.
    """

    #: Short backend name shown in reprs and errors ("plain", "ckks", "paillier", "shares").
    name: ClassVar[str]

    @property
    @abc.abstractmethod
    def fingerprint(self) -> bytes:
        """Digest of the parameter set *and* the key id; equal iff operands may be combined."""

    @abc.abstractmethod
    def table(self, layout: str) -> Mapping[Op, Implementation]:
        """The operations available for tensors in `layout`, with their implementations."""

    def advice(self, op: Op, layout: str) -> str:
        """What to do instead of an unsupported `op`; backends override with specifics."""
        return f"the {self.name!r} backend does not provide {op.symbol!r} for layout {layout!r}"

    def implementation(self, op: Op, layout: str) -> Implementation:
        """Look `op` up in the table or raise `UnsupportedOperationError` with advice."""
        impl = self.table(layout).get(op)
        if impl is None:
            raise UnsupportedOperationError(
                f"{self.name} backend ({layout} layout) cannot compute {op.symbol}: "
                f"{self.advice(op, layout)}"
            )
        return impl

    def capabilities(self, layout: str) -> frozenset[Op]:
        """The set of operations supported for `layout`."""
        return frozenset(self.table(layout))

    # --- the explicit verbs through which plaintext may leave ------------------------------

    def decrypt(self, tensor: SecureTensor, key: Any) -> np.ndarray:
        """Decrypt with `key` (HE backends). Raises unless the backend has a decryption key."""
        raise UnsupportedOperationError(
            f"the {self.name} backend has no decryption; use reveal(to=...) for shares"
        )

    def reveal(self, tensor: SecureTensor, to: Any) -> np.ndarray | None:
        """Open a value to the parties in `to` (MPC backends)."""
        raise UnsupportedOperationError(
            f"the {self.name} backend has no reveal; use decrypt(key) for ciphertexts"
        )

    def to_bytes(self, tensor: SecureTensor) -> bytes:
        """Serialize `tensor` in the versioned wire format (never pickle)."""
        raise UnsupportedOperationError(f"the {self.name} backend does not serialize tensors")

    def describe(self) -> str:
        """One line for reprs: name and abbreviated fingerprint, never key material."""
        return f"{self.name}:{self.fingerprint.hex()[:8]}"
