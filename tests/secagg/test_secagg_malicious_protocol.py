"""Honest runs in malicious-server mode: exact sums with dropouts at every one of the five
stages, the graph derived from the signed transcript, model binding and replays."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from secagg_fixtures import expected_sum, make_inputs

from securecomp.crypto import Ed25519KeyPair
from securecomp.encoding import QuantizationParams, quantize
from securecomp.errors import (
    InsufficientParticipantsError,
    IntegrityError,
    MalformedMessageError,
    ParameterError,
    ProtocolAbort,
    ReplayError,
)
from securecomp.secagg import (
    AdvertiseKeys,
    Header,
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    SecAggSimulation,
    ThreatModel,
    complete_graph,
    dropouts,
    harary_graph,
    simulate,
)
from securecomp.secagg.graph import harary_template
from securecomp.secagg.identity import PinnedIdentities
from securecomp.secagg.messages import (
    MALICIOUS_STAGES,
    ActiveStage,
    ConsistencySignature,
    KeysBroadcast,
    Stage,
)
from securecomp.secagg.parameters import complete_threshold

MODEL = b"sha256:model-weights"
KEYS = [Ed25519KeyPair.generate() for _ in range(20)]  # identities reused across tests


def _config(n: int, *, degree: int | None = None, threshold: int | None = None, dim: int = 5):
    threat = ThreatModel(malicious_server=True)
    quant = QuantizationParams(clip=1.0, scale=256.0, modulus_bits=(n * 256).bit_length() + 1)
    graph = complete_graph(n) if degree is None else harary_template(n, degree)
    t = threshold if threshold is not None else complete_threshold(n, threat)
    return SecAggConfig(
        n=n,
        threshold=t,
        dim=dim,
        encoding=quant,
        graph=graph,
        session=b"malicious-protocol",
        threat=threat,
        identities=PinnedIdentities.from_key_pairs(KEYS[:n]),
    )


def _predict(graph, n: int, t: int, drop_at: dict[int, int]) -> tuple[bool, tuple[int, ...]]:
    """Independent prediction over the five stages (U1 ... U5 as in Bonawitz et al.)."""
    live = [frozenset(u for u in range(n) if drop_at.get(u, 9) > s) for s in range(5)]
    u1, u2, u3, u4, u5 = live
    closed = {u: set(graph.closed_neighbourhood(u)) for u in range(n)}
    ok = all(len(closed[u] & u1) >= t for u in u1) and len(u1) >= t
    ok = ok and all(len(closed[u] & u2) >= t for u in u2)
    # Masked inputs and signatures: every sharer keeps t live holders, in U3 and in U4.
    ok = ok and all(len(closed[u] & u3) >= t for u in u2) and len(u3) >= t
    ok = ok and all(len(closed[u] & u4) >= t for u in u2)
    # Unmasking: b of every survivor and the key of every late dropout need t responders.
    ok = ok and all(len(closed[u] & u5) >= t for u in u3)
    ok = ok and all(len((closed[u] - {u}) & u5) >= t for u in u2 - u3)
    return ok, tuple(sorted(u3))


def _check(cfg: SecAggConfig, drop_at: dict[int, int], seed: int) -> None:
    xs = make_inputs(cfg, seed)
    schedule: dict = {}
    for u, s in drop_at.items():
        schedule.setdefault(MALICIOUS_STAGES[s], []).append(u)
    sim = SecAggSimulation(
        cfg, xs, faults=dropouts(schedule), identities=KEYS[: cfg.n], model_hash=MODEL
    )
    try:
        out = sim.run()
    except InsufficientParticipantsError:
        out = None
    ok, survivors = _predict(sim.server.graph, cfg.n, cfg.threshold, drop_at)
    assert not sim.client_aborts  # an honest server never makes an honest client abort
    if not ok:
        assert out is None and sim.server.result is None and sim.server.aborted
        return
    assert out is not None and out.survivors == survivors
    assert np.array_equal(out.aggregate, expected_sum(cfg, xs, survivors))
    assert set(out.result.dropped) == set(MALICIOUS_STAGES)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(4, 8), data=st.data())
def test_secagg_exact_sum_with_random_dropouts_at_every_stage(n: int, data) -> None:
    cfg = _config(n)
    assert cfg.threshold == n // 2 + 1  # t > (n + 0) / 2
    drop_at = data.draw(st.dictionaries(st.integers(0, n - 1), st.integers(0, 4), max_size=n))
    _check(cfg, drop_at, data.draw(st.integers(0, 1000)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(10, 16), data=st.data())
def test_secagg_plus_exact_sum_with_random_dropouts_at_every_stage(n: int, data) -> None:
    cfg = _config(n, degree=4, threshold=3)  # t = 3 > (4 + 1) / 2
    drop_at = data.draw(st.dictionaries(st.integers(0, n - 1), st.integers(0, 4), max_size=n // 4))
    _check(cfg, drop_at, data.draw(st.integers(0, 1000)))


def test_searched_malicious_secagg_plus_end_to_end_and_graph_from_transcript() -> None:
    n = 40
    pairs = KEYS + [Ed25519KeyPair.generate() for _ in range(n - len(KEYS))]
    cfg = SecAggConfig.create(
        n, 12, clip=1.0, scale_bits=8, protocol="secagg+",
        threat=ThreatModel(dropout_fraction=0.05, malicious_server=True),
        identities=[p.public_bytes for p in pairs],
    )
    assert cfg.graph.is_template
    k, t = cfg.graph.degree, cfg.threshold
    assert 2 * t > k + 1  # no corrupt clients: more than half of each neighbourhood
    xs = make_inputs(cfg, 5)
    sim = SecAggSimulation(
        cfg, xs, identities=pairs, model_hash=MODEL,
        faults=dropouts({Stage.MASKED_INPUT_COLLECTION: [3], ActiveStage.CONSISTENCY_CHECK: [9]}),
    )
    out = sim.run()
    assert out.survivors == tuple(u for u in range(n) if u != 3)
    assert np.array_equal(out.aggregate, expected_sum(cfg, xs, out.survivors))
    # The labels are SHA-256 of the transcript hash under its own tag: recompute them.
    seed = hashlib.sha256(b"securecomp/secagg/graph-seed/v1" + sim.server.transcript).digest()
    expect = harary_graph(n, k, seed)
    assert all(sim.server.graph.neighbours(u) == expect.neighbours(u) for u in range(n))
    assert all(c._closed == frozenset(expect.closed_neighbourhood(u))
               for u, c in sim.clients.items())
    m = out.report.metrics
    assert m["malicious_server"] is True
    assert m["bytes_per_stage"]["consistency_check"]["clients_sent"] > 0


def test_float_mean_and_dequantized_sum() -> None:
    cfg = _config(9, dim=30)
    rng = np.random.default_rng(7)
    updates = [rng.uniform(-1, 1, 30) for _ in range(9)]
    q = [quantize(x, cfg.quantization, rng=rng).values for x in updates]
    out = simulate(cfg, q, identities=KEYS[:9], model_hash=MODEL)
    mean = out.result.dequantized() / 9
    assert np.max(np.abs(mean - np.mean(updates, axis=0))) < 9 / 256


# --- the model hash ----------------------------------------------------------------------------


def test_model_hash_mismatch_is_detected_by_server_and_by_clients() -> None:
    cfg = _config(5)
    xs = make_inputs(cfg, 1)
    clients = {
        u: SecAggClient(cfg, u, xs[u], identity=KEYS[u],
                        model_hash=b"other model" if u == 2 else MODEL)
        for u in range(5)
    }
    ads = {u: c.advertise_keys() for u, c in clients.items()}
    server = SecAggServer(cfg, model_hash=MODEL)
    with pytest.raises(IntegrityError, match="model-hash mismatch"):
        server.receive(ads[2])
    # A malicious server forwards client 2's advertisement anyway (building the transcript
    # by hand): every honest client names client 2 and stops.
    ids = tuple(range(5))
    bc = {
        u: KeysBroadcast(
            Header(cfg.session, 0, "server", u, cfg.fingerprint), ids,
            tuple(ads[v].c_public for v in ids), tuple(ads[v].s_public for v in ids),
            tuple(ads[v].signature for v in ids),
        )
        for u in ids
    }
    for u in (0, 1, 3, 4):
        with pytest.raises(ProtocolAbort, match="model-hash mismatch") as info:
            clients[u].handle(bc[u])
        assert info.value.culprits == (2,)


def test_signatures_are_bound_to_round_and_session() -> None:
    cfg = _config(5)
    xs = make_inputs(cfg, 2)
    client = SecAggClient(cfg, 1, xs[1], round=3, identity=KEYS[1], model_hash=MODEL)
    ad = client.advertise_keys()
    server = SecAggServer(cfg, round=4, model_hash=MODEL)
    with pytest.raises(ReplayError):
        server.receive(ad)
    relabelled = AdvertiseKeys(
        Header(cfg.session, 4, 1, "server", cfg.fingerprint), ad.c_public, ad.s_public,
        ad.signature, ad.model_digest,
    )
    with pytest.raises(IntegrityError, match="client 1"):
        server.receive(relabelled)  # signed for round 3
    forged = ConsistencySignature(Header(cfg.session, 4, 1, "server", cfg.fingerprint), bytes(64))
    with pytest.raises(ReplayError):
        server.receive(forged)  # out of order: the server is collecting keys


def test_modes_do_not_mix() -> None:
    cfg = _config(4)
    xs = make_inputs(cfg, 3)
    with pytest.raises(ParameterError, match="identity"):
        SecAggClient(cfg, 0, xs[0], model_hash=MODEL)
    with pytest.raises(ParameterError, match="identity"):
        SecAggClient(cfg, 0, xs[0], identity=KEYS[1], model_hash=MODEL)  # not its key
    with pytest.raises(ParameterError, match="model_hash"):
        SecAggClient(cfg, 0, xs[0], identity=KEYS[0])
    with pytest.raises(ParameterError, match="model_hash"):
        SecAggServer(cfg)
    plain = SecAggConfig(
        n=4, threshold=3, dim=cfg.dim, encoding=cfg.quantization, graph=complete_graph(4),
        session=cfg.session,
    )
    with pytest.raises(ParameterError, match="malicious"):
        SecAggClient(plain, 0, xs[0], identity=KEYS[0], model_hash=MODEL)
    with pytest.raises(ParameterError, match="malicious"):
        SecAggServer(plain, model_hash=MODEL)
    # A semi-honest server refuses signed advertisements, a malicious one unsigned ones.
    signed = SecAggClient(cfg, 0, xs[0], identity=KEYS[0], model_hash=MODEL).advertise_keys()
    unsigned = SecAggClient(plain, 0, xs[0]).advertise_keys()
    with pytest.raises(MalformedMessageError):
        SecAggServer(plain).receive(
            AdvertiseKeys(unsigned.header, unsigned.c_public, unsigned.s_public,
                          signed.signature, signed.model_digest)
        )
    with pytest.raises(MalformedMessageError, match="unsigned"):
        SecAggServer(cfg, model_hash=MODEL).receive(
            AdvertiseKeys(signed.header, signed.c_public, signed.s_public)
        )


def test_too_few_signers_aborts_before_any_share_is_revealed() -> None:
    cfg = _config(6)  # t = 4
    xs = make_inputs(cfg, 4)
    sim = SecAggSimulation(
        cfg, xs, identities=KEYS[:6], model_hash=MODEL,
        faults=dropouts({ActiveStage.CONSISTENCY_CHECK: [0, 1, 2]}),
    )
    with pytest.raises(InsufficientParticipantsError) as info:
        sim.run()
    assert info.value.stage == ActiveStage.CONSISTENCY_CHECK.value
    assert sim.server.result is None
    assert all("sum" not in e.what for e in sim.server.leakage)
