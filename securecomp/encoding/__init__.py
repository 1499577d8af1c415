"""Encodings between real data and the domains of the cryptographic backends (layer L1).

Pure numpy, no cryptography and no I/O:

* :mod:`~securecomp.encoding.fixedpoint` -- reals <-> Z_2^64 / Z_2^32 (two's complement);
* :mod:`~securecomp.encoding.ring` -- exact matrix products modulo 2^64 / 2^32 via BLAS;
* :mod:`~securecomp.encoding.quantize` -- clip, scale, stochastic rounding into Z_2^b for
  secure aggregation;
* :mod:`~securecomp.encoding.packing` -- many signed values per Paillier plaintext;
* :mod:`~securecomp.encoding.layout` -- matrices into CKKS slot vectors.
"""

from __future__ import annotations

from securecomp.encoding.fixedpoint import SUPPORTED_RING_BITS, FixedPoint, fixed_point
from securecomp.encoding.layout import ColumnLayout, RowLayout
from securecomp.encoding.packing import PaillierPacking, paillier_packing
from securecomp.encoding.quantize import (
    QuantizationParams,
    Quantized,
    check_no_wrap,
    dequantize,
    modulus_bits_for,
    quantize,
)
from securecomp.encoding.ring import ring_dot, ring_matmul, ring_sum

__all__ = [
    "SUPPORTED_RING_BITS",
    "ColumnLayout",
    "FixedPoint",
    "PaillierPacking",
    "QuantizationParams",
    "Quantized",
    "RowLayout",
    "check_no_wrap",
    "dequantize",
    "fixed_point",
    "modulus_bits_for",
    "paillier_packing",
    "quantize",
    "ring_dot",
    "ring_matmul",
    "ring_sum",
]
