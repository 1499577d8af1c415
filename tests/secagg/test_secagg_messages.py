"""Typed messages on the wire: round trips, exact schemas, fuzzing of the decoder."""

from __future__ import annotations

import contextlib

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from secagg_fixtures import Round, make_config, make_inputs

from securecomp.errors import MalformedMessageError, ParameterError, SecurecompError
from securecomp.net.wire import Envelope, encode_envelope
from securecomp.secagg import (
    AdvertiseKeys,
    Header,
    MaskedInput,
    UnmaskShares,
    decode_message,
    encode_message,
)
from securecomp.secagg.shares import SEALED_SHARES_BYTES, SHARE_BYTES


@pytest.fixture(scope="module")
def transcript() -> list:
    cfg = make_config(5, dim=11)
    r = Round(cfg, make_inputs(cfg))
    msgs: list = []
    ups = r.advertise()
    msgs += ups.values()
    r.upload(ups)
    keys = r.close()
    msgs += keys.values()
    shares = r.reply(keys)
    msgs += shares.values()
    r.upload(shares)
    deliveries = r.close()
    msgs += deliveries.values()
    masked = r.reply(deliveries)
    msgs += masked.values()
    r.upload(masked)
    requests = r.close()
    msgs += requests.values()
    msgs += r.reply(requests).values()
    return msgs


def _same(a, b) -> bool:
    if isinstance(a, MaskedInput):
        return (
            a.header == b.header
            and a.bits == b.bits
            and a.values.dtype == b.values.dtype
            and np.array_equal(a.values, b.values)
        )
    return a == b


def test_every_message_round_trips(transcript: list) -> None:
    kinds = set()
    for msg in transcript:
        again = decode_message(encode_message(msg))
        assert type(again) is type(msg) and _same(again, msg)
        kinds.add(msg.KIND)
    assert len(kinds) == 7


def test_masked_input_travels_bit_packed(transcript: list) -> None:
    m = next(x for x in transcript if isinstance(x, MaskedInput))
    data = encode_message(m)
    packed = (m.values.size * m.bits + 7) // 8
    assert len(data) < packed + 256  # envelope header and framing only


def _envelope(kind: str, body: object, **kw) -> bytes:
    fields = dict(
        kind=kind,
        scheme="secagg",
        fingerprint=b"f" * 32,
        key_id=b"",
        session=b"s",
        round=0,
        sender=1,
        recipient="server",
        payload=msgpack.packb(body, use_bin_type=True),
    )
    fields.update(kw)
    return encode_envelope(Envelope(**fields))


GOOD_KEYS = {"c": b"\x01" * 32, "s": b"\x02" * 32}


def test_hand_built_envelope_decodes() -> None:
    msg = decode_message(_envelope("secagg.advertise_keys", GOOD_KEYS))
    assert isinstance(msg, AdvertiseKeys) and msg.header.sender == 1


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("secagg.advertise_keys", {"c": b"\x01" * 32}),  # missing field
        ("secagg.advertise_keys", {**GOOD_KEYS, "x": 1}),  # extra field
        ("secagg.advertise_keys", {"c": b"\x01" * 31, "s": b"\x02" * 32}),  # short key
        ("secagg.advertise_keys", {"c": "text", "s": b"\x02" * 32}),  # wrong type
        ("secagg.advertise_keys", [b"\x01" * 32, b"\x02" * 32]),  # not a map
        ("secagg.share_keys", {"to": b"\x01\x00\x00", "ct": b""}),  # ids not uint32
        ("secagg.share_keys", {"to": b"\x01\x00\x00\x00", "ct": b"x" * 10}),  # short ct
        ("secagg.masked_input", {"dim": 4, "bits": 10, "data": b"\x00" * 4}),  # wrong length
        ("secagg.masked_input", {"dim": 0, "bits": 10, "data": b""}),
        ("secagg.masked_input", {"dim": 4, "bits": 65, "data": b"\x00" * 33}),
        ("secagg.masked_input", {"dim": 4, "bits": True, "data": b"\x00"}),
        ("secagg.unmask_request", {"alive": b"\xff\xff\xff\xff"}),  # id out of range
        ("secagg.unmask_shares", {"b_ids": b"", "b": b"x", "sk_ids": b"", "sk": b""}),
        ("secagg.no_such_message", GOOD_KEYS),  # unknown kind in the namespace
    ],
)
def test_malformed_payloads_are_refused(kind: str, body: object) -> None:
    with pytest.raises(MalformedMessageError):
        decode_message(_envelope(kind, body))


def test_foreign_scheme_and_sealed_envelopes_are_refused() -> None:
    with pytest.raises(MalformedMessageError):
        decode_message(_envelope("secagg.advertise_keys", GOOD_KEYS, scheme="other"))
    with pytest.raises(MalformedMessageError):
        decode_message(_envelope("secagg.advertise_keys", GOOD_KEYS, sealed=True))
    with pytest.raises(MalformedMessageError):
        decode_message(_envelope("mpc.share", GOOD_KEYS))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_decoder_fuzz_raises_only_securecomp_errors(data: bytes) -> None:
    with contextlib.suppress(SecurecompError):
        decode_message(data)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_flipped_or_truncated_messages_never_crash(transcript: list, data) -> None:
    msg = data.draw(st.sampled_from(transcript))
    raw = bytearray(encode_message(msg))
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
    else:
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    with contextlib.suppress(SecurecompError):
        decode_message(bytes(raw))


def test_constructors_validate() -> None:
    h = Header(b"s", 0, 1, "server", b"f")
    with pytest.raises(ParameterError):
        encode_message(AdvertiseKeys(h, b"x", b"y" * 32))
    with pytest.raises(ParameterError):
        encode_message(UnmaskShares(h, (1,), (), (), ()))
    with pytest.raises(ParameterError):
        encode_message("not a message")  # type: ignore[arg-type]
    assert SHARE_BYTES == 36 and SEALED_SHARES_BYTES == 108
