"""Options of the Paillier model protocol, read from ``TrainingSpec.options``.

Every option has a secure or conservative default; unknown keys are refused (a misspelt
option silently ignored would train with the wrong parameters). The quantization
parameters follow `securecomp.encoding.quantize` (clip, scale ``2^scale_bits``, stochastic
rounding), and the packed layout of `securecomp.he.paillier` carries ``value_bits``-bit
signed values with ``ceil(log2 n_holders)`` bits of headroom, so that the sum of the
``n_holders`` updates never carries across slots (the batching of Zhang et al.,
BatchCrypt, USENIX ATC 2020; here the sign is an offset inside the slot).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from securecomp.encoding.quantize import QuantizationParams
from securecomp.errors import ParameterError
from securecomp.he.paillier.layout import ceil_log2
from securecomp.params import DEFAULT_PAILLIER_BITS

__all__ = ["TWO_HOLDERS_DISCLOSURE", "InferenceLayout", "PaillierOptions", "warn_two_holders"]

InferenceLayout = Literal["packed", "unpacked"]

_MAX_SLOT_BITS = 64  # packed slots are unpacked into int64 words

_OTHER_HOLDER = (
    "the other holder's row count (n minus its own) and, at every step, the other "
    "holder's exact quantized gradient (the aggregate, which consecutive models determine, "
    "minus its own contribution)"
)
#: What each holder learns about the other when there are only two (recorded in its ledger).
TWO_HOLDERS_DISCLOSURE = "with 2 holders, " + _OTHER_HOLDER


def warn_two_holders(n_holders: int, *, stacklevel: int = 2) -> None:
    """Warn (`UserWarning`) when ``n_holders == 2``: aggregation then hides nothing
    between the two holders (see `TWO_HOLDERS_DISCLOSURE`)."""
    if n_holders == 2:
        warnings.warn(
            f"n_holders=2: each holder learns {_OTHER_HOLDER}; use at least 3 holders for "
            "the aggregate to hide any single holder's gradient",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ParameterError(f"option {name!r} must be an int in [{lo}, {hi}], got {value!r}")
    return value


@dataclass(frozen=True)
class PaillierOptions:
    """Protocol options (all keyword, all validated).

    Attributes
    ----------
    n_holders : int, default 4
        Number of data holders (horizontal partitions), at least 2: with one holder the
        key holder would decrypt that holder's own gradient. With exactly 2, each holder
        learns the other's row count and exact quantized gradient at every step (the
        aggregate minus its own); training warns, and at least 3 are advised.
    key_bits : int, default 3072
        Paillier modulus size (about 128-bit security); 2048 is allowed and labelled about
        112-bit; smaller only inside ``securecomp.params.insecure_test_parameters()``.
    value_bits : int, default 32
        Signed width of one quantized gradient value (sign included).
    clip : float, default 4096.0
        Each holder's normalized gradient contribution is clipped to ``[-clip, clip]``
        per coordinate (counted and reported when it happens).
    scale_bits : int, default 18
        Quantization scale ``2^scale_bits`` (resolution ``2^-18``); ``clip * 2^scale_bits``
        must fit ``value_bits``.
    inference_layout : {"packed", "unpacked"}, default "packed"
        Packed: the client encrypts feature columns, many rows per ciphertext; unpacked:
        one ciphertext per feature value (simple, many times slower).
    inference_frac_bits : int, default 16
        Fractional bits of the client's encrypted features.
    """

    n_holders: int = 4
    key_bits: int = DEFAULT_PAILLIER_BITS
    value_bits: int = 32
    clip: float = 4096.0
    scale_bits: int = 18
    inference_layout: InferenceLayout = "packed"
    inference_frac_bits: int = 16

    def __post_init__(self) -> None:
        _int("n_holders", self.n_holders, 2, 1 << 16)
        _int("key_bits", self.key_bits, 2, 1 << 16)  # the policy check is at key generation
        _int("value_bits", self.value_bits, 8, 62)
        _int("scale_bits", self.scale_bits, 0, 52)
        _int("inference_frac_bits", self.inference_frac_bits, 0, 30)
        if self.value_bits + ceil_log2(self.n_holders) > _MAX_SLOT_BITS:
            raise ParameterError(
                f"{self.value_bits}-bit values with headroom for {self.n_holders} holders need "
                f"{self.value_bits + ceil_log2(self.n_holders)}-bit slots; at most "
                f"{_MAX_SLOT_BITS} are supported: lower value_bits"
            )
        clip = self.clip
        if isinstance(clip, bool) or not isinstance(clip, int | float) or not (
            math.isfinite(clip) and clip > 0
        ):
            raise ParameterError(f"option 'clip' must be a positive finite number, got {clip!r}")
        object.__setattr__(self, "clip", float(clip))
        if self.inference_layout not in ("packed", "unpacked"):
            raise ParameterError(
                "option 'inference_layout' must be 'packed' or 'unpacked', got "
                f"{self.inference_layout!r}"
            )
        # Raises EncodingOverflowError when clip * 2^scale_bits does not fit value_bits.
        self.quantization  # noqa: B018

    @property
    def quantization(self) -> QuantizationParams:
        """The agreed quantization (clip, scale ``2^scale_bits``, ``value_bits``)."""
        return QuantizationParams.from_scale_bits(
            clip=self.clip, scale_bits=self.scale_bits, modulus_bits=self.value_bits
        )

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> PaillierOptions:
        """Build from ``TrainingSpec.options``; unknown keys raise `ParameterError`."""
        if not isinstance(options, Mapping):
            raise ParameterError(f"options must be a mapping, got {type(options).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in options if k not in known)
        if unknown:
            raise ParameterError(
                f"unknown option(s) {unknown} for backend 'paillier'; known: {sorted(known)}"
            )
        return cls(**dict(options))
