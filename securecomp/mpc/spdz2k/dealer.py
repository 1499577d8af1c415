"""The authenticated dealer: SPDZ2k preprocessing (F_Prep) played by a trusted party.

Threat model
------------
Active (malicious) computing parties, any number of them corrupted, **given an honest
dealer**: the dealer draws the MAC keys ``alpha`` (uniform in Z_2^s) and ``beta`` (for
authenticated bits, uniform in Z_2^63), so it could forge any MAC and must neither
cheat nor collude with a computing party. It is its own party with one link per
computing party (a thread in `securecomp.mpc.spdz2k.runner.run_local_active`: a labelled
simulation). What it learns: the number, kinds and shapes of the requests. What a
computing party learns: its own key share (uniform on its own) and its shares of the
material; the owner of an INPUT mask also learns the mask.

Protocol (seed compression as in `securecomp.mpc.dealer`, Damgård et al., ESORICS 2013,
section 4, extended with MAC shares)
-----------------------------------------------------------------------------------
1. Setup. The dealer draws a master secret and the keys, sends party ``i`` the public
   parameters ``(k, s)`` and the seed ``s_i = HKDF(master, party-seed, session, i)``.
   Parties ``0 .. n-2`` derive their key shares from their seeds; the last party also
   receives ``alpha - sum_{i<n-1} alpha_i`` and the same for ``beta``.
2. Material number ``c``: every party expands ``HKDF(s_i, material/kind, session, c, i)``
   into its shares in the order of `securecomp.mpc.spdz2k.material`.
3. The last party requests material in batches (kinds and shapes only); the dealer
   re-derives every party's stream, reconstructs the random items, computes the
   correlated ones and every MAC ``key * value`` and sends the last party the
   differences. A counter is never served twice (`PreprocessingReuseError`).

All dealer traffic is counted in the ``"offline"`` phase of each link.
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
from securecomp.mpc.dealer import DEALER, LINK_DEALER_ID, LINK_PARTY_ID
from securecomp.mpc.spdz2k.material import (
    AuthMaterial,
    AuthPreprocessing,
    AuthSpec,
    Field,
    Item,
    correlated_values,
    decode_requests,
    encode_requests,
    limbs_of,
)
from securecomp.mpc.spdz2k.ring import BINARY_PARAMETERS, Ring, Spdz2kParameters
from securecomp.net import Channel, CommStats

__all__ = ["PROTOCOL", "AuthDealer", "AuthDealerClient"]

#: HKDF protocol label of every derivation of the authenticated dealer.
PROTOCOL = "securecomp/mpc/spdz2k/dealer"

_TAG_SETUP = "spdz2k.dealer.setup"
_TAG_REQUEST = "spdz2k.dealer.request"
_TAG_MATERIAL = "spdz2k.dealer.material"
_OFFLINE = "offline"
_BYE = (1 << 64) - 1
U64 = np.uint64


def _party_seed(master: bytes, session: bytes, party: int) -> bytes:
    return derive_key(master, Domain(PROTOCOL, "party-seed", session, party=party))


def _derived_key_share(seed: bytes, session: bytes, party: int, field: Field, bits: int) -> int:
    raw = derive_key(seed, Domain(PROTOCOL, f"mac-key/{field.name.lower()}", session, party=party))
    return int.from_bytes(raw, "little") & ((1 << bits) - 1)


def _prg(seed: bytes, session: bytes, party: int, spec: AuthSpec, counter: int) -> AesCtrPrg:
    purpose = f"material/{spec.kind.name.lower()}"
    return derive_prg(seed, Domain(PROTOCOL, purpose, session, round=counter, party=party))


def _ring(field: Field, params: Spdz2kParameters) -> Ring:
    return params.ring if field is Field.ARITH else BINARY_PARAMETERS.ring


def _draw(prg: AesCtrPrg, n_limbs: int, shape: tuple[int, ...]) -> npt.NDArray[np.uint64]:
    return prg.fill(np.empty((n_limbs, *shape), dtype=U64))


class AuthDealer:
    """The dealer party of SPDZ2k preprocessing (see the module docstring).

    Parameters
    ----------
    links : sequence of Channel
        ``links[i]``: the dealer's endpoint (id 0) of its link to computing party ``i``.
    session_id : bytes
    params : Spdz2kParameters
        The arithmetic parameters (the same object all parties use).
    idle_timeout : float
        Longest wait for the next request.
    """

    def __init__(
        self,
        links: Sequence[Channel],
        session_id: bytes,
        params: Spdz2kParameters,
        *,
        idle_timeout: float = 600.0,
    ) -> None:
        if len(links) < 2:
            raise ParameterError(f"a dealer serves at least 2 computing parties, got {len(links)}")
        self._links = list(links)
        self._session = bytes(session_id)
        self._params = params
        master = secrets.token_bytes(32)
        n = len(self._links)
        self._seeds = [_party_seed(master, self._session, i) for i in range(n)]
        # The MAC keys: uniform in Z_2^s, from the OS CSPRNG; never sent, only shared.
        self._keys = {
            Field.ARITH: secrets.randbelow(params.key_bound),
            Field.BINARY: secrets.randbelow(BINARY_PARAMETERS.key_bound),
        }
        self._rng = AesCtrPrg.from_random()
        self._next = 0
        self.requests_served = 0

    @property
    def n_parties(self) -> int:
        return len(self._links)

    def stats(self) -> CommStats:
        return CommStats.merge(link.stats for link in self._links)

    def _last_key_share(self, field: Field) -> int:
        ring = _ring(field, self._params)
        others = sum(
            _derived_key_share(self._seeds[i], self._session, i, field, ring.bits)
            for i in range(self.n_parties - 1)
        )
        return (self._keys[field] - others) & ring.modulus_mask

    def send_setup(self) -> None:
        """Step 1: parameters, seeds and the last party's key shares."""
        n = self.n_parties
        for i, link in enumerate(self._links):
            words = [self._params.k, self._params.s]
            words += np.frombuffer(self._seeds[i], dtype="<u8").tolist()
            if i == n - 1:
                for field in (Field.ARITH, Field.BINARY):
                    share = self._last_key_share(field)
                    for limb in range(_ring(field, self._params).limbs):
                        words.append((share >> (64 * limb)) & 0xFFFFFFFFFFFFFFFF)
            with link.stats.phase(_OFFLINE):
                link.send(LINK_PARTY_ID, np.array(words, dtype=U64), tag=_TAG_SETUP)

    def serve(self) -> int:
        """Send the setup, then answer the last party until it says goodbye."""
        self.send_setup()
        last = self._links[-1]
        while True:
            try:
                with last.stats.phase(_OFFLINE):
                    words = last.recv_array(LINK_PARTY_ID, tag=_TAG_REQUEST, dtype=U64)
            except ChannelClosedError:
                return self.requests_served
            if words.size >= 1 and int(words[0]) == _BYE:
                return self.requests_served
            first, specs = decode_requests(words)
            self.answer(first, specs)

    def answer(self, first: int, specs: Sequence[AuthSpec]) -> None:
        """Serve material ``first .. first + len(specs) - 1`` to the last party."""
        if first < self._next:
            raise PreprocessingReuseError(
                f"material #{first} was requested again (next fresh counter is #{self._next})"
            )
        link = self._links[-1]
        for offset, spec in enumerate(specs):
            for corr in self.corrections(spec, first + offset):
                with link.stats.phase(_OFFLINE):
                    link.send(LINK_PARTY_ID, corr, tag=_TAG_MATERIAL)
        self._next = first + len(specs)
        self.requests_served += len(specs)

    def corrections(self, spec: AuthSpec, counter: int) -> list[npt.NDArray[np.uint64]]:
        """Step 3: the last party's parts of material ``counter``."""
        n, params = self.n_parties, self._params
        owner = spec.owner
        if owner is not None and owner >= n:
            raise ParameterError(f"input mask for party {owner} of a {n}-party session")
        items = spec.items()
        prgs = [_prg(self._seeds[i], self._session, i, spec, counter) for i in range(n)]
        owner_part = None
        randoms: list[Any] = [None] * len(items)
        corr_acc: list[Any] = [None] * len(items)
        mac_acc: list[Any] = [None] * len(items)
        for i, prg in enumerate(prgs):
            if i == owner:
                owner_part = _draw(prg, params.ring.limbs, items[0].shape)
            for j, it in enumerate(items):
                if it.random:
                    randoms[j] = self._acc(randoms[j], prg, it)
            if i == n - 1:
                continue
            for j, it in enumerate(items):
                if not it.random:
                    corr_acc[j] = self._acc(corr_acc[j], prg, it)
            for j, it in enumerate(items):
                mac_acc[j] = self._acc(mac_acc[j], prg, it)
        values = iter(
            correlated_values(spec, params, [r for r in randoms if r is not None], owner_part,
                              self._rng)
        )
        out = []
        for j, it in enumerate(items):
            ring = _ring(it.field, params)
            value = randoms[j] if it.random else next(values)
            mac = ring.sub(ring.mul_int(self._keys[it.field], value), mac_acc[j])
            if it.random:
                out.append(np.ascontiguousarray(mac))
            else:
                out.append(np.stack([ring.sub(value, corr_acc[j]), mac]))
        return out

    def _acc(self, acc: Any, prg: AesCtrPrg, it: Item) -> npt.NDArray[np.uint64]:
        ring = _ring(it.field, self._params)
        share = _draw(prg, ring.limbs, it.shape)
        return share if acc is None else ring.add(acc, share, out=acc)


class AuthDealerClient(AuthPreprocessing):
    """A computing party's side of the authenticated dealer protocol.

    Parameters
    ----------
    link : Channel
        This party's endpoint (id 1) of its link to the dealer.
    party_id, n_parties : int
    session_id : bytes
    params : Spdz2kParameters
        Must equal the dealer's (checked at setup: `ParameterError` otherwise).
    timeout : float, optional
    """

    def __init__(
        self,
        link: Channel,
        party_id: int,
        n_parties: int,
        session_id: bytes,
        params: Spdz2kParameters,
        *,
        timeout: float | None = None,
    ) -> None:
        if not 0 <= party_id < n_parties:
            raise ParameterError(f"party id {party_id} not in range({n_parties})")
        self._link = link
        self._party = party_id
        self._n = n_parties
        self._session = bytes(session_id)
        self._params = params
        self._timeout = timeout
        self._counter = 0
        self._stock: dict[AuthSpec, deque[AuthMaterial]] = {}
        self._seconds = 0.0
        self._closed = False
        start = time.perf_counter()
        with link.stats.phase(_OFFLINE):
            words = self._recv(tag=_TAG_SETUP, dtype=U64)
        limbs_a, limbs_b = params.ring.limbs, BINARY_PARAMETERS.ring.limbs
        want = 6 + (limbs_a + limbs_b if self.is_last else 0)
        if words.ndim != 1 or words.size != want:
            raise MalformedMessageError("the dealer's setup message has the wrong length")
        if (int(words[0]), int(words[1])) != (params.k, params.s):
            raise ParameterError(
                f"the dealer runs SPDZ2k with (k, s) = ({int(words[0])}, {int(words[1])}), "
                f"this party with ({params.k}, {params.s}); start both with the same parameters"
            )
        self._seed = np.ascontiguousarray(words[2:6]).astype("<u8").tobytes()
        self._keys: dict[Field, int] = {}
        if self.is_last:
            rest = [int(v) for v in words[6:]]
            self._keys[Field.ARITH] = sum(v << (64 * i) for i, v in enumerate(rest[:limbs_a]))
            self._keys[Field.BINARY] = sum(v << (64 * i) for i, v in enumerate(rest[limbs_a:]))
        else:
            for field in (Field.ARITH, Field.BINARY):
                bits = _ring(field, params).bits
                self._keys[field] = _derived_key_share(
                    self._seed, self._session, party_id, field, bits
                )
        self._seconds += time.perf_counter() - start

    @property
    def session_id(self) -> bytes:
        """The session id the dealer derived this party's material under."""
        return self._session

    @property
    def params(self) -> Spdz2kParameters:
        return self._params

    @property
    def is_last(self) -> bool:
        return self._party == self._n - 1

    @property
    def offline_seconds(self) -> float:
        return self._seconds

    @property
    def stats(self) -> CommStats:
        return self._link.stats

    def key_share(self, field: Field) -> int:
        return self._keys[field]

    def _recv(self, *, tag: str, **kw: Any) -> Any:
        try:
            return self._link.recv_array(LINK_DEALER_ID, tag=tag, timeout=self._timeout, **kw)
        except PartyTimeoutError as exc:
            raise PartyTimeoutError(DEALER, exc.timeout, f"waited by party {self._party}") from None
        except ChannelClosedError:
            raise PartyTimeoutError(
                DEALER, self._timeout or self._link.timeout, "its link closed (stopped or killed)"
            ) from None

    def get(self, spec: AuthSpec) -> AuthMaterial:
        stock = self._stock.get(spec)
        if stock:
            return stock.popleft()
        return self._fetch([spec])[0]

    def prefetch(self, specs: Sequence[AuthSpec]) -> None:
        for material in self._fetch(list(specs)):
            self._stock.setdefault(material.spec, deque()).append(material)

    def _fetch(self, specs: list[AuthSpec]) -> list[AuthMaterial]:
        if self._closed:
            raise ChannelClosedError("the dealer link is closed; no more material")
        start = time.perf_counter()
        first = self._counter
        self._counter += len(specs)
        corrections: list[list[npt.NDArray[np.uint64]]] = []
        if self.is_last and specs:
            with self._link.stats.phase(_OFFLINE):
                self._link.send(LINK_DEALER_ID, encode_requests(first, specs), tag=_TAG_REQUEST)
                for spec in specs:
                    got = []
                    for it in spec.items():
                        n_limbs = limbs_of(it.field, self._params)
                        shape = (n_limbs, *it.shape) if it.random else (2, n_limbs, *it.shape)
                        got.append(self._recv(tag=_TAG_MATERIAL, dtype=U64, shape=shape))
                    corrections.append(got)
        out = [self._assemble(spec, first + i, corrections[i] if corrections else None)
               for i, spec in enumerate(specs)]
        self._seconds += time.perf_counter() - start
        return out

    def _assemble(
        self, spec: AuthSpec, counter: int, corr: list[npt.NDArray[np.uint64]] | None
    ) -> AuthMaterial:
        prg = _prg(self._seed, self._session, self._party, spec, counter)
        items = spec.items()
        owner_part = None
        if spec.owner == self._party:
            owner_part = _draw(prg, self._params.ring.limbs, items[0].shape)
        bufs = [np.empty((2, limbs_of(it.field, self._params), *it.shape), dtype=U64)
                for it in items]
        for buf, it in zip(bufs, items, strict=True):
            if it.random:
                prg.fill(buf[0])
        if corr is None:
            for buf, it in zip(bufs, items, strict=True):
                if not it.random:
                    prg.fill(buf[0])
            for buf in bufs:
                prg.fill(buf[1])
        else:
            for buf, it, c in zip(bufs, items, corr, strict=True):
                if it.random:
                    buf[1] = c
                else:
                    buf[...] = c
        return AuthMaterial(spec, counter, bufs, owner_part)

    def close(self) -> None:
        """Say goodbye to the dealer (last party) and close the link; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.is_last and not self._link.closed:
                with self._link.stats.phase(_OFFLINE):
                    self._link.send(
                        LINK_DEALER_ID, np.array([_BYE, 0], dtype=U64), tag=_TAG_REQUEST
                    )
        except (ChannelClosedError, PartyTimeoutError):
            pass
        finally:
            self._link.close()
