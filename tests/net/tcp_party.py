"""One party of a loopback TCP session, run as its own process by test_net_tcp.py.

Usage: python tcp_party.py PARTY PORT0,PORT1,... MODE TIMEOUT

Modes
-----
gather  all_gather an array, then an exchange round with every peer; print results and stats.
silent  connect, then send nothing until killed.
close   connect, then close the channel at once (the peers see a closed link).
wait    connect, then receive from every peer in turn; print the error raised.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from securecomp.errors import SecurecompError
from securecomp.net import PartyAddress, TCPChannel


def main() -> int:
    party = int(sys.argv[1])
    ports = [int(p) for p in sys.argv[2].split(",")]
    mode = sys.argv[3]
    timeout = float(sys.argv[4])
    addrs = [PartyAddress("127.0.0.1", p) for p in ports]
    out: dict[str, object] = {"party": party}
    with TCPChannel(party, addrs, timeout=timeout, connect_timeout=20.0) as ch:
        if mode == "gather":
            mine = np.arange(4, dtype=np.uint64) + np.uint64(100 * party)
            got = ch.all_gather(mine, tag="gather")
            out["gathered"] = [np.asarray(g).tolist() for g in got]
            replies: list[str] = []
            with ch.stats.phase("offline"):
                for p in ch.peers:
                    reply = ch.exchange(p, f"hello {p} from {party}".encode(), tag="hi")
                    assert isinstance(reply, bytes)
                    replies.append(reply.decode())
            out["replies"] = replies
            out["stats"] = ch.stats.as_dict()
        elif mode == "silent":
            time.sleep(600)
        elif mode == "close":
            pass
        elif mode == "wait":
            for p in ch.peers:
                try:
                    ch.recv(p, tag="never", timeout=timeout)
                except SecurecompError as exc:
                    out["error"] = type(exc).__name__
                    out["error_party"] = getattr(exc, "party", p)
                    out["message"] = str(exc)
                    break
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
