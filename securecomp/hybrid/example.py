"""Hybrid inference: an encrypted linear layer under CKKS, a ReLU in MPC, the result returned.

The shape of Gazelle (Juvekar, Vaikuntanathan, Chandrakasan, USENIX Security 2018) and
Delphi (Mishra et al., USENIX Security 2020): linear layers where HE is cheap, non-linear
ones where MPC is, and a conversion between the two.

Roles (two computing parties of one MPC session, plus the session's dealer):

* **client** (party 0): CKKS key holder, owns the features ``X`` (``|x| <= 1``);
* **server** (party 1): evaluator, owns the private weights ``W`` and bias ``b`` and never
  sees a secret key; it declares a public output bound (``|X W + b| <= bound``, which it
  checks against its weights: the bound is public, the weights are not);
* **dealer**: comparison material for the ReLU (in `run_local` a thread: a labelled
  in-process simulation of a separate party).

Steps:

1. the client plans the CKKS chain with room for the conversion mask
   (`securecomp.hybrid.plan_ckks_conversion`), generates the key, and sends the public
   context and ``Enc(X)`` (column layout: one ciphertext per feature);
2. the server computes ``Enc(X W + b)`` (one rescale) and its error bound from its own
   plan (`securecomp.params.CKKSNoiseModel`, heuristic tail at 2^-40 per slot: labelled,
   and what flooding hides is conditional on it, see below; the worst-case bound would
   flood away every bit at any scale SEAL supports);
3. `securecomp.hybrid.ckks_to_shares`: mask, flooding and re-randomization by the server,
   decryption into a share by the client;
4. ``relu`` on the shares (`securecomp.mpc.nonlinear.relu`, exact on its input);
5. the result is revealed to the client only.

The client learns ``relu(X W + b)`` (and statistically masked values); the server learns
nothing about ``X`` (ciphertexts, uniform shares); the client learns nothing about ``W``
beyond the output (flooding hides the CKKS error, which carries ``W``).

**The last guarantee is conditional on the error bound.** Flooding hides an error only
up to the bound it was sized for, and the bound used here is the noise model's
*heuristic* one: each slot's error is modelled with a Laplace tail and bounded where that
tail is 2^-40 (`securecomp.params.CKKSNoiseModel`, ``ErrorBound.heuristic``), not in the
worst case. If an error exceeds it (probability 2^-40 per slot under the model, more if
the model is wrong for the computation), the excess is not covered and may tell the
client about ``W``. A deployment that needs the unconditional statement floods with the
worst-case bound (``ErrorBound.worst_case``) at a scale where that still leaves bits, or
accepts the heuristic explicitly, as this example does.

Run ``python -m securecomp.hybrid.example``; the exit status is non-zero if the result
differs from numpy by more than the stated precision.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import ParameterError
from securecomp.he.ckks import CKKSBackend, CKKSContext
from securecomp.hybrid.budget import ckks_flooding, plan_ckks_conversion
from securecomp.hybrid.protocol import ckks_to_shares
from securecomp.mpc import run_local
from securecomp.mpc.nonlinear import relu
from securecomp.mpc.session import Session
from securecomp.net import CostReport
from securecomp.params import CKKSNoiseModel, CKKSParameters

__all__ = ["HybridResult", "main", "run_example"]

_TAG_CONTEXT = "example.context"
_TAG_INPUT = "example.input"
_INPUT_BOUND = 1.0


@dataclass
class HybridResult:
    """What the example produced, checked against numpy.

    Attributes
    ----------
    output : ndarray
        ``relu(X W + b)`` as revealed to the client.
    expected : ndarray
        The same in float64 numpy.
    max_error : float
        ``max |output - expected|``.
    precision : float
        The conversion's stated precision (ReLU is 1-Lipschitz and exact on its input).
    params : CKKSParameters
    report : CostReport
        Time, bytes and rounds of the whole run (the MPC run's report).
    """

    output: npt.NDArray[np.float64]
    expected: npt.NDArray[np.float64]
    max_error: float
    precision: float
    params: CKKSParameters
    report: CostReport

    @property
    def ok(self) -> bool:
        """Whether the output is within the stated precision of numpy's."""
        return self.max_error <= self.precision


def _send(sess: Session, data: bytes, tag: str) -> None:
    sess.send(1 - sess.party_id, np.frombuffer(data, dtype=np.uint8), tag=tag)


def _recv(sess: Session, tag: str) -> bytes:
    return sess.recv(1 - sess.party_id, tag=tag, dtype=np.uint8).tobytes()


def server_error_bound(params: CKKSParameters, n_features: int, weight_bound: float) -> float:
    """The server's plan: heuristic error bound of ``X W + b`` per output slot.

    Each output column is a sum of ``n_features`` products of a fresh ciphertext
    (``|x| <= 1``) by a plaintext weight (``|w| <= weight_bound``); the bias adds no error.
    """
    model = CKKSNoiseModel(params)
    term = model.multiply_plain(model.fresh(_INPUT_BOUND), max(weight_bound, 2.0**-20))
    total = term
    for _ in range(n_features - 1):
        total = model.add(total, term)
    return total.heuristic()


def _client(sess: Session, x: npt.NDArray[np.float64], params: CKKSParameters, **kw: Any) -> Any:
    ctx = CKKSContext.generate(params)
    backend = CKKSBackend(ctx)
    _send(sess, ctx.public().to_bytes(), _TAG_CONTEXT)
    _send(sess, backend.to_bytes(backend.encrypt(x)), _TAG_INPUT)
    shared = ckks_to_shares(sess, key=ctx, evaluator=1, **kw)
    return sess.reveal(relu(shared), to=0)


def _server(
    sess: Session, w: npt.NDArray[np.float64], b: npt.NDArray[np.float64], **kw: Any
) -> Any:
    public = CKKSContext.from_bytes(_recv(sess, _TAG_CONTEXT))
    backend = CKKSBackend(public)
    x = backend.from_bytes(_recv(sess, _TAG_INPUT))
    y = x @ w + b
    shared = ckks_to_shares(sess, y, evaluator=1, **kw)
    sess.reveal(relu(shared), to=0)
    return None


def run_example(
    n_samples: int = 16,
    n_features: int = 4,
    n_outputs: int = 3,
    *,
    rng: np.random.Generator | None = None,
    scale_bits: int = 56,
    bound: float = 8.0,
) -> HybridResult:
    """Run the hybrid inference on random data.

    Parameters
    ----------
    n_samples, n_features, n_outputs : int
        Shapes of ``X`` (samples x features) and ``W`` (features x outputs).
    rng : numpy Generator, optional
        Generator of the test data (default ``np.random.default_rng(0)``); every secret
        (keys, masks, noise, shares) comes from the OS CSPRNG or AES-CTR regardless.
    scale_bits : int
        CKKS scale (larger: smaller error, hence less flooding noise).
    bound : float
        Public bound on ``|X W + b|``.
    """
    data = rng if rng is not None else np.random.default_rng(0)
    x = data.uniform(-_INPUT_BOUND, _INPUT_BOUND, size=(n_samples, n_features)) * 0.99
    w = data.uniform(-1.0, 1.0, size=(n_features, n_outputs))
    b = data.uniform(-0.5, 0.5, size=n_outputs)
    # The server checks its private weights against the public bound (worst case |x| <= 1).
    if float(np.max(np.abs(w).sum(axis=0) + np.abs(b))) > bound:
        raise ParameterError("the weights exceed the declared output bound; raise bound")
    params = plan_ckks_conversion(
        1, scale_bits=scale_bits, bound=bound, input_bound=2.0 * _INPUT_BOUND
    )
    error_bound = server_error_bound(params, n_features, 1.0)
    kw = {"bound": bound, "error_bound": error_bound, "n_conversions": 1}

    def program(sess: Session, mine: Any) -> Any:
        if sess.party_id == 0:
            return _client(sess, mine, params, **kw)
        return _server(sess, mine[0], mine[1], **kw)

    run = run_local(program, 2, inputs=[x, (w, b)], input_bound=bound, timeout=120.0,
                    name="hybrid: CKKS linear layer + MPC ReLU")
    output = np.asarray(run.results[0], dtype=np.float64)
    expected = np.maximum(x @ w + b, 0.0)
    flood = ckks_flooding(
        params, 1, bound=bound, error_bound=error_bound, n_ciphertexts=n_outputs,
        n_conversions=1, frac_bits=16,
    )
    err = float(np.max(np.abs(output - expected)))
    run.report.metrics.update(
        {
            "ckks": str(params),
            "error_bound (heuristic; flooding hides errors up to it)": error_bound,
            "flooding_std": flood.noise_std,
            "mask_bits": flood.mask_bits,
            "stated_precision": flood.precision,
            "max_error": err,
        }
    )
    return HybridResult(output, expected, err, flood.precision, params, run.report)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the example, print the comparison and the cost report."""
    parser = argparse.ArgumentParser(
        prog="python -m securecomp.hybrid.example",
        description="CKKS linear layer -> shares -> MPC ReLU -> result to the client",
    )
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--outputs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the test data only")
    parser.add_argument("--scale-bits", type=int, default=56)
    args = parser.parse_args(argv)
    res = run_example(
        args.samples, args.features, args.outputs,
        rng=np.random.default_rng(args.seed), scale_bits=args.scale_bits,
    )
    print(f"parameters: {res.params}")
    print(f"max |relu(XW+b) - numpy| = {res.max_error:.3e} (stated precision {res.precision:.3e})")
    print(res.report.summary())
    print("OK" if res.ok else "MISMATCH: the error exceeds the stated precision")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
