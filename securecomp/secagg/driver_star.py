"""Star-shaped TCP channels for secure aggregation: one server, ``n`` clients, loopback.

Secure aggregation is a star: clients talk only to the server (their sealed shares for
each other travel through it). `securecomp.net.tcp.TCPChannel` builds a full mesh, which
would open ``n^2 / 2`` useless client-to-client connections and make every client wait
for every other, so this module connects a star over the same machinery: the same frame
format, accounting (`securecomp.net.channel.Channel`) and I/O engine
(`securecomp.net.tcpio.MeshIO`). Party ids on the wire: the server is party 0 and client
``u`` is party ``u + 1``.

Handshake: the client connects and sends ``"SAHI" | version u8 | client id u32 |
configuration fingerprint (32 bytes)``; the server accepts it if the id is in range, not
already connected, and the fingerprint is its own, and otherwise closes the connection.
Clients that do not connect before the server's ``connect_timeout`` simply are not
connected: the protocol counts them as dropouts at the first stage.

Loopback only, without TLS: every address must be loopback (`InsecureParameterError`
otherwise). What crosses these links is what the semi-honest server sees anyway (public
keys, shares sealed between clients under keys it does not have, masked inputs, the
shares it is entitled to), but on a shared host any local process could claim a client id
before the real client connects, making that client a dropout.

Accounting: besides its own `CommStats`, the server's channel keeps one per client
(``client_stats``) recording, from the server's end of each link, exactly the frames that
client sent and received (frames are counted whole, so both ends count the same bytes),
attributed to the server's current phase.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Sequence

from securecomp.errors import (
    ChannelClosedError,
    InsecureParameterError,
    ParameterError,
    PartyTimeoutError,
)
from securecomp.net.channel import DEFAULT_TIMEOUT, FRAME_HEAD, Channel, Frame
from securecomp.net.stats import CommStats
from securecomp.net.tcp import PartyAddress
from securecomp.net.tcpio import Link, MeshIO
from securecomp.net.wire import DEFAULT_MAX
from securecomp.secagg.messages import SERVER

__all__ = ["HELLO", "StarClientChannel", "StarServerChannel", "loopback_listener"]

#: The client's hello: magic, version, client id, configuration fingerprint.
HELLO = struct.Struct("<4sBI32s")
_MAGIC = b"SAHI"
_VERSION = 1
_RETRY_S = 0.05
_COALESCE = 64 * 1024  # below this, head and body go out in one send


def loopback_listener(backlog: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on an OS-chosen loopback port (no race for a "free" port)."""
    address = PartyAddress(host, 1)  # port checked later; this validates the host
    if not address.is_loopback:
        raise InsecureParameterError(
            f"the secure-aggregation TCP driver listens on loopback only, got {host!r}; a "
            "deployment across hosts needs authenticated (TLS) links"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, 0), family=family, backlog=max(backlog, 1))


def _transmit(
    io: MeshIO, to: int, head: bytes, body: Sequence[bytes | memoryview], nbody: int, t: float
) -> None:
    if nbody < _COALESCE:
        parts = [memoryview(b"".join([head, *body]))]
    else:
        parts = [memoryview(head), *(memoryview(b).cast("B") for b in body if len(b))]
    io.send(to, parts, t)


class StarServerChannel(Channel):
    """The server's end of the star: accepts up to ``n_clients`` clients, then serves them.

    Invariant: ``client_stats[u]`` counts exactly the frames exchanged with client ``u``,
    as sent by ``u`` and received by ``u``.

    Parameters
    ----------
    listener : socket.socket
        A listening loopback socket (see `loopback_listener`); not closed here.
    n_clients : int
        Clients ``0 .. n_clients - 1``.
    fingerprint : bytes
        The configuration fingerprint every client must present.
    connect_timeout : float
        Seconds to wait for all clients to connect; whoever is missing then is left out.
    timeout : float
        Default receive and send timeout.
    """

    def __init__(
        self,
        listener: socket.socket,
        n_clients: int,
        fingerprint: bytes,
        *,
        connect_timeout: float = DEFAULT_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT,
        max_frame_bytes: int = DEFAULT_MAX,
        linger: float = 1.0,
    ) -> None:
        super().__init__(
            0,
            n_clients + 1,
            timeout=timeout,
            stats=CommStats(SERVER),
            max_frame_bytes=max_frame_bytes,
        )
        if len(fingerprint) != 32:
            raise ParameterError("the configuration fingerprint is 32 bytes")
        self._fingerprint = fingerprint
        self._links: dict[int, Link] = {}
        self.client_stats: dict[int, CommStats] = {u: CommStats(u) for u in range(n_clients)}
        self._mesh: MeshIO | None = None
        try:
            self._accept_all(listener, float(connect_timeout))
            self._mesh = MeshIO(0, self._links, linger)
        except BaseException:
            self._abort()
            raise

    @property
    def connected(self) -> frozenset[int]:
        """Client ids that completed the handshake."""
        return frozenset(p - 1 for p in self._links)

    def _accept_all(self, listener: socket.socket, budget: float) -> None:
        deadline = time.monotonic() + budget
        n = self.n_parties - 1
        while len(self._links) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            listener.settimeout(left)
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                return
            party = self._handshake(raw, min(left, 5.0))
            if party is None:
                with contextlib.suppress(OSError):
                    raw.close()
            else:
                self._links[party] = Link(party, raw, self.max_frame_bytes)

    def _handshake(self, raw: socket.socket, budget: float) -> int | None:
        buf = bytearray(HELLO.size)
        view, got = memoryview(buf), 0
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(max(budget, 0.001))
            while got < len(buf):
                k = raw.recv_into(view[got:])
                if k == 0:
                    return None
                got += k
        except OSError:  # includes a timeout: a connection that says nothing is refused
            return None
        magic, version, cid, fp = HELLO.unpack(buf)
        party = cid + 1
        if (
            magic != _MAGIC
            or version != _VERSION
            or fp != self._fingerprint
            or not 1 <= party < self.n_parties
            or party in self._links
        ):
            return None
        return int(party)

    # -- Channel hooks -------------------------------------------------------------------

    def _transmit(
        self, to: int, head: bytes, body: Sequence[bytes | memoryview], nbody: int
    ) -> None:
        if to not in self._links:
            raise ChannelClosedError(f"client {to - 1} never connected")
        _transmit(self._io(), to, head, body, nbody, self.timeout)
        _, _, _, tag_len, depth, _ = FRAME_HEAD.unpack_from(head)
        tag = head[FRAME_HEAD.size : FRAME_HEAD.size + tag_len].decode()
        mirror = self.client_stats[to - 1]
        with mirror.phase(self.stats.current_phase):
            mirror.record_recv(SERVER, len(head) + nbody, tag, depth)

    def _receive(self, frm: int, timeout: float) -> Frame:
        if frm not in self._links:
            raise ChannelClosedError(f"client {frm - 1} never connected")
        frame = self._io().receive(frm, timeout)
        mirror = self.client_stats[frm - 1]
        with mirror.phase(self.stats.current_phase):
            mirror.record_send(SERVER, frame.nbytes, frame.tag)
        return frame

    def _io(self) -> MeshIO:
        if self._mesh is None:  # pragma: no cover - the constructor sets it or raises
            raise ChannelClosedError("the server channel is not connected")
        return self._mesh

    def _shutdown(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
        self._abort()

    def _abort(self) -> None:
        for link in self._links.values():
            with contextlib.suppress(OSError):
                link.sock.close()


class StarClientChannel(Channel):
    """A client's end of the star: one link, to the server (party 0; the client is 1).

    Parameters
    ----------
    client_id : int
        The client's protocol id (sent in the handshake).
    server : PartyAddress
        Where the server listens (loopback only).
    fingerprint : bytes
        The configuration fingerprint (32 bytes).
    connect_timeout : float
        Seconds to keep retrying the connection.
    """

    def __init__(
        self,
        client_id: int,
        server: PartyAddress,
        fingerprint: bytes,
        *,
        connect_timeout: float = DEFAULT_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT,
        max_frame_bytes: int = DEFAULT_MAX,
        linger: float = 1.0,
    ) -> None:
        super().__init__(
            1, 2, timeout=timeout, stats=CommStats(client_id), max_frame_bytes=max_frame_bytes
        )
        if not server.is_loopback:
            raise InsecureParameterError(
                f"the secure-aggregation TCP driver connects on loopback only, got {server}"
            )
        if len(fingerprint) != 32 or not 0 <= client_id < (1 << 32) - 1:
            raise ParameterError("client id must fit u32 and the fingerprint be 32 bytes")
        sock = self._connect(server, float(connect_timeout))
        try:
            sock.sendall(HELLO.pack(_MAGIC, _VERSION, client_id, fingerprint))
        except OSError as exc:
            sock.close()
            raise ChannelClosedError(
                f"the server at {server} closed the connection: {exc}"
            ) from None
        self._sock = sock
        self._mesh = MeshIO(1, {0: Link(0, sock, max_frame_bytes)}, linger)

    @staticmethod
    def _connect(server: PartyAddress, budget: float) -> socket.socket:
        deadline = time.monotonic() + budget
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PartyTimeoutError(SERVER, budget, f"not accepting connections at {server}")
            try:
                sock = socket.create_connection((server.host, server.port), timeout=left)
                break
            except OSError:
                time.sleep(min(_RETRY_S, max(left, 0)))  # server not listening yet: retry
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _transmit(
        self, to: int, head: bytes, body: Sequence[bytes | memoryview], nbody: int
    ) -> None:
        _transmit(self._mesh, to, head, body, nbody, self.timeout)

    def _receive(self, frm: int, timeout: float) -> Frame:
        return self._mesh.receive(frm, timeout)

    def _shutdown(self) -> None:
        self._mesh.close()
