"""Validation of a client's input for secure aggregation.

Two kinds of input, fixed by the configuration's encoding (`securecomp.secagg.config`):

* quantized float vectors: integers modulo ``2^b`` in two's complement, as produced by
  `securecomp.encoding.quantize`; their signed magnitude is bounded by the configuration
  (``clip * scale * max_weight``), which is what guarantees that the sum of ``n`` inputs
  cannot wrap modulo ``2^b``;
* DP-encoded ring elements (Kairouz et al. ICML 2021, Algorithm 1; Agarwal et al. NeurIPS
  2021, Algorithm 1): the ``values`` of `securecomp.dp.encode_update`, any elements of
  Z_2^b (noise makes them span the ring), of the rotation's padded length. Their sum may
  wrap by design, with the probability the DP configuration bounds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from securecomp.dp.config import DistributedDpConfig
from securecomp.dp.mechanism import EncodedUpdate
from securecomp.errors import EncodingOverflowError, ParameterError, ShapeMismatchError
from securecomp.secagg.config import SecAggConfig

__all__ = ["check_input"]


def check_input(values: npt.ArrayLike, config: SecAggConfig) -> npt.NDArray[np.unsignedinteger]:
    """Validate a client's input and return it in the container dtype.

    For a quantized configuration the values are integers modulo ``2^b`` in two's
    complement (as produced by `securecomp.encoding.quantize`); their signed magnitude must
    not exceed ``config.max_input_magnitude``, which is what guarantees the sum cannot wrap.
    For a distributed-DP configuration (`SecAggConfig.for_distributed_dp`) they are the
    ``dim = dp.padded_dim`` ring elements of `securecomp.dp.encode_update`, each below
    ``2^b``.

    Raises
    ------
    ParameterError
        Wrong shape or dtype (quantized inputs); a dtype other than unsigned integers
        (DP-encoded inputs).
    ShapeMismatchError
        DP-encoded inputs of the wrong length.
    EncodingOverflowError
        A value is ``>= 2^b`` or (quantized inputs) its magnitude exceeds the bound.
    """
    dp = config.dp
    if dp is not None:
        return _check_ring_input(values, config, dp)
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


def _check_ring_input(
    values: npt.ArrayLike, config: SecAggConfig, dp: DistributedDpConfig
) -> npt.NDArray[np.unsignedinteger]:
    bits = config.bits
    if isinstance(values, EncodedUpdate):
        # Refused rather than unwrapped: the caller decides what leaves with the update
        # (its `clipped` flag is not covered by the DP guarantee).
        raise ParameterError(
            "give the encoded ring elements (EncodedUpdate.values), not the EncodedUpdate"
        )
    arr = np.asarray(values)
    if arr.dtype.kind != "u":
        hint = (
            "reduce signed integers modulo 2^b with securecomp.dp.reduce_modulo"
            if arr.dtype.kind == "i"
            else "encode the update with securecomp.dp.encode_update (this configuration "
            "takes DP-encoded ring elements, not floats)"
        )
        raise ParameterError(
            f"input must hold unsigned ring elements of Z_2^{bits} (uint64, as "
            f"encode_update returns), got dtype {arr.dtype}: {hint}"
        )
    if arr.shape != (config.dim,):
        padded = (
            f" (dim {dp.dim} padded to a power of two by the rotation: pass EncodedUpdate.values)"
            if config.dim != dp.dim
            else ""
        )
        raise ShapeMismatchError(
            f"input must be a vector of {config.dim} ring elements{padded}, got shape {arr.shape}"
        )
    if bits < arr.dtype.itemsize * 8 and arr.size and int(arr.max()) >> bits:
        raise EncodingOverflowError(
            f"an input value is {int(arr.max())} >= 2^{bits}: not an element of Z_2^{bits}; "
            "reduce it modulo 2^b (securecomp.dp.reduce_modulo) or check that the DP "
            "configuration is the one this session was built for"
        )
    return arr.astype(config.dtype, copy=True)
