"""The statistical security floor: one check for every ``sigma``-like parameter.

Masks, flooding noise, MAC checks and failure bounds are sized by a statistical security
parameter ``s``: a distinguisher's advantage (or a failure probability) of at most
``2^-s``. The library floor is `STATISTICAL_SECURITY_BITS` (40 bits, the usual choice in
MPC, e.g. Damgård, Pastro, Smart, Zakarias, "SPDZ", CRYPTO 2012, section 2, and the
masking of Mohassel and Zhang, "SecureML", IEEE S&P 2017, section 4.2). Anything smaller
is refused outside `securecomp.params.insecure_test_parameters()`, with the same opt-in
as small keys, so that a test can run cheap parameters and nothing else can.
"""

from __future__ import annotations

import operator

from securecomp.errors import ParameterError
from securecomp.params.insecure import require_secure
from securecomp.params.security import STATISTICAL_SECURITY_BITS

__all__ = ["MAX_STATISTICAL_BITS", "check_statistical_security"]

#: Largest statistical parameter accepted (beyond it masks and noise only cost).
MAX_STATISTICAL_BITS = 128


def check_statistical_security(bits: object, what: str) -> int:
    """Validate a statistical security parameter against the 40-bit floor.

    Parameters
    ----------
    bits : int
        The parameter (``sigma``, ``wrap_bits``, ...); an int or numpy integer, not a bool.
    what : str
        Its name in the caller's API, used in the messages (e.g. ``"sigma"``).

    Returns
    -------
    int
        ``bits`` as a Python int, in ``[1, 128]``, and at least 40 unless the caller is
        inside ``insecure_test_parameters()``.

    Raises
    ------
    ParameterError
        If ``bits`` is not an integer, or outside ``[1, 128]``.
    InsecureParameterError
        If ``bits < 40`` outside ``insecure_test_parameters()``.

    Examples
    --------
    >>> check_statistical_security(40, "sigma")
    40
    """
    if isinstance(bits, bool):
        raise ParameterError(f"{what} must be an int number of bits, got {bits!r}")
    try:
        value = operator.index(bits)  # type: ignore[arg-type]
    except TypeError:
        raise ParameterError(f"{what} must be an int number of bits, got {bits!r}") from None
    if not 1 <= value <= MAX_STATISTICAL_BITS:
        raise ParameterError(
            f"{what}={value}: a statistical security parameter must be in "
            f"[1, {MAX_STATISTICAL_BITS}] bits ({STATISTICAL_SECURITY_BITS} is the default)"
        )
    require_secure(
        value >= STATISTICAL_SECURITY_BITS,
        f"{what}={value}: {value}-bit statistical security (advantage up to 2^-{value}) is "
        f"below the library floor of {STATISTICAL_SECURITY_BITS} bits; pass {what} >= "
        f"{STATISTICAL_SECURITY_BITS} (the default)",
    )
    return value
