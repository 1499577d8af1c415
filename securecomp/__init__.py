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

#: Subpackages, imported on first attribute access (``securecomp.secagg``) so that
#: ``import securecomp`` stays cheap and never loads TenSEAL, Ray or scikit-learn.
_SUBPACKAGES = frozenset(
    {"crypto", "dp", "encoding", "federated", "he", "models", "mpc", "net", "params", "secagg"}
)


def __getattr__(name: str) -> object:
    if name in _SUBPACKAGES:
        import importlib

        module = importlib.import_module(f"securecomp.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'securecomp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBPACKAGES)

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
