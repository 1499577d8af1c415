"""Pairwise and self masks of secure aggregation, expanded by AES-CTR from HKDF seeds.

Bonawitz et al. (CCS 2017, section 4, "double masking"): client ``u`` sends

    y_u = x_u + PRG(b_u) + sum_{v in N(u)} sign(u, v) * PRG(s_{u,v})   (mod 2^b)

with ``sign(u, v) = +1`` if ``u < v`` and ``-1`` otherwise, so the pairwise masks of two
surviving clients cancel in the sum; the server removes the self masks ``PRG(b_u)`` of
survivors and the pairwise masks of dropped clients after reconstructing their seeds.

Seeds and domains
-----------------
* pairwise seed: ``HKDF(X25519(s_u^SK, s_v^PK))`` (`securecomp.crypto.x25519.agree`) with
  domain ``("secagg", "pair-mask", session, round, pair = sorted(u, v))``;
* self seed: ``HKDF(b_u)`` with domain ``("secagg", "self-mask", session, round, party = u)``,
  where ``b_u`` is 32 fresh bytes from the OS CSPRNG;
* share-encryption key: as the pairwise seed, from the other key pair, with purpose
  ``"share-encryption"``.

Every derivation binds session and round, and keys are fresh per round, so masks never
repeat across rounds (a masked input replayed into another round does not unmask) and the
three purposes never share a key. The PRG is AES-256-CTR written straight into a reused
buffer of the container dtype (`securecomp.secagg.config.container_dtype`): the low ``b``
bits of uniform ``w``-bit words are uniform, and sums modulo ``2^w`` reduce to sums modulo
``2^b`` with one final mask, so no per-mask reduction is needed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from securecomp.crypto.kdf import Domain, derive_key
from securecomp.crypto.prg import SEED_BYTES, AesCtrPrg
from securecomp.crypto.x25519 import X25519KeyPair, agree
from securecomp.errors import ParameterError

__all__ = [
    "PROTOCOL",
    "PURPOSE_PAIR_MASK",
    "PURPOSE_SELF_MASK",
    "PURPOSE_SHARE_ENCRYPTION",
    "MaskAccumulator",
    "pair_seed",
    "reduce_bits",
    "self_seed",
    "share_key",
]

#: Protocol label in every derived domain.
PROTOCOL = "secagg"
PURPOSE_PAIR_MASK = "pair-mask"
PURPOSE_SELF_MASK = "self-mask"
PURPOSE_SHARE_ENCRYPTION = "share-encryption"


def _pair_domain(purpose: str, session: bytes, round: int, u: int, v: int) -> Domain:
    return Domain(PROTOCOL, purpose, session, round).for_pair(u, v)


def pair_seed(
    keypair: X25519KeyPair, peer_public: bytes, *, session: bytes, round: int, me: int, peer: int
) -> bytes:
    """The pairwise mask seed of ``me`` and ``peer`` (the same on both sides)."""
    return agree(keypair, peer_public, _pair_domain(PURPOSE_PAIR_MASK, session, round, me, peer))


def share_key(
    keypair: X25519KeyPair, peer_public: bytes, *, session: bytes, round: int, me: int, peer: int
) -> bytes:
    """The AES-256-GCM key encrypting Shamir shares between ``me`` and ``peer``."""
    domain = _pair_domain(PURPOSE_SHARE_ENCRYPTION, session, round, me, peer)
    return agree(keypair, peer_public, domain)


def self_seed(b: bytes, *, session: bytes, round: int, party: int) -> bytes:
    """The self-mask seed of ``party`` derived from its 32-byte secret ``b``."""
    if not isinstance(b, bytes) or len(b) != SEED_BYTES:
        raise ParameterError(f"the self-mask secret must be {SEED_BYTES} bytes")
    domain = Domain(PROTOCOL, PURPOSE_SELF_MASK, session, round).for_party(party)
    return derive_key(b, domain, SEED_BYTES)


def reduce_bits(values: npt.NDArray[np.unsignedinteger], bits: int) -> None:
    """Reduce ``values`` modulo ``2^bits`` in place (no-op when the dtype is that wide)."""
    if bits < values.dtype.itemsize * 8:
        np.bitwise_and(values, values.dtype.type((1 << bits) - 1), out=values)


class MaskAccumulator:
    """A vector modulo ``2^bits`` to which masks expanded from seeds are added in place.

    Invariant: after ``add(seed, +1)`` and ``add(seed, -1)`` the value is unchanged; the
    result of any sequence of calls does not depend on their order.

    Parameters
    ----------
    start : ndarray
        Initial values (copied), e.g. the quantized input or zeros.
    dtype : numpy dtype
        Container dtype for ``bits`` (`container_dtype`).
    bits : int
        The ring is Z_2^bits.
    """

    __slots__ = ("_acc", "_bits", "_scratch")

    def __init__(self, start: npt.NDArray[np.unsignedinteger], dtype: np.dtype, bits: int) -> None:
        self._acc = np.array(start, dtype=dtype, copy=True).reshape(-1)
        self._scratch = np.empty_like(self._acc)
        self._bits = bits

    def expand(self, seed: bytes) -> npt.NDArray[np.unsignedinteger]:
        """The mask of ``seed`` in the scratch buffer (overwritten by the next call)."""
        return AesCtrPrg(seed).fill(self._scratch)

    def add(self, seed: bytes, sign: int) -> None:
        """Add (``sign = +1``) or subtract (``-1``) the mask expanded from ``seed``."""
        mask = self.expand(seed)
        if sign > 0:
            np.add(self._acc, mask, out=self._acc)
        else:
            np.subtract(self._acc, mask, out=self._acc)

    def add_vector(self, values: npt.NDArray[np.unsignedinteger]) -> None:
        """Add a vector already in the container dtype (e.g. a masked input)."""
        np.add(self._acc, values, out=self._acc)

    def result(self) -> npt.NDArray[np.unsignedinteger]:
        """The accumulated vector reduced modulo ``2^bits`` (a fresh array)."""
        out = self._acc.copy()
        reduce_bits(out, self._bits)
        return out
