"""Encrypted inference: the server scores a user's CKKS-encrypted features with the global model.

Roles (each holds only what is listed):

* the user's device (`InferenceClient`): the CKKS secret key (`securecomp.he.ckks`,
  TenSEAL; N = 8192, chain [60, 40, 40, 60], scale 2^40, 128-bit by default), its features,
  and its personal model;
* the server (`InferenceServer`): the *public* context (no secret key, no rotation keys)
  and the global model in the clear.

Protocol (one request; Cheon, Kim, Kim and Song, "Homomorphic Encryption for Arithmetic of
Approximate Numbers", ASIACRYPT 2017, for the scheme):

1. the device generates a key and sends the public context once;
2. it encrypts its feature matrix ``X`` (m rows, d features) column-packed (one ciphertext
   per feature, rows in the slots) and sends it;
3. the server computes ``X w + b`` homomorphically (plaintext-ciphertext products and
   additions: depth 1, no rotation) and returns the encrypted scores;
4. the device decrypts the scores and applies the sigmoid itself. It may combine them with
   its personal model's scores, which never leave the device (`combine`).

Threat model: semi-honest server. It learns the shape of the request (m and d) and nothing
about the features or the scores (IND-CPA security of CKKS under RLWE). The user learns the
scores, hence, over many requests, the global model: the global model is not a secret here
(under DP training it is itself DP, and post-processing keeps it so). Decrypted values stay
with the key holder, so no noise flooding is needed (`securecomp.he.ckks.release` is for
values that leave it). A malicious server could return wrong scores; nothing here detects
that. Simulation: both roles run in this process and exchange serialized bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import ParameterError, ShapeMismatchError
from securecomp.federated.local import sigmoid
from securecomp.net.report import CostReport

__all__ = [
    "EncryptedInference",
    "InferenceClient",
    "InferenceServer",
    "combine",
    "encrypted_inference",
]


class InferenceClient:
    """The user's side: key generation, encryption of features, decryption of scores.

    Invariant: the secret context never leaves this object; `public_context` exports none.

    Parameters
    ----------
    context : a secret `securecomp.he.ckks.CKKSContext`; generated with secure defaults
        when omitted.
    """

    def __init__(self, context: object | None = None) -> None:
        from securecomp.he.ckks import CKKSBackend, CKKSContext

        ctx = CKKSContext.generate() if context is None else context
        if not isinstance(ctx, CKKSContext) or not ctx.is_private:
            raise ParameterError("the user's context must be a secret CKKSContext")
        self._context = ctx
        self._backend = CKKSBackend(ctx)

    def public_context(self) -> bytes:
        """The public context for the server: no secret key, no rotation keys."""
        return self._context.public(galois_keys=False).to_bytes()

    def encrypt_features(self, x: ArrayLike) -> bytes:
        """Encrypt an (m, d) feature matrix column-packed; returns the request bytes."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.size == 0:
            raise ShapeMismatchError(f"features must be a non-empty (m, d) matrix, got {arr.shape}")
        return self._backend.to_bytes(self._backend.encrypt(arr))

    def decrypt_scores(self, data: bytes) -> NDArray[np.float64]:
        """Decrypt the server's answer: the linear scores ``X w + b`` (kept on the device)."""
        scores = self._backend.from_bytes(data).decrypt(self._context)
        return np.asarray(scores, dtype=np.float64).reshape(-1)


class InferenceServer:
    """The server's side: scores encrypted features with the global model.

    Parameters
    ----------
    public_context : the bytes of `InferenceClient.public_context`.
    params : the global model ``[w_1 .. w_d, b]``.
    """

    def __init__(self, public_context: bytes, params: ArrayLike) -> None:
        from securecomp.he.ckks import CKKSBackend, CKKSContext

        ctx = CKKSContext.from_bytes(public_context)
        if ctx.is_private:
            raise ParameterError("the server must receive a public context, not the secret key")
        self._backend = CKKSBackend(ctx)
        p = np.asarray(params, dtype=np.float64)
        if p.ndim != 1 or p.size < 2 or not np.all(np.isfinite(p)):
            raise ParameterError("params must be a finite vector [w_1 .. w_d, b]")
        self._w = p[:-1].copy()
        self._b = float(p[-1])

    @property
    def holds_secret_key(self) -> bool:
        """Always False: what the server can decrypt is nothing."""
        return bool(self._backend.context.is_private)

    def score(self, request: bytes) -> bytes:
        """``X w + b`` on the encrypted features; returns the encrypted scores."""
        features = self._backend.from_bytes(request)
        if features.shape[-1] != self._w.shape[0]:
            raise ShapeMismatchError(
                f"the request has {features.shape[-1]} features, the model {self._w.shape[0]}"
            )
        return self._backend.to_bytes(features @ self._w + self._b)


def combine(
    global_scores: ArrayLike, personal_scores: ArrayLike, weight: float = 0.5
) -> NDArray[np.float64]:
    """On the device: ``weight * sigmoid(personal) + (1 - weight) * sigmoid(global)``."""
    if not 0.0 <= weight <= 1.0:
        raise ParameterError(f"weight must lie in [0, 1], got {weight!r}")
    g = sigmoid(np.asarray(global_scores, dtype=np.float64))
    p = sigmoid(np.asarray(personal_scores, dtype=np.float64))
    out: NDArray[np.float64] = weight * p + (1.0 - weight) * g
    return out


@dataclass(frozen=True)
class EncryptedInference:
    """One encrypted request, end to end.

    ``max_error`` is the largest ``|decrypted score - plaintext score|`` (CKKS is
    approximate; about 2^-20 at the default scale for standardized features).
    """

    scores: NDArray[np.float64]
    probabilities: NDArray[np.float64]
    max_error: float
    rows: int
    features: int
    report: CostReport

    @property
    def upload_bytes(self) -> int:
        """Bytes of the public context plus the encrypted features."""
        return int(self.report.metrics["context_bytes"]) + int(self.report.metrics["request_bytes"])

    @property
    def download_bytes(self) -> int:
        """Bytes of the encrypted scores."""
        return int(self.report.metrics["response_bytes"])


def encrypted_inference(
    x: ArrayLike, params: ArrayLike, *, client: InferenceClient | None = None
) -> EncryptedInference:
    """Run one request between a device and a server (both simulated here).

    The plaintext score ``x @ w + b`` is computed only to report ``max_error``.
    """
    report = CostReport(protocol="CKKS encrypted scoring, device and server (simulation)")
    features = np.asarray(x, dtype=np.float64)
    with report.timer("keygen (device)"):
        device = client if client is not None else InferenceClient()
    context = device.public_context()
    with report.timer("encrypt (device)"):
        request = device.encrypt_features(features)
    start = time.perf_counter()
    server = InferenceServer(context, params)
    with report.timer("score (server)"):
        response = server.score(request)
    report.metrics["server_seconds"] = time.perf_counter() - start
    with report.timer("decrypt (device)"):
        scores = device.decrypt_scores(response)
    report.leakage.record("server", "number of rows and features of the request", "score")
    report.leakage.record("device", "its scores under the global model (its output)", "decrypt")
    report.metrics.update(
        {
            "context_bytes": len(context),
            "request_bytes": len(request),
            "response_bytes": len(response),
            "server_holds_secret_key": server.holds_secret_key,
        }
    )
    p = np.asarray(params, dtype=np.float64)
    plain = features @ p[:-1] + p[-1]
    return EncryptedInference(
        scores=scores,
        probabilities=sigmoid(scores),
        max_error=float(np.max(np.abs(scores - plain))),
        rows=int(features.shape[0]),
        features=int(features.shape[1]),
        report=report,
    )
