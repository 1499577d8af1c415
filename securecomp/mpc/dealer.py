"""The trusted dealer: a separate party that produces seed-compressed preprocessing material.

Threat model
------------
Semi-honest computing parties; a dealer that follows the protocol and does **not collude**
with any computing party. The dealer knows every mask it hands out, so it must never be
one of the computing parties: a dealer folded into party 0 would learn ``x + r`` from the
openings *and* ``r``, hence every input. It is therefore always its own party with its
own link to each computing party (in `run_local` a thread: a labelled simulation).

What each role learns: the dealer learns the number, kinds and shapes of the requests
(public in an SPMD program anyway) and nothing about inputs, since it never receives a
share. A computing party learns its own share of the material, which is uniformly random
on its own (for ``n >= 2``) except for the relation the kind defines.

Protocol (seed compression, e.g. Damgård et al., ESORICS 2013, section 4)
--------------------------------------------------------------------------
1. Setup (offline). The dealer draws a 32-byte master secret from the OS CSPRNG and
   sends party ``i`` the seed ``s_i = HKDF(master, Domain("securecomp/mpc/dealer",
   "party-seed", session, party=i))`` over its link (TLS off loopback).
2. Material number ``k`` of kind ``K``: every party ``i`` expands
   ``AES-CTR(HKDF(s_i, Domain(..., "material/K", session, round=k, party=i)))``
   into its random parts (triple operands ``a, b``, masks ``r``), and parties
   ``0 .. n-2`` also into their correlated parts. So every party but one receives only
   its seed, once, for the whole session.
3. The last party ``n-1`` asks for material ``k..k+m-1`` in one request (kinds and shapes
   only); the dealer re-derives all ``n`` streams, reconstructs the random values,
   computes the correlated values (``c = op(a, b)``, ``r >> f``, ...) and sends party
   ``n-1`` the difference between them and the other parties' PRG shares.
4. The dealer refuses a counter it has already served (`PreprocessingReuseError`): the
   same material is never produced twice. Party ``n-1`` ends the session with an empty
   request.

Costs: party ``n-1`` receives exactly the correlated parts (one ``c`` per triple, two
words per truncation mask, ...); every other party receives 32 bytes per session. All
dealer traffic is counted in the ``"offline"`` phase of the link's own `CommStats`, so it
never inflates the online round count of the computing parties.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.crypto import AesCtrPrg, Domain, derive_key, derive_prg
from securecomp.errors import (
    ChannelClosedError,
    MalformedMessageError,
    ParameterError,
    PartyTimeoutError,
    PreprocessingReuseError,
)
from securecomp.mpc.material import (
    Combine,
    Material,
    Part,
    Preprocessing,
    Spec,
    decode_requests,
    encode_requests,
)
from securecomp.net import Channel, CommStats

__all__ = [
    "DEALER",
    "LINK_DEALER_ID",
    "LINK_PARTY_ID",
    "PROTOCOL",
    "Dealer",
    "DealerClient",
    "material_prg",
]

#: HKDF protocol label of every dealer derivation.
PROTOCOL = "securecomp/mpc/dealer"
#: How errors and reports name the dealer role.
DEALER = "dealer"
#: On each two-endpoint dealer link the dealer is endpoint 0 and the party endpoint 1.
LINK_DEALER_ID = 0
LINK_PARTY_ID = 1

_TAG_SEED = "dealer.seed"
_TAG_REQUEST = "dealer.request"
_TAG_MATERIAL = "dealer.material"
_OFFLINE = "offline"
_BYE = (1 << 64) - 1  # first-counter value of the closing (empty) request


def _party_seed(master: bytes, session_id: bytes, party: int) -> bytes:
    return derive_key(master, Domain(PROTOCOL, "party-seed", session_id, party=party))


def material_prg(seed: bytes, session_id: bytes, party: int, spec: Spec, counter: int) -> AesCtrPrg:
    """The PRG from which ``party`` draws its shares of material number ``counter``.

    Domain-separated per session, party, kind and counter, so no two pieces of material
    (or two parties) ever share a keystream.
    """
    purpose = f"material/{spec.kind.name.lower()}"
    return derive_prg(seed, Domain(PROTOCOL, purpose, session_id, round=counter, party=party))


def _draw(prg: AesCtrPrg, part: Part) -> npt.NDArray[Any]:
    out = prg.fill(np.empty(part.shape, dtype=part.dtype))
    if part.single_bit:
        out &= out.dtype.type(1)
    return out


def _combine_into(acc: npt.NDArray[Any], share: npt.NDArray[Any], how: Combine) -> None:
    if how is Combine.ADD:
        np.add(acc, share, out=acc)
    else:
        np.bitwise_xor(acc, share, out=acc)


def _difference(value: npt.NDArray[Any], acc: npt.NDArray[Any], how: Combine) -> npt.NDArray[Any]:
    """The last party's share: ``value - acc`` (additive) or ``value ^ acc`` (XOR)."""
    value = np.asarray(value).astype(acc.dtype, copy=False)
    if how is Combine.ADD:
        return np.subtract(value, acc)
    return np.bitwise_xor(value, acc)


class Dealer:
    """The dealer party: holds one link per computing party and serves the last one.

    Parameters
    ----------
    links : sequence of Channel
        ``links[i]`` is the dealer's endpoint (id `LINK_DEALER_ID`) of its two-endpoint
        link to computing party ``i``.
    session_id : bytes
        The session identifier all parties agreed on.
    idle_timeout : float
        Longest wait for the next request before the dealer gives up
        (`PartyTimeoutError` naming the last party).
    """

    def __init__(
        self, links: Sequence[Channel], session_id: bytes, *, idle_timeout: float = 600.0
    ) -> None:
        if len(links) < 2:
            raise ParameterError(f"a dealer serves at least 2 computing parties, got {len(links)}")
        self._links = list(links)
        self._session = bytes(session_id)
        self._idle = float(idle_timeout)
        # A fresh master secret per dealer run; only the per-party seeds derived from it
        # ever leave the dealer, and the master itself is not kept.
        master = secrets.token_bytes(32)
        self._seeds = [_party_seed(master, self._session, i) for i in range(len(self._links))]
        self._rng = AesCtrPrg.from_random()
        self._next_counter = 0
        self.requests_served = 0

    @property
    def n_parties(self) -> int:
        return len(self._links)

    def stats(self) -> CommStats:
        """Merged counters of all the dealer's links."""
        return CommStats.merge(link.stats for link in self._links)

    def send_seeds(self) -> None:
        """Step 1: give every party its seed (offline phase)."""
        for i, link in enumerate(self._links):
            with link.stats.phase(_OFFLINE):
                link.send(LINK_PARTY_ID, self._seeds[i], tag=_TAG_SEED)

    def serve(self) -> int:
        """Send the seeds, then answer the last party's requests until it says goodbye.

        Returns the number of pieces of material served. A closed link ends the service
        as a goodbye would (the party finished or failed; it has no further use for us).
        """
        self.send_seeds()
        last = self._links[-1]
        while True:
            try:
                with last.stats.phase(_OFFLINE):
                    words = last.recv_array(
                        LINK_PARTY_ID, tag=_TAG_REQUEST, dtype=np.uint64, timeout=self._idle
                    )
            except ChannelClosedError:
                return self.requests_served
            except PartyTimeoutError as exc:
                raise PartyTimeoutError(
                    self.n_parties - 1, exc.timeout, "no request or goodbye reached the dealer"
                ) from None
            if words.size >= 1 and int(words[0]) == _BYE:
                return self.requests_served
            first, specs = decode_requests(words)
            self.answer(first, specs)

    def answer(self, first: int, specs: Sequence[Spec]) -> None:
        """Serve one request of the last party: material ``first .. first + len(specs) - 1``.

        Raises
        ------
        PreprocessingReuseError
            If a counter was served before (the same material is never produced twice).
        """
        link = self._links[-1]
        if first < self._next_counter:
            raise PreprocessingReuseError(
                f"material #{first} was requested again (next fresh counter is "
                f"#{self._next_counter}); the dealer never serves material twice"
            )
        for offset, spec in enumerate(specs):
            for corr in self.corrections(spec, first + offset):
                with link.stats.phase(_OFFLINE):
                    link.send(LINK_PARTY_ID, corr, tag=_TAG_MATERIAL)
        self._next_counter = first + len(specs)
        self.requests_served += len(specs)

    def corrections(self, spec: Spec, counter: int) -> list[npt.NDArray[Any]]:
        """Step 3: the last party's correlated parts for material ``counter``."""
        n = self.n_parties
        prgs = [material_prg(self._seeds[i], self._session, i, spec, counter) for i in range(n)]
        randoms: list[npt.NDArray[Any]] = []
        for part in spec.random_parts():
            acc = np.zeros(part.shape, dtype=part.dtype)
            for prg in prgs:
                _combine_into(acc, _draw(prg, part), part.combine)
            randoms.append(acc)
        # Parties 0..n-2 draw their correlated parts after their random parts, in order.
        accs = []
        for part in spec.correlated_parts():
            acc = np.zeros(part.shape, dtype=part.dtype)
            for prg in prgs[:-1]:
                _combine_into(acc, _draw(prg, part), part.combine)
            accs.append(acc)
        values = spec.correlated_values(randoms, self._rng)
        return [
            _difference(v, acc, part.combine)
            for v, acc, part in zip(values, accs, spec.correlated_parts(), strict=True)
        ]


class DealerClient(Preprocessing):
    """A computing party's side of the dealer protocol (steps 1-3).

    Parameters
    ----------
    link : Channel
        This party's endpoint (id `LINK_PARTY_ID`) of its link to the dealer.
    party_id, n_parties : int
        This party and the number of computing parties.
    session_id : bytes
    timeout : float, optional
        Receive timeout on the dealer link (default: the link's).
    """

    def __init__(
        self,
        link: Channel,
        party_id: int,
        n_parties: int,
        session_id: bytes,
        *,
        timeout: float | None = None,
    ) -> None:
        if not 0 <= party_id < n_parties:
            raise ParameterError(f"party id {party_id} not in range({n_parties})")
        self._link = link
        self._party = party_id
        self._n = n_parties
        self._session = bytes(session_id)
        self._timeout = timeout
        self._counter = 0
        self._stock: dict[Spec, deque[Material]] = {}
        self._seconds = 0.0
        self._closed = False
        start = time.perf_counter()
        with link.stats.phase(_OFFLINE):
            seed = self._recv(tag=_TAG_SEED)
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise MalformedMessageError("the dealer's seed message is not 32 bytes")
        self._seed = seed
        self._seconds += time.perf_counter() - start

    @property
    def is_last(self) -> bool:
        """The last party receives the correlated parts from the dealer."""
        return self._party == self._n - 1

    @property
    def offline_seconds(self) -> float:
        return self._seconds

    @property
    def stats(self) -> CommStats:
        return self._link.stats

    def _recv(self, *, tag: str, **kw: Any) -> Any:
        try:
            if "shape" in kw:
                return self._link.recv_array(LINK_DEALER_ID, tag=tag, timeout=self._timeout, **kw)
            return self._link.recv(LINK_DEALER_ID, tag=tag, timeout=self._timeout)
        except PartyTimeoutError as exc:
            raise PartyTimeoutError(DEALER, exc.timeout, f"waited by party {self._party}") from None
        except ChannelClosedError:
            raise PartyTimeoutError(
                DEALER, self._timeout or self._link.timeout, "its link closed (stopped or killed)"
            ) from None

    def get(self, spec: Spec) -> Material:
        stock = self._stock.get(spec)
        if stock:
            return stock.popleft()
        return self._fetch([spec])[0]

    def prefetch(self, specs: Sequence[Spec]) -> None:
        for material in self._fetch(list(specs)):
            self._stock.setdefault(material.spec, deque()).append(material)

    def _fetch(self, specs: list[Spec]) -> list[Material]:
        if self._closed:
            raise ChannelClosedError("the dealer link is closed; no more material")
        start = time.perf_counter()
        first = self._counter
        self._counter += len(specs)
        corrections: list[list[npt.NDArray[Any]]] = []
        if self.is_last and specs:
            with self._link.stats.phase(_OFFLINE):
                self._link.send(LINK_DEALER_ID, encode_requests(first, specs), tag=_TAG_REQUEST)
                for spec in specs:
                    corrections.append(
                        [
                            self._recv(tag=_TAG_MATERIAL, dtype=p.dtype, shape=p.shape)
                            for p in spec.correlated_parts()
                        ]
                    )
        out = []
        for i, spec in enumerate(specs):
            prg = material_prg(self._seed, self._session, self._party, spec, first + i)
            parts = [_draw(prg, p) for p in spec.random_parts()]
            if self.is_last:
                parts += corrections[i]
            else:
                parts += [_draw(prg, p) for p in spec.correlated_parts()]
            out.append(Material(spec, first + i, parts))
        self._seconds += time.perf_counter() - start
        return out

    def close(self) -> None:
        """Say goodbye to the dealer (last party) and close the link; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.is_last and not self._link.closed:
                with self._link.stats.phase(_OFFLINE):
                    self._link.send(
                        LINK_DEALER_ID, np.array([_BYE, 0], dtype=np.uint64), tag=_TAG_REQUEST
                    )
        except (ChannelClosedError, PartyTimeoutError):
            pass  # the dealer is gone already: nothing to say goodbye to
        finally:
            self._link.close()
