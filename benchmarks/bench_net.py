"""Network channels: a TCP exchange of 8 MiB against raw sockets on loopback.

Run with ``python -m pytest benchmarks/bench_net.py --benchmark-only``. Both tests move
the same bytes: each of two parties (threads of this process, over 127.0.0.1) sends a
1M-element uint64 array (8 MiB) to the other and receives the other's, full duplex.

* ``__ours``: `TCPChannel.exchange` (framing, accounting, validation, zero-copy send of
  the array buffer, ``recv_into`` a preallocated buffer, one I/O thread per channel).
* ``__floor``: the same bytes with ``sendall`` of the buffer and ``recv_into`` a
  preallocated buffer on raw sockets, with the send on a pooled thread for full duplex:
  no framing, no checks, no copy.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from securecomp.net import PartyAddress, TCPChannel

N = 1 << 20
NBYTES = 8 * N
GROUP = "tcp_exchange_8MiB"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _report(benchmark: Any, label: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable
        return
    rate = 2 * NBYTES / stats.stats.min / 1e9
    benchmark.extra_info["GB/s"] = round(rate, 2)
    print(f"\n{label}: {rate:.2f} GB/s (both directions, 8 MiB each way)")


@pytest.fixture
def channel_pair() -> Iterator[TCPChannel]:
    addrs = [PartyAddress("127.0.0.1", p) for p in _free_ports(2)]
    chans: list[Any] = [None, None]

    def make(i: int) -> None:
        chans[i] = TCPChannel(i, addrs, timeout=30, connect_timeout=10)

    makers = [threading.Thread(target=make, args=(i,)) for i in range(2)]
    for t in makers:
        t.start()
    for t in makers:
        t.join()
    peer_data = np.arange(N, dtype=np.uint64)

    def peer() -> None:
        while True:
            got = chans[1].exchange(0, peer_data, tag="x")
            if isinstance(got, bytes):  # the stop message
                return

    t = threading.Thread(target=peer)
    t.start()
    yield chans[0]
    chans[0].send(1, b"stop", tag="x")
    t.join()
    stopper = threading.Thread(target=chans[1].close)
    stopper.start()
    chans[0].close()
    stopper.join()


@pytest.mark.benchmark(group=GROUP)
def test_tcp_exchange_8MiB__ours(benchmark: Any, channel_pair: TCPChannel) -> None:
    mine = np.arange(N, dtype=np.uint64)[::-1].copy()
    got = benchmark(channel_pair.exchange, 1, mine, tag="x")
    assert isinstance(got, np.ndarray) and got.shape == (N,) and int(got[-1]) == N - 1
    _report(benchmark, "TCPChannel.exchange")


def _recv_exact(sock: socket.socket, out: memoryview) -> int:
    got = 0
    while got < len(out):
        n = sock.recv_into(out[got:])
        if n == 0:
            return got
        got += n
    return got


@pytest.fixture
def raw_pair() -> Iterator[tuple[socket.socket, ThreadPoolExecutor]]:
    listener = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    listener.close()
    for s in (a, b):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pools = [ThreadPoolExecutor(1), ThreadPoolExecutor(1)]
    peer_buf = np.arange(N, dtype=np.uint64).view(np.uint8).data
    peer_out = bytearray(NBYTES)

    def peer() -> None:
        while True:
            fut = pools[1].submit(b.sendall, peer_buf)
            n = _recv_exact(b, memoryview(peer_out))
            fut.result()
            if n < NBYTES:
                b.shutdown(socket.SHUT_WR)
                return

    t = threading.Thread(target=peer)
    t.start()
    yield a, pools[0]
    a.shutdown(socket.SHUT_WR)
    # Drain what the peer still sends so its last sendall completes, then join.
    sink = bytearray(1 << 20)
    while a.recv_into(sink):
        pass
    t.join()
    for p in pools:
        p.shutdown()
    a.close()
    b.close()


@pytest.mark.benchmark(group=GROUP)
def test_tcp_exchange_8MiB__floor(
    benchmark: Any, raw_pair: tuple[socket.socket, ThreadPoolExecutor]
) -> None:
    sock, pool = raw_pair
    buf = np.arange(N, dtype=np.uint64)[::-1].copy().view(np.uint8).data
    out = bytearray(NBYTES)

    def raw() -> int:
        fut = pool.submit(sock.sendall, buf)
        n = _recv_exact(sock, memoryview(out))
        fut.result()
        return n

    assert benchmark(raw) == NBYTES
    _report(benchmark, "raw sockets sendall/recv_into")
