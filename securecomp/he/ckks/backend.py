"""The CKKS backend of `SecureTensor` over TenSEAL.

Threat model: the key holder owns the secret `CKKSContext`; a server owns a backend built
on ``ctx.public()`` and can encrypt and compute but not decrypt (semi-honest; it learns
shapes, layouts, levels and sizes, nothing about values, under RLWE). ``decrypt`` is the
key holder's *local* path: the values stay with it. Anything that leaves the key holder
goes through :func:`securecomp.he.ckks.release` (noise flooding, Li-Micciancio 2021).

Layouts and capabilities are tabulated in `securecomp.he.ckks.layouts`; how levels, drift
and TenSEAL's in-place behaviour are handled in `securecomp.he.ckks.kernels`. Every
binary operation between two tensors is preceded by the `SecureTensor` fingerprint check
(parameters and key id): tensors under different keys raise `KeyMismatchError` instead of
decrypting to garbage as raw TenSEAL would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.encoding.layout import ColumnLayout
from securecomp.errors import (
    EncodingOverflowError,
    KeyMismatchError,
    ParameterError,
    ShapeMismatchError,
)
from securecomp.he.ckks import elementwise as ew
from securecomp.he.ckks import linalg, structure
from securecomp.he.ckks.context import CKKSContext
from securecomp.he.ckks.kernels import Ct, Kernel
from securecomp.he.ckks.layouts import (
    COLUMN,
    COLUMN_T,
    ELEMENT,
    LAYOUTS,
    SLOT_LAYOUTS,
    VECTOR,
    base_dims,
)
from securecomp.he.ckks.payload import CKKSPayload, payload_of
from securecomp.he.ckks.polyval import polyval_cts
from securecomp.he.ckks.serialize import tensor_from_bytes, tensor_to_bytes
from securecomp.params import DEFAULT_CKKS_PARAMETERS, CKKSParameters
from securecomp.tensor import Backend, Implementation, Op, SecureTensor, as_plaintext

__all__ = ["CKKSBackend", "ckks_keygen", "needs_galois_keys"]

# Operations that rotate slots, per layout (they need Galois keys). Element tensors hold
# one value per ciphertext and never rotate, except to meet a slot layout in ``@``.
_ROTATING: dict[str, frozenset[Op]] = {
    VECTOR: frozenset(
        {
            Op.SUM,
            Op.DOT,
            Op.DOT_PLAIN,
            Op.MATMUL,
            Op.MATMUL_PLAIN,
            Op.RMATMUL_PLAIN,
            Op.GETITEM,
            Op.RESHAPE,
        }
    ),
    COLUMN: frozenset({Op.SUM, Op.DOT, Op.MATMUL, Op.RMATMUL_PLAIN, Op.GETITEM, Op.RESHAPE}),
    COLUMN_T: frozenset(
        {Op.SUM, Op.DOT, Op.DOT_PLAIN, Op.MATMUL, Op.MATMUL_PLAIN, Op.GETITEM, Op.RESHAPE}
    ),
    ELEMENT: frozenset({Op.MATMUL, Op.DOT}),
}

_ADVICE = {
    Op.LT: "CKKS has no comparison; approximate it with a polynomial (polyval) or use MPC",
    Op.LT_PLAIN: "CKKS has no comparison; approximate it with a polynomial or use MPC",
    Op.GT_PLAIN: "CKKS has no comparison; approximate it with a polynomial or use MPC",
}


def needs_galois_keys(ops: Any, layout: str) -> bool:
    """Whether a computation using ``ops`` on tensors of ``layout`` may rotate slots.

    Use it to decide whether to generate (and ship, ~35 MB at N = 8192) Galois keys:
    ``CKKSContext.generate(galois_keys=needs_galois_keys(...))``. An op is listed when it
    rotates for some operands (``SUM`` only over slots, ``GETITEM`` only when gathering).
    Not listed: combining a slot-layout tensor with an encrypted 0-d scalar (``x - x.sum()``)
    rotates too, to replicate the scalar; such a computation contains a ``SUM`` or ``DOT``.
    """
    if layout not in _ROTATING:
        raise ParameterError(f"unknown CKKS layout {layout!r}; one of {list(LAYOUTS)}")
    return any(op in _ROTATING[layout] for op in ops)


class CKKSBackend(Backend):
    """CKKS over TenSEAL. Invariant: decrypting any result gives the numpy result on the
    decrypted operands up to the CKKS error (bounded by `securecomp.params.CKKSNoiseModel`).

    Parameters
    ----------
    context : CKKSContext
        The key holder's secret context or a server's public one.
    """

    name = "ckks"

    def __init__(self, context: CKKSContext) -> None:
        if not isinstance(context, CKKSContext):
            raise ParameterError(f"expected a CKKSContext, got {type(context).__name__}")
        self._context = context
        self.kernel = Kernel(context)
        self._fingerprint = context.fingerprint
        self._tables = {layout: self._build_table() for layout in LAYOUTS}

    @property
    def fingerprint(self) -> bytes:
        return self._fingerprint

    @property
    def context(self) -> CKKSContext:
        return self._context

    @property
    def params(self) -> CKKSParameters:
        return self._context.params

    def wrap(
        self, cts: tuple[Ct, ...], shape: tuple[int, ...], layout: str, level: int, gain: float
    ) -> SecureTensor:
        """Build a tensor of this backend (for the operation modules)."""
        return SecureTensor._wrap(
            self,
            CKKSPayload(cts, level, gain),
            shape,
            layout=layout,
            meta={"level": level, "gain": gain},
        )

    # --- encryption ------------------------------------------------------------------------

    def encrypt(self, values: ArrayLike, *, layout: str | None = None) -> SecureTensor:
        """Encrypt with the public key (key holder or server).

        Parameters
        ----------
        values : array_like
            0-d, 1-d or 2-d, finite, ``|x|`` below the decryptable range
            (``2^(q0_bits - scale_bits - 2)``, 2^18 for the default chain).
        layout : str, optional
            Default: ``vector`` (1-d), ``column`` (2-d), ``element`` (0-d). ``element``
            (one ciphertext per value) for small operands such as encrypted weights.

        Raises
        ------
        EncodingOverflowError
            NaN, inf, or a magnitude that would wrap after the last rescale.
        ShapeMismatchError
            Empty or more than 2-d, or a layout that does not fit the shape.
        """
        arr = np.asarray(as_plaintext(values), dtype=np.float64)
        if arr.ndim > 2 or arr.size == 0:
            raise ShapeMismatchError(
                f"CKKS tensors are non-empty and 0-d, 1-d or 2-d; got shape {arr.shape}"
            )
        peak = float(np.max(np.abs(arr)))
        if peak >= self.kernel.capacity:
            raise EncodingOverflowError(
                f"a value of magnitude {peak:.3g} exceeds {self.kernel.capacity:.3g}, the "
                f"largest the first prime ({self.params.coeff_mod_bit_sizes[0]} bits) decrypts "
                f"at scale 2^{self.params.scale_bits}; scale the data down or plan a larger "
                "first prime"
            )
        chosen = layout if layout is not None else {0: ELEMENT, 1: VECTOR, 2: COLUMN}[arr.ndim]
        enc = self.kernel.encrypt
        if chosen == ELEMENT:
            cts = tuple(enc([v]) for v in arr.reshape(-1).tolist())
            return self.wrap(cts, arr.shape, ELEMENT, 0, 1.0)
        wanted = {VECTOR: 1, COLUMN: 2, COLUMN_T: 2}.get(chosen)
        if wanted is None:
            raise ParameterError(f"unknown CKKS layout {chosen!r}; one of {list(LAYOUTS)}")
        if arr.ndim != wanted:
            raise ShapeMismatchError(f"layout {chosen!r} holds {wanted}-d tensors, got {arr.shape}")
        m, k = base_dims(chosen, arr.shape)
        cl = ColumnLayout(m, k, self.params.slot_count)
        if chosen == VECTOR:
            vectors = cl.split_vector(arr)
            cts = tuple(enc(v[: cl.chunk_rows(c)].tolist()) for c, v in enumerate(vectors))
        else:
            blocks = cl.split(arr if chosen == COLUMN else arr.T)
            cts = tuple(
                enc(blocks[c][j][: cl.chunk_rows(c)].tolist())
                for j in range(k)
                for c in range(cl.n_chunks)
            )
        return self.wrap(cts, arr.shape, chosen, 0, 1.0)

    # --- decryption (key holder, local) ----------------------------------------------------

    def _secret_key(self, key: Any) -> Any:
        if not isinstance(key, CKKSContext):
            raise KeyMismatchError(
                "decrypting a CKKS tensor needs the key holder's secret CKKSContext, got "
                f"{type(key).__name__}"
            )
        if key.fingerprint != self._fingerprint:
            raise KeyMismatchError(
                "this CKKS context did not produce the tensor (different key or parameters); "
                "decrypt with the context it was encrypted under"
            )
        if not key.is_private:
            raise KeyMismatchError(
                "this CKKS context is public (no secret key): a server cannot decrypt; send "
                "the ciphertext to the key holder (to_bytes), who decrypts or releases it"
            )
        return key.secret_key()

    def decrypt(self, tensor: SecureTensor, key: Any) -> NDArray[np.float64]:
        """Decrypt for the key holder; the values stay with it (local path, no flooding).

        To hand values to anyone else use :func:`securecomp.he.ckks.release`.

        Raises
        ------
        KeyMismatchError
            ``key`` is not the secret context of this tensor's key.
        """
        sk = self._secret_key(key)
        return decrypt_payload(self, tensor, sk)

    # --- operations -----------------------------------------------------------------------

    def table(self, layout: str) -> Mapping[Op, Implementation]:
        return self._tables.get(layout, {})

    def advice(self, op: Op, layout: str) -> str:
        if op in _ADVICE:
            return _ADVICE[op]
        if layout not in LAYOUTS:
            return f"unknown CKKS layout {layout!r}"
        return f"CKKS tensors in layout {layout!r} do not provide {op.symbol!r}"

    def _build_table(self) -> dict[Op, Implementation]:
        def bind(fn: Callable[..., SecureTensor]) -> Implementation:
            def impl(*args: Any, **kwargs: Any) -> SecureTensor:
                return fn(self, *args, **kwargs)

            return impl

        def polyval(a: SecureTensor, coeffs: NDArray[np.float64]) -> SecureTensor:
            p = payload_of(a)
            cts, level, gain = polyval_cts(self.kernel, p.cts, p.level, p.gain, coeffs)
            return self.wrap(cts, a.shape, a.layout, level, gain)

        return {
            Op.ADD: bind(ew.add),
            Op.ADD_PLAIN: bind(ew.add_plain),
            Op.SUB: bind(ew.sub),
            Op.SUB_PLAIN: bind(ew.sub_plain),
            Op.RSUB_PLAIN: bind(ew.rsub_plain),
            Op.NEG: bind(ew.neg),
            Op.MUL: bind(ew.mul),
            Op.MUL_PLAIN: bind(ew.mul_plain),
            Op.MATMUL: bind(linalg.matmul),
            Op.MATMUL_PLAIN: bind(linalg.matmul_plain),
            Op.RMATMUL_PLAIN: bind(linalg.rmatmul_plain),
            Op.DOT: bind(linalg.dot),
            Op.DOT_PLAIN: bind(linalg.dot_plain),
            Op.SUM: bind(linalg.total),
            Op.GETITEM: bind(structure.getitem),
            Op.RESHAPE: bind(structure.reshape),
            Op.TRANSPOSE: bind(structure.transpose),
            Op.POLYVAL: polyval,
        }

    # --- serialization --------------------------------------------------------------------

    def to_bytes(self, tensor: SecureTensor, *, auth_key: bytes | None = None) -> bytes:
        """Serialize in the securecomp envelope (see `securecomp.he.ckks.serialize`)."""
        return tensor_to_bytes(self, tensor, auth_key=auth_key)

    def from_bytes(self, data: bytes, *, auth_key: bytes | None = None) -> SecureTensor:
        """Load a tensor serialized under this key (see `securecomp.he.ckks.serialize`)."""
        return tensor_from_bytes(self, data, auth_key=auth_key)


def decrypt_payload(backend: CKKSBackend, tensor: SecureTensor, sk: Any) -> NDArray[np.float64]:
    """Decrypt a tensor's ciphertexts with TenSEAL's secret key object and undo the gain."""
    if tensor.backend.fingerprint != backend.fingerprint:
        raise KeyMismatchError("the tensor belongs to another CKKS key")
    p = payload_of(tensor)
    if tensor.layout == ELEMENT:
        out = np.fromiter(
            (ct.decrypt(sk)[0] for ct in p.cts), dtype=np.float64, count=len(p.cts)
        ).reshape(tensor.shape)
    elif tensor.layout in SLOT_LAYOUTS:
        m, k = base_dims(tensor.layout, tensor.shape)
        cl = ColumnLayout(m, k, backend.params.slot_count)
        c = cl.n_chunks
        if tensor.layout == VECTOR and c == 1:
            out = np.array(p.cts[0].decrypt(sk), dtype=np.float64)
        else:
            chunks = [[p.cts[j * c + i].decrypt(sk) for j in range(k)] for i in range(c)]
            out = cl.join(chunks)
            if tensor.layout == VECTOR:
                out = out[:, 0]
            elif tensor.layout == COLUMN_T:
                out = np.ascontiguousarray(out.T)
    else:
        raise ParameterError(f"unknown CKKS layout {tensor.layout!r}")
    if p.gain != 1.0:
        out /= p.gain
    return out


def ckks_keygen(
    params: CKKSParameters = DEFAULT_CKKS_PARAMETERS,
    *,
    galois_keys: bool = False,
    depth: int | None = None,
) -> tuple[CKKSBackend, CKKSContext]:
    """A fresh key: the key holder's backend and secret context (as ``plain_keygen``)."""
    ctx = CKKSContext.generate(params, galois_keys=galois_keys, depth=depth)
    return CKKSBackend(ctx), ctx
