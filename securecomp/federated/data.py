"""Heterogeneous per-user test data for federated binary logistic models (seeded, not secret).

Two sources, both drawn from a caller's ``numpy.random.Generator`` (test data only: nothing
here is a secret, so nothing here uses the CSPRNG):

1. `synthetic_fedprox`: Synthetic(alpha, beta) of Li et al., "Federated Optimization in
   Heterogeneous Networks" (MLSys 2020), section 5.1 and appendix C.1. Per user k:

   * u_k ~ N(0, alpha), model w_k ~ N(u_k, 1) per coordinate, bias b_k ~ N(u_k, 1);
   * B_k ~ N(0, beta), mean v_k ~ N(B_k, 1) per coordinate, features x ~ N(v_k, Sigma) with
     Sigma diagonal, Sigma_jj = j^-1.2 (j = 1..d);
   * alpha controls how much local models differ, beta how much local data differ.

   As in the authors' released generator, alpha and beta are used as standard deviations
   (the paper's N(0, alpha) notation does not say), so alpha and beta mean what they mean
   in the published data sets.

   *Binarised for a binary logistic model*: the paper labels with argmax of a 10-class
   softmax(W_k x + b_k). We keep one logit and label y = 1[w_k . x + b_k > 0], the two-class
   argmax with the second logit fixed at 0. (A two-column softmax would not do: the label
   depends on the column difference W_1 - W_0, in which the shared mean u_k cancels, so
   alpha would have no effect.) Labels are a deterministic function of x, as in the paper.
   Because the user's feature mean v_k dominates the logit, most users' labels are heavily
   skewed: with 100 users and d = 60, the minority class is under 5% of a user's samples
   for about 69%, 81% and 87% of users at (alpha, beta) = (0, 0), (0.5, 0.5), (1, 1) (mean
   of seeds 0-4), and for none under `synthetic_iid`. That label skew is part of the
   heterogeneity a personalized model can exploit.

   Sample counts follow a power law, as section 5.1 states: n_k = floor(m (1 + P_k)) with
   P_k ~ Lomax(a), i.e. Pareto with minimum m and tail index a, capped at ``max_samples``.
   The defaults (m = 50, a = 1.5, mean 150) are close to the mean of about 143 samples per
   user of the published data sets (whose code draws lognormal(4, 2) + 50 instead).

   `synthetic_iid` is the paper's Synthetic-IID: one model w, b ~ N(0, 1) shared by every
   user and x ~ N(0, Sigma) for all.

2. `dirichlet_split` / `federated_breast_cancer`: the non-IID label split of Yurochkin et
   al., "Bayesian Nonparametric Federated Learning of Neural Networks" (ICML 2019),
   experiments: for each class c, client proportions p_c ~ Dir(alpha 1_K), and a fraction
   p_c,j of the class's samples goes to client j (small alpha: each class concentrated on
   few clients; large alpha: close to IID). Hsu, Qi and Brown (2019) draw the transposed
   version (a class mix per client); the per-class form used here assigns every sample. Applied
   to scikit-learn's bundled Wisconsin breast cancer data (569 samples, 30 features);
   scikit-learn is imported only when that function is called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import ParameterError, ShapeMismatchError

__all__ = [
    "ClientData",
    "FederatedData",
    "dirichlet_split",
    "federated_breast_cancer",
    "synthetic_fedprox",
    "synthetic_iid",
]


@dataclass(frozen=True)
class ClientData:
    """One client's samples: features ``x`` of shape (n, d) float64, labels ``y`` (n,) in {0, 1}."""

    x: NDArray[np.float64]
    y: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 1 or self.x.shape[0] != self.y.shape[0]:
            raise ShapeMismatchError(
                f"client data needs x of shape (n, d) and y of shape (n,), "
                f"got {self.x.shape} and {self.y.shape}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class FederatedData:
    """Per-client data sets with their feature names.

    For synthetic data, ``weights`` (K, d) and ``biases`` (K,) are the true per-user models:
    ``clients[k].y == (clients[k].x @ weights[k] + biases[k] > 0)``.
    """

    clients: tuple[ClientData, ...]
    feature_names: tuple[str, ...]
    weights: NDArray[np.float64] | None = None
    biases: NDArray[np.float64] | None = None

    @property
    def sizes(self) -> NDArray[np.int64]:
        """Number of samples per client."""
        return np.array([len(c) for c in self.clients], dtype=np.int64)


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(
            "pass rng=numpy.random.default_rng(seed): test data is drawn from a numpy Generator"
        )
    return rng


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _nonneg(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ParameterError(f"{name} must be a real number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x) or x < 0:
        raise ParameterError(f"{name} must be finite and >= 0, got {value!r}")
    return x


def _power_law_sizes(
    rng: np.random.Generator, num_users: int, min_samples: int, tail: float, max_samples: int
) -> NDArray[np.int64]:
    sizes = np.floor(min_samples * (1.0 + rng.pareto(tail, size=num_users)))
    return np.minimum(sizes, max_samples).astype(np.int64)


def _sigma_sqrt(dim: int) -> NDArray[np.float64]:
    # Standard deviations sqrt(j^-1.2), j = 1..d: Sigma is diagonal, so x = v + sqrt(Sigma) z
    # has exactly the distribution N(v, Sigma).
    return np.arange(1, dim + 1, dtype=np.float64) ** -0.6


def _draw(
    rng: np.random.Generator,
    means: NDArray[np.float64],
    w: NDArray[np.float64],
    b: NDArray[np.float64],
    sizes: NDArray[np.int64],
) -> tuple[ClientData, ...]:
    scale = _sigma_sqrt(w.shape[1])
    clients = []
    for k, n in enumerate(sizes):
        x = means[k] + rng.standard_normal((int(n), w.shape[1])) * scale
        y = (x @ w[k] + b[k] > 0).astype(np.int64)
        clients.append(ClientData(x, y))
    return tuple(clients)


def _sizes_args(
    rng: np.random.Generator,
    num_users: int,
    dim: int,
    min_samples: int,
    tail: float,
    max_samples: int,
) -> NDArray[np.int64]:
    _positive_int("num_users", num_users)
    _positive_int("dim", dim)
    _positive_int("min_samples", min_samples)
    if _positive_int("max_samples", max_samples) < min_samples:
        raise ParameterError("max_samples must be >= min_samples")
    if _nonneg("tail", tail) == 0:
        raise ParameterError("tail (the power-law index) must be > 0")
    return _power_law_sizes(rng, num_users, min_samples, tail, max_samples)


def synthetic_fedprox(
    alpha: float,
    beta: float,
    *,
    rng: np.random.Generator,
    num_users: int = 30,
    dim: int = 60,
    min_samples: int = 50,
    tail: float = 1.5,
    max_samples: int = 5000,
) -> FederatedData:
    """Synthetic(alpha, beta) of FedProx (Li et al. 2020, section 5.1), binary labels.

    Parameters
    ----------
    alpha, beta : heterogeneity of the local models and of the local data (>= 0).
    rng : the generator all draws come from (same seed, same data).
    num_users, dim : number of users and of features (paper: 30 and 60).
    min_samples, tail, max_samples : power-law sample counts (see the module docstring).

    Returns
    -------
    FederatedData
        Clients with x of shape (n_k, dim) and y in {0, 1}, and the true (w_k, b_k).
    """
    rng = _check_rng(rng)
    a, be = _nonneg("alpha", alpha), _nonneg("beta", beta)
    sizes = _sizes_args(rng, num_users, dim, min_samples, tail, max_samples)
    u = rng.normal(0.0, a, size=num_users)
    big_b = rng.normal(0.0, be, size=num_users)
    means = rng.normal(big_b[:, None], 1.0, size=(num_users, dim))
    w = rng.normal(u[:, None], 1.0, size=(num_users, dim))
    b = rng.normal(u, 1.0)
    names = tuple(f"x{j}" for j in range(dim))
    return FederatedData(_draw(rng, means, w, b, sizes), names, w, b)


def synthetic_iid(
    *,
    rng: np.random.Generator,
    num_users: int = 30,
    dim: int = 60,
    min_samples: int = 50,
    tail: float = 1.5,
    max_samples: int = 5000,
) -> FederatedData:
    """Synthetic-IID of FedProx: one model w, b ~ N(0, 1) for all, x ~ N(0, Sigma) for all."""
    rng = _check_rng(rng)
    sizes = _sizes_args(rng, num_users, dim, min_samples, tail, max_samples)
    w = np.broadcast_to(rng.standard_normal(dim), (num_users, dim)).copy()
    b = np.full(num_users, rng.standard_normal())
    means = np.zeros((num_users, dim))
    names = tuple(f"x{j}" for j in range(dim))
    return FederatedData(_draw(rng, means, w, b, sizes), names, w, b)


def dirichlet_split(
    labels: ArrayLike,
    num_clients: int,
    alpha: float,
    *,
    rng: np.random.Generator,
    min_size: int = 0,
    max_tries: int = 100,
) -> list[NDArray[np.int64]]:
    """Split sample indices among clients with per-class proportions p_c ~ Dir(alpha 1_K).

    Every index appears in exactly one client (each class's shuffled indices are cut by a
    multinomial draw of its size over p_c). If some client gets fewer than ``min_size``
    samples, the split is redrawn, up to ``max_tries`` times.

    Returns
    -------
    list of numpy.ndarray
        ``num_clients`` sorted int64 index arrays partitioning ``range(len(labels))``.

    Raises
    ------
    ParameterError
        Invalid arguments, or no split meeting ``min_size`` within ``max_tries`` draws
        (raise alpha or lower min_size).
    """
    rng = _check_rng(rng)
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ShapeMismatchError(f"labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind not in "iub":
        raise ParameterError(f"labels must be integers (class ids), got dtype {y.dtype}")
    k = _positive_int("num_clients", num_clients)
    a = _nonneg("alpha", alpha)
    if a == 0:
        raise ParameterError("alpha must be > 0 (a Dirichlet concentration)")
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise ParameterError(f"min_size must be an integer >= 0, got {min_size!r}")
    if min_size * k > y.size:
        raise ParameterError(f"{y.size} samples cannot give {k} clients {min_size} each")
    tries = _positive_int("max_tries", max_tries)
    for _ in range(tries):
        parts: list[list[NDArray[np.int64]]] = [[] for _ in range(k)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c)).astype(np.int64)
            p = rng.dirichlet(np.full(k, a))
            if not np.all(np.isfinite(p)):
                raise ParameterError(f"alpha={a:g} is too small for a stable Dirichlet draw")
            counts = rng.multinomial(idx.size, p)
            for j, chunk in enumerate(np.split(idx, np.cumsum(counts)[:-1])):
                parts[j].append(chunk)
        out = [np.sort(np.concatenate(pj)) if pj else np.empty(0, np.int64) for pj in parts]
        if min(o.size for o in out) >= min_size:
            return out
    raise ParameterError(
        f"no Dirichlet({a:g}) split gave every one of {k} clients >= {min_size} samples in "
        f"{tries} draws; raise alpha, lower min_size, or use fewer clients"
    )


def federated_breast_cancer(
    num_clients: int,
    alpha: float,
    *,
    rng: np.random.Generator,
    standardize: bool = True,
    min_size: int = 0,
) -> FederatedData:
    """scikit-learn's breast cancer data split non-IID by `dirichlet_split` (y: 1 = benign).

    With ``standardize``, features are centred and scaled with statistics of the *whole*
    data set: a test-data convenience that a real federation would compute securely.

    """
    rng = _check_rng(rng)
    from sklearn.datasets import load_breast_cancer  # deferred: keeps package import light
    bunch: Any = load_breast_cancer()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    if standardize:
        x = (x - x.mean(axis=0)) / x.std(axis=0)
    parts = dirichlet_split(y, num_clients, alpha, rng=rng, min_size=min_size)
    clients = tuple(ClientData(x[i], y[i]) for i in parts)
    names = tuple(str(n) for n in bunch.feature_names)
    return FederatedData(clients, names)
