"""Packed Paillier aggregation of integer vectors: encrypt, add, decrypt the sum.

The three primitives of federated gradient aggregation (Phong et al., IEEE TIFS 2018;
Zhang et al., BatchCrypt, USENIX ATC 2020), on the packed layout
of `securecomp.he.paillier`: each holder encrypts its quantized vector as one packed
tensor (``value_bits``-bit slots with headroom for ``n_holders`` summands), the aggregator
multiplies ciphertexts (adds every slot at once), and the key holder decrypts the sum. The
slot weight carried by the tensor tells the key holder how many updates were summed; it
refuses anything but exactly ``n_holders`` (an aggregator that forwarded a single update
would otherwise hand it one holder's vector).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from securecomp.errors import (
    EncodingOverflowError,
    ParameterError,
    ProtocolAbort,
    ShapeMismatchError,
)
from securecomp.he.paillier import PACKED, PaillierBackend, PaillierSecretKey
from securecomp.he.paillier.layout import ceil_log2
from securecomp.tensor import SecureTensor

__all__ = ["check_update", "decrypt_sum", "encrypt_update", "sum_updates"]


def encrypt_update(
    backend: PaillierBackend, ints: npt.NDArray[np.int64], *, n_holders: int, value_bits: int
) -> SecureTensor:
    """Encrypt a 1-d integer vector in the packed layout, with headroom for ``n_holders``.

    Raises
    ------
    EncodingOverflowError
        A value outside ``|v| <= 2^(value_bits-1) - 1`` (before anything is encrypted).
    """
    arr = np.asarray(ints)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ParameterError(f"an update is a 1-d integer vector, got {arr.dtype} {arr.shape}")
    return backend.encrypt(
        arr.astype(np.int64), max_additions=n_holders, value_bits=value_bits
    )


def check_update(
    tensor: SecureTensor,
    *,
    length: int,
    value_bits: int,
    n_holders: int,
    weight: int,
    who: str,
) -> SecureTensor:
    """Check that a received tensor is a packed update of the agreed shape and packing.

    Raises
    ------
    ShapeMismatchError
        Another length.
    ProtocolAbort
        Another layout, packing or weight than agreed (naming ``who`` as the culprit).
    """
    if tensor.shape != (length,):
        raise ShapeMismatchError(
            f"{who} sent an update of shape {tensor.shape}, expected ({length},)"
        )
    meta = tensor.meta
    agreed = (
        tensor.layout == PACKED
        and meta["scale"] == 0
        and meta["value_bits"] == value_bits
        and meta["headroom_bits"] == ceil_log2(n_holders)
        and meta["weight"] == weight
    )
    if not agreed:
        raise ProtocolAbort(
            "aggregate",
            f"the update is not a packed vector of {value_bits}-bit integers with headroom "
            f"for {n_holders} summands and weight {weight} (got layout {tensor.layout!r}, "
            f"meta {dict(meta)})",
            culprits=[who],
        )
    return tensor


def sum_updates(backend: PaillierBackend, updates: Sequence[SecureTensor]) -> SecureTensor:
    """The sum of the updates (ciphertext multiplications only; nothing is decrypted)."""
    if not updates:
        raise ParameterError("nothing to aggregate: no updates")
    return backend.add_all(list(updates))


def decrypt_sum(
    tensor: SecureTensor, secret_key: PaillierSecretKey, *, n_holders: int
) -> npt.NDArray[np.int64]:
    """Decrypt an aggregate of exactly ``n_holders`` updates to exact int64 sums.

    Raises
    ------
    ProtocolAbort
        The tensor is not a sum of ``n_holders`` packed integer updates: the key holder
        decrypts only complete aggregates.
    KeyMismatchError
        ``secret_key`` is not the key of the tensor.
    """
    meta = tensor.meta
    if tensor.layout != PACKED or meta["scale"] != 0 or meta["weight"] != n_holders:
        raise ProtocolAbort(
            "decrypt",
            f"the key holder decrypts only the sum of all {n_holders} updates; this tensor "
            f"has layout {tensor.layout!r} and weight {meta.get('weight')!r}",
            culprits=["aggregator"],
        )
    values = tensor.decrypt(secret_key)
    # Slot sums of n_holders values of < 2^63 / n_holders: exact in float64 below 2^53.
    if values.size and float(np.abs(values).max()) >= 2.0**53:
        raise EncodingOverflowError("aggregate beyond 2^53: lower value_bits")
    return values.astype(np.int64)
