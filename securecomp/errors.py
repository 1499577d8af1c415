"""The one exception tree of securecomp.

Every class also subclasses the builtin a caller would naturally catch, so
``except ValueError`` keeps working for code that does not know securecomp. Messages say
what happened *and* what to do about it. A protocol abort releases no partial output and
leaves the caller's inputs unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BudgetExceededError",
    "ChannelClosedError",
    "ConsentError",
    "DepthExhaustedError",
    "EncodingOverflowError",
    "InsecureParameterError",
    "InsufficientParticipantsError",
    "IntegrityError",
    "KeyMismatchError",
    "MACCheckError",
    "MalformedMessageError",
    "MissingDependencyError",
    "NotFittedError",
    "ParameterError",
    "PartyTimeoutError",
    "PeerAuthenticationError",
    "PreprocessingReuseError",
    "ProtocolAbort",
    "ReleaseError",
    "ReplayError",
    "RevealError",
    "SecretKeyExportError",
    "SecurecompError",
    "ShapeMismatchError",
    "UnsupportedOperationError",
]


class SecurecompError(Exception):
    """Root of every error raised on purpose by securecomp."""


# --- parameters and encodings -------------------------------------------------------------


class ParameterError(SecurecompError, ValueError):
    """A parameter set is invalid, insecure, or cannot support the requested computation."""


class InsecureParameterError(ParameterError):
    """Parameters below the 128-bit (or labelled 112-bit) floor, outside the insecure opt-in.

    Use ``securecomp.params.insecure_test_parameters()`` in tests only.
    """


class EncodingOverflowError(SecurecompError, OverflowError):
    """A value (or a planned result) does not fit the encoding: out of range, NaN or inf.

    Raised *before* anything wraps around; the message states the bound and the fix.
    """


class DepthExhaustedError(SecurecompError, ArithmeticError):
    """A CKKS multiplication would exceed the modulus chain planned for the ciphertext."""


# --- the tensor abstraction -----------------------------------------------------------------


class RevealError(SecurecompError, TypeError):
    """An implicit conversion would reveal a protected value (``bool``, ``float``, ``np.asarray``).

    Plaintext leaves a ``SecureTensor`` only through an explicit verb: ``decrypt(key)`` or
    ``reveal(to=...)``.
    """


class UnsupportedOperationError(SecurecompError, TypeError):
    """The backend (or layout) cannot perform this operation; the message names an alternative."""


class KeyMismatchError(SecurecompError, ValueError):
    """Operands were produced under different keys or parameter sets (fingerprints differ)."""


class ShapeMismatchError(SecurecompError, ValueError):
    """Operand shapes are incompatible (or a peer sent a share of an unexpected shape)."""


class SecretKeyExportError(SecurecompError, PermissionError):
    """A public export was asked to contain secret key material."""


class ReleaseError(SecurecompError, PermissionError):
    """A decrypted value would leave the key holder without a sound noise-flooding bound."""


class NotFittedError(SecurecompError, AttributeError):
    """An estimator was used before ``fit``."""


# --- wire format and transport --------------------------------------------------------------


class MalformedMessageError(SecurecompError, ValueError):
    """Bytes are not a valid securecomp message: bad magic, version, kind, size, dtype or body."""


class IntegrityError(MalformedMessageError):
    """An authenticated payload failed verification (tampered, wrong key, or wrong header)."""


class ReplayError(SecurecompError, ValueError):
    """A message was delivered twice, or into another session, round or stage."""


class PartyTimeoutError(SecurecompError, TimeoutError):
    """A party stayed silent past the receive timeout.

    Attributes
    ----------
    party : the id of the silent party.
    timeout : the timeout in seconds that expired.
    """

    def __init__(self, party: int | str, timeout: float, detail: str = "") -> None:
        self.party = party
        self.timeout = timeout
        msg = f"party {party!r} sent nothing within {timeout:g} s"
        if detail:
            msg += f" ({detail})"
        msg += "; check that it is running and reachable, or raise the timeout"
        super().__init__(msg)


class ChannelClosedError(SecurecompError, ConnectionError):
    """The connection to a party closed while a message was expected."""


class PeerAuthenticationError(SecurecompError, ConnectionError):
    """A peer failed mutual TLS: its certificate is not the one pinned for its party id."""


# --- protocol aborts ------------------------------------------------------------------------


class ProtocolAbort(SecurecompError, RuntimeError):
    """A protocol stopped without output.

    Attributes
    ----------
    stage : the protocol stage that aborted.
    culprits : parties identified as responsible (may be empty).
    reason : human-readable reason.
    """

    def __init__(
        self, stage: str, reason: str, culprits: Iterable[int | str] = ()
    ) -> None:
        self.stage = stage
        self.reason = reason
        self.culprits = tuple(culprits)
        who = f"; culprits: {list(self.culprits)}" if self.culprits else ""
        super().__init__(f"protocol aborted at stage {stage!r}: {reason}{who}")


class MACCheckError(ProtocolAbort):
    """An authenticated (SPDZ2k) opening failed its MAC check: some share was tampered with."""


class InsufficientParticipantsError(ProtocolAbort):
    """Fewer parties than the threshold survived a stage; nothing is released."""


class PreprocessingReuseError(SecurecompError, RuntimeError):
    """Single-use preprocessing material (a triple, truncation pair, ...) was requested twice."""


# --- federated layer -----------------------------------------------------------------------


class BudgetExceededError(SecurecompError, PermissionError):
    """A query would exceed a user's privacy budget; the ledger is left unchanged."""


class ConsentError(SecurecompError, PermissionError):
    """Data was used outside the purposes or schema a user consented to."""


class MissingDependencyError(SecurecompError, ImportError):
    """An optional dependency (an extra such as ``securecomp[ray]``) is not installed."""
