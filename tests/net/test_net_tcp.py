"""TCP channels: real processes on loopback, timeouts naming the silent party, mutual TLS."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from securecomp.errors import (
    ChannelClosedError,
    InsecureParameterError,
    PartyTimeoutError,
    PeerAuthenticationError,
)
from securecomp.net import (
    PartyAddress,
    TCPChannel,
    TLSConfig,
    generate_party_credentials,
    make_test_tls_configs,
)
from securecomp.net.channel import FRAME_HEAD

pytestmark = pytest.mark.tcp

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SCRIPT = HERE / "tcp_party.py"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def spawn(party: int, ports: list[int], mode: str, timeout: float) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(party), ",".join(map(str, ports)), mode, str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run_parties(modes: list[str], timeout: float, wait_for: list[int]) -> dict[int, Any]:
    """Start one process per mode; collect the JSON of ``wait_for``; always reap everyone."""
    ports = free_ports(len(modes))
    procs = [spawn(i, ports, m, timeout) for i, m in enumerate(modes)]
    out: dict[int, Any] = {}
    try:
        for i in wait_for:
            stdout, stderr = procs[i].communicate(timeout=60)
            assert procs[i].returncode == 0, stderr
            out[i] = json.loads(stdout.strip().splitlines()[-1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=30)
        assert all(p.poll() is not None for p in procs)
    return out


def frame(tag: str, payload: int) -> int:
    return FRAME_HEAD.size + len(tag) + payload


def test_three_processes_gather_and_exchange_with_exact_counts() -> None:
    res = run_parties(["gather"] * 3, timeout=20.0, wait_for=[0, 1, 2])
    array_payload = 8 + 8 + 4 * 8  # array head, one dim, four uint64
    for i in range(3):
        r = res[i]
        assert r["gathered"] == [[100 * j + k for k in range(4)] for j in range(3)]
        assert r["replies"] == [f"hello {i} from {p}" for p in range(3) if p != i]
        st = r["stats"]
        hi = sum(frame("hi", len(f"hello {p} from {i}")) for p in range(3) if p != i)
        assert st["bytes_sent"] == 2 * frame("gather", array_payload) + hi
        assert st["bytes_received"] == 2 * frame("gather", array_payload) + hi
        assert st["messages_sent"] == st["messages_received"] == 4
        # One gather layer, then the exchanges run in sequence (0-1, then 0-2 / 1-2...).
        assert st["per_tag"]["gather"]["rounds"] == 1
        assert st["per_phase"]["online"]["rounds"] == 1
        assert st["rounds"] == 1 + st["per_phase"]["offline"]["rounds"]
        assert st["per_phase"]["offline"]["rounds"] >= 2


def test_silent_peer_times_out_naming_it() -> None:
    res = run_parties(["wait", "silent"], timeout=1.0, wait_for=[0])
    assert res[0]["error"] == "PartyTimeoutError"
    assert res[0]["error_party"] == 1
    assert "party 1" in res[0]["message"]


def test_peer_that_closes_yields_channel_closed() -> None:
    res = run_parties(["wait", "close"], timeout=10.0, wait_for=[0, 1])
    assert res[0]["error"] == "ChannelClosedError"
    assert "party 1" in res[0]["message"]


def test_missing_party_times_out_at_connection() -> None:
    ports = free_ports(2)
    addrs = [PartyAddress("127.0.0.1", p) for p in ports]
    with pytest.raises(PartyTimeoutError) as ei:
        TCPChannel(1, addrs, connect_timeout=0.5)
    assert ei.value.party == 0
    with pytest.raises(PartyTimeoutError) as ei:
        TCPChannel(0, addrs, connect_timeout=0.5)
    assert ei.value.party == 1


def run_threads(make: list[Any]) -> list[Any]:
    """Run channel factories in threads; returns each one's result or exception."""
    out: list[Any] = [None] * len(make)

    def go(i: int) -> None:
        try:
            out[i] = make[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(make))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    return out


def test_mutual_tls_with_pinned_certificates() -> None:
    tls = make_test_tls_configs(2)
    addrs = [PartyAddress("127.0.0.1", p) for p in free_ports(2)]
    data = np.arange(1 << 16, dtype=np.int64)

    def party(i: int) -> Any:
        with TCPChannel(i, addrs, tls=tls[i], timeout=10, connect_timeout=10) as ch:
            got = ch.exchange(1 - i, data * (i + 1), tag="x")
            return got, ch.stats.bytes_sent

    res = run_threads([lambda: party(0), lambda: party(1)])
    np.testing.assert_array_equal(res[0][0], data * 2)
    np.testing.assert_array_equal(res[1][0], data)
    assert res[0][1] == frame("x", 8 + 8 + data.nbytes)


def test_unpinned_certificate_is_refused() -> None:
    tls = make_test_tls_configs(2)
    stranger = generate_party_credentials(1)
    bad = TLSConfig(stranger.cert_pem, stranger.key_pem, pinned=dict(tls[1].pinned))
    addrs = [PartyAddress("127.0.0.1", p) for p in free_ports(2)]
    res = run_threads(
        [
            lambda: TCPChannel(0, addrs, tls=tls[0], timeout=5, connect_timeout=5),
            lambda: TCPChannel(1, addrs, tls=bad, timeout=5, connect_timeout=5),
        ]
    )
    for r in res:
        if isinstance(r, TCPChannel):
            r.close()
    assert isinstance(res[0], PeerAuthenticationError)
    assert isinstance(res[1], PeerAuthenticationError | ChannelClosedError)


def test_certificate_of_another_party_is_refused() -> None:
    creds = [generate_party_credentials(i) for i in range(3)]
    pins = {c.party: c.cert_pem for c in creds}
    honest = TLSConfig(creds[0].cert_pem, creds[0].key_pem, pinned={1: pins[1], 2: pins[2]})
    # Party 2's genuine certificate, used to claim the identity of party 1.
    impostor = TLSConfig(creds[2].cert_pem, creds[2].key_pem, pinned={0: pins[0]})
    addrs = [PartyAddress("127.0.0.1", p) for p in free_ports(2)]
    res = run_threads(
        [
            lambda: TCPChannel(0, addrs, tls=honest, timeout=5, connect_timeout=5),
            lambda: TCPChannel(1, addrs, tls=impostor, timeout=5, connect_timeout=5),
        ]
    )
    for r in res:
        if isinstance(r, TCPChannel):
            r.close()
    assert isinstance(res[0], PeerAuthenticationError)
    assert "party 1" in str(res[0])
    assert isinstance(res[1], ChannelClosedError | PeerAuthenticationError)


@pytest.mark.parametrize("host", ["10.1.2.3", "example.org", "::ffff:10.0.0.1"])
def test_non_loopback_without_tls_is_refused(host: str) -> None:
    addrs = [PartyAddress("127.0.0.1", 9), PartyAddress(host, 9)]
    with pytest.raises(InsecureParameterError, match="tls"):
        TCPChannel(0, addrs, connect_timeout=0.1)


def test_close_leaves_no_thread_behind() -> None:
    before = threading.active_count()
    addrs = [PartyAddress("127.0.0.1", p) for p in free_ports(2)]

    def party(i: int) -> Any:
        ch = TCPChannel(i, addrs, timeout=5, connect_timeout=5)
        ch.send(1 - i, b"x", tag="t")
        got = ch.recv(1 - i, tag="t")
        ch.close()
        return got

    assert run_threads([lambda: party(0), lambda: party(1)]) == [b"x", b"x"]
    assert threading.active_count() == before


@pytest.mark.parametrize("junk", ["pickle", "oversized"])
def test_garbage_frames_from_a_peer_raise_malformed(junk: str) -> None:
    """A peer that passes the handshake and then sends a pickle or a lying length."""
    import struct

    from securecomp.errors import MalformedMessageError

    ports = free_ports(2)
    addrs = [PartyAddress("127.0.0.1", p) for p in ports]
    hello = struct.Struct("<4sBII")
    payload = (
        pickle.dumps({"evil": 1})
        if junk == "pickle"
        else FRAME_HEAD.pack(b"SF", 1, 1, 1, 1, 1 << 40) + b"t"
    )

    def rogue() -> bytes:
        deadline = 50
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", ports[0]), timeout=5)
                break
            except OSError:
                deadline -= 1
                assert deadline
                threading.Event().wait(0.05)
        with s:
            s.sendall(hello.pack(b"SCHI", 1, 1, 2))
            reply = s.recv(hello.size)
            s.sendall(payload)
            threading.Event().wait(0.5)
            return reply

    def honest() -> Any:
        with TCPChannel(0, addrs, timeout=5, connect_timeout=5) as ch:
            try:
                ch.recv(1, tag="t")
            except MalformedMessageError as exc:
                return exc
        return None

    res = run_threads([honest, rogue])
    assert isinstance(res[0], MalformedMessageError)
    assert hello.unpack(res[1])[2] == 0
