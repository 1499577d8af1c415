"""Batched MAC check of SPDZ2k with commit-then-open coin tossing.

Every partial opening ``y_j`` (the sum of the parties' shares of a value, opened in
Z_2^(k+s)) is queued together with this party's MAC share ``m_j``. Before any value
derived from these openings leaves the protocol, the parties run the check of Cramer,
Damgård, Escudero, Scholl and Xing (CRYPTO 2018, section 3, the batched MAC check):

1. **Coin toss** (2 rounds). Each party draws a 32-byte seed from the OS CSPRNG and sends
   a commitment ``SHA-256(label, session, check number, "coin", party, nonce, seed)``
   with a fresh 32-byte nonce; after all commitments arrived it opens (nonce, seed), and
   each party verifies every opening. The joint seed is the hash of all seeds, so the
   coefficients are uniform if one party is honest and unknown to everyone until all
   openings to be checked were sent. Every check tosses fresh coins.
2. **Combination** (local). ``chi_j`` uniform in Z_2^s from AES-CTR under the joint seed;
   ``y = sum_j chi_j y_j`` (public), ``m_i = sum_j chi_j m_{j,i}`` and
   ``z_i = m_i - alpha_i y`` modulo 2^(k+s). The key share enters once per check, on the
   combined scalar (the key is folded out of the per-element work).
3. **Commit-then-open of z** (2 rounds), together with a digest of this party's transcript
   of broadcast values (inputs) and of the joint seed, so that a party that sent
   different values to different peers is caught even where no MAC covers them.
4. **Decision.** Abort with `MACCheckError` unless ``sum_i z_i = 0 (mod 2^(k+s))`` and every
   digest equals this party's. A cheat passes with probability at most
   ``2^-(s - log2(s + 1))`` (about 2^-58 for s = 64, 2^-27 for s = 32); an opening that
   does not match its commitment names its sender.

The commitment is hiding in the random-oracle model (a 256-bit random nonce) and binding
by the collision resistance of SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from securecomp.crypto import AesCtrPrg, Domain, derive_prg
from securecomp.errors import MACCheckError, MalformedMessageError
from securecomp.mpc.spdz2k.limbs import CHUNK
from securecomp.mpc.spdz2k.ring import Spdz2kParameters

__all__ = ["NONCE_BYTES", "OpenedQueue", "commitment", "verify_opening"]

#: Length of a commitment nonce.
NONCE_BYTES = 32
_LABEL = b"securecomp/spdz2k/commit/v1"
PROTOCOL = "securecomp/mpc/spdz2k/mac-check"
U64 = np.uint64


def _field(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def commitment(
    session: bytes, check: int, purpose: str, party: int, nonce: bytes, payload: bytes
) -> bytes:
    """``SHA-256`` over the length-prefixed context, the nonce and the payload."""
    h = hashlib.sha256(_LABEL)
    for part in (session, check.to_bytes(8, "big"), purpose.encode(), party.to_bytes(8, "big"),
                 nonce, payload):
        h.update(_field(part))
    return h.digest()


def verify_opening(
    digest: bytes, session: bytes, check: int, purpose: str, party: int, opened: bytes
) -> bytes:
    """The payload of a (nonce || payload) opening that matches ``digest``.

    Raises
    ------
    MACCheckError
        If the opening does not match the commitment (naming the party).
    """
    if len(opened) < NONCE_BYTES:
        raise MACCheckError("mac-check", f"party {party} opened a malformed commitment", [party])
    nonce, payload = opened[:NONCE_BYTES], opened[NONCE_BYTES:]
    expected = commitment(session, check, purpose, party, nonce, payload)
    if not hmac.compare_digest(expected, digest):
        raise MACCheckError(
            "mac-check", f"party {party} opened a value that does not match its commitment",
            [party],
        )
    return payload


@dataclass
class OpenedQueue:
    """The partial openings of one domain awaiting a check.

    Each entry has shape ``(L, 2, n)``: row 0 the opened sum, row 1 this party's MAC share
    of it, as wide arrays of the domain's ring. `clear` hands the entries' buffers to
    ``release`` (the session's buffer pool) for reuse.
    """

    params: Spdz2kParameters
    release: Callable[[npt.NDArray[np.uint64]], None] | None = None
    entries: list[npt.NDArray[np.uint64]] = field(default_factory=list)
    count: int = 0
    _bases: list[npt.NDArray[np.uint64]] = field(default_factory=list)
    _chi: npt.NDArray[np.uint64] | None = None

    def push(
        self, entry: npt.NDArray[np.uint64], base: npt.NDArray[np.uint64] | None = None
    ) -> None:
        if entry.ndim != 3 or entry.shape[:2] != (self.params.ring.limbs, 2):
            raise MalformedMessageError(f"internal: opened entry of shape {entry.shape}")
        if entry.shape[2]:
            self.entries.append(entry)
            self.count += entry.shape[2]
        if base is not None:
            self._bases.append(base)

    def combine(self, prg: AesCtrPrg, key_share: int) -> int:
        """``z_i = sum_j chi_j m_j - alpha_i sum_j chi_j y_j`` over the ring (step 2)."""
        ring = self.params.ring
        y = m = 0
        size = min(self.count, CHUNK * 16) or 1
        if self._chi is None or self._chi.size < size:
            self._chi = np.empty(size, dtype=U64)  # kept: no page faults on the next check
        chi = self._chi
        bound = U64(self.params.key_bound - 1) if self.params.s < 64 else None
        for entry in self.entries:
            n = entry.shape[2]
            for start in range(0, n, chi.size):
                stop = min(n, start + chi.size)
                c = chi[: stop - start]
                prg.fill(c)
                if bound is not None:
                    np.bitwise_and(c, bound, out=c)  # chi uniform in Z_2^s
                dy, dm = ring.dot(c, entry[:, :, start:stop])
                y += dy
                m += dm
        return (m - key_share * y) & ring.modulus_mask

    def clear(self) -> None:
        self.entries.clear()
        self.count = 0
        if self.release is not None:
            for base in self._bases:
                self.release(base)
        self._bases.clear()


def chi_prg(joint_seed: bytes, session: bytes, check: int, domain: str) -> AesCtrPrg:
    """The PRG of the coefficients of one domain in one check."""
    return derive_prg(joint_seed, Domain(PROTOCOL, f"chi/{domain}", session, round=check))


Exchange = Callable[[bytes, str], list[bytes]]


def commit_and_open(
    exchange: Exchange, session: bytes, check: int, purpose: str, me: int, payload: bytes
) -> list[bytes]:
    """Commit to ``payload``, then open it; returns every party's verified payload.

    ``exchange(message, tag)`` sends ``message`` to every peer and returns all parties'
    messages in party order (this party's own included). Two rounds.
    """
    nonce = secrets.token_bytes(NONCE_BYTES)
    mine = commitment(session, check, purpose, me, nonce, payload)
    digests = exchange(mine, f"spdz2k.check.{purpose}.commit")
    opened = exchange(nonce + payload, f"spdz2k.check.{purpose}.open")
    out = []
    for p, (digest, raw) in enumerate(zip(digests, opened, strict=True)):
        out.append(payload if p == me else verify_opening(digest, session, check, purpose, p, raw))
    return out


def joint_seed(session: bytes, check: int, seeds: Sequence[bytes]) -> bytes:
    """The hash of every party's opened coin seed, in party order."""
    h = hashlib.sha256(b"securecomp/spdz2k/coin/v1")
    h.update(_field(session))
    h.update(check.to_bytes(8, "big"))
    for s in seeds:
        h.update(_field(s))
    return h.digest()
