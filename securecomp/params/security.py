"""Security levels: the labels every parameter check returns, and the library-wide constants.

A label states an *estimate* and where it comes from: the HomomorphicEncryption.org
standard (Albrecht et al., ePrint 2019/939) for RLWE, NIST SP 800-57 Part 1 Rev. 5,
Table 2 for factoring-based moduli (Paillier). The floors are the library's policy:
128-bit for CKKS (the standard's lowest row) and 112-bit for Paillier (2048-bit moduli,
still allowed by NIST through 2030), never lower outside the insecure opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_SECURITY_BITS",
    "STATISTICAL_SECURITY_BITS",
    "SecurityLabel",
]

#: Computational security the defaults aim for (bits, classical).
DEFAULT_SECURITY_BITS = 128

#: Statistical security parameter: masks, MAC checks and slack are sized so that a
#: distinguisher or a forgery succeeds with probability at most 2^-40.
STATISTICAL_SECURITY_BITS = 40


@dataclass(frozen=True)
class SecurityLabel:
    """An estimated security level, its source, and whether it is below the library floor.

    Invariant: ``insecure`` is true exactly when ``bits`` is below the floor that the
    producing check applies (128 for CKKS, 112 for Paillier); ``bits == 0`` means no level
    is claimed at all.

    Attributes
    ----------
    bits : int
        Estimated classical security in bits (0: none claimed).
    source : str
        Where the estimate comes from (standard and table).
    insecure : bool
        True when the parameters are only usable inside ``insecure_test_parameters()``.
    """

    bits: int
    source: str
    insecure: bool

    def __str__(self) -> str:
        level = f"about {self.bits}-bit" if self.bits > 0 else "no claimed security level"
        flag = " (INSECURE: test parameters only)" if self.insecure else ""
        return f"{level} per {self.source}{flag}"
