"""Secure aggregation (SecAgg, SecAgg+) against its hardware floor and Flower 1.42's SecAgg+.

Run with ``python -m pytest benchmarks/bench_secagg.py --benchmark-only -s`` (about three
minutes on 2 cores, a minute of it the single Flower run). Every comparison is one group
holding ``test_<what>__ours`` and its baselines; `benchmarks/conftest.py` prints the
ours/baseline ratios, and a summary of the targets is printed after the last test.

Workloads (16-bit inputs: clip 1, scale 32767, so every value is in [-32767, 32767]; the
modulus ``2^b`` is the smallest that cannot wrap for ``n`` such inputs):

* ``client_n500``: one SecAgg client (complete graph, semi-honest), n = 500, d = 100,000,
  b = 25. Timed: stages 2-4 of that client, i.e. decoding the server's three messages
  (keys, sealed shares, unmask request), the state machine, and encoding its three
  replies. The server messages are prepared at set-up with the other 499 clients' real
  X25519 public keys and real Shamir shares of their secrets sealed for this client; only
  this client's work is timed. Stage 1 (two X25519 key generations) must run before the
  messages can be prepared (they carry its public keys), so it is timed on its own in
  ``client_advertise``. Baselines:

  - ``__floor``: the same cryptography calls made directly on `cryptography`: 2 x 499
    X25519 agreements each followed by HKDF-SHA256, one HKDF for the self-mask seed, 500
    AES-256-CTR expansions of d words into a preallocated buffer added into the sum, 499
    AES-GCM encryptions and 499 decryptions of the sealed shares, and a minimal numpy
    Horner evaluation of the Shamir split (2 secrets x 9 limbs, t = 251, 500 points).
  - ``__flower``: the same client work with Flower 1.42's SecAgg+ primitives
    (``generate_key_pairs`` on P-384, ``generate_shared_key`` = ECDH + HKDF,
    ``create_shares`` = PyCryptodome's Shamir over GF(2^128), Fernet ``encrypt`` /
    ``decrypt``, ``pseudo_rand_gen`` masks), called in the order Flower's client module
    calls them. It runs once, in full (about a minute): no sampling, no scaling. The
    shares the client receives are random bytes of the right length (Flower's holder
    stores them without looking); everything the client computes is real.
* ``server_unmask_n500``: the SecAgg server's Unmasking stage, n = 500, d = 100,000, 10% of
  the clients (50) dropped after sharing their keys (the costly case: their pairwise
  masks must be regenerated). The protocol is run once for real at set-up (every client,
  every stage); each round replays the recorded messages of stages 1-3 into a fresh
  server and times decoding the survivors' 450 unmask messages and closing the stage.
  ``__floor``: Lagrange combination of the needed secrets in numpy, 450 self-mask seeds
  and 50 x 450 pairwise seeds (X25519 + HKDF), 22,950 AES-CTR expansions subtracted from
  the sum of masked inputs. Both results are checked against the plaintext sum.
* ``secaggplus_client_n10000``: one SecAgg+ client at n = 10,000, d = 100,000, b = 30, on
  the Harary graph chosen by `search_parameters` for 5% corrupt and 10% dropout clients
  (degree 42, threshold 21), against the floor for the same 42 neighbours.
* ``comm_expansion_n1024``: upload bytes of one client / (d x 2 bytes) at n = 1,024,
  d = 2^20, 16-bit inputs (b = 26), counted as the encoded length of the four messages
  the client actually sends (a client prepared as above, all clients alive). The same
  count is checked to equal the simulator's byte count at a small size.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from securecomp.crypto.kdf import KDF_VERSION
from securecomp.crypto.shamir import FIELD_PRIME
from securecomp.encoding import quantize
from securecomp.secagg import (
    AdvertiseKeys,
    MaskedInput,
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    ShareKeys,
    ThreatModel,
    UnmaskShares,
    decode_message,
    encode_message,
    simulate,
)
from securecomp.secagg.prepared import PreparedClient, run_client

SCALE = 32767.0  # 16-bit signed inputs
D = 100_000
SESSION = b"bench-secagg"
_P = np.uint64(FIELD_PRIME)
_RESULTS: dict[str, float] = {}
_NOTES: list[str] = []


def _inputs(cfg: SecAggConfig, count: int, seed: int) -> list[npt.NDArray[np.unsignedinteger]]:
    rng = np.random.default_rng(seed)
    return [
        quantize(rng.uniform(-1.0, 1.0, cfg.dim), cfg.quantization, rng=rng).values
        for _ in range(count)
    ]


def _record(benchmark: Any, key: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _RESULTS[key] = float(stats.stats.median)


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    if not _RESULTS and not _NOTES:
        return

    def ratio(a: str, b: str) -> str:
        if a in _RESULTS and b in _RESULTS:
            return f"{_RESULTS[a] * 1e3:.1f} ms vs {_RESULTS[b] * 1e3:.1f} ms: " + (
                f"{_RESULTS[a] / _RESULTS[b]:.2f}x"
            )
        return "not run"

    print("\n=== secure aggregation: targets ===")
    print(f"client n=500 d=100k ours/floor (target <= 3x): {ratio('client', 'client_floor')}")
    if "client" in _RESULTS and "client_flower" in _RESULTS:
        speedup = _RESULTS["client_flower"] / _RESULTS["client"]
        print(f"client n=500 d=100k Flower/ours (target >= 100x): {speedup:.0f}x")
    else:
        print("client n=500 d=100k Flower/ours: not run (flwr missing or deselected)")
    print(f"server unmask n=500 d=100k 10% dropout ours/floor: {ratio('server', 'server_floor')}")
    print(f"SecAgg+ client n=10,000 d=100k ours/floor: {ratio('plus', 'plus_floor')}")
    for note in _NOTES:
        print(note)


# --- a client facing prepared server messages ---------------------------------------------



# --- the floor: the same cryptography, called directly ------------------------------------


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def _info_prefix(purpose: bytes, session: bytes, round: int) -> bytes:
    # Same bytes as securecomp.crypto.kdf.Domain.encode up to the party/pair fields, so the
    # floor derives the very seeds the protocol uses (checked by the server floor's sum).
    return b"".join(
        (_field(KDF_VERSION), _field(b"secagg"), _field(purpose), _field(session),
         _field(round.to_bytes(8, "big")))
    )


def _pair_info(prefix: bytes, u: int, v: int) -> bytes:
    a, b = (u, v) if u < v else (v, u)
    return prefix + _field(b"") + _field(struct.pack(">QQ", a, b))


def _party_info(prefix: bytes, u: int) -> bytes:
    return prefix + _field(struct.pack(">Q", u)) + _field(b"")


def _hkdf(ikm: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


_CTR_NONCE = bytes(16)


class FloorClient:
    """The floor of one client's stages 2-4 for ``k`` neighbours (see the module docstring).

    Own keys are fixed (key generation is the separate stage 1), so the peers' sealed
    shares for this client are prepared once.
    """

    def __init__(self, prep: PreparedClient) -> None:
        cfg = prep.cfg
        self.u, self.t, self.bits = prep.u, cfg.threshold, cfg.bits
        self.dtype = cfg.dtype
        self.values = prep.values
        self.points = np.asarray([v + 1 for v in prep.ids], dtype=np.uint64)[:, None]
        self.c, self.s = X25519PrivateKey.generate(), X25519PrivateKey.generate()
        self.c_pub = self.c.public_key().public_bytes_raw()
        self.s_pub = self.s.public_key().public_bytes_raw()
        self.peers = [(v, prep.peers[v].c.public_bytes, prep.peers[v].s.public_bytes)
                      for v in prep.others]
        self.enc_prefix = _info_prefix(b"share-encryption", cfg.session, 0)
        self.mask_prefix = _info_prefix(b"pair-mask", cfg.session, 0)
        self.self_prefix = _info_prefix(b"self-mask", cfg.session, 0)
        self.ad_prefix = b"ad" + cfg.session
        self.zeros = bytes(cfg.dim * cfg.dtype.itemsize)
        self.scratch = np.empty(cfg.dim, dtype=cfg.dtype)
        # What the peers sealed for us, under the keys they derive with our fixed c key.
        self.received = []
        for v, c_pub, _ in self.peers:
            shared = prep.peers[v].c.exchange(self.c_pub)
            key = _hkdf(shared, _pair_info(self.enc_prefix, v, self.u),
                        min(c_pub, self.c_pub) + max(c_pub, self.c_pub))
            nonce = os.urandom(12)
            ad = self.ad_prefix + struct.pack("<II", v, self.u)
            plain = struct.pack("<II", v, self.u) + prep.peers[v].sk_share + prep.peers[v].b_share
            self.received.append((v, nonce + AESGCM(key).encrypt(nonce, plain, ad)))

    def run(self) -> npt.NDArray[np.unsignedinteger]:
        u = self.u
        # Stage 2: share-encryption keys, Shamir split of (s^SK, b), seal for each peer.
        b = os.urandom(32)
        secret = int.from_bytes(self.s.private_bytes_raw() + b, "little")
        limbs = np.array([(secret >> (30 * j)) & ((1 << 30) - 1) for j in range(18)],
                         dtype=np.uint64)
        coeffs = np.frombuffer(os.urandom(8 * (self.t - 1) * 18), dtype="<u8") % _P
        coeffs = coeffs.reshape(self.t - 1, 18)
        acc_sh = np.broadcast_to(coeffs[-1], (self.points.shape[0], 18)).copy()
        for row in coeffs[-2::-1]:
            acc_sh *= self.points
            acc_sh += row
            acc_sh %= _P
        acc_sh *= self.points
        acc_sh += limbs
        acc_sh %= _P
        shares = acc_sh.astype("<u4")
        keys: dict[int, bytes] = {}
        sealed = []
        for i, (v, c_pub, _) in enumerate(self.peers):
            shared = self.c.exchange(X25519PublicKey.from_public_bytes(c_pub))
            key = _hkdf(shared, _pair_info(self.enc_prefix, u, v),
                        min(c_pub, self.c_pub) + max(c_pub, self.c_pub))
            keys[v] = key
            nonce = os.urandom(12)
            ids = struct.pack("<II", u, v)
            plain = ids + shares[i].tobytes()
            sealed.append(AESGCM(key).encrypt(nonce, plain, self.ad_prefix + ids))
        # Stage 3: open the peers' shares, derive the seeds, expand and add the masks.
        for v, blob in self.received:
            AESGCM(keys[v]).decrypt(blob[:12], blob[12:], self.ad_prefix + struct.pack("<II", v, u))
        acc = self.values.astype(self.dtype, copy=True)
        out = self.scratch.view(np.uint8).data
        seed = _hkdf(b, _party_info(self.self_prefix, u))
        Cipher(algorithms.AES(seed), modes.CTR(_CTR_NONCE)).encryptor().update_into(self.zeros, out)
        np.add(acc, self.scratch, out=acc)
        for v, _, s_pub in self.peers:
            shared = self.s.exchange(X25519PublicKey.from_public_bytes(s_pub))
            seed = _hkdf(shared, _pair_info(self.mask_prefix, u, v),
                         min(s_pub, self.s_pub) + max(s_pub, self.s_pub))
            enc = Cipher(algorithms.AES(seed), modes.CTR(_CTR_NONCE)).encryptor()
            enc.update_into(self.zeros, out)
            if u < v:
                np.add(acc, self.scratch, out=acc)
            else:
                np.subtract(acc, self.scratch, out=acc)
        np.bitwise_and(acc, self.dtype.type((1 << self.bits) - 1), out=acc)
        return acc


# --- Flower 1.42's SecAgg+ primitives doing the same client work ---------------------------


class FlowerClient:
    """One client's stages 2-4 with Flower's primitives, in the order its client module
    (``flwr.client.mod.secure_aggregation.secaggplus_mod``) calls them."""

    def __init__(self, n: int, t: int, bits: int, values: npt.NDArray[np.unsignedinteger]):
        from flwr.common.secure_aggregation.crypto.symmetric_encryption import (
            encrypt,
            generate_shared_key,
        )
        from flwr.supercore.primitives.asymmetric import (
            generate_key_pairs,
            private_key_to_bytes,
            public_key_to_bytes,
        )

        self.u, self.n, self.t, self.mod = n - 1, n, t, 1 << bits
        self.values = values.astype(np.int64)
        # Stage 1 (Flower's "setup"), untimed like ours: two P-384 key pairs, PEM-encoded.
        sk1, pk1 = generate_key_pairs()
        sk2, pk2 = generate_key_pairs()
        self.sk1, self.pk1 = private_key_to_bytes(sk1), public_key_to_bytes(pk1)
        self.sk2, self.pk2 = private_key_to_bytes(sk2), public_key_to_bytes(pk2)
        self.public: dict[int, tuple[bytes, bytes]] = {}
        self.received: list[tuple[int, bytes]] = []
        # A share from create_shares is 4 + 16 * chunks bytes (PKCS#7-padded 16-byte chunks).
        b_len = 4 + 16 * (32 // 16 + 1)
        sk_len = 4 + 16 * (len(self.sk1) // 16 + 1)
        for v in range(n - 1):
            _, v_pk1 = generate_key_pairs()
            v_sk2, v_pk2 = generate_key_pairs()
            self.public[v] = (public_key_to_bytes(v_pk1), public_key_to_bytes(v_pk2))
            key = generate_shared_key(v_sk2, pk2)
            plain = b"".join((v.to_bytes(8, "little"), self.u.to_bytes(8, "little"),
                              b_len.to_bytes(4, "little"), os.urandom(b_len), os.urandom(sk_len)))
            self.received.append((v, encrypt(key, plain)))
        self.public[self.u] = (self.pk1, self.pk2)

    def run(self) -> list[bytes]:
        from flwr.common import ndarray_to_bytes
        from flwr.common.secure_aggregation.crypto.shamir import create_shares
        from flwr.common.secure_aggregation.crypto.symmetric_encryption import (
            decrypt,
            encrypt,
            generate_shared_key,
        )
        from flwr.common.secure_aggregation.secaggplus_utils import (
            pseudo_rand_gen,
            share_keys_plaintext_concat,
            share_keys_plaintext_separate,
        )
        from flwr.supercore.primitives.asymmetric import bytes_to_private_key, bytes_to_public_key

        u = self.u
        # Stage 2 (share keys): check keys, share (b, sk1), encrypt each neighbour's shares.
        flat = [k for pair in self.public.values() for k in pair]
        if len(set(flat)) != len(flat):
            raise RuntimeError("identical public keys")
        rd_seed = os.urandom(32)
        b_shares = create_shares(rd_seed, self.t, self.n)
        sk_shares = create_shares(self.sk1, self.t, self.n)
        shared2: dict[int, bytes] = {}
        held: dict[int, tuple[bytes, bytes]] = {u: (b_shares[u], sk_shares[u])}
        cts = []
        for idx, (v, (_, pk2)) in enumerate(self.public.items()):
            if v == u:
                continue
            key = generate_shared_key(bytes_to_private_key(self.sk2), bytes_to_public_key(pk2))
            shared2[v] = key
            plain = share_keys_plaintext_concat(u, v, b_shares[idx], sk_shares[idx])
            cts.append(encrypt(key, plain))
        # Stage 3 (collect masked vectors): open shares, add self and pairwise masks.
        for v, ct in self.received:
            src, dst, b_sh, sk_sh = share_keys_plaintext_separate(decrypt(shared2[v], ct))
            if src != v or dst != u:
                raise RuntimeError("misrouted share")
            held[v] = (b_sh, sk_sh)
        dims = [self.values.shape]
        vec = self.values + pseudo_rand_gen(rd_seed, self.mod, dims)[0]
        for v in self.received_ids():
            key = generate_shared_key(
                bytes_to_private_key(self.sk1), bytes_to_public_key(self.public[v][0])
            )
            mask = pseudo_rand_gen(key, self.mod, dims)[0]
            vec = vec + mask if u > v else vec - mask
        vec = vec & (self.mod - 1)
        upload = ndarray_to_bytes(vec)
        # Stage 4 (unmask): everyone survived, so the self-mask shares of all.
        shares = [held[v][0] for v in range(self.n)]
        return [*cts, upload, *shares]

    def received_ids(self) -> list[int]:
        return [v for v, _ in self.received]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client500() -> PreparedClient:
    cfg = SecAggConfig.create(500, D, clip=1.0, scale=SCALE, protocol="secagg",
                              threat=ThreatModel(dropout_fraction=0.1), session=SESSION)
    return PreparedClient(cfg, cfg.n - 1, _inputs(cfg, 1, seed=1)[0])


@pytest.fixture(scope="module")
def client10k() -> PreparedClient:
    cfg = SecAggConfig.create(
        10_000, D, clip=1.0, scale=SCALE, protocol="secagg+", session=SESSION,
        threat=ThreatModel(corrupt_fraction=0.05, dropout_fraction=0.1),
    )
    return PreparedClient(cfg, cfg.n - 1, _inputs(cfg, 1, seed=2)[0])


# --- client benchmarks ---------------------------------------------------------------------


def _bench_client(benchmark: Any, prep: PreparedClient, rounds: int) -> list[bytes]:
    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        client, _, wire = prep.new_round()
        return (client, wire), {}

    return benchmark.pedantic(run_client, setup=setup, rounds=rounds)  # type: ignore[no-any-return]


@pytest.mark.benchmark(group="secagg_client_n500_d100k")
def test_client_n500__ours(benchmark: Any, client500: PreparedClient) -> None:
    replies = _bench_client(benchmark, client500, rounds=7)
    masked = decode_message(replies[1])
    assert isinstance(masked, MaskedInput) and masked.values.size == D
    _record(benchmark, "client")


@pytest.mark.benchmark(group="secagg_client_n500_d100k")
def test_client_n500__floor(benchmark: Any, client500: PreparedClient) -> None:
    floor = FloorClient(client500)
    out = benchmark.pedantic(floor.run, rounds=7)
    assert out.size == D
    _record(benchmark, "client_floor")


@pytest.mark.benchmark(group="secagg_client_n500_d100k")
def test_client_n500__flower(benchmark: Any, client500: PreparedClient) -> None:
    pytest.importorskip("flwr")
    cfg = client500.cfg
    flower = FlowerClient(cfg.n, cfg.threshold, cfg.bits, client500.values)
    out = benchmark.pedantic(flower.run, rounds=1, iterations=1)
    assert len(out) == 2 * cfg.n
    _record(benchmark, "client_flower")
    _NOTES.append(
        "Flower client: one full run at n=500, d=100k (no sampling or scaling); "
        "P-384 ECDH, GF(2^128) Shamir in Python, Fernet, Mersenne-Twister masks"
    )


@pytest.mark.benchmark(group="secagg_client_advertise")
def test_client_advertise__ours(benchmark: Any, client500: PreparedClient) -> None:
    cfg, u, x = client500.cfg, client500.u, client500.values

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (SecAggClient(cfg, u, x),), {}

    benchmark.pedantic(SecAggClient.advertise_keys, setup=setup, rounds=200)


@pytest.mark.benchmark(group="secagg_client_advertise")
def test_client_advertise__floor(benchmark: Any) -> None:
    def keys() -> tuple[bytes, bytes]:
        c, s = X25519PrivateKey.generate(), X25519PrivateKey.generate()
        return c.public_key().public_bytes_raw(), s.public_key().public_bytes_raw()

    benchmark.pedantic(keys, rounds=200)


@pytest.mark.benchmark(group="secaggplus_client_n10000_d100k")
def test_secaggplus_client_n10000__ours(benchmark: Any, client10k: PreparedClient) -> None:
    replies = _bench_client(benchmark, client10k, rounds=15)
    assert len(decode_message(replies[0]).ciphertexts) == client10k.cfg.graph.degree  # type: ignore[union-attr]
    _record(benchmark, "plus")
    cfg = client10k.cfg
    _NOTES.append(
        f"SecAgg+ n=10,000: degree {cfg.graph.degree}, threshold {cfg.threshold}, b={cfg.bits} "
        "(search_parameters for 5% corrupt, 10% dropout, 2^-40 / 2^-20)"
    )


@pytest.mark.benchmark(group="secaggplus_client_n10000_d100k")
def test_secaggplus_client_n10000__floor(benchmark: Any, client10k: PreparedClient) -> None:
    floor = FloorClient(client10k)
    benchmark.pedantic(floor.run, rounds=15)
    _record(benchmark, "plus_floor")


# --- server unmasking ----------------------------------------------------------------------


@dataclass
class ServerRun:
    """Every client message of one real protocol run, by stage, and the expected sum."""

    cfg: SecAggConfig
    advertise: list[AdvertiseKeys]
    share_keys: list[ShareKeys]
    masked: list[MaskedInput]
    unmask: list[UnmaskShares]
    unmask_wire: list[bytes]
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    expected: npt.NDArray[np.uint64]


def run_protocol(cfg: SecAggConfig, dropped: Sequence[int], seed: int) -> ServerRun:
    """Run all clients and the server through the four stages; ``dropped`` clients send
    their shares and then vanish (no masked input)."""
    xs = _inputs(cfg, cfg.n, seed)
    server = SecAggServer(cfg)
    clients = {u: SecAggClient(cfg, u, xs[u]) for u in range(cfg.n)}
    gone = set(dropped)

    def exchange(ups: list[Any]) -> list[Any]:
        for m in ups:
            server.receive(m)
        return list(server.close_stage())

    advertise = [c.advertise_keys() for c in clients.values()]
    keys = exchange(advertise)
    share_keys = [clients[m.header.recipient].handle(m) for m in keys]
    deliveries = exchange(share_keys)
    masked = [clients[m.header.recipient].handle(m) for m in deliveries
              if m.header.recipient not in gone]
    requests = exchange(masked)
    unmask = [clients[m.header.recipient].handle(m) for m in requests]
    survivors = tuple(sorted(set(range(cfg.n)) - gone))
    total = np.zeros(cfg.dim, dtype=np.uint64)
    for u in survivors:
        total += xs[u].astype(np.uint64)
    total &= np.uint64((1 << cfg.bits) - 1)
    return ServerRun(cfg, advertise, share_keys, masked, unmask,  # type: ignore[arg-type]
                     [encode_message(m) for m in unmask], survivors, tuple(sorted(gone)), total)


def replay_to_unmasking(run: ServerRun) -> SecAggServer:
    """A fresh server fed the recorded messages of stages 1-3 (now collecting unmasking)."""
    server = SecAggServer(run.cfg)
    for batch in (run.advertise, run.share_keys, run.masked):
        for m in batch:
            server.receive(m)
        server.close_stage()
    return server


def server_unmask(server: SecAggServer, wire: Sequence[bytes]) -> npt.NDArray[np.uint64]:
    for data in wire:
        server.receive(decode_message(data))  # type: ignore[arg-type]
    server.close_stage()
    result = server.result
    if result is None:
        raise RuntimeError("the server produced no result")
    return result.aggregate


@pytest.fixture(scope="module")
def server500() -> ServerRun:
    cfg = SecAggConfig.create(500, D, clip=1.0, scale=SCALE, protocol="secagg",
                              threat=ThreatModel(dropout_fraction=0.1), session=SESSION)
    start = time.perf_counter()
    dropped = sorted(np.random.default_rng(3).choice(cfg.n, cfg.n // 10, replace=False).tolist())
    run = run_protocol(cfg, dropped, seed=4)
    _NOTES.append(
        f"server set-up: a full protocol run of 500 clients (d=100k, 50 dropped after "
        f"sharing) took {time.perf_counter() - start:.1f} s"
    )
    return run


@pytest.mark.benchmark(group="secagg_server_unmask_n500_d100k_drop10")
def test_server_unmask_n500__ours(benchmark: Any, server500: ServerRun) -> None:
    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (replay_to_unmasking(server500), server500.unmask_wire), {}

    out = benchmark.pedantic(server_unmask, setup=setup, rounds=3)
    assert np.array_equal(out, server500.expected)
    _record(benchmark, "server")


class FloorServer:
    """The floor of the server's unmasking (see the module docstring)."""

    def __init__(self, run: ServerRun) -> None:
        cfg = run.cfg
        self.cfg, self.bits, self.dtype = cfg, cfg.bits, cfg.dtype
        self.survivors, self.dropped = run.survivors, run.dropped
        by_sender = {int(m.header.sender): m for m in run.unmask}
        self.holders: list[int] = sorted(by_sender)[: cfg.threshold]
        self.b_shares = np.stack([
            np.frombuffer(b"".join(by_sender[w].b_shares), "<u4").reshape(-1, 9)
            for w in self.holders
        ]).astype(np.uint64)
        self.sk_shares = np.stack([
            np.frombuffer(b"".join(by_sender[w].sk_shares), "<u4").reshape(-1, 9)
            for w in self.holders
        ]).astype(np.uint64)
        self.s_pub = {m.header.sender: m.s_public for m in run.advertise}
        total = np.zeros(cfg.dim, dtype=cfg.dtype)
        for m in run.masked:
            total += m.values
        self.masked_sum = total
        self.self_prefix = _info_prefix(b"self-mask", cfg.session, 0)
        self.mask_prefix = _info_prefix(b"pair-mask", cfg.session, 0)
        self.zeros = bytes(cfg.dim * cfg.dtype.itemsize)
        self.scratch = np.empty(cfg.dim, dtype=cfg.dtype)

    def _lagrange(self) -> list[np.uint64]:
        # lambda_i = prod_{j != i} x_j / (x_j - x_i): the products in numpy, one inverse each.
        p = FIELD_PRIME
        xs = np.asarray([w + 1 for w in self.holders], dtype=np.uint64)
        den = np.ones(xs.size, dtype=np.uint64)
        num = 1
        for j in range(xs.size):
            diff = (xs[j] + _P - xs) % _P
            diff[j] = 1
            den = den * diff % _P
            num = num * int(xs[j]) % p
        return [np.uint64(num * pow(int(x) * int(d) % p, p - 2, p) % p)
                for x, d in zip(xs, den, strict=True)]

    def _combine(self, shares: npt.NDArray[np.uint64], lam: list[np.uint64]) -> list[bytes]:
        acc = np.zeros(shares.shape[1:], dtype=np.uint64)
        for share, coeff in zip(shares, lam, strict=True):
            acc += share * coeff % _P
            acc %= _P
        out = []
        rows = cast(list[list[int]], acc.tolist())
        for row in rows:
            value = 0
            for j, limb in enumerate(row):
                value |= limb << (30 * j)
            out.append(value.to_bytes(32, "little"))
        return out

    def run(self) -> npt.NDArray[np.uint64]:
        acc = self.masked_sum.copy()
        out = self.scratch.view(np.uint8).data
        lam = self._lagrange()
        for v, b in zip(self.survivors, self._combine(self.b_shares, lam), strict=True):
            seed = _hkdf(b, _party_info(self.self_prefix, v))
            Cipher(algorithms.AES(seed), modes.CTR(_CTR_NONCE)).encryptor().update_into(
                self.zeros, out)
            np.subtract(acc, self.scratch, out=acc)
        for v, sk in zip(self.dropped, self._combine(self.sk_shares, lam), strict=True):
            priv = X25519PrivateKey.from_private_bytes(sk)
            v_pub = self.s_pub[v]
            for u in self.survivors:
                u_pub = self.s_pub[u]
                shared = priv.exchange(X25519PublicKey.from_public_bytes(u_pub))
                seed = _hkdf(shared, _pair_info(self.mask_prefix, u, v),
                             min(u_pub, v_pub) + max(u_pub, v_pub))
                enc = Cipher(algorithms.AES(seed), modes.CTR(_CTR_NONCE)).encryptor()
                enc.update_into(self.zeros, out)
                # u added sign(u, v) * mask with sign +1 when u < v: remove it.
                if u < v:
                    np.subtract(acc, self.scratch, out=acc)
                else:
                    np.add(acc, self.scratch, out=acc)
        np.bitwise_and(acc, self.dtype.type((1 << self.bits) - 1), out=acc)
        return acc.astype(np.uint64)


@pytest.mark.benchmark(group="secagg_server_unmask_n500_d100k_drop10")
def test_server_unmask_n500__floor(benchmark: Any, server500: ServerRun) -> None:
    floor = FloorServer(server500)
    out = benchmark.pedantic(floor.run, rounds=3)
    assert np.array_equal(out, server500.expected)  # same seeds, same work: the same sum
    _record(benchmark, "server_floor")


# --- communication expansion ---------------------------------------------------------------


def upload_bytes(prep: PreparedClient) -> dict[str, int]:
    """Encoded length of each message client ``prep.u`` sends in one round (all alive)."""
    client, adv, wire = prep.new_round()
    replies = run_client(client, wire)
    sizes = {"advertise_keys": len(encode_message(adv))}
    for name, data in zip(("share_keys", "masked_input", "unmask_shares"), replies, strict=True):
        sizes[name] = len(data)
    return sizes


def test_comm_expansion_n1024(benchmark: Any) -> None:
    # The method first: at a small size the count equals the simulator's byte count of a
    # full run for the same client (same configuration, hence the same header sizes).
    small = SecAggConfig.create(32, 4096, clip=1.0, scale=SCALE, protocol="secagg",
                                session=SESSION)
    xs = _inputs(small, small.n, seed=5)
    u = small.n - 1
    sim = simulate(small, xs).report.metrics["bytes_per_client"][str(u)]["sent"]
    counted = sum(upload_bytes(PreparedClient(small, u, xs[u])).values())
    assert counted == sim, (counted, sim)

    cfg = SecAggConfig.create(1024, 1 << 20, clip=1.0, scale=SCALE, protocol="secagg",
                              session=SESSION)
    prep = PreparedClient(cfg, cfg.n - 1, _inputs(cfg, 1, seed=6)[0])
    sizes = benchmark.pedantic(upload_bytes, args=(prep,), rounds=1, iterations=1)
    total = sum(sizes.values())
    expansion = total / (cfg.dim * 2)
    benchmark.extra_info.update(sizes)
    benchmark.extra_info["expansion"] = round(expansion, 4)
    print(f"\ncommunication expansion, n=1024, d=2^20, 16-bit inputs, b={cfg.bits}: "
          f"{total:,} upload bytes / {cfg.dim * 2:,} = {expansion:.3f}x (target <= 1.8); "
          f"per message: {sizes}; counting checked against the simulator at n=32 "
          f"({counted} = {sim} bytes)")
    _NOTES.append(f"communication expansion n=1024, d=2^20, 16-bit: {expansion:.3f}x "
                  f"(b={cfg.bits}; {sizes})")
    assert expansion <= 1.8
