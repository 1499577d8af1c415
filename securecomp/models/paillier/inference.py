"""Encrypted inference: the client's encrypted features times the server's plaintext model.

Protocol (roles `InferenceClient` and `InferenceServer`, every message sealed on their link)
--------------------------------------------------------------------------------------------
1. The server sends an *offer*: the number of features ``d``, the layout, and for the
   packed layout the headroom ``h`` its product needs.
2. The client encrypts its rows under its own Paillier key with a column of ones appended
   (the intercept) and sends its public key and the ciphertexts:

   * ``packed``: the transposed matrix ``[X, 1]^T`` of shape ``(d+1, m)``, each feature
     column packed across rows (many rows per ciphertext), slots with ``h`` bits of
     headroom;
   * ``unpacked``: ``[X, 1]`` of shape ``(m, d+1)``, one ciphertext per value.

3. The server computes ``Enc(s) = sum_j w_j * Enc(col_j)`` (packed: each packed column
   scaled by one plaintext weight, then a sum over the leading axis) or ``Enc(X1) @ w``
   (unpacked), using only ciphertext additions and plaintext scalar multiplications, and
   returns the encrypted scores (re-randomized on serialization).
4. The client decrypts its scores (logits, or predictions for regression).

Threat model: semi-honest. The server holds no secret key: it learns the query's shape
(``m`` rows, ``d`` features) and nothing about the values (IND-CPA of Paillier). The client
learns its scores, which is its output; for a linear model ``d + 1`` independent rows of
scores determine the model (equation solving, Tramèr et al., "Stealing Machine Learning
Models via Prediction APIs", USENIX Security 2016), so this protocol protects the client's
features, not the model. The packed offer also tells the
client ``h``, about ``log2((d+1) * max_j |w_j| * 2^f)``.

Precision: features are encoded with ``frac_bits`` (default 16) fractional bits, the
model with ``f`` (at most 20, lowered so that the packed slots fit 64 bits); the score
error is below ``sum_j |w_j| 2^-(frac_bits+1) + sum_j |x_j| 2^-(f+1)`` (plus products).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from securecomp.errors import (
    KeyMismatchError,
    MalformedMessageError,
    ParameterError,
    ShapeMismatchError,
)
from securecomp.he.paillier import (
    PaillierBackend,
    PaillierSecretKey,
    load_public_key,
    paillier_keygen,
)
from securecomp.he.paillier.layout import ceil_log2
from securecomp.he.paillier.serialize import CIPHERTEXT_KIND
from securecomp.models.paillier.config import InferenceLayout
from securecomp.models.paillier.messages import OFFER_KIND, QUERY_KIND, control, read_control
from securecomp.models.paillier.role import Role
from securecomp.net.report import LeakageLedger

__all__ = [
    "CLIENT",
    "FEATURE_VALUE_BITS",
    "SERVER",
    "InferenceClient",
    "InferenceServer",
    "model_frac_bits",
]

CLIENT = "client"
SERVER = "server"

#: Signed width of the client's encoded features in the packed layout.
FEATURE_VALUE_BITS = 32
_MAX_MODEL_FRAC_BITS = 20
_MIN_MODEL_FRAC_BITS = 8
_MAX_SLOT_BITS = 64

FloatArray = npt.NDArray[np.float64]


def model_frac_bits(model: FloatArray) -> tuple[int, int]:
    """Fractional bits ``f`` for the model and the packed headroom ``h`` they need.

    ``f`` is the largest value up to 20 for which ``FEATURE_VALUE_BITS + h <= 64`` with
    ``h = ceil(log2((d+1) * max_j |round(w_j 2^f)|))``.

    Raises
    ------
    ParameterError
        If even 8 fractional bits do not fit (weights beyond about ``2^24 / (d+1)``).
    """
    for f in range(_MAX_MODEL_FRAC_BITS, _MIN_MODEL_FRAC_BITS - 1, -1):
        top = int(np.abs(np.rint(np.ldexp(model, f))).max()) if model.size else 0
        h = ceil_log2(max(model.size * top, 1))
        if FEATURE_VALUE_BITS + h <= _MAX_SLOT_BITS:
            return f, h
    raise ParameterError(
        f"model weights up to {float(np.abs(model).max()):.3g} are too large for packed "
        "inference (the slots would exceed 64 bits); use inference_layout='unpacked' or "
        "rescale the features"
    )


def _as_rows(X: npt.ArrayLike, d: int) -> FloatArray:
    arr = np.array(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ShapeMismatchError(f"expected features of shape (m, {d}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ParameterError("features must be finite (no NaN or inf)")
    return arr


class InferenceServer(Role):
    """Holds the plaintext model ``(w, b)``; computes encrypted scores; holds no secret key.

    Parameters
    ----------
    coef : array_like of shape (d,)
    intercept : float
    layout : {"packed", "unpacked"}
    ledger : LeakageLedger, optional
    """

    def __init__(
        self,
        coef: npt.ArrayLike,
        intercept: float,
        *,
        layout: InferenceLayout = "packed",
        ledger: LeakageLedger | None = None,
    ) -> None:
        super().__init__(SERVER, ledger)
        w = np.array(coef, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ShapeMismatchError(f"coef must have shape (d,), got {w.shape}")
        self.model = np.append(w, float(intercept))
        if not np.isfinite(self.model).all():
            raise ParameterError("the model must be finite")
        if layout not in ("packed", "unpacked"):
            raise ParameterError(f"layout must be 'packed' or 'unpacked', got {layout!r}")
        self.layout = layout
        self.n_features = w.size
        self.frac_bits, self.headroom_bits = (
            model_frac_bits(self.model) if layout == "packed" else (_MAX_MODEL_FRAC_BITS, 0)
        )
        # Query q uses rounds 3q (offer), 3q + 1 (query), 3q + 2 (scores): an old message
        # replayed into a later query fails to open.
        self.queries = 0

    def connect(self, session: bytes, directory: Mapping[str, bytes]) -> None:
        """Join a session (query numbering restarts: the session id separates them)."""
        super().connect(session, directory)
        self.queries = 0

    def offer(self) -> bytes:
        """Step 1: the model dimension, layout and packed headroom, sealed for the client."""
        body = {
            "n_features": self.n_features,
            "layout": self.layout,
            "headroom_bits": self.headroom_bits,
        }
        with self._busy():
            return self.link(CLIENT).seal(control(OFFER_KIND, body), round=3 * self.queries)

    def answer(self, data: bytes) -> bytes:
        """Step 3: the encrypted scores for the client's query.

        Raises
        ------
        KeyMismatchError
            The features are not encrypted under the public key the client sent.
        ShapeMismatchError
            The features do not have the offered number of columns (or layout).
        """
        with self._busy():
            env = self.link(CLIENT).open(data, round=3 * self.queries + 1, kind=QUERY_KIND)
            body = read_control(env, QUERY_KIND, {"public_key": bytes, "features": bytes})
            pk = load_public_key(body["public_key"])
            backend = PaillierBackend(pk, frac_bits=self.frac_bits)
            x = backend.from_bytes(body["features"])  # KeyMismatchError under another key
            d1 = self.n_features + 1
            if self.layout == "packed":
                if x.layout != "packed" or x.ndim != 2 or x.shape[0] != d1:
                    raise ShapeMismatchError(
                        f"expected packed feature columns of shape ({d1}, m), got "
                        f"{x.layout} {x.shape}"
                    )
                m = x.shape[1]
                scores = (x * self.model[:, np.newaxis]).sum(axis=0)
            else:
                if x.layout != "unpacked" or x.ndim != 2 or x.shape[1] != d1:
                    raise ShapeMismatchError(
                        f"expected unpacked rows of shape (m, {d1}), got {x.layout} {x.shape}"
                    )
                m = x.shape[0]
                scores = x @ self.model
            self.ledger.record(
                SERVER,
                f"the shape of the query ({m} rows x {self.n_features} features), no values",
                "inference",
            )
            out = self.link(CLIENT).seal(scores.to_bytes(), round=3 * self.queries + 2)
            self.queries += 1
            return out


class InferenceClient(Role):
    """Holds its features and its own Paillier key pair; sees only its own scores.

    Parameters
    ----------
    key_bits : int
        Modulus size of the key generated when ``keys`` is not given.
    frac_bits : int, default 16
        Fractional bits of the encrypted features.
    keys : (PaillierBackend, PaillierSecretKey), optional
    ledger : LeakageLedger, optional
    """

    def __init__(
        self,
        *,
        key_bits: int,
        frac_bits: int = 16,
        keys: tuple[PaillierBackend, PaillierSecretKey] | None = None,
        ledger: LeakageLedger | None = None,
    ) -> None:
        super().__init__(CLIENT, ledger)
        backend, secret = paillier_keygen(key_bits, frac_bits=frac_bits) if keys is None else keys
        if secret.public_key != backend.key:
            raise KeyMismatchError("the secret key does not belong to the backend's public key")
        self.backend, self._secret_key = backend, secret
        self.frac_bits = frac_bits
        self._pending: tuple[int, str] | None = None
        self.queries = 0

    def connect(self, session: bytes, directory: Mapping[str, bytes]) -> None:
        """Join a session (query numbering restarts: the session id separates them)."""
        super().connect(session, directory)
        self.queries = 0
        self._pending = None

    def query(self, offer: bytes, X: npt.ArrayLike) -> bytes:
        """Step 2: encrypt ``[X, 1]`` as the offer asks; returns the sealed query."""
        with self._busy():
            env = self.link(SERVER).open(offer, round=3 * self.queries, kind=OFFER_KIND)
            body = read_control(
                env, OFFER_KIND, {"n_features": int, "layout": str, "headroom_bits": int}
            )
            d, layout, h = body["n_features"], body["layout"], body["headroom_bits"]
            if layout not in ("packed", "unpacked") or not 0 <= h <= 64 - FEATURE_VALUE_BITS:
                raise MalformedMessageError(f"invalid offer: layout {layout!r}, headroom {h}")
            rows = _as_rows(X, d)
            m = rows.shape[0]
            ones = np.ones((m, 1))
            if layout == "packed":
                enc = self.backend.encrypt(
                    np.hstack([rows, ones]).T,
                    max_additions=1 << h,
                    value_bits=FEATURE_VALUE_BITS,
                    frac_bits=self.frac_bits,
                )
            else:
                enc = self.backend.encrypt(
                    np.hstack([rows, ones]), layout="unpacked", frac_bits=self.frac_bits
                )
            self._pending = (m, layout)
            body = {"public_key": self.backend.key.to_bytes(), "features": enc.to_bytes()}
            return self.link(SERVER).seal(control(QUERY_KIND, body), round=3 * self.queries + 1)

    def read_scores(self, data: bytes) -> FloatArray:
        """Step 4: decrypt the scores of the rows sent in `query`.

        Raises
        ------
        KeyMismatchError
            The scores are not encrypted under this client's key.
        ShapeMismatchError
            Not one score per queried row.
        """
        if self._pending is None:
            raise ParameterError("no query is pending: call query() first")
        with self._busy():
            raw = self.link(SERVER).open_bytes(
                data, round=3 * self.queries + 2, kind=CIPHERTEXT_KIND
            )
            scores = self.backend.from_bytes(raw)
            m, layout = self._pending
            if scores.shape != (m,) or scores.layout != layout:
                raise ShapeMismatchError(
                    f"expected {m} {layout} scores, got {scores.layout} {scores.shape}"
                )
            values = scores.decrypt(self._secret_key)
            self._pending = None
            self.queries += 1
            self.ledger.record(
                CLIENT,
                f"the scores of its {m} rows (its output; d + 1 independent rows determine "
                "a linear model) and the packed headroom offered by the server",
                "inference",
            )
            return values
