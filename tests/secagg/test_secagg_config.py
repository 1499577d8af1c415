"""Configuration: no-wrap refusal, thresholds, threat-model checks, fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
from secagg_fixtures import make_config

from securecomp.encoding import QuantizationParams, quantize
from securecomp.errors import EncodingOverflowError, ParameterError
from securecomp.secagg import SecAggConfig, ThreatModel, check_input, complete_graph


def test_create_picks_the_smallest_modulus_that_cannot_wrap() -> None:
    cfg = SecAggConfig.create(100, 10, clip=1.0, scale_bits=15)
    # 100 * 2^15 = 3276800 needs 22 bits + sign = 23.
    assert cfg.bits == 23 and cfg.n * cfg.quantization.level_bound <= 2 ** (cfg.bits - 1) - 1
    assert cfg.protocol == "secagg" and cfg.threshold == 51 and cfg.graph.is_complete
    assert len(cfg.session) == 16 and len(cfg.fingerprint) == 32


def test_configuration_that_could_wrap_is_refused() -> None:
    quant = QuantizationParams(clip=1.0, scale=2.0**10, modulus_bits=16)
    with pytest.raises(EncodingOverflowError):
        SecAggConfig(
            n=100, threshold=51, dim=4, encoding=quant, graph=complete_graph(100), session=b"s"
        )
    with pytest.raises(EncodingOverflowError):
        make_config(10, bits=12, max_weight=4)  # weights count too
    with pytest.raises(ParameterError):
        SecAggConfig.create(10, 4, clip=1.0, scale_bits=60)  # needs more than 64 bits


@pytest.mark.parametrize("t", [1, 11])
def test_threshold_range(t: int) -> None:
    with pytest.raises(ParameterError):
        make_config(10, threshold=t)


def test_threat_model_is_enforced() -> None:
    quant = QuantizationParams(clip=1.0, scale=16.0, modulus_bits=16)
    # 3 corrupt clients out of 10 with t = 3 could reconstruct an honest client's secrets.
    with pytest.raises(ParameterError, match="threat model"):
        SecAggConfig(
            n=10,
            threshold=3,
            dim=4,
            encoding=quant,
            graph=complete_graph(10),
            session=b"s",
            threat=ThreatModel(corrupt_fraction=0.3),
        )
    # With 40% dropouts a threshold of 7 cannot be met.
    with pytest.raises(ParameterError, match="threat model"):
        SecAggConfig(
            n=10,
            threshold=7,
            dim=4,
            encoding=quant,
            graph=complete_graph(10),
            session=b"s",
            threat=ThreatModel(dropout_fraction=0.4),
        )


def test_secagg_plus_create_uses_the_search() -> None:
    cfg = SecAggConfig.create(
        500, 10, clip=1.0, scale_bits=8, protocol="secagg+", threat=ThreatModel(0.05, 0.05)
    )
    assert cfg.protocol == "secagg+" and cfg.graph.degree < 60
    assert cfg.threshold <= cfg.graph.degree + 1
    with pytest.raises(ParameterError):
        SecAggConfig.create(10, 4, clip=1.0, scale_bits=8, protocol="other")  # type: ignore[arg-type]


def test_fingerprint_depends_on_every_parameter() -> None:
    base = make_config(6)
    others = [
        make_config(7),
        make_config(6, dim=9),
        make_config(6, threshold=3),
        make_config(6, bits=20),
        make_config(6, degree=2),
    ]
    assert all(o.fingerprint != base.fingerprint for o in others)
    assert make_config(6).fingerprint == base.fingerprint


def test_input_validation() -> None:
    cfg = make_config(4, dim=3)
    rng = np.random.default_rng(0)
    ok = quantize(np.array([1.0, -1.0, 0.5]), cfg.quantization, rng=rng).values
    assert check_input(ok, cfg).dtype == cfg.dtype
    with pytest.raises(ParameterError):
        check_input(ok[:2], cfg)
    with pytest.raises(ParameterError):
        check_input(ok.astype(np.int64), cfg)
    with pytest.raises(EncodingOverflowError):
        check_input(np.array([1 << cfg.bits, 0, 0], dtype=np.uint64), cfg)
    # In range mod 2^b but beyond clip * scale: could make the sum wrap.
    big = np.array([cfg.quantization.level_bound + 1, 0, 0], dtype=np.uint64)
    with pytest.raises(EncodingOverflowError):
        check_input(big, cfg)
    negative = (np.uint64(1 << cfg.bits) - big).astype(np.uint64)
    with pytest.raises(EncodingOverflowError):
        check_input(negative, cfg)
