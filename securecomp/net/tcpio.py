"""The I/O engine of `securecomp.net.tcp`: one thread multiplexing a party's connections.

After the handshake every socket of a channel becomes non-blocking and is owned by one
thread (`selectors`). Only that thread touches a socket, which also keeps each TLS
connection single-threaded, as OpenSSL requires of an ``SSL`` object.

* Receiving: a frame head is read and validated first (`parse_frame_head`: caps before
  allocation), then the tag, then the payload with ``recv_into`` directly into a fresh
  buffer of the declared size, which the receiver then owns. Complete frames are queued
  per peer; a reader waits on that queue with its own timeout.
* Sending: the caller hands over the frame head and a memoryview of the payload (no copy
  of the array) and waits until the I/O thread has handed the last byte to the kernel,
  so the caller may modify its array as soon as the send returns.
* Closing: flush, half-close every link, drain incoming data until each peer has closed
  too or ``linger`` seconds pass (closing with unread data makes the kernel reset the
  connection, which can destroy data the peer has not read yet), then stop the thread.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from securecomp.errors import ChannelClosedError, MalformedMessageError, PartyTimeoutError
from securecomp.net.channel import FRAME_HEAD, Frame, decode_tag, parse_frame_head

__all__ = ["Link", "MeshIO"]

_TLS_CHUNK = 1 << 20  # bound each TLS write so a write retried after WANT_WRITE is small
_SELECT_S = 0.2


class _Closed:
    """End of a link, queued after the last frame of a peer."""

    def __init__(self, error: Exception) -> None:
        self.error = error


@dataclass
class _Outgoing:
    parts: list[memoryview]
    index: int = 0
    offset: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


class Link:
    """One connection: its socket, incoming frame parser and queues."""

    def __init__(self, peer: int, sock: socket.socket, max_frame: int) -> None:
        self.peer = peer
        self.sock = sock
        self.max_frame = max_frame
        self.inbox: queue.SimpleQueue[Frame | _Closed] = queue.SimpleQueue()
        self.outq: deque[_Outgoing] = deque()
        self.read_open = True
        self.write_open = True
        self.mask = 0
        self._head = bytearray(FRAME_HEAD.size)
        self._stage = 0  # 0: head, 1: tag, 2: payload
        self._buf: bytearray | memoryview = self._head
        self._filled = 0
        self._meta: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._tag = ""

    def target(self) -> memoryview:
        """Where the next received bytes go."""
        return memoryview(self._buf)[self._filled :]

    def consumed(self, n: int) -> None:
        """Account ``n`` bytes read into `target`; completes stages (and frames)."""
        self._filled += n
        while self._filled == len(self._buf):
            if self._stage == 0:
                self._meta = parse_frame_head(self._head, self.max_frame)
                self._stage, self._buf = 1, bytearray(self._meta[1])
            elif self._stage == 1:
                self._tag = decode_tag(self._buf)
                # A fresh buffer per message (the receiver will own it); np.empty skips the
                # zero-fill of a bytearray, since recv_into overwrites every byte.
                self._stage, self._buf = 2, np.empty(self._meta[3], np.uint8).data
            else:
                ptype, _, depth, _ = self._meta
                self.inbox.put(Frame(ptype, self._tag, depth, self._buf))
                self._stage, self._buf = 0, self._head
            self._filled = 0

    @property
    def mid_frame(self) -> bool:
        return self._stage != 0 or self._filled != 0


class MeshIO:
    """The I/O thread of one party and its connected links (keyed by peer id)."""

    def __init__(self, party: int, links: Mapping[int, Link], linger: float) -> None:
        self.party = party
        self.links = dict(links)
        self.linger = linger
        self._lock = threading.Lock()
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel = selectors.DefaultSelector()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        for link in self.links.values():
            link.sock.setblocking(False)
            link.mask = selectors.EVENT_READ
            self._sel.register(link.sock, link.mask, link)
        self._thread = threading.Thread(
            target=self._main, name=f"securecomp-tcp-io-{party}", daemon=True
        )
        self._thread.start()

    # -- called from the channel's threads ------------------------------------------------

    def send(self, peer: int, parts: list[memoryview], timeout: float) -> None:
        """Queue ``parts`` for ``peer`` and wait until all of it reached the kernel."""
        link = self.links[peer]
        item = _Outgoing(parts)
        with self._lock:
            if not link.write_open:
                raise ChannelClosedError(f"the link to party {peer} is closed; cannot send")
            link.outq.append(item)
        self._wake()
        if not item.done.wait(timeout):
            # The peer stopped reading: the frame may be half sent, the stream is unusable.
            self._fail_sends(link, ChannelClosedError(f"send to party {peer} timed out"))
            self._wake()
            raise PartyTimeoutError(peer, timeout, "it stopped reading our messages")
        if item.error is not None:
            raise item.error

    def receive(self, peer: int, timeout: float) -> Frame:
        """Next complete frame from ``peer``."""
        link = self.links[peer]
        try:
            item = link.inbox.get(timeout=timeout)
        except queue.Empty:
            raise PartyTimeoutError(peer, timeout, f"waited by party {self.party}") from None
        if isinstance(item, _Closed):
            link.inbox.put(item)  # every later receive fails the same way
            raise item.error
        return item

    def close(self) -> None:
        """Flush, half-close, drain (up to ``linger``), stop the thread, close sockets."""
        self._stopping = True
        self._wake()
        self._thread.join(self.linger + 5.0)
        for link in self.links.values():
            with contextlib.suppress(OSError):
                link.sock.close()
        for s in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                s.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full wake pipe already wakes the thread
            self._wake_w.send(b"\0")

    # -- the I/O thread -------------------------------------------------------------------

    def _main(self) -> None:
        reason = "it was closed"
        try:
            self._loop()
        except Exception as exc:  # an OS failure or a bug: fail every waiter, never hang
            reason = f"of an internal error: {exc!r}"
        finally:
            self._fail_all(
                ChannelClosedError(f"I/O of party {self.party} stopped because {reason}")
            )
            self._sel.close()

    def _loop(self) -> None:
        linger_deadline: float | None = None
        while True:
            if self._stopping:
                if linger_deadline is None:
                    linger_deadline = time.monotonic() + self.linger
                for link in self.links.values():
                    if link.write_open and not link.outq:
                        link.write_open = False
                        with contextlib.suppress(OSError):
                            link.sock.shutdown(socket.SHUT_WR)
                if all(not lk.read_open for lk in self.links.values()):
                    return
                if time.monotonic() >= linger_deadline:
                    return
            self._update_masks()
            woken = False
            for key, events in self._sel.select(timeout=_SELECT_S):
                link = key.data
                if link is None:
                    woken = True
                    with contextlib.suppress(OSError):
                        while self._wake_r.recv(4096):
                            pass
                    continue
                if events & selectors.EVENT_READ:
                    self._on_readable(link)
                if events & selectors.EVENT_WRITE:
                    self._on_writable(link)
            if woken:
                # A send was queued: the socket is most likely writable right now, so try
                # before paying another select round trip.
                for link in self.links.values():
                    if link.write_open:
                        self._on_writable(link)

    def _update_masks(self) -> None:
        for link in self.links.values():
            with self._lock:
                want_write = bool(link.outq) and link.write_open
            mask = (selectors.EVENT_READ if link.read_open else 0) | (
                selectors.EVENT_WRITE if want_write else 0
            )
            if mask != link.mask:
                if link.mask and mask:
                    self._sel.modify(link.sock, mask, link)
                elif mask:
                    self._sel.register(link.sock, mask, link)
                else:
                    self._sel.unregister(link.sock)
                link.mask = mask

    def _on_readable(self, link: Link) -> None:
        scratch = bytearray(65536) if self._stopping else None
        while link.read_open:
            # After close() the bytes are only drained: nobody will read them any more.
            view = memoryview(scratch) if scratch is not None else link.target()
            try:
                n = link.sock.recv_into(view)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                n = 0  # the peer ended TLS (with or without close_notify): end of stream
            except OSError as exc:
                self._end_read(link, ChannelClosedError(f"link to party {link.peer} failed: {exc}"))
                return
            if n == 0:
                detail = " in the middle of a message" if link.mid_frame else ""
                self._end_read(
                    link, ChannelClosedError(f"party {link.peer} closed the connection{detail}")
                )
                return
            if scratch is not None:
                continue
            try:
                link.consumed(n)
            except MalformedMessageError as exc:
                # A stream that broke framing cannot be resynchronized: close the link.
                self._end_read(link, exc)
                return

    def _end_read(self, link: Link, error: Exception) -> None:
        link.read_open = False
        link.inbox.put(_Closed(error))
        if not self._stopping:
            # The peer is gone (or broke framing): sends to it can no longer succeed.
            self._fail_sends(link, ChannelClosedError(f"party {link.peer} closed its channel"))

    def _on_writable(self, link: Link) -> None:
        tls = isinstance(link.sock, ssl.SSLSocket)
        while True:
            with self._lock:
                if not link.outq:
                    return
                item = link.outq[0]
            part = item.parts[item.index]
            # On WANT_WRITE the same bytes are offered again next time (same offset).
            view = part[item.offset : item.offset + _TLS_CHUNK] if tls else part[item.offset :]
            try:
                n = link.sock.send(view)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            except OSError as exc:
                self._fail_sends(
                    link, ChannelClosedError(f"link to party {link.peer} failed: {exc}")
                )
                return
            item.offset += n
            if item.offset == len(part):
                item.index, item.offset = item.index + 1, 0
                if item.index == len(item.parts):
                    with self._lock:
                        link.outq.popleft()
                    item.done.set()

    def _fail_sends(self, link: Link, error: Exception) -> None:
        """Fail every queued send and close the write side (no later send is accepted)."""
        with self._lock:
            link.write_open = False
            pending, link.outq = list(link.outq), deque()
        for item in pending:
            item.error = error
            item.done.set()

    def _fail_all(self, error: Exception) -> None:
        for link in self.links.values():
            self._fail_sends(link, error)
            if link.read_open:
                link.read_open = False
                link.inbox.put(_Closed(error))
