"""The shared tensor abstraction: `SecureTensor`, the backend contract and the plain oracle."""

from securecomp.tensor.backend import Backend, Implementation
from securecomp.tensor.core import SecureTensor, as_plaintext, is_secure
from securecomp.tensor.ops import Op
from securecomp.tensor.plain import PlainBackend, PlainKey, plain_keygen

__all__ = [
    "Backend",
    "Implementation",
    "Op",
    "PlainBackend",
    "PlainKey",
    "SecureTensor",
    "as_plaintext",
    "is_secure",
    "plain_keygen",
]
