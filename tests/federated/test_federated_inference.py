"""Encrypted inference: the server scores CKKS-encrypted features holding only the public key."""

from __future__ import annotations

import numpy as np
import pytest

from securecomp.errors import KeyMismatchError, ParameterError, ShapeMismatchError
from securecomp.federated.inference import (
    InferenceClient,
    InferenceServer,
    combine,
    encrypted_inference,
)
from securecomp.federated.local import sigmoid


@pytest.fixture(scope="module")
def client() -> InferenceClient:
    return InferenceClient()  # N = 8192, [60, 40, 40, 60], 128-bit


def test_encrypted_scores_match_numpy(client: InferenceClient) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6))
    params = rng.normal(size=7)
    out = encrypted_inference(x, params, client=client)
    plain = x @ params[:-1] + params[-1]
    assert out.scores.shape == (50,)
    assert np.max(np.abs(out.scores - plain)) <= 1e-5
    assert out.max_error == pytest.approx(float(np.max(np.abs(out.scores - plain))))
    assert np.allclose(out.probabilities, sigmoid(plain), atol=1e-5)
    assert out.report.metrics["server_holds_secret_key"] is False
    assert out.upload_bytes > out.download_bytes > 0
    parties = {e.party for e in out.report.leakage}
    assert parties == {"server", "device"}


def test_server_holds_no_secret_and_cannot_decrypt(client: InferenceClient) -> None:
    from securecomp.he.ckks import CKKSBackend, CKKSContext

    public = client.public_context()
    server = InferenceServer(public, np.array([1.0, -1.0, 0.5]))
    assert not server.holds_secret_key
    response = server.score(client.encrypt_features(np.array([[1.0, 2.0], [3.0, 4.0]])))
    assert np.allclose(client.decrypt_scores(response), [-0.5, -0.5], atol=1e-5)
    server_ctx = CKKSContext.from_bytes(public)
    backend = CKKSBackend(server_ctx)
    with pytest.raises(KeyMismatchError):
        backend.from_bytes(response).decrypt(server_ctx)


def test_server_refuses_a_secret_context_and_bad_shapes(client: InferenceClient) -> None:
    secret = client._context.to_bytes(include_secret_key=True)
    with pytest.raises(ParameterError, match="public context"):
        InferenceServer(secret, np.zeros(3))
    server = InferenceServer(client.public_context(), np.zeros(4))
    with pytest.raises(ShapeMismatchError):
        server.score(client.encrypt_features(np.ones((2, 2))))
    with pytest.raises(ShapeMismatchError):
        client.encrypt_features(np.ones(3))
    with pytest.raises(ParameterError):
        InferenceServer(client.public_context(), np.array([np.nan, 1.0]))


def test_combine_on_device() -> None:
    g, p = np.array([0.0, 2.0]), np.array([2.0, 0.0])
    assert np.allclose(combine(g, p, 0.0), sigmoid(g))
    assert np.allclose(combine(g, p, 1.0), sigmoid(p))
    assert np.allclose(combine(g, p), 0.5 * (sigmoid(g) + sigmoid(p)))
    with pytest.raises(ParameterError):
        combine(g, p, 1.5)
