"""MAC mode under attack: every kind of tampering raises MACCheckError and releases nothing.

A cheating party is played by the test program itself: it swaps its channel or its
preprocessing for a wrapper that alters one message or one piece of material. Each test
asserts that every party (the cheater included) raises `MACCheckError` from `reveal`,
that no party got past `reveal` (the ``released`` list stays empty) and no result exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from securecomp.errors import MACCheckError, PartyTimeoutError
from securecomp.mpc.spdz2k import (
    ActiveSession,
    AuthKind,
    AuthMaterial,
    AuthPreprocessing,
    AuthSpec,
    Field,
    Spdz2kParameters,
    run_local_active,
)
from securecomp.mpc.spdz2k.authshare import auth_share
from securecomp.params import InsecureParametersWarning, insecure_test_parameters

X = np.array([1.5, -2.0, 0.25, 3.0])
Y = np.array([0.5, 1.25, -4.0, 2.0])
CHEATER = 1


class TamperedChannel:
    """Delegates to a channel, but adds ``delta`` to the ``index``-th word of the first
    ``times`` messages tagged ``tag`` (to ``only_to``, or to any peer)."""

    def __init__(
        self, inner: Any, tag: str, *, delta: int = 1, index: int = 0, times: int = 1,
        only_to: int | None = None,
    ) -> None:
        self._inner, self._tag, self._delta, self._index = inner, tag, delta, index
        self._left, self._only_to = times, only_to

    def send(self, to: int, obj: Any, *, tag: str) -> None:
        if tag == self._tag and self._left and self._only_to in (None, to):
            self._left -= 1
            if isinstance(obj, bytes):
                raw = bytearray(obj)
                raw[-1] ^= 1
                obj = bytes(raw)
            else:
                obj = np.array(obj)
                obj.reshape(-1)[self._index] += np.uint64(self._delta)
        self._inner.send(to, obj, tag=tag)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TamperedPreprocessing(AuthPreprocessing):
    """Delegates to the dealer client, but alters one word of the first matching material."""

    def __init__(self, inner: AuthPreprocessing, kind: AuthKind, field: Field, item: int,
                 part: int) -> None:
        self._inner, self._kind, self._field = inner, kind, field
        self._item, self._part, self._left = item, part, 1

    @property
    def params(self) -> Spdz2kParameters:
        return self._inner.params

    def key_share(self, field: Field) -> int:
        return self._inner.key_share(field)

    def get(self, spec: AuthSpec) -> AuthMaterial:
        m = self._inner.get(spec)
        if spec.kind is self._kind and spec.field is self._field and self._left:
            self._left = 0
            items, owner = m.consume()
            items[self._item][self._part].reshape(-1)[0] += np.uint64(1)
            m = AuthMaterial(spec, m.counter, items, owner)
        return m

    def prefetch(self, specs: Sequence[AuthSpec]) -> None:
        self._inner.prefetch(specs)

    @property
    def offline_seconds(self) -> float:
        return self._inner.offline_seconds


Attack = Callable[[ActiveSession], None]
Computation = Callable[[ActiveSession, Any, Any], Any]


def assert_aborts(attack: Attack, compute: Computation, parties: int = 2, **kw: Any) -> None:
    released: list[int] = []

    def program(sess: ActiveSession) -> Any:
        a = sess.share(X if sess.party_id == 0 else None, bound=8)
        b = sess.share(Y if sess.party_id == parties - 1 else None, owner=parties - 1, bound=8)
        if sess.party_id == CHEATER:
            attack(sess)
        out = sess.reveal(compute(sess, a, b))
        released.append(sess.party_id)  # never reached: reveal checks first
        return out

    res = run_local_active(program, parties, return_exceptions=True, **kw)
    assert released == []
    assert res.results == [None] * parties
    for err in res.errors:
        assert isinstance(err, MACCheckError), repr(err)


def tamper_tensor(sess: ActiveSession, t: Any, part: int) -> Any:
    data = np.array(t.payload.data)
    data[part, 0, 0] += np.uint64(1)  # low limb of the first element
    return sess.backend.wrap(auth_share(data, t.payload.offset), t.meta["bound"])


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("part", [0, 1], ids=["share", "mac"])
def test_tampered_share_or_mac(parties: int, part: int) -> None:
    def compute(sess: ActiveSession, a: Any, b: Any) -> Any:
        return tamper_tensor(sess, a, part) if sess.party_id == CHEATER else a

    assert_aborts(lambda sess: None, compute, parties)


@pytest.mark.parametrize(
    ("tag", "compute"),
    [
        ("spdz2k.beaver.arith", lambda s, a, b: a * b),
        ("spdz2k.trunc", lambda s, a, b: a * 0.5),
        ("spdz2k.a2b", lambda s, a, b: a < b),
        ("spdz2k.beaver.binary", lambda s, a, b: a < b),
        ("spdz2k.b2a", lambda s, a, b: a < b),
        ("spdz2k.output", lambda s, a, b: a + b),
    ],
    ids=["beaver", "truncation", "a2b", "and", "b2a", "output"],
)
@pytest.mark.parametrize("parties", [2, 3])
def test_tampered_opening(tag: str, compute: Computation, parties: int) -> None:
    def attack(sess: ActiveSession) -> None:
        sess.channel = TamperedChannel(sess.channel, tag)  # type: ignore[assignment]

    assert_aborts(attack, compute, parties)


def test_opening_sent_differently_to_different_peers() -> None:
    def attack(sess: ActiveSession) -> None:
        sess.channel = TamperedChannel(sess.channel, "spdz2k.beaver.arith", only_to=2)  # type: ignore[assignment]

    assert_aborts(attack, lambda s, a, b: a * b, 3)


@pytest.mark.parametrize(
    ("kind", "field", "item", "part", "compute"),
    [
        (AuthKind.MULTRUNC, Field.ARITH, 2, 0, lambda s, a, b: a * b),
        (AuthKind.MULTRUNC, Field.ARITH, 2, 1, lambda s, a, b: a * b),
        (AuthKind.MULTRUNC, Field.ARITH, 0, 0, lambda s, a, b: a * b),
        (AuthKind.TRIPLE, Field.ARITH, 2, 0, lambda s, a, b: a @ b),
        (AuthKind.TRIPLE, Field.ARITH, 0, 0, lambda s, a, b: a @ b),
        (AuthKind.TRIPLE, Field.BINARY, 2, 0, lambda s, a, b: a < b),
        (AuthKind.TRUNC, Field.ARITH, 0, 0, lambda s, a, b: a * 0.5),
        (AuthKind.EDABIT, Field.ARITH, 1, 0, lambda s, a, b: a < b),
        (AuthKind.DABIT, Field.ARITH, 1, 0, lambda s, a, b: a < b),
    ],
    ids=["triple-c", "triple-mac", "triple-a", "matrix-triple-c", "matrix-triple-a",
         "binary-triple", "trunc-mask", "edabit-bit", "dabit"],
)
def test_tampered_material(
    kind: AuthKind, field: Field, item: int, part: int, compute: Computation
) -> None:
    def attack(sess: ActiveSession) -> None:
        sess.preprocessing = TamperedPreprocessing(sess.preprocessing, kind, field, item, part)

    assert_aborts(attack, compute, 2)


def test_inconsistent_input_broadcast_is_caught() -> None:
    released: list[int] = []

    def program(sess: ActiveSession) -> Any:
        if sess.party_id == 0:  # the owner sends party 2 another masked input
            sess.channel = TamperedChannel(sess.channel, "spdz2k.input", index=3, only_to=2)  # type: ignore[assignment]
        a = sess.share(X if sess.party_id == 0 else None, bound=8)
        out = sess.reveal(a)
        released.append(sess.party_id)
        return out

    res = run_local_active(program, 3, return_exceptions=True)
    assert released == [] and res.results == [None] * 3
    assert all(isinstance(e, MACCheckError) for e in res.errors)


def test_commitment_opened_to_another_value_names_the_cheater() -> None:
    def attack(sess: ActiveSession) -> None:
        sess.channel = TamperedChannel(sess.channel, "spdz2k.check.coin.open", times=2)  # type: ignore[assignment]

    res: list[Any] = []

    def program(sess: ActiveSession) -> Any:
        a = sess.share(X if sess.party_id == 0 else None, bound=8)
        if sess.party_id == CHEATER:
            attack(sess)
        try:
            return sess.reveal(a)
        except MACCheckError as exc:
            res.append((sess.party_id, exc.culprits))
            raise

    out = run_local_active(program, 3, return_exceptions=True)
    assert out.results == [None] * 3
    assert {p: c for p, c in res if p != CHEATER} == {0: (CHEATER,), 2: (CHEATER,)}


def test_an_aborted_session_stays_aborted() -> None:
    def program(sess: ActiveSession) -> Any:
        a = sess.share(X if sess.party_id == 0 else None, bound=8)
        bad = tamper_tensor(sess, a, 0) if sess.party_id == CHEATER else a
        with pytest.raises(MACCheckError):
            sess.reveal(bad)
        assert sess.aborted
        with pytest.raises(MACCheckError):
            sess.reveal(a)  # an honest value: still nothing after an abort
        with pytest.raises(MACCheckError):
            a * a
        return "done"

    assert run_local_active(program, 2).results == ["done", "done"]


def test_insecure_32_bit_mode_also_catches_tampering() -> None:
    with pytest.warns(InsecureParametersWarning), insecure_test_parameters():
        weak = Spdz2kParameters(32, 32)

    def attack(sess: ActiveSession) -> None:
        sess.channel = TamperedChannel(sess.channel, "spdz2k.beaver.arith")  # type: ignore[assignment]

    assert_aborts(attack, lambda s, a, b: a * b, 2, params=weak, frac_bits=8)


@pytest.mark.parametrize("leave_in", ["opening", "check"])
def test_a_party_leaving_mid_protocol_aborts_the_session(leave_in: str) -> None:
    """Openings that were never checked must stay unusable, even if the caller goes on."""

    def leave(*args: Any, **kwargs: Any) -> None:
        raise SystemExit

    def program(sess: ActiveSession) -> Any:
        a = sess.share(X if sess.party_id == 0 else None, bound=8)
        b = a * a  # openings pending a check
        if sess.party_id == 1:
            if leave_in == "opening":
                return "left"  # closes its channel before the output opening
            sess.check = leave  # type: ignore[method-assign]  # leaves inside the check
            sess.reveal(b)
        with pytest.raises(PartyTimeoutError):
            sess.reveal(b)
        assert sess.aborted
        with pytest.raises(MACCheckError):
            sess.reveal(a)
        return "aborted"

    res = run_local_active(program, 2, return_exceptions=True, timeout=5)
    assert res.results[0] == "aborted"
