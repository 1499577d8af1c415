"""Communication graphs for secure aggregation: complete (SecAgg) and random Harary (SecAgg+).

In Bonawitz et al. (CCS 2017) every client shares keys with and masks against every other
client: the complete graph. Bell et al. ("Secure Single-Server Aggregation with
(Poly)Logarithmic Overhead", CCS 2020, section 3) replace it by a k-regular graph: the
Harary graph H(n, k) whose node labels are permuted uniformly at random, so that which
clients end up as neighbours is unpredictable to anyone who fixed their corruptions or
dropouts before the labels were drawn.

H(n, k) for even ``k``: place ``n`` positions on a ring and join each position to the
``k/2`` positions before and after it. Client ``pi(i)`` sits at position ``i``, with ``pi``
a uniform permutation drawn by Fisher-Yates from an AES-CTR keystream
(`securecomp.crypto.prg.AesCtrPrg`) with exact rejection sampling, so the permutation is
uniform up to the PRG's security, and reproducible from its 32-byte seed (which the server
draws from the OS CSPRNG and announces with the configuration).

Against a malicious server the server must not choose the labels: the configuration then
holds a *template* (`harary_template`: ``n`` and the degree, no seed) and each round's
graph is `CommunicationGraph.derive`-d from a hash of the signed key transcript
(`securecomp.secagg.transcript.graph_seed`), which every client recomputes.

Conventions: client ids are ``0 .. n-1``; ``neighbours(u)`` excludes ``u``;
``closed_neighbourhood(u)`` includes it (the holders of ``u``'s Shamir shares).
"""

from __future__ import annotations

import hashlib
import operator
import secrets
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from securecomp.crypto.prg import SEED_BYTES, AesCtrPrg
from securecomp.errors import ParameterError

__all__ = [
    "MAX_CLIENTS",
    "CommunicationGraph",
    "complete_graph",
    "harary_graph",
    "harary_template",
    "random_permutation",
]

#: Largest number of clients: ids must be distinct nonzero Shamir points below 2^31 - 1.
MAX_CLIENTS = (1 << 31) - 2

_TWO_64 = 1 << 64


def random_permutation(n: int, seed: bytes) -> npt.NDArray[np.int64]:
    """A uniform permutation of ``range(n)`` from a 32-byte seed (Fisher-Yates).

    Each swap index ``j`` in ``[0, i]`` comes from a 64-bit keystream word accepted only
    below the largest multiple of ``i + 1`` (rejection, no modulo bias).
    """
    n = operator.index(n)
    if n < 0:
        raise ParameterError(f"n must be >= 0, got {n}")
    prg = AesCtrPrg(seed)
    perm = np.arange(n, dtype=np.int64)
    words = prg.random_uint64(n).tolist()
    k = 0
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = _TWO_64 - _TWO_64 % bound
        while True:
            if k < len(words):
                w = words[k]
                k += 1
            else:
                w = int(prg.random_uint64(1)[0])
            if w < limit:
                break
        j = w % bound
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _check_n(n: object) -> int:
    if isinstance(n, bool):
        raise ParameterError("the number of clients must be an int, got a bool")
    try:
        value = operator.index(n)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ParameterError(f"the number of clients must be an int, got {n!r}") from exc
    if not 2 <= value <= MAX_CLIENTS:
        raise ParameterError(f"the number of clients must lie in [2, {MAX_CLIENTS}], got {value}")
    return value


@dataclass(frozen=True, eq=False)
class CommunicationGraph:
    """Who shares keys with whom: an undirected regular graph on clients ``0 .. n-1``.

    Invariant: ``v in neighbours(u)`` iff ``u in neighbours(v)``; every client has exactly
    ``degree`` neighbours; ``u not in neighbours(u)``.

    Build with `complete_graph` or `harary_graph`, not directly.

    Attributes
    ----------
    n : int
        Number of clients.
    degree : int
        Neighbours per client (``n - 1`` for the complete graph).
    seed : bytes or None
        Label-permutation seed of a Harary graph (``None`` for the complete graph and for
        a template, whose labels are derived per round).
    """

    n: int
    degree: int
    seed: bytes | None = None
    _adjacency: npt.NDArray[np.int64] | None = field(default=None, repr=False)

    @property
    def is_complete(self) -> bool:
        return self.degree == self.n - 1

    @property
    def is_template(self) -> bool:
        """A Harary graph whose labels are not drawn yet (see `derive`)."""
        return not self.is_complete and self._adjacency is None

    def derive(self, seed: bytes) -> CommunicationGraph:
        """This round's graph: the template's H(n, degree) labelled from ``seed``; the
        complete graph and a labelled graph are returned unchanged."""
        if not self.is_template:
            return self
        return harary_graph(self.n, self.degree, seed)

    @property
    def _table(self) -> npt.NDArray[np.int64]:
        # (n, degree) array of sorted neighbour ids; the complete graph is never tabulated.
        if self._adjacency is None:
            if not self.is_complete:
                raise ParameterError(
                    "this Harary graph is a template: its labels are derived each round from "
                    "the signed key transcript; use the round's derived graph"
                )
            raise ParameterError("the complete graph has no neighbour table")
        return self._adjacency

    def neighbours(self, u: int) -> tuple[int, ...]:
        """The neighbours of client ``u`` (sorted, excluding ``u``)."""
        u = self._check_client(u)
        if self.is_complete:
            return tuple(v for v in range(self.n) if v != u)
        return tuple(self._table[u].tolist())

    def closed_neighbourhood(self, u: int) -> tuple[int, ...]:
        """``neighbours(u)`` plus ``u`` itself, sorted: the holders of ``u``'s shares."""
        return tuple(sorted((*self.neighbours(u), self._check_client(u))))

    def are_neighbours(self, u: int, v: int) -> bool:
        """Whether ``u != v`` are joined by an edge."""
        u, v = self._check_client(u), self._check_client(v)
        if u == v:
            return False
        if self.is_complete:
            return True
        row = self._table[u]
        i = int(np.searchsorted(row, v))
        return i < row.size and int(row[i]) == v

    def _check_client(self, u: object) -> int:
        try:
            value = operator.index(u)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ParameterError(f"client id must be an int, got {u!r}") from exc
        if not 0 <= value < self.n:
            raise ParameterError(f"client id {value} is outside 0..{self.n - 1}")
        return value

    def describe(self) -> bytes:
        """Canonical bytes identifying the graph (part of the configuration fingerprint)."""
        h = hashlib.sha256(b"securecomp/secagg/graph/v1")
        h.update(self.n.to_bytes(8, "big") + self.degree.to_bytes(8, "big"))
        h.update(self.seed or b"")
        return h.digest()


def complete_graph(n: int) -> CommunicationGraph:
    """The complete graph on ``n`` clients (Bonawitz et al. 2017)."""
    n = _check_n(n)
    return CommunicationGraph(n=n, degree=n - 1)


def harary_template(n: int, degree: int) -> CommunicationGraph:
    """H(n, degree) without labels, to be `CommunicationGraph.derive`-d each round.

    A degree of ``n - 1`` or more gives the complete graph (which needs no labels).
    """
    n = _check_n(n)
    k = _check_degree(n, degree)
    if k >= n - 1:
        return complete_graph(n)
    return CommunicationGraph(n=n, degree=k)


def _check_degree(n: int, degree: object) -> int:
    try:
        k = operator.index(degree)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ParameterError(f"degree must be an int, got {degree!r}") from exc
    if k < n - 1 and (k < 2 or k % 2):
        raise ParameterError(
            f"a Harary graph here has an even degree in [2, n - 2] (n = {n}), got {k}; "
            "use degree >= n - 1 for the complete graph"
        )
    return k


def harary_graph(n: int, degree: int, seed: bytes | None = None) -> CommunicationGraph:
    """The Harary graph H(n, degree) with uniformly permuted labels (Bell et al. 2020).

    Parameters
    ----------
    n : int
        Number of clients.
    degree : int
        Even number of neighbours per client, ``2 <= degree <= n - 2``; a degree of
        ``n - 1`` or more gives the complete graph.
    seed : bytes, optional
        32-byte permutation seed; drawn from the OS CSPRNG when omitted. The server draws
        it and sends it with the configuration; clients rebuild the same graph.

    Returns
    -------
    CommunicationGraph
    """
    n = _check_n(n)
    k = _check_degree(n, degree)
    if k >= n - 1:
        return complete_graph(n)
    if seed is None:
        seed = secrets.token_bytes(SEED_BYTES)
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ParameterError(f"the graph seed must be {SEED_BYTES} bytes")
    perm = random_permutation(n, seed)  # perm[position] = client
    position = np.empty(n, dtype=np.int64)
    position[perm] = np.arange(n, dtype=np.int64)
    half = k // 2
    offsets = np.concatenate([np.arange(-half, 0), np.arange(1, half + 1)])
    table = perm[(position[:, None] + offsets[None, :]) % n]
    table.sort(axis=1)
    table.setflags(write=False)
    return CommunicationGraph(n=n, degree=k, seed=seed, _adjacency=table)
