"""In-process channels: ``n`` parties as threads of one process (a simulation).

Running all parties in one process is a simulation of a deployment, not one: it shows the
protocol's messages and costs but gives no isolation between parties. The links are
honest about cost and semantics all the same: every message is serialized into a fresh
buffer exactly as TCP would frame it (same head, tag and payload bytes, so `CommStats`
counts the same bytes), and the receiver decodes its own copy (no shared references).

Each directed link ``i → j`` is a FIFO `queue.SimpleQueue`; sends never block.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Final, cast

import numpy as np

from securecomp.errors import (
    ChannelClosedError,
    MalformedMessageError,
    ParameterError,
    PartyTimeoutError,
)
from securecomp.net.channel import (
    DEFAULT_TIMEOUT,
    FRAME_HEAD,
    Channel,
    Frame,
    decode_tag,
    parse_frame_head,
)
from securecomp.net.stats import CommStats
from securecomp.net.wire import DEFAULT_MAX

__all__ = ["InProcessChannel", "make_inprocess_channels"]

_CLOSED: Final = object()  # end-of-link marker a closing party leaves in its outgoing queues


class _Hub:
    """The links shared by the channels of one simulated session."""

    def __init__(self, n: int) -> None:
        self.links: dict[tuple[int, int], queue.SimpleQueue[object]] = {
            (i, j): queue.SimpleQueue() for i in range(n) for j in range(n) if i != j
        }
        self.closed = [False] * n
        self.lock = threading.Lock()


class InProcessChannel(Channel):
    """One party's endpoint on an in-process hub; create them with `make_inprocess_channels`."""

    def __init__(
        self,
        hub: _Hub,
        party_id: int,
        n_parties: int,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        stats: CommStats | None = None,
        max_frame_bytes: int = DEFAULT_MAX,
    ) -> None:
        super().__init__(
            party_id, n_parties, timeout=timeout, stats=stats, max_frame_bytes=max_frame_bytes
        )
        self._hub = hub

    def _transmit(
        self, to: int, head: bytes, body: Sequence[bytes | memoryview], nbody: int
    ) -> None:
        if self._hub.closed[to]:
            raise ChannelClosedError(f"party {to} has closed its channel; cannot send to it")
        # One copy into a buffer the receiver will own: value semantics, honest costs.
        payload = np.empty(nbody, np.uint8).data
        pos = 0
        for part in body:
            payload[pos : pos + len(part)] = part
            pos += len(part)
        self._hub.links[(self.party_id, to)].put((head, payload))

    def _receive(self, frm: int, timeout: float) -> Frame:
        link = self._hub.links[(frm, self.party_id)]
        try:
            item = link.get(timeout=timeout)
        except queue.Empty:
            raise PartyTimeoutError(frm, timeout, f"waited by party {self.party_id}") from None
        if item is _CLOSED:
            link.put(_CLOSED)  # keep the link closed for any later receive
            raise ChannelClosedError(
                f"party {frm} closed its channel while party {self.party_id} expected a message"
            )
        head, payload = cast(tuple[bytes, memoryview], item)
        ptype, tag_len, depth, length = parse_frame_head(
            head[: FRAME_HEAD.size], self.max_frame_bytes
        )
        if len(head) != FRAME_HEAD.size + tag_len or len(payload) != length:
            raise MalformedMessageError("frame lengths disagree with its head")
        return Frame(ptype, decode_tag(head[FRAME_HEAD.size :]), depth, payload)

    def _shutdown(self) -> None:
        with self._hub.lock:
            self._hub.closed[self.party_id] = True
        for p in self.peers:
            self._hub.links[(self.party_id, p)].put(_CLOSED)


def make_inprocess_channels(
    n: int, *, timeout: float = DEFAULT_TIMEOUT, max_frame_bytes: int = DEFAULT_MAX
) -> list[InProcessChannel]:
    """Create the ``n`` connected endpoints of a simulated session (index = party id).

    Parameters
    ----------
    n : int
        Number of parties (≥ 2).
    timeout : float
        Default receive timeout of every endpoint, seconds.

    Returns
    -------
    list of InProcessChannel
        Give entry ``i`` to the thread playing party ``i``.
    """
    if type(n) is not int or n < 2:
        raise ParameterError(f"a session needs at least 2 parties, got {n!r}")
    hub = _Hub(n)
    return [
        InProcessChannel(hub, i, n, timeout=timeout, max_frame_bytes=max_frame_bytes)
        for i in range(n)
    ]
