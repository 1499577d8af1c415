"""Two-party Beaver triples over Z_2^64 from Paillier encryption: the two roles, without I/O.

Party 0 (the *key holder*) owns a Paillier key; party 1 (the *responder*) has its public
key. Each draws its shares of the operands, ``a = a0 + a1`` and ``b = b0 + b1`` (uniform
in Z_2^64), and they compute shares of ``c = f(a, b)`` for a bilinear ``f``:

    f(a, b) = f(a0, b0) + f(a1, b1) + [f(a0, b1) + f(a1, b0)]      (over the integers)

The first two terms are local; the bracketed cross terms are computed under encryption
(the approach of Mohassel and Zhang, "SecureML", IEEE S&P 2017, section 4.2 and
appendix: LHE-based generation of multiplication triples; Demmler, Schneider, Zohner,
"ABY", NDSS 2015, section III-C, for the elementwise case).

Protocol (one request and one response)
---------------------------------------
1. The key holder encrypts its operand shares and sends them: elementwise, one ciphertext
   per entry of ``a0`` and of ``b0`` (per-entry products cannot be packed: Paillier
   multiplies a whole plaintext by one scalar); for a matrix product ``A @ B``, the
   *columns* of ``A0`` and the *rows* of ``B0`` packed into wide slots, since a column
   times a scalar ``B1[l, j]`` is one packed product (the row-packing of SecureML's
   vectorized generation).
2. The responder computes, per output entry, an encryption of the cross term ``t`` with
   simultaneous exponentiation (`multi_pow`), packs ``s`` entries per ciphertext with
   Horner's rule (slots of ``w = bits(max t) + sigma + 1`` bits), adds a mask ``r`` per
   slot drawn **over the integers**, uniform in ``[0, 2^(bits(max t) + sigma))``, and
   **re-randomizes** the ciphertext (a fresh ``r^n``). Its share is
   ``f(a1, b1) - sum r (mod 2^64)``.
3. The key holder decrypts and reads each slot's ``t + r`` (no wrap: ``t + r < 2^w`` and
   the packed plaintext stays below ``n``); its share is ``f(a0, b0) + sum (t + r)``
   ``(mod 2^64)``. The two shares add up to ``f(a, b) mod 2^64``.

What each party learns
----------------------
* The responder sees only ciphertexts under the key holder's key: nothing (IND-CPA under
  the decisional composite residuosity assumption).
* The key holder sees ``t + r`` per slot. ``t`` ranges over ``[0, 2^bits(max t))`` and
  ``r`` is uniform over a range ``2^sigma`` times larger, so the statistical distance
  between the views for any two values of the responder's shares is at most
  ``2^-sigma`` per slot (sigma = 40 by default and at least 40 outside
  ``insecure_test_parameters()``, `securecomp.params.check_statistical_security`).
  A mask drawn modulo 2^64 would not do: ``t`` exceeds 2^64 and its high bits would show.
  The re-randomization makes the ciphertext a fresh encryption of ``t + r``: without it
  the randomizer would be a known function of the key holder's own randomizers and the
  responder's shares (a deterministic recomputation would identify them).

Threat model
------------
**Semi-honest only**: both parties follow the protocol. There are no proofs of plaintext
knowledge, of range or of correct computation, so a malicious key holder can encrypt
values outside Z_2^64 (or outside the planned range) and a malicious responder can return
anything: the triple is then wrong, or leaks. Material produced here is labelled
``security = "semi-honest"`` by its provider, and an actively secure (MAC) mode must refuse
it. Two parties only; nobody else is involved (no dealer).

Costs (3072-bit key, measured in ``benchmarks/bench_mpc_offline.py``): elementwise, two
key-holder encryptions per triple (~9 ms each with the factorization) dominate; a matrix
product needs ``k (ceil(m/s) + ceil(n/s))`` encryptions and
``k (n ceil(m/s) + m ceil(n/s))`` exponentiations by 64-bit scalars.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.encoding import ring_matmul
from securecomp.errors import MalformedMessageError, ParameterError, UnsupportedOperationError
from securecomp.he.paillier import PaillierPublicKey, PaillierSecretKey
from securecomp.he.paillier.arith import check_ciphertexts, rerandomize
from securecomp.mpc.offline.wide import (
    KeyHolderEncryptor,
    SlotLayout,
    horner,
    low_words,
    multi_pow,
    trivial,
)
from securecomp.params import STATISTICAL_SECURITY_BITS, check_statistical_security

__all__ = [
    "BlockPlan",
    "ElementwisePlan",
    "MatmulPlan",
    "Response",
    "combine",
    "elementwise_blocks",
    "elementwise_plan",
    "elementwise_request",
    "elementwise_respond",
    "finish",
    "matmul_blocks",
    "matmul_plan",
    "matmul_request_parts",
    "matmul_respond",
    "term_bits",
]

_MAX64 = (1 << 64) - 1
_U64 = np.dtype(np.uint64)


def term_bits(products: int) -> int:
    """Bits of the largest sum of ``products`` products of two 64-bit words."""
    return (max(int(products), 1) * _MAX64 * _MAX64).bit_length()


def _layout(key: PaillierPublicKey, products: int, sigma: int) -> SlotLayout:
    # Below 40 bits of slack only inside insecure_test_parameters() (the shared floor).
    return SlotLayout.for_key(
        key, term_bits(products) + check_statistical_security(sigma, "sigma") + 1
    )


@dataclass(frozen=True)
class BlockPlan:
    """Public bookkeeping of a response: which output entries each slot holds.

    ``indices[b]`` lists the flat output indices of block ``b`` (one per slot, in slot
    order); ``groups[g]`` lists the blocks packed into response ciphertext ``g``.
    Both parties derive it from public shapes, so it never travels.
    """

    indices: tuple[npt.NDArray[np.intp], ...]
    groups: tuple[tuple[int, ...], ...]

    @classmethod
    def greedy(cls, indices: Sequence[npt.NDArray[np.intp]], slots: int) -> BlockPlan:
        """Pack blocks in order into ciphertexts of ``slots`` slots (a block never splits)."""
        groups: list[tuple[int, ...]] = []
        current: list[int] = []
        used = 0
        for b, idx in enumerate(indices):
            if current and used + idx.size > slots:
                groups.append(tuple(current))
                current, used = [], 0
            current.append(b)
            used += idx.size
        if current:
            groups.append(tuple(current))
        return cls(tuple(indices), tuple(groups))

    def group_indices(self, g: int) -> npt.NDArray[np.intp]:
        """Flat output indices of the slots of response ciphertext ``g``, in slot order."""
        return np.concatenate([self.indices[b] for b in self.groups[g]])

    @property
    def n_ciphertexts(self) -> int:
        """Response ciphertexts (one per group)."""
        return len(self.groups)


@dataclass(frozen=True)
class ElementwisePlan:
    """Public plan of an elementwise (broadcasting) triple."""

    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    shape: tuple[int, ...]
    ia: npt.NDArray[np.intp]
    ib: npt.NDArray[np.intp]
    layout: SlotLayout
    blocks: BlockPlan

    @property
    def request_count(self) -> int:
        """Ciphertexts of the request: one per entry of ``a0``, then of ``b0``."""
        return int(np.prod(self.shape_a, dtype=np.int64) + np.prod(self.shape_b, dtype=np.int64))


def elementwise_plan(
    key: PaillierPublicKey,
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    sigma: int = STATISTICAL_SECURITY_BITS,
) -> ElementwisePlan:
    """The plan of a triple ``c = a * b`` with numpy broadcasting."""
    shape = tuple(int(d) for d in np.broadcast_shapes(shape_a, shape_b))
    size_a = int(np.prod(shape_a, dtype=np.int64))
    size_b = int(np.prod(shape_b, dtype=np.int64))
    ia = np.broadcast_to(np.arange(size_a, dtype=np.intp).reshape(shape_a), shape).ravel()
    ib = np.broadcast_to(np.arange(size_b, dtype=np.intp).reshape(shape_b), shape).ravel()
    layout = _layout(key, 2, sigma)  # a0 b1 + a1 b0: two products per slot
    per_entry = [np.array([j], dtype=np.intp) for j in range(ia.size)]
    return ElementwisePlan(
        tuple(shape_a), tuple(shape_b), shape, ia, ib, layout,
        BlockPlan.greedy(per_entry, layout.slots),
    )


@dataclass(frozen=True)
class MatmulPlan:
    """Public plan of a matrix triple ``C = A @ B`` with ``A`` m x k and ``B`` k x n.

    ``row_chunks`` split the m rows of a column of ``A0`` (and of the output) into packed
    plaintexts; ``col_chunks`` split the n columns of a row of ``B0``.
    """

    m: int
    k: int
    n: int
    shape: tuple[int, ...]
    layout: SlotLayout
    row_chunks: tuple[tuple[int, int], ...]
    col_chunks: tuple[tuple[int, int], ...]
    blocks: BlockPlan

    @property
    def request_counts(self) -> tuple[int, int]:
        """Ciphertexts of the packed columns of ``A0`` and of the packed rows of ``B0``."""
        return self.k * len(self.row_chunks), self.k * len(self.col_chunks)


def _chunks(total: int, size: int) -> tuple[tuple[int, int], ...]:
    return tuple((lo, min(lo + size, total)) for lo in range(0, total, size))


def matmul_plan(
    key: PaillierPublicKey,
    m: int,
    k: int,
    n: int,
    shape: tuple[int, ...] | None = None,
    sigma: int = STATISTICAL_SECURITY_BITS,
    *,
    products: int | None = None,
) -> MatmulPlan:
    """The plan of a matrix triple; ``products`` (default ``k``) sizes the slots.

    A caller that reuses packed ciphertexts across products of different inner dimensions
    (`securecomp.mpc.offline.reusable`) passes the largest one so that every product fits.
    """
    if min(m, k, n) < 0:
        raise ParameterError(f"matrix dimensions must be >= 0, got {(m, k, n)}")
    layout = _layout(key, k if products is None else products, sigma)
    rows, cols = _chunks(m, layout.slots), _chunks(n, layout.slots)
    indices: list[npt.NDArray[np.intp]] = []
    # Term A0 @ B1: one block per (output column j, chunk of rows).
    for j in range(n):
        for lo, hi in rows:
            indices.append(np.arange(lo, hi, dtype=np.intp) * n + j)
    # Term A1 @ B0: one block per (output row i, chunk of columns).
    for i in range(m):
        for lo, hi in cols:
            indices.append(i * n + np.arange(lo, hi, dtype=np.intp))
    return MatmulPlan(
        m, k, n, (m, n) if shape is None else tuple(shape), layout, rows, cols,
        BlockPlan.greedy(indices, layout.slots),
    )


# --- key holder ----------------------------------------------------------------------------


def elementwise_request(
    enc: KeyHolderEncryptor, a0: npt.NDArray[np.uint64], b0: npt.NDArray[np.uint64]
) -> list[Any]:
    """Step 1 (elementwise): encryptions of every entry of ``a0``, then of ``b0``."""
    return enc.encrypt([*a0.ravel().tolist(), *b0.ravel().tolist()])


def _pack_columns(
    mat: npt.NDArray[np.uint64], layout: SlotLayout, chunks: Sequence[tuple[int, int]]
) -> list[int]:
    """Plaintexts of the columns of ``mat`` (column-major), each split into ``chunks``."""
    out = []
    for col in mat.T.tolist():
        for lo, hi in chunks:
            out.append(layout.pack(col[lo:hi]))
    return out


def matmul_request_parts(
    plan: MatmulPlan, a0: npt.NDArray[np.uint64], b0: npt.NDArray[np.uint64]
) -> tuple[list[int], list[int]]:
    """Step 1 (matrix) plaintexts: packed columns of ``A0``, packed rows of ``B0``."""
    return (
        _pack_columns(a0, plan.layout, plan.row_chunks),
        _pack_columns(b0.T, plan.layout, plan.col_chunks),
    )


def finish(
    secret_key: PaillierSecretKey,
    blocks: BlockPlan,
    layout: SlotLayout,
    response: Sequence[Any],
    local: npt.NDArray[np.uint64],
) -> npt.NDArray[np.uint64]:
    """Step 3: the key holder's share ``local + sum (t + r) mod 2^64`` (a fresh array).

    Raises
    ------
    MalformedMessageError
        Wrong number of ciphertexts, or a ciphertext outside ``Z_{n^2}^*``.
    """
    if len(response) != blocks.n_ciphertexts:
        raise MalformedMessageError(
            f"the responder sent {len(response)} ciphertexts, {blocks.n_ciphertexts} expected"
        )
    check_ciphertexts(secret_key.public_key, response)
    out = np.array(local, dtype=np.uint64).reshape(-1)
    for g, ct in enumerate(response):
        idx = blocks.group_indices(g)
        words = low_words(secret_key.raw_decrypt(ct), idx.size, layout.width)
        np.add.at(out, idx, words)  # uint64 addition wraps: arithmetic modulo 2^64
    return out.reshape(local.shape)


# --- responder -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """The responder's message (masked, re-randomized ciphertexts) and its own share."""

    ciphertexts: list[Any]
    share: npt.NDArray[np.uint64]


def elementwise_blocks(
    key: PaillierPublicKey,
    plan: ElementwisePlan,
    request: Sequence[Any],
    a1: npt.NDArray[np.uint64],
    b1: npt.NDArray[np.uint64],
) -> list[Any]:
    """Encryptions of the cross terms ``a0 b1 + a1 b0``, one per output entry (deterministic)."""
    na = int(np.prod(plan.shape_a, dtype=np.int64))
    ea, eb = request[:na], request[na:]
    af, bf = a1.ravel().tolist(), b1.ravel().tolist()
    nsq = key.nsquare
    return [
        multi_pow((ea[i], eb[j]), (bf[j], af[i]), nsq)
        for i, j in zip(plan.ia.tolist(), plan.ib.tolist(), strict=True)
    ]


def matmul_blocks(
    key: PaillierPublicKey,
    plan: MatmulPlan,
    enc_a_cols: Sequence[Any],
    a1: npt.NDArray[np.uint64],
    enc_b_rows: Sequence[Any],
    b1: npt.NDArray[np.uint64],
) -> list[Any]:
    """Encryptions of the packed cross terms ``A0 @ B1`` and ``A1 @ B0`` (deterministic)."""
    nsq = key.nsquare
    r, c = len(plan.row_chunks), len(plan.col_chunks)
    b1l, a1l = b1.tolist(), a1.tolist()
    out = []
    for j in range(plan.n):
        exps = [b1l[t][j] for t in range(plan.k)]
        for ch in range(r):
            out.append(multi_pow([enc_a_cols[t * r + ch] for t in range(plan.k)], exps, nsq))
    for i in range(plan.m):
        exps = a1l[i]
        for ch in range(c):
            out.append(multi_pow([enc_b_rows[t * c + ch] for t in range(plan.k)], exps, nsq))
    return out


def combine(
    key: PaillierPublicKey, blocks: BlockPlan, layout: SlotLayout, cts: Sequence[Any]
) -> list[Any]:
    """Pack the block ciphertexts of each group into one (Horner; deterministic)."""
    return [
        horner([cts[b] for b in group], [blocks.indices[b].size for b in group],
               layout.width, key.nsquare)
        for group in blocks.groups
    ]


def _mask(
    key: PaillierPublicKey,
    blocks: BlockPlan,
    layout: SlotLayout,
    packed: Sequence[Any],
    share: npt.NDArray[np.uint64],
) -> Response:
    """Step 2, last part: integer masks, re-randomization, and the responder's share."""
    bound = 1 << (layout.width - 1)  # t < 2^(width - 1 - sigma): sigma bits of slack
    nsq = key.nsquare
    masked = []
    flat = share.reshape(-1)
    for g, ct in enumerate(packed):
        idx = blocks.group_indices(g)
        masks = [secrets.randbelow(bound) for _ in range(idx.size)]
        masked.append(ct * trivial(key, layout.pack(masks)) % nsq)
        words = np.array([m & _MAX64 for m in masks], dtype=np.uint64)
        np.subtract.at(flat, idx, words)
    # A fresh r^n on every ciphertext: the key holder sees fresh encryptions of t + r.
    return Response(rerandomize(key, masked), share)


def _check_request(key: PaillierPublicKey, request: Sequence[Any], expected: int) -> None:
    if len(request) != expected:
        raise MalformedMessageError(
            f"the key holder sent {len(request)} ciphertexts, {expected} expected"
        )
    check_ciphertexts(key, request)


def elementwise_respond(
    key: PaillierPublicKey,
    plan: ElementwisePlan,
    request: Sequence[Any],
    a1: npt.NDArray[np.uint64],
    b1: npt.NDArray[np.uint64],
) -> Response:
    """Step 2 (elementwise): masked packed cross terms, and ``a1 * b1 - r`` as the share."""
    _check_request(key, request, plan.request_count)
    cts = combine(key, plan.blocks, plan.layout, elementwise_blocks(key, plan, request, a1, b1))
    share = np.array(np.broadcast_to(np.multiply(a1, b1), plan.shape), dtype=np.uint64)
    return _mask(key, plan.blocks, plan.layout, cts, share)


def matmul_respond(
    key: PaillierPublicKey,
    plan: MatmulPlan,
    enc_a_cols: Sequence[Any],
    a1: npt.NDArray[np.uint64],
    enc_b_rows: Sequence[Any],
    b1: npt.NDArray[np.uint64],
) -> Response:
    """Step 2 (matrix): masked packed cross terms, and ``A1 @ B1 - r`` as the share."""
    na, nb = plan.request_counts
    _check_request(key, enc_a_cols, na)
    _check_request(key, enc_b_rows, nb)
    if a1.shape != (plan.m, plan.k) or b1.shape != (plan.k, plan.n):
        raise UnsupportedOperationError(
            f"matrix triple shapes {a1.shape} @ {b1.shape} do not match the plan "
            f"({plan.m}x{plan.k} @ {plan.k}x{plan.n})"
        )
    blocks = matmul_blocks(key, plan, enc_a_cols, a1, enc_b_rows, b1)
    cts = combine(key, plan.blocks, plan.layout, blocks)
    share = np.asarray(ring_matmul(a1, b1, 64), dtype=np.uint64).reshape(plan.m, plan.n).copy()
    return _mask(key, plan.blocks, plan.layout, cts, share)
