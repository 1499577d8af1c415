"""Local training against scikit-learn and numpy, Ditto personalization, and the device."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from securecomp.errors import ConsentError, ParameterError, ShapeMismatchError
from securecomp.federated import (
    ConsentRegistry,
    Feature,
    FeatureSchema,
    PseudonymKey,
    Purpose,
    synthetic_fedprox,
)
from securecomp.federated.device import Device
from securecomp.federated.fedavg import FedAvgConfig, FedAvgTrainer
from securecomp.federated.local import (
    LocalTraining,
    gradient,
    local_train,
    losses,
    score,
)
from securecomp.federated.personalize import ditto_personal_model, personalization_report
from securecomp.secagg import ThreatModel


def _data(seed: int, n: int = 200, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x @ rng.normal(size=d) + 0.3 + rng.normal(0, 0.5, n) > 0).astype(np.int64)
    return x, y


@pytest.mark.parametrize("kind", ["logistic", "linear"])
def test_gradient_matches_finite_differences(kind: str) -> None:
    x, y = _data(0, n=30)
    rng = np.random.default_rng(1)
    params = rng.normal(size=5)
    l2 = 0.1
    g = gradient(params, x, y, kind, l2=l2)  # type: ignore[arg-type]

    def objective(p: np.ndarray) -> float:
        return float(losses(p, x, y, kind).mean() + 0.5 * l2 * np.sum(p[:-1] ** 2))  # type: ignore[arg-type]

    h = 1e-6
    numeric = np.array(
        [(objective(params + h * e) - objective(params - h * e)) / (2 * h) for e in np.eye(5)]
    )
    assert np.allclose(g, numeric, atol=1e-6)


def test_local_training_converges_to_scikit_learn() -> None:
    x, y = _data(2)
    l2 = 0.05
    ours = local_train(np.zeros(5), x, y, LocalTraining(epochs=3000, learning_rate=1.0, l2=l2))
    # scikit-learn minimizes 0.5||w||^2 + C sum(loss): the same optimum for C = 1 / (n l2).
    ref = LogisticRegression(C=1.0 / (len(y) * l2), tol=1e-10, max_iter=10_000).fit(x, y)
    assert np.allclose(ours[:-1], ref.coef_[0], atol=1e-4)
    assert ours[-1] == pytest.approx(ref.intercept_[0], abs=1e-4)


def test_linear_training_converges_to_least_squares() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.7 + rng.normal(0, 0.1, 100)
    ours = local_train(np.zeros(4), x, y, LocalTraining("linear", epochs=2000, learning_rate=0.3))
    design = np.hstack([x, np.ones((100, 1))])
    exact, *_ = np.linalg.lstsq(design, y, rcond=None)
    assert np.allclose(ours, exact, atol=1e-8)
    assert score(ours, x, y, "linear") > 0.99


def test_ditto_interpolates_between_local_and_global() -> None:
    x, y = _data(4)
    spec = LocalTraining(epochs=200, learning_rate=0.5)
    w_global = np.array([0.5, -0.5, 0.2, 0.0, 1.0])
    # lambda = 0: plain local training from the global model.
    assert np.array_equal(
        ditto_personal_model(w_global, x, y, spec, 0.0), local_train(w_global, x, y, spec)
    )
    # Large lambda: the personal model stays at the global one.
    stiff = ditto_personal_model(w_global, x, y, LocalTraining(epochs=200, learning_rate=0.01),
                                 100.0)
    assert np.linalg.norm(stiff - w_global) < 0.01
    # In between, the distance to the global model shrinks as lambda grows.
    dist = [np.linalg.norm(ditto_personal_model(w_global, x, y, spec, lam) - w_global)
            for lam in (0.0, 0.1, 1.0)]
    assert dist[0] > dist[1] > dist[2]
    with pytest.raises(ParameterError):
        ditto_personal_model(w_global, x, y, spec, -1.0)


def test_personalized_beats_global_on_heterogeneous_data() -> None:
    rng = np.random.default_rng(5)
    data = synthetic_fedprox(1.0, 1.0, rng=rng, num_users=20, dim=5, min_samples=40,
                             max_samples=80)
    reg = ConsentRegistry.open(":memory:", PseudonymKey.generate())
    devices = {}
    for i, c in enumerate(data.clients):
        p = reg.opt_in(f"u{i}", Purpose.TRAINING, Purpose.PERSONALIZATION)
        cut = len(c) * 3 // 4
        devices[p] = Device(p, c.x[:cut], c.y[:cut], c.x[cut:], c.y[cut:])
    spec = LocalTraining(epochs=5, learning_rate=0.1)
    cfg = FedAvgConfig(rounds=5, local=spec, threat=ThreatModel(), clip=2.0)
    trainer = FedAvgTrainer(reg, devices, cfg, rng=rng)
    result = trainer.fit()
    report = personalization_report(
        devices.values(), result.params, LocalTraining(epochs=30, learning_rate=0.1), 0.1
    )
    assert len(report.clients) == 20
    assert report.mean_personalized > report.mean_global + 0.1
    assert report.improved_fraction >= 0.4  # strictly better (many ties at 100%)
    assert np.mean([c.personalized >= c.global_model for c in report.clients]) >= 0.8
    # The personal models live on the devices only: no reference from the server's side.
    for dev in devices.values():
        assert dev.has_personal_model
        personal = dev._personal
        holders = [r for r in gc.get_referrers(personal) if r is not dev and r is not vars(dev)]
        assert holders == []
    assert np.array_equal(trainer.params, result.params)


def test_device_refuses_undeclared_features_and_erases() -> None:
    schema = FeatureSchema([Feature("age", "float64", 0, 120), Feature("dose", "float64", 0, 10)])
    cols = {"age": np.array([30.0, 40.0]), "dose": np.array([1.0, 2.0])}
    dev = Device.from_records("p", cols, np.array([0, 1]), schema)
    assert dev.num_samples == 2 and dev.dim == 2
    with pytest.raises(ConsentError, match="not declared"):
        Device.from_records("p", {**cols, "zip": np.array([1.0, 2.0])}, np.array([0, 1]), schema)
    dev.erase()
    assert dev.erased and dev.num_samples == 0
    with pytest.raises(ConsentError):
        dev.local_update(np.zeros(3), LocalTraining())
    with pytest.raises(ShapeMismatchError):
        Device("p", np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ParameterError):
        Device("p", np.array([[np.nan, 0.0]]), np.zeros(1))


def test_diverging_step_size_is_refused() -> None:
    x, y = _data(6)
    with pytest.raises(ParameterError, match="diverged"):
        local_train(np.zeros(5), 1e6 * x, y, LocalTraining("linear", epochs=50, learning_rate=10.0))
