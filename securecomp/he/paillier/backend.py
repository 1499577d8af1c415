"""`PaillierBackend`: additively homomorphic tensors over phe keys and gmpy2 arithmetic.

Paillier (EUROCRYPT 1999) encrypts integers modulo ``n``; ciphertexts can be added and
multiplied by public integers, never multiplied together. Values are fixed-point
integers (`securecomp.he.paillier.encode`), in one of two layouts chosen at encryption:

==================================  ==============================  ======================
operation                           ``packed``                      ``unpacked``
==================================  ==============================  ======================
``a + b``, ``a - b``, ``-a``        yes (slot weights add)          yes
``a + p``, ``a - p``, ``p - a``     yes                             yes
``a * p``                           ``p`` a scalar, or constant     yes (elementwise,
                                    along the last axis             broadcasting)
``a.sum(axis)``                     leading axes only               yes (any axis, all)
``a[key]``, ``a.reshape(s)``        whole rows only (last axis      yes
                                    kept)
``a @ p``, ``p @ a``, ``a.dot(p)``  no: per-slot products           yes
``a.T``                             no: moves slots                 yes
``a * b``, ``a @ b``, polyval       no: ct x ct, use CKKS or MPC    no: same
``a < b``, ``a < p``, ``a > p``     no: use MPC                     no: use MPC
==================================  ==============================  ======================

(``a``, ``b`` encrypted under the same key; ``p`` a plaintext array.) The packed layout
stores ``n_slots`` values of a row per ciphertext (about 48 for 32-bit values with 2^10
additions of headroom at 2048 bits), which makes encryption, decryption and transfer that
many times cheaper; the unpacked layout is the one that supports per-value products.
`PaillierBackend.encrypt` picks the layout from what the caller declares: ``layout=``
explicitly, or ``ops=`` (the packed layout when it covers them, else unpacked), or a
``max_additions`` budget (packed); with nothing declared, unpacked (every operation).

Correctness guarantees: every result's bound (unpacked: ``|v| < 2^bound_bits`` against
``n/2``; packed: slot weight against the headroom) and fixed-point scale are computed from
declared ranges before the operation runs, and a result that could wrap is refused with
`EncodingOverflowError`, never returned wrong. No operation decrypts: `decrypt` with the
secret key is the only way out, and it re-checks the bound.

Threat model
------------
Semi-honest parties; Paillier is IND-CPA under the decisional composite residuosity
assumption (Paillier 1999, section 4), not CCA: a key holder must not decrypt ciphertexts
on request and return the plaintexts (a decryption oracle).

* The **key holder** holds the `PaillierSecretKey` and learns every value it decrypts.
* **Encryptors and aggregators** hold the public key (``PaillierBackend(public_key)``):
  they learn ciphertexts and what travels with them: shapes, layout, fixed-point scale,
  bound bits or slot weight, which depend only on declared ranges and on the bit sizes of
  plaintext operands (and the number of additions), never on encrypted values; plus
  message sizes. They learn nothing about encrypted values.
* A party's plaintext operands (e.g. aggregation weights) are hidden from the key holder
  beyond what the decrypted result implies, because derived ciphertexts are re-randomized
  (multiplied by a fresh ``r^n``) before they leave the process; the scale and weight still
  reveal the operands' bit sizes and, for packed scalars, their magnitude.
* Loaded keys and ciphertexts are validated (key floor, ``g = n + 1``, ``0 < c < n^2``,
  ``gcd(c, n) = 1``), which stops malformed input, not a malicious party that encrypts
  wrong values (that needs zero-knowledge proofs, out of scope).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    ParameterError,
    UnsupportedOperationError,
)
from securecomp.he.paillier.arith import Kernels, encrypt_raw, rerandomize
from securecomp.he.paillier.encode import (
    DEFAULT_FRAC_BITS,
    check_frac_bits,
    check_value_bits,
    decode_ints,
    encode_values,
)
from securecomp.he.paillier.keys import (
    PaillierPublicKey,
    PaillierSecretKey,
    paillier_keypair,
)
from securecomp.he.paillier.layout import (
    LAYOUTS,
    PACKED,
    PACKED_OPS,
    UNPACKED,
    advice,
    ceil_log2,
    frozen,
)
from securecomp.he.paillier.packed import (
    build_table as packed_table,
)
from securecomp.he.paillier.packed import (
    pack_rows,
    packed_meta,
    packing_for,
    row_shape,
    unpack_rows,
)
from securecomp.he.paillier.serialize import tensor_from_bytes, tensor_to_bytes
from securecomp.he.paillier.unpacked import build_table as unpacked_table
from securecomp.he.paillier.unpacked import unpacked_meta
from securecomp.params import DEFAULT_PAILLIER_BITS
from securecomp.tensor import Backend, Implementation, Op, SecureTensor, as_plaintext

__all__ = [
    "DEFAULT_MAX_ADDITIONS",
    "DEFAULT_PACKED_VALUE_BITS",
    "DEFAULT_UNPACKED_VALUE_BITS",
    "PaillierBackend",
    "paillier_keygen",
]

#: Headroom of a packed tensor when ``max_additions`` is not declared.
DEFAULT_MAX_ADDITIONS = 1 << 10
#: Signed width of packed values (sign included) when ``value_bits`` is not declared.
DEFAULT_PACKED_VALUE_BITS = 32
#: Signed width of unpacked input values when ``value_bits`` is not declared.
DEFAULT_UNPACKED_VALUE_BITS = 64

_ObjArray = npt.NDArray[np.object_]


class PaillierBackend(Backend):
    """Paillier tensors under one public key (see the module docstring for the table).

    Invariant: for tensors ``a``, ``b`` it encrypted and any supported op ``f``,
    ``f(a, b).decrypt(sk)`` equals ``f`` on the fixed-point encodings of the inputs
    exactly (an integer result is exact; a float result is within the rounding of its
    inputs to ``2^-frac_bits``), or the op raises before computing anything.

    Parameters
    ----------
    public_key : PaillierPublicKey
        The key; the backend never holds a secret key.
    frac_bits : int, default 16
        Fractional bits of float inputs and float plaintext operands.
    """

    name = "paillier"

    def __init__(
        self, public_key: PaillierPublicKey, *, frac_bits: int = DEFAULT_FRAC_BITS
    ) -> None:
        if isinstance(public_key, PaillierSecretKey):
            raise ParameterError(
                "a PaillierBackend holds the public key only: pass secret_key.public_key, and "
                "give the secret key to decrypt()"
            )
        if not isinstance(public_key, PaillierPublicKey):
            raise ParameterError(f"expected a PaillierPublicKey, got {type(public_key).__name__}")
        self.key = public_key
        self.frac_bits = check_frac_bits(frac_bits)
        self.kernels = Kernels(public_key)
        self._tables: dict[str, Mapping[Op, Implementation]] = {
            PACKED: packed_table(self),
            UNPACKED: unpacked_table(self),
        }

    # --- Backend contract ---------------------------------------------------------------------

    @property
    def fingerprint(self) -> bytes:
        """The hash of ``n``: tensors combine (and decrypt) only under the same modulus."""
        return self.key.fingerprint

    def table(self, layout: str) -> Mapping[Op, Implementation]:
        return self._tables.get(layout, {})

    def advice(self, op: Op, layout: str) -> str:
        return advice(op, layout)

    def wrap(
        self, payload: _ObjArray, shape: tuple[int, ...], layout: str, meta: dict[str, Any]
    ) -> SecureTensor:
        """Build a tensor of this backend (for the layout modules and the loader)."""
        return SecureTensor._wrap(self, payload, shape, layout=layout, meta=meta)

    # --- encryption ---------------------------------------------------------------------------

    def choose_layout(
        self,
        ops: Iterable[Op] | None = None,
        layout: str | None = None,
        max_additions: int | None = None,
    ) -> str:
        """The layout `encrypt` uses for these declarations (see the module docstring).

        Raises
        ------
        UnsupportedOperationError
            If a declared op is available in no layout (or not in the requested one).
        ParameterError
            For an unknown layout, a non-`Op` in ``ops``, or ``max_additions`` with
            ``layout="unpacked"``.
        """
        declared = frozenset(ops) if ops is not None else None
        if declared is not None and not all(isinstance(op, Op) for op in declared):
            raise ParameterError("ops must be securecomp.tensor.Op members, e.g. {Op.ADD}")
        if layout is not None:
            if layout not in LAYOUTS:
                raise ParameterError(
                    f"unknown Paillier layout {layout!r}; use {PACKED!r} or {UNPACKED!r}"
                )
            if layout == UNPACKED and max_additions is not None:
                raise ParameterError(
                    "max_additions sets the headroom of packed slots; the unpacked layout "
                    "needs none (its bound is n/2): drop it or use layout='packed'"
                )
            self._require(declared or frozenset(), layout)
            return layout
        if declared is None:
            return PACKED if max_additions is not None else UNPACKED
        if declared <= PACKED_OPS:
            return PACKED
        if max_additions is not None:
            self._require(declared, PACKED)
        self._require(declared, UNPACKED)
        return UNPACKED

    def _require(self, declared: frozenset[Op], layout: str) -> None:
        caps = self.capabilities(layout)
        for op in sorted(declared - caps, key=lambda o: o.name):
            raise UnsupportedOperationError(
                f"paillier backend ({layout} layout) cannot compute {op.symbol}: "
                f"{advice(op, layout)}"
            )

    def encrypt(
        self,
        values: ArrayLike,
        *,
        layout: str | None = None,
        ops: Iterable[Op] | None = None,
        max_additions: int | None = None,
        value_bits: int | None = None,
        frac_bits: int | None = None,
    ) -> SecureTensor:
        """Encrypt an array (numpy scalars and arrays of any real dtype).

        Parameters
        ----------
        values : array_like
            Finite real values; integer arrays are encoded exactly (scale 0).
        layout : {"packed", "unpacked"}, optional
            Force a layout; otherwise chosen from ``ops`` and ``max_additions``.
        ops : iterable of Op, optional
            The operations the caller intends to apply; the packed layout is chosen when
            its table has all of them, with the packed meaning of ``Op.MUL_PLAIN`` (a
            scalar, or one per row), ``Op.SUM`` (over leading axes) and ``Op.GETITEM``
            (whole rows). For elementwise products or full sums use
            ``layout="unpacked"`` or declare an op only it has (``Op.MATMUL_PLAIN``).
        max_additions : int, optional
            Packed headroom: how many such tensors (scalar multiples counted with their
            magnitude) the slots must be able to sum. Declaring it selects the packed
            layout. Default 1024.
        value_bits : int, optional
            Signed width of the encoded inputs, sign included (default 32 packed,
            64 unpacked); inputs must satisfy ``|round(x * 2^s)| < 2^(value_bits-1)``.
        frac_bits : int, optional
            Scale of this tensor (default: 0 for integer arrays, the backend's
            ``frac_bits`` for floats).

        Raises
        ------
        EncodingOverflowError
            Values out of range, NaN or inf (before anything is encrypted).
        UnsupportedOperationError
            A declared op no layout supports (e.g. ``Op.MUL``: ct x ct).
        """
        chosen = self.choose_layout(ops, layout, max_additions)
        arr = as_plaintext(values)
        scale = (
            check_frac_bits(frac_bits)
            if frac_bits is not None
            else (0 if arr.dtype.kind in "biu" else self.frac_bits)
        )
        if chosen == UNPACKED:
            vb = check_value_bits(DEFAULT_UNPACKED_VALUE_BITS if value_bits is None else value_bits)
            ints = encode_values(arr, scale, vb)
            cts = encrypt_raw(self.key, ints.ravel().tolist())
            payload = np.empty(len(cts), dtype=object)
            payload[:] = cts
            meta = unpacked_meta(scale, vb - 1, randomized=True)
            return self.wrap(frozen(payload.reshape(arr.shape)), arr.shape, UNPACKED, meta)
        budget = DEFAULT_MAX_ADDITIONS if max_additions is None else max_additions
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ParameterError(f"max_additions must be a positive int, got {budget!r}")
        headroom = ceil_log2(budget)
        vb = check_value_bits(DEFAULT_PACKED_VALUE_BITS if value_bits is None else value_bits)
        # Raises ParameterError when value and headroom bits exceed a 64-bit slot.
        packing = packing_for(self.key.bits, vb, headroom)
        ints = encode_values(arr, scale, vb)
        plain = pack_rows(packing, ints.reshape(row_shape(arr.shape)))
        cts = encrypt_raw(self.key, plain.ravel().tolist())
        payload = np.empty(len(cts), dtype=object)
        payload[:] = cts
        meta = packed_meta(scale, 1, vb, headroom, randomized=True)
        return self.wrap(frozen(payload.reshape(plain.shape)), arr.shape, PACKED, meta)

    # --- the explicit verbs -------------------------------------------------------------------

    def decrypt(self, tensor: SecureTensor, key: Any) -> npt.NDArray[np.float64]:
        """Decrypt with the secret key; the values stay with the key holder.

        Raises
        ------
        KeyMismatchError
            ``key`` is not the secret key of this tensor's public key.
        EncodingOverflowError
            A decrypted value breaks the tracked bound or slot headroom: the ciphertext or
            its metadata were altered (a correct computation never gets here).
        """
        if not isinstance(key, PaillierSecretKey):
            raise KeyMismatchError(
                f"decrypt needs the PaillierSecretKey of this tensor, got {type(key).__name__}"
            )
        if key.public_key != self.key or tensor.fingerprint != self.fingerprint:
            raise KeyMismatchError(
                "this secret key did not produce the tensor (different modulus); decrypt with "
                "the key it was encrypted under"
            )
        meta = tensor.meta
        plain = [key.raw_decrypt(c) for c in tensor.payload.ravel()]
        scale = int(meta["scale"])
        if tensor.layout == PACKED:
            packing = packing_for(
                self.key.bits, int(meta["value_bits"]), int(meta["headroom_bits"])
            )
            rows = row_shape(tensor.shape)
            ints = unpack_rows(packing, plain, int(meta["weight"]), rows[:-1], rows[-1])
            return np.ldexp(ints.astype(np.float64), -scale).reshape(tensor.shape)
        n = self.key.n
        half = n // 2
        limit = 1 << int(meta["bound_bits"])
        signed = [int(m) if m <= half else int(m) - n for m in plain]
        if any(not -limit < v < limit for v in signed):
            raise EncodingOverflowError(
                "a decrypted value exceeds the bound tracked for this tensor: the ciphertext "
                "or its metadata were altered; the result was discarded"
            )
        return decode_ints(signed, scale, tensor.shape)

    def to_bytes(self, tensor: SecureTensor) -> bytes:
        """Serialize (``paillier.ciphertext`` envelope); derived ciphertexts re-randomized."""
        self._own(tensor)
        return tensor_to_bytes(self, tensor)

    def from_bytes(self, data: bytes) -> SecureTensor:
        """Load and validate a tensor serialized under this backend's key."""
        return tensor_from_bytes(self, data)

    # --- utilities ------------------------------------------------------------------------------

    def rerandomize(self, tensor: SecureTensor) -> SecureTensor:
        """The same values under fresh randomness (unlinkable to ``tensor``'s ciphertexts)."""
        self._own(tensor)
        cts = rerandomize(self.key, tensor.payload.ravel())
        payload = np.empty(len(cts), dtype=object)
        payload[:] = cts
        meta = {**tensor.meta, "randomized": True}
        return self.wrap(
            frozen(payload.reshape(tensor.payload.shape)), tensor.shape, tensor.layout, meta
        )

    def add_all(self, tensors: Sequence[SecureTensor]) -> SecureTensor:
        """Sum of tensors (ciphertext additions only; unlike ``sum()``, no ``0 +`` term)."""
        if not tensors:
            raise ParameterError("add_all needs at least one tensor")
        total = tensors[0]
        for t in tensors[1:]:
            total = total + t
        return total

    def _own(self, tensor: SecureTensor) -> None:
        if not isinstance(tensor, SecureTensor) or tensor.fingerprint != self.fingerprint:
            raise KeyMismatchError(
                "the tensor does not belong to this Paillier key; use the backend of its key"
            )


def paillier_keygen(
    bits: int = DEFAULT_PAILLIER_BITS, *, frac_bits: int = DEFAULT_FRAC_BITS
) -> tuple[PaillierBackend, PaillierSecretKey]:
    """A fresh key pair: the backend (public key) and the secret key.

    Parameters
    ----------
    bits : int, default 3072
        Modulus size (about 128-bit security; 2048 is about 112-bit; smaller only inside
        ``insecure_test_parameters()``).
    frac_bits : int, default 16
        Fractional bits of float inputs and plaintext operands.
    """
    public, secret = paillier_keypair(bits)
    return PaillierBackend(public, frac_bits=frac_bits), secret
