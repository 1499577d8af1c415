"""Roles of CKKS training and inference: who holds which key, bytes only, bad inputs.

A small least-squares problem keeps the chain short (depth 2) so that every test runs in a
second or two at the secure default ring N = 8192.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    MalformedMessageError,
    NotFittedError,
    ParameterError,
    ProtocolAbort,
    SecretKeyExportError,
    ShapeMismatchError,
)
from securecomp.models.ckks import (
    CKKSProtocol,
    CKKSSession,
    InferenceClient,
    KeyHolder,
    Server,
    run_key_holder,
    serve_training,
)
from securecomp.models.ckks import messages as msg
from securecomp.models.protocol import FitResult, TrainingSpec
from securecomp.net import make_inprocess_channels
from securecomp.net.report import CostReport

RNG = np.random.default_rng(11)
X = RNG.normal(size=(64, 3))
Y = X @ np.array([1.5, -0.5, 0.25]) + 2.0 + 0.1 * RNG.normal(size=64)
SPEC = TrainingSpec("linear", learning_rate=0.3, max_iter=3)


@pytest.fixture(scope="module")
def session() -> Iterator[CKKSSession]:
    params = CKKSProtocol(SPEC).prepare(X, Y).plan.params
    yield CKKSSession.establish(params)


@pytest.fixture(scope="module")
def fitted(session: CKKSSession) -> tuple[CKKSProtocol, FitResult]:
    proto = CKKSProtocol(TrainingSpec(**{**SPEC.__dict__, "options": {"session": session}}))
    return proto, proto.fit(X, Y)


def test_the_server_holds_only_the_public_context(session: CKKSSession) -> None:
    server = session.server
    assert not server.context.is_private
    assert server.context.has_galois_keys  # its slot sums need them
    with pytest.raises(SecretKeyExportError):
        server.context.secret_key()
    assert session.key_holder.context.is_private
    # A tensor the server holds cannot be decrypted with what it has.
    t = server.backend.encrypt(np.ones(3))
    with pytest.raises(KeyMismatchError):
        t.decrypt(server.context)


def test_a_secret_context_is_refused_by_the_server(session: CKKSSession) -> None:
    bundle = session.key_holder.context.to_bytes(include_secret_key=True)
    with pytest.raises(SecretKeyExportError):
        Server(bundle)


def test_training_matches_float64_and_reports_roles(fitted: tuple[CKKSProtocol, FitResult]) -> None:
    proto, fit = fitted
    coef, intercept = proto.float64_reference(X, Y)
    np.testing.assert_allclose(fit.coef, coef, atol=1e-6)
    assert fit.intercept == pytest.approx(intercept, abs=1e-6)
    r: CostReport = fit.report
    assert "simulation of roles" in r.metrics["execution"]
    assert r.metrics["refreshes"] == 3
    parties = r.leakage.by_party()
    assert len(parties["key holder"]) == 3 + 1  # one entry per refresh, one for the model
    assert "ciphertexts only" in parties["server"][0].what
    assert r.comm is not None and r.comm.bytes_sent == r.comm.bytes_received > 0
    assert set(r.comm.per_party) == {"key holder", "server"}
    assert r.phases["key holder: refreshes"] > 0


def test_data_under_another_key_is_refused(fitted: tuple[CKKSProtocol, FitResult]) -> None:
    proto, _ = fitted
    prep = proto.prepare(X, Y)
    other = KeyHolder.generate(prep.plan.params)
    data = other.begin_fit(prep.batches, prep.cfg, prep.checks, prep.steps)
    server = proto.options.session.server
    with pytest.raises(KeyMismatchError):
        server.load_training(data)


def test_inference_under_the_wrong_key_is_refused(fitted: tuple[CKKSProtocol, FitResult]) -> None:
    proto, fit = fitted
    scores = proto.decision_function(fit, X).scores  # registers a client, sends the model
    np.testing.assert_allclose(scores, X @ fit.coef + fit.intercept, atol=1e-6)
    server = proto.options.session.server
    (registered,) = fit.state.clients.values()
    intruder = InferenceClient()
    server.register_client(intruder.public_context())
    with pytest.raises(KeyMismatchError, match="no model encrypted under this client"):
        server.evaluate(intruder.encrypt_query(X))
    # Features under the intruder's key, filed under the registered client's key id.
    forged = msg.unpack(
        intruder.encrypt_query(X),
        msg.INFER_QUERY,
        {"client": str, "model": str, "output": str, "rows": int, "batches": list},
    )
    forged.pop("v"), forged.pop("kind")
    forged["client"] = registered.key
    with pytest.raises(KeyMismatchError):
        server.evaluate(msg.pack(msg.INFER_QUERY, **forged))


def test_roles_run_over_securecomp_net_channels(session: CKKSSession) -> None:
    """Key holder and server in two threads, exchanging bytes over in-process channels."""
    proto = CKKSProtocol(SPEC)
    prep = proto.prepare(X, Y)
    kh = KeyHolder.generate(prep.plan.params)
    chans = make_inprocess_channels(2, timeout=120.0)
    result: dict[str, object] = {}

    def server_side() -> None:
        try:
            result["server"] = serve_training(chans[1], key_holder=0)
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    thread = threading.Thread(target=server_side)
    thread.start()
    w = run_key_holder(chans[0], 1, kh, prep.batches, prep.cfg, prep.checks, prep.steps)
    thread.join(timeout=120)
    assert "error" not in result, result.get("error")
    server = result["server"]
    assert isinstance(server, Server) and not server.context.is_private
    coef, intercept = proto.float64_reference(X, Y)
    mean, scale = prep.target or (0.0, 1.0)
    np.testing.assert_allclose(w[1:] * scale, coef, atol=1e-6)
    assert w[0] * scale + mean == pytest.approx(intercept, abs=1e-6)
    kh_stats, srv_stats = chans[0].stats, chans[1].stats
    assert kh_stats.bytes_sent == srv_stats.bytes_received > 10**6  # the public context
    assert srv_stats.per_tag["ckks.fit.step"].messages_sent == len(prep.steps) + 1
    for c in chans:
        c.close()


def test_the_key_holder_refuses_bad_messages(fitted: tuple[CKKSProtocol, FitResult]) -> None:
    proto, _ = fitted
    kh = proto.options.session.key_holder
    prep = proto.prepare(X, Y)
    kh.begin_fit(prep.batches, prep.cfg, prep.checks, prep.steps)
    with pytest.raises(MalformedMessageError):
        kh.handle(b"\x00garbage")
    with pytest.raises(MalformedMessageError):
        kh.handle(msg.pack("ckks.fit.unknown"))
    wrong = msg.step_to_wire(prep.steps[0])
    wrong["eta"] += 0.5  # a well-formed step, but not the agreed schedule
    with pytest.raises(ProtocolAbort):
        kh.handle(msg.pack(msg.FIT_WEIGHTS_REQUEST, step=wrong))
    with pytest.raises(MalformedMessageError):
        kh.handle(msg.pack(msg.FIT_WEIGHTS_REQUEST, step={"index": 0}))
    with pytest.raises(NotFittedError):
        kh.weights()
    with pytest.raises(NotFittedError):
        KeyHolder(kh.context).handle(msg.pack(msg.FIT_WEIGHTS_REQUEST, step=wrong))


def test_bad_inputs_get_specific_errors(fitted: tuple[CKKSProtocol, FitResult]) -> None:
    proto, fit = fitted
    with pytest.raises(ShapeMismatchError):
        proto.fit(X, Y[:-1])
    with pytest.raises(ShapeMismatchError):
        proto.fit(X[0], Y)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(EncodingOverflowError):
        proto.fit(bad, Y)
    with pytest.raises(EncodingOverflowError):
        proto.decision_function(fit, bad)
    with pytest.raises(ShapeMismatchError):
        proto.decision_function(fit, X[:, :2])
    logistic = CKKSProtocol(TrainingSpec("logistic"))
    with pytest.raises(ParameterError, match="0 or 1"):
        logistic.fit(X, Y)
    with pytest.raises(NotFittedError):
        logistic.decision_function(FitResult(np.zeros(3), 0.0, 1, CostReport("x")), X)
    with pytest.raises(NotFittedError):
        logistic.release(s=8)
    with pytest.raises(NotFittedError):
        proto.infer(fit, X, model="released")  # nothing released yet
    with pytest.raises(NotFittedError):
        CKKSProtocol(SPEC, simulate=True).infer(None, X)


def test_out_of_range_logits_can_be_refused() -> None:
    rng = np.random.default_rng(2)
    Xs = rng.normal(size=(200, 2))
    ys = (Xs[:, 0] > 0).astype(float)
    spec = TrainingSpec(
        "logistic",
        learning_rate=4.0,
        max_iter=4,
        sigmoid_interval=4.0,
        out_of_range="raise",
        options={"noise_seed": 0},
    )
    with pytest.raises(EncodingOverflowError, match="outside the polynomial sigmoid"):
        CKKSProtocol(spec, simulate=True).fit(Xs, ys)
    warn = TrainingSpec(**{**spec.__dict__, "out_of_range": "warn"})
    with pytest.warns(RuntimeWarning, match=r"of rows \("):
        fit = CKKSProtocol(warn, simulate=True).fit(Xs, ys)
    assert fit.report.metrics["logits_out_of_range"]["worst_fraction"] > 0
