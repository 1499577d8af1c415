"""State machines: every out-of-order stage, malformed, duplicate, replayed and tampered
message, and every abort rule an honest client or server enforces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from secagg_fixtures import Round, make_config, make_inputs

from securecomp.errors import (
    InsufficientParticipantsError,
    IntegrityError,
    MalformedMessageError,
    ProtocolAbort,
    ReplayError,
)
from securecomp.secagg import (
    SERVER,
    AdvertiseKeys,
    ClientState,
    KeysBroadcast,
    MaskedInput,
    ShareKeys,
    SharesDelivery,
    Stage,
    UnmaskRequest,
    UnmaskShares,
)
from securecomp.secagg.messages import Header


def _round(n: int = 5, **kw) -> Round:
    cfg = make_config(n, **kw)
    return Round(cfg, make_inputs(cfg))


def _with_header(msg, **changes):
    return dataclasses.replace(msg, header=dataclasses.replace(msg.header, **changes))


# --- client: out of order, replays, misdelivery ----------------------------------------------


def test_client_rejects_every_out_of_order_message_and_recovers() -> None:
    r = _round()
    _, keys = r.until_keys()
    c = r.clients[0]
    # Build one message of each later stage from a parallel run.
    other = _round()
    deliveries = other.until_shares()[2]
    fake_delivery = _with_header(deliveries[0], fingerprint=r.cfg.fingerprint)
    fake_request = UnmaskRequest(
        Header(r.cfg.session, 0, SERVER, 0, r.cfg.fingerprint), tuple(range(5))
    )
    for wrong in (fake_delivery, fake_request):
        with pytest.raises(ReplayError, match="out of order"):
            c.handle(wrong)
        assert c.state is ClientState.AWAIT_KEYS
    share = c.handle(keys[0])  # the right message still works
    assert isinstance(share, ShareKeys) and c.state is ClientState.AWAIT_SHARES
    with pytest.raises(ReplayError):
        c.handle(keys[0])  # repeated
    with pytest.raises(ReplayError):
        c.advertise_keys()  # a second set of keys in the same round


def test_client_rejects_stale_stages_after_masking_and_when_done() -> None:
    r = _round()
    deliveries, _masked, requests = r.until_unmask_request()
    c = r.clients[1]
    with pytest.raises(ReplayError):
        c.handle(deliveries[1])  # already used
    reply = c.handle(requests[1])
    assert isinstance(reply, UnmaskShares) and c.state is ClientState.DONE
    for stale in (deliveries[1], requests[1]):
        with pytest.raises(ReplayError):
            c.handle(stale)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"session": b"other-session"}, ReplayError),
        ({"round": 7}, ReplayError),
        ({"fingerprint": b"\x00" * 32}, ReplayError),
        ({"recipient": 3}, ReplayError),
        ({"sender": 2}, MalformedMessageError),
    ],
)
def test_client_rejects_messages_from_another_context(change, error) -> None:
    r = _round()
    _, keys = r.until_keys()
    c = r.clients[0]
    with pytest.raises(error):
        c.handle(_with_header(keys[0], **change))
    assert c.state is ClientState.AWAIT_KEYS
    c.handle(keys[0])


def test_client_rejects_non_server_messages() -> None:
    r = _round()
    ups, _ = r.until_keys()
    with pytest.raises(MalformedMessageError):
        r.clients[0].handle(ups[1])  # type: ignore[arg-type]


# --- client abort rules ---------------------------------------------------------------------


def test_duplicate_id_in_key_list_aborts_the_client() -> None:
    r = _round()
    _, keys = r.until_keys()
    k = keys[0]
    dup = dataclasses.replace(
        k,
        ids=(*k.ids, 1),
        c_publics=(*k.c_publics, k.c_publics[1]),
        s_publics=(*k.s_publics, k.s_publics[1]),
    )
    with pytest.raises(ProtocolAbort) as info:
        r.clients[0].handle(dup)
    assert info.value.culprits == (1,)
    assert r.clients[0].aborted
    with pytest.raises(ReplayError):
        r.clients[0].handle(k)  # an aborted client answers nothing more


def test_identical_public_keys_abort_the_client() -> None:
    r = _round()
    _, keys = r.until_keys()
    k = keys[0]
    c_pk = list(k.c_publics)
    c_pk[3] = c_pk[2]  # clients 2 and 3 "share" a key
    with pytest.raises(ProtocolAbort, match="identical public keys") as info:
        r.clients[0].handle(dataclasses.replace(k, c_publics=tuple(c_pk)))
    assert set(info.value.culprits) == {2, 3}
    # A client's c and s keys must differ as well.
    r2 = _round()
    _, keys2 = r2.until_keys()
    k2 = keys2[0]
    s_pk = list(k2.s_publics)
    s_pk[4] = k2.c_publics[4]
    with pytest.raises(ProtocolAbort, match="identical"):
        r2.clients[0].handle(dataclasses.replace(k2, s_publics=tuple(s_pk)))


def test_key_list_that_alters_own_keys_or_lists_strangers_aborts() -> None:
    r = _round()
    _, keys = r.until_keys()
    k = keys[0]
    c_pk = list(k.c_publics)
    c_pk[0] = c_pk[1][::-1]
    with pytest.raises(ProtocolAbort, match="this client's keys"):
        r.clients[0].handle(dataclasses.replace(k, c_publics=tuple(c_pk)))
    # SecAgg+: a key list naming a non-neighbour aborts.
    rp = _round(10, degree=2, threshold=2)
    _, kp = rp.until_keys()
    u = 0
    stranger = next(v for v in range(10) if v not in rp.cfg.graph.closed_neighbourhood(u))
    bad = dataclasses.replace(
        kp[u],
        ids=(*kp[u].ids, stranger),
        c_publics=(*kp[u].c_publics, b"\x09" * 32),
        s_publics=(*kp[u].s_publics, b"\x0a" * 32),
    )
    with pytest.raises(ProtocolAbort, match="not eligible") as info:
        rp.clients[u].handle(bad)
    assert info.value.culprits == (stranger,)


def test_too_few_keys_aborts_with_insufficient_participants() -> None:
    r = _round(5, threshold=4)
    _, keys = r.until_keys()
    k = keys[0]
    few = dataclasses.replace(
        k, ids=k.ids[:3], c_publics=k.c_publics[:3], s_publics=k.s_publics[:3]
    )
    with pytest.raises(InsufficientParticipantsError) as info:
        r.clients[0].handle(few)
    assert info.value.stage == Stage.SHARE_KEYS.value and r.clients[0].aborted


def test_tampered_share_ciphertext_aborts_with_integrity_cause() -> None:
    r = _round()
    deliveries = r.until_shares()[2]
    d = deliveries[0]
    cts = list(d.ciphertexts)
    blob = bytearray(cts[1])
    blob[20] ^= 0x01
    cts[1] = bytes(blob)
    with pytest.raises(ProtocolAbort, match="authentication") as info:
        r.clients[0].handle(dataclasses.replace(d, ciphertexts=tuple(cts)))
    assert isinstance(info.value.__cause__, IntegrityError)
    assert info.value.culprits == (d.senders[1],)
    assert r.clients[0].aborted


def test_share_carrying_wrong_owner_or_holder_aborts() -> None:
    r = _round()
    deliveries = r.until_shares()[2]
    d0, d1 = deliveries[0], deliveries[1]
    # Attribute client 2's ciphertext for holder 0 to client 3 (wrong owner).
    i2, i3 = d0.senders.index(2), d0.senders.index(3)
    swapped = list(d0.ciphertexts)
    swapped[i2], swapped[i3] = swapped[i3], swapped[i2]
    with pytest.raises(ProtocolAbort) as info:
        r.clients[0].handle(dataclasses.replace(d0, ciphertexts=tuple(swapped)))
    assert isinstance(info.value.__cause__, IntegrityError)
    # Forward to holder 1 the ciphertext client 2 sealed for holder 0 (wrong holder).
    j2 = d1.senders.index(2)
    rerouted = list(d1.ciphertexts)
    rerouted[j2] = d0.ciphertexts[i2]
    with pytest.raises(ProtocolAbort) as info:
        r.clients[1].handle(dataclasses.replace(d1, ciphertexts=tuple(rerouted)))
    assert isinstance(info.value.__cause__, IntegrityError)


def test_share_delivery_from_unknown_sender_or_too_few_aborts() -> None:
    r = _round(6, threshold=4)
    deliveries = r.until_shares()[2]
    d = deliveries[0]
    dup = dataclasses.replace(d, senders=(*d.senders[:-1], d.senders[0]))
    with pytest.raises(ProtocolAbort, match="twice"):
        r.clients[0].handle(dup)
    r2 = _round(6, threshold=4)
    d2 = r2.until_shares()[2][0]
    few = dataclasses.replace(d2, senders=d2.senders[:2], ciphertexts=d2.ciphertexts[:2])
    with pytest.raises(InsufficientParticipantsError):
        r2.clients[0].handle(few)


def test_unmask_request_checks() -> None:
    r = _round(6, threshold=3)
    _, _, requests = r.until_unmask_request()
    req = requests[0]
    with pytest.raises(ProtocolAbort, match="does not list"):
        r.clients[0].handle(dataclasses.replace(req, alive=(1, 2, 3, 4)))
    r2 = _round(6, threshold=3)
    req2 = r2.until_unmask_request()[2][0]
    with pytest.raises(InsufficientParticipantsError):
        r2.clients[0].handle(dataclasses.replace(req2, alive=(0, 1)))


def test_client_never_reveals_both_shares_of_a_client() -> None:
    r = _round(6, threshold=3)
    _, _, requests = r.until_unmask_request()
    c = r.clients[0]
    first = c.handle(dataclasses.replace(requests[0], alive=(0, 1, 2, 3, 4)))
    assert first.b_owners == (0, 1, 2, 3, 4) and first.sk_owners == (5,)
    assert not set(first.b_owners) & set(first.sk_owners)
    # The protocol admits one request (a second is out of order) ...
    with pytest.raises(ReplayError):
        c.handle(dataclasses.replace(requests[0], alive=(0, 1, 2, 5)))
    # ... and even if its state were rewound, the guard refuses the complementary reveal.
    c._state = ClientState.AWAIT_UNMASK  # simulate a faulty re-entry
    with pytest.raises(ProtocolAbort, match="both shares"):
        c.handle(dataclasses.replace(requests[0], alive=(0, 1, 2, 5)))


# --- server ---------------------------------------------------------------------------------


def test_server_rejects_every_out_of_order_stage() -> None:
    r = _round()
    ups = r.advertise()
    other = _round()
    _, share_ups, _ = other.until_shares()
    out_of_order = _with_header(share_ups[0], fingerprint=r.cfg.fingerprint, session=r.cfg.session)
    with pytest.raises(ReplayError, match="out of order"):
        r.server.receive(out_of_order)
    r.upload(ups)
    keys = r.close()
    with pytest.raises(ReplayError, match="out of order"):
        r.server.receive(ups[0])  # AdvertiseKeys during ShareKeys
    shares = r.reply(keys)
    r.upload(shares)
    deliveries = r.close()
    masked = r.reply(deliveries)
    with pytest.raises(ReplayError, match="out of order"):
        r.server.receive(shares[0])  # ShareKeys during MaskedInputCollection
    r.upload(masked)
    requests = r.close()
    replies = r.reply(requests)
    with pytest.raises(ReplayError, match="out of order"):
        r.server.receive(masked[0])  # MaskedInput during Unmasking
    r.upload(replies)
    assert r.server.close_stage() == [] and r.server.result is not None
    with pytest.raises(ReplayError):
        r.server.receive(replies[0])  # after the end
    with pytest.raises(ReplayError):
        r.server.close_stage()


def test_server_rejects_duplicates_strangers_and_foreign_context() -> None:
    r = _round()
    ups = r.advertise()
    r.server.receive(ups[0])
    with pytest.raises(ReplayError, match="duplicate"):
        r.server.receive(ups[0])
    with pytest.raises(MalformedMessageError):
        r.server.receive(_with_header(ups[1], sender=99))
    with pytest.raises(MalformedMessageError):
        r.server.receive(_with_header(ups[1], sender="x"))
    for change in ({"session": b"zz"}, {"round": 3}, {"fingerprint": b"f"}, {"recipient": 2}):
        with pytest.raises(ReplayError):
            r.server.receive(_with_header(ups[1], **change))
    with pytest.raises(MalformedMessageError):
        r.server.receive("not a message")  # type: ignore[arg-type]
    assert r.server.pending() == frozenset({1, 2, 3, 4})


def test_server_rejects_identical_public_keys() -> None:
    r = _round()
    ups = r.advertise()
    r.server.receive(ups[0])
    copy = dataclasses.replace(ups[1], c_public=ups[0].c_public)
    with pytest.raises(ReplayError, match="already in use"):
        r.server.receive(copy)
    same = dataclasses.replace(ups[2], s_public=ups[2].c_public)
    with pytest.raises(ReplayError, match="already in use"):
        r.server.receive(same)
    r.server.receive(ups[1])  # the genuine message is still accepted


def test_server_refuses_dropped_clients_and_malformed_stage_content() -> None:
    r = _round(5, threshold=3)
    ups = r.advertise()
    for u in (0, 1, 2, 3):
        r.server.receive(ups[u])
    keys = r.close()  # client 4 dropped
    shares = r.reply(keys)
    with pytest.raises(ReplayError, match="not a participant"):
        r.server.receive(ShareKeys(dataclasses.replace(shares[0].header, sender=4), (), ()))
    bad_recipients = dataclasses.replace(
        shares[0], recipients=(1, 2, 4), ciphertexts=shares[0].ciphertexts
    )
    with pytest.raises(MalformedMessageError, match="live neighbours"):
        r.server.receive(bad_recipients)
    r.upload(shares)
    deliveries = r.close()
    masked = r.reply(deliveries)
    m = masked[0]
    wrong_dim = MaskedInput(m.header, m.bits, m.values[:-1])
    with pytest.raises(MalformedMessageError):
        r.server.receive(wrong_dim)
    r.upload(masked)
    requests = r.close()
    replies = r.reply(requests)
    rep = replies[0]
    # A client trying to hand in a key share of a surviving client is refused.
    both = dataclasses.replace(rep, sk_owners=(1,), sk_shares=(rep.b_shares[1],))
    with pytest.raises(MalformedMessageError, match="must send"):
        r.server.receive(both)
    outside = dataclasses.replace(rep, b_shares=(b"\xff" * 36, *rep.b_shares[1:]))
    with pytest.raises(MalformedMessageError, match="field"):
        r.server.receive(outside)


def test_server_checks_alive_and_dropped_are_disjoint() -> None:
    r = _round(5, threshold=3)
    deliveries = r.until_shares()[2]
    masked = r.reply(deliveries)
    r.upload(masked)
    requests = r.close()
    r.upload(r.reply(requests))
    # Corrupt the server's own bookkeeping, as a buggy driver might: it must refuse.
    r.server._dropped[Stage.MASKED_INPUT_COLLECTION] = (2,)
    with pytest.raises(ProtocolAbort, match="both surviving and dropped") as info:
        r.server.close_stage()
    assert info.value.culprits == (2,) and r.server.result is None and r.server.aborted


def test_server_checks_reconstructed_keys_against_public_keys() -> None:
    r = _round(5, threshold=3)
    deliveries = r.until_shares()[2]
    masked = r.reply(deliveries)
    for u in (0, 1, 2, 3):
        r.server.receive(masked[u])  # client 4 drops: its key will be reconstructed
    requests = r.close()
    r.upload(r.reply(requests))
    c, _ = r.server._keys[4]
    r.server._keys[4] = (c, b"\x11" * 32)  # as if it had advertised another key
    with pytest.raises(ProtocolAbort, match="does not match"):
        r.server.close_stage()
    assert r.server.result is None


def test_server_aborts_when_a_neighbourhood_is_too_small() -> None:
    r = _round(10, degree=2, threshold=3)
    ups = r.advertise()
    g = r.cfg.graph
    u = 0
    gone = set(g.neighbours(u))
    for v, m in ups.items():
        if v not in gone:
            r.server.receive(m)
    with pytest.raises(InsufficientParticipantsError) as info:
        r.server.close_stage()
    assert u in info.value.culprits and r.server.result is None


def test_messages_of_all_stages_are_typed() -> None:
    assert [
        m.STAGE
        for m in (
            AdvertiseKeys,
            KeysBroadcast,
            ShareKeys,
            SharesDelivery,
            MaskedInput,
            UnmaskRequest,
            UnmaskShares,
        )
    ] == [
        Stage.ADVERTISE_KEYS,
        Stage.ADVERTISE_KEYS,
        Stage.SHARE_KEYS,
        Stage.SHARE_KEYS,
        Stage.MASKED_INPUT_COLLECTION,
        Stage.MASKED_INPUT_COLLECTION,
        Stage.UNMASKING,
    ]
    assert np.dtype(make_config(3).dtype).kind == "u"
