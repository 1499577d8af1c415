"""Truncation: dealer-assisted (exact up to one unbiased ulp) and SecureML local (2 parties)."""

from __future__ import annotations

import numpy as np
import pytest

from securecomp.errors import EncodingOverflowError, ParameterError
from securecomp.mpc import Session, run_local
from securecomp.mpc.sharing import reveal_ring
from securecomp.mpc.truncation import truncate_dealer, truncate_local

F = 16


def additive_shares(z: np.ndarray, parties: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Uniform additive shares of int64 values (test data; the test plays the input owner)."""
    shares = [rng.integers(0, 2**64, z.size, dtype=np.uint64) for _ in range(parties - 1)]
    last = z.astype(np.int64).view(np.uint64) - np.sum(shares, axis=0, dtype=np.uint64)
    return [*shares, last]


def run_truncation(z: np.ndarray, parties: int, local: bool = False) -> np.ndarray:
    rng = np.random.default_rng(2024)

    def program(sess: Session, share: np.ndarray) -> np.ndarray | None:
        out = truncate_local(sess, share, F) if local else truncate_dealer(sess, share, F)
        return reveal_ring(sess, out, 0, "truncated")

    res = run_local(program, parties, inputs=additive_shares(z, parties, rng), timeout=30)
    return res.results[0].view(np.int64)


EDGES = np.array(
    [0, 1, -1, 2**16 - 1, -(2**16) + 1, 2**16, -(2**16), 2**62 - 1, -(2**62), 2**40, -(2**40)],
    dtype=np.int64,
)


@pytest.mark.parametrize("parties,samples", [(2, 10**6), (3, 10**6)])
def test_dealer_truncation_has_no_large_error_and_at_most_one_ulp(
    parties: int, samples: int
) -> None:
    rng = np.random.default_rng(parties)
    z = np.concatenate([EDGES, rng.integers(-(2**40) + 1, 2**40, samples, dtype=np.int64)])
    got = run_truncation(z, parties)
    err = got - (z >> F)  # floor division by 2^16
    assert set(np.unique(err).tolist()) <= {0, 1}
    # Exact multiples of 2^16 never round.
    exact = (z & (2**F - 1)) == 0
    assert np.all(err[exact] == 0)


def test_dealer_truncation_rounding_is_unbiased() -> None:
    rng = np.random.default_rng(7)
    n = 10**6
    z = rng.integers(-(2**40), 2**40, n, dtype=np.int64)
    got = run_truncation(z, 2)
    # Error of the result against the exact quotient, in ulps.
    frac = (z & (2**F - 1)).astype(np.float64) / 2**F
    err = (got - (z >> F)).astype(np.float64) - frac
    # Each error lies in (-1, 1) with variance <= 1/4: the mean is within 6 standard errors.
    assert abs(err.mean()) < 6 * 0.5 / np.sqrt(n)
    # Conditional on the fraction, rounding up has exactly that probability (q = 1/4).
    quarter = (rng.integers(-(2**30), 2**30, 10**5, dtype=np.int64) << F) + 2**14
    up = (run_truncation(quarter, 2) - (quarter >> F)).astype(np.float64)
    sigma = np.sqrt(0.25 * 0.75 / up.size)
    assert abs(up.mean() - 0.25) < 6 * sigma


def test_local_truncation_is_one_ulp_for_small_values() -> None:
    rng = np.random.default_rng(11)
    z = np.concatenate([EDGES[:7], rng.integers(-(2**30), 2**30, 10**6, dtype=np.int64)])
    err = run_truncation(z, 2, local=True) - (z >> F)
    # Failure probability |z| / 2^64 <= 2^-34 per element: none expected here.
    assert set(np.unique(err).tolist()) <= {0, 1}


@pytest.mark.parametrize("magnitude", [2**56, 2**59])
def test_local_truncation_failure_probability_matches_theory(magnitude: int) -> None:
    rng = np.random.default_rng(magnitude % 1000)
    n = 200_000
    z = (rng.choice([-1, 1], n) * magnitude).astype(np.int64)
    err = run_truncation(z, 2, local=True) - (z >> F)
    failed = np.abs(err) > 1
    # With uniform shares the result is wrong exactly when the shares wrap the wrong way:
    # probability |z| / 2^64, within SecureML's bound |z| / 2^63 (Theorem 1).
    p = magnitude / 2**64
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(failed.mean() - p) < 6 * sigma
    # A failure is a large error: about 2^(64 - f) ulps.
    assert np.all(np.abs(err[failed]) > 2**40)


def test_local_truncation_refuses_three_parties() -> None:
    with pytest.raises(ParameterError, match="2 parties"):
        run_local(lambda sess: None, 3, truncation="local")


def test_bound_tracker_refuses_untruncatable_products() -> None:
    def program(sess: Session) -> None:
        a = sess.share(np.ones(3) if sess.party_id == 0 else None, bound=2.0**20)
        b = sess.share(np.ones(3) if sess.party_id == 0 else None, bound=2.0**20)
        sent = sess.channel.stats.bytes_sent
        with pytest.raises(EncodingOverflowError, match="truncation needs"):
            a * b  # 2^40 * 2^32 > 2^62
        with pytest.raises(EncodingOverflowError):
            a @ b
        assert sess.channel.stats.bytes_sent == sent  # refused before any message

    run_local(program, 2)
