"""One computing party's view of an actively secure (SPDZ2k) MPC session.

`ActiveSession` is the MAC-mode counterpart of `securecomp.mpc.Session`: the same SPMD
program style (``sess.share(...)``, arithmetic on `SecureTensor`, ``sess.reveal(...)``),
with every share authenticated (Cramer, Damgård, Escudero, Scholl, Xing, CRYPTO 2018).

Threat model
------------
Active security with abort against any number of malicious computing parties, given an
honest dealer who knows the MAC keys (`securecomp.mpc.spdz2k.dealer`). A cheating party
(wrong share, MAC, opening, triple, or different messages to different peers) is caught
by the MAC check with probability at least ``1 - 2^-(s - log2(s + 1))``; the protocol then
raises `MACCheckError` and releases nothing. Availability is not protected: a party can
always make the others abort (or time out).

Rules that make this hold
-------------------------
* Every partial opening is queued with this party's MAC share of the opened value
  (`securecomp.mpc.spdz2k.maccheck`); only its low ``k`` bits are ever used.
* `reveal` opens ``x + 2^k t`` (``t`` a random authenticated mask, so the garbage upper
  ``s`` bits of the sum reveal nothing), then runs the check on **every** pending opening,
  and only then decodes and returns. A failed check poisons the session: every later
  call raises `MACCheckError`.
* Inputs use a dealer mask ``r`` known to the owner: the owner broadcasts
  ``x - r mod 2^k``; every broadcast is hashed into a transcript whose digests are
  compared in the next check (broadcast with abort).
* Preprocessing must be authenticated (`AuthPreprocessing`); semi-honest material is
  refused (`UnsupportedOperationError`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import FixedPoint, fixed_point
from securecomp.errors import (
    ChannelClosedError,
    MACCheckError,
    MalformedMessageError,
    ParameterError,
    PartyTimeoutError,
    UnsupportedOperationError,
)
from securecomp.mpc.session import DEFAULT_FRAC_BITS, DEFAULT_INPUT_BOUND
from securecomp.mpc.spdz2k import authshare as A
from securecomp.mpc.spdz2k import maccheck
from securecomp.mpc.spdz2k.material import (
    AuthMaterial,
    AuthPreprocessing,
    AuthSpec,
    Field,
    check_material,
)
from securecomp.mpc.spdz2k.ring import BINARY_PARAMETERS, Spdz2kParameters
from securecomp.net import Channel, LeakageLedger

if TYPE_CHECKING:
    from securecomp.mpc.spdz2k.backend import ActiveSharesBackend
    from securecomp.tensor import SecureTensor

__all__ = ["AUTO_CHECK_ELEMENTS", "ActiveSession"]

U64 = np.uint64
#: Pending openings (elements) after which the next opening first runs a check, so that
#: the queue's memory stays bounded in long programs.
AUTO_CHECK_ELEMENTS = 1 << 23


class ActiveSession:
    """A computing party's SPDZ2k session (see the module docstring).

    Parameters
    ----------
    channel : Channel
        The channel among the computing parties.
    preprocessing : AuthPreprocessing
        Authenticated material and this party's MAC key shares (the dealer client).
    session_id : bytes, optional
        Public identifier all parties share.
    frac_bits : int
        Fractional bits of the fixed-point encoding in Z_2^k.
    input_bound : float
        Default public bound on ``|x|`` for `share`.
    auto_check_elements : int
        Pending openings after which the next opening first runs a check (bounds the
        memory of the check queue; every party must use the same value).

    Raises
    ------
    UnsupportedOperationError
        If ``preprocessing`` is not authenticated (e.g. the semi-honest dealer or a
        Paillier triple generator).
    """

    def __init__(
        self,
        channel: Channel,
        preprocessing: AuthPreprocessing,
        *,
        session_id: bytes | None = None,
        frac_bits: int = DEFAULT_FRAC_BITS,
        input_bound: float = DEFAULT_INPUT_BOUND,
        ledger: LeakageLedger | None = None,
        auto_check_elements: int = AUTO_CHECK_ELEMENTS,
    ) -> None:
        from securecomp.mpc.spdz2k.backend import ActiveSharesBackend

        if not isinstance(preprocessing, AuthPreprocessing):
            raise UnsupportedOperationError(
                f"MAC mode needs authenticated preprocessing, got {type(preprocessing).__name__}:"
                " semi-honest triples (from the dealer or a Paillier generator) carry no MACs. "
                "Use securecomp.mpc.spdz2k.AuthDealerClient"
            )
        params = preprocessing.params
        self.check_parameters(channel.n_parties, frac_bits, params)
        self.channel = channel
        self.preprocessing = preprocessing
        self.params: Spdz2kParameters = params
        if session_id is None:
            # Every party must hash the same id into its commitments: take the dealer's.
            session_id = getattr(preprocessing, "session_id", None)
        if session_id is None:
            raise ParameterError(
                "ActiveSession needs the session id shared by all parties (session_id=...)"
            )
        self.session_id = bytes(session_id)
        self.encoding: FixedPoint = fixed_point(frac_bits, 64 if params.k == 64 else 32)
        self.input_bound = float(input_bound)
        self.ledger = ledger if ledger is not None else LeakageLedger()
        self._pool: dict[tuple[int, ...], list[npt.NDArray[np.uint64]]] = {}
        self._scratch: dict[tuple[str, tuple[int, ...], str], npt.NDArray[Any]] = {}
        self._queues = {
            Field.ARITH: maccheck.OpenedQueue(params, self._release),
            Field.BINARY: maccheck.OpenedQueue(BINARY_PARAMETERS, self._release),
        }
        self._auto = int(auto_check_elements)
        self._transcript = hashlib.sha256(b"securecomp/spdz2k/transcript/v1|" + self.session_id)
        self._checks = 0
        self._abort: MACCheckError | None = None
        self.backend: ActiveSharesBackend = ActiveSharesBackend(self)

    @staticmethod
    def check_parameters(n_parties: int, frac_bits: int, params: Spdz2kParameters) -> None:
        """Validate the public session parameters."""
        if type(n_parties) is not int or n_parties < 2:
            raise ParameterError(f"an MPC session needs at least 2 parties, got {n_parties!r}")
        top = (params.k - 4) // 2
        if type(frac_bits) is not int or not 1 <= frac_bits <= top:
            raise ParameterError(
                f"frac_bits={frac_bits!r}: products need 2*frac_bits + 2 < k = {params.k} bits; "
                f"use 1..{top}"
            )

    # --- identity ------------------------------------------------------------------------

    @property
    def party_id(self) -> int:
        return self.channel.party_id

    @property
    def n_parties(self) -> int:
        return self.channel.n_parties

    @property
    def peers(self) -> tuple[int, ...]:
        return self.channel.peers

    @property
    def is_first(self) -> bool:
        return self.channel.party_id == 0

    @property
    def frac_bits(self) -> int:
        return self.encoding.frac_bits

    @property
    def aborted(self) -> bool:
        """True once a check failed or a protocol step did not complete; every later call
        then raises `MACCheckError`."""
        return self._abort is not None

    @property
    def pending_openings(self) -> int:
        """Opened elements not yet covered by a MAC check."""
        return sum(q.count for q in self._queues.values())

    @property
    def checks_run(self) -> int:
        return self._checks

    def __repr__(self) -> str:
        p = self.params
        return (
            f"ActiveSession(party={self.party_id}/{self.n_parties}, k={p.k}, s={p.s}, "
            f"f={self.frac_bits})"
        )

    def guard(self) -> None:
        """Raise `MACCheckError` if the session aborted (every protocol step calls it)."""
        if self._abort is not None:
            raise MACCheckError(
                "aborted", f"this session aborted earlier ({self._abort.reason}); start anew"
            )

    # --- preprocessing -------------------------------------------------------------------

    def material(self, spec: AuthSpec) -> AuthMaterial:
        """Fresh authenticated material for ``spec`` (refuses anything else)."""
        self.guard()
        return check_material(self.preprocessing.get(spec), spec)

    def prefetch(self, specs: Iterable[AuthSpec]) -> None:
        self.preprocessing.prefetch(list(specs))

    @property
    def offline_seconds(self) -> float:
        return self.preprocessing.offline_seconds

    # --- buffers -------------------------------------------------------------------------

    def entry_buffer(self, field: Field, n: int) -> npt.NDArray[np.uint64]:
        """A ``(2, L, n)`` buffer for an opening (value and MAC shares), from the pool.

        Openings stay queued until the next check, which returns their buffers here:
        reusing them avoids page-faulting tens of megabytes per large operation.
        """
        shape = (2, self._queues[field].params.ring.limbs, n)
        free = self._pool.get(shape)
        return free.pop() if free else np.empty(shape, dtype=U64)

    def _release(self, base: npt.NDArray[np.uint64]) -> None:
        free = self._pool.setdefault(base.shape, [])
        if len(free) < 4:
            free.append(base)
        if len(self._pool) > 32:
            self._pool.clear()  # shapes vary a lot: keep the pool small

    def scratch(self, key: str, shape: tuple[int, ...], dtype: Any = U64) -> npt.NDArray[Any]:
        """A reusable work array (contents undefined); never part of a result."""
        dt = np.dtype(dtype)
        k = (key, tuple(shape), dt.str)
        buf = self._scratch.get(k)
        if buf is None:
            if len(self._scratch) > 64:
                self._scratch.clear()
            buf = self._scratch[k] = np.empty(shape, dtype=dt)
        return buf

    # --- communication -------------------------------------------------------------------

    def _send(self, to: int, obj: Any, tag: str) -> PartyTimeoutError | None:
        try:
            self.channel.send(to, obj, tag=tag)
        except ChannelClosedError:
            return PartyTimeoutError(
                to, self.channel.timeout, "its link closed: it stopped, crashed or was killed"
            )
        return None

    def send_all(self, obj: Any, tag: str) -> PartyTimeoutError | None:
        """Send ``obj`` to every peer; a failed link is returned, not raised."""
        failure = None
        for p in self.peers:
            failure = self._send(p, obj, tag) or failure
        return failure

    def receive(self, frm: int, tag: str, **kw: Any) -> Any:
        """Receive from ``frm`` (an array when ``dtype``/``shape`` are given)."""
        try:
            if kw:
                return self.channel.recv_array(frm, tag=tag, **kw)
            return self.channel.recv(frm, tag=tag)
        except ChannelClosedError:
            raise PartyTimeoutError(
                frm, self.channel.timeout, "its link closed: it stopped, crashed or was killed"
            ) from None

    def _exchange(self, message: bytes, tag: str) -> list[bytes]:
        failure = self.send_all(message, tag)
        out = []
        for p in range(self.n_parties):
            if p == self.party_id:
                out.append(message)
                continue
            got = self.receive(p, tag)
            if not isinstance(got, bytes):
                raise MalformedMessageError(f"party {p} sent {tag!r} as {type(got).__name__}")
            out.append(got)
        if failure is not None:
            raise failure
        return out

    def record_broadcast(self, data: bytes) -> None:
        """Hash a broadcast value into the transcript compared at the next check."""
        self._transcript.update(data)

    def open_queued(self, field: Field, entry: npt.NDArray[np.uint64], *, tag: str) -> Any:
        """Partially open the value shares in ``entry[0]`` and queue the opening for checks.

        Protocol-internal: the opened sums are masked values (uniform), for the protocols
        of this package to compute with; outputs leave only through `reveal`.

        ``entry`` has shape ``(2, L, n)``: this party's value shares in ``entry[0]`` and
        MAC shares in ``entry[1]``. On return ``entry[0]`` holds the opened sums (a view
        of it is returned); nothing derived from them may leave the protocol before
        `check`. One round.
        """
        self.guard()
        if self.pending_openings >= self._auto:
            self.check()
        ring = self._queues[field].params.ring
        local = entry[0]
        # One message per limb, in the same round: messages stay below glibc's largest
        # mmap threshold (32 MiB), so their buffers are recycled instead of page-faulted
        # afresh for every large opening.
        failure = None
        try:
            for limb in range(ring.limbs):
                failure = self.send_all(local[limb], tag) or failure
            for p in self.peers:
                parts = [self.receive(p, tag, dtype=U64, shape=local.shape[1:])
                         for _ in range(ring.limbs)]
                ring.add(local, parts if ring.limbs == 2 else parts[0][np.newaxis], out=local)
            if failure is not None:
                raise failure
        except BaseException as exc:
            # The parties are out of step (or one is gone): nothing more may be computed.
            self._abort = MACCheckError(
                "open", f"an opening did not complete ({type(exc).__name__}: {exc})"
            )
            raise
        self._queues[field].push(entry.swapaxes(0, 1), entry if entry.base is None else None)
        return local

    # --- the MAC check -------------------------------------------------------------------

    def check(self) -> None:
        """Run the batched MAC check on every pending opening (4 rounds).

        Raises
        ------
        MACCheckError
            If any opening since the last check was wrong (or parties saw different
            broadcasts); the session is then aborted.
        """
        self.guard()
        if self.pending_openings == 0:
            return
        self._checks += 1
        c, sid, me = self._checks, self.session_id, self.party_id
        try:
            seeds = maccheck.commit_and_open(
                self._exchange, sid, c, "coin", me, secrets.token_bytes(32)
            )
            joint = maccheck.joint_seed(sid, c, seeds)
            zs = {}
            for field, q in self._queues.items():
                prg = maccheck.chi_prg(joint, sid, c, field.name.lower())
                zs[field] = q.combine(prg, self.preprocessing.key_share(field))
            digest = self._transcript.copy()
            digest.update(joint)
            widths = {f: q.params.ring.bits // 8 for f, q in self._queues.items()}
            payload = b"".join(zs[f].to_bytes(widths[f], "little") for f in zs) + digest.digest()
            opened = maccheck.commit_and_open(self._exchange, sid, c, "z", me, payload)
            self._decide(opened, widths, payload[-32:])
        except MACCheckError as exc:
            self._abort = exc
            raise
        except BaseException as exc:
            # A check that did not complete (a silent peer, a malformed message) leaves
            # its openings unverified: nothing derived from them may ever be released.
            self._abort = MACCheckError(
                "mac-check", f"the check did not complete ({type(exc).__name__}: {exc})"
            )
            raise
        finally:
            for q in self._queues.values():
                q.clear()

    def _decide(self, opened: Sequence[bytes], widths: dict[Field, int], digest: bytes) -> None:
        size = sum(widths.values()) + 32
        totals = dict.fromkeys(widths, 0)
        for p, raw in enumerate(opened):
            if len(raw) != size:
                raise MACCheckError("mac-check", f"party {p} sent a malformed check value", [p])
            pos = 0
            for f, w in widths.items():
                totals[f] += int.from_bytes(raw[pos : pos + w], "little")
                pos += w
            if raw[pos:] != digest:
                raise MACCheckError(
                    "mac-check",
                    f"party {p} saw other broadcast values or coins than party "
                    f"{self.party_id}: some party sent different messages to different peers",
                )
        for f, w in widths.items():
            if totals[f] % (1 << (8 * w)):
                raise MACCheckError(
                    "mac-check",
                    f"the {f.name.lower()} MAC check failed: an opened value, share, MAC or "
                    "triple was tampered with; nothing is released",
                )

    # --- input and output (securecomp.mpc.spdz2k.io) -----------------------------------

    def share(
        self,
        values: npt.ArrayLike | None = None,
        *,
        owner: int = 0,
        bound: float | None = None,
        shape: Sequence[int] | None = None,
    ) -> SecureTensor:
        """Secret-share (with MACs) the owner's ``values``; every party calls it.

        See `securecomp.mpc.spdz2k.io.share`.
        """
        from securecomp.mpc.spdz2k.io import share

        return share(self, values, owner=owner, bound=bound, shape=shape)

    def reveal(self, tensor: SecureTensor, to: int | Iterable[int] | None = None) -> Any:
        """Open ``tensor`` to ``to`` (all parties by default); None for the others.

        The MAC check of every pending opening runs before anything is decoded.
        """
        return self.backend.reveal(tensor, to)

    def reveal_share(
        self, x: A.AuthShare, to: int | Iterable[int] | None
    ) -> npt.NDArray[np.uint64] | None:
        """Open an authenticated share (see `securecomp.mpc.spdz2k.io.reveal_share`)."""
        from securecomp.mpc.spdz2k.io import reveal_share

        return reveal_share(self, x, to)

    def decode(self, ring_values: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
        """Fixed-point decoding of values in Z_2^k."""
        if self.params.k == 64:
            return self.encoding.decode(ring_values)
        return self.encoding.decode(ring_values.astype(np.uint32))
