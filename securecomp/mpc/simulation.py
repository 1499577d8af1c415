"""Lock-step simulation: drive all parties of a session from one thread of control.

**A simulation, not a deployment.** `LockstepSimulation` starts ``n`` party threads (each
with its own `Session`, channel and dealer link, exactly as `run_local`) and a dealer
thread, and lets one caller act on all of them at once: `share` secret-shares a plaintext
array (party 0 owning it), every arithmetic operation on the returned bundle runs the
same operation on each party's share in its own thread, and `reveal` opens the result.
It exists for interactive exploration and for the backend test suite, which needs to
protect and open values from a single thread; programs meant for deployment are written
as SPMD functions and run with `securecomp.mpc.runner`.

A bundle is a `SecureTensor` of the ``shares-sim`` backend whose payload is the tuple of
the parties' tensors. Its operations are those of the ``shares`` backend; an operation
raises, on the caller's thread, the first party's error.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import PartyTimeoutError
from securecomp.mpc.backend import LAYOUT
from securecomp.mpc.dealer import LINK_DEALER_ID, LINK_PARTY_ID, Dealer, DealerClient
from securecomp.mpc.session import DEFAULT_FRAC_BITS, DEFAULT_INPUT_BOUND, Session, Truncation
from securecomp.net import CommStats, make_inprocess_channels
from securecomp.tensor import Backend, Implementation, Op, SecureTensor

__all__ = ["LockstepSimulation", "SimulatedSharesBackend"]

_STOP = object()


class _Worker:
    """A party thread executing submitted jobs against its session, in order."""

    def __init__(self, party: int, make_session: Callable[[], Session]) -> None:
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self.session: Session | None = None
        self._make = make_session
        self.thread = threading.Thread(
            target=self._main, name=f"securecomp-sim-{party}", daemon=True
        )
        self.thread.start()

    def _main(self) -> None:
        try:
            self.session = self._make()
            self.results.put((True, None))
        except BaseException as exc:
            self.results.put((False, exc))
            return
        while True:
            job = self.jobs.get()
            if job is _STOP:
                return
            try:
                self.results.put((True, job(self.session)))
            except BaseException as exc:
                self.results.put((False, exc))


class SimulatedSharesBackend(Backend):
    """Backend of bundles: every operation runs on all parties' shares in lock step."""

    name = "shares"

    def __init__(self, sim: LockstepSimulation, fingerprint: bytes) -> None:
        self._sim = sim
        self._fingerprint = fingerprint
        self._table: dict[Op, Implementation] = {op: self._lift(op) for op in _OPS}

    @property
    def fingerprint(self) -> bytes:
        return self._fingerprint

    def describe(self) -> str:
        return f"shares[simulation of {self._sim.n_parties} parties]:{self._fingerprint.hex()[:8]}"

    def table(self, layout: str) -> Mapping[Op, Implementation]:
        return self._table if layout == LAYOUT else {}

    def _lift(self, op: Op) -> Implementation:
        def impl(bundle: SecureTensor, *args: Any, **kwargs: Any) -> SecureTensor:
            def job(i: int) -> Callable[[Session], SecureTensor]:
                mine = bundle.payload[i]
                my_args = [a.payload[i] if isinstance(a, SecureTensor) else a for a in args]
                return lambda sess: mine.backend.implementation(op, mine.layout)(
                    mine, *my_args, **kwargs
                )

            return self._sim.bundle(self._sim.run_each(job))

        return impl

    def reveal(self, tensor: SecureTensor, to: Any) -> npt.NDArray[np.float64] | None:
        return self._sim.reveal(tensor)


_OPS = tuple(op for op in Op)


class LockstepSimulation:
    """``n`` parties and a dealer in threads, driven in lock step (a labelled simulation).

    Parameters
    ----------
    parties : int
        Number of computing parties.
    frac_bits, truncation, input_bound, timeout
        As for `securecomp.mpc.run_local`.

    Use as a context manager, or call `close`.
    """

    def __init__(
        self,
        parties: int = 2,
        *,
        frac_bits: int = DEFAULT_FRAC_BITS,
        truncation: Truncation | str = Truncation.DEALER,
        input_bound: float = DEFAULT_INPUT_BOUND,
        timeout: float = 10.0,
    ) -> None:
        self._closed = True  # until fully started: close() and __del__ then do nothing
        Session.check_parameters(parties, frac_bits, truncation)
        self.n_parties = parties
        self.timeout = timeout
        sid = secrets.token_bytes(16)
        channels = make_inprocess_channels(parties, timeout=timeout)
        self._links = [make_inprocess_channels(2, timeout=timeout) for _ in range(parties)]
        self.dealer_stats = CommStats("dealer")
        for i, ends in enumerate(self._links):
            ends[LINK_DEALER_ID].stats = self.dealer_stats
            ends[LINK_PARTY_ID].stats = CommStats(i)
        dealer = Dealer([e[LINK_DEALER_ID] for e in self._links], sid, idle_timeout=1e6)
        self._dealer = threading.Thread(target=self._serve, args=(dealer,), daemon=True)
        self._dealer.start()
        self._channels = channels

        def maker(i: int) -> Callable[[], Session]:
            def make() -> Session:
                client = DealerClient(
                    self._links[i][LINK_PARTY_ID], i, parties, sid, timeout=timeout
                )
                return Session(
                    channels[i],
                    client,
                    session_id=sid,
                    frac_bits=frac_bits,
                    truncation=truncation,
                    input_bound=input_bound,
                )

            return make

        self._workers = [_Worker(i, maker(i)) for i in range(parties)]
        self._collect()  # sessions created (seeds received) or the first error raised
        self.backend = SimulatedSharesBackend(
            self, hashlib.sha256(b"securecomp/shares-sim/v1|" + sid).digest()
        )
        self._closed = False

    def _serve(self, dealer: Dealer) -> None:
        # A failing dealer goes silent; the parties then report it by name (timeout).
        with contextlib.suppress(BaseException):
            dealer.serve()

    @property
    def sessions(self) -> list[Session]:
        """Each party's session (for inspection: stats, ledger)."""
        return [w.session for w in self._workers if w.session is not None]

    def _collect(self) -> list[Any]:
        out: list[Any] = []
        errors: list[BaseException] = []
        for w in self._workers:
            try:
                ok, value = w.results.get(timeout=self.timeout * 4 + 5)
            except queue.Empty:
                ok, value = (
                    False,
                    PartyTimeoutError(len(out), self.timeout, "simulation worker hung"),
                )
            out.append(value if ok else None)
            if not ok:
                errors.append(value)
        if errors:
            raise errors[0]
        return out

    def run_each(self, job: Callable[[int], Callable[[Session], Any]]) -> list[Any]:
        """Run ``job(i)(session_i)`` on every party concurrently; return the results."""
        for i, w in enumerate(self._workers):
            w.jobs.put(job(i))
        return self._collect()

    def run(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """Run ``fn(session, *args)`` on every party, bundles replaced by the party's tensor."""

        def job(i: int) -> Callable[[Session], Any]:
            mine = [a.payload[i] if _is_bundle(a) else a for a in args]
            return lambda sess: fn(sess, *mine)

        return self.run_each(job)

    def bundle(self, tensors: Sequence[SecureTensor]) -> SecureTensor:
        """Wrap the parties' tensors of one value as a bundle."""
        first = tensors[0]
        return SecureTensor._wrap(
            self.backend, tuple(tensors), first.shape, layout=LAYOUT, meta=first.meta
        )

    def share(
        self, values: npt.ArrayLike, *, owner: int = 0, bound: float | None = None
    ) -> SecureTensor:
        """Secret-share ``values`` held by ``owner``; returns a bundle."""
        arr = np.asarray(values)
        results = self.run_each(
            lambda i: lambda sess: sess.share(arr if i == owner else None, owner=owner, bound=bound)
        )
        return self.bundle(results)

    def reveal(self, tensor: SecureTensor) -> npt.NDArray[np.float64]:
        """Open a bundle to everyone and return the value (party 0's view)."""
        results = self.run_each(lambda i: lambda sess: sess.reveal(tensor.payload[i]))
        return np.asarray(results[0])

    def close(self) -> None:
        """Stop the party threads and the dealer; idempotent."""
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            w.jobs.put(_STOP)
        for w in self._workers:
            w.thread.join(self.timeout)
            if w.session is not None:
                w.session.preprocessing.close()
        for c in self._channels:
            c.close()

    def __enter__(self) -> LockstepSimulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if "_closed" in self.__dict__:  # __init__ may have failed before setting it
            with contextlib.suppress(Exception):  # best effort at interpreter teardown
                self.close()


def _is_bundle(obj: Any) -> bool:
    return isinstance(obj, SecureTensor) and isinstance(obj.backend, SimulatedSharesBackend)
