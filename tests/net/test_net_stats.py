"""CommStats, the cost model and CostReport on hand-computed examples."""

from __future__ import annotations

import json

import pytest

from securecomp.errors import ParameterError
from securecomp.net import (
    LAN,
    WAN,
    CommStats,
    CostReport,
    LeakageLedger,
    NetworkSetting,
    estimate,
    project,
)


def test_broadcast_then_receive_is_one_round() -> None:
    s = CommStats(0)
    assert s.record_send(1, 100, "open") == 1
    assert s.record_send(2, 100, "open") == 1  # no receive in between: same layer
    s.record_recv(1, 40, "open", 1)
    s.record_recv(2, 40, "open", 1)
    assert s.rounds == 1
    assert (s.bytes_sent, s.bytes_received) == (200, 80)
    assert (s.messages_sent, s.messages_received) == (2, 2)
    assert s.per_peer[1].bytes_sent == 100 and s.per_peer[2].bytes_received == 40
    assert s.record_send(1, 10, "mul") == 2  # sending after receiving: next layer
    assert s.rounds == 2
    assert s.per_tag["open"].rounds == 1 and s.per_tag["mul"].rounds == 1


def test_relay_chain_counts_critical_path() -> None:
    a, b, c = CommStats(0), CommStats(1), CommStats(2)
    d1 = a.record_send(1, 10, "relay")
    b.record_recv(0, 10, "relay", d1)
    d2 = b.record_send(2, 10, "relay")
    c.record_recv(1, 10, "relay", d2)
    assert (d1, d2) == (1, 2)
    assert (a.rounds, b.rounds, c.rounds) == (1, 2, 2)
    m = CommStats.merge([a, b, c])
    assert m.rounds == 2
    assert m.bytes_sent == m.bytes_received == 20
    assert m.per_party[1].bytes_sent == 10 and m.per_party[2].bytes_received == 10


def test_phases_split_bytes_and_rounds() -> None:
    s = CommStats(0)
    with s.phase("offline"):
        assert s.current_phase == "offline"
        s.record_send(1, 7, "triples")
        s.record_recv(1, 7, "triples", 1)
    assert s.current_phase == "online"
    for _ in range(3):
        s.record_recv(1, 5, "open", s.record_send(1, 5, "open"))
    assert s.per_phase["offline"].rounds == 1 and s.per_phase["offline"].bytes_sent == 7
    assert s.per_phase["online"].rounds == 3 and s.per_phase["online"].bytes_sent == 15
    assert s.rounds == sum(c.rounds for c in s.per_tag.values()) == 4
    with pytest.raises(ParameterError), s.phase(""):
        pass


def test_receiving_an_older_layer_does_not_add_rounds() -> None:
    s = CommStats(0)
    s.record_recv(1, 1, "x", 5)
    s.record_recv(2, 1, "x", 2)
    assert s.rounds == 5
    assert s.record_send(1, 1, "y") == 6


def test_merge_and_as_dict() -> None:
    parties = [CommStats(i) for i in range(2)]
    for i, s in enumerate(parties):
        d = s.record_send(1 - i, 100 + i, "t")
        s.record_recv(1 - i, 101 - i, "t", d)
    m = CommStats.merge(parties)
    assert m.bytes_sent == m.bytes_received == 201
    assert m.rounds == 1 and m.per_tag["t"].rounds == 1
    assert m.max_party_bytes == 101
    d = m.as_dict()
    json.dumps(d)
    assert d["per_party"]["1"]["bytes_sent"] == 101
    assert parties[0].as_dict()["per_peer"]["1"]["bytes_received"] == 101


def test_cost_model_by_hand() -> None:
    s = CommStats(0)
    for _ in range(3):
        s.record_recv(1, 500_000, "x", s.record_send(1, 1_000_000, "x"))
    assert s.rounds == 3 and s.max_party_bytes == 3_000_000
    lan = project(s, 0.5, LAN)
    assert lan == pytest.approx(3 * 0.2e-3 + 8 * 3e6 / 10e9 + 0.5)
    wan = project([s], 0.5, WAN)
    assert wan == pytest.approx(3 * 50e-3 + 8 * 3e6 / 100e6 + 0.5)
    assert estimate(0, 0, 1.25, WAN) == 1.25
    with pytest.raises(ParameterError):
        NetworkSetting("bad", 0.1, 0)
    with pytest.raises(ParameterError):
        project(s, -1.0, LAN)


def test_leakage_ledger_is_append_only() -> None:
    ledger = LeakageLedger()
    ledger.record("key holder", "aggregate gradient of step 3", "decrypt")
    ledger.record(2, "which clients dropped", "unmask")
    ledger.record("key holder", "aggregate gradient of step 4", "decrypt")
    assert len(ledger) == 3
    assert [e.what for e in ledger.by_party()["key holder"]] == [
        "aggregate gradient of step 3",
        "aggregate gradient of step 4",
    ]
    assert ledger.as_dict()["entries"][1] == {
        "party": 2,
        "what": "which clients dropped",
        "stage": "unmask",
    }
    assert not hasattr(ledger, "remove") and not hasattr(ledger, "clear")
    with pytest.raises(ParameterError):
        ledger.record("server", "", "x")


def test_cost_report() -> None:
    s = CommStats(0)
    s.record_recv(1, 2000, "x", s.record_send(1, 1000, "x"))
    rep = CostReport("test-protocol", comm=s)
    with rep.timer("online"):
        pass
    with rep.timer("online"):
        pass
    assert set(rep.phases) == {"online"} and rep.phases["online"] >= 0
    assert rep.rounds == 1
    rep.leakage.record("server", "sum of inputs", "aggregate")
    rep.metrics["accuracy"] = 0.9
    d = rep.as_dict()
    json.dumps(d)
    assert d["projected"]["WAN"] == pytest.approx(50e-3 + 8 * 2000 / 100e6 + rep.total_seconds)
    assert rep.projected(LAN) == pytest.approx(0.2e-3 + 8 * 2000 / 10e9 + rep.total_seconds)
    text = rep.summary()
    assert "test-protocol" in text and "sum of inputs" in text and "WAN" in text
    bare = CostReport("no-comm", rounds=2)
    assert bare.projected(WAN) == pytest.approx(0.1)
