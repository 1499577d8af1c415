"""Set-up of the malicious-server mode: the threshold window, pinned identities, the
graph template, signatures at the AdvertiseKeys stage, and the new messages on the wire."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from secagg_fixtures import make_inputs

from securecomp.crypto import Ed25519KeyPair
from securecomp.errors import IntegrityError, MalformedMessageError, ParameterError
from securecomp.secagg import (
    SERVER,
    AdvertiseKeys,
    Header,
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    ThreatModel,
    complete_graph,
    decode_message,
    encode_message,
    harary_graph,
    search_parameters,
)
from securecomp.secagg.driver_wire import decode_config, encode_config
from securecomp.secagg.graph import harary_template
from securecomp.secagg.identity import PinnedIdentities
from securecomp.secagg.messages import (
    ConsistencyCheck,
    ConsistencySignature,
    KeysBroadcast,
    UnmaskCertificate,
)
from securecomp.secagg.parameters import complete_threshold, threshold_window

MODEL = b"model"


def _pinned(n: int) -> tuple[list[Ed25519KeyPair], PinnedIdentities]:
    keys = [Ed25519KeyPair.generate() for _ in range(n)]
    return keys, PinnedIdentities.from_key_pairs(keys)


def _malicious(corrupt: float = 0.0, dropout: float = 0.0) -> ThreatModel:
    return ThreatModel(corrupt_fraction=corrupt, dropout_fraction=dropout, malicious_server=True)


# --- the threshold window ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [5, 8, 13, 30])
def test_complete_graph_window_is_exactly_bonawitz_active_condition(n: int) -> None:
    for c in range(n):
        for d in range(n - c):
            threat = _malicious(c / n, d / n)
            assert (threat.corrupt_count(n), threat.dropout_count(n)) == (c, d)
            # Direct statement: 2t > n + C (active security), t <= n - D (robustness).
            expect = [t for t in range(2, n + 1) if 2 * t > n + c and t <= n - d]
            window = threshold_window(n, n - 1, threat)
            if not expect:
                assert window is None
                with pytest.raises(ParameterError, match="empty threshold window"):
                    complete_threshold(n, threat)
            else:
                assert window == (expect[0], expect[-1])
                assert complete_threshold(n, threat) == expect[0]


def test_empty_window_is_refused_at_set_up_and_reported() -> None:
    _, pinned = _pinned(10)
    # C = 3, D = 4: t > 6.5 but t <= 6.
    with pytest.raises(ParameterError, match=r"empty threshold window.*t >= 7.*t <= 6"):
        SecAggConfig.create(10, 4, clip=1.0, scale_bits=8, threat=_malicious(0.3, 0.4),
                            identities=pinned)
    # The same fractions are fine against a semi-honest server (t > 3 suffices).
    SecAggConfig.create(10, 4, clip=1.0, scale_bits=8, threat=ThreatModel(0.3, 0.4))
    # An explicit threshold outside the window is refused with the window in the message.
    cfg = SecAggConfig.create(10, 4, clip=1.0, scale_bits=8, threat=_malicious(0.2, 0.1),
                              identities=pinned)
    assert cfg.threshold_window == (7, 9) and cfg.threshold == 7
    with pytest.raises(ParameterError, match=r"malicious server.*thresholds 7\.\.9"):
        dataclasses.replace(cfg, threshold=6)


def _hyper_tail(pop: int, succ: int, draws: int, m: int) -> Fraction:
    """P[X >= m] for X ~ Hypergeometric(pop, succ, draws), exactly."""
    total = math.comb(pop, draws)
    return Fraction(
        sum(math.comb(succ, j) * math.comb(pop - succ, draws - j)
            for j in range(max(m, 0), min(succ, draws) + 1)),
        total,
    )


def test_secagg_plus_search_applies_the_per_neighbourhood_malicious_bound() -> None:
    n = 2000
    semi = search_parameters(n, ThreatModel(0.05, 0.1))
    mal = search_parameters(n, _malicious(0.05, 0.1))
    assert not mal.complete and mal.window[0] == mal.threshold <= mal.window[1]
    k, t = mal.degree, mal.threshold
    c = math.floor(0.05 * n)
    # Independent check (exact rationals): an honest client's k neighbours hold more than
    # 2t - k - 2 corrupt ones with probability <= 2^-40 / n.
    assert n * _hyper_tail(n - 1, c, k, 2 * t - k - 1) <= Fraction(1, 2**40)
    # The semi-honest search only needs fewer than t corrupt neighbours: a smaller t.
    assert mal.threshold > semi.threshold or mal.degree > semi.degree
    # One below the window fails the malicious bound on this degree.
    assert threshold_window(n, k, _malicious(0.05, 0.1))[0] == t  # type: ignore[index]
    assert n * _hyper_tail(n - 1, c, k, 2 * (t - 1) - k - 1) > Fraction(1, 2**40)


def test_monte_carlo_corrupt_neighbours_stay_below_the_malicious_threshold() -> None:
    n, threat = 300, _malicious(0.05, 0.05)
    found = search_parameters(n, threat)
    assert not found.complete
    k, t, c = found.degree, found.threshold, threat.corrupt_count(n)
    rng = np.random.default_rng(5)
    worst = 0
    for _ in range(40):
        g = harary_graph(n, k, rng.bytes(32))
        corrupt = np.zeros(n, dtype=bool)
        corrupt[rng.permutation(n)[:c]] = True
        counts = corrupt[g._table].sum(axis=1)[~corrupt]
        worst = max(worst, int(counts.max()))
    assert 2 * t > k + 1 + worst


# --- identities and the graph template --------------------------------------------------------


def test_identities_are_required_distinct_and_part_of_the_fingerprint() -> None:
    keys, pinned = _pinned(6)
    cfg = SecAggConfig.create(6, 3, clip=1.0, scale_bits=8, threat=_malicious(),
                              identities=pinned, session=b"s")
    assert cfg.malicious and cfg.threshold == 4 and len(cfg.stages) == 5
    with pytest.raises(ParameterError, match="identity key"):
        SecAggConfig.create(6, 3, clip=1.0, scale_bits=8, threat=_malicious())
    with pytest.raises(ParameterError, match="only checked against a malicious server"):
        SecAggConfig.create(6, 3, clip=1.0, scale_bits=8, identities=pinned)
    with pytest.raises(ParameterError, match="reuse"):
        PinnedIdentities([keys[0].public_bytes, keys[1].public_bytes, keys[0].public_bytes])
    with pytest.raises(ParameterError, match="32 raw"):
        PinnedIdentities([b"short"])
    _, other = _pinned(6)
    changed = dataclasses.replace(cfg, identities=other)
    assert changed.fingerprint != cfg.fingerprint
    semi = SecAggConfig.create(6, 3, clip=1.0, scale_bits=8, session=b"s")
    assert semi.fingerprint != cfg.fingerprint and len(semi.stages) == 4


def test_secagg_plus_graph_is_a_template_the_server_cannot_label() -> None:
    n = 400
    _, pinned = _pinned(n)
    threat = _malicious(0.05, 0.05)
    cfg = SecAggConfig.create(n, 3, clip=1.0, scale_bits=8, protocol="secagg+",
                              threat=threat, identities=pinned)
    assert cfg.graph.is_template and cfg.graph.seed is None
    with pytest.raises(ParameterError, match="template"):
        cfg.graph.neighbours(0)
    with pytest.raises(ParameterError, match="graph_seed"):
        SecAggConfig.create(n, 3, clip=1.0, scale_bits=8, protocol="secagg+", threat=threat,
                            identities=pinned, graph_seed=bytes(32))
    seeded = harary_graph(n, cfg.graph.degree, bytes(32))
    with pytest.raises(ParameterError, match="must not be chosen by the server"):
        dataclasses.replace(cfg, graph=seeded)
    # A semi-honest configuration with a template is refused.
    with pytest.raises(ParameterError, match="template"):
        dataclasses.replace(cfg, threat=ThreatModel(0.05, 0.05), identities=None,
                            graph=harary_template(n, cfg.graph.degree))
    # Two transcripts, two independent labellings; the same transcript, the same graph.
    a, b = cfg.round_graph(b"\x01" * 32), cfg.round_graph(b"\x02" * 32)
    assert a.neighbours(0) != b.neighbours(0) or a.neighbours(1) != b.neighbours(1)
    assert cfg.round_graph(b"\x01" * 32).neighbours(7) == a.neighbours(7)


def test_config_with_identities_and_template_travels_as_bytes() -> None:
    _, pinned = _pinned(40)
    for protocol in ("secagg", "secagg+"):
        cfg = SecAggConfig.create(40, 5, clip=1.0, scale_bits=8, protocol=protocol,  # type: ignore[arg-type]
                                  threat=_malicious(dropout=0.05), identities=pinned)
        back = decode_config(encode_config(cfg), cfg.fingerprint)
        assert back.fingerprint == cfg.fingerprint and back.identities == pinned
        assert back.graph.is_template == cfg.graph.is_template and back.malicious


# --- signatures at AdvertiseKeys --------------------------------------------------------------


def test_bad_or_missing_advertisement_signatures_are_refused_by_the_server() -> None:
    keys, pinned = _pinned(5)
    cfg = SecAggConfig(
        n=5, threshold=3, dim=4, encoding=SecAggConfig.create(5, 4, clip=1.0, scale_bits=8)
        .quantization, graph=complete_graph(5), session=b"s", threat=_malicious(),
        identities=pinned,
    )
    xs = make_inputs(cfg, 0)
    server = SecAggServer(cfg, model_hash=MODEL)
    ads = [SecAggClient(cfg, u, xs[u], identity=keys[u], model_hash=MODEL).advertise_keys()
           for u in range(5)]
    flipped = bytearray(ads[0].signature)
    flipped[10] ^= 4
    bad = [
        dataclasses.replace(ads[0], signature=bytes(flipped)),
        dataclasses.replace(ads[1], c_public=ads[2].c_public),  # keys not the signed ones
        dataclasses.replace(ads[3], signature=ads[4].signature),  # someone else's signature
    ]
    for m in bad:
        with pytest.raises(IntegrityError, match="does not verify"):
            server.receive(m)
    # Signed by a key that is not the one pinned for client 4 (an impostor).
    forged = dataclasses.replace(ads[4], signature=Ed25519KeyPair.generate().sign(b"x" * 10))
    with pytest.raises(IntegrityError):
        server.receive(forged)
    for m in ads:  # the genuine ones are still accepted after the refusals
        server.receive(m)
    assert server.pending() == frozenset()


# --- the new messages on the wire --------------------------------------------------------------


def _header(recipient: int | str, sender: int | str = SERVER) -> Header:
    return Header(b"s", 0, sender, recipient, b"f" * 32)


def test_signed_messages_round_trip_and_field_sets_are_exact() -> None:
    sig = bytes(range(64))
    msgs = [
        AdvertiseKeys(_header(SERVER, 1), b"\x01" * 32, b"\x02" * 32, sig, b"\x03" * 32),
        KeysBroadcast(_header(1), (0, 1), (b"\x01" * 32,) * 2, (b"\x02" * 32,) * 2, (sig, sig)),
        ConsistencyCheck(_header(1), (0, 1, 5)),
        ConsistencySignature(_header(SERVER, 1), sig),
        UnmaskCertificate(_header(1), (0, 5), (sig, sig[::-1])),
    ]
    for m in msgs:
        assert decode_message(encode_message(m)) == m
    # A signature without its model digest (or of the wrong length) is not a message.
    with pytest.raises(ParameterError):
        encode_message(AdvertiseKeys(_header(SERVER, 1), b"\x01" * 32, b"\x02" * 32, sig))
    with pytest.raises(ParameterError):
        encode_message(ConsistencySignature(_header(SERVER, 1), sig[:63]))
    with pytest.raises(ParameterError):
        encode_message(UnmaskCertificate(_header(1), (0, 5), (sig,)))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(range(5)))
def test_decoder_never_crashes_on_mutated_signed_messages(noise: bytes, which: int) -> None:
    sig = bytes(64)
    base = [
        AdvertiseKeys(_header(SERVER, 1), b"\x01" * 32, b"\x02" * 32, sig, b"\x03" * 32),
        KeysBroadcast(_header(1), (0,), (b"\x01" * 32,), (b"\x02" * 32,), (sig,)),
        ConsistencyCheck(_header(1), (0, 1)),
        ConsistencySignature(_header(SERVER, 1), sig),
        UnmaskCertificate(_header(1), (0,), (sig,)),
    ][which]
    data = bytearray(encode_message(base))
    for i, byte in enumerate(noise[:16]):
        data[(i * 37 + byte) % len(data)] ^= byte or 1
    with contextlib.suppress(MalformedMessageError):
        decode_message(bytes(data))
