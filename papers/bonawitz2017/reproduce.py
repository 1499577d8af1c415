"""Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine Learning",
CCS 2017 (ePrint 2017/281): our SecAgg on the paper's evaluation shapes.

Three tables, all with 16-bit inputs (clip 1, scale 32767: values in [-32767, 32767]) and
the complete graph (the paper's protocol, semi-honest variant):

1. *Client running time* against the number of clients ``n`` and the vector length ``d``.
   Running all ``n`` clients would measure the same thing ``n`` times, so one client is
   measured (the median of ``--repeat`` rounds): a client facing server messages that
   carry its ``n - 1`` peers' real X25519 keys and real Shamir shares sealed for it. The
   time covers its four stages, including decoding what it receives and encoding what it
   sends.
2. *Server running time* against ``n`` and the dropout rate, at fixed ``d``: a full
   protocol run of all ``n`` clients in this process. Dropped clients share their keys and
   then vanish (the costly case for the server: their pairwise masks must be rebuilt).
   Stages 1-3 are run once; for each dropout rate a fresh server replays them and the
   surviving clients answer from copies of their state after stage 3, so the rates share
   the clients' expensive masking. Server time is decoding, validating and closing every
   stage; the aggregate is checked against the plaintext sum of the survivors.
3. *Communication expansion*: one client's upload bytes / (d x 2 bytes), counted as the
   encoded length of the four messages it sends. At the paper's first shape (2^10 clients,
   2^20 values) a real client round is counted; at the second (2^14 clients, 2^24 values)
   running a client is out of reach here, so its messages are built with the exact shapes
   a run produces (real keys and sealed shares; a masked vector and unmask shares of the
   right sizes) and encoded: the encoding's length depends only on those shapes.

Usage::

    python papers/bonawitz2017/reproduce.py                 # default sizes, a few minutes
    python papers/bonawitz2017/reproduce.py --preset quick  # seconds (the test uses it)
    python papers/bonawitz2017/reproduce.py --preset full   # n up to 1,000, d up to 10^6

Everything is one process on one core; the timings are CPython + numpy + OpenSSL (through
`cryptography`) on this machine, not the paper's implementation or hardware.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.crypto.prg import AesCtrPrg
from securecomp.crypto.shamir import FIELD_PRIME
from securecomp.crypto.x25519 import X25519KeyPair
from securecomp.encoding import quantize
from securecomp.secagg import (
    SERVER,
    Header,
    KeysBroadcast,
    MaskedInput,
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    ShareKeys,
    ThreatModel,
    UnmaskShares,
    decode_message,
    encode_message,
)
from securecomp.secagg.prepared import PreparedClient, run_client
from securecomp.secagg.shares import SHARE_BYTES

SCALE = 32767.0  # 16-bit signed inputs, as in the paper's communication figures

#: Figures from the paper (abstract, ePrint 2017/281): upload expansion for
#: 16-bit inputs. Timings: not available (see README.md).
PAPER_EXPANSION = {(1 << 10, 1 << 20): 1.73, (1 << 14, 1 << 24): 1.98}

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "clients": [16, 32], "dims": [1_000], "server_clients": [16],
        "server_dim": 1_000, "dropouts": [0.0, 0.3], "repeat": 1,
        "expansion": [(16, 4_096)],
    },
    "default": {
        "clients": [100, 300, 500, 1_000], "dims": [10_000, 100_000, 1_000_000],
        "server_clients": [100, 300, 500], "server_dim": 100_000,
        "dropouts": [0.0, 0.1, 0.3], "repeat": 3,
        "expansion": [(1 << 10, 1 << 20), (1 << 14, 1 << 24)],
    },
    "full": {
        "clients": [100, 250, 500, 750, 1_000], "dims": [10_000, 100_000, 1_000_000],
        "server_clients": [100, 250, 500, 750, 1_000], "server_dim": 100_000,
        "dropouts": [0.0, 0.1, 0.3], "repeat": 3,
        "expansion": [(1 << 10, 1 << 20), (1 << 14, 1 << 24)],
    },
}


def make_config(n: int, d: int, dropout: float) -> SecAggConfig:
    """SecAgg on the complete graph; threshold a majority, within the dropout budget."""
    return SecAggConfig.create(
        n, d, clip=1.0, scale=SCALE, protocol="secagg",
        threat=ThreatModel(dropout_fraction=dropout),
    )


def make_inputs(cfg: SecAggConfig, count: int, seed: int) -> list[npt.NDArray[Any]]:
    rng = np.random.default_rng(seed)  # test data only; every secret comes from the OS
    return [
        quantize(rng.uniform(-1.0, 1.0, cfg.dim), cfg.quantization, rng=rng).values
        for _ in range(count)
    ]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# --- 1. one client facing prepared server messages ----------------------------------------


def client_round(prep: PreparedClient) -> tuple[float, list[bytes]]:
    """One timed round of client ``prep.u``: its seconds (stage 1 and stages 2-4, not the
    peers' sealing) and the four messages it sent."""
    client = SecAggClient(prep.cfg, prep.u, prep.values)
    adv, t1 = _timed(client.advertise_keys)
    wire = prep.server_messages(adv)  # the peers' and server's work: not timed
    start = time.perf_counter()
    sent = run_client(client, wire)
    t234 = time.perf_counter() - start
    return t1 + t234, [encode_message(adv), *sent]


def client_table(clients: Sequence[int], dims: Sequence[int], repeat: int) -> list[list[str]]:
    rows = []
    for n in clients:
        for d in dims:
            cfg = make_config(n, d, 0.0)
            prep = PreparedClient(cfg, n - 1, make_inputs(cfg, 1, seed=n + d)[0])
            times = [client_round(prep)[0] for _ in range(repeat)]
            rows.append([f"{n:,}", f"{d:,}", str(cfg.bits), str(cfg.threshold),
                         f"{statistics.median(times) * 1e3:,.1f}", "not available"])
    return rows


# --- 2. full runs for the server ----------------------------------------------------------


@dataclass
class ServerTiming:
    n: int
    d: int
    dropout: float
    dropped: int
    stage_seconds: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.stage_seconds.values())


def _serve(server: SecAggServer, wire: Sequence[bytes]) -> tuple[list[Any], float]:
    """Decode and receive every message, close the stage; returns replies and seconds."""
    start = time.perf_counter()
    for data in wire:
        server.receive(decode_message(data))  # type: ignore[arg-type]
    out = list(server.close_stage())
    return out, time.perf_counter() - start


def server_runs(n: int, d: int, dropouts: Sequence[float], seed: int) -> list[ServerTiming]:
    """Server time for each dropout rate (see the module docstring, table 2).

    Raises
    ------
    RuntimeError
        If an aggregate differs from the plaintext sum of the survivors.
    """
    cfg = make_config(n, d, max(dropouts))
    xs = make_inputs(cfg, n, seed)
    clients = {u: SecAggClient(cfg, u, xs[u]) for u in range(n)}
    adv = [encode_message(c.advertise_keys()) for c in clients.values()]
    server = SecAggServer(cfg)
    keys, t1 = _serve(server, adv)
    share_keys = [encode_message(clients[m.header.recipient].handle(m)) for m in keys]
    deliveries, t2 = _serve(server, share_keys)
    # Every client computes its masked input once (stage 3); the dropout rates then differ
    # only in whose masked input arrives.
    masked = {m.header.recipient: encode_message(clients[m.header.recipient].handle(m))
              for m in deliveries}
    rng = np.random.default_rng(seed)
    out = []
    for rate in dropouts:
        gone = set(rng.choice(n, math.floor(rate * n + 1e-9), replace=False).tolist())
        fresh = SecAggServer(cfg)
        for wire in (adv, share_keys):
            _serve(fresh, wire)
        survivors = [u for u in range(n) if u not in gone]
        requests, t3 = _serve(fresh, [masked[u] for u in survivors])
        memo = {id(cfg): cfg}
        answers = [
            encode_message(copy.deepcopy(clients[m.header.recipient], memo).handle(m))
            for m in requests
        ]
        _, t4 = _serve(fresh, answers)
        result = fresh.result
        expected = np.zeros(d, dtype=np.uint64)
        for u in survivors:
            expected += xs[u].astype(np.uint64)
        expected &= np.uint64((1 << cfg.bits) - 1)
        if result is None or not np.array_equal(result.aggregate, expected):
            raise RuntimeError(f"aggregate mismatch at n={n}, d={d}, dropout={rate}")
        out.append(ServerTiming(n, d, rate, len(gone), {
            "advertise_keys": t1, "share_keys": t2, "masked_input_collection": t3,
            "unmasking": t4,
        }))
    return out


def server_table(clients: Sequence[int], d: int, dropouts: Sequence[float]) -> list[list[str]]:
    rows = []
    for n in clients:
        for r in server_runs(n, d, dropouts, seed=n):
            s = r.stage_seconds
            rows.append([f"{r.n:,}", f"{r.d:,}", f"{r.dropout:.0%}", str(r.dropped),
                         f"{(s['advertise_keys'] + s['share_keys']) * 1e3:,.0f}",
                         f"{s['masked_input_collection'] * 1e3:,.0f}",
                         f"{s['unmasking'] * 1e3:,.0f}", f"{r.total * 1e3:,.0f}",
                         "not available"])
    return rows


# --- 3. communication expansion -----------------------------------------------------------


def counted_upload(n: int, d: int) -> tuple[dict[str, int], str]:
    """Bytes of each message one client sends (see the module docstring, table 3)."""
    cfg = make_config(n, d, 0.0)
    u = n - 1
    values = np.zeros(d, dtype=cfg.dtype)  # the sizes do not depend on the values
    if n * d <= (1 << 31):
        _, sent = client_round(PreparedClient(cfg, u, values))
        how = "counted from a client round"
    else:
        sent = _shaped_messages(cfg, u, values)
        how = "counted from messages of a run's exact shapes"
    names = ("advertise_keys", "share_keys", "masked_input", "unmask_shares")
    return {k: len(m) for k, m in zip(names, sent, strict=True)}, how


def _shaped_messages(cfg: SecAggConfig, u: int, values: npt.NDArray[Any]) -> list[bytes]:
    # Real stage 1 and stage 2 (the client's own keys, shares and sealing); stages 3 and 4
    # as messages of the exact shapes: d values of b bits, one share per live client.
    client = SecAggClient(cfg, u, values)
    adv = client.advertise_keys()
    ids = tuple(range(cfg.n))
    peers = [X25519KeyPair.generate() for _ in range(2 * (cfg.n - 1))]
    cp = tuple(adv.c_public if v == u else peers[2 * v].public_bytes for v in ids)
    sp = tuple(adv.s_public if v == u else peers[2 * v + 1].public_bytes for v in ids)
    head = Header(cfg.session, 0, SERVER, u, cfg.fingerprint)
    share_keys = client.handle(KeysBroadcast(head, ids, cp, sp))
    if not isinstance(share_keys, ShareKeys):  # pragma: no cover - the state machine's job
        raise RuntimeError("unexpected reply")
    up = Header(cfg.session, 0, u, SERVER, cfg.fingerprint)
    mask = (1 << cfg.bits) - 1
    y = (AesCtrPrg.from_random().fill(np.empty(cfg.dim, cfg.dtype)) & cfg.dtype.type(mask))
    masked = MaskedInput(up, cfg.bits, y)
    # One share (SHARE_BYTES of field elements) per live client, as the unmask stage sends.
    field = AesCtrPrg.from_random().random_below(FIELD_PRIME, (cfg.n, SHARE_BYTES // 4))
    shares = tuple(row.astype("<u4").tobytes() for row in field)
    unmask = UnmaskShares(up, ids, shares, (), ())
    return [encode_message(m) for m in (adv, share_keys, masked, unmask)]


def expansion_table(shapes: Sequence[tuple[int, int]]) -> list[list[str]]:
    rows = []
    for n, d in shapes:
        sizes, how = counted_upload(n, d)
        total = sum(sizes.values())
        paper = PAPER_EXPANSION.get((n, d))
        rows.append([f"{n:,}", f"{d:,}", str(make_config(n, d, 0.0).bits),
                     f"{sizes['masked_input']:,}",
                     f"{sizes['share_keys'] + sizes['advertise_keys']:,}",
                     f"{sizes['unmask_shares']:,}", f"{total / (2 * d):.3f}x",
                     f"{paper:.2f}x" if paper else "not available", how])
    return rows


# --- output -------------------------------------------------------------------------------


def _print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.rjust(w) if i < len(r) - 1 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--skip", nargs="*", default=[], choices=["client", "server", "comm"],
                        help="tables to leave out")
    args = parser.parse_args(argv)
    p = PRESETS[args.preset]
    start = time.perf_counter()
    print(f"Bonawitz et al. CCS 2017 shapes, preset {args.preset!r}; 16-bit inputs, complete "
          "graph, one process, one core.")
    if "client" not in args.skip:
        _print_table(
            f"Table 1. Client running time (one client measured, median of {p['repeat']}; "
            "all four stages incl. encoding/decoding)",
            ["n", "d", "b", "t", "ours ms", "paper"],
            client_table(p["clients"], p["dims"], p["repeat"]),
        )
    if "server" not in args.skip:
        _print_table(
            "Table 2. Server running time (full run of all clients; dropped clients leave "
            "after sharing keys; aggregate checked)",
            ["n", "d", "dropout", "dropped", "stages 1-2 ms", "stage 3 ms", "unmask ms",
             "total ms", "paper"],
            server_table(p["server_clients"], p["server_dim"], p["dropouts"]),
        )
    if "comm" not in args.skip:
        _print_table(
            "Table 3. Communication expansion = client upload bytes / (d x 2 bytes)",
            ["n", "d", "b", "masked bytes", "keys+shares bytes", "unmask bytes", "ours",
             "paper", "how"],
            expansion_table(p["expansion"]),
        )
    print(f"\nfinished in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
