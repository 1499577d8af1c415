"""In-process channels: 3 parties in threads; exchanges, broadcasts, timeouts, accounting."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import (
    ChannelClosedError,
    MalformedMessageError,
    ParameterError,
    PartyTimeoutError,
    ShapeMismatchError,
)
from securecomp.net import Channel, CommStats, Envelope, make_inprocess_channels
from securecomp.net.channel import FRAME_HEAD, parse_frame_head


def run_local(program: Callable[[Channel], Any], n: int = 3, timeout: float = 5.0) -> list[Any]:
    """Run ``program`` as each of ``n`` parties in threads (a simulation); collect results."""
    chans = make_inprocess_channels(n, timeout=timeout)
    out: list[Any] = [None] * n

    def go(i: int) -> None:
        try:
            out[i] = program(chans[i])
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    for c in chans:
        c.close()
    return out


def frame(tag: str, payload: int) -> int:
    return FRAME_HEAD.size + len(tag.encode()) + payload


ARRAY2 = 8 + 8 + 2 * 8  # head, one dimension, two uint64


def test_gather_exchange_counts_exact_bytes_and_rounds() -> None:
    def program(ch: Channel) -> CommStats:
        mine = np.array([ch.party_id, 10 * ch.party_id], dtype=np.uint64)
        with ch.stats.phase("offline"):
            got = ch.all_gather(mine, tag="setup")
        for p in range(3):
            assert np.array_equal(got[p], [p, 10 * p])
        for _ in range(2):
            total = sum(ch.all_gather(mine, tag="open"))  # type: ignore[arg-type]
            assert np.array_equal(total, [3, 30])
        return ch.stats

    stats = run_local(program)
    for s in stats:
        assert isinstance(s, CommStats)
        per_msg = frame("setup", ARRAY2)
        assert s.bytes_sent == s.bytes_received == 2 * per_msg + 4 * frame("open", ARRAY2)
        assert s.messages_sent == s.messages_received == 6
        assert s.rounds == 3
        assert s.per_phase["offline"].rounds == 1 and s.per_phase["online"].rounds == 2
        assert s.per_tag["setup"].bytes_sent == 2 * per_msg and s.per_tag["open"].rounds == 2
        assert s.per_peer[(s.party + 1) % 3].messages_sent == 3  # type: ignore[operator]
    merged = CommStats.merge(stats)
    assert merged.rounds == 3 and merged.bytes_sent == merged.bytes_received


def test_exchange_and_relay_rounds() -> None:
    def program(ch: Channel) -> tuple[int, Any]:
        got: Any = None
        if ch.party_id == 0:
            ch.send(1, b"start", tag="relay")
        elif ch.party_id == 1:
            ch.send(2, ch.recv(0, tag="relay"), tag="relay")
        else:
            got = ch.recv(1, tag="relay")
        return ch.stats.rounds, got

    res = run_local(program)
    assert res == [(1, None), (2, None), (2, b"start")]

    def pairs(ch: Channel) -> int:
        if ch.party_id < 2:
            for k in range(3):
                got = ch.exchange(1 - ch.party_id, np.int64(k * 10 + ch.party_id), tag="x")
                assert int(got) == k * 10 + 1 - ch.party_id  # type: ignore[arg-type]
        return ch.stats.rounds

    assert run_local(pairs) == [3, 3, 0]


def test_broadcast_all_to_all_and_payload_kinds() -> None:
    env = Envelope("bytes", "", b"", b"", b"s", 1, 0, 2, b"body")

    def program(ch: Channel) -> Any:
        i = ch.party_id
        if i == 0:
            ch.broadcast(b"hello", tag="b")
            ch.send(2, env, tag="env")
        else:
            assert ch.recv(0, tag="b") == b"hello"
        if i == 2:
            assert ch.recv(0, tag="env") == env
        got = ch.all_to_all({p: np.full(2, 10 * i + p, dtype=np.int16) for p in ch.peers}, tag="a")
        for p, a in got.items():
            assert np.array_equal(a, np.full(2, 10 * p + i)) and a.dtype == np.int16  # type: ignore[union-attr]
        return True

    assert run_local(program) == [True, True, True]


def test_fifo_and_value_semantics() -> None:
    a, b = make_inprocess_channels(2, timeout=2)
    x = np.arange(5, dtype=np.float64)
    for k in range(4):
        a.send(1, x, tag="seq")
        x += 1  # the sender changes its array after sending: nothing already sent changes
    got = [b.recv_array(0, tag="seq", dtype=np.float64, shape=(5,)) for _ in range(4)]
    for k, g in enumerate(got):
        np.testing.assert_array_equal(g, np.arange(5) + k)
    got[0][0] = 99.0  # received arrays are the receiver's own
    assert got[0].flags.writeable and x[0] == 4.0 and got[1][0] == 1.0
    a.close()
    b.close()


def test_timeout_names_the_silent_party() -> None:
    def program(ch: Channel) -> Any:
        if ch.party_id == 0:
            ch.recv(1, tag="t")  # party 1 answers
            ch.recv(2, tag="t", timeout=0.2)  # party 2 stays silent
        elif ch.party_id == 1:
            ch.send(0, b"ok", tag="t")
        return None

    res = run_local(program)
    err = res[0]
    assert isinstance(err, PartyTimeoutError) and isinstance(err, TimeoutError)
    assert err.party == 2 and err.timeout == 0.2
    assert "party 2" in str(err)


def test_default_timeout_is_per_channel() -> None:
    a, _b = make_inprocess_channels(2, timeout=0.1)
    with pytest.raises(PartyTimeoutError) as ei:
        a.recv(1, tag="t")
    assert ei.value.timeout == pytest.approx(0.1) and ei.value.party == 1


def test_tag_mismatch_reports_desynchronization() -> None:
    a, b = make_inprocess_channels(2, timeout=1)
    a.send(1, b"x", tag="beaver.open")
    with pytest.raises(MalformedMessageError, match=r"'trunc.open'.*'beaver.open'"):
        b.recv(0, tag="trunc.open")


def test_closed_peer_and_closed_channel() -> None:
    a, b, c = make_inprocess_channels(3, timeout=1)
    a.send(1, b"last words", tag="t")
    a.close()
    assert b.recv(0, tag="t") == b"last words"  # delivered before the close
    for _ in range(2):
        with pytest.raises(ChannelClosedError, match="party 0"):
            b.recv(0, tag="t")
    with pytest.raises(ChannelClosedError):
        c.send(0, b"x", tag="t")
    with pytest.raises(ChannelClosedError):
        a.send(1, b"x", tag="t")
    with c:
        pass
    assert c.closed
    with pytest.raises(ChannelClosedError):
        c.recv(1, tag="t")


def test_bad_arguments() -> None:
    a, _ = make_inprocess_channels(2)
    with pytest.raises(ParameterError):
        a.send(0, b"x", tag="t")  # to self
    with pytest.raises(ParameterError):
        a.send(5, b"x", tag="t")
    with pytest.raises(ParameterError):
        a.send(1, b"x", tag="")
    with pytest.raises(ParameterError):
        a.send(1, [1, 2, 3], tag="t")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        a.send(1, np.array([None]), tag="t")
    with pytest.raises(ParameterError):
        a.all_to_all({0: b""}, tag="t")
    with pytest.raises(ParameterError):
        make_inprocess_channels(1)


def test_recv_array_checks() -> None:
    a, b = make_inprocess_channels(2, timeout=1)
    a.send(1, b"not an array", tag="t")
    a.send(1, np.zeros(3, np.int32), tag="t")
    a.send(1, np.zeros(3, np.int32), tag="t")
    with pytest.raises(MalformedMessageError):
        b.recv_array(0, tag="t")
    with pytest.raises(MalformedMessageError, match="int64"):
        b.recv_array(0, tag="t", dtype=np.int64)
    with pytest.raises(ShapeMismatchError):
        b.recv_array(0, tag="t", shape=(4,))


def test_oversized_frame_refused() -> None:
    a, b = make_inprocess_channels(2, max_frame_bytes=16)
    with pytest.raises(ParameterError, match="cap"):
        a.send(1, b"x" * 17, tag="t")
    a.send(1, b"x" * 16, tag="t")
    assert b.recv(0, tag="t") == b"x" * 16


@settings(max_examples=300)
@given(st.binary(min_size=FRAME_HEAD.size, max_size=FRAME_HEAD.size))
def test_frame_head_fuzz(head: bytes) -> None:
    try:
        ptype, tag_len, _, length = parse_frame_head(head, 1 << 20)
    except MalformedMessageError:
        return
    assert ptype in (1, 2, 3) and tag_len <= 255 and length <= 1 << 20


def test_frame_head_rejects_pickle_and_oversize() -> None:
    blob = pickle.dumps({"x": 1})[: FRAME_HEAD.size].ljust(FRAME_HEAD.size, b"\0")
    with pytest.raises(MalformedMessageError):
        parse_frame_head(blob, 1 << 20)
    head = FRAME_HEAD.pack(b"SF", 1, 1, 1, 1, (1 << 20) + 1)
    with pytest.raises(MalformedMessageError, match="cap"):
        parse_frame_head(head, 1 << 20)
