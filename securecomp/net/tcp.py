"""TCP channels: one process per party, a full mesh of (TLS) connections.

Topology and handshake
----------------------
Every party has an explicit `PartyAddress`. Party ``i`` listens on its own address for
the parties with larger ids and connects to every party ``j < i`` (so each pair has one
connection, opened by the larger id). Connection attempts are retried until the
``connect_timeout`` deadline; a party that never shows up raises `PartyTimeoutError`
naming it. On each new connection the connecting side sends a hello frame
(``"SCHI" | version u8 | claimed id u32 | n_parties u32``) and the accepting side answers
with its own; with TLS, each side then checks the peer's certificate against the one
pinned for the claimed id (`securecomp.net.tls`).

Non-loopback addresses require TLS: without a `TLSConfig` the constructor refuses them
(`InsecureParameterError`), because links carry shares and seeds. On loopback without TLS
a claimed id is taken at its word (any local process could connect first); configure TLS
there too when other local users are not trusted.

I/O
---
After the handshake the connections are handed to `securecomp.net.tcpio.MeshIO`: one
thread per channel owns every socket (non-blocking, `selectors`), receives frames with
``recv_into`` into buffers of the validated declared size, sends array buffers without
copying, and on `close` flushes, half-closes and drains before closing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from securecomp.errors import (
    ChannelClosedError,
    InsecureParameterError,
    MalformedMessageError,
    ParameterError,
    PartyTimeoutError,
    PeerAuthenticationError,
)
from securecomp.net.channel import DEFAULT_TIMEOUT, Channel, Frame
from securecomp.net.stats import CommStats
from securecomp.net.tcpio import Link, MeshIO
from securecomp.net.tls import TLSConfig
from securecomp.net.wire import DEFAULT_MAX

__all__ = ["PartyAddress", "TCPChannel", "is_loopback_host"]

_HELLO = struct.Struct("<4sBII")
_HELLO_MAGIC = b"SCHI"
_HELLO_VERSION = 1
_COALESCE = 64 * 1024  # below this, head and body go out in one send
_RETRY_S = 0.05


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and literal loopback IPs (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a DNS name: treated as remote, so TLS is required


@dataclass(frozen=True)
class PartyAddress:
    """Where a party listens: ``host`` and ``port``."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ParameterError("PartyAddress.host must be a non-empty str")
        if type(self.port) is not int or not 0 < self.port < 65536:
            raise ParameterError(f"PartyAddress.port must be in 1..65535, got {self.port!r}")

    @classmethod
    def parse(cls, text: str) -> PartyAddress:
        """Parse ``"host:port"`` (``"[::1]:port"`` for IPv6)."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ParameterError(f"expected host:port, got {text!r}")
        return cls(host.strip("[]"), int(port))

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class TCPChannel(Channel):
    """A party's channel over TCP (TLS 1.3 with pinned certificates when configured).

    Parameters
    ----------
    party_id : int
        This party.
    addresses : sequence of PartyAddress
        Entry ``j`` is where party ``j`` listens (``n_parties = len(addresses)``).
    tls : TLSConfig, optional
        Required when any address is not loopback.
    timeout : float
        Default receive (and send-completion) timeout, seconds.
    connect_timeout : float
        Deadline for the whole mesh to be connected, seconds.
    stats : CommStats, optional
    max_frame_bytes : int
        Largest payload accepted from a peer.
    linger : float
        Longest `close` waits for peers to close their side.
    """

    def __init__(
        self,
        party_id: int,
        addresses: Sequence[PartyAddress],
        *,
        tls: TLSConfig | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_TIMEOUT,
        stats: CommStats | None = None,
        max_frame_bytes: int = DEFAULT_MAX,
        linger: float = 1.0,
    ) -> None:
        super().__init__(
            party_id, len(addresses), timeout=timeout, stats=stats, max_frame_bytes=max_frame_bytes
        )
        addrs = list(addresses)
        for i, a in enumerate(addrs):
            if not isinstance(a, PartyAddress):
                raise ParameterError(f"address of party {i} must be a PartyAddress, got {a!r}")
        remote = [i for i, a in enumerate(addrs) if not a.is_loopback]
        if remote and tls is None:
            raise InsecureParameterError(
                f"parties {remote} have non-loopback addresses; links carry secret shares, so "
                "pass tls=TLSConfig(...) with every peer's certificate pinned (plain TCP is "
                "allowed on loopback only)"
            )
        if tls is not None:
            missing = [p for p in self.peers if p not in tls.pinned]
            if missing:
                raise ParameterError(f"TLSConfig pins no certificate for parties {missing}")
        self._addresses = addrs
        self._tls = tls
        self._links: dict[int, Link] = {}
        self._mesh: MeshIO | None = None
        try:
            self._connect_mesh(float(connect_timeout))
            self._mesh = MeshIO(party_id, self._links, linger)
        except BaseException:
            self._abort()
            raise

    # -- establishment -------------------------------------------------------------------

    def _connect_mesh(self, connect_timeout: float) -> None:
        deadline = time.monotonic() + connect_timeout
        server_ctx = self._tls.server_context() if self._tls else None
        client_ctx = self._tls.client_context() if self._tls else None
        listener = None
        higher = [p for p in self.peers if p > self.party_id]
        if higher:
            me = self._addresses[self.party_id]
            try:
                listener = socket.create_server(
                    (me.host, me.port),
                    family=socket.AF_INET6 if ":" in me.host else socket.AF_INET,
                    backlog=len(higher),
                )
            except OSError as exc:
                raise ParameterError(
                    f"party {self.party_id} cannot listen on {me} ({exc.strerror or exc}); "
                    "free the port or configure another address"
                ) from None
        try:
            for j in (p for p in self.peers if p < self.party_id):
                self._links[j] = self._connect_to(j, client_ctx, deadline, connect_timeout)
            while listener is not None and any(p not in self._links for p in higher):
                pid, sock = self._accept_one(listener, server_ctx, deadline, connect_timeout)
                self._links[pid] = Link(pid, sock, self.max_frame_bytes)
        finally:
            if listener is not None:
                listener.close()

    def _connect_to(
        self, j: int, ctx: ssl.SSLContext | None, deadline: float, budget: float
    ) -> Link:
        addr = self._addresses[j]
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PartyTimeoutError(j, budget, f"not accepting connections at {addr}")
            try:
                raw = socket.create_connection((addr.host, addr.port), timeout=left)
                break
            except OSError:
                time.sleep(min(_RETRY_S, max(left, 0)))  # peer not listening yet: retry
        sock: socket.socket = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ctx is not None:
                sock = self._tls_handshake(ctx, raw, deadline, j, budget, server=False)
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.sendall(_HELLO.pack(_HELLO_MAGIC, _HELLO_VERSION, self.party_id, self.n_parties))
            peer = self._read_hello(sock, j, budget)
            if peer != j:
                raise PeerAuthenticationError(
                    f"the party listening at {addr} says it is party {peer}, not {j}"
                )
            if self._tls is not None and isinstance(sock, ssl.SSLSocket):
                self._tls.check_peer(sock, j)
        except ssl.SSLError as exc:
            # The peer may reject our certificate only after the handshake returned here
            # (TLS 1.3 client certificates are checked late): it shows up on first I/O.
            sock.close()
            raise PeerAuthenticationError(
                f"party {j} refused the TLS session ({exc.reason or exc}); our certificate "
                "is not the one it pinned for us"
            ) from None
        except BaseException:
            sock.close()
            raise
        return Link(j, sock, self.max_frame_bytes)

    def _accept_one(
        self, listener: socket.socket, ctx: ssl.SSLContext | None, deadline: float, budget: float
    ) -> tuple[int, socket.socket]:
        waiting = [p for p in self.peers if p > self.party_id and p not in self._links]
        left = deadline - time.monotonic()
        if left <= 0:
            raise PartyTimeoutError(waiting[0], budget, "never connected")
        listener.settimeout(left)
        try:
            raw, _ = listener.accept()
        except TimeoutError:
            raise PartyTimeoutError(waiting[0], budget, "never connected") from None
        sock: socket.socket = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ctx is not None:
                sock = self._tls_handshake(ctx, raw, deadline, waiting[0], budget, server=True)
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            pid = self._read_hello(sock, waiting[0], budget)
            if pid not in waiting:
                raise PeerAuthenticationError(
                    f"a connection claimed party id {pid}, which is not an expected peer "
                    f"(waiting for {waiting}); refusing it"
                )
            if self._tls is not None and isinstance(sock, ssl.SSLSocket):
                self._tls.check_peer(sock, pid)
            sock.sendall(_HELLO.pack(_HELLO_MAGIC, _HELLO_VERSION, self.party_id, self.n_parties))
        except ssl.SSLError as exc:
            sock.close()
            raise PeerAuthenticationError(
                f"a connecting peer broke off the TLS session ({exc.reason or exc})"
            ) from None
        except BaseException:
            sock.close()
            raise
        return pid, sock

    def _tls_handshake(
        self,
        ctx: ssl.SSLContext,
        raw: socket.socket,
        deadline: float,
        who: int,
        budget: float,
        *,
        server: bool,
    ) -> ssl.SSLSocket:
        raw.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            return ctx.wrap_socket(raw, server_side=server)
        except ssl.SSLError as exc:
            side = "a connecting peer" if server else f"party {who}"
            raise PeerAuthenticationError(
                f"mutual TLS with {side} failed ({exc.reason or exc}); its certificate is not "
                "the pinned one, or it does not pin ours"
            ) from None
        except TimeoutError:
            raise PartyTimeoutError(who, budget, "TLS handshake did not complete") from None
        except OSError as exc:
            raise ChannelClosedError(
                f"connection to party {who} failed during the TLS handshake ({exc})"
            ) from None

    def _read_hello(self, sock: socket.socket, who: int, budget: float) -> int:
        buf = bytearray(_HELLO.size)
        view, got = memoryview(buf), 0
        try:
            while got < len(buf):
                n = sock.recv_into(view[got:])
                if n == 0:
                    raise ChannelClosedError(
                        f"party {who} closed the connection during the handshake "
                        "(it may have refused our identity or certificate)"
                    )
                got += n
        except TimeoutError:
            raise PartyTimeoutError(who, budget, "no handshake") from None
        except ssl.SSLError as exc:
            raise PeerAuthenticationError(
                f"mutual TLS with party {who} failed ({exc.reason or exc}); our certificate is "
                "not the one it pinned, or its is not ours"
            ) from None
        except OSError as exc:
            raise ChannelClosedError(
                f"connection to party {who} failed during the handshake ({exc}); it may have "
                "refused our identity or certificate"
            ) from None
        magic, version, pid, n = _HELLO.unpack(buf)
        if magic != _HELLO_MAGIC or version != _HELLO_VERSION:
            raise MalformedMessageError("peer did not speak the securecomp handshake")
        if n != self.n_parties:
            raise ParameterError(
                f"peer {pid} believes the session has {n} parties, we have {self.n_parties}"
            )
        return int(pid)

    # -- Channel hooks ---------------------------------------------------------------------

    def _transmit(
        self, to: int, head: bytes, body: Sequence[bytes | memoryview], nbody: int
    ) -> None:
        if nbody < _COALESCE:
            parts = [memoryview(b"".join([head, *body]))]
        else:
            parts = [memoryview(head), *(memoryview(b).cast("B") for b in body if len(b))]
        self._io().send(to, parts, self.timeout)

    def _receive(self, frm: int, timeout: float) -> Frame:
        return self._io().receive(frm, timeout)

    def _io(self) -> MeshIO:
        if self._mesh is None:  # pragma: no cover - the constructor either sets it or raises
            raise ChannelClosedError(f"the channel of party {self.party_id} is not connected")
        return self._mesh

    def _shutdown(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
        self._abort()

    def _abort(self) -> None:
        for link in self._links.values():
            with contextlib.suppress(OSError):
                link.sock.close()
