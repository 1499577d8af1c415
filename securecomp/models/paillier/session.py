"""What the training roles agree on: message fields, options, schedule, aggregate decoding.

Shared by the key holder, the aggregator and the holders
(`securecomp.models.paillier.training`, `securecomp.models.paillier.holder`): the fields
of the setup and model messages, the reading of a setup message (its public key and the
options it carries, validated exactly as the key holder's were), the number of steps per
epoch and the decoding of a decrypted aggregate into a gradient sum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.errors import MalformedMessageError, ParameterError, ProtocolAbort
from securecomp.he.paillier import PaillierPublicKey, load_public_key
from securecomp.models.paillier.config import PaillierOptions
from securecomp.models.paillier.messages import SETUP_KIND, Link, read_control
from securecomp.net.wire import decode_array

__all__ = [
    "MODEL_FIELDS",
    "SETUP_FIELDS",
    "decode_aggregate",
    "float_vector",
    "read_setup",
    "setup_options",
    "steps_per_epoch",
]

FloatArray = npt.NDArray[np.float64]

SETUP_FIELDS: dict[str, type] = {
    "public_key": bytes,
    "task": str,
    "n_features": int,
    "fit_intercept": bool,
    "n_holders": int,
    "value_bits": int,
    "clip": float,
    "scale_bits": int,
}
MODEL_FIELDS: dict[str, type] = {
    "step": int,
    "final": bool,
    "n_rows": int,
    "batches_per_epoch": int,
    "params": bytes,
}


def steps_per_epoch(n_rows: int, batch_size: int | None) -> int:
    """``S = ceil(n / batch_size)`` (1 for full batch)."""
    if batch_size is None or batch_size >= n_rows:
        return 1
    return math.ceil(n_rows / batch_size)


def decode_aggregate(
    sums: npt.NDArray[np.int64], options: PaillierOptions, nominal_batch: float
) -> tuple[FloatArray, int]:
    """Gradient sum of a step from the decrypted slot sums: ``(gradient sum, batch size)``.

    Each holder sent its row-gradient sum divided by the nominal batch ``n / S`` and
    quantized at ``2^scale_bits``, so the slot sums times ``nominal_batch / 2^scale_bits``
    are the step's gradient sum over all holders' rows (up to ``n_holders`` units of
    ``nominal_batch · 2^-scale_bits`` of stochastic rounding per coordinate); the last
    slot is the step's total batch size, by which `securecomp.models.gd.update` divides.

    Raises
    ------
    ProtocolAbort
        If the total batch size is not positive.
    """
    batch = int(sums[-1])
    if batch < 1:
        raise ProtocolAbort("decrypt", f"the aggregate reports a total batch of {batch} rows")
    scale = options.quantization.scale
    grad = sums[:-1].astype(np.float64) * (nominal_batch / scale)
    return grad, batch


def float_vector(raw: bytes, length: int, what: str) -> FloatArray:
    """A received float64 vector of ``length`` finite values (`MalformedMessageError`)."""
    arr = decode_array(raw, copy=True)
    if arr.dtype != np.float64 or arr.shape != (length,) or not np.isfinite(arr).all():
        raise MalformedMessageError(
            f"{what} must be {length} finite float64 values, got {arr.dtype} {arr.shape}"
        )
    return arr


def setup_options(body: Mapping[str, object], key_bits: int) -> PaillierOptions:
    """The options a setup message carries, validated as the key holder's were."""
    try:
        return PaillierOptions(
            n_holders=body["n_holders"],  # type: ignore[arg-type]
            key_bits=key_bits,
            value_bits=body["value_bits"],  # type: ignore[arg-type]
            clip=body["clip"],  # type: ignore[arg-type]
            scale_bits=body["scale_bits"],  # type: ignore[arg-type]
        )
    except (ParameterError, OverflowError) as exc:
        raise MalformedMessageError(f"setup: invalid parameters ({exc})") from None


def read_setup(
    link: Link, data: bytes
) -> tuple[dict[str, Any], PaillierPublicKey, PaillierOptions]:
    """Open a setup message from the key holder: ``(body, public key, options)``.

    Raises
    ------
    MalformedMessageError
        A missing or mistyped field, a header naming another key than the one sent, or
        options the key holder could not have had.
    ReplayError, IntegrityError
        A message of another session or round, or altered (from the link).
    """
    env = link.open(data, round=0, kind=SETUP_KIND)
    body = read_control(env, SETUP_KIND, SETUP_FIELDS)
    pk = load_public_key(body["public_key"])
    if env.fingerprint != pk.fingerprint:
        raise MalformedMessageError("the setup header names another key")
    return body, pk, setup_options(body, pk.bits)
