"""Validation of a client's quantized input for secure aggregation.

The input is a vector of integers modulo ``2^b`` in two's complement, as produced by
`securecomp.encoding.quantize`; its signed magnitude is bounded by the configuration
(``clip * scale * max_weight``), which is what guarantees that the sum of ``n`` inputs
cannot wrap modulo ``2^b`` (`securecomp.secagg.config`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from securecomp.errors import EncodingOverflowError, ParameterError
from securecomp.secagg.config import SecAggConfig

__all__ = ["check_input"]


def check_input(values: npt.ArrayLike, config: SecAggConfig) -> npt.NDArray[np.unsignedinteger]:
    """Validate a quantized input and return it in the container dtype.

    The values are integers modulo ``2^b`` in two's complement (as produced by
    `securecomp.encoding.quantize`); their signed magnitude must not exceed
    ``config.max_input_magnitude``, which is what guarantees the sum cannot wrap.

    Raises
    ------
    ParameterError
        Wrong shape or dtype.
    EncodingOverflowError
        A value is ``>= 2^b`` or its magnitude exceeds the bound.
    """
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != config.dim:
        raise ParameterError(
            f"input must be a vector of {config.dim} values, got shape {arr.shape}"
        )
    if arr.dtype.kind != "u":
        raise ParameterError(
            f"input must hold unsigned quantized values (two's complement mod 2^{config.bits}), "
            f"got dtype {arr.dtype}; use securecomp.encoding.quantize"
        )
    v = arr.astype(np.uint64)
    bits = config.bits
    if bits < 64 and int(v.max()) >> bits:
        raise EncodingOverflowError(f"an input value is >= 2^{bits}; quantize with this config")
    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
    half = np.uint64(1 << (bits - 1))
    magnitude = np.where(v >= half, (np.uint64(0) - v) & mask, v)
    if int(magnitude.max()) > config.max_input_magnitude:
        raise EncodingOverflowError(
            f"an input value has magnitude {int(magnitude.max())}, above the "
            f"{config.max_input_magnitude} the configuration allows (clip * scale * "
            "max_weight); the sum could wrap: clip the input or raise max_weight at set-up"
        )
    return v.astype(config.dtype)
