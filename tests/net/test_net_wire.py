"""Wire format: round trips, strict decoding, fuzzing, sealed envelopes and replays."""

from __future__ import annotations

import contextlib
import pickle
import struct

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from securecomp.errors import (
    EncodingOverflowError,
    IntegrityError,
    MalformedMessageError,
    ParameterError,
    ReplayError,
)
from securecomp.net import (
    ARRAY_DTYPES,
    Envelope,
    decode_array,
    decode_arrays,
    decode_bigints,
    decode_envelope,
    describe,
    encode_array,
    encode_arrays,
    encode_bigints,
    encode_envelope,
    is_registered_kind,
    open_envelope,
    register_kind,
    seal_envelope,
)

KEY = bytes(range(32))
DTYPES = list(ARRAY_DTYPES.values())


def make_env(**kw: object) -> Envelope:
    fields: dict[str, object] = {
        "kind": "mpc.share",
        "scheme": "z2k64",
        "fingerprint": b"\x01" * 16,
        "key_id": b"kid",
        "session": b"session-A",
        "round": 3,
        "sender": 0,
        "recipient": 1,
        "payload": b"payload bytes",
    }
    fields.update(kw)
    return Envelope(**fields)  # type: ignore[arg-type]


# -- arrays -------------------------------------------------------------------------------

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


@given(st.data())
def test_array_round_trip_every_dtype(data: st.DataObject) -> None:
    dt = data.draw(st.sampled_from(DTYPES))
    a = data.draw(hnp.arrays(dt, shapes))
    b = decode_array(encode_array(a))
    assert b.dtype == a.dtype and b.shape == a.shape
    assert b.tobytes() == a.tobytes()  # bit-exact, NaN payloads and -0.0 included


@given(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_array_big_endian_and_strided_inputs(dt: np.dtype, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, size=shape) if dt.kind == "b" else rng.integers(-50, 50, size=shape)
    a = a.astype(dt)
    for variant in (a.astype(dt.newbyteorder(">")), a.T, a[..., ::-1]):
        b = decode_array(encode_array(variant))
        assert b.dtype == dt  # little-endian on the wire and back
        np.testing.assert_array_equal(b, variant)


def test_array_views_and_copies() -> None:
    enc = encode_array(np.arange(6, dtype=np.int32).reshape(2, 3))
    ro = decode_array(enc)
    assert not ro.flags.writeable  # view of immutable bytes
    buf = bytearray(enc)
    rw = decode_array(buf)
    rw[0, 0] = 7
    assert rw.flags.writeable and decode_array(bytes(buf))[0, 0] == 7  # aliases the buffer
    own = decode_array(enc, copy=True)
    own[1, 1] = -1
    assert own.flags.owndata and decode_array(enc)[1, 1] == 4
    assert decode_array(buf).flags.aligned


@pytest.mark.parametrize(
    "bad",
    [
        np.array([1, "a"], dtype=object),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
        np.zeros(3, dtype=np.float16),
        np.zeros(3, dtype=np.complex128),
        np.array(["x"]),
        np.zeros(2, dtype="datetime64[s]"),
    ],
)
def test_array_encoder_refuses_other_dtypes(bad: np.ndarray) -> None:
    with pytest.raises(ParameterError, match="dtype"):
        encode_array(bad)


def test_array_decoder_rejects_bad_heads() -> None:
    good = encode_array(np.arange(4, dtype=np.uint64))
    cases = {
        "magic": b"XYZ" + good[3:],
        "version": good[:3] + b"\x02" + good[4:],
        "dtype code": good[:4] + b"\x0b" + good[5:],  # 11: not in the allow-list
        "object dtype code": good[:4] + bytes([ord("O")]) + good[5:],
        "reserved": good[:6] + b"\x01\x00" + good[8:],
        "dimensions": good[:5] + b"\x21" + good[6:],  # 33 > 32
        "truncated": good[:-1],
        "padded": good + b"\x00",
        "huge shape": good[:8] + struct.pack("<Q", 1 << 41) + good[16:],
        "lying shape": good[:8] + struct.pack("<Q", 5) + good[16:],
    }
    for name, data in cases.items():
        with pytest.raises(MalformedMessageError):
            decode_array(data)
        del name
    bools = bytearray(encode_array(np.array([True, False])))
    bools[-1] = 2
    with pytest.raises(MalformedMessageError, match="bool"):
        decode_array(bytes(bools))


def test_arrays_list_round_trip_and_lies() -> None:
    arrs = [np.arange(3, dtype=np.int8), np.ones((2, 2)), np.array(True)]
    out = decode_arrays(encode_arrays(arrs))
    assert len(out) == 3
    for a, b in zip(arrs, out, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    enc = encode_arrays(arrs)
    for cut in range(len(enc)):
        with pytest.raises(MalformedMessageError):
            decode_arrays(enc[:cut])
    with pytest.raises(MalformedMessageError):
        decode_arrays(struct.pack("<I", 1) + struct.pack("<Q", 1 << 40))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_array_decoders_fuzz(data: bytes) -> None:
    for dec in (decode_array, decode_arrays):
        with contextlib.suppress(MalformedMessageError):
            dec(data)


# -- big integers -------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=0, max_value=(1 << 256) - 1), max_size=8))
def test_bigints_round_trip(ints: list[int]) -> None:
    enc = encode_bigints(ints, 32)
    assert len(enc) == 32 * len(ints)
    assert decode_bigints(enc, 32, len(ints)) == ints


def test_bigints_reject_negative_wide_and_bad_lengths() -> None:
    with pytest.raises(EncodingOverflowError, match="negative"):
        encode_bigints([1, -1], 8)
    with pytest.raises(EncodingOverflowError, match="65 bits"):
        encode_bigints([1 << 64], 8)
    assert encode_bigints([np.uint64(5)], 2) == b"\x00\x05"
    with pytest.raises(ParameterError):
        encode_bigints([1.0], 8)  # type: ignore[list-item]
    with pytest.raises(ParameterError):
        encode_bigints([True], 8)
    with pytest.raises(MalformedMessageError):
        decode_bigints(b"\x00" * 15, 8, 2)
    with pytest.raises(MalformedMessageError, match="bound"):
        decode_bigints((77).to_bytes(4, "big"), 4, 1, upper=77)
    assert decode_bigints((76).to_bytes(4, "big"), 4, 1, upper=77) == [76]
    with pytest.raises(ParameterError):
        decode_bigints(b"", 0, 0)


# -- envelopes ----------------------------------------------------------------------------

names = st.text(max_size=64).filter(lambda s: len(s.encode()) <= 64)
party = st.one_of(st.integers(0, 2**32 - 1), names.filter(bool))


@given(
    kind=st.sampled_from(["array", "ckks.ciphertext", "secagg.masked_input", "mpc.share"]),
    scheme=names,
    fp=st.binary(max_size=64),
    kid=st.binary(max_size=64),
    session=st.binary(max_size=64),
    rnd=st.integers(0, 2**63 - 1),
    sender=party,
    recipient=party,
    payload=st.binary(max_size=300),
)
def test_envelope_round_trip(**kw: object) -> None:
    env = Envelope(
        kind=kw["kind"],
        scheme=kw["scheme"],
        fingerprint=kw["fp"],
        key_id=kw["kid"],
        session=kw["session"],
        round=kw["rnd"],
        sender=kw["sender"],
        recipient=kw["recipient"],
        payload=kw["payload"],
    )  # type: ignore[arg-type]
    assert decode_envelope(encode_envelope(env)) == env
    opened = open_envelope(seal_envelope(env, KEY), KEY)
    assert opened == env


def test_envelope_constructor_validates() -> None:
    bad: list[dict[str, object]] = [
        {"kind": "no.such.kind"},
        {"kind": "Bad Kind"},
        {"scheme": 5},
        {"fingerprint": "str"},
        {"session": b"x" * 65},
        {"round": -1},
        {"round": True},
        {"sender": 1.5},
        {"recipient": ""},
        {"scheme": "é" * 33},  # 66 UTF-8 bytes
        {"sender": "\ud800"},  # a lone surrogate cannot be encoded
        {"recipient": 2**32},
        {"payload": bytearray(b"x")},
    ]
    for kw in bad:
        with pytest.raises(ParameterError):
            make_env(**kw)


def test_register_kind() -> None:
    assert not is_registered_kind("test_net.kind")
    assert register_kind("test_net.kind") == "test_net.kind"
    env = make_env(kind="test_net.kind")
    assert decode_envelope(encode_envelope(env)).kind == "test_net.kind"
    register_kind("test_ns.*")
    assert is_registered_kind("test_ns.anything") and not is_registered_kind("test_ns.")
    for bad in ("has space", "trailing.newline\n", "Upper", "a..b", "x" * 65):
        with pytest.raises(ParameterError):
            register_kind(bad)


def raw_envelope(header: dict[str, object], payload: bytes, version: int = 1) -> bytes:
    return msgpack.packb([b"SCMP", version, msgpack.packb(header), payload])


def good_header(payload: bytes = b"abc") -> dict[str, object]:
    return {
        "kind": "array",
        "scheme": "",
        "fingerprint": b"",
        "key_id": b"",
        "session": b"s",
        "round": 0,
        "sender": 0,
        "recipient": 1,
        "payload_len": len(payload),
        "sealed": False,
    }


def test_raw_envelope_builder_is_valid() -> None:
    assert decode_envelope(raw_envelope(good_header(), b"abc")).payload == b"abc"


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda h: h.pop("round"), "missing"),
        (lambda h: h.update(extra=1), "max_map_len"),
        (
            lambda h: h.update(rounds=h.pop("round")),
            r"missing \['round'\], unexpected \['rounds'\]",
        ),
        (lambda h: h.update(kind="evil.kind"), "unknown envelope kind"),
        (lambda h: h.update(round="3"), "round"),
        (lambda h: h.update(sealed=1), "sealed"),
        (lambda h: h.update(payload_len=4), "declares a 4-byte payload"),
        (lambda h: h.update(payload_len=1 << 40), "declares"),
        (lambda h: h.update(sender=[1]), "max_array_len|sender"),
        (lambda h: h.update(fingerprint=b"f" * 65), "max_bin_len|fingerprint"),
    ],
)
def test_decoder_rejects_bad_headers(mutate: object, match: str) -> None:
    h = good_header()
    mutate(h)  # type: ignore[operator]
    with pytest.raises(MalformedMessageError, match=match):
        decode_envelope(raw_envelope(h, b"abc"))


def test_wrong_version_names_supported_ones() -> None:
    with pytest.raises(MalformedMessageError, match=r"version 2.*\[1\]"):
        decode_envelope(raw_envelope(good_header(), b"abc", version=2))


def test_bad_outer_structure() -> None:
    h = msgpack.packb(good_header())
    for data in (
        msgpack.packb([b"SCMP", 1, h]),
        msgpack.packb([b"SCMP", 1, h, b"abc", b""]),
        msgpack.packb([b"SCMP", 1, h, "abc"]),
        msgpack.packb([b"SCMP", 1, good_header(), b"abc"]),
        msgpack.packb([b"SCMP", 1, h, msgpack.ExtType(1, b"abc")]),
        msgpack.packb({"magic": b"SCMP"}),
        b"",
        b"\x94\xc4\x04SCMP",
        encode_envelope(make_env()) + b"\x00",
    ):
        with pytest.raises(MalformedMessageError):
            decode_envelope(data)


def test_oversized_declared_lengths_rejected_before_allocation() -> None:
    prefix = b"\x94\xc4\x04SCMP\x01"
    header = msgpack.packb(msgpack.packb(good_header()))
    # A bin32 payload declaring 4 GiB - 1 but carrying three bytes.
    data = prefix + header + b"\xc6\xff\xff\xff\xff" + b"abc"
    with pytest.raises(MalformedMessageError):
        decode_envelope(data)
    with pytest.raises(MalformedMessageError, match="cap"):
        decode_envelope(encode_envelope(make_env(payload=b"x" * 100)), max_bytes=64)


def test_every_truncation_is_rejected() -> None:
    enc = encode_envelope(make_env())
    for cut in range(len(enc)):
        with pytest.raises(MalformedMessageError):
            decode_envelope(enc[:cut])


@pytest.mark.parametrize(
    "obj",
    [
        {"a": 1},
        [b"SCMP", 1, b"", b""],
        np.arange(3),
        np.array([1, None], dtype=object),
        make_env(),
    ],
    ids=["dict", "envelope-like-list", "ndarray", "object-array", "Envelope"],
)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_payloads_are_rejected(obj: object, protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    for dec in (decode_envelope, decode_array, decode_arrays, describe):
        with pytest.raises(MalformedMessageError):
            dec(data)  # type: ignore[operator]


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_envelope_decoder_fuzz(data: bytes) -> None:
    with contextlib.suppress(MalformedMessageError):
        decode_envelope(data)


@settings(max_examples=200)
@given(st.binary(max_size=120))
def test_envelope_decoder_fuzz_after_valid_prefix(tail: bytes) -> None:
    with contextlib.suppress(MalformedMessageError):
        decode_envelope(b"\x94\xc4\x04SCMP\x01" + tail)


@given(st.data())
def test_bit_flips_unsealed_never_crash(data: st.DataObject) -> None:
    enc = bytearray(encode_envelope(make_env()))
    bit = data.draw(st.integers(0, 8 * len(enc) - 1))
    enc[bit // 8] ^= 1 << (bit % 8)
    with contextlib.suppress(MalformedMessageError):
        decode_envelope(bytes(enc))


def test_every_bit_flip_of_a_sealed_envelope_is_detected() -> None:
    enc = seal_envelope(make_env(), KEY)
    for bit in range(8 * len(enc)):
        flipped = bytearray(enc)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(MalformedMessageError):  # IntegrityError is a subclass
            open_envelope(bytes(flipped), KEY)


def test_sealed_envelope_replays_fail() -> None:
    env = make_env()
    sealed = seal_envelope(env, KEY)
    expect = {"session": b"session-A", "round": 3, "recipient": 1}
    assert open_envelope(sealed, KEY, expect=expect).payload == env.payload
    # Authentic message delivered into another round / session / recipient.
    for field, other in (("round", 4), ("session", b"session-B"), ("recipient", 2)):
        with pytest.raises(ReplayError, match=field):
            open_envelope(sealed, KEY, expect={**expect, field: other})
    # Re-labelling the header to pass the check breaks authentication.
    dec = decode_envelope(sealed)
    for field, other in (("round", 4), ("session", b"session-B"), ("recipient", 2)):
        forged = Envelope(**{**_fields(dec), field: other})
        with pytest.raises(IntegrityError):
            open_envelope(encode_envelope(forged), KEY, expect={**expect, field: other})
    with pytest.raises(IntegrityError):
        open_envelope(sealed, bytes(32))  # wrong key
    with pytest.raises(IntegrityError, match="not sealed"):
        open_envelope(encode_envelope(env), KEY)
    with pytest.raises(ParameterError):
        open_envelope(sealed, KEY, expect={"payload": b""})
    with pytest.raises(ParameterError):
        seal_envelope(dec, KEY)  # already sealed


def _fields(e: Envelope) -> dict[str, object]:
    return {k: getattr(e, k) for k in Envelope.__dataclass_fields__}


def test_describe_reads_header_only() -> None:
    enc = seal_envelope(make_env(payload=b"secret"), KEY)
    info = describe(enc)
    assert info["kind"] == "mpc.share" and info["sealed"] is True
    assert info["session"] == b"session-A".hex() and info["round"] == 3
    assert info["payload_len"] == len(b"secret") + 28
    assert b"secret".hex() not in str(info)
