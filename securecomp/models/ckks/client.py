"""The inference client of CKKS batch inference: its own key, its features, its scores.

The client generates its own CKKS key (no Galois keys: batch inference never rotates),
sends the public context to the server, encrypts its features column-packed (one
ciphertext per feature and per block of ``N/2`` rows, padded with zero rows to whole
blocks so that a model encrypted once over ``N/2`` rows fits every block), and decrypts the
scores. Thousands of rows cost the same as one: a block of 4096 rows at N = 8192 is
``d`` ciphertexts in, one out.

What it learns: the scores of its own rows (for a linear model, ``d + 1`` independent
queries determine the model: an inherent property of a scoring service).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    MalformedMessageError,
    ShapeMismatchError,
)
from securecomp.he.ckks import CKKSBackend, CKKSContext
from securecomp.models.ckks import messages as msg
from securecomp.params import DEFAULT_CKKS_PARAMETERS, CKKSParameters

__all__ = ["InferenceClient", "block_rows"]


def block_rows(rows: int, slots: int) -> list[slice]:
    """Blocks of ``slots`` rows covering ``range(rows)`` (the last one padded when sent)."""
    return [slice(i, min(i + slots, rows)) for i in range(0, rows, slots)]


class InferenceClient:
    """A party that wants scores for its rows without revealing them.

    Parameters
    ----------
    params : CKKSParameters
        Depth 1 suffices for logits (the default ``[60, 40, 40, 60]``); probabilities
        through a polynomial sigmoid need ``1 + ceil(log2(degree + 1))`` levels
        (`securecomp.models.ckks.plan.plan_inference`).
    """

    role = "inference client"

    def __init__(self, params: CKKSParameters = DEFAULT_CKKS_PARAMETERS) -> None:
        self.context = CKKSContext.generate(params)
        self.backend = CKKSBackend(self.context)

    @property
    def params(self) -> CKKSParameters:
        return self.context.params

    @property
    def key(self) -> str:
        """The key id (hex) the server files this client under."""
        return self.context.key_id.hex()

    def public_context(self) -> bytes:
        """What the server and the key holder need to compute for this client."""
        return self.context.to_bytes(galois_keys=False)

    def encrypt_query(
        self, X: ArrayLike, *, model: str = "encrypted", output: str = "logits"
    ) -> bytes:
        """Encrypt ``X`` (rows, d) column-packed, in blocks of ``N/2`` rows.

        Raises
        ------
        ShapeMismatchError
            ``X`` not 2-d or empty.
        EncodingOverflowError
            NaN, inf, or values beyond the decryptable range.
        """
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ShapeMismatchError(f"features must be a non-empty 2-d array, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise EncodingOverflowError("features contain NaN or inf; clean them before encrypting")
        slots = self.params.slot_count
        batches = []
        for block in block_rows(arr.shape[0], slots):
            part = arr[block]
            if part.shape[0] < slots:
                part = np.vstack([part, np.zeros((slots - part.shape[0], arr.shape[1]))])
            batches.append(self.backend.encrypt(part).to_bytes())
        return msg.pack(
            msg.INFER_QUERY,
            client=self.key,
            model=model,
            output=output,
            rows=int(arr.shape[0]),
            batches=batches,
        )

    def decrypt_scores(self, reply: bytes) -> NDArray[np.float64]:
        """Decrypt the server's ``ckks.infer.scores`` reply: one score per query row."""
        m = msg.unpack(reply, msg.INFER_SCORES, {"client": str, "rows": int, "batches": list})
        if m["client"] != self.key:
            raise KeyMismatchError("these scores were computed for another client's key")
        parts = []
        for raw in m["batches"]:
            if type(raw) is not bytes:
                raise MalformedMessageError("malformed score batch")
            parts.append(self.backend.from_bytes(raw).decrypt(self.context))
        scores = np.concatenate(parts) if parts else np.zeros(0)
        if m["rows"] > scores.size:
            raise MalformedMessageError(f"{m['rows']} scores announced, {scores.size} received")
        return scores[: m["rows"]]
