"""One client facing the real messages of a live round: a harness to measure a client alone.

Timing one client of an n-client round should not pay for the other n - 1 clients. A
`PreparedClient` gives client ``u`` of a configuration peers with real X25519 key pairs and
real Shamir shares of their two secrets at ``u``'s evaluation point (polynomials of degree
``t - 1`` with random coefficients from AES-CTR, evaluated at ``u + 1`` only: the other
holders' shares are never needed), and builds the server messages ``u`` would receive with
everyone alive, sealed exactly as the peers' `SecAggClient`s would seal them. Benchmarks and
the paper reproductions drive `SecAggClient` against them. Nothing here is part of a
protocol run; the peers' secrets are fresh per instance and never leave it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from securecomp.crypto.prg import AesCtrPrg
from securecomp.crypto.shamir import FIELD_PRIME, evaluate_polynomials, secrets_to_limbs
from securecomp.crypto.x25519 import X25519KeyPair
from securecomp.secagg.client import SecAggClient
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.masking import share_key
from securecomp.secagg.messages import (
    SERVER,
    AdvertiseKeys,
    Header,
    KeysBroadcast,
    SharesDelivery,
    UnmaskRequest,
    decode_message,
    encode_message,
)
from securecomp.secagg.shares import seal_shares

__all__ = ["PreparedClient", "run_client"]


@dataclass(frozen=True)
class _Peer:
    c: X25519KeyPair
    s: X25519KeyPair
    sk_share: bytes  # the peer's share of its s^SK for our client (a real Shamir share)
    b_share: bytes  # ... and of its self-mask secret b


class PreparedClient:
    """Client ``u`` of ``cfg`` and the server messages it would receive in a live round.

    Parameters
    ----------
    cfg : SecAggConfig
    u : int
        The client's id.
    values : ndarray
        Its quantized input.
    """

    def __init__(self, cfg: SecAggConfig, u: int, values: npt.NDArray[np.unsignedinteger]):
        self.cfg, self.u, self.values = cfg, u, values
        self.ids = cfg.graph.closed_neighbourhood(u)
        self.others = tuple(v for v in self.ids if v != u)
        prg = AesCtrPrg.from_random()
        t = cfg.threshold
        self.peers: dict[int, _Peer] = {}
        for v in self.others:
            c, s = X25519KeyPair.generate(), X25519KeyPair.generate()
            limbs = secrets_to_limbs([s.private_bytes(), secrets.token_bytes(32)]).reshape(-1)
            coeffs = np.empty((t, limbs.size), dtype=np.uint64)
            coeffs[0] = limbs
            coeffs[1:] = prg.random_below(FIELD_PRIME, (t - 1, limbs.size))
            share = evaluate_polynomials(coeffs, [u + 1]).astype("<u4").reshape(2, -1)
            self.peers[v] = _Peer(c, s, share[0].tobytes(), share[1].tobytes())

    def _header(self) -> Header:
        cfg = self.cfg
        return Header(cfg.session, 0, SERVER, self.u, cfg.fingerprint)

    def server_messages(self, adv: AdvertiseKeys) -> tuple[bytes, bytes, bytes]:
        """The encoded key broadcast, sealed shares and unmask request for ``u``'s ``adv``."""
        cfg, u = self.cfg, self.u
        cp = tuple(adv.c_public if v == u else self.peers[v].c.public_bytes for v in self.ids)
        sp = tuple(adv.s_public if v == u else self.peers[v].s.public_bytes for v in self.ids)
        sealed = []
        for v in self.others:
            p = self.peers[v]
            k = share_key(p.c, adv.c_public, session=cfg.session, round=0, me=v, peer=u)
            sealed.append(
                seal_shares(
                    k, session=cfg.session, round=0, owner=v, holder=u,
                    sk_share=p.sk_share, b_share=p.b_share,
                )
            )
        return (
            encode_message(KeysBroadcast(self._header(), self.ids, cp, sp)),
            encode_message(SharesDelivery(self._header(), self.others, tuple(sealed))),
            encode_message(UnmaskRequest(self._header(), self.ids)),
        )

    def new_round(self) -> tuple[SecAggClient, AdvertiseKeys, tuple[bytes, bytes, bytes]]:
        """A fresh client after stage 1, and the encoded server messages of stages 2-4."""
        client = SecAggClient(self.cfg, self.u, self.values)
        adv = client.advertise_keys()
        return client, adv, self.server_messages(adv)


def run_client(client: SecAggClient, wire: Sequence[bytes]) -> list[bytes]:
    """The client's stages 2-4: decode each server message, handle it, encode the reply."""
    return [encode_message(client.handle(decode_message(data))) for data in wire]  # type: ignore[arg-type]
