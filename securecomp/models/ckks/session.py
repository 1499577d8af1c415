"""Keys shared once, and the roles run over `securecomp.net` channels.

`CKKSSession` is a key holder and a server after the key exchange: the key holder made its
key and sent the public context (with Galois keys, ~100 MB at N = 8192 for an 8-prime
chain, several seconds to export and load). A data owner that trains several models with
one server reuses the session: the key and the public context are made and sent once.

`serve_training` and `run_key_holder` run the two roles of training over any `Channel`
(in-process queues between threads, or TCP between processes), exchanging the same bytes as
the in-process simulation of `CKKSProtocol.fit`: the public context, the encrypted data,
then one message each way per step (gradient sum out, next weights back).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import MalformedMessageError
from securecomp.models.ckks import messages as msg
from securecomp.models.ckks.keyholder import KeyHolder, PlainBatch, RefreshChecks
from securecomp.models.ckks.server import Server
from securecomp.models.gd import GDConfig, Step
from securecomp.net.channel import Channel
from securecomp.params import CKKSParameters

__all__ = [
    "TAG_CONTEXT",
    "TAG_DATA",
    "TAG_REPLY",
    "TAG_STEP",
    "CKKSSession",
    "run_key_holder",
    "serve_training",
]

TAG_CONTEXT = "ckks.context"
TAG_DATA = "ckks.fit.data"
TAG_STEP = "ckks.fit.step"
TAG_REPLY = "ckks.fit.reply"


@dataclass
class CKKSSession:
    """A key holder and a server that share a key (public context sent once).

    Attributes
    ----------
    key_holder : KeyHolder
    server : Server
    context_bytes : int
        Size of the public context the key holder sent.
    seconds : dict
        Time of key generation, export and import.
    """

    key_holder: KeyHolder
    server: Server
    context_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def establish(cls, params: CKKSParameters) -> CKKSSession:
        """Generate the key holder's key and hand the server its public context (bytes)."""
        t0 = time.perf_counter()
        kh = KeyHolder.generate(params)
        t1 = time.perf_counter()
        public = kh.public_context()
        t2 = time.perf_counter()
        server = Server(public)
        t3 = time.perf_counter()
        return cls(
            kh,
            server,
            len(public),
            {"keygen": t1 - t0, "export public context": t2 - t1, "load public context": t3 - t2},
        )

    @property
    def params(self) -> CKKSParameters:
        return self.key_holder.params

    def __deepcopy__(self, memo: dict[int, object]) -> CKKSSession:
        # A session is a handle on keys held by two roles, not a value: copies (e.g. by
        # scikit-learn's clone of an estimator's backend_options) share it. Key material
        # is never duplicated in memory, and never pickled.
        return self

    def __copy__(self) -> CKKSSession:
        return self


def serve_training(channel: Channel, key_holder: int) -> Server:
    """The server's side of training over ``channel`` (the key holder is party ``key_holder``).

    Receives the public context and the encrypted data, trains, and refreshes through the
    channel; returns the server (holding only public material). On any error the channel is
    closed so that the key holder stops waiting.
    """
    try:
        context = channel.recv(key_holder, tag=TAG_CONTEXT)
        server = Server(_as_bytes(context))
        server.load_training(_as_bytes(channel.recv(key_holder, tag=TAG_DATA)))

        def transport(data: bytes) -> bytes:
            channel.send(key_holder, data, tag=TAG_STEP)
            return _as_bytes(channel.recv(key_holder, tag=TAG_REPLY))

        server.train(transport)
        return server
    except BaseException:
        channel.close()
        raise


def run_key_holder(
    channel: Channel,
    server: int,
    key_holder: KeyHolder,
    batches: list[PlainBatch],
    cfg: GDConfig,
    checks: RefreshChecks,
    steps: list[Step],
) -> NDArray[np.float64]:
    """The key holder's side of training over ``channel``; returns the decrypted weights."""
    try:
        channel.send(server, key_holder.public_context(), tag=TAG_CONTEXT)
        channel.send(server, key_holder.begin_fit(batches, cfg, checks, steps), tag=TAG_DATA)
        while True:
            reply = key_holder.handle(_as_bytes(channel.recv(server, tag=TAG_STEP)))
            channel.send(server, reply, tag=TAG_REPLY)
            if msg.kind_of(reply) == msg.FIT_ACK:
                return key_holder.weights()
    except BaseException:
        channel.close()
        raise


def _as_bytes(payload: object) -> bytes:
    if not isinstance(payload, bytes):
        raise MalformedMessageError(f"expected a bytes message, got {type(payload).__name__}")
    return payload
