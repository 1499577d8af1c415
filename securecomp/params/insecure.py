"""The one loud opt-in for parameters below the library's security floor.

Everything in securecomp refuses parameters below 128-bit security (112-bit, labelled, for
2048-bit Paillier moduli) unless the caller is inside :func:`insecure_test_parameters`.
The opt-in is scoped with a :class:`contextvars.ContextVar`, so it covers exactly the
``with`` block (or decorated call) that asked for it, in that thread or task only, and is
restored on exit even when the block raises. Entering it always emits an
:class:`InsecureParametersWarning`: it is meant for tests and must be visible there.

What the opt-in does *not* change: TenSEAL (through Microsoft SEAL) enforces the 128-bit
HomomorphicEncryption.org table itself, so a CKKS context over the table cannot be built
whatever this flag says. Small CKKS ring degrees are therefore not a matter of opt-in; CKKS
tests of depth >= 3 run at N = 8192. The opt-in matters for Paillier key sizes (phe accepts
any size) and for future small-modulus modes.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import ParamSpec, TypeVar

from securecomp.errors import InsecureParameterError

__all__ = [
    "SMALL_TEST_PAILLIER_BITS",
    "InsecureParametersWarning",
    "insecure_allowed",
    "insecure_test_parameters",
    "require_secure",
]

#: Paillier modulus size for fast tests (inside ``insecure_test_parameters()`` only).
SMALL_TEST_PAILLIER_BITS = 512

_P = ParamSpec("_P")
_R = TypeVar("_R")

# A depth counter rather than a flag, so nested scopes restore their outer state exactly.
_INSECURE_DEPTH: ContextVar[int] = ContextVar("securecomp_insecure_depth", default=0)


class InsecureParametersWarning(UserWarning):
    """Parameters below the security floor were allowed for this scope (tests only)."""


# Lower-case class name: it reads as a function call, `with insecure_test_parameters():`.
class insecure_test_parameters:
    """Allow parameters below the security floor inside a ``with`` block or decorated call.

    Usable as a context manager or as a decorator (each call of the decorated function gets
    its own scope). Entering emits an :class:`InsecureParametersWarning`; inside,
    :func:`insecure_allowed` is true; on exit the previous state is restored, also when
    scopes nest or the block raises.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", InsecureParametersWarning)
    ...     with insecure_test_parameters():
    ...         insecure_allowed()
    True
    >>> insecure_allowed()
    False
    """

    __slots__ = ("_tokens",)

    def __init__(self) -> None:
        # A stack, so the same object may be re-entered (``with s: with s:``) within one
        # context; tokens must be reset in the reverse order they were taken.
        self._tokens: list[Token[int]] = []

    def __enter__(self) -> insecure_test_parameters:
        warnings.warn(
            "securecomp: parameters below the 128-bit security floor are allowed in this "
            "scope; use for tests only, never for real data",
            InsecureParametersWarning,
            stacklevel=2,
        )
        self._tokens.append(_INSECURE_DEPTH.set(_INSECURE_DEPTH.get() + 1))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _INSECURE_DEPTH.reset(self._tokens.pop())

    def __call__(self, func: Callable[_P, _R]) -> Callable[_P, _R]:
        """Decorate ``func`` so that each call runs inside a fresh opt-in scope."""

        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            # A new scope object per call: a shared one would mix tokens between threads.
            with insecure_test_parameters():
                return func(*args, **kwargs)

        return wrapper


def insecure_allowed() -> bool:
    """Whether the current context is inside :func:`insecure_test_parameters`."""
    return _INSECURE_DEPTH.get() > 0


def require_secure(condition: bool, what: str) -> None:
    """Refuse insecure parameters unless the caller opted in.

    Parameters
    ----------
    condition : bool
        True when the parameters meet the security floor.
    what : str
        What is insecure and why, e.g. ``"a 1024-bit Paillier modulus is about 80-bit"``.

    Raises
    ------
    InsecureParameterError
        If ``condition`` is false outside ``insecure_test_parameters()``.
    """
    if not condition and not insecure_allowed():
        raise InsecureParameterError(
            f"{what}; use secure parameters, or wrap test code in "
            "securecomp.params.insecure_test_parameters()"
        )
