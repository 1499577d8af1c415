"""Sealed Shamir shares between two clients, relayed by the server (Bonawitz et al. Fig. 4).

In the ShareKeys stage client ``u`` sends, for each neighbour ``v``, the ciphertext
``e_{u,v} = AES-GCM(K_{u,v}, u || v || share_v(s_u^SK) || share_v(b_u))`` through the
server, where ``K_{u,v}`` is derived from ``c_u^SK`` and ``c_v^PK`` for the purpose
``"share-encryption"`` (`securecomp.secagg.masking.share_key`). The associated data binds
the ciphertext to its session, round, owner ``u`` and holder ``v``: a ciphertext re-routed
to another holder, attributed to another owner or replayed into another round fails
authentication, and the ids inside the plaintext are checked as well (Bonawitz et al.'s
"assert u = u' and v = v'"). A share is ``limbs * 4 = 36`` bytes
(`securecomp.crypto.shamir`), so a sealed bundle is ``8 + 72 + 28 = 108`` bytes.
"""

from __future__ import annotations

import struct

from securecomp.crypto.aead import OVERHEAD_BYTES, open_sealed, seal
from securecomp.crypto.shamir import share_bytes_for
from securecomp.errors import IntegrityError, ParameterError

__all__ = ["SEALED_SHARES_BYTES", "SECRET_BYTES", "SHARE_BYTES", "open_shares", "seal_shares"]

#: Both shared secrets (an X25519 private key and a self-mask seed) are 32 bytes.
SECRET_BYTES = 32
#: One share of one 32-byte secret on the wire.
SHARE_BYTES = share_bytes_for(SECRET_BYTES)
_IDS = struct.Struct("<II")
_PLAIN_BYTES = _IDS.size + 2 * SHARE_BYTES
#: A sealed pair of shares.
SEALED_SHARES_BYTES = _PLAIN_BYTES + OVERHEAD_BYTES

_AD_TAG = b"securecomp/secagg/shares/v1"


def _associated_data(session: bytes, round: int, owner: int, holder: int) -> bytes:
    return (
        _AD_TAG
        + len(session).to_bytes(1, "big")
        + session
        + round.to_bytes(8, "big")
        + _IDS.pack(owner, holder)
    )


def seal_shares(
    key: bytes,
    *,
    session: bytes,
    round: int,
    owner: int,
    holder: int,
    sk_share: bytes,
    b_share: bytes,
) -> bytes:
    """Encrypt ``owner``'s two shares for ``holder`` (108 bytes)."""
    if len(sk_share) != SHARE_BYTES or len(b_share) != SHARE_BYTES:
        raise ParameterError(f"each share must be {SHARE_BYTES} bytes")
    plain = _IDS.pack(owner, holder) + sk_share + b_share
    return seal(key, plain, _associated_data(session, round, owner, holder))


def open_shares(
    key: bytes, blob: bytes, *, session: bytes, round: int, owner: int, holder: int
) -> tuple[bytes, bytes]:
    """Authenticate and decrypt; returns ``(sk_share, b_share)``.

    Raises
    ------
    IntegrityError
        Tampered, wrong key, or sealed for another session, round, owner or holder.
    """
    plain = open_sealed(key, blob, _associated_data(session, round, owner, holder))
    if len(plain) != _PLAIN_BYTES or _IDS.unpack_from(plain) != (owner, holder):
        raise IntegrityError(
            f"sealed shares claim another (owner, holder) than ({owner}, {holder})"
        )
    return plain[_IDS.size : _IDS.size + SHARE_BYTES], plain[_IDS.size + SHARE_BYTES :]
