"""``securecomp demo``: real round trips through each layer, checked against numpy.

Each section runs an actual protocol with secure default parameters and prints what it
computed, how far it is from the plaintext answer, and what it cost:

1. CKKS (TenSEAL, N = 8192, [60, 40, 40, 60], 128-bit): a client encrypts a batch of feature
   rows column-packed; a server holding only the public context scores them with a
   plaintext linear model; the client decrypts.
2. Paillier (3072-bit key, about 128-bit security): three holders encrypt integer vectors
   with slot packing; an aggregator adds ciphertexts; the key holder decrypts only the sum.
3. Additive secret sharing over Z_2^64 with fixed point: three parties, each with a private
   vector, compute the sum over in-process channels that count every byte and round.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from securecomp.crypto import AesCtrPrg
from securecomp.encoding import fixed_point
from securecomp.net import Channel, CommStats, CostReport, make_inprocess_channels

__all__ = ["register_cli", "run_demo", "secure_sum_by_sharing"]


def secure_sum_by_sharing(
    inputs: list[np.ndarray], *, frac_bits: int = 16, timeout: float = 10.0
) -> tuple[np.ndarray, CostReport]:
    """Sum private vectors of n parties by additive sharing over Z_2^64 (simulation).

    Protocol (semi-honest, any n-1 parties may collude without learning another party's
    input; everybody learns the sum):

    1. Party i encodes x_i in fixed point and splits it into n additive shares with an
       AES-CTR PRG seeded from the OS CSPRNG; it sends share j to party j.
    2. Party j adds the shares it holds and broadcasts the partial sum.
    3. Everybody adds the partial sums and decodes.

    All n parties run in threads of this process over in-process channels (a simulation of
    n machines): every message is serialized and counted as it would be on a network.
    """
    n = len(inputs)
    fp = fixed_point(frac_bits, 64)
    channels = make_inprocess_channels(n, timeout=timeout)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def party(ch: Channel, x: np.ndarray) -> None:
        try:
            prg = AesCtrPrg.from_random()
            encoded = fp.encode(x)
            shares = [prg.random_uint64(encoded.shape) for _ in range(n - 1)]
            own = encoded - np.sum(shares, axis=0, dtype=np.uint64)  # wraps mod 2^64
            it = iter(shares)
            for p in ch.peers:
                ch.send(p, next(it), tag="share")
            held = own.copy()
            for p in ch.peers:
                held += ch.recv_array(p, tag="share")
            ch.broadcast(held, tag="partial-sum")
            total = held.copy()
            for p in ch.peers:
                total += ch.recv_array(p, tag="partial-sum")
            results[ch.party_id] = fp.decode(total)
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)
        finally:
            ch.close()

    report = CostReport(protocol=f"additive sharing secure sum, {n} parties (simulation)")
    with report.timer("online"):
        threads = [
            threading.Thread(target=party, args=(ch, x))
            for ch, x in zip(channels, inputs, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    report.comm = CommStats.merge([ch.stats for ch in channels])
    report.rounds = report.comm.rounds
    for i in range(n):
        report.leakage.record(f"party {i}", "sum of all inputs (the output)", "reveal")
    return results[0], report


def _section(title: str, fn: Callable[[], tuple[list[str], bool]]) -> bool:
    """Print a section; True when its result matched numpy within the stated bound."""
    print(f"\n== {title}")
    lines, ok = fn()
    for line in lines:
        print("  " + line)
    print("  result: " + ("matches numpy within its bound" if ok else "MISMATCH with numpy"))
    return ok


def _sharing_section(rng: np.random.Generator) -> tuple[list[str], bool]:
    inputs = [rng.normal(0, 10, size=10_000) for _ in range(3)]
    got, report = secure_sum_by_sharing(inputs)
    err = float(np.max(np.abs(got - np.sum(inputs, axis=0))))
    return [
        "3 parties, 10,000 values each, fixed point f = 16 over Z_2^64",
        f"max |secure sum - numpy sum| = {err:.2e} (3 roundings to 2^-16: <= {3 * 2**-17:.1e})",
        *report.summary().splitlines(),
    ], err <= 1e-4


def _ckks_section(rng: np.random.Generator) -> tuple[list[str], bool]:
    from securecomp.he.ckks import CKKSBackend, CKKSContext

    report = CostReport(protocol="CKKS batch scoring, client and server (simulation)")
    with report.timer("keygen (client)"):
        secret = CKKSContext.generate()  # N = 8192, [60, 40, 40, 60], scale 2^40
        client = CKKSBackend(secret)
    public_bytes = secret.public().to_bytes()  # no secret key, no Galois keys
    X = rng.normal(size=(4096, 8))
    w, b = rng.normal(size=8), 0.5
    with report.timer("encrypt (client)"):
        upload = client.to_bytes(client.encrypt(X))  # column-packed: one ciphertext/feature
    with report.timer("score (server)"):
        server = CKKSBackend(CKKSContext.from_bytes(public_bytes))
        download = server.to_bytes(server.from_bytes(upload) @ w + b)
    with report.timer("decrypt (client)"):
        scores = client.from_bytes(download).decrypt(secret)
    report.leakage.record("server", "shapes and ciphertext sizes only", "score")
    err = float(np.max(np.abs(scores - (X @ w + b))))
    mb = 1 / 2**20
    return [
        "4,096 rows x 8 features, N = 8192, [60, 40, 40, 60], scale 2^40 (128-bit)",
        f"max |decrypted scores - numpy X @ w + b| = {err:.2e}",
        f"public context {len(public_bytes) * mb:.1f} MiB, upload {len(upload) * mb:.1f} MiB, "
        f"download {len(download) * mb:.2f} MiB",
        *report.summary().splitlines(),
    ], err <= 3 * 2**-17


def _paillier_section(rng: np.random.Generator) -> tuple[list[str], bool]:
    from securecomp.he.paillier import paillier_keygen

    report = CostReport(protocol="packed Paillier aggregation, 3 holders (simulation)")
    with report.timer("keygen"):
        backend, secret_key = paillier_keygen()  # 3072 bits: about 128-bit security
    gradients = [rng.uniform(-1, 1, size=1000) for _ in range(3)]
    with report.timer("encrypt (holders)"):
        # The aggregator adds at most 8 ciphertexts: that fixes the slot headroom.
        cts = [backend.encrypt(g, layout="packed", max_additions=8) for g in gradients]
    with report.timer("aggregate (aggregator)"):
        total = cts[0] + cts[1] + cts[2]
    with report.timer("decrypt (key holder)"):
        out = total.decrypt(secret_key)
    report.leakage.record("key holder", "sum of the 3 gradients", "decrypt")
    report.leakage.record("aggregator", "ciphertexts and their sizes only", "aggregate")
    err = float(np.max(np.abs(out - np.sum(gradients, axis=0))))
    nbytes = len(backend.to_bytes(total))
    return [
        f"{backend.key.bits}-bit key, 3 holders x 1,000 values in [-1, 1], packed slots",
        f"max |decrypted sum - numpy sum| = {err:.2e} (3 roundings to 2^-16: <= {3 * 2**-17:.1e})",
        f"aggregate ciphertext: {nbytes} bytes ({nbytes / 1000:.1f} B per value)",
        *report.summary().splitlines(),
    ], err <= 3 * 2**-17


def run_demo(seed: int = 0) -> int:
    """Run every section; returns 0 when all results match numpy within their bounds."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    results = [
        _section("CKKS: encrypted batch scoring", lambda: _ckks_section(rng)),
        _section("Paillier: packed gradient aggregation", lambda: _paillier_section(rng)),
        _section("Additive secret sharing: secure sum", lambda: _sharing_section(rng)),
    ]
    print(
        f"\n{sum(results)}/{len(results)} sections matched numpy, "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0 if all(results) else 1


def register_cli(subparsers: Any) -> None:
    """Add ``securecomp demo``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run real HE and MPC round trips and print a short report"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the demo's test data")
    parser.set_defaults(func=lambda args: run_demo(seed=args.seed))
