"""One computing party's view of an MPC session: channel, party id, preprocessing, encoding.

MPC here is SPMD (DESIGN.md section 4): every computing party runs the same program on its
own share, and every protocol function takes the `Session` explicitly (there is no global
communicator). The session owns

* the channel among the computing parties (ids ``0 .. n-1``; the dealer is not on it),
* the preprocessing provider (normally a `securecomp.mpc.dealer.DealerClient`),
* the public parameters every party must agree on: number of parties, fixed-point
  encoding (default 16 fractional bits in Z_2^64), truncation protocol, default input
  bound, session identifier,
* a leakage ledger (what was opened to whom) and reusable work buffers.

Failure semantics: every receive has the channel's timeout; a peer that stays silent
raises `PartyTimeoutError` naming it, and a peer whose link closes (it stopped, crashed or
was killed) raises `PartyTimeoutError` naming it at once rather than after the timeout.
A peer sending a share of an unexpected shape raises `ShapeMismatchError`.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import FixedPoint, fixed_point
from securecomp.errors import ChannelClosedError, ParameterError, PartyTimeoutError
from securecomp.mpc.material import Material, Preprocessing, Spec
from securecomp.net import Channel, LeakageLedger

if TYPE_CHECKING:
    from securecomp.mpc.backend import SharesBackend
    from securecomp.tensor import SecureTensor

__all__ = [
    "DEFAULT_FRAC_BITS",
    "DEFAULT_INPUT_BOUND",
    "Session",
    "Truncation",
]

#: Default fractional bits of the fixed-point encoding.
DEFAULT_FRAC_BITS = 16
#: Default public bound on the magnitude of shared inputs: small enough that a product of
#: two default-bounded inputs can still be truncated (2^14 * 2^14 * 2^32 < 2^62).
DEFAULT_INPUT_BOUND = float(1 << 14)


class Truncation(enum.Enum):
    """Which protocol rescales products (see `securecomp.mpc.truncation`)."""

    #: One round with a dealer truncation pair; any number of parties; no large errors.
    DEALER = "dealer"
    #: SecureML's local share truncation: no communication, 2 parties only, fails with
    #: probability about |x| / 2^63 per element.
    LOCAL = "local"


class Session:
    """A computing party's session.

    Parameters
    ----------
    channel : Channel
        The channel among the computing parties; its party id is this party's.
    preprocessing : Preprocessing
        Source of triples and masks (the dealer client).
    session_id : bytes, optional
        Public identifier all parties share (random by default: pass the same value to all).
    frac_bits : int
        Fractional bits of the fixed-point encoding (ring Z_2^64).
    truncation : Truncation or str
        ``"dealer"`` (default) or ``"local"`` (two parties only).
    input_bound : float
        Default public bound on ``|x|`` for `share`.
    """

    def __init__(
        self,
        channel: Channel,
        preprocessing: Preprocessing,
        *,
        session_id: bytes | None = None,
        frac_bits: int = DEFAULT_FRAC_BITS,
        truncation: Truncation | str = Truncation.DEALER,
        input_bound: float = DEFAULT_INPUT_BOUND,
        ledger: LeakageLedger | None = None,
    ) -> None:
        from securecomp.mpc.backend import SharesBackend  # backend imports session types

        mode = self.check_parameters(channel.n_parties, frac_bits, truncation)
        self.channel = channel
        self.preprocessing = preprocessing
        self.session_id = bytes(session_id) if session_id is not None else secrets.token_bytes(16)
        self.encoding: FixedPoint = fixed_point(frac_bits, 64)
        self.truncation = mode
        self.input_bound = float(input_bound)
        self.ledger = ledger if ledger is not None else LeakageLedger()
        self._buffers: dict[tuple[str, tuple[int, ...], str], npt.NDArray[Any]] = {}
        self.backend: SharesBackend = SharesBackend(self)

    @staticmethod
    def check_parameters(
        n_parties: int, frac_bits: int, truncation: Truncation | str
    ) -> Truncation:
        """Validate public session parameters (before any channel is opened)."""
        if type(n_parties) is not int or n_parties < 2:
            raise ParameterError(f"an MPC session needs at least 2 parties, got {n_parties!r}")
        fixed_point(frac_bits, 64)  # raises ParameterError for a bad frac_bits
        if not 1 <= frac_bits <= 30:
            raise ParameterError(
                f"frac_bits={frac_bits}: products need 2*frac_bits < 62 bits of headroom; "
                "use 1..30 (16 is the default)"
            )
        try:
            mode = Truncation(truncation)
        except ValueError:
            raise ParameterError(
                f"unknown truncation {truncation!r}; use 'dealer' or 'local'"
            ) from None
        if mode is Truncation.LOCAL and n_parties != 2:
            raise ParameterError(
                f"SecureML local truncation works for 2 parties only, not {n_parties}; "
                "use truncation='dealer'"
            )
        return mode

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
    def frac_bits(self) -> int:
        return self.encoding.frac_bits

    @property
    def is_first(self) -> bool:
        """Party 0 adds public constants to its share (exactly one party must)."""
        return self.channel.party_id == 0

    def __repr__(self) -> str:
        return (
            f"Session(party={self.party_id}/{self.n_parties}, f={self.frac_bits}, "
            f"truncation={self.truncation.value})"
        )

    # --- preprocessing -------------------------------------------------------------------

    def material(self, spec: Spec) -> Material:
        """Fresh single-use material for ``spec``."""
        return self.preprocessing.get(spec)

    def prefetch(self, specs: Iterable[Spec]) -> None:
        """Fetch material for ``specs`` now (offline), for later operations to consume."""
        self.preprocessing.prefetch(list(specs))

    @property
    def offline_seconds(self) -> float:
        return self.preprocessing.offline_seconds

    # --- work buffers --------------------------------------------------------------------

    def buffer(self, key: str, shape: tuple[int, ...], dtype: Any = np.uint64) -> npt.NDArray[Any]:
        """A reusable scratch array (contents undefined) for send buffers and temporaries.

        Reusing buffers avoids page-faulting fresh memory on every operation, which costs
        as much as the arithmetic for large arrays. Never hand a buffer out as a result.
        """
        dt = np.dtype(dtype)
        k = (key, tuple(shape), dt.str)
        buf = self._buffers.get(k)
        if buf is None:
            if len(self._buffers) > 64:
                self._buffers.clear()  # shapes vary a lot: keep the pool small
            buf = np.empty(shape, dtype=dt)
            self._buffers[k] = buf
        return buf

    # --- communication -------------------------------------------------------------------

    def send(self, to: int, array: npt.NDArray[Any], *, tag: str) -> None:
        try:
            self.channel.send(to, array, tag=tag)
        except ChannelClosedError:
            raise PartyTimeoutError(
                to, self.channel.timeout, "its link closed: it stopped, crashed or was killed"
            ) from None

    def send_each(
        self, messages: Mapping[int, npt.NDArray[Any]], *, tag: str, defer: bool = False
    ) -> PartyTimeoutError | None:
        """Send ``messages[p]`` to each ``p``; a failed link does not stop the others.

        Every live peer still gets its message, so that a crash is reported by everyone
        as that party's and not as a cascade of aborts. With ``defer`` the first failure
        is returned instead of raised: the caller first receives what the peers sent
        (a message that arrived proves its sender was alive in this round; the failure
        that matters is the peer whose message is missing), then raises it.
        """
        failure: PartyTimeoutError | None = None
        for p, array in messages.items():
            try:
                self.send(p, array, tag=tag)
            except PartyTimeoutError as exc:
                failure = failure or exc
        if failure is not None and not defer:
            raise failure
        return failure

    def recv(
        self,
        frm: int,
        *,
        tag: str,
        shape: tuple[int, ...] | None = None,
        dtype: Any = np.uint64,
    ) -> npt.NDArray[Any]:
        """Receive an array from ``frm`` (checked dtype and, if given, shape); writable."""
        try:
            got = self.channel.recv_array(frm, tag=tag, dtype=dtype, shape=shape)
        except ChannelClosedError:
            raise PartyTimeoutError(
                frm, self.channel.timeout, "its link closed: it stopped, crashed or was killed"
            ) from None
        return got if got.flags.writeable else got.copy()

    def _open(self, local: npt.NDArray[Any], tag: str, xor: bool) -> npt.NDArray[Any]:
        arr = np.asarray(local, order="C")
        failure = self.send_each(dict.fromkeys(self.peers, arr), tag=tag, defer=True)
        total: npt.NDArray[Any] | None = None
        for p in self.peers:
            got = self.recv(p, tag=tag, shape=arr.shape, dtype=arr.dtype)
            if total is None:
                total = got
            elif xor:
                np.bitwise_xor(total, got, out=total)
            else:
                np.add(total, got, out=total)
        if failure is not None:
            raise failure
        if total is None:  # unreachable: a session has at least one peer
            raise ParameterError("a session needs at least one peer")
        if xor:
            np.bitwise_xor(total, arr, out=total)
        else:
            np.add(total, arr, out=total)
        return total

    def open_sum(self, local: npt.NDArray[Any], *, tag: str) -> npt.NDArray[Any]:
        """Open an additively shared array to everyone (one round): ``sum_i share_i``.

        Every party sends its share to every peer; the result is a fresh writable array.
        Only call this on values that are safe to publish (masked values, or outputs).
        """
        return self._open(local, tag, xor=False)

    def open_xor(self, local: npt.NDArray[Any], *, tag: str) -> npt.NDArray[Any]:
        """Open a XOR-shared array to everyone (one round): ``xor_i share_i``."""
        return self._open(local, tag, xor=True)

    # --- user-facing verbs ---------------------------------------------------------------

    def share(
        self,
        values: npt.ArrayLike | None = None,
        *,
        owner: int = 0,
        bound: float | None = None,
        shape: Sequence[int] | None = None,
    ) -> SecureTensor:
        """Secret-share the owner's ``values`` (see `securecomp.mpc.sharing.share`)."""
        from securecomp.mpc.sharing import share

        return share(self, values, owner=owner, bound=bound, shape=shape)

    def reveal(self, tensor: SecureTensor, to: int | Iterable[int] | None = None) -> Any:
        """Open ``tensor`` to ``to`` (all parties by default); None for the others."""
        return self.backend.reveal(tensor, to)
