"""Secure aggregation of distributed-DP ring elements (`SecAggConfig.for_distributed_dp`).

Every aggregate is checked against numpy's sum modulo 2^b of the survivors' encoded
vectors, and every decoded sum against the survivors' clipped inputs (numpy) within the
DP configuration's stated error bound.
"""

from __future__ import annotations

import dataclasses

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto.ed25519 import Ed25519KeyPair
from securecomp.dp import (
    DistributedDpConfig,
    EncodedUpdate,
    decode_sum,
    encode_update,
    lift_centered,
)
from securecomp.encoding.quantize import QuantizationParams
from securecomp.errors import (
    EncodingOverflowError,
    InsufficientParticipantsError,
    MalformedMessageError,
    ParameterError,
    ReplayError,
    ShapeMismatchError,
)
from securecomp.secagg import (
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    Stage,
    ThreatModel,
    check_input,
    complete_graph,
    dropouts,
    simulate,
)
from securecomp.secagg.driver_wire import decode_config, encode_config

pytestmark = pytest.mark.timeout(120)

N, MIN_SURVIVORS, CORRUPT, DIM = 10, 7, 1, 20
ROTATION_SEED = bytes(range(32))
STAGES = (
    Stage.ADVERTISE_KEYS,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT_COLLECTION,
    Stage.UNMASKING,
)


def make_dp(mechanism: str = "ddgauss", **changes: object) -> DistributedDpConfig:
    kw: dict[str, object] = dict(
        dim=DIM,
        l2_clip=1.0,
        noise_stddev=0.5,
        scale=64.0,
        n_clients=N,
        min_survivors=MIN_SURVIVORS,
        corrupt_count=CORRUPT,
    )
    kw.update(changes)
    return DistributedDpConfig.create(mechanism, **kw)  # type: ignore[arg-type]


DPS = {m: make_dp(m) for m in ("ddgauss", "skellam")}
INPUTS = np.random.default_rng(7).normal(scale=0.6, size=(N, DIM))
# One row is far outside the clipping ball, so clipping matters to the expected sum.
INPUTS[3] *= 10.0


def clipped(x: np.ndarray, c: float) -> np.ndarray:
    return x * min(1.0, c / float(np.linalg.norm(x)))


class Round:
    """One round's configuration, rotation and encoded vectors (clients' side)."""

    def __init__(self, dp: DistributedDpConfig, cfg: SecAggConfig, inputs: np.ndarray) -> None:
        self.dp, self.cfg, self.inputs = dp, cfg, inputs
        self.rotation = dp.rotation(ROTATION_SEED, session=cfg.session, round=0)
        self.encoded = [encode_update(x, dp, self.rotation) for x in inputs]
        self.values = [e.values for e in self.encoded]

    def modular_sum(self, survivors: tuple[int, ...]) -> np.ndarray:
        """numpy: sum mod 2^b in uint64 (2^b divides 2^64, so wrapping sums are exact)."""
        total = np.sum(np.stack([self.values[u] for u in survivors]), axis=0, dtype=np.uint64)
        return np.asarray(total & np.uint64(self.dp.mask), dtype=np.uint64)

    def check(self, aggregate: np.ndarray, survivors: tuple[int, ...]) -> None:
        dp, b = self.dp, self.dp.modulus_bits
        assert aggregate.dtype == np.uint64 and aggregate.shape == (dp.padded_dim,)
        assert np.array_equal(aggregate, self.modular_sum(survivors))
        # No wrap-around: the centered lift is the integer sum of the centered encodings.
        integer_sum = np.sum([lift_centered(self.values[u], b) for u in survivors], axis=0)
        assert np.array_equal(lift_centered(aggregate, b), integer_sum)
        decoded = decode_sum(aggregate, dp, self.rotation)
        truth = np.sum([clipped(self.inputs[u], dp.l2_clip) for u in survivors], axis=0)
        error = float(np.linalg.norm(decoded - truth))
        assert error <= dp.error_bound(n_summands=len(survivors))


ROUNDS = {
    m: Round(dp, SecAggConfig.for_distributed_dp(dp, protocol="secagg"), INPUTS)
    for m, dp in DPS.items()
}


# --- set-up ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["secagg", "secagg+"])
def test_configuration_takes_ring_modulus_dimension_and_wrap_bound_from_dp(protocol) -> None:
    dp = DPS["ddgauss"]
    cfg = SecAggConfig.for_distributed_dp(dp, protocol=protocol)
    assert cfg.dp is dp and cfg.encoding is dp
    assert cfg.n == dp.n_clients and cfg.dim == dp.padded_dim == 32
    assert cfg.bits == dp.modulus_bits
    assert cfg.threshold >= dp.min_survivors
    # Default threat: the DP configuration's colluders and dropout budget.
    assert cfg.threat.corrupt_count(N) == CORRUPT
    assert cfg.threat.dropout_count(N) == N - MIN_SURVIVORS
    # The deterministic no-wrap check gives way to the recorded probabilistic bound.
    assert cfg.log2_wrap_probability == dp.log2_wrap_probability <= -dp.wrap_bits
    with pytest.raises(ParameterError, match="decode_sum"):
        _ = cfg.quantization
    with pytest.raises(ParameterError):
        _ = cfg.max_input_magnitude


def test_float_configuration_has_no_dp_and_cannot_wrap() -> None:
    cfg = SecAggConfig.create(N, DIM, clip=1.0, scale_bits=8)
    assert cfg.dp is None and cfg.encoding is cfg.quantization
    assert cfg.log2_wrap_probability == float("-inf")


def test_ring_is_smaller_than_sending_centered_integers_through_the_quantizer() -> None:
    dp = DPS["ddgauss"]
    cfg = SecAggConfig.for_distributed_dp(dp, protocol="secagg", session=b"s" * 16)
    # The float route: centered integers |v| <= 2^(b-1) at scale 1 must not wrap in a sum
    # of n, which costs about log2(n) more bits per value on the wire.
    lifted = SecAggConfig.create(
        N, cfg.dim, clip=float(1 << (cfg.bits - 1)), scale=1.0, session=b"s" * 16
    )
    assert lifted.bits >= cfg.bits + 4
    out = simulate(cfg, ROUNDS["ddgauss"].values)
    assert out.report.metrics["inputs"] == "distributed-dp"
    assert out.report.metrics["log2_wrap_probability"] == dp.log2_wrap_probability
    base = simulate(lifted, [np.zeros(cfg.dim, np.uint64)] * N)
    assert base.report.metrics["inputs"] == "quantized"

    def upload(run) -> int:
        sent = run.report.metrics["bytes_per_client"]["0"]["per_stage_sent"]
        return int(sent[Stage.MASKED_INPUT_COLLECTION.value])

    # Masked inputs are bit-packed: b bits per value against the lifted route's bits.
    saved = (cfg.dim * lifted.bits + 7) // 8 - (cfg.dim * cfg.bits + 7) // 8
    assert upload(base) - upload(out) == saved > 0


@pytest.mark.parametrize("protocol", ["secagg", "secagg+"])
def test_threshold_below_min_survivors_is_refused(protocol) -> None:
    dp = DPS["ddgauss"]
    with pytest.raises(ParameterError, match="min_survivors"):
        SecAggConfig.for_distributed_dp(dp, protocol=protocol, threshold=MIN_SURVIVORS - 1)
    cfg = SecAggConfig.for_distributed_dp(dp, protocol=protocol)
    with pytest.raises(ParameterError, match="min_survivors"):
        dataclasses.replace(cfg, threshold=MIN_SURVIVORS - 1)
    assert SecAggConfig.for_distributed_dp(dp, threshold=MIN_SURVIVORS).threshold == 7


def test_threat_model_must_match_the_dp_configuration() -> None:
    dp = DPS["ddgauss"]
    # More colluders than the noise split assumed, and fewer.
    for corrupt in (2 / N, 0.0):
        with pytest.raises(ParameterError, match="collude"):
            SecAggConfig.for_distributed_dp(dp, threat=ThreatModel(corrupt, 0.1))
    # A dropout budget that leaves fewer than min_survivors clients.
    with pytest.raises(ParameterError, match="min_survivors"):
        SecAggConfig.for_distributed_dp(dp, threat=ThreatModel(0.1, 0.4))
    ok = SecAggConfig.for_distributed_dp(dp, threat=ThreatModel(0.1, 0.2))
    assert ok.threshold >= MIN_SURVIVORS


def test_direct_construction_checks_clients_dimension_and_weight() -> None:
    dp = DPS["ddgauss"]
    cfg = SecAggConfig.for_distributed_dp(dp, protocol="secagg")
    with pytest.raises(ParameterError, match="padded length"):
        dataclasses.replace(cfg, dim=DIM)
    with pytest.raises(ParameterError, match="max_weight"):
        dataclasses.replace(cfg, max_weight=2)
    with pytest.raises(ParameterError, match="clients"):
        SecAggConfig(
            n=N + 1,
            threshold=8,
            dim=dp.padded_dim,
            encoding=dp,
            graph=complete_graph(N + 1),
            session=b"s",
            threat=ThreatModel(1 / (N + 1), 0.0),
        )
    with pytest.raises(ParameterError, match="DistributedDpConfig"):
        SecAggConfig.for_distributed_dp(cfg)  # type: ignore[arg-type]


def test_no_graph_holding_min_survivors_is_refused_with_the_window() -> None:
    # Against a malicious server t > (n + C) / 2; with min_survivors = 2 and the default
    # dropout budget n - 2, the threshold must also be <= 2: empty.
    dp = make_dp(min_survivors=2, corrupt_count=1, scale=16.0)
    threat = ThreatModel(0.1, 0.8, malicious_server=True)
    keys = [Ed25519KeyPair.generate().public_bytes for _ in range(N)]
    with pytest.raises(ParameterError, match="window"):
        SecAggConfig.for_distributed_dp(dp, protocol="secagg", threat=threat, identities=keys)


# --- end to end in the simulator ---------------------------------------------------------------


@st.composite
def dropout_schedules(draw: st.DrawFn, n: int, max_drops: int) -> dict[Stage, list[int]]:
    clients = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=max_drops))
    schedule: dict[Stage, list[int]] = {}
    for u in clients:
        schedule.setdefault(draw(st.sampled_from(STAGES)), []).append(u)
    return schedule


def survivors_of(n: int, schedule: dict[Stage, list[int]]) -> tuple[int, ...]:
    gone = {u for s, us in schedule.items() if s is not Stage.UNMASKING for u in us}
    return tuple(u for u in range(n) if u not in gone)


@settings(max_examples=30, deadline=None)
@given(
    mechanism=st.sampled_from(sorted(DPS)),
    schedule=dropout_schedules(N, N - MIN_SURVIVORS),
)
def test_aggregate_is_the_modular_sum_of_survivors_and_decodes_within_the_bound(
    mechanism, schedule
) -> None:
    rnd = ROUNDS[mechanism]
    assert rnd.cfg.threshold == MIN_SURVIVORS  # dropout budget n - min_survivors
    out = simulate(rnd.cfg, rnd.values, faults=dropouts(schedule))
    survivors = survivors_of(N, schedule)
    assert out.survivors == survivors and len(survivors) >= MIN_SURVIVORS
    rnd.check(out.aggregate, survivors)


SPARSE_N = 40
SPARSE_DP = make_dp(n_clients=SPARSE_N, min_survivors=8, corrupt_count=1)
SPARSE = Round(
    SPARSE_DP,
    SecAggConfig.for_distributed_dp(
        SPARSE_DP, protocol="secagg+", threat=ThreatModel(1 / SPARSE_N, 2 / SPARSE_N)
    ),
    np.random.default_rng(3).normal(scale=0.3, size=(SPARSE_N, DIM)),
)


@settings(max_examples=8, deadline=None)
@given(schedule=dropout_schedules(SPARSE_N, 2))
def test_secagg_plus_on_a_sparse_graph_holds_min_survivors_per_neighbourhood(schedule) -> None:
    cfg = SPARSE.cfg
    assert cfg.protocol == "secagg+" and cfg.graph.degree < SPARSE_N - 1
    # Every closed neighbourhood can hold min_survivors, and the threshold demands it.
    assert cfg.graph.degree + 1 >= cfg.threshold >= 8
    out = simulate(cfg, SPARSE.values, faults=dropouts(schedule), reorder=True, seed=1)
    SPARSE.check(out.aggregate, survivors_of(SPARSE_N, schedule))


@pytest.mark.parametrize("protocol", ["secagg", "secagg+"])
def test_against_a_malicious_server(protocol) -> None:
    if protocol == "secagg":
        dp, threat, inputs = DPS["skellam"], ThreatModel(0.1, 0.3, malicious_server=True), INPUTS
    else:
        dp, threat = SPARSE_DP, ThreatModel(1 / SPARSE_N, 2 / SPARSE_N, malicious_server=True)
        inputs = SPARSE.inputs
    n = dp.n_clients
    keys = [Ed25519KeyPair.generate() for _ in range(n)]
    cfg = SecAggConfig.for_distributed_dp(
        dp, protocol=protocol, threat=threat, identities=[k.public_bytes for k in keys]
    )
    assert cfg.malicious and cfg.threshold >= dp.min_survivors
    if protocol == "secagg":
        assert cfg.threshold == 7  # > (n + C) / 2, >= min_survivors, <= n - D
    else:
        assert cfg.graph.is_template  # labelled from the signed transcript each round
    rnd = Round(dp, cfg, inputs)
    faults = dropouts({Stage.MASKED_INPUT_COLLECTION: [2], Stage.UNMASKING: [8]})
    out = simulate(cfg, rnd.values, faults=faults, identities=keys, model_hash=b"model")
    rnd.check(out.aggregate, tuple(u for u in range(n) if u != 2))


def test_fewer_survivors_than_the_threshold_release_nothing() -> None:
    rnd = ROUNDS["ddgauss"]
    drop = list(range(N - rnd.cfg.threshold + 1))
    with pytest.raises(InsufficientParticipantsError):
        simulate(rnd.cfg, rnd.values, faults=dropouts({Stage.MASKED_INPUT_COLLECTION: drop}))


def test_result_points_to_decode_sum_instead_of_dequantizing() -> None:
    rnd = ROUNDS["ddgauss"]
    out = simulate(rnd.cfg, rnd.values)
    with pytest.raises(ParameterError, match="decode_sum"):
        out.result.dequantized()
    assert any("DP-encoded" in e.what for e in out.report.leakage)


# --- clients with other DP parameters cannot be mixed ------------------------------------------


def test_dp_fingerprint_is_bound_into_the_session() -> None:
    dp = DPS["ddgauss"]
    # Same modulus, dimension, clients and threshold; only the noise differs.
    other = make_dp(noise_stddev=0.6, modulus_bits=dp.modulus_bits)
    assert other.modulus_bits == dp.modulus_bits and other.fingerprint != dp.fingerprint
    cfg = SecAggConfig.for_distributed_dp(dp, protocol="secagg", session=b"round-7")
    mixed = SecAggConfig.for_distributed_dp(other, protocol="secagg", session=b"round-7")
    assert (mixed.n, mixed.threshold, mixed.dim, mixed.bits) == (
        cfg.n,
        cfg.threshold,
        cfg.dim,
        cfg.bits,
    )
    assert mixed.fingerprint != cfg.fingerprint
    # A float configuration of the same shape never shares the digest either.
    same_ring = QuantizationParams(clip=1.0, scale=4.0, modulus_bits=cfg.bits)
    plain = dataclasses.replace(cfg, encoding=same_ring, threat=ThreatModel())
    assert plain.bits == cfg.bits and plain.fingerprint != cfg.fingerprint
    values = ROUNDS["ddgauss"].values
    server = SecAggServer(cfg)
    stranger = SecAggClient(mixed, 0, values[0])
    with pytest.raises(ReplayError, match="fingerprint"):
        server.receive(stranger.advertise_keys())
    # ...and a client refuses the server of another DP configuration.
    client = SecAggClient(cfg, 1, values[1])
    mixed_server = SecAggServer(mixed)
    for u in range(N):
        mixed_server.receive(SecAggClient(mixed, u, values[u]).advertise_keys())
    client.advertise_keys()
    broadcast = mixed_server.close_stage()[1]
    with pytest.raises(ReplayError, match="fingerprint"):
        client.handle(broadcast)
    # The configuration blob of the drivers is checked against the fingerprint too.
    with pytest.raises(MalformedMessageError, match="fingerprint"):
        decode_config(encode_config(mixed), cfg.fingerprint)


@pytest.mark.parametrize("protocol", ["secagg", "secagg+"])
def test_configuration_travels_as_bytes(protocol) -> None:
    n = 40
    dp = make_dp("skellam", n_clients=n, min_survivors=8, corrupt_count=1)
    cfg = SecAggConfig.for_distributed_dp(dp, protocol=protocol, threat=ThreatModel(1 / n, 0.05))
    back = decode_config(encode_config(cfg), cfg.fingerprint)
    assert back.fingerprint == cfg.fingerprint
    assert back.dp == dp and back.dp.fingerprint == dp.fingerprint
    assert back.graph.neighbours(0) == cfg.graph.neighbours(0)


def test_tampered_encoding_in_the_configuration_blob_is_refused() -> None:
    cfg = ROUNDS["ddgauss"].cfg
    body = msgpack.unpackb(encode_config(cfg), raw=False)
    assert body["enc"][0] == "distributed-dp"
    bad_encodings = [
        ["distributed-dp", *body["enc"][1:-1]],  # a value missing
        ["laplace", *body["enc"][1:]],  # unknown encoding
        [*body["enc"][:8], N + 1, *body["enc"][9:]],  # min_survivors above n_clients
        [*body["enc"][:4], 0.75, *body["enc"][5:]],  # other noise: another fingerprint
        "distributed-dp",
    ]
    for enc in bad_encodings:
        blob = msgpack.packb({**body, "enc": enc}, use_bin_type=True)
        with pytest.raises(MalformedMessageError):
            decode_config(blob, cfg.fingerprint)


# --- inputs ----------------------------------------------------------------------------------


def test_wrong_inputs_are_refused_with_specific_errors() -> None:
    rnd = ROUNDS["ddgauss"]
    cfg, good, b = rnd.cfg, rnd.values[0], rnd.cfg.bits
    with pytest.raises(ParameterError, match="encode_update"):
        check_input(good.astype(np.float64), cfg)
    with pytest.raises(ParameterError, match="reduce_modulo"):
        check_input(lift_centered(good, b), cfg)
    with pytest.raises(ParameterError, match=r"EncodedUpdate\.values"):
        check_input(rnd.encoded[0], cfg)  # type: ignore[arg-type]
    with pytest.raises(ShapeMismatchError, match="padded"):
        check_input(good[:DIM], cfg)
    with pytest.raises(ShapeMismatchError):
        check_input(good.reshape(2, -1), cfg)
    too_big = good.copy()
    too_big[5] = np.uint64(1 << b)
    with pytest.raises(EncodingOverflowError, match=f"2\\^{b}"):
        check_input(too_big, cfg)
    with pytest.raises(EncodingOverflowError):
        SecAggClient(cfg, 0, too_big)
    with pytest.raises(ParameterError):
        simulate(cfg, [v.astype(np.float64) for v in rnd.values])
    assert isinstance(rnd.encoded[0], EncodedUpdate)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.integers(0, (1 << 11) - 1), min_size=32, max_size=32),
    dtype=st.sampled_from([np.uint16, np.uint32, np.uint64]),
    bad=st.one_of(st.none(), st.tuples(st.integers(0, 31), st.integers(1 << 11, (1 << 16) - 1))),
)
def test_ring_elements_are_accepted_exactly_and_out_of_range_refused(values, dtype, bad) -> None:
    cfg = ROUNDS["ddgauss"].cfg
    assert cfg.bits == 11
    arr = np.array(values, dtype=dtype)
    if bad is None:
        got = check_input(arr, cfg)
        assert got.dtype == cfg.dtype and got.tolist() == values
        assert got is not arr
    else:
        arr[bad[0]] = bad[1]
        with pytest.raises(EncodingOverflowError):
            check_input(arr, cfg)
