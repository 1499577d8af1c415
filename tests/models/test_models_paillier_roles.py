"""Paillier training roles: what each holds and sees, channels and threads, bad messages.

The roles are driven directly (with a transcript of every message) so that the tests can
check, from the bytes, that the aggregator only ever holds the public key and ciphertexts
and that the key holder only ever receives complete aggregates.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securecomp.errors import (
    IntegrityError,
    KeyMismatchError,
    MalformedMessageError,
    ProtocolAbort,
    ReplayError,
    SecurecompError,
    ShapeMismatchError,
)
from securecomp.he.paillier import (
    PaillierBackend,
    PaillierPublicKey,
    PaillierSecretKey,
    paillier_keygen,
)
from securecomp.he.paillier.serialize import CIPHERTEXT_KIND
from securecomp.models import TrainingSpec
from securecomp.models.paillier import (
    AGGREGATOR,
    KEY_HOLDER,
    Aggregator,
    Holder,
    InferenceClient,
    InferenceServer,
    KeyHolder,
    PaillierOptions,
    PaillierProtocol,
    connect_roles,
    decrypt_sum,
    encrypt_update,
    run_aggregator,
    run_holder,
    run_key_holder,
    simulate_training,
)
from securecomp.models.paillier.driver import AGGREGATOR_ID, KEY_HOLDER_ID, holder_id
from securecomp.models.paillier.messages import MODEL_KIND, QUERY_KIND, control, read_control
from securecomp.net.inproc import make_inprocess_channels
from securecomp.net.wire import describe
from securecomp.params import (
    SMALL_TEST_PAILLIER_BITS,
    InsecureParametersWarning,
    insecure_test_parameters,
)

N_HOLDERS = 3
STEPS = 3


@pytest.fixture(autouse=True)
def _small_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            yield


def _keys() -> tuple[PaillierBackend, PaillierSecretKey]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            return paillier_keygen(SMALL_TEST_PAILLIER_BITS)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(36, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.01 * rng.normal(size=36)
    return X, y


SPEC = TrainingSpec(task="linear", learning_rate=0.5, max_iter=STEPS, random_state=1)
OPTIONS = PaillierOptions(n_holders=N_HOLDERS, key_bits=SMALL_TEST_PAILLIER_BITS)


def _roles(
    keys: tuple[PaillierBackend, PaillierSecretKey],
) -> tuple[KeyHolder, Aggregator, list[Holder]]:
    X, y = _data()
    parts = np.array_split(np.arange(len(y)), N_HOLDERS)
    holders = [
        Holder(i, X[p], y[p], rng=np.random.default_rng(100 + i)) for i, p in enumerate(parts)
    ]
    return KeyHolder(SPEC, OPTIONS, 3, keys=keys), Aggregator(), holders


@pytest.fixture(scope="module")
def session() -> dict[str, Any]:
    keys = _keys()
    kh, agg, holders = _roles(keys)
    transcript: list[tuple[int, int, str, bytes]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            simulate_training(kh, agg, holders, transcript=transcript)
    return {"keys": keys, "kh": kh, "agg": agg, "holders": holders, "transcript": transcript}


def _reachable(root: object) -> Iterator[object]:
    """Every object reachable from ``root`` through attributes, slots and containers."""
    seen: set[int] = set()
    stack = [root]
    atoms = (str, bytes, int, float, bool, type(None), type, type(np))
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, atoms) or (callable(obj) and not hasattr(obj, "__dict__")):
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        else:
            stack.extend(getattr(obj, "__dict__", {}).values())
            for cls in type(obj).__mro__:
                for slot in getattr(cls, "__slots__", ()):
                    if hasattr(obj, slot):
                        stack.append(getattr(obj, slot))


def _has(root: object, kind: type) -> bool:
    return any(isinstance(o, kind) for o in _reachable(root))


def _messages(transcript: Iterable[tuple[int, int, str, bytes]], *, to: int) -> list[Any]:
    return [m for m in transcript if m[1] == to]


def _opened(agg: Aggregator, holder: str, data: bytes, rnd: int) -> bytes:
    return agg.link(holder).open_bytes(data, round=rnd, kind=CIPHERTEXT_KIND)


# --- what each role holds ---------------------------------------------------------------------


def test_aggregator_holds_only_the_public_key(session: dict[str, Any]) -> None:
    kh, agg = session["kh"], session["agg"]
    assert _has(kh, PaillierSecretKey)  # the walk does find a secret key where there is one
    assert not _has(agg, PaillierSecretKey)
    assert agg.backend is not None and agg.backend.key == kh.backend.key
    assert isinstance(agg.backend.key, PaillierPublicKey)
    for h in session["holders"]:
        assert not _has(h, PaillierSecretKey)
    # No plaintext vector of any holder is kept by the aggregator.
    assert not any(
        isinstance(o, np.ndarray) and o.dtype.kind in "fiu" and o.size for o in _reachable(agg)
    )


def test_aggregator_sees_only_ciphertexts_never_a_plaintext(session: dict[str, Any]) -> None:
    agg, (_, secret) = session["agg"], session["keys"]
    received = _messages(session["transcript"], to=AGGREGATOR_ID)
    from_kh = [m for m in received if m[0] == KEY_HOLDER_ID]
    assert [m[2] for m in from_kh] == ["setup", "schedule"]  # never a model
    from_holders = [m for m in received if m[0] != KEY_HOLDER_ID]
    assert len(from_holders) == N_HOLDERS * (STEPS + 1)
    for frm, _, tag, data in from_holders:
        head = describe(data)
        assert head["sealed"] and head["kind"] == CIPHERTEXT_KIND
        rnd = head["round"]
        name = f"holder_{frm - 2}"
        opened = _opened(agg, name, data, rnd)
        # What the aggregator can open is a Paillier ciphertext: its single-holder plaintext
        # (decryptable only with the secret key, here by the test) is not in the bytes.
        tensor = agg.backend.from_bytes(opened)
        plain = tensor.decrypt(secret)
        packed = [int(secret.raw_decrypt(c)) for c in tensor.payload.ravel()]
        for value in packed:
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            assert raw not in opened and raw not in data
        assert plain[-1] >= 1 if tag == "update" else plain[0] >= 1  # batch size or count


def test_key_holder_receives_only_complete_aggregates(session: dict[str, Any]) -> None:
    agg, (_, secret) = session["agg"], session["keys"]
    transcript = session["transcript"]
    to_kh = _messages(transcript, to=KEY_HOLDER_ID)
    assert {m[0] for m in to_kh} == {AGGREGATOR_ID}  # holders never talk to the key holder
    assert len(to_kh) == STEPS + 1
    by_round: dict[int, list[np.ndarray]] = {}
    for frm, to, _, data in transcript:
        if to == AGGREGATOR_ID and frm != KEY_HOLDER_ID:
            rnd = describe(data)["round"]
            tensor = agg.backend.from_bytes(_opened(agg, f"holder_{frm - 2}", data, rnd))
            by_round.setdefault(rnd, []).append(tensor.decrypt(secret))
    kh = session["kh"]
    for _, _, _, data in to_kh:
        rnd = describe(data)["round"]
        raw = kh.link(AGGREGATOR).open_bytes(data, round=rnd, kind=CIPHERTEXT_KIND)
        total = kh.backend.from_bytes(raw)
        assert total.meta["weight"] == N_HOLDERS
        np.testing.assert_array_equal(total.decrypt(secret), np.sum(by_round[rnd], axis=0))


def test_holders_end_with_the_key_holders_model(session: dict[str, Any]) -> None:
    # The model itself is checked against the plain backend in test_models_paillier_plain.
    kh, holders = session["kh"], session["holders"]
    assert kh.done and np.any(kh.params != 0.0)
    for h in holders:
        np.testing.assert_array_equal(h.final_params, kh.params)
    assert kh.params[0] == kh.intercept  # gd layout: the intercept first
    np.testing.assert_array_equal(kh.params[1:], kh.coef)


def test_roles_run_over_channels_in_threads() -> None:
    keys = _keys()
    kh, agg, holders = _roles(keys)
    connect_roles(kh, agg, *holders)
    channels = make_inprocess_channels(2 + N_HOLDERS, timeout=60.0)
    errors: list[BaseException] = []

    def guarded(fn: Any, *args: Any) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureParametersWarning)
                with insecure_test_parameters():
                    fn(*args)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    jobs = [(run_key_holder, channels[KEY_HOLDER_ID], kh), (run_aggregator, channels[1], agg)]
    jobs += [(run_holder, channels[holder_id(h.index)], h) for h in holders]
    threads = [threading.Thread(target=guarded, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert kh.done and agg.done
    # Same holders' coins as the single-thread run: the same model.
    ref_kh, ref_agg, ref_holders = _roles(keys)
    simulate_training(ref_kh, ref_agg, ref_holders)
    np.testing.assert_array_equal(kh.params, ref_kh.params)
    sent = sum(ch.stats.bytes_sent for ch in channels)
    assert sent == sum(ch.stats.bytes_received for ch in channels) > 0


# --- bad messages -----------------------------------------------------------------------------


def _started() -> tuple[KeyHolder, Aggregator, list[Holder], dict[str, bytes]]:
    """Roles after the count round; returns the step-1 updates of the holders."""
    kh, agg, holders = _roles(_keys())
    connect_roles(kh, agg, *holders)
    setup = kh.setup_messages()
    agg.receive_setup(setup[AGGREGATOR])
    counts = {h.name: h.receive_setup(setup[h.name]) for h in holders}
    out = kh.receive_count(agg.aggregate(counts))
    agg.receive_schedule(out.pop(AGGREGATOR))
    updates = {h.name: h.receive_model(out[h.name]) for h in holders}
    return kh, agg, holders, {k: v for k, v in updates.items() if v is not None}


def test_replayed_and_tampered_updates_are_refused() -> None:
    kh, agg, holders, updates = _started()
    step1 = dict(updates)
    models = kh.receive_aggregate(agg.aggregate(step1))
    step2: dict[str, bytes] = {}
    for h in holders:
        out = h.receive_model(models[h.name])
        assert out is not None
        step2[h.name] = out
    with pytest.raises(ReplayError):
        agg.aggregate({**step2, "holder_0": step1["holder_0"]})
    flipped = bytearray(step2["holder_1"])
    flipped[-5] ^= 1
    with pytest.raises(IntegrityError):
        agg.aggregate({**step2, "holder_1": bytes(flipped)})
    with pytest.raises(ProtocolAbort):
        agg.aggregate({k: v for k, v in step2.items() if k != "holder_2"})


def test_update_under_another_key_raises_key_mismatch() -> None:
    _, agg, holders, updates = _started()
    other, _ = _keys()
    forged = other.encrypt(np.zeros(5, dtype=np.int64), max_additions=N_HOLDERS, value_bits=32)
    resealed = holders[0].link(AGGREGATOR).seal(forged.to_bytes(), round=1)
    with pytest.raises(KeyMismatchError):
        agg.aggregate({**updates, "holder_0": resealed})


def test_key_holder_refuses_a_single_holders_update() -> None:
    kh, agg, _, updates = _started()
    # A (malicious) aggregator forwarding one holder's ciphertext instead of the sum.
    single = agg.link("holder_0").open_bytes(updates["holder_0"], round=1, kind=CIPHERTEXT_KIND)
    forwarded = agg.link(KEY_HOLDER).seal(single, round=1)
    with pytest.raises(ProtocolAbort, match="weight 3"):
        kh.receive_aggregate(forwarded)


def test_wrong_secret_key_raises_key_mismatch(session: dict[str, Any]) -> None:
    backend, _ = session["keys"]
    _, wrong = _keys()
    total = encrypt_update(backend, np.arange(4), n_holders=1, value_bits=32)
    with pytest.raises(KeyMismatchError):
        decrypt_sum(total, wrong, n_holders=1)


def test_model_message_of_wrong_length_is_malformed() -> None:
    kh, _, holders, _ = _started()
    body = {
        "step": 2,
        "final": False,
        "n_rows": 36,
        "batches_per_epoch": 1,
        "params": np.zeros(7).tobytes(),  # not an encoded array
    }
    msg = kh.link("holder_0").seal(control(MODEL_KIND, body), round=2)
    with pytest.raises(MalformedMessageError):
        holders[0].receive_model(msg)


@pytest.fixture(scope="module")
def fuzz_roles() -> tuple[KeyHolder, Aggregator, list[Holder], dict[str, bytes]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            return _started()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=600))
def test_random_bytes_raise_securecomp_errors(
    fuzz_roles: tuple[KeyHolder, Aggregator, list[Holder], dict[str, bytes]], data: bytes
) -> None:
    kh, agg, holders, updates = fuzz_roles
    with pytest.raises(SecurecompError):
        agg.aggregate({**updates, "holder_0": data})
    with pytest.raises(SecurecompError):
        holders[1].receive_model(data)
    with pytest.raises(SecurecompError):
        kh.receive_aggregate(data)


# --- inference roles --------------------------------------------------------------------------


def test_inference_server_holds_no_secret_and_checks_keys() -> None:
    server = InferenceServer(np.array([0.5, -1.0]), 0.25)
    client = InferenceClient(key_bits=SMALL_TEST_PAILLIER_BITS)
    connect_roles(server, client)
    rows = np.array([[1.0, 2.0], [-0.5, 0.5], [3.0, 0.0]])
    scores = client.read_scores(server.answer(client.query(server.offer(), rows)))
    np.testing.assert_allclose(scores, rows @ [0.5, -1.0] + 0.25, atol=1e-4)
    assert not _has(server, PaillierSecretKey)
    # Features under another key than the public key sent with them.
    other, _ = _keys()
    offer = server.offer()
    query = client.query(offer, rows)
    env = server.link("client").open(query, round=4, kind=QUERY_KIND)
    body = read_control(env, QUERY_KIND, {"public_key": bytes, "features": bytes})
    forged = other.encrypt(np.ones((3, 3)).T, max_additions=2, value_bits=32)
    bad = control(QUERY_KIND, {"public_key": body["public_key"], "features": forged.to_bytes()})
    with pytest.raises(KeyMismatchError):
        server.answer(client.link("server").seal(bad, round=4))
    with pytest.raises(ShapeMismatchError):
        client.query(server.offer(), np.zeros((2, 3)))


def test_protocol_fit_checks_holder_count_against_rows() -> None:
    spec = TrainingSpec(task="linear", options={"key_bits": SMALL_TEST_PAILLIER_BITS})
    with pytest.raises(SecurecompError):
        PaillierProtocol(spec).fit(np.zeros((2, 2)), np.zeros(2))
