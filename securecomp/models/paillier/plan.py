"""Cost plan of Paillier training and inference: ciphertexts, bytes and estimated time.

Counts are exact (they follow from the packing of `securecomp.encoding.paillier_packing`);
bytes add an envelope allowance to the fixed ciphertext width ``ceil(2 bits / 8)``; time is
an estimate from a calibration of the modular exponentiations that dominate Paillier on
this machine (gmpy2 ``powmod`` with random moduli of the key's sizes, no key needed):

* encryption: ``r^n mod n^2`` (exponent of ``bits`` bits, modulus of ``2 bits``);
* decryption: two CRT halves ``c^(p-1) mod p^2`` (exponent of ``bits/2`` bits);
* addition: one multiplication modulo ``n^2``.

The aggregator's serialization re-randomizes each sum (one encryption-sized exponentiation
per ciphertext). Holders run in parallel, so a step's critical path is one holder, then the
aggregator, then the key holder. Key generation is not included.
"""

from __future__ import annotations

import functools
import secrets
import statistics
import time
from typing import Any

import gmpy2

from securecomp.encoding import paillier_packing
from securecomp.errors import ShapeMismatchError
from securecomp.models.paillier.config import PaillierOptions
from securecomp.models.paillier.inference import FEATURE_VALUE_BITS
from securecomp.models.paillier.session import steps_per_epoch
from securecomp.models.protocol import TrainingSpec
from securecomp.params import check_paillier_key_bits

__all__ = ["ENVELOPE_ALLOWANCE", "calibrate", "plan_training"]

#: Bytes allowed per message beyond its ciphertexts: envelope header, msgpack fields,
#: AES-GCM nonce and tag, channel frame (measured: about 340 bytes for an update).
ENVELOPE_ALLOWANCE = 384


def _odd(bits: int) -> Any:
    return gmpy2.mpz(secrets.randbits(bits) | (1 << (bits - 1)) | 1)


def _median_seconds(fn: Any, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@functools.cache
def calibrate(bits: int, reps: int = 5) -> dict[str, float]:
    """Seconds per encryption, decryption and ciphertext addition for ``bits``-bit keys."""
    n = _odd(bits)
    nsq = n * n
    r = gmpy2.mpz(secrets.randbelow(int(n) - 2) + 2)
    p = _odd(bits // 2)
    psq = p * p
    c = gmpy2.mpz(secrets.randbelow(int(nsq) - 2) + 2)
    enc = _median_seconds(lambda: (n * 5 + 1) * gmpy2.powmod(r, n, nsq) % nsq, reps)
    dec = 2 * _median_seconds(lambda: gmpy2.powmod(c % psq, p - 1, psq), reps)
    add = _median_seconds(lambda: c * c % nsq, reps * 20)
    return {"encrypt": enc, "decrypt": dec, "add": add}


def _shape(X_shape: Any) -> tuple[int, int]:
    ok = (
        isinstance(X_shape, tuple | list)
        and len(X_shape) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in X_shape)
    )
    if not ok:
        raise ShapeMismatchError(f"X_shape must be (n_rows, n_features) >= 1, got {X_shape!r}")
    return int(X_shape[0]), int(X_shape[1])


def plan_training(
    spec: TrainingSpec, options: PaillierOptions, X_shape: tuple[int, int]
) -> dict[str, Any]:
    """The plan of `PaillierProtocol.fit` and `decision_function` on data of ``X_shape``.

    Raises
    ------
    InsecureParameterError
        ``key_bits`` below 2048 outside ``insecure_test_parameters()``.
    ShapeMismatchError
        ``X_shape`` is not two positive ints.
    """
    n, d = _shape(X_shape)
    bits = options.key_bits
    label = check_paillier_key_bits(bits)
    n_params = d + int(spec.fit_intercept)
    length = n_params + 1  # the batch size rides in the last slot
    packing = paillier_packing(bits, options.value_bits, options.n_holders)
    cts = packing.n_plaintexts(length)
    ct_bytes = (2 * bits + 7) // 8
    msg_bytes = cts * ct_bytes + ENVELOPE_ALLOWANCE
    batches = steps_per_epoch(n, spec.batch_size)
    steps = spec.max_iter * batches
    cost = calibrate(bits)
    holder_s = cts * cost["encrypt"]
    aggregator_s = cts * ((options.n_holders - 1) * cost["add"] + cost["encrypt"])
    key_holder_s = cts * cost["decrypt"]
    step_s = holder_s + aggregator_s + key_holder_s
    count_s = cost["encrypt"] * 2 + cost["decrypt"]
    # Inference, packed: at most 64-bit slots (the headroom depends on the model).
    inf_packing = paillier_packing(bits, FEATURE_VALUE_BITS, 1 << (64 - FEATURE_VALUE_BITS))
    if options.inference_layout == "packed":
        client_cts = (d + 1) * inf_packing.n_plaintexts(n)
        score_cts = inf_packing.n_plaintexts(n)
    else:
        client_cts, score_cts = n * (d + 1), n
    inference_s = client_cts * cost["encrypt"] + score_cts * (cost["decrypt"] + cost["encrypt"])
    return {
        "protocol": "paillier federated gradient aggregation",
        "key_bits": bits,
        "security": str(label),
        "n_holders": options.n_holders,
        "n_rows": n,
        "n_features": d,
        "n_params": n_params,
        "value_bits": options.value_bits,
        "slot_bits": packing.slot_bits,
        "slots_per_ciphertext": packing.n_slots,
        "ciphertext_bytes": ct_bytes,
        "ciphertexts_per_holder_per_step": cts,
        "values_per_holder_per_step": length,
        "bytes_per_holder_per_step": msg_bytes,
        "bytes_aggregator_to_key_holder_per_step": msg_bytes,
        "batches_per_epoch": batches,
        "steps": steps,
        "total_bytes": (steps + 1) * (options.n_holders + 1) * msg_bytes,
        "calibration_seconds": dict(cost),
        "estimated_seconds": {
            "holder_per_step": holder_s,
            "aggregator_per_step": aggregator_s,
            "key_holder_per_step": key_holder_s,
            "step_critical_path": step_s,
            "fit": steps * step_s + count_s,
        },
        "inference": {
            "layout": options.inference_layout,
            "client_ciphertexts": client_cts,
            "client_bytes": client_cts * ct_bytes + ENVELOPE_ALLOWANCE,
            "score_ciphertexts": score_cts,
            "note": "packed counts are upper bounds (64-bit slots); the model sets the headroom",
            "estimated_seconds": inference_s,
        },
    }
