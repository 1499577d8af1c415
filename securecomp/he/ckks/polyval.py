"""Depth-optimal evaluation of ``p(x) = sum_i c_i x^i`` on CKKS ciphertexts.

With TenSEAL every product, by a ciphertext or by a non-integer plaintext, consumes one
rescale, so a degree-``d`` polynomial needs at least ``ceil(log2(d + 1))`` levels. This
evaluator reaches that bound for every degree:

1. powers ``x^(2^a)`` by repeated squaring (level ``a``);
2. each term ``c_i x^i`` with ``i = 2^a + r`` (``0 < r < 2^a``) as ``(c' x^r) * x^(2^a)``
   (for ``r = 0``: ``(c' x^(i/2)) * x^(i/2)``), recursively, the coefficient entering at
   the leaf as a plaintext product with ``x``; the term's level is
   ``ceil(log2(i + 1))`` (induction: ``max(ceil(log2(r + 1)), a) + 1``);
3. the terms are added (no level) and ``c_0`` is added as a plaintext.

Cost: ``floor(log2 d)`` squarings plus one ciphertext product per binary digit of each
term (``O(d log d)`` products; Paterson-Stockmeyer, SIAM J. Comput. 1973, needs fewer
products but one or two more levels, which is what runs out first at N = 8192).

Drift: because every level of every term is known before computing, each leaf coefficient
absorbs the exact scale drift of the products above it (`securecomp.params.drift`), so
every term, and the result, has gain 1: TenSEAL's scale reset leaves no bias.
A degree-1 polynomial with an integer slope up to `SMALL_INT` uses additions (no level).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from securecomp.errors import DepthExhaustedError
from securecomp.he.ckks.kernels import SMALL_INT, Ct, Kernel

__all__ = ["polyval_cts", "polyval_depth"]


def _split(i: int) -> tuple[int, int]:
    """``i = left + right`` with ``right`` a power of two held as a precomputed power."""
    a = i.bit_length() - 1
    r = i - (1 << a)
    if r == 0:
        return i // 2, i // 2
    return r, 1 << a


def polyval_depth(degree: int) -> int:
    """Levels consumed by a polynomial of this degree: ``ceil(log2(degree + 1))``."""
    return 0 if degree < 1 else math.ceil(math.log2(degree + 1))


class _Evaluator:
    def __init__(self, kernel: Kernel, level: int, gain: float, top_power: int) -> None:
        self.k = kernel
        self.l0 = level
        self.g0 = gain
        # level and gain of x^(2^a), identical for every ciphertext of the tensor
        self.levels = {1: level}
        self.gains = {1: gain}
        p = 1
        while p * 2 <= top_power:
            lvl = self.levels[p]
            self.levels[2 * p] = lvl + 1
            self.gains[2 * p] = self.gains[p] ** 2 * kernel.factor(lvl)
            p *= 2

    def term_level(self, i: int) -> int:
        if i == 1:
            return self.l0 + 1
        left, right = _split(i)
        return max(self.term_level(left), self.levels[right]) + 1

    def term(self, powers: dict[int, Ct], c: float, i: int) -> Ct:
        """``c x^i`` as a ciphertext of gain 1 at ``term_level(i)``."""
        if i == 1:
            return self.k.mul_plain(powers[1], self.l0, self.g0, c)
        left, right = _split(i)
        l_left = self.term_level(left)
        top = max(l_left, self.levels[right])
        # The product below multiplies by gain(x^right) and the drift of level `top`:
        # pre-divide the coefficient so that the term comes out with gain exactly 1.
        sub = self.term(powers, c / (self.gains[right] * self.k.factor(top)), left)
        return self.k.mul(sub, l_left, powers[right], self.levels[right])


def polyval_cts(
    kernel: Kernel, cts: tuple[Ct, ...], level: int, gain: float, coeffs: NDArray[np.float64]
) -> tuple[tuple[Ct, ...], int, float]:
    """Evaluate the polynomial on every ciphertext; returns ``(cts, level, gain)``.

    Raises
    ------
    DepthExhaustedError
        Before any product, when ``level + ceil(log2(degree + 1))`` exceeds the plan.
    """
    c = [float(v) for v in np.asarray(coeffs, dtype=np.float64).reshape(-1)]
    while len(c) > 1 and c[-1] == 0.0:
        c.pop()
    degree = len(c) - 1
    if degree == 0 or not any(c[1:]):
        # A constant: a fresh encryption of it (level 0), whatever x was.
        return tuple(kernel.encrypt([c[0]] * x.size()) for x in cts), 0, 1.0
    if degree == 1 and c[1].is_integer() and abs(c[1]) <= SMALL_INT:
        out = tuple(kernel.add_plain(kernel.int_mul(x, int(c[1])), c[0], gain) for x in cts)
        return out, level, gain
    top_power = 1 << (degree.bit_length() - 1)
    # Check before building the evaluator: it reads the rescale factor of every level it
    # will use, which does not exist past the end of the chain.
    if level + polyval_depth(degree) > kernel.depth:
        final = level + polyval_depth(degree)
    else:
        ev = _Evaluator(kernel, level, gain, top_power)
        final = max(ev.term_level(i) for i in range(1, degree + 1) if c[i] != 0.0)
    if final > kernel.depth:
        raise DepthExhaustedError(
            f"a degree-{degree} polynomial needs {polyval_depth(degree)} levels "
            f"(ceil(log2(degree + 1))) but its operand is at level {level} of the planned "
            f"depth {kernel.depth}; lower the degree, evaluate on fresher ciphertexts, or "
            "plan a longer chain (securecomp.params.plan_ckks)"
        )
    results: list[Ct] = []
    for x in cts:
        powers = {1: x}
        p = 1
        while p * 2 <= top_power:
            powers[2 * p] = kernel.mul(powers[p], ev.levels[p], powers[p], ev.levels[p])
            p *= 2
        acc, acc_level = None, 0
        for i in range(1, degree + 1):
            if c[i] == 0.0:
                continue
            t, t_level = ev.term(powers, c[i], i), ev.term_level(i)
            if acc is None:
                acc, acc_level = t, t_level
            else:
                acc = kernel.add(acc, acc_level, t, t_level)
                acc_level = max(acc_level, t_level)
        if c[0] != 0.0:
            acc = kernel.add_plain(acc, c[0], 1.0)
        results.append(acc)
    return tuple(results), final, 1.0
