"""Run an SPMD program in MAC mode: all parties and the authenticated dealer in one process.

`run_local_active` is `securecomp.mpc.run_local` for SPDZ2k: the same program style
(``program(session)`` or ``program(session, my_input)``, with ``session.share``,
arithmetic on tensors and ``session.reveal``), but each party gets an `ActiveSession`
whose preprocessing comes from an `AuthDealer` that knows the MAC keys. It is a
**simulation** (threads of one process), labelled so in the report; messages, bytes and
rounds are those of a deployment.

A party whose MAC check fails raises `MACCheckError`; with ``return_exceptions=True``
the outcomes then carry the errors and no result.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from securecomp.errors import ParameterError
from securecomp.mpc.dealer import DEALER, LINK_DEALER_ID, LINK_PARTY_ID
from securecomp.mpc.runner import (
    PartyOutcome,
    RunResult,
    _call,
    _check_program,
    _raise_first,
    _report,
)
from securecomp.mpc.session import DEFAULT_FRAC_BITS, DEFAULT_INPUT_BOUND
from securecomp.mpc.spdz2k.dealer import AuthDealer, AuthDealerClient
from securecomp.mpc.spdz2k.ring import DEFAULT_PARAMETERS, Spdz2kParameters
from securecomp.mpc.spdz2k.session import ActiveSession
from securecomp.net import DEFAULT_TIMEOUT, Channel, CommStats, make_inprocess_channels

__all__ = ["SIMULATED_AUTH_DEALER", "run_local_active"]

Program = Callable[..., Any]

#: Label of the in-process authenticated dealer in reports.
SIMULATED_AUTH_DEALER = (
    "in-process trusted authenticated dealer (knows the MAC keys; a thread, not a machine)"
)


def _run_party(
    program: Program,
    has_input: bool,
    value: Any,
    channel: Channel,
    link: Channel,
    kw: dict[str, Any],
    params: Spdz2kParameters,
    outcome: PartyOutcome,
    sessions: list[ActiveSession | None],
) -> None:
    client: AuthDealerClient | None = None
    start = time.perf_counter()
    try:
        client = AuthDealerClient(
            link, channel.party_id, channel.n_parties, kw["session_id"], params,
            timeout=channel.timeout,
        )
        sess = ActiveSession(channel, client, **kw)
        sessions[channel.party_id] = sess
        start = time.perf_counter()
        before = client.offline_seconds
        outcome.result = _call(program, sess, has_input, value)  # type: ignore[arg-type]
        outcome.offline_seconds = client.offline_seconds - before
    except BaseException as exc:  # reported per party; the caller decides what to raise
        outcome.error = exc
        outcome.result = None  # nothing is released by a failed party
    finally:
        outcome.seconds = time.perf_counter() - start
        outcome.stats = channel.stats
        outcome.dealer_link_stats = link.stats
        if client is not None:
            client.close()
        else:
            link.close()
        channel.close()


def run_local_active(
    program: Program,
    parties: int = 2,
    *,
    inputs: Sequence[Any] | None = None,
    params: Spdz2kParameters = DEFAULT_PARAMETERS,
    frac_bits: int = DEFAULT_FRAC_BITS,
    input_bound: float = DEFAULT_INPUT_BOUND,
    timeout: float = DEFAULT_TIMEOUT,
    session_id: bytes | None = None,
    return_exceptions: bool = False,
    name: str = "spdz2k",
) -> RunResult:
    """Run ``program`` in MAC mode as ``parties`` computing parties plus a dealer.

    Parameters
    ----------
    program : callable
        ``program(session)``, or ``program(session, inputs[i])`` with ``inputs``.
    parties : int
        Number of computing parties (>= 2).
    inputs : sequence, optional
        One entry per party; party ``i`` sees only ``inputs[i]``.
    params : Spdz2kParameters
        ``(k, s) = (64, 64)`` by default; ``(32, 32)`` only inside
        ``securecomp.params.insecure_test_parameters()`` (it cannot be constructed
        outside it).
    frac_bits, input_bound, timeout, session_id, return_exceptions, name
        As for `securecomp.mpc.run_local`.

    Returns
    -------
    RunResult
        Per-party results (None for a party that failed), merged `CostReport`, seconds.
        ``outcomes[i].session`` is None: the `ActiveSession` objects are in
        ``report.metrics`` only by label.
    """
    if type(parties) is not int or parties < 2:
        raise ParameterError(f"run_local_active needs at least 2 parties, got {parties!r}")
    if not isinstance(params, Spdz2kParameters):
        raise ParameterError("params must be a Spdz2kParameters")
    has_input = inputs is not None
    if inputs is not None and len(inputs) != parties:
        raise ParameterError(f"inputs has {len(inputs)} entries for {parties} parties")
    _check_program(program, has_input)
    ActiveSession.check_parameters(parties, frac_bits, params)
    sid = session_id if session_id is not None else secrets.token_bytes(16)
    kw = {"session_id": sid, "frac_bits": frac_bits, "input_bound": input_bound}
    start = time.perf_counter()
    channels = make_inprocess_channels(parties, timeout=timeout)
    dealer_stats = CommStats(DEALER)
    links = []
    for i in range(parties):
        ends = make_inprocess_channels(2, timeout=timeout)
        ends[LINK_DEALER_ID].stats = dealer_stats
        ends[LINK_PARTY_ID].stats = CommStats(i)
        links.append(ends)
    dealer = AuthDealer([e[LINK_DEALER_ID] for e in links], sid, params,
                        idle_timeout=max(timeout, 60.0))
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
    sessions: list[ActiveSession | None] = [None] * parties
    threads = [threading.Thread(target=dealer_main, name="securecomp-auth-dealer", daemon=True)]
    for i in range(parties):
        value = inputs[i] if inputs is not None else None
        threads.append(threading.Thread(
            target=_run_party,
            args=(program, has_input, value, channels[i], links[i][LINK_PARTY_ID], kw, params,
                  outcomes[i], sessions),
            name=f"securecomp-active-party-{i}",
            daemon=True,
        ))
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    threads[0].join(timeout)
    metrics: dict[str, Any] = {
        "parties": parties,
        "dealer": SIMULATED_AUTH_DEALER,
        "execution": "in-process simulation (threads)",
        "security": "active (SPDZ2k MACs), honest dealer",
        "k": params.k,
        "s": params.s,
        "mac_check_soundness_bits": round(params.soundness_bits, 1),
        "frac_bits": frac_bits,
        "mac_checks": max((s.checks_run for s in sessions if s is not None), default=0),
    }
    if dealer_error:
        metrics["dealer_error"] = f"{type(dealer_error[0]).__name__}: {dealer_error[0]}"
        for o in outcomes:
            if o.error is not None:
                o.error.add_note(f"the dealer failed: {metrics['dealer_error']}")
    report = _report(name, outcomes, dealer_stats, metrics)
    report.leakage.record(
        DEALER, "the MAC keys and every mask it dealt (trusted not to collude)", "preprocessing"
    )
    first = sessions[0]
    if first is not None:
        for e in first.ledger:
            report.leakage.record(e.party, e.what, e.stage)
    result = RunResult(outcomes, report, time.perf_counter() - start, dealer_stats)
    if not return_exceptions:
        _raise_first(outcomes)
    return result
