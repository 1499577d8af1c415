"""Synthetic(alpha, beta) of FedProx and the Dirichlet label split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.errors import ParameterError, ShapeMismatchError
from securecomp.federated import (
    dirichlet_split,
    federated_breast_cancer,
    synthetic_fedprox,
    synthetic_iid,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- Synthetic(alpha, beta) ------------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "beta"), [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)])
def test_synthetic_shapes_labels_and_sizes(alpha: float, beta: float) -> None:
    data = synthetic_fedprox(alpha, beta, rng=rng(1), num_users=12, dim=20, max_samples=400)
    assert len(data.clients) == 12 and len(data.feature_names) == 20
    assert data.weights is not None and data.biases is not None
    assert data.weights.shape == (12, 20) and data.biases.shape == (12,)
    for k, c in enumerate(data.clients):
        assert c.x.shape == (len(c), 20) and c.x.dtype == np.float64
        assert c.y.dtype == np.int64 and set(np.unique(c.y)) <= {0, 1}
        # Labels are the binarised argmax: the sign of the user's own logit.
        np.testing.assert_array_equal(c.y, (c.x @ data.weights[k] + data.biases[k] > 0))
    assert np.all((data.sizes >= 50) & (data.sizes <= 400))


def test_synthetic_is_seed_deterministic() -> None:
    a = synthetic_fedprox(1.0, 1.0, rng=rng(7), num_users=5, dim=8)
    b = synthetic_fedprox(1.0, 1.0, rng=rng(7), num_users=5, dim=8)
    c = synthetic_fedprox(1.0, 1.0, rng=rng(8), num_users=5, dim=8)
    for ca, cb in zip(a.clients, b.clients, strict=True):
        np.testing.assert_array_equal(ca.x, cb.x)
        np.testing.assert_array_equal(ca.y, cb.y)
    assert a.weights is not None and c.weights is not None
    assert not np.array_equal(a.weights, c.weights)


def test_alpha_and_beta_control_model_and_data_heterogeneity() -> None:
    # Per-user mean weight is u_k + noise of variance 1/d: its spread across users is
    # about alpha^2 + 1/d. Likewise the per-user feature mean spread is about beta^2 + 1/d.
    d, k = 60, 400
    hom = synthetic_fedprox(0.0, 0.0, rng=rng(2), num_users=k, dim=d, max_samples=50)
    het = synthetic_fedprox(2.0, 3.0, rng=rng(2), num_users=k, dim=d, max_samples=50)
    assert hom.weights is not None and het.weights is not None
    assert np.var(hom.weights.mean(axis=1)) == pytest.approx(1 / d, rel=0.3)
    assert np.var(het.weights.mean(axis=1)) == pytest.approx(4 + 1 / d, rel=0.2)
    # Feature means: first coordinates have the largest variance (1), so use all coordinates'
    # per-user average, whose spread is beta^2 + (1 + small)/d.
    mean_hom = np.array([c.x.mean() for c in hom.clients])
    mean_het = np.array([c.x.mean() for c in het.clients])
    assert np.var(mean_hom) < 0.1
    assert np.var(mean_het) == pytest.approx(9.0, rel=0.2)


def test_feature_covariance_is_diagonal_power_law() -> None:
    data = synthetic_fedprox(
        0.0, 0.0, rng=rng(3), num_users=1, dim=10, min_samples=40000, max_samples=40000
    )
    x = data.clients[0].x
    cov = np.cov(x, rowvar=False)
    expected = np.arange(1, 11) ** -1.2
    np.testing.assert_allclose(np.diag(cov), expected, rtol=0.05)
    off = cov - np.diag(np.diag(cov))
    assert np.max(np.abs(off)) < 0.02


def test_power_law_sizes_have_a_heavy_tail() -> None:
    data = synthetic_fedprox(0.0, 0.0, rng=rng(4), num_users=3000, dim=2, max_samples=10**6)
    sizes = data.sizes
    assert sizes.min() >= 50
    # Pareto(m=50, a=1.5): P(n > 200) = (50/200)^1.5 = 1/8.
    assert np.mean(sizes > 200) == pytest.approx(0.125, abs=0.02)


def test_synthetic_iid_shares_one_model() -> None:
    data = synthetic_iid(rng=rng(5), num_users=6, dim=7)
    assert data.weights is not None and data.biases is not None
    assert np.all(data.weights == data.weights[0]) and np.all(data.biases == data.biases[0])
    for k, c in enumerate(data.clients):
        np.testing.assert_array_equal(c.y, c.x @ data.weights[k] + data.biases[k] > 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha": -1.0, "beta": 0.0},
        {"alpha": float("nan"), "beta": 0.0},
        {"alpha": 0.0, "beta": float("inf")},
        {"alpha": 0.0, "beta": 0.0, "num_users": 0},
        {"alpha": 0.0, "beta": 0.0, "dim": True},
        {"alpha": 0.0, "beta": 0.0, "min_samples": 100, "max_samples": 50},
        {"alpha": 0.0, "beta": 0.0, "tail": 0.0},
    ],
)
def test_synthetic_refuses_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        synthetic_fedprox(rng=rng(), **kwargs)  # type: ignore[arg-type]


def test_rng_must_be_a_numpy_generator() -> None:
    with pytest.raises(ParameterError, match="default_rng"):
        synthetic_fedprox(0.0, 0.0, rng=np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        dirichlet_split([0, 1], 2, 1.0, rng=0)  # type: ignore[arg-type]


# --- Dirichlet split -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=0, max_size=200),
    clients=st.integers(1, 12),
    alpha=st.floats(0.01, 100.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_dirichlet_split_covers_every_sample_exactly_once(
    labels: list[int], clients: int, alpha: float, seed: int
) -> None:
    parts = dirichlet_split(np.array(labels, dtype=np.int64), clients, alpha, rng=rng(seed))
    assert len(parts) == clients
    joined = np.concatenate(parts)
    assert joined.dtype == np.int64
    np.testing.assert_array_equal(np.sort(joined), np.arange(len(labels)))
    for p in parts:
        np.testing.assert_array_equal(p, np.sort(p))


def _label_skew(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between a client's label mix and the global one."""
    classes = np.unique(labels)
    glob = np.array([np.mean(labels == c) for c in classes])
    tvs = [
        0.5 * np.abs(np.array([np.mean(labels[p] == c) for c in classes]) - glob).sum()
        for p in parts
        if p.size
    ]
    return float(np.mean(tvs))


def test_dirichlet_split_is_heterogeneous_for_small_alpha() -> None:
    labels = np.repeat(np.arange(4), 500)
    small = [_label_skew(labels, dirichlet_split(labels, 10, 0.05, rng=rng(s))) for s in range(5)]
    large = [_label_skew(labels, dirichlet_split(labels, 10, 1000.0, rng=rng(s))) for s in range(5)]
    assert min(small) > 0.5  # most clients hold one or two classes
    assert max(large) < 0.1  # the global mix up to sampling noise (about 0.05 here)


def test_dirichlet_split_seed_and_min_size() -> None:
    labels = np.repeat([0, 1], 100)
    a = dirichlet_split(labels, 5, 0.5, rng=rng(9))
    b = dirichlet_split(labels, 5, 0.5, rng=rng(9))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    parts = dirichlet_split(labels, 5, 1.0, rng=rng(1), min_size=10)
    assert min(p.size for p in parts) >= 10
    with pytest.raises(ParameterError, match="raise alpha"):
        dirichlet_split(labels, 20, 0.001, rng=rng(1), min_size=9, max_tries=3)
    with pytest.raises(ParameterError, match="cannot give"):
        dirichlet_split(labels, 5, 1.0, rng=rng(1), min_size=41)
    with pytest.raises(ParameterError):
        dirichlet_split(labels, 5, 0.0, rng=rng(1))
    with pytest.raises(ParameterError):
        dirichlet_split(labels.astype(float), 5, 1.0, rng=rng(1))
    with pytest.raises(ShapeMismatchError):
        dirichlet_split(labels.reshape(2, -1), 5, 1.0, rng=rng(1))


def test_federated_breast_cancer() -> None:
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_breast_cancer

    ref = load_breast_cancer()
    data = federated_breast_cancer(8, 0.3, rng=rng(0), min_size=5)
    assert len(data.clients) == 8 and data.sizes.sum() == 569
    assert data.feature_names == tuple(ref.feature_names)
    x = np.concatenate([c.x for c in data.clients])
    y = np.concatenate([c.y for c in data.clients])
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(x.std(axis=0), 1.0)
    assert y.sum() == ref.target.sum()
    raw = federated_breast_cancer(3, 1.0, rng=rng(0), standardize=False)
    rows = {tuple(r) for c in raw.clients for r in c.x}
    assert rows == {tuple(r) for r in ref.data}
