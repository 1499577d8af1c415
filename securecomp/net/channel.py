"""The `Channel` interface: tagged, counted, FIFO point-to-point messages between parties.

A channel belongs to one party of an ``n``-party session (ids ``0..n-1``). Transports (the
in-process hub, TCP, TCP+TLS) only move *frames*; this base class owns serialization, the
frame format, tag checking and communication accounting, so every transport counts the
same bytes for the same program.

Frame format (all integers little-endian)::

    "SF" | version u8 = 1 | payload type u8 | tag length u16 | depth u32 | payload length u64
    | tag (UTF-8) | payload

Payload types: raw bytes, a numpy array (`securecomp.net.wire.encode_array` layout) or an
`Envelope` (`encode_envelope`). The *depth* is the Lamport layer of the message
(`securecomp.net.stats`). The *tag* names the protocol step (``"beaver.open"``); a receiver
states the tag it expects and a mismatch is reported as desynchronization rather than
silently misinterpreted.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import numpy as np

from securecomp.errors import (
    ChannelClosedError,
    MalformedMessageError,
    ParameterError,
    ShapeMismatchError,
)
from securecomp.net.stats import CommStats
from securecomp.net.wire import (
    DEFAULT_MAX,
    Envelope,
    array_parts,
    decode_array,
    decode_envelope,
    encode_envelope,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "FRAME_HEAD",
    "Channel",
    "Frame",
    "Payload",
    "parse_frame_head",
]

#: Default receive timeout of a channel, in seconds.
DEFAULT_TIMEOUT: Final = 30.0

FRAME_HEAD: Final = struct.Struct("<2sBBHIQ")
_FRAME_MAGIC = b"SF"
_FRAME_VERSION = 1
_MAX_TAG_BYTES = 255

PT_BYTES: Final = 1
PT_ARRAY: Final = 2
PT_ENVELOPE: Final = 3
_PAYLOAD_TYPES = {PT_BYTES: "bytes", PT_ARRAY: "array", PT_ENVELOPE: "envelope"}

#: What a channel carries.
Payload = bytes | np.ndarray[Any, Any] | Envelope


@dataclass(frozen=True, slots=True)
class Frame:
    """One received frame, as a transport hands it to `Channel`."""

    ptype: int
    tag: str
    depth: int
    payload: bytes | bytearray | memoryview

    @property
    def nbytes(self) -> int:
        """Bytes this frame occupied on the link (head, tag and payload)."""
        return FRAME_HEAD.size + len(self.tag.encode()) + len(self.payload)


def parse_frame_head(
    head: bytes | bytearray | memoryview, max_frame_bytes: int
) -> tuple[int, int, int, int]:
    """Validate a frame head; returns ``(payload type, tag length, depth, payload length)``.

    Raises
    ------
    MalformedMessageError
        Wrong magic or version, unknown payload type, or a length over the caps (checked
        before anything is allocated for the body).
    """
    if len(head) != FRAME_HEAD.size:
        raise MalformedMessageError(f"frame head must be {FRAME_HEAD.size} bytes")
    magic, version, ptype, tag_len, depth, length = FRAME_HEAD.unpack(head)
    if magic != _FRAME_MAGIC:
        raise MalformedMessageError("bad frame magic: the stream is desynchronized or foreign")
    if version != _FRAME_VERSION:
        raise MalformedMessageError(
            f"unsupported frame version {version}; this build speaks {_FRAME_VERSION}"
        )
    if ptype not in _PAYLOAD_TYPES:
        raise MalformedMessageError(f"unknown frame payload type {ptype}")
    if tag_len > _MAX_TAG_BYTES:
        raise MalformedMessageError(f"frame tag of {tag_len} bytes exceeds {_MAX_TAG_BYTES}")
    if length > max_frame_bytes:
        raise MalformedMessageError(
            f"frame declares a {length}-byte payload, over the {max_frame_bytes}-byte cap"
        )
    return ptype, tag_len, depth, length


def decode_tag(raw: bytes | bytearray | memoryview) -> str:
    """Decode a frame tag (strict UTF-8)."""
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessageError("frame tag is not valid UTF-8") from None


def _encode_tag(tag: str) -> bytes:
    if not isinstance(tag, str) or not tag:
        raise ParameterError("a message tag must be a non-empty str such as 'beaver.open'")
    raw = tag.encode("utf-8")
    if len(raw) > _MAX_TAG_BYTES:
        raise ParameterError(f"message tag longer than {_MAX_TAG_BYTES} UTF-8 bytes")
    return raw


def _serialize(obj: Payload) -> tuple[int, list[bytes | memoryview], int]:
    if isinstance(obj, bytes | bytearray | memoryview):
        mv = memoryview(obj).cast("B")
        return PT_BYTES, [mv], len(mv)
    if isinstance(obj, np.ndarray | np.generic):
        head, data = array_parts(np.asarray(obj))
        return PT_ARRAY, [head, data], len(head) + len(data)
    if isinstance(obj, Envelope):
        enc = encode_envelope(obj)
        return PT_ENVELOPE, [enc], len(enc)
    raise ParameterError(
        f"cannot send a {type(obj).__name__}: channels carry bytes, numpy arrays and Envelopes"
    )


class Channel(ABC):
    """One party's endpoint of a session.

    Invariants: messages on each directed link arrive in the order sent; every receive
    returns within its timeout or raises `PartyTimeoutError` naming the silent party;
    every byte put on a link is counted in `stats` (sent on one side, received on the
    other). Received arrays are fresh objects the receiver may modify (value semantics:
    a sender's later changes never reach the receiver).

    Parameters
    ----------
    party_id : int
        This party, in ``range(n_parties)``.
    n_parties : int
        Number of parties in the session (≥ 2).
    timeout : float
        Default receive timeout in seconds.
    stats : CommStats, optional
        Counter to record into (share one between a party's channels to count them
        together); a fresh one by default.
    max_frame_bytes : int
        Largest payload accepted from a peer.
    """

    def __init__(
        self,
        party_id: int,
        n_parties: int,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        stats: CommStats | None = None,
        max_frame_bytes: int = DEFAULT_MAX,
    ) -> None:
        if type(n_parties) is not int or n_parties < 2:
            raise ParameterError(f"a session needs at least 2 parties, got {n_parties!r}")
        if type(party_id) is not int or not 0 <= party_id < n_parties:
            raise ParameterError(f"party id {party_id!r} not in range({n_parties})")
        if not timeout > 0:
            raise ParameterError(f"timeout must be positive seconds, got {timeout!r}")
        self.party_id = party_id
        self.n_parties = n_parties
        self.peers: tuple[int, ...] = tuple(p for p in range(n_parties) if p != party_id)
        self.timeout = float(timeout)
        self.stats = stats if stats is not None else CommStats(party_id)
        self.max_frame_bytes = max_frame_bytes
        self._closed = False

    # -- transport hooks -----------------------------------------------------------------

    @abstractmethod
    def _transmit(
        self, to: int, head: bytes, body: Sequence[bytes | memoryview], nbody: int
    ) -> None:
        """Put one frame (``head`` = frame head + tag, then ``body`` parts) on the link.

        Must not return before the body buffers have been copied or handed to the kernel:
        the caller may modify them afterwards.
        """

    @abstractmethod
    def _receive(self, frm: int, timeout: float) -> Frame:
        """Next frame from ``frm``; `PartyTimeoutError` / `ChannelClosedError` otherwise."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Release the transport (called once by `close`)."""

    # -- API -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ChannelClosedError(f"the channel of party {self.party_id} is closed")

    def _check_peer(self, p: object) -> int:
        if type(p) is not int or p not in self.peers:
            raise ParameterError(
                f"party {self.party_id} has no peer {p!r}; peers are {list(self.peers)}"
            )
        return p

    def _send_serialized(
        self, to: int, tag: str, tag_b: bytes, ser: tuple[int, list[bytes | memoryview], int]
    ) -> None:
        ptype, parts, n = ser
        if n > self.max_frame_bytes:
            raise ParameterError(
                f"message of {n} bytes exceeds the {self.max_frame_bytes}-byte frame cap"
            )
        total = FRAME_HEAD.size + len(tag_b) + n
        depth = self.stats.record_send(to, total, tag)
        head = FRAME_HEAD.pack(_FRAME_MAGIC, _FRAME_VERSION, ptype, len(tag_b), depth, n) + tag_b
        self._transmit(to, head, parts, n)

    def send(self, to: int, obj: Payload, *, tag: str) -> None:
        """Send ``obj`` (bytes, numpy array or Envelope) to party ``to`` under ``tag``.

        The object is serialized before this returns; later changes to it are not sent.
        """
        self._check_open()
        to = self._check_peer(to)
        tag_b = _encode_tag(tag)
        self._send_serialized(to, tag, tag_b, _serialize(obj))

    def recv(self, frm: int, *, tag: str, timeout: float | None = None) -> Payload:
        """Receive the next message from ``frm``, which must carry ``tag``.

        Raises
        ------
        PartyTimeoutError
            ``frm`` sent nothing within ``timeout`` (default: the channel's).
        ChannelClosedError
            The link to ``frm`` is closed.
        MalformedMessageError
            The message carries another tag (protocol desynchronization) or is malformed.
        """
        self._check_open()
        frm = self._check_peer(frm)
        _encode_tag(tag)
        t = self.timeout if timeout is None else float(timeout)
        if not t > 0:
            raise ParameterError(f"timeout must be positive seconds, got {timeout!r}")
        frame = self._receive(frm, t)
        self.stats.record_recv(frm, frame.nbytes, frame.tag, frame.depth)
        if frame.tag != tag:
            raise MalformedMessageError(
                f"party {self.party_id} expected a message tagged {tag!r} from party {frm} "
                f"but received one tagged {frame.tag!r}: the parties' programs are out of step"
            )
        if frame.ptype == PT_ARRAY:
            return decode_array(frame.payload)
        if frame.ptype == PT_ENVELOPE:
            return decode_envelope(frame.payload, max_bytes=self.max_frame_bytes)
        return bytes(frame.payload)

    def recv_array(
        self,
        frm: int,
        *,
        tag: str,
        dtype: np.dtype[Any] | type | str | None = None,
        shape: tuple[int, ...] | None = None,
        timeout: float | None = None,
    ) -> np.ndarray[Any, Any]:
        """`recv` that insists on an array, optionally of a given dtype and shape.

        Raises
        ------
        MalformedMessageError
            Not an array, or of another dtype.
        ShapeMismatchError
            Of another shape.
        """
        got = self.recv(frm, tag=tag, timeout=timeout)
        if not isinstance(got, np.ndarray):
            raise MalformedMessageError(
                f"expected an array tagged {tag!r} from party {frm}, got {type(got).__name__}"
            )
        if dtype is not None and got.dtype != np.dtype(dtype):
            raise MalformedMessageError(
                f"party {frm} sent {tag!r} as {got.dtype}, expected {np.dtype(dtype)}"
            )
        if shape is not None and got.shape != tuple(shape):
            raise ShapeMismatchError(
                f"party {frm} sent {tag!r} with shape {got.shape}, expected {tuple(shape)}"
            )
        return got

    def exchange(
        self, peer: int, obj: Payload, *, tag: str, timeout: float | None = None
    ) -> Payload:
        """Send ``obj`` to ``peer`` and receive its message under the same tag (one round)."""
        self.send(peer, obj, tag=tag)
        return self.recv(peer, tag=tag, timeout=timeout)

    def broadcast(self, obj: Payload, *, tag: str) -> None:
        """Send the same ``obj`` to every peer (serialized once; one round)."""
        self._check_open()
        tag_b = _encode_tag(tag)
        ser = _serialize(obj)
        for p in self.peers:
            self._send_serialized(p, tag, tag_b, ser)

    def all_gather(self, obj: Payload, *, tag: str, timeout: float | None = None) -> list[Payload]:
        """Broadcast ``obj`` and receive every peer's; returns values indexed by party id.

        The entry of this party is ``obj`` itself.
        """
        self.broadcast(obj, tag=tag)
        out: list[Payload] = []
        for p in range(self.n_parties):
            out.append(obj if p == self.party_id else self.recv(p, tag=tag, timeout=timeout))
        return out

    def all_to_all(
        self, objs: Mapping[int, Payload], *, tag: str, timeout: float | None = None
    ) -> dict[int, Payload]:
        """Send ``objs[p]`` to each peer ``p`` and receive one message from each (one round)."""
        if set(objs) != set(self.peers):
            raise ParameterError(
                f"all_to_all needs exactly one message per peer {list(self.peers)}, "
                f"got keys {sorted(objs)}"
            )
        for p in self.peers:
            self.send(p, objs[p], tag=tag)
        return {p: self.recv(p, tag=tag, timeout=timeout) for p in self.peers}

    def close(self) -> None:
        """Close the channel; idempotent. Peers then see `ChannelClosedError`."""
        if not self._closed:
            self._closed = True
            self._shutdown()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}(party={self.party_id}, n={self.n_parties}, {state})"
