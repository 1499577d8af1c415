"""End to end: the aggregate equals the plaintext sum under dropouts at every stage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from secagg_fixtures import Round, expected_sum, make_config, make_inputs

from securecomp.encoding import quantize
from securecomp.errors import InsufficientParticipantsError, ReplayError
from securecomp.secagg import (
    MaskedInput,
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    SecAggSimulation,
    Stage,
    ThreatModel,
    decode_message,
    dropouts,
    encode_message,
    simulate,
)
from securecomp.secagg.messages import Header

STAGES = list(Stage)


def _predict(cfg: SecAggConfig, drop_at: dict[int, int]) -> tuple[bool, tuple[int, ...]]:
    """Independent prediction: does the round finish, and who survives?

    ``drop_at[u] = s`` means client u's upload at stage s (and later) never arrives.
    """
    t, g = cfg.threshold, cfg.graph
    live = [frozenset(u for u in range(cfg.n) if drop_at.get(u, 9) > s) for s in range(4)]
    closed = {u: set(g.closed_neighbourhood(u)) for u in range(cfg.n)}
    ok = all(len(closed[u] & live[0]) >= t for u in live[0])
    ok = ok and all(len(closed[u] & live[1]) >= t for u in live[1])
    ok = ok and all(len(closed[u] & live[2]) >= t for u in live[1])
    # Unmasking: every survivor's b and every late dropout's key need t holders in U4.
    ok = ok and all(len(closed[u] & live[3]) >= t for u in live[2])
    ok = ok and all(len((closed[u] - {u}) & live[3]) >= t for u in live[1] - live[2])
    ok = ok and len(live[0]) >= t and len(live[2]) > 0
    return ok, tuple(sorted(live[2]))


def _check_run(cfg: SecAggConfig, drop_at: dict[int, int], seed: int) -> None:
    xs = make_inputs(cfg, seed)
    schedule: dict[Stage, list[int]] = {}
    for u, s in drop_at.items():
        schedule.setdefault(STAGES[s], []).append(u)
    ok, survivors = _predict(cfg, drop_at)
    sim = SecAggSimulation(cfg, xs, faults=dropouts(schedule))
    if not ok:
        with pytest.raises(InsufficientParticipantsError):
            sim.run()
        assert sim.server.result is None and sim.server.aborted
        return
    out = sim.run()
    assert out.survivors == survivors
    assert np.array_equal(out.aggregate, expected_sum(cfg, xs, survivors))
    # Dequantized aggregate = exact sum of the quantized survivors' values / scale.
    signed = sum(
        (
            np.where(
                xs[u] >= 1 << (cfg.bits - 1),
                xs[u].astype(np.int64) - (1 << cfg.bits),
                xs[u].astype(np.int64),
            )
            for u in survivors
        ),
        np.zeros(cfg.dim, dtype=np.int64),
    )
    assert np.array_equal(out.result.dequantized(), signed / cfg.quantization.scale)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 9), data=st.data())
def test_secagg_sum_with_random_dropouts_at_every_stage(n: int, data) -> None:
    t = data.draw(st.integers(2, n))
    cfg = make_config(n, dim=6, threshold=t)
    drop_at = data.draw(st.dictionaries(st.integers(0, n - 1), st.integers(0, 3), max_size=n))
    _check_run(cfg, drop_at, data.draw(st.integers(0, 1000)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(8, 20), data=st.data())
def test_secagg_plus_sum_with_random_dropouts_at_every_stage(n: int, data) -> None:
    k = data.draw(st.sampled_from([2, 4, 6]))
    t = data.draw(st.integers(2, k + 1))
    cfg = make_config(n, dim=5, degree=k, threshold=t)
    drop_at = data.draw(st.dictionaries(st.integers(0, n - 1), st.integers(0, 3), max_size=n // 3))
    _check_run(cfg, drop_at, data.draw(st.integers(0, 1000)))


def test_full_participation_and_float_mean() -> None:
    cfg = SecAggConfig.create(12, 40, clip=2.0, scale_bits=10, session=b"s1")
    rng = np.random.default_rng(4)
    updates = [rng.uniform(-2, 2, 40) for _ in range(12)]
    q = [quantize(x, cfg.quantization, rng=rng).values for x in updates]
    out = simulate(cfg, q)
    assert out.survivors == tuple(range(12))
    mean = out.result.dequantized() / 12
    assert np.max(np.abs(mean - np.mean(updates, axis=0))) < 12 / 1024  # rounding only


def test_searched_secagg_plus_configuration_end_to_end() -> None:
    cfg = SecAggConfig.create(
        60, 16, clip=1.0, scale_bits=8, protocol="secagg+", threat=ThreatModel(0.05, 0.1)
    )
    assert not cfg.graph.is_complete
    xs = make_inputs(cfg, 2)
    out = simulate(
        cfg,
        xs,
        faults=dropouts({Stage.MASKED_INPUT_COLLECTION: [1, 7, 30], Stage.SHARE_KEYS: [2, 40]}),
    )
    assert set(out.survivors) == set(range(60)) - {1, 2, 7, 30, 40}
    assert np.array_equal(out.aggregate, expected_sum(cfg, xs, out.survivors))


def test_fewer_than_t_survivors_aborts_and_server_learns_nothing() -> None:
    cfg = make_config(7, threshold=5)
    xs = make_inputs(cfg)
    sim = SecAggSimulation(cfg, xs, faults=dropouts({Stage.MASKED_INPUT_COLLECTION: [0, 1, 2]}))
    with pytest.raises(InsufficientParticipantsError) as info:
        sim.run()
    assert info.value.stage == Stage.MASKED_INPUT_COLLECTION.value
    assert sim.server.result is None and sim.server.aborted
    # The server never started unmasking: no self-mask seed or key was reconstructed.
    assert all("sum" not in e.what for e in sim.server.leakage)
    assert sim.report is not None and sim.report.metrics["aborted"]
    with pytest.raises(InsufficientParticipantsError):
        sim.server.close_stage()


def test_too_few_unmask_responses_aborts() -> None:
    cfg = make_config(6, threshold=4)
    sim = SecAggSimulation(cfg, make_inputs(cfg), faults=dropouts({Stage.UNMASKING: [0, 1, 2]}))
    with pytest.raises(InsufficientParticipantsError):
        sim.run()
    assert sim.server.result is None


def test_masked_input_replayed_into_next_round_does_not_unmask() -> None:
    cfg = make_config(5, dim=16)
    xs = make_inputs(cfg, 9)
    # Client 3's masked input of round 1.
    r1 = Round(cfg, xs, round=1)
    _, masked1, _ = r1.until_unmask_request()
    old = masked1[3]
    r2 = Round(cfg, xs, round=2)
    deliveries = r2.until_shares()[2]
    masked2 = r2.reply(deliveries)
    # As is, the old message is refused (its header says round 1).
    with pytest.raises(ReplayError):
        r2.server.receive(decode_message(encode_message(old)))
    # Re-labelled as round 2, it is accepted but its masks are round-1 masks: no unmasking.
    forged = MaskedInput(Header(cfg.session, 2, 3, "server", cfg.fingerprint), old.bits, old.values)
    for u, m in masked2.items():
        r2.server.receive(forged if u == 3 else m)
    requests = {m.header.recipient: m for m in r2.server.close_stage()}
    r2.upload(r2.reply(requests))
    r2.server.close_stage()
    result = r2.server.result
    assert result is not None
    true_sum = expected_sum(cfg, xs, range(5))
    assert not np.array_equal(result.aggregate, true_sum)
    diff = (result.aggregate - true_sum) & np.uint64((1 << cfg.bits) - 1)
    assert np.count_nonzero(diff) >= cfg.dim - 1  # garbage in (almost) every coordinate


def test_weighted_inputs_within_max_weight() -> None:
    cfg = make_config(4, dim=3, max_weight=3)
    quant = cfg.quantization
    rng = np.random.default_rng(1)
    base = [quantize(rng.uniform(-1, 1, 3), quant, rng=rng).values for _ in range(4)]
    weights = [1, 2, 3, 3]
    mod = np.uint64((1 << cfg.bits) - 1)
    weighted = [(b * np.uint64(w)) & mod for b, w in zip(base, weights, strict=True)]
    out = simulate(cfg, weighted)
    assert np.array_equal(out.aggregate, expected_sum(cfg, weighted, range(4)))


def test_server_round_must_match() -> None:
    cfg = make_config(3)
    server = SecAggServer(cfg, round=4)
    msg = SecAggClient(cfg, 0, make_inputs(cfg)[0], round=5).advertise_keys()
    with pytest.raises(ReplayError):
        server.receive(msg)
