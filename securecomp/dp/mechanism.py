"""Client encoding and server decoding of distributed DP over a modular sum.

Kairouz, Liu and Steinke (ICML 2021), Algorithms 1 and 2; Agarwal, Kairouz and Liu (NeurIPS
2021), Algorithm 1. With the agreed `DistributedDpConfig` and the round's public rotation:

Client (`encode_update`), on its vector ``x`` of length ``d``:

1. rotate: ``y = R x`` (zero-padded to ``d'``, randomized Hadamard, `securecomp.dp.rotation`);
2. clip: ``y <- min(1, c / ||y||) y`` (`securecomp.dp.clipping`; ``R`` is orthogonal, so
   this is clipping ``x``);
3. scale: ``y <- scale * y``;
4. round: conditional randomized rounding to ``q`` with ``||q||^2 <= N``, the threshold the
   accountant uses as the sensitivity (`securecomp.dp.rounding`);
5. noise: ``q + Z`` with ``Z`` discrete Gaussian or Skellam, per-client variance
   ``(sigma scale)^2 / (min_survivors - corrupt_count)`` (`securecomp.dp.config`), drawn from
   the client's AES-CTR keystream (`securecomp.dp.ddgauss`, `securecomp.dp.skellam`);
6. reduce modulo ``2^b`` (two's complement in ``uint64``): the input of secure aggregation.

Server (`decode_sum`), on the modular sum of the surviving clients' vectors:

1. lift from Z_2^b to the centered integers ``[-2^(b-1), 2^(b-1))`` (exact unless the sum
   wrapped, whose probability the configuration bounds);
2. unscale and undo the rotation: ``R^T S / scale``, truncated to ``d`` coordinates.

The result estimates the sum of the clipped inputs, with error within
`DistributedDpConfig.error_bound`. Threat model: clients follow the protocol and keep their
noise seeds secret; the server (colluding with at most ``corrupt_count`` clients) sees only
the modular sum, whose privacy the accountant states. Not covered: the timing of a client's
encoding (conditional-rounding retries depend on the input; table lookups are not
constant-time), and `EncodedUpdate.clipped`, which must not leave the client in the clear.
Nothing here authenticates anything: that is secure aggregation's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from securecomp.crypto.prg import AesCtrPrg
from securecomp.dp.clipping import clip_l2
from securecomp.dp.config import DistributedDpConfig
from securecomp.dp.rotation import RandomizedHadamard
from securecomp.dp.rounding import conditional_round
from securecomp.errors import ParameterError, ShapeMismatchError

__all__ = ["EncodedUpdate", "decode_sum", "encode_update", "lift_centered", "reduce_modulo"]


@dataclass(frozen=True)
class EncodedUpdate:
    """One client's contribution.

    Attributes
    ----------
    values : ndarray of uint64
        ``d'`` values in ``[0, 2^b)``: the rounded, noised vector modulo ``2^b``.
    clipped : bool
        Whether L2 clipping shortened the vector. Not protected by the DP guarantee: keep it
        local, or sum it through secure aggregation and account for that release separately.
    rounding_attempts : int
        Conditional-rounding attempts used.
    """

    values: npt.NDArray[np.uint64]
    clipped: bool
    rounding_attempts: int


def reduce_modulo(values: npt.NDArray[np.int64], bits: int) -> npt.NDArray[np.uint64]:
    """Signed integers to Z_2^bits in two's complement (a new uint64 array)."""
    if not 1 <= bits <= 64:
        raise ParameterError(f"bits must lie in [1, 64], got {bits}")
    out = np.asarray(values, dtype=np.int64).astype(np.int64, copy=True).view(np.uint64)
    if bits < 64:
        out &= np.uint64((1 << bits) - 1)
    return out


def lift_centered(values: npt.ArrayLike, bits: int) -> npt.NDArray[np.int64]:
    """Z_2^bits to the centered representatives in ``[-2^(bits-1), 2^(bits-1))``."""
    if not 1 <= bits <= 64:
        raise ParameterError(f"bits must lie in [1, 64], got {bits}")
    arr = np.asarray(values)
    if arr.dtype.kind not in "ui":
        raise ParameterError(f"a modular sum must be unsigned integers, got dtype {arr.dtype}")
    v = arr.astype(np.uint64, copy=True)
    if bits < 64:
        # Sign-extend the bits-wide two's complement value: (v xor 2^(b-1)) - 2^(b-1).
        half = np.uint64(1 << (bits - 1))
        v &= np.uint64((1 << bits) - 1)
        v ^= half
        v -= half
    return v.view(np.int64)


def encode_update(
    x: npt.ArrayLike,
    config: DistributedDpConfig,
    rotation: RandomizedHadamard,
    *,
    prg: AesCtrPrg | None = None,
) -> EncodedUpdate:
    """A client's vector, privatized and reduced modulo ``2^b`` (see the module docstring).

    Parameters
    ----------
    x : array_like of real numbers, shape (dim,)
        The client's update. It is not modified.
    config : DistributedDpConfig
        The agreed parameters.
    rotation : RandomizedHadamard
        The round's rotation (`DistributedDpConfig.rotation`).
    prg : AesCtrPrg, optional
        The client's private keystream for rounding coins and noise; by default a fresh one
        seeded from the OS CSPRNG. Never share or reuse it: whoever knows it can remove the
        client's noise.

    Returns
    -------
    EncodedUpdate

    Raises
    ------
    EncodingOverflowError
        If ``x`` holds NaN or infinity.
    ShapeMismatchError
        If ``x`` or the rotation has the wrong length.
    """
    if not isinstance(config, DistributedDpConfig):
        raise ParameterError("config must be a DistributedDpConfig")
    _check_rotation(config, rotation)
    source = AesCtrPrg.from_random() if prg is None else prg
    if not isinstance(source, AesCtrPrg):
        raise ParameterError("prg must be a securecomp.crypto.AesCtrPrg")
    rotated = rotation.forward(x)
    clipped, was_clipped = clip_l2(rotated, config.l2_clip)
    clipped *= config.scale
    rounded, used = conditional_round(
        clipped, config.rounding_threshold, source, attempts=config.rounding_attempts
    )
    rounded += config.sampler.sample(config.padded_dim, source)
    return EncodedUpdate(
        values=reduce_modulo(rounded, config.modulus_bits),
        clipped=was_clipped,
        rounding_attempts=used,
    )


def decode_sum(
    sum_values: npt.ArrayLike, config: DistributedDpConfig, rotation: RandomizedHadamard
) -> npt.NDArray[np.float64]:
    """The server's estimate of the sum of the clipped inputs, from their modular sum.

    Parameters
    ----------
    sum_values : array_like of unsigned ints, shape (padded_dim,)
        The coordinate-wise sum modulo ``2^b`` of the encoded vectors (higher bits ignored).
    config : DistributedDpConfig
        The agreed parameters.
    rotation : RandomizedHadamard
        The round's rotation.

    Returns
    -------
    ndarray of float64, shape (dim,)
        ``R^T lift(S) / scale``; divide by the number of summands for the mean.
    """
    if not isinstance(config, DistributedDpConfig):
        raise ParameterError("config must be a DistributedDpConfig")
    _check_rotation(config, rotation)
    arr = np.asarray(sum_values)
    if arr.shape != (config.padded_dim,):
        raise ShapeMismatchError(
            f"expected a modular sum of shape ({config.padded_dim},), got {arr.shape}"
        )
    centered = lift_centered(arr, config.modulus_bits).astype(np.float64)
    out = rotation.inverse(centered)
    out /= config.scale
    return out


def _check_rotation(config: DistributedDpConfig, rotation: RandomizedHadamard) -> None:
    if not isinstance(rotation, RandomizedHadamard):
        raise ParameterError("rotation must be a RandomizedHadamard (see config.rotation)")
    if rotation.dim != config.dim:
        raise ShapeMismatchError(
            f"the rotation is for dimension {rotation.dim}, the configuration for {config.dim}"
        )
