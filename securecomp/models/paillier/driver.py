"""Drivers that move the roles' message bytes over `securecomp.net` channels.

Party ids on a channel session: 0 the key holder, 1 the aggregator, ``2 + i`` holder ``i``.

* `simulate_training` plays every role in turn in *one thread* over in-process channels
  (sends never block there, so a fixed interleaving works): a simulation of the roles,
  with exact byte and round counts and each role's compute time measured on its own.
* `run_key_holder`, `run_aggregator`, `run_holder` are the per-role programs for a real
  deployment: give each its own channel endpoint (in-process between threads, or TCP
  between processes) and run them concurrently; they exchange the same bytes.

Tags name the protocol step: ``setup``, ``count``, ``schedule``, ``update``,
``aggregate``, ``model``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from securecomp.errors import MalformedMessageError, ParameterError
from securecomp.models.paillier.holder import Holder
from securecomp.models.paillier.role import connect_roles
from securecomp.models.paillier.training import Aggregator, KeyHolder
from securecomp.net.channel import Channel
from securecomp.net.inproc import make_inprocess_channels
from securecomp.net.stats import CommStats

__all__ = [
    "AGGREGATOR_ID",
    "KEY_HOLDER_ID",
    "Transcript",
    "holder_id",
    "run_aggregator",
    "run_holder",
    "run_key_holder",
    "simulate_training",
]

KEY_HOLDER_ID = 0
AGGREGATOR_ID = 1

#: ``(sender id, recipient id, tag, bytes)`` of every message, in sending order.
Transcript = list[tuple[int, int, str, bytes]]


def holder_id(index: int) -> int:
    """Channel party id of holder ``index``."""
    return 2 + index


def _index(name: str) -> int:
    return int(name.rpartition("_")[2])


def _recv(channel: Channel, frm: int, tag: str) -> bytes:
    got = channel.recv(frm, tag=tag)
    if not isinstance(got, bytes):
        raise MalformedMessageError(f"expected bytes tagged {tag!r} from party {frm}")
    return got


def run_key_holder(channel: Channel, role: KeyHolder) -> None:
    """The key holder's program (party 0)."""
    for name, msg in role.setup_messages().items():
        to = AGGREGATOR_ID if name == "aggregator" else holder_id(_index(name))
        channel.send(to, msg, tag="setup")
    out = role.receive_count(_recv(channel, AGGREGATOR_ID, "count"))
    channel.send(AGGREGATOR_ID, out.pop("aggregator"), tag="schedule")
    for name, msg in out.items():
        channel.send(holder_id(_index(name)), msg, tag="model")
    while not role.done:
        for name, msg in role.receive_aggregate(_recv(channel, AGGREGATOR_ID, "aggregate")).items():
            channel.send(holder_id(_index(name)), msg, tag="model")


def run_aggregator(channel: Channel, role: Aggregator) -> None:
    """The aggregator's program (party 1)."""
    role.receive_setup(_recv(channel, KEY_HOLDER_ID, "setup"))
    ids = {h: holder_id(_index(h)) for h in role.holders}
    counts = {h: _recv(channel, p, "count") for h, p in ids.items()}
    channel.send(KEY_HOLDER_ID, role.aggregate(counts), tag="count")
    role.receive_schedule(_recv(channel, KEY_HOLDER_ID, "schedule"))
    while not role.done:
        updates = {h: _recv(channel, p, "update") for h, p in ids.items()}
        channel.send(KEY_HOLDER_ID, role.aggregate(updates), tag="aggregate")


def run_holder(channel: Channel, role: Holder) -> None:
    """Holder ``i``'s program (party ``2 + i``)."""
    count = role.receive_setup(_recv(channel, KEY_HOLDER_ID, "setup"))
    channel.send(AGGREGATOR_ID, count, tag="count")
    while True:
        update = role.receive_model(_recv(channel, KEY_HOLDER_ID, "model"))
        if update is None:
            return
        channel.send(AGGREGATOR_ID, update, tag="update")


def simulate_training(
    key_holder: KeyHolder,
    aggregator: Aggregator,
    holders: Sequence[Holder],
    *,
    transcript: Transcript | None = None,
) -> CommStats:
    """Run the whole protocol in this thread (a simulation of the roles); returns the
    merged communication counters of all parties.

    The roles are connected to a fresh session first. ``transcript``, if given, receives
    every message as it is sent (for audits and tests).
    """
    if len(holders) != len(key_holder.holders):
        raise ParameterError(
            f"the key holder expects {len(key_holder.holders)} holders, got {len(holders)}"
        )
    connect_roles(key_holder, aggregator, *holders)
    channels = make_inprocess_channels(2 + len(holders))

    def send(frm: int, to: int, msg: bytes, tag: str) -> None:
        channels[frm].send(to, msg, tag=tag)
        if transcript is not None:
            transcript.append((frm, to, tag, msg))

    def recv(at: int, frm: int, tag: str) -> bytes:
        return _recv(channels[at], frm, tag)

    def holder_turn(step: Callable[[Holder, bytes], bytes | None], tag: str) -> None:
        tag_out = "update" if tag == "model" else "count"
        for h in holders:
            out = step(h, recv(holder_id(h.index), KEY_HOLDER_ID, tag))
            if out is not None:
                send(holder_id(h.index), AGGREGATOR_ID, out, tag_out)

    def aggregator_turn(tag_in: str, tag_out: str) -> None:
        msgs = {h.name: recv(AGGREGATOR_ID, holder_id(h.index), tag_in) for h in holders}
        send(AGGREGATOR_ID, KEY_HOLDER_ID, aggregator.aggregate(msgs), tag_out)

    def models(out: dict[str, bytes]) -> None:
        for h in holders:
            send(KEY_HOLDER_ID, holder_id(h.index), out[h.name], "model")

    setup = key_holder.setup_messages()
    send(KEY_HOLDER_ID, AGGREGATOR_ID, setup["aggregator"], "setup")
    for h in holders:
        send(KEY_HOLDER_ID, holder_id(h.index), setup[h.name], "setup")
    aggregator.receive_setup(recv(AGGREGATOR_ID, KEY_HOLDER_ID, "setup"))
    holder_turn(lambda h, m: h.receive_setup(m), "setup")
    aggregator_turn("count", "count")
    out = key_holder.receive_count(recv(KEY_HOLDER_ID, AGGREGATOR_ID, "count"))
    send(KEY_HOLDER_ID, AGGREGATOR_ID, out.pop("aggregator"), "schedule")
    aggregator.receive_schedule(recv(AGGREGATOR_ID, KEY_HOLDER_ID, "schedule"))
    models(out)
    while not key_holder.done:
        holder_turn(lambda h, m: h.receive_model(m), "model")
        aggregator_turn("update", "aggregate")
        models(key_holder.receive_aggregate(recv(KEY_HOLDER_ID, AGGREGATOR_ID, "aggregate")))
    holder_turn(lambda h, m: h.receive_model(m), "model")  # the final model
    stats = CommStats.merge(ch.stats for ch in channels)
    for ch in channels:
        ch.close()
    return stats
