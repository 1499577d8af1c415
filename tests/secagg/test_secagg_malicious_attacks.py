"""A malicious server against honest clients (Bonawitz et al. CCS 2017, active model).

The adversary below is the server: it runs the honest server state machine as long as it
likes, then sends whatever it wants, reads the state of the clients it corrupted, and
records every share it is sent. The tests check what honest clients refuse and that the
adversary never holds ``t`` self-mask shares *and* ``t`` key shares of one client (which
is what unmasking a single input needs); with fewer than ``t`` Shamir shares a secret is
information-theoretically hidden.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from secagg_fixtures import expected_sum, make_inputs

from securecomp.crypto import Ed25519KeyPair
from securecomp.encoding import QuantizationParams
from securecomp.errors import InsufficientParticipantsError, ProtocolAbort, ReplayError
from securecomp.secagg import (
    SERVER,
    ClientState,
    Header,
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    ThreatModel,
    UnmaskShares,
    complete_graph,
    simulate,
)
from securecomp.secagg.graph import harary_template
from securecomp.secagg.identity import PinnedIdentities
from securecomp.secagg.messages import (
    ConsistencyCheck,
    ConsistencySignature,
    KeysBroadcast,
    UnmaskCertificate,
    UnmaskRequest,
)
from securecomp.secagg.parameters import complete_threshold
from securecomp.secagg.transcript import survivors_message

MODEL = b"sha256:weights-of-round-0"


def malicious_config(
    n: int,
    *,
    corrupt: float = 0.0,
    degree: int | None = None,
    threshold: int | None = None,
    dim: int = 6,
) -> tuple[SecAggConfig, list[Ed25519KeyPair]]:
    keys = [Ed25519KeyPair.generate() for _ in range(n)]
    threat = ThreatModel(corrupt_fraction=corrupt, malicious_server=True)
    quant = QuantizationParams(clip=1.0, scale=256.0, modulus_bits=(n * 256).bit_length() + 1)
    if degree is None:
        graph, t = complete_graph(n), threshold or complete_threshold(n, threat)
    else:
        graph, t = harary_template(n, degree), threshold
    cfg = SecAggConfig(
        n=n,
        threshold=t,  # type: ignore[arg-type]
        dim=dim,
        encoding=quant,
        graph=graph,
        session=b"malicious-tests",
        threat=threat,
        identities=PinnedIdentities.from_key_pairs(keys),
    )
    return cfg, keys


class Adversary:
    """The malicious server of one round, with the honest clients it talks to."""

    def __init__(self, cfg: SecAggConfig, keys: list[Ed25519KeyPair], seed: int = 0) -> None:
        self.cfg, self.keys = cfg, keys
        self.xs = make_inputs(cfg, seed)
        self.server = SecAggServer(cfg, model_hash=MODEL)
        self.clients = {
            u: SecAggClient(cfg, u, self.xs[u], identity=keys[u], model_hash=MODEL)
            for u in range(cfg.n)
        }
        self.aborts: dict[int, ProtocolAbort] = {}
        # owner -> holder -> share, for both kinds of secret
        self.b: dict[int, dict[int, bytes]] = defaultdict(dict)
        self.sk: dict[int, dict[int, bytes]] = defaultdict(dict)

    def header(self, u: int) -> Header:
        return Header(self.cfg.session, 0, SERVER, u, self.cfg.fingerprint)

    def deliver(self, msgs: dict) -> dict:
        replies = {}
        for u, m in msgs.items():
            try:
                replies[u] = self.clients[u].handle(m)
            except ProtocolAbort as exc:
                self.aborts[u] = exc
        for w, r in replies.items():
            if isinstance(r, UnmaskShares):
                assert not set(r.b_owners) & set(r.sk_owners)
                for v, sh in zip(r.b_owners, r.b_shares, strict=True):
                    self.b[v][w] = sh
                for v, sh in zip(r.sk_owners, r.sk_shares, strict=True):
                    self.sk[v][w] = sh
        return replies

    def honest(self, ups: dict) -> dict:
        for m in ups.values():
            self.server.receive(m)
        return {m.header.recipient: m for m in self.server.close_stage()}

    def until_consistency(self, *, silent_at_share_keys: tuple[int, ...] = ()) -> dict:
        """Run honestly up to the ConsistencyCheck messages (all clients send inputs)."""
        keys = self.honest({u: c.advertise_keys() for u, c in self.clients.items()})
        shares = self.deliver(keys)
        deliveries = self.honest(
            {u: m for u, m in shares.items() if u not in silent_at_share_keys}
        )
        return self.honest(self.deliver(deliveries))

    def sign_as(self, u: int, survivors: tuple[int, ...]) -> bytes:
        """A corrupt client's signature (the server holds its identity key)."""
        cfg = self.cfg
        statement = survivors_message(
            fingerprint=cfg.fingerprint,
            session=cfg.session,
            round=0,
            transcript=self.server.transcript,
            n=cfg.n,
            survivors=survivors,
        )
        return self.keys[u].sign(statement)

    def corrupt_shares(self, corrupt: tuple[int, ...]) -> None:
        # A corrupt client hands the server everything it holds: both shares of each owner.
        for c in corrupt:
            for v, (sk_share, b_share) in self.clients[c]._held.items():
                self.b[v][c] = b_share
                self.sk[v][c] = sk_share

    def unmasks(self, owner: int) -> bool:
        t = self.cfg.threshold
        return len(self.b[owner]) >= t and len(self.sk[owner]) >= t


# --- the split-view attack ----------------------------------------------------------------------


def _split_view(
    adv: Adversary, victim: int, group_b: set[int], corrupt: tuple[int, ...], smart: bool
) -> None:
    checks = adv.until_consistency()
    u3 = checks[victim].alive
    u3_b = tuple(v for v in u3 if v != victim)  # "the victim dropped", for group B only
    view = {u: (u3_b if u in group_b else u3) for u in u3}
    honest = [u for u in u3 if u not in corrupt]
    sigs = adv.deliver({u: ConsistencyCheck(adv.header(u), view[u]) for u in honest})
    signed = {u: (view[u], s.signature) for u, s in sigs.items()}
    for c in corrupt:  # corrupt clients sign both stories
        signed[c] = (u3, adv.sign_as(c, u3))
        signed[(c, "b")] = (u3_b, adv.sign_as(c, u3_b))  # type: ignore[index]
    certs = {}
    for u in honest:
        if smart:  # only the signatures on u's own view: nothing fails to verify
            entries = sorted((k if isinstance(k, int) else k[0], s)
                             for k, (v, s) in signed.items() if v == view[u])
        else:  # everything the server received, as an honest server would forward it
            entries = sorted((k, s) for k, (_, s) in signed.items() if isinstance(k, int))
        certs[u] = UnmaskCertificate(
            adv.header(u), tuple(v for v, _ in entries), tuple(s for _, s in entries)
        )
    adv.deliver(certs)
    adv.corrupt_shares(corrupt)


@pytest.mark.parametrize("smart", [True, False])
@pytest.mark.parametrize("b_size", [1, 2, 3, 4, 5])
def test_split_view_is_detected_and_never_unmasks_the_victim(b_size: int, smart: bool) -> None:
    # n = 7 with one corrupt client: t > (7 + 1) / 2, so t = 5.
    cfg, keys = malicious_config(7, corrupt=0.15)
    assert cfg.threshold == 5
    adv = Adversary(cfg, keys, seed=b_size)
    victim, corrupt = 0, (6,)
    group_b = set(range(6 - b_size, 6))  # honest clients told that the victim dropped
    _split_view(adv, victim, group_b, corrupt, smart)
    for owner in range(cfg.n):
        if owner not in corrupt:
            assert not adv.unmasks(owner), f"the server could unmask client {owner}"
    assert adv.aborts, "the split view went unnoticed"
    if not smart:
        # Signatures on the other view do not verify: every honest client sees the split.
        assert set(adv.aborts) == set(range(6))
        assert all("split view" in str(e) for e in adv.aborts.values())
    else:
        # A camp without t signatures on its view (its members plus the corrupt client)
        # reveals nothing; 2t > n + C guarantees that at least one camp is short.
        camps = (set(range(6)) - group_b, group_b)
        short = [c for c in camps if len(c) + len(corrupt) < cfg.threshold]
        assert short
        for camp in short:
            assert camp <= set(adv.aborts)
            assert all(isinstance(adv.aborts[u], InsufficientParticipantsError) for u in camp)


@pytest.mark.parametrize("b_size", [1, 2, 3, 4])
def test_split_view_in_one_secagg_plus_neighbourhood(b_size: int) -> None:
    # Degree 4, t = 3 > (4 + 1) / 2: the victim's 5 holders cannot give t of each kind.
    cfg, keys = malicious_config(12, degree=4, threshold=3)
    adv = Adversary(cfg, keys, seed=10 + b_size)
    graph = _split_view_plus(adv, victim=0, b_size=b_size)
    assert not graph.is_complete and not graph.is_template
    # Every client derived the same graph as the server, from the signed transcript.
    assert all(c._graph is not None and c._closed == frozenset(graph.closed_neighbourhood(u))
               for u, c in adv.clients.items())
    assert not any(adv.unmasks(v) for v in range(cfg.n))
    assert adv.aborts, "the split view went unnoticed"


def _split_view_plus(adv: Adversary, victim: int, b_size: int):
    checks = adv.until_consistency()
    graph = adv.server.graph
    group_b = set(graph.neighbours(victim)[:b_size])
    u3 = checks[victim].alive
    u3_b = tuple(v for v in u3 if v != victim)
    view = {u: (u3_b if u in group_b else u3) for u in u3}
    sigs = adv.deliver({u: ConsistencyCheck(adv.header(u), view[u]) for u in u3})
    certs = {}
    for u in sigs:
        second = {w for v in graph.closed_neighbourhood(u) for w in graph.closed_neighbourhood(v)}
        same = sorted(v for v in sigs if view[v] == view[u] and v in second)
        certs[u] = UnmaskCertificate(
            adv.header(u), tuple(same), tuple(sigs[v].signature for v in same)
        )
    adv.deliver(certs)
    return graph


def test_simulated_split_view_is_caught_by_signatures_and_the_sum_stays_exact() -> None:
    cfg, keys = malicious_config(7)
    xs = make_inputs(cfg, 3)

    def hook(msg):
        # Tell clients 4, 5, 6 that client 0 dropped, the others that it survived.
        if isinstance(msg, ConsistencyCheck) and msg.header.recipient in (4, 5, 6):
            return ConsistencyCheck(msg.header, tuple(v for v in msg.alive if v != 0))
        return msg

    out = simulate(cfg, xs, identities=keys, model_hash=MODEL, server_hook=hook)
    # The honest server state machine refuses the signatures on the other view...
    bad = [r for r in out.rejected if r.kind == ConsistencySignature.KIND]
    assert sorted(r.sender for r in bad) == [4, 5, 6]
    assert all(r.error == "IntegrityError" for r in bad)
    # ... so only clients 0-3 get a certificate; their shares unmask all seven inputs.
    assert out.survivors == tuple(range(7))
    assert np.array_equal(out.aggregate, expected_sum(cfg, xs, range(7)))


# --- inconsistent survivor sets ------------------------------------------------------------------


def test_survivor_set_not_within_u2_is_refused() -> None:
    cfg, keys = malicious_config(7)
    adv = Adversary(cfg, keys)
    checks = adv.until_consistency(silent_at_share_keys=(5,))
    u3 = checks[0].alive
    assert 5 not in u3
    forged = tuple(sorted((*u3, 5)))  # 5 never sent shares, yet "survived"
    adv.deliver({u: ConsistencyCheck(adv.header(u), forged) for u in u3})
    assert set(adv.aborts) == set(u3)
    assert all("not a subset of U2" in str(e) and e.culprits == (5,) for e in adv.aborts.values())
    assert all(adv.clients[u].state is ClientState.ABORTED for u in u3)


@pytest.mark.parametrize(
    "forge",
    [
        lambda u3, u, t: tuple(v for v in u3 if v != u),  # omits the recipient
        lambda u3, u, t: tuple(sorted({u, *u3[: t - 2]})),  # fewer than t
        lambda u3, u, t: tuple(reversed(u3)),  # not canonical
        lambda u3, u, t: (*u3, u3[-1]),  # duplicate
    ],
    ids=["omits-self", "below-t", "unsorted", "duplicate"],
)
def test_malformed_survivor_sets_are_refused(forge) -> None:
    cfg, keys = malicious_config(6)
    adv = Adversary(cfg, keys)
    checks = adv.until_consistency()
    u3 = checks[0].alive
    adv.deliver({u: ConsistencyCheck(adv.header(u), forge(u3, u, cfg.threshold)) for u in u3})
    assert set(adv.aborts) == set(u3)
    assert not adv.b and not adv.sk


def test_certificates_below_t_outside_u3_or_forged_are_refused() -> None:
    cfg, keys = malicious_config(7)
    t = cfg.threshold
    adv = Adversary(cfg, keys)
    checks = adv.until_consistency()
    u3 = checks[0].alive
    sigs = adv.deliver({u: ConsistencyCheck(adv.header(u), u3) for u in u3})
    ids = tuple(sorted(sigs))
    s = {u: sigs[u].signature for u in ids}
    forged = bytearray(s[ids[0]])
    forged[5] ^= 1
    certs = {
        0: UnmaskCertificate(adv.header(0), ids[: t - 1], tuple(s[v] for v in ids[: t - 1])),
        1: UnmaskCertificate(adv.header(1), ids, (bytes(forged), *(s[v] for v in ids[1:]))),
        2: UnmaskCertificate(adv.header(2), ids[::-1], tuple(s[v] for v in ids[::-1])),
    }
    adv.deliver(certs)
    assert isinstance(adv.aborts[0], InsufficientParticipantsError)
    assert adv.aborts[1].culprits == (ids[0],) and "split view" in str(adv.aborts[1])
    assert 2 in adv.aborts
    assert not adv.b and not adv.sk
    # A correct certificate still works for the others.
    good = {u: UnmaskCertificate(adv.header(u), ids, tuple(s[v] for v in ids)) for u in (3, 4)}
    replies = adv.deliver(good)
    assert all(isinstance(r, UnmaskShares) for r in replies.values())


# --- asking for both shares --------------------------------------------------------------------


def test_second_request_after_revealing_is_refused() -> None:
    cfg, keys = malicious_config(6)
    adv = Adversary(cfg, keys)
    checks = adv.until_consistency()
    u3 = checks[0].alive
    sigs = adv.deliver({u: ConsistencyCheck(adv.header(u), u3) for u in u3})
    ids = tuple(sorted(sigs))
    cert = {u: UnmaskCertificate(adv.header(u), ids, tuple(sigs[v].signature for v in ids))
            for u in u3}
    adv.deliver(cert)
    assert all(len(adv.b[v]) == 6 for v in u3) and not adv.sk
    # Now the server claims client 2 dropped after all, and asks again for key shares.
    again = tuple(v for v in u3 if v != 2)
    for u in u3:
        if u == 2:
            continue
        c = adv.clients[u]
        for msg in (
            ConsistencyCheck(adv.header(u), again),
            UnmaskCertificate(adv.header(u), ids, tuple(sigs[v].signature for v in ids)),
            UnmaskRequest(adv.header(u), again),
        ):
            with pytest.raises(ReplayError):
                c.handle(msg)
        assert c.state is ClientState.DONE
    assert not adv.sk[2]  # not a single key share of client 2 left any client


def test_key_substitution_and_altered_signatures_are_refused() -> None:
    cfg, keys = malicious_config(6)
    adv = Adversary(cfg, keys)
    lists = adv.honest({u: c.advertise_keys() for u, c in adv.clients.items()})
    m = lists[0]
    i = m.ids.index(3)
    attacker_key = bytes(32 * [9])
    swapped = KeysBroadcast(
        m.header, m.ids, (*m.c_publics[:i], attacker_key, *m.c_publics[i + 1 :]),
        m.s_publics, m.signatures,
    )
    unsigned = KeysBroadcast(lists[1].header, lists[1].ids, lists[1].c_publics, lists[1].s_publics)
    sig = bytearray(lists[2].signatures[i])
    sig[0] ^= 0x80
    altered = KeysBroadcast(
        lists[2].header, lists[2].ids, lists[2].c_publics, lists[2].s_publics,
        (*lists[2].signatures[:i], bytes(sig), *lists[2].signatures[i + 1 :]),
    )
    adv.deliver({0: swapped, 1: unsigned, 2: altered})
    assert adv.aborts[0].culprits == (3,) and adv.aborts[2].culprits == (3,)
    assert "unsigned" in str(adv.aborts[1])
    # The others accept the genuine transcript.
    replies = adv.deliver({u: lists[u] for u in (3, 4, 5)})
    assert len(replies) == 3

