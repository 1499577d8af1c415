"""securecomp: secure computation for privacy-preserving machine learning.

Homomorphic encryption (CKKS, Paillier), additive secret-sharing MPC and secure aggregation
on one tensor abstraction (`SecureTensor`) and one encoding layer. Importing this package
only re-exports the public API: it generates no keys, reads no arguments and holds no state.
"""

from securecomp import errors
from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    MalformedMessageError,
    ParameterError,
    RevealError,
    SecurecompError,
    UnsupportedOperationError,
)
from securecomp.tensor import Backend, Op, SecureTensor, plain_keygen

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "EncodingOverflowError",
    "KeyMismatchError",
    "MalformedMessageError",
    "Op",
    "ParameterError",
    "RevealError",
    "SecureTensor",
    "SecurecompError",
    "UnsupportedOperationError",
    "__version__",
    "errors",
    "plain_keygen",
]
