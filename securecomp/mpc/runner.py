"""Run an SPMD program: all parties in one process (`run_local`) or one party per process.

A *program* is a callable ``program(session)`` or, with per-party inputs,
``program(session, my_input)``; every computing party runs it on its own share. The same
program runs

* in one process, over in-memory channels, with `run_local` (parties and the dealer are
  threads: a **simulation** of a deployment, labelled so in the report), and
* as separate processes over TCP with `run_party` (one computing party) and `run_dealer`
  (the dealer), each given explicit ``host:port`` addresses; ``securecomp party`` and
  ``securecomp dealer`` (`securecomp.mpc.cli`) wrap them.

Each party passes only its own data. Results, the `CostReport` and timing come back
together: the online phase is the program's wall-clock time minus the time spent
producing or waiting for preprocessing (the offline phase); the communication counters
of the computing channels (online) and of the dealer links (offline) are kept apart
(``report.comm.per_phase``). Material is fetched lazily by default, so the other parties
may wait for the last one's dealer round trips inside their online time; a program that
calls ``session.prefetch(specs)`` first gets a clean offline/online split.

Topology: the computing parties form a full mesh (ids ``0..n-1``). The dealer has one
two-endpoint link per computing party (dealer = endpoint 0 on each), so dealer traffic
never mixes into the computing parties' round counts.
"""

from __future__ import annotations

import inspect
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from securecomp.errors import ParameterError
from securecomp.mpc.dealer import DEALER, LINK_DEALER_ID, LINK_PARTY_ID, Dealer, DealerClient
from securecomp.mpc.session import DEFAULT_FRAC_BITS, DEFAULT_INPUT_BOUND, Session, Truncation
from securecomp.net import (
    DEFAULT_TIMEOUT,
    Channel,
    CommStats,
    CostReport,
    PartyAddress,
    TCPChannel,
    TLSConfig,
    make_inprocess_channels,
)

__all__ = ["PartyOutcome", "RunResult", "run_dealer", "run_local", "run_party"]

Program = Callable[..., Any]

#: Label of the in-process dealer in reports.
SIMULATED_DEALER = "in-process trusted-dealer simulation (a thread, not a separate machine)"


@dataclass
class PartyOutcome:
    """What one computing party got from a run."""

    party: int
    result: Any = None
    error: BaseException | None = None
    #: Wall-clock seconds of the program, and the part of it spent on preprocessing.
    seconds: float = 0.0
    offline_seconds: float = 0.0
    #: Counters of the computing channel (online) and of the dealer link (offline).
    stats: CommStats | None = None
    dealer_link_stats: CommStats | None = None
    session: Session | None = field(default=None, repr=False)

    @property
    def online_seconds(self) -> float:
        return max(self.seconds - self.offline_seconds, 0.0)


@dataclass
class RunResult:
    """Results, cost report and timing of one run (all parties)."""

    outcomes: list[PartyOutcome]
    report: CostReport
    seconds: float
    dealer_stats: CommStats | None = None

    @property
    def results(self) -> list[Any]:
        """Each party's return value (index = party id)."""
        return [o.result for o in self.outcomes]

    @property
    def errors(self) -> list[BaseException | None]:
        return [o.error for o in self.outcomes]

    @property
    def party_stats(self) -> list[CommStats]:
        """Online (computing-channel) counters per party."""
        return [o.stats if o.stats is not None else CommStats(o.party) for o in self.outcomes]


def _call(program: Program, sess: Session, has_input: bool, value: Any) -> Any:
    return program(sess, value) if has_input else program(sess)


def _check_program(program: Program, has_input: bool) -> None:
    if not callable(program):
        raise ParameterError(f"program must be callable, got {type(program).__name__}")
    try:
        params = inspect.signature(program).parameters
    except (TypeError, ValueError):
        return
    positional = [
        p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    want = 2 if has_input else 1
    if not any(p.kind is p.VAR_POSITIONAL for p in params.values()) and len(positional) < want:
        raise ParameterError(
            "program takes (session, my_input) when inputs are given, else (session)"
        )


def _run_party(
    program: Program,
    has_input: bool,
    value: Any,
    channel: Channel,
    link: Channel,
    session_kw: dict[str, Any],
    outcome: PartyOutcome,
) -> None:
    """Body of one computing party; always closes its channels."""
    client: DealerClient | None = None
    start = time.perf_counter()
    try:
        client = DealerClient(
            link,
            channel.party_id,
            channel.n_parties,
            session_kw["session_id"],
            timeout=channel.timeout,
        )
        sess = Session(channel, client, **session_kw)
        outcome.session = sess
        start = time.perf_counter()
        # Read the session's provider, not the dealer client: a program may install another
        # one in front of it (securecomp.mpc.offline.PaillierTriples) whose time is offline.
        offline_before = sess.offline_seconds
        outcome.result = _call(program, sess, has_input, value)
        outcome.offline_seconds = sess.offline_seconds - offline_before
    except BaseException as exc:  # reported per party; the caller decides what to raise
        outcome.error = exc
        if client is not None:
            outcome.offline_seconds = client.offline_seconds
    finally:
        outcome.seconds = time.perf_counter() - start
        outcome.stats = channel.stats
        outcome.dealer_link_stats = link.stats
        if client is not None:
            client.close()
        else:
            link.close()
        channel.close()


def _report(
    name: str,
    outcomes: Sequence[PartyOutcome],
    dealer_stats: CommStats | None,
    metrics: dict[str, Any],
) -> CostReport:
    parts = [o.stats for o in outcomes if o.stats is not None]
    parts += [o.dealer_link_stats for o in outcomes if o.dealer_link_stats is not None]
    if dealer_stats is not None:
        parts.append(dealer_stats)
    report = CostReport(protocol=name, comm=CommStats.merge(parts), metrics=dict(metrics))
    report.phases["offline"] = max((o.offline_seconds for o in outcomes), default=0.0)
    report.phases["online"] = max((o.online_seconds for o in outcomes), default=0.0)
    first = outcomes[0].session if outcomes else None
    if first is not None:
        for e in first.ledger:
            report.leakage.record(e.party, e.what, e.stage)
    report.leakage.record(
        DEALER, "the number, kinds and shapes of the preprocessing requests", "preprocessing"
    )
    return report


def _raise_first(outcomes: Sequence[PartyOutcome]) -> None:
    failed = [(o.party, o.error) for o in outcomes if o.error is not None]
    if not failed:
        return
    first = failed[0][1]
    for party, err in failed[1:]:
        first.add_note(f"party {party} also failed: {type(err).__name__}: {err}")
    raise first


def run_local(
    program: Program,
    parties: int = 2,
    *,
    inputs: Sequence[Any] | None = None,
    frac_bits: int = DEFAULT_FRAC_BITS,
    truncation: Truncation | str = Truncation.DEALER,
    input_bound: float = DEFAULT_INPUT_BOUND,
    timeout: float = DEFAULT_TIMEOUT,
    session_id: bytes | None = None,
    return_exceptions: bool = False,
    name: str = "mpc",
) -> RunResult:
    """Run ``program`` as ``parties`` computing parties plus a dealer, in threads.

    This is a simulation (one process, no isolation between parties), labelled so in the
    report's metrics; the messages, bytes and rounds are those of a real deployment.

    Parameters
    ----------
    program : callable
        ``program(session)``, or ``program(session, inputs[i])`` when ``inputs`` is given.
    parties : int
        Number of computing parties (>= 2).
    inputs : sequence, optional
        One entry per party; party ``i`` sees only ``inputs[i]``.
    frac_bits, truncation, input_bound
        Session parameters (see `Session`).
    timeout : float
        Receive timeout of every channel, seconds.
    return_exceptions : bool
        If True, failures are returned in the outcomes instead of raised.

    Returns
    -------
    RunResult
        ``results`` (per party), ``report`` (merged `CostReport`), ``seconds``.

    Raises
    ------
    Exception
        The first failing party's error (by party id), with the others' errors as notes,
        unless ``return_exceptions``.
    """
    if type(parties) is not int or parties < 2:
        raise ParameterError(f"run_local needs at least 2 computing parties, got {parties!r}")
    has_input = inputs is not None
    if inputs is not None and len(inputs) != parties:
        raise ParameterError(f"inputs has {len(inputs)} entries for {parties} parties")
    _check_program(program, has_input)
    sid = session_id if session_id is not None else secrets.token_bytes(16)
    session_kw = {
        "session_id": sid,
        "frac_bits": frac_bits,
        "truncation": truncation,
        "input_bound": input_bound,
    }
    Session.check_parameters(parties, frac_bits, truncation)
    start = time.perf_counter()
    channels = make_inprocess_channels(parties, timeout=timeout)
    dealer_stats = CommStats(DEALER)
    links = []
    for i in range(parties):
        ends = make_inprocess_channels(2, timeout=timeout)
        ends[LINK_DEALER_ID].stats = dealer_stats
        ends[LINK_PARTY_ID].stats = CommStats(i)
        links.append(ends)
    dealer = Dealer([e[LINK_DEALER_ID] for e in links], sid, idle_timeout=max(timeout, 60.0))
    dealer_error: list[BaseException] = []

    def dealer_main() -> None:
        try:
            dealer.serve()
        except BaseException as exc:
            dealer_error.append(exc)
        finally:
            for e in links:
                e[LINK_DEALER_ID].close()

    outcomes = [PartyOutcome(i) for i in range(parties)]
    threads = [threading.Thread(target=dealer_main, name="securecomp-dealer", daemon=True)]
    for i in range(parties):
        value = inputs[i] if inputs is not None else None
        threads.append(
            threading.Thread(
                target=_run_party,
                args=(
                    program,
                    has_input,
                    value,
                    channels[i],
                    links[i][LINK_PARTY_ID],
                    session_kw,
                    outcomes[i],
                ),
                name=f"securecomp-party-{i}",
                daemon=True,
            )
        )
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    threads[0].join(timeout)
    seconds = time.perf_counter() - start
    metrics = {
        "parties": parties,
        "dealer": SIMULATED_DEALER,
        "execution": "in-process simulation (threads)",
        "truncation": Truncation(truncation).value,
        "frac_bits": frac_bits,
    }
    if dealer_error:
        metrics["dealer_error"] = f"{type(dealer_error[0]).__name__}: {dealer_error[0]}"
    result = RunResult(
        outcomes, _report(name, outcomes, dealer_stats, metrics), seconds, dealer_stats
    )
    if not return_exceptions:
        _raise_first(outcomes)
    return result


def _address(a: PartyAddress | str) -> PartyAddress:
    return a if isinstance(a, PartyAddress) else PartyAddress.parse(a)


def run_party(
    program: Program,
    party_id: int,
    peers: Sequence[PartyAddress | str],
    dealer: PartyAddress | str,
    *,
    session_id: bytes,
    my_input: Any = None,
    has_input: bool = False,
    frac_bits: int = DEFAULT_FRAC_BITS,
    truncation: Truncation | str = Truncation.DEALER,
    input_bound: float = DEFAULT_INPUT_BOUND,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_TIMEOUT,
    tls: TLSConfig | None = None,
    dealer_tls: TLSConfig | None = None,
    name: str = "mpc",
) -> tuple[PartyOutcome, CostReport]:
    """Run one computing party of ``program`` in this process, over TCP.

    Parameters
    ----------
    party_id : int
        This party.
    peers : sequence of PartyAddress or "host:port"
        Entry ``j`` is where computing party ``j`` listens (this party's own entry is
        where it listens).
    dealer : PartyAddress or "host:port"
        Where the dealer listens for *this* party's link.
    session_id : bytes
        The identifier every party and the dealer were given.
    tls, dealer_tls : TLSConfig, optional
        Required for non-loopback addresses; ``dealer_tls`` pins the dealer as endpoint 0.

    Returns
    -------
    (PartyOutcome, CostReport)
        Raises the party's error, if any, after closing every connection.
    """
    Session.check_parameters(len(peers), frac_bits, truncation)
    addrs = [_address(a) for a in peers]
    link = TCPChannel(
        LINK_PARTY_ID,
        [_address(dealer), addrs[party_id]],
        tls=dealer_tls,
        timeout=timeout,
        connect_timeout=connect_timeout,
        stats=CommStats(party_id),
    )
    try:
        channel = TCPChannel(
            party_id, addrs, tls=tls, timeout=timeout, connect_timeout=connect_timeout
        )
    except BaseException:
        link.close()
        raise
    outcome = PartyOutcome(party_id)
    session_kw = {
        "session_id": session_id,
        "frac_bits": frac_bits,
        "truncation": truncation,
        "input_bound": input_bound,
    }
    _run_party(program, has_input, my_input, channel, link, session_kw, outcome)
    metrics = {"party": party_id, "execution": "TCP", "truncation": Truncation(truncation).value}
    report = _report(name, [outcome], None, metrics)
    if outcome.error is not None:
        raise outcome.error
    return outcome, report


def run_dealer(
    listen: Sequence[PartyAddress | str],
    *,
    session_id: bytes,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_TIMEOUT,
    idle_timeout: float = 600.0,
    tls: Sequence[TLSConfig] | None = None,
) -> CommStats:
    """Run the dealer in this process: one listening address per computing party.

    ``listen[i]`` is where the dealer accepts party ``i``'s link; ``tls[i]``, if given,
    pins party ``i`` as endpoint 1 of that link. Returns the dealer's counters.
    """
    addrs = [_address(a) for a in listen]
    if len(addrs) < 2:
        raise ParameterError("the dealer serves at least 2 computing parties")
    if tls is not None and len(tls) != len(addrs):
        raise ParameterError("give one TLSConfig per dealer link, or none")
    stats = CommStats(DEALER)
    links: list[Channel | None] = [None] * len(addrs)
    errors: list[BaseException] = []

    def connect(i: int) -> None:
        try:
            links[i] = TCPChannel(
                LINK_DEALER_ID,
                [addrs[i], addrs[i]],
                tls=None if tls is None else tls[i],
                timeout=timeout,
                connect_timeout=connect_timeout,
                stats=stats,
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=connect, args=(i,), daemon=True) for i in range(len(addrs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ready = [link for link in links if link is not None]
    try:
        if errors:
            raise errors[0]
        Dealer(ready, session_id, idle_timeout=idle_timeout).serve()
    finally:
        for link in ready:
            link.close()
    return stats
