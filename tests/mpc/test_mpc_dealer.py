"""The trusted dealer: correctness of every kind of material, seed compression, single use."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto import Domain, derive_key
from securecomp.errors import MalformedMessageError, ParameterError, PreprocessingReuseError
from securecomp.mpc import Session, run_local
from securecomp.mpc.dealer import LINK_DEALER_ID, LINK_PARTY_ID, Dealer, DealerClient, material_prg
from securecomp.mpc.material import (
    Bilinear,
    Combine,
    Kind,
    Material,
    Spec,
    decode_requests,
    encode_requests,
)
from securecomp.net import make_inprocess_channels
from securecomp.net.channel import FRAME_HEAD

SPECS = [
    Spec(Kind.TRIPLE, ((3, 4), (4,)), int(Bilinear.MUL)),
    Spec(Kind.TRIPLE, ((3, 4), (4, 2)), int(Bilinear.MATMUL)),
    Spec(Kind.AND_TRIPLE, ((5,), (2, 5)), 64),
    Spec(Kind.AND_TRIPLE, ((7,), (7,)), 8),
    Spec(Kind.TRUNC, ((6,),), 16),
    Spec(Kind.EDABIT, ((6,),)),
    Spec(Kind.DABIT, ((9,),)),
]


def open_material(sess: Session, spec: Spec) -> list[np.ndarray]:
    """Every party consumes one piece of material and opens all its parts (test only)."""
    parts = sess.material(spec).consume()
    layout = spec.random_parts() + spec.correlated_parts()
    out = []
    for arr, part in zip(parts, layout, strict=True):
        assert arr.shape == part.shape and arr.dtype == part.dtype
        if part.combine is Combine.ADD:
            out.append(sess.open_sum(arr, tag="test.open"))
        else:
            out.append(sess.open_xor(arr, tag="test.open"))
    return out


def check_relation(spec: Spec, values: list[np.ndarray]) -> None:
    if spec.kind is Kind.TRIPLE:
        a, b, c = values
        want = a * b if spec.bilinear is Bilinear.MUL else (a @ b)  # uint64 wraps mod 2^64
        np.testing.assert_array_equal(c, want)
    elif spec.kind is Kind.AND_TRIPLE:
        a, b, c = values
        np.testing.assert_array_equal(c, a & b)
    elif spec.kind is Kind.TRUNC:
        r, neg_rt, msb_part = values
        np.testing.assert_array_equal(neg_rt, -(r >> np.uint64(16)))
        np.testing.assert_array_equal(msb_part, (r >> np.uint64(63)) << np.uint64(48))
    elif spec.kind is Kind.EDABIT:
        r, rb = values
        np.testing.assert_array_equal(rb, r)
    else:
        bx, ba = values
        assert set(np.unique(bx)) <= {0, 1}
        np.testing.assert_array_equal(ba, bx.astype(np.uint64))


@pytest.mark.parametrize("parties", [2, 3])
def test_every_kind_of_material_satisfies_its_relation(parties: int) -> None:
    res = run_local(lambda sess: [open_material(sess, s) for s in SPECS], parties, timeout=10)
    for spec, values in zip(SPECS, res.results[0], strict=True):
        check_relation(spec, values)
    # Everyone opened the same values.
    for other in res.results[1:]:
        for x, y in zip(res.results[0], other, strict=True):
            for u, v in zip(x, y, strict=True):
                np.testing.assert_array_equal(u, v)


def test_triples_are_fresh_and_random_looking() -> None:
    spec = Spec(Kind.TRIPLE, ((1000,), (1000,)), int(Bilinear.MUL))
    res = run_local(lambda sess: [open_material(sess, spec) for _ in range(2)], 2)
    (a1, b1, _), (a2, b2, _) = res.results[0]
    assert not np.array_equal(a1, a2) and not np.array_equal(b1, b2)
    # Uniform 64-bit words: the top bit is set about half the time.
    assert 400 < int(np.count_nonzero(a1 >> np.uint64(63))) < 600


def frame(tag: str, payload: int) -> int:
    return FRAME_HEAD.size + len(tag.encode()) + payload


@pytest.mark.parametrize("parties", [2, 3])
def test_seed_compression_only_the_last_party_receives_material(parties: int) -> None:
    spec = Spec(Kind.TRIPLE, ((100,), (100,)), int(Bilinear.MUL))
    res = run_local(lambda sess: sess.material(spec).consume() and None, parties)
    seed_only = frame("dealer.seed", 32)
    for o in res.outcomes[:-1]:
        assert o.dealer_link_stats is not None
        assert o.dealer_link_stats.bytes_received == seed_only
        assert o.dealer_link_stats.bytes_sent == 0
    last = res.outcomes[-1].dealer_link_stats
    assert last is not None
    # The seed plus one correction c (100 words with the array head), nothing else.
    assert last.bytes_received == seed_only + frame("dealer.material", 8 + 8 + 100 * 8)
    # All dealer traffic is offline; the computing channels carried none of it.
    assert set(last.per_phase) == {"offline"}
    for st_ in res.party_stats:
        assert st_.bytes_sent == 0


def test_material_is_single_use() -> None:
    spec = Spec(Kind.EDABIT, ((2,),))
    m = Material(spec, 7, [np.zeros(2, np.uint64), np.zeros(2, np.uint64)])
    m.consume()
    assert m.used
    with pytest.raises(PreprocessingReuseError, match="#7 was already used"):
        m.consume()


def test_dealer_refuses_to_serve_a_counter_twice() -> None:
    links = [make_inprocess_channels(2, timeout=2) for _ in range(2)]
    dealer = Dealer([e[LINK_DEALER_ID] for e in links], b"sid")
    dealer.send_seeds()
    spec = Spec(Kind.TRUNC, ((3,),), 16)
    dealer.answer(0, [spec])
    with pytest.raises(PreprocessingReuseError):
        dealer.answer(0, [spec])
    for e in links:
        e[LINK_PARTY_ID].close()


def test_seeds_and_streams_are_domain_separated() -> None:
    seed = derive_key(b"k" * 32, Domain("t", "seed"))
    spec = Spec(Kind.EDABIT, ((4,),))
    other = Spec(Kind.DABIT, ((4,),))
    draws = {
        (party, counter, s.kind): material_prg(seed, b"sid", party, s, counter).bytes(32)
        for party in (0, 1)
        for counter in (0, 1)
        for s in (spec, other)
    }
    assert len(set(draws.values())) == len(draws)
    assert material_prg(seed, b"sid2", 0, spec, 0).bytes(32) != draws[(0, 0, Kind.EDABIT)]


def test_dealer_client_rejects_bad_seed() -> None:
    ends = make_inprocess_channels(2, timeout=1)
    ends[LINK_DEALER_ID].send(LINK_PARTY_ID, b"short", tag="dealer.seed")
    with pytest.raises(MalformedMessageError):
        DealerClient(ends[LINK_PARTY_ID], 0, 2, b"sid")


@settings(max_examples=40, deadline=None)
@given(
    first=st.integers(0, 2**40),
    shapes=st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=3), min_size=1, max_size=4),
)
def test_request_encoding_round_trips(first: int, shapes: list[list[int]]) -> None:
    specs = [Spec(Kind.EDABIT, (tuple(s),)) for s in shapes]
    specs.append(Spec(Kind.TRUNC, ((2, 3),), 13))
    got_first, got = decode_requests(encode_requests(first, specs))
    assert got_first == first and got == specs


@settings(max_examples=100, deadline=None)
@given(words=st.lists(st.integers(0, 2**64 - 1), max_size=12))
def test_malformed_requests_are_rejected_cleanly(words: list[int]) -> None:
    arr = np.array(words, dtype=np.uint64)
    with contextlib.suppress(MalformedMessageError):  # valid requests may decode
        decode_requests(arr)


def test_spec_validation() -> None:
    with pytest.raises(ParameterError):
        Spec(Kind.TRUNC, ((3,),), 0)
    with pytest.raises(ParameterError):
        Spec(Kind.AND_TRIPLE, ((3,), (3,)), 12)
    with pytest.raises(ParameterError):
        Spec(Kind.TRIPLE, ((3,),), 1)
    with pytest.raises(ParameterError, match="split"):
        Spec(Kind.EDABIT, ((1 << 31,),))
    from securecomp.errors import ShapeMismatchError

    with pytest.raises(ShapeMismatchError):
        Spec(Kind.TRIPLE, ((3, 4), (5, 2)), int(Bilinear.MATMUL))
