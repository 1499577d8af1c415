"""Secure aggregation against a malicious server: per-client compute, its floor, and the
overhead over the semi-honest client.

Run with ``python -m pytest benchmarks/bench_secagg_malicious.py --benchmark-only -s``
(about 20 s on 2 cores). Each comparison is one group holding ``test_<what>__ours``
and its baselines; `benchmarks/conftest.py` prints the ours/baseline ratios and a summary
is printed after the last test.

Workload: one SecAgg client (complete graph), n = 500, d = 100,000, 16-bit inputs (clip 1,
scale 32767, so ``b = 25``), 10% dropout budget, no corrupt clients: the threshold is the
malicious-server minimum ``floor(n / 2) + 1 = 251`` (Bonawitz et al., section 6), which is
also the semi-honest default, so the two modes share every parameter but the threat model.
All 500 clients survive. Timed: the client's stages 2 to 5, i.e. decoding the server's
four messages (the signed key transcript of 500 advertisements, 499 sealed share bundles,
the survivor set ``U3``, a certificate of ``t`` signatures on ``U3``), the state machine,
and encoding its four replies. The server's messages are prepared at set-up with the other
499 clients' real X25519 keys and Ed25519 identity keys and signatures; the shares sealed
for the client are random field elements (the client only stores and forwards them), sealed
under the real keys. Stage 1 (two X25519 key pairs and one signature) is timed apart.

Baselines:

* ``__floor``: the same cryptography made directly on `cryptography` and numpy: 499
  Ed25519 verifications of the advertisements and one SHA-256 over the transcript; 499
  X25519 agreements + HKDF-SHA256 for the share keys; a numpy Horner evaluation of the
  Shamir split (2 secrets x 9 limbs, degree t - 1, 500 points); 499 AES-GCM encryptions
  and 499 decryptions; one HKDF and AES-256-CTR expansion for the self mask and 499
  X25519 + HKDF + AES-256-CTR expansions added into the input (into a preallocated
  buffer); one Ed25519 signature on ``U3``; ``t = 251`` Ed25519 verifications of the
  certificate. Nothing else (no message parsing, no checks).
* ``__semihonest``: our semi-honest client on the same parameters (stages 2 to 4), i.e.
  the price of the malicious-server mode.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from securecomp.crypto import Domain, Ed25519KeyPair, X25519KeyPair
from securecomp.crypto.shamir import FIELD_PRIME
from securecomp.encoding import quantize
from securecomp.secagg import (
    SERVER,
    Header,
    KeysBroadcast,
    MaskedInput,
    SecAggClient,
    SecAggConfig,
    SharesDelivery,
    ThreatModel,
    UnmaskRequest,
    UnmaskShares,
    decode_message,
    encode_message,
)
from securecomp.secagg.identity import PinnedIdentities
from securecomp.secagg.masking import share_key
from securecomp.secagg.messages import ConsistencyCheck, UnmaskCertificate
from securecomp.secagg.shares import SHARE_BYTES, seal_shares
from securecomp.secagg.transcript import (
    advertisement_message,
    model_digest,
    survivors_message,
    transcript_hash,
)

N = 500
D = 100_000
SCALE = 32767.0
SESSION = b"bench-secagg-malicious"
MODEL = b"sha256:bench-model"
_P = np.uint64(FIELD_PRIME)
_RESULTS: dict[str, tuple[float, float]] = {}  # key -> (median, min) seconds
_NOTES: list[str] = []


def _record(benchmark: Any, key: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        _RESULTS[key] = (float(stats.stats.median), float(stats.stats.min))


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    if not _RESULTS:
        return

    def ratio(a: str, b: str) -> str:
        # Medians as in conftest's table, and minima, which a shared machine disturbs less.
        if a in _RESULTS and b in _RESULTS:
            (ma, na), (mb, nb) = _RESULTS[a], _RESULTS[b]
            return (
                f"median {ma * 1e3:.2f} ms vs {mb * 1e3:.2f} ms: {ma / mb:.2f}x; "
                f"min {na * 1e3:.2f} ms vs {nb * 1e3:.2f} ms: {na / nb:.2f}x"
            )
        return "not run"

    print("\n=== secure aggregation against a malicious server ===")
    print(f"client n=500 d=100k, malicious, ours/floor: {ratio('client', 'client_floor')}")
    print(f"client n=500 d=100k, malicious/semi-honest: {ratio('client', 'client_semi')}")
    print(f"client stage 1 (keys + signature) ours/floor: {ratio('adv', 'adv_floor')}")
    for note in _NOTES:
        print(note)


# --- the prepared client ----------------------------------------------------------------------


def _config(malicious: bool, identities: PinnedIdentities | None) -> SecAggConfig:
    return SecAggConfig.create(
        N, D, clip=1.0, scale=SCALE, protocol="secagg", session=SESSION,
        threat=ThreatModel(dropout_fraction=0.1, malicious_server=malicious),
        identities=identities,
    )


@dataclass(frozen=True)
class _Peer:
    c: X25519KeyPair
    s: X25519KeyPair
    sk_share: bytes
    b_share: bytes


def _random_share() -> bytes:
    limbs = np.frombuffer(os.urandom(8 * (SHARE_BYTES // 4)), dtype="<u8") % _P
    return limbs.astype("<u4").tobytes()


class Prepared:
    """Client ``u`` (the last id) and everything the server would send it in one round."""

    def __init__(self, malicious: bool) -> None:
        self.identity = [Ed25519KeyPair.generate() for _ in range(N)]
        pinned = PinnedIdentities.from_key_pairs(self.identity) if malicious else None
        cfg = _config(malicious, pinned)
        self.cfg, self.u, self.malicious = cfg, N - 1, malicious
        rng = np.random.default_rng(1)
        self.values = quantize(rng.uniform(-1, 1, D), cfg.quantization, rng=rng).values
        self.ids = tuple(range(N))
        self.others = self.ids[:-1]
        self.peers = {
            v: _Peer(X25519KeyPair.generate(), X25519KeyPair.generate(), _random_share(),
                     _random_share())
            for v in self.others
        }
        self.model = model_digest(MODEL)
        # Each peer's signed advertisement (independent of our client's keys: made once).
        self.signatures = {
            v: self.identity[v].sign(advertisement_message(
                fingerprint=cfg.fingerprint, session=SESSION, round=0, model=self.model,
                client=v, c_public=p.c.public_bytes, s_public=p.s.public_bytes))
            for v, p in self.peers.items()
        } if malicious else {}

    def _header(self) -> Header:
        return Header(self.cfg.session, 0, SERVER, self.u, self.cfg.fingerprint)

    def new_round(self) -> tuple[SecAggClient, list[bytes]]:
        """A fresh client after stage 1, and the encoded server messages of stages 2-5."""
        cfg, u = self.cfg, self.u
        if self.malicious:
            client = SecAggClient(cfg, u, self.values, identity=self.identity[u],
                                  model_hash=MODEL)
        else:
            client = SecAggClient(cfg, u, self.values)
        adv = client.advertise_keys()
        cp = tuple(adv.c_public if v == u else self.peers[v].c.public_bytes for v in self.ids)
        sp = tuple(adv.s_public if v == u else self.peers[v].s.public_bytes for v in self.ids)
        sealed = []
        for v in self.others:
            p = self.peers[v]
            key = share_key(p.c, adv.c_public, session=SESSION, round=0, me=v, peer=u)
            sealed.append(seal_shares(key, session=SESSION, round=0, owner=v, holder=u,
                                      sk_share=p.sk_share, b_share=p.b_share))
        shares = SharesDelivery(self._header(), self.others, tuple(sealed))
        if not self.malicious:
            keys = KeysBroadcast(self._header(), self.ids, cp, sp)
            request = UnmaskRequest(self._header(), self.ids)
            return client, [encode_message(m) for m in (keys, shares, request)]
        sigs = tuple(adv.signature if v == u else self.signatures[v] for v in self.ids)
        keys = KeysBroadcast(self._header(), self.ids, cp, sp, sigs)
        transcript = transcript_hash(fingerprint=cfg.fingerprint, session=SESSION, round=0,
                                     model=self.model, ids=self.ids, c_publics=cp,
                                     s_publics=sp, signatures=sigs)
        statement = survivors_message(fingerprint=cfg.fingerprint, session=SESSION, round=0,
                                      transcript=transcript, n=N, survivors=self.ids)
        signers = self.ids[: cfg.threshold]
        cert = UnmaskCertificate(self._header(), signers,
                                 tuple(self.identity[v].sign(statement) for v in signers))
        check = ConsistencyCheck(self._header(), self.ids)
        return client, [encode_message(m) for m in (keys, shares, check, cert)]


def run_client(client: SecAggClient, wire: Sequence[bytes]) -> list[bytes]:
    """The client's stages after stage 1: decode each server message, handle, encode."""
    return [encode_message(client.handle(decode_message(data))) for data in wire]  # type: ignore[arg-type]


# --- the floor ---------------------------------------------------------------------------------


def _hkdf(ikm: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


class Floor:
    """Stages 2-5 of one malicious-mode client as raw `cryptography` and numpy calls."""

    def __init__(self, prep: Prepared) -> None:
        cfg = prep.cfg
        self.u, self.t, self.bits, self.dtype = prep.u, cfg.threshold, cfg.bits, cfg.dtype
        self.values = prep.values
        self.points = np.asarray([v + 1 for v in prep.ids], dtype=np.uint64)[:, None]
        self.c, self.s = X25519PrivateKey.generate(), X25519PrivateKey.generate()
        self.c_pub = self.c.public_key().public_bytes_raw()
        self.s_pub = self.s.public_key().public_bytes_raw()
        self.identity = Ed25519PrivateKey.generate()
        self.zeros = bytes(cfg.dim * cfg.dtype.itemsize)
        self.scratch = np.empty(cfg.dim, dtype=cfg.dtype)
        domain = Domain("secagg", "x", SESSION, 0)
        self.peers = []
        for v in prep.others:
            p = prep.peers[v]
            statement = advertisement_message(
                fingerprint=cfg.fingerprint, session=SESSION, round=0, model=prep.model,
                client=v, c_public=p.c.public_bytes, s_public=p.s.public_bytes)
            self.peers.append((
                v, p.c.public_bytes, p.s.public_bytes, prep.identity[v].public_bytes,
                statement, prep.signatures[v], domain.for_pair(self.u, v).encode(),
            ))
        self.entries = [struct.pack(">I", v) + c + s + sig
                        for v, c, s, _, _, sig, _ in self.peers]
        self.self_info = domain.for_party(self.u).encode()
        self.bitmap = b"survivors" + bytes(N // 8 + 1)
        signers = prep.ids[: self.t]
        self.cert = [(prep.identity[v].public_bytes, prep.identity[v].sign(self.bitmap))
                     for v in signers]
        self.received = []  # what the peers sealed for us under keys they share with us
        for v, c_pub, _, _, _, _, info in self.peers:
            shared = prep.peers[v].c.exchange(self.c_pub)
            key = _hkdf(shared, info, min(c_pub, self.c_pub) + max(c_pub, self.c_pub))
            nonce = os.urandom(12)
            plain = struct.pack("<II", v, self.u) + bytes(2 * SHARE_BYTES)
            self.received.append((key, nonce + AESGCM(key).encrypt(nonce, plain, info), info))

    def run(self) -> npt.NDArray[np.unsignedinteger]:
        # Stage 2: authenticate the transcript, hash it, share (s^SK, b), seal per peer.
        for _, _, _, pk, statement, sig, _ in self.peers:
            Ed25519PublicKey.from_public_bytes(pk).verify(sig, statement)
        hashlib.sha256(b"".join(self.entries)).digest()
        b = secrets.token_bytes(32)
        secret = int.from_bytes(self.s.private_bytes_raw() + b, "little")
        limbs = np.array([(secret >> (30 * j)) & ((1 << 30) - 1) for j in range(18)],
                         dtype=np.uint64)
        coeffs = (np.frombuffer(os.urandom(8 * (self.t - 1) * 18), dtype="<u8") % _P)
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
        for i, (v, c_pub, _, _, _, _, info) in enumerate(self.peers):
            shared = self.c.exchange(X25519PublicKey.from_public_bytes(c_pub))
            key = _hkdf(shared, info, min(c_pub, self.c_pub) + max(c_pub, self.c_pub))
            nonce = os.urandom(12)
            AESGCM(key).encrypt(nonce, struct.pack("<II", self.u, v) + shares[i].tobytes(), info)
        # Stage 3: open the peers' shares, then self and pairwise masks.
        for key, blob, info in self.received:
            AESGCM(key).decrypt(blob[:12], blob[12:], info)
        acc = self.values.astype(self.dtype, copy=True)
        out = self.scratch.view(np.uint8).data
        seed = _hkdf(b, self.self_info)
        Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update_into(self.zeros, out)
        np.add(acc, self.scratch, out=acc)
        for v, _, s_pub, _, _, _, info in self.peers:
            shared = self.s.exchange(X25519PublicKey.from_public_bytes(s_pub))
            seed = _hkdf(shared, info, min(s_pub, self.s_pub) + max(s_pub, self.s_pub))
            Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update_into(
                self.zeros, out)
            if self.u < v:
                np.add(acc, self.scratch, out=acc)
            else:
                np.subtract(acc, self.scratch, out=acc)
        np.bitwise_and(acc, self.dtype.type((1 << self.bits) - 1), out=acc)
        # Stage 4 (ConsistencyCheck): sign U3. Stage 5: verify t signatures on it.
        self.identity.sign(self.bitmap)
        for pk, sig in self.cert:
            Ed25519PublicKey.from_public_bytes(pk).verify(sig, self.bitmap)
        return acc


# --- benchmarks ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def malicious500() -> Prepared:
    return Prepared(malicious=True)


@pytest.fixture(scope="module")
def semi500() -> Prepared:
    return Prepared(malicious=False)


def _bench(benchmark: Any, prep: Prepared, rounds: int) -> list[bytes]:
    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return prep.new_round(), {}

    return benchmark.pedantic(run_client, setup=setup, rounds=rounds)  # type: ignore[no-any-return]


@pytest.mark.benchmark(group="secagg_malicious_client_n500_d100k")
def test_malicious_client_n500__ours(benchmark: Any, malicious500: Prepared) -> None:
    replies = _bench(benchmark, malicious500, rounds=15)
    masked, last = decode_message(replies[1]), decode_message(replies[-1])
    assert isinstance(masked, MaskedInput) and masked.values.size == D
    assert isinstance(last, UnmaskShares) and len(last.b_owners) == N
    _record(benchmark, "client")
    cfg = malicious500.cfg
    _NOTES.append(
        f"malicious mode: n={N}, t={cfg.threshold} (window {cfg.threshold_window}), "
        f"b={cfg.bits}; {N - 1} advertisement and {cfg.threshold} certificate verifications"
    )


@pytest.mark.benchmark(group="secagg_malicious_client_n500_d100k")
def test_malicious_client_n500__floor(benchmark: Any, malicious500: Prepared) -> None:
    floor = Floor(malicious500)
    out = benchmark.pedantic(floor.run, rounds=15)
    assert out.size == D
    _record(benchmark, "client_floor")


@pytest.mark.benchmark(group="secagg_malicious_client_n500_d100k")
def test_malicious_client_n500__semihonest(benchmark: Any, semi500: Prepared) -> None:
    assert semi500.cfg.threshold == _config(False, None).threshold
    replies = _bench(benchmark, semi500, rounds=15)
    assert isinstance(decode_message(replies[-1]), UnmaskShares)
    _record(benchmark, "client_semi")


@pytest.mark.benchmark(group="secagg_malicious_client_advertise")
def test_malicious_advertise__ours(benchmark: Any, malicious500: Prepared) -> None:
    prep = malicious500

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        client = SecAggClient(prep.cfg, prep.u, prep.values, identity=prep.identity[prep.u],
                              model_hash=MODEL)
        return (client,), {}

    benchmark.pedantic(SecAggClient.advertise_keys, setup=setup, rounds=200)
    _record(benchmark, "adv")


@pytest.mark.benchmark(group="secagg_malicious_client_advertise")
def test_malicious_advertise__floor(benchmark: Any) -> None:
    identity = Ed25519PrivateKey.generate()
    context = bytes(120)

    def keys() -> bytes:
        c, s = X25519PrivateKey.generate(), X25519PrivateKey.generate()
        cp, sp = c.public_key().public_bytes_raw(), s.public_key().public_bytes_raw()
        return identity.sign(context + cp + sp)

    benchmark.pedantic(keys, rounds=200)
    _record(benchmark, "adv_floor")
