"""Shared fixtures and drivers of the secure-aggregation tests (not a test module)."""

from __future__ import annotations

import numpy as np

from securecomp.encoding import QuantizationParams, quantize
from securecomp.secagg import (
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    ThreatModel,
    complete_graph,
    harary_graph,
)

SESSION = b"test-session"


def make_config(
    n: int,
    *,
    dim: int = 8,
    degree: int | None = None,
    threshold: int | None = None,
    session: bytes = SESSION,
    bits: int | None = None,
    max_weight: int = 1,
) -> SecAggConfig:
    """Complete graph unless ``degree`` is given (then a Harary graph); scale 2^8, clip 1."""
    level = 256
    b = bits if bits is not None else (n * max_weight * level).bit_length() + 1
    quant = QuantizationParams(clip=1.0, scale=256.0, modulus_bits=b)
    graph = complete_graph(n) if degree is None else harary_graph(n, degree)
    t = threshold if threshold is not None else min(n // 2 + 1, graph.degree + 1)
    return SecAggConfig(
        n=n,
        threshold=t,
        dim=dim,
        encoding=quant,
        graph=graph,
        session=session,
        max_weight=max_weight,
        threat=ThreatModel(),
    )


def make_inputs(cfg: SecAggConfig, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        quantize(rng.uniform(-1.2, 1.2, cfg.dim), cfg.quantization, rng=rng).values
        for _ in range(cfg.n)
    ]


def expected_sum(cfg: SecAggConfig, xs: list[np.ndarray], survivors) -> np.ndarray:
    """Sum of the survivors' quantized inputs with Python ints, reduced mod 2^b."""
    total = [0] * cfg.dim
    for u in survivors:
        for i, v in enumerate(xs[u].tolist()):
            total[i] += int(v)
    mod = 1 << cfg.bits
    return np.array([t % mod for t in total], dtype=np.uint64)


class Round:
    """Drives typed messages between a server and clients by hand (no serialization)."""

    def __init__(self, cfg: SecAggConfig, xs: list[np.ndarray], round: int = 0) -> None:
        self.cfg = cfg
        self.server = SecAggServer(cfg, round=round)
        self.clients = {u: SecAggClient(cfg, u, xs[u], round=round) for u in range(cfg.n)}

    def advertise(self) -> dict:
        return {u: c.advertise_keys() for u, c in self.clients.items()}

    def upload(self, msgs: dict) -> None:
        for m in msgs.values():
            self.server.receive(m)

    def close(self) -> dict:
        return {m.header.recipient: m for m in self.server.close_stage()}

    def reply(self, downs: dict) -> dict:
        return {u: self.clients[u].handle(m) for u, m in downs.items()}

    def until_keys(self):
        ups = self.advertise()
        self.upload(ups)
        return ups, self.close()

    def until_shares(self):
        _, keys = self.until_keys()
        ups = self.reply(keys)
        self.upload(ups)
        return keys, ups, self.close()

    def until_unmask_request(self):
        _keys, _share_ups, deliveries = self.until_shares()
        masked = self.reply(deliveries)
        self.upload(masked)
        return deliveries, masked, self.close()
