"""Zhang et al., "BatchCrypt: Efficient Homomorphic Encryption for Cross-Silo Federated
Learning", USENIX ATC 2020: packed against per-element Paillier gradient aggregation.

One aggregation step of federated learning on the paper's idea, at our task shape: ``H``
holders (default 4) each hold a gradient of ``P`` parameters (default 100,000); the
gradients are quantized to signed ``b``-bit integers (clip 1, scale ``2^(b-2)``, unbiased
stochastic rounding); then

* **packed** (ours, `securecomp.models.paillier.aggregation`, BatchCrypt's approach of many
  quantized values per Paillier plaintext): each holder encrypts its vector in the packed
  layout (``b + ceil(log2 H)``-bit slots) and serializes it; the aggregator loads and
  validates the ``H`` messages, adds them and serializes the (re-randomized) sum; the key
  holder loads it and decrypts. Timed in full, once.
* **per-element** (the baseline): phe, one ``EncryptedNumber`` per value, as industrial
  frameworks did before batching: each holder encrypts every value, the aggregator adds
  element-wise, the key holder decrypts every sum. It would take tens of minutes for 10^5
  values, so it is **timed once on a sample** of the first ``--sample`` values (at least
  1,000) of each holder, and the time is **extrapolated linearly** to ``P`` values
  (every per-element operation costs the same, so the cost is linear in ``P``). Its bytes
  are counted exactly: ``P`` fixed-width ciphertexts of ``2 * bits / 8`` bytes per holder
  (phe's most compact form; its JSON form is larger), without the per-message envelope.

Both sides aggregate the same integers and both results are checked against the exact sum.
Times are single-process CPU times on this machine (holders measured one after the other;
the critical path counts the slowest holder, as if they ran in parallel), not the paper's
FATE deployment on EC2 across datacenters; the bytes do not depend on the machine.

Usage::

    python papers/batchcrypt/reproduce.py                  # 100k x 4, 2048-bit: ~3 minutes
    python papers/batchcrypt/reproduce.py --bits 3072      # the library default key size
    python papers/batchcrypt/reproduce.py --value-bits 16  # narrower slots
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import numpy as np
import phe.util

from securecomp.encoding import QuantizationParams
from securecomp.he.paillier import PaillierBackend, PaillierSecretKey, paillier_keygen
from securecomp.models.paillier import decrypt_sum, encrypt_update, sum_updates
from securecomp.models.paillier.gradient import quantize_signed
from securecomp.params import InsecureParametersWarning, insecure_test_parameters

#: Figures reported by the paper (abstract, USENIX ATC 2020).
REPORTED: dict[str, str] = {
    "training_speedup": "23x-93x",
    "communication_saving": "66x-101x",
    "accuracy_loss": "< 1%",
    "setting": "FATE plug-in, clients on EC2 in geo-distributed datacenters",
}

T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def packed_round(
    backend: PaillierBackend,
    secret: PaillierSecretKey,
    ints: Sequence[np.ndarray],
    value_bits: int,
) -> dict[str, Any]:
    """One packed aggregation; per-role seconds, bytes and the decrypted sum."""
    n = len(ints)
    holder_s, messages = [], []
    for q in ints:

        def encrypt(q: np.ndarray = q) -> bytes:
            return encrypt_update(backend, q, n_holders=n, value_bits=value_bits).to_bytes()

        msg, s = _timed(encrypt)
        holder_s.append(s)
        messages.append(msg)
    total, agg_s = _timed(
        lambda: sum_updates(backend, [backend.from_bytes(m) for m in messages]).to_bytes()
    )
    out, kh_s = _timed(lambda: decrypt_sum(backend.from_bytes(total), secret, n_holders=n))
    return {
        "sum": out,
        "ciphertexts_per_holder": backend.from_bytes(messages[0]).payload.size,
        "holder_seconds": holder_s,
        "aggregator_seconds": agg_s,
        "key_holder_seconds": kh_s,
        "bytes_per_holder": len(messages[0]),
        "bytes_aggregate": len(total),
    }


def per_element_sample(
    backend: PaillierBackend, secret: PaillierSecretKey, sample: Sequence[np.ndarray]
) -> dict[str, Any]:
    """Per-element phe on the sample: per-role seconds and the decrypted sums."""
    public, private = backend.key.to_phe(), secret.to_phe()
    holder_s, encrypted = [], []
    for q in sample:
        values = [int(v) for v in q]

        def encrypt(values: list[int] = values) -> list[Any]:
            return [public.encrypt(v) for v in values]

        enc, s = _timed(encrypt)
        holder_s.append(s)
        encrypted.append(enc)

    def add() -> list[Any]:
        sums = list(encrypted[0])
        for other in encrypted[1:]:
            sums = [a + b for a, b in zip(sums, other, strict=True)]
        return sums

    sums, agg_s = _timed(add)
    out, kh_s = _timed(lambda: [private.decrypt(c) for c in sums])
    return {
        "sum": np.array(out, dtype=np.int64),
        "holder_seconds": holder_s,
        "aggregator_seconds": agg_s,
        "key_holder_seconds": kh_s,
    }


def _critical(r: dict[str, Any], factor: float = 1.0) -> float:
    return factor * (max(r["holder_seconds"]) + r["aggregator_seconds"] + r["key_holder_seconds"])


def _total(r: dict[str, Any], factor: float = 1.0) -> float:
    return factor * (sum(r["holder_seconds"]) + r["aggregator_seconds"] + r["key_holder_seconds"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both sides and return the figures (JSON-safe)."""
    if not phe.util.HAVE_GMP:
        raise SystemExit("phe runs without gmpy2 here; install gmpy2 for a fair baseline")
    quant = QuantizationParams.from_scale_bits(
        clip=1.0, scale_bits=args.value_bits - 2, modulus_bits=args.value_bits
    )
    rng = np.random.default_rng(args.seed)
    gradients = rng.normal(scale=0.05, size=(args.holders, args.params))
    ints = [quantize_signed(g, quant, rng)[0] for g in gradients]
    exact = np.sum(ints, axis=0)
    (backend, secret), keygen_s = _timed(lambda: paillier_keygen(args.bits))

    packed = packed_round(backend, secret, ints, args.value_bits)
    if not np.array_equal(packed.pop("sum"), exact):
        raise SystemExit("packed aggregation returned a wrong sum")
    sample = min(args.sample, args.params)
    base = per_element_sample(backend, secret, [q[:sample] for q in ints])
    if not np.array_equal(base.pop("sum"), exact[:sample]):
        raise SystemExit("per-element aggregation returned a wrong sum")
    factor = args.params / sample
    width = backend.key.ciphertext_bytes
    base_bytes_holder = args.params * width
    quant_error = float(
        np.abs(exact / quant.scale - gradients.sum(axis=0)).max()
    )
    result: dict[str, Any] = {
        "paper": "Zhang et al., BatchCrypt, USENIX ATC 2020",
        "reported": REPORTED,
        "setting": {
            "parameters": args.params,
            "holders": args.holders,
            "key_bits": args.bits,
            "security": str(backend.key.security),
            "value_bits": args.value_bits,
            "slot_bits": args.value_bits + math.ceil(math.log2(args.holders)),
            "quantization": f"clip 1, scale 2^{args.value_bits - 2}, stochastic rounding",
            "max_abs_quantization_error_of_sum": quant_error,
            "keygen_seconds": keygen_s,
        },
        "packed": {
            **packed,
            "seconds_total": _total(packed),
            "seconds_critical_path": _critical(packed),
        },
        "per_element": {
            "sample_values": sample,
            "extrapolation_factor": factor,
            "measured_sample_seconds_total": _total(base),
            "seconds_total": _total(base, factor),
            "seconds_critical_path": _critical(base, factor),
            "holder_seconds_extrapolated": [s * factor for s in base["holder_seconds"]],
            "aggregator_seconds_extrapolated": base["aggregator_seconds"] * factor,
            "key_holder_seconds_extrapolated": base["key_holder_seconds"] * factor,
            "ciphertexts_per_holder": args.params,
            "bytes_per_holder": base_bytes_holder,
            "bytes_aggregate": base_bytes_holder,
        },
    }
    p, b = result["packed"], result["per_element"]
    result["ours"] = {
        "speedup_total": b["seconds_total"] / p["seconds_total"],
        "speedup_critical_path": b["seconds_critical_path"] / p["seconds_critical_path"],
        "communication_saving": (b["bytes_per_holder"] * (args.holders + 1))
        / (p["bytes_per_holder"] * args.holders + p["bytes_aggregate"]),
    }
    return result


def _table(r: dict[str, Any]) -> str:
    s, p, b, o = r["setting"], r["packed"], r["per_element"], r["ours"]
    lines = [
        f"{r['paper']}: packed vs per-element Paillier aggregation",
        f"  {s['parameters']:,} parameters x {s['holders']} holders, {s['key_bits']}-bit key "
        f"({s['security']}), {s['value_bits']}-bit values in {s['slot_bits']}-bit slots",
        "",
        f"  {'':34}{'packed (ours)':>16}{'per-element phe':>18}",
        f"  {'ciphertexts per holder':34}{p['ciphertexts_per_holder']:>16,}"
        f"{b['ciphertexts_per_holder']:>18,}",
        f"  {'bytes per holder':34}{p['bytes_per_holder']:>16,}{b['bytes_per_holder']:>18,}",
        f"  {'seconds, all roles (CPU)':34}{p['seconds_total']:>16.2f}{b['seconds_total']:>18.1f}",
        f"  {'seconds, critical path':34}{p['seconds_critical_path']:>16.2f}"
        f"{b['seconds_critical_path']:>18.1f}",
        f"  (per-element: {b['sample_values']:,} values per holder timed, "
        f"{b['measured_sample_seconds_total']:.1f} s, extrapolated x{b['extrapolation_factor']:g})",
        "",
        f"  speedup: {o['speedup_total']:.1f}x (all roles), {o['speedup_critical_path']:.1f}x "
        f"(critical path); communication saving: {o['communication_saving']:.1f}x",
        f"  reported by the paper (end-to-end training, FATE on EC2): speedup "
        f"{r['reported']['training_speedup']}, communication "
        f"{r['reported']['communication_saving']}",
        f"  max |quantized sum - float sum|: {s['max_abs_quantization_error_of_sum']:.2e}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--params", type=int, default=100_000)
    parser.add_argument("--holders", type=int, default=4)
    parser.add_argument("--bits", type=int, default=2048, help="Paillier modulus bits")
    parser.add_argument("--value-bits", type=int, default=32)
    parser.add_argument("--sample", type=int, default=1_000, help="per-element sample size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--insecure-smoke-test",
        action="store_true",
        help="allow keys below 2048 bits and samples below 1,000 (tests only; labelled)",
    )
    args = parser.parse_args(argv)
    if args.sample < 1_000 and not args.insecure_smoke_test:
        parser.error("the per-element baseline must be timed on at least 1,000 values")
    if args.holders < 2 or args.params < 1 or not 8 <= args.value_bits <= 62:
        parser.error("need at least 2 holders, 1 parameter and 8..62 value bits")
    scope: AbstractContextManager[Any] = nullcontext()
    if args.insecure_smoke_test:
        warnings.simplefilter("ignore", InsecureParametersWarning)
        scope = insecure_test_parameters()
    with scope:
        result = run(args)
    if args.insecure_smoke_test:
        result["setting"]["note"] = "INSECURE smoke test: small key and sample, figures meaningless"
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
