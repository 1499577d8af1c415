"""Faults in-process: silent or crashed parties, a silent dealer, reuse, peers' shapes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from securecomp.errors import PartyTimeoutError, PreprocessingReuseError, ShapeMismatchError
from securecomp.mpc import Session, run_local
from securecomp.mpc.beaver import beaver, triple_spec
from securecomp.mpc.dealer import LINK_DEALER_ID, LINK_PARTY_ID, DealerClient
from securecomp.mpc.material import Bilinear
from securecomp.mpc.truncation import trunc_spec
from securecomp.net import make_inprocess_channels


def shared_pair(sess: Session) -> tuple[object, object]:
    a = sess.share(np.arange(4.0) if sess.party_id == 0 else None, bound=8)
    b = sess.share(np.ones(4) if sess.party_id == 0 else None, bound=8)
    return a, b


@pytest.mark.parametrize("victim", [1, 2])
def test_silent_party_is_named_by_every_other_party(victim: int) -> None:
    def program(sess: Session) -> None:
        a, b = shared_pair(sess)
        a * b
        if sess.party_id == victim:
            time.sleep(1.5)  # silent past everyone's timeout, mid-protocol
        a * b

    res = run_local(program, 3, timeout=0.5, return_exceptions=True)
    for p in range(3):
        if p != victim:
            err = res.errors[p]
            assert isinstance(err, PartyTimeoutError), err
            assert err.party == victim and err.timeout == 0.5


def test_crashed_party_is_named_at_once() -> None:
    def program(sess: Session) -> None:
        a, b = shared_pair(sess)
        a * b
        if sess.party_id == 1:
            raise RuntimeError("party 1 crashed")
        a * b

    start = time.monotonic()
    res = run_local(program, 3, timeout=20, return_exceptions=True)
    assert time.monotonic() - start < 10  # the closed link is noticed, not waited out
    assert isinstance(res.errors[1], RuntimeError)
    for p in (0, 2):
        err = res.errors[p]
        assert isinstance(err, PartyTimeoutError) and err.party == 1
        assert "killed" in str(err)


def test_run_local_raises_the_first_error_with_the_others_as_notes() -> None:
    def program(sess: Session) -> None:
        if sess.party_id == 1:
            raise RuntimeError("boom")
        sess.share(None, owner=1)  # party 0 waits for party 1

    with pytest.raises(PartyTimeoutError) as info:
        run_local(program, 2, timeout=5)
    assert info.value.party == 1
    assert any("boom" in note for note in info.value.__notes__)


def test_reused_triple_is_refused_on_every_party() -> None:
    def program(sess: Session) -> None:
        x = np.zeros(3, dtype=np.uint64)
        triple = sess.material(triple_spec(Bilinear.MUL, (3,), (3,)))
        beaver(sess, Bilinear.MUL, x, x, material=triple)
        beaver(sess, Bilinear.MUL, x, x, material=triple)

    res = run_local(program, 3, return_exceptions=True)
    assert all(isinstance(e, PreprocessingReuseError) for e in res.errors)


def test_material_for_another_shape_is_refused() -> None:
    def program(sess: Session) -> None:
        x = np.zeros(3, dtype=np.uint64)
        beaver(sess, Bilinear.MUL, x, x, material=sess.material(trunc_spec((3,), 16)))

    res = run_local(program, 2, return_exceptions=True)
    assert all(isinstance(e, ShapeMismatchError) for e in res.errors)


def test_mismatched_shape_from_a_peer() -> None:
    def program(sess: Session) -> None:
        mine = np.zeros(3 if sess.party_id == 0 else 4, dtype=np.uint64)
        sess.open_sum(mine, tag="test.open")

    res = run_local(program, 2, return_exceptions=True)
    for p, e in enumerate(res.errors):
        assert isinstance(e, ShapeMismatchError)
        assert f"party {1 - p} sent" in str(e)


def test_silent_dealer_is_named() -> None:
    ends = make_inprocess_channels(2, timeout=0.3)
    ends[LINK_DEALER_ID].send(LINK_PARTY_ID, bytes(32), tag="dealer.seed")
    client = DealerClient(ends[LINK_PARTY_ID], 1, 2, b"sid")  # the last party: it must ask
    with pytest.raises(PartyTimeoutError) as info:
        client.get(trunc_spec((2,), 16))
    assert info.value.party == "dealer"
    ends[LINK_DEALER_ID].close()
    client.close()
