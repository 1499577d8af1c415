"""``simulate=True``: the CKKS arithmetic of training and inference, in plaintext.

`SimulatedCKKSBackend` is a `SecureTensor` backend over float64 arrays that behaves like
the CKKS backend under one planned parameter set, so the same model code
(`securecomp.models.gd`) runs on it unchanged:

* **levels**: every product consumes a level as on CKKS (ciphertext products, products by
  non-integer plaintexts, matrix products, ``ceil(log2(degree + 1))`` for ``polyval``);
  past the chain it raises `DepthExhaustedError`, as the real backend does;
* **quantization and drift of the real primes**: plaintext constants are encoded as
  ``round(c · p_l / 2^s · 2^s)`` with ``p_l`` the prime the next rescale divides by
  (`securecomp.params.scale_drift`), i.e. with the drift correction of the real backend
  and its rounding; the leaf coefficients of ``polyval`` go through the same chain of
  drift and gain corrections as in `securecomp.he.ckks.polyval`;
* **noise**: Laplace errors (the slot error law of `securecomp.params.noise`) with the
  standard deviations of `CKKSNoiseModel` for fresh encryptions, rescales,
  relinearizations, plaintext encodings and each rotation of a slot sum;
* **wrap-around**: a value beyond the decryptable range of its level decrypts modulo it.

Tolerance (tested): a simulated training run and the encrypted run with the same
parameters, data and hyper-parameters agree within 1e-3 on every weight, and their
predictions on at least 99% of rows. The simulation protects nothing: it is a planning
and testing tool. Its noise comes from a numpy generator (``rng=``), never from a CSPRNG:
no secret depends on it.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from securecomp.errors import DepthExhaustedError, EncodingOverflowError, KeyMismatchError
from securecomp.he.ckks import polyval_depth
from securecomp.params import CKKSNoiseModel, CKKSParameters, ErrorBound, scale_drift
from securecomp.tensor import (
    Backend,
    Implementation,
    Op,
    PlainBackend,
    PlainKey,
    SecureTensor,
    as_plaintext,
)

__all__ = ["SimulatedCKKSBackend", "SimulationKey"]

#: Integer scalars up to this magnitude multiply by additions on CKKS (no level, exact).
_SMALL_INT = 64


@dataclass(frozen=True)
class SimulationKey:
    """The "key" of a simulated backend: an identifier, so mismatches stay testable."""

    key_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))


def _split(i: int) -> tuple[int, int]:
    # The decomposition of securecomp.he.ckks.polyval: i = left + right, right a power.
    a = i.bit_length() - 1
    r = i - (1 << a)
    return (i // 2, i // 2) if r == 0 else (r, 1 << a)


class SimulatedCKKSBackend(Backend):
    """Float64 arrays with CKKS levels, quantization, drift and noise (see module docstring).

    Parameters
    ----------
    params : CKKSParameters
        The planned parameters (depth, scale and primes are taken from them).
    rng : numpy.random.Generator
        Source of the simulated noise (not secret).
    noise : bool
        False gives the quantization and levels alone.
    """

    name = "ckks-sim"

    def __init__(
        self, params: CKKSParameters, *, rng: np.random.Generator, noise: bool = True
    ) -> None:
        self.params = params
        self.depth = params.depth
        self.rng = rng
        self.noise = noise
        self.key = SimulationKey()
        self._fp = hashlib.sha256(
            b"securecomp/ckks-sim/v1|" + params.fingerprint + self.key.key_id
        ).digest()
        self._delta = math.ldexp(1.0, params.scale_bits)
        self._factors = scale_drift(params).level_factors
        model = CKKSNoiseModel(params)
        zero = ErrorBound(0.0, 0.0, 0.0, 0.0, 0)
        self._fresh_std = model.fresh(0.0).std
        self._rescale_std = model.multiply_plain(zero, 0.0).std
        one = ErrorBound(1.0, 0.0, 0.0, 0.0, 0)
        enc = model.multiply_plain(one, 0.0).std
        self._encode_std = math.sqrt(max(enc**2 - self._rescale_std**2, 0.0)) / self._factors[0]
        self._ks_std = []
        for lvl in range(self.depth):
            z = ErrorBound(0.0, 0.0, 0.0, 0.0, lvl)
            s = model.multiply(z, z).std
            self._ks_std.append(
                math.sqrt(max(s**2 - self._rescale_std**2, 0.0)) / self._factors[lvl]
            )
        self.capacity = math.ldexp(1.0, params.coeff_mod_bit_sizes[0] - params.scale_bits - 2)
        self._inner = PlainBackend(PlainKey())
        self._table = self._build()

    @property
    def fingerprint(self) -> bytes:
        return self._fp

    # --- internals --------------------------------------------------------------------------

    def _laplace(self, shape: tuple[int, ...], std: float) -> NDArray[np.float64] | float:
        if not self.noise or std == 0.0:
            return 0.0
        return self.rng.laplace(0.0, std / math.sqrt(2.0), size=shape)

    def _next(self, level: int, what: str) -> int:
        if level >= self.depth:
            raise DepthExhaustedError(
                f"{what} needs a rescale but its operand is at level {level} of the planned "
                f"depth {self.depth} (simulated chain {list(self.params.coeff_mod_bit_sizes)})"
            )
        return level + 1

    def _correction(self, level: int) -> float:
        return 1.0 / self._factors[level]

    def _quantize(self, c: NDArray[np.float64], level: int, gain: float) -> NDArray[np.float64]:
        """A plaintext factor as the real backend encodes it (drift folded in, rounded)."""
        k = self._correction(level) / gain
        return np.rint(c * k * self._delta) / (k * self._delta)

    def _rotation_std(self, level: int, rotations: int) -> float:
        lvl = min(level, self.depth - 1)
        return math.sqrt(rotations) * self._ks_std[lvl] * self._delta

    def wrap(
        self, values: NDArray[np.float64], level: int, gain: float = 1.0, transposed: bool = False
    ) -> SecureTensor:
        arr = np.array(values, dtype=np.float64)
        arr.flags.writeable = False
        meta = {"level": level, "gain": gain, "transposed": transposed}
        return SecureTensor._wrap(self, arr, arr.shape, layout="sim", meta=meta)

    # --- encryption --------------------------------------------------------------------------

    def encrypt(self, values: ArrayLike, *, layout: str | None = None) -> SecureTensor:
        """Simulated fresh encryption: the capacity check, then fresh-ciphertext noise."""
        arr = np.asarray(as_plaintext(values), dtype=np.float64)
        if arr.size and float(np.max(np.abs(arr))) >= self.capacity:
            raise EncodingOverflowError(
                f"a value of magnitude {float(np.max(np.abs(arr))):.3g} exceeds "
                f"{self.capacity:.3g}, the largest the first prime decrypts (simulated)"
            )
        return self.wrap(arr + self._laplace(arr.shape, self._fresh_std), 0)

    def decrypt(self, tensor: SecureTensor, key: Any) -> NDArray[np.float64]:
        if not isinstance(key, SimulationKey) or key.key_id != self.key.key_id:
            raise KeyMismatchError("this simulation key did not produce the tensor")
        level = int(tensor.meta["level"])
        bits = self.params.coeff_mod_bit_sizes[0] + (self.depth - level) * self.params.scale_bits
        modulus = math.ldexp(1.0, bits - self.params.scale_bits)
        out = np.array(tensor.payload, dtype=np.float64)
        # Beyond half the modulus a CKKS decryption wraps around: so does the simulation.
        return out - modulus * np.rint(out / modulus)

    # --- operations --------------------------------------------------------------------------

    def table(self, layout: str) -> Mapping[Op, Implementation]:
        return self._table

    def _build(self) -> dict[Op, Implementation]:
        inner = self._inner.table("dense")

        def meta(t: Any) -> tuple[int, float, bool]:
            if isinstance(t, SecureTensor):
                m = t.meta
                return int(m["level"]), float(m["gain"]), bool(m["transposed"])
            return 0, 1.0, False

        def plain_values(t: SecureTensor) -> NDArray[np.float64]:
            return np.asarray(t.payload)

        def run(op: Op, *args: Any, **kwargs: Any) -> NDArray[np.float64]:
            return np.asarray(inner[op](*args, **kwargs).payload)

        def additive(op: Op) -> Implementation:
            def impl(a: SecureTensor, b: Any) -> SecureTensor:
                la, ga, ta = meta(a)
                lb, gb, _ = meta(b)
                gain = ga if ga == gb or not isinstance(b, SecureTensor) else 0.5 * (ga + gb)
                return self.wrap(run(op, a, b), max(la, lb), gain, ta)

            return impl

        def neg(a: SecureTensor) -> SecureTensor:
            la, ga, ta = meta(a)
            return self.wrap(-plain_values(a), la, ga, ta)

        def mul(a: SecureTensor, b: SecureTensor) -> SecureTensor:
            (la, ga, ta), (lb, gb, _) = meta(a), meta(b)
            top = max(la, lb)
            level = self._next(top, "a * b")
            out = run(Op.MUL, a, b)
            std = math.hypot(self._factors[top] * self._ks_std[top], self._rescale_std)
            gain = ga * gb * self._factors[top]
            return self.wrap(out + self._laplace(out.shape, std), level, gain, ta)

        def mul_plain(a: SecureTensor, p: NDArray[Any]) -> SecureTensor:
            la, ga, ta = meta(a)
            c = np.asarray(p, dtype=np.float64)
            x = plain_values(a)
            if c.size == 1:
                s = float(c.reshape(-1)[0])
                if s == 0.0:
                    z = np.zeros(np.broadcast_shapes(x.shape, c.shape))
                    return self.wrap(z + self._laplace(z.shape, self._fresh_std), 0, 1.0, ta)
                if s.is_integer() and abs(s) <= _SMALL_INT:
                    return self.wrap(x * s, la, ga, ta)
            level = self._next(la, "a * plaintext")
            out = x * self._quantize(c, la, ga)
            std = (
                math.hypot(
                    self._encode_std * float(np.max(np.abs(x), initial=0.0)), self._rescale_std
                )
                if c.size > 1
                else self._rescale_std
            )
            return self.wrap(out + self._laplace(out.shape, std), level, 1.0, ta)

        def rotations(contracted: int) -> int:
            return max(1, math.ceil(math.log2(max(contracted, 2))))

        def matmul(a: SecureTensor, b: SecureTensor) -> SecureTensor:
            (la, ga, ta), (lb, gb, _) = meta(a), meta(b)
            out = run(Op.MATMUL, a, b)
            if a.ndim == 2 and b.ndim == 1 and not ta:
                # X @ w with w encrypted: replicate each w_j over the slots, then multiply.
                rep = self._next(lb, "X @ w (encrypted w)")
                top = max(la, rep)
                level = self._next(top, "X @ w (encrypted w)")
                std = math.hypot(self._rotation_std(lb, rotations(a.shape[0])), self._ks_std[top])
                gain = ga * gb * self._factors[lb] * self._factors[top]
            else:
                top = max(la, lb)
                level = self._next(top, "a @ b")
                std = math.hypot(self._ks_std[top], self._rescale_std)
                if (ta and a.ndim == 2) or (a.ndim == 1 and b.ndim == 2):
                    std = math.hypot(std, self._rotation_std(level, rotations(a.shape[-1])))
                gain = ga * gb * self._factors[top]
            return self.wrap(out + self._laplace(out.shape, std), level, gain, False)

        def matmul_plain(a: SecureTensor, w: NDArray[Any]) -> SecureTensor:
            la, ga, ta = meta(a)
            level = self._next(la, "a @ plaintext")
            out = plain_values(a) @ self._quantize(np.asarray(w, dtype=np.float64), la, ga)
            terms = a.shape[-1]
            std = math.sqrt(terms) * self._rescale_std
            if ta:
                std = math.hypot(std, self._rotation_std(level, rotations(terms)))
            return self.wrap(out + self._laplace(out.shape, std), level, 1.0, False)

        def rmatmul_plain(a: SecureTensor, v: NDArray[Any]) -> SecureTensor:
            la, ga, ta = meta(a)
            level = self._next(la, "plaintext @ a")
            out = self._quantize(np.asarray(v, dtype=np.float64), la, ga) @ plain_values(a)
            std = math.hypot(self._rescale_std, 0.0)
            if not ta:
                std = math.hypot(std, self._rotation_std(level, rotations(a.shape[0])))
            return self.wrap(out + self._laplace(out.shape, std), level, 1.0, False)

        def total(a: SecureTensor, axis: int | None = None) -> SecureTensor:
            la, ga, ta = meta(a)
            out = np.asarray(np.sum(plain_values(a), axis=axis))
            slot_axis = 1 if ta else 0
            across = a.ndim == 2 and axis is not None and axis != slot_axis
            std = 0.0 if across else self._rotation_std(la, rotations(a.shape[slot_axis]))
            return self.wrap(out + self._laplace(out.shape, std), la, ga, False)

        def transpose(a: SecureTensor) -> SecureTensor:
            la, ga, ta = meta(a)
            return self.wrap(plain_values(a).T, la, ga, not ta)

        def structural(op: Op) -> Implementation:
            def impl(a: SecureTensor, *args: Any, **kwargs: Any) -> SecureTensor:
                la, ga, ta = meta(a)
                return self.wrap(run(op, a, *args, **kwargs), la, ga, ta)

            return impl

        def polyval(a: SecureTensor, coeffs: NDArray[np.float64]) -> SecureTensor:
            la, ga, ta = meta(a)
            c = [float(v) for v in coeffs]
            while len(c) > 1 and c[-1] == 0.0:
                c.pop()
            degree = len(c) - 1
            x = plain_values(a)
            if degree < 1:
                z = np.full(x.shape, c[0])
                return self.wrap(z + self._laplace(z.shape, self._fresh_std), 0, 1.0, ta)
            level = la + polyval_depth(degree)
            if level > self.depth:
                raise DepthExhaustedError(
                    f"a degree-{degree} polynomial needs {polyval_depth(degree)} levels but its "
                    f"operand is at level {la} of the planned depth {self.depth}"
                )
            eff = self._poly_coefficients(c, la, ga)
            out = np.zeros_like(x)
            for ci in reversed(eff):
                out = out * x + ci
            products = sum(1 for ci in c[1:] if ci != 0.0) + max(0, degree.bit_length() - 1)
            std = math.sqrt(products) * math.hypot(self._ks_std[la], self._rescale_std)
            std *= max(1.0, float(np.max(np.abs(out), initial=0.0)))
            return self.wrap(out + self._laplace(out.shape, std), level, 1.0, ta)

        return {
            Op.ADD: additive(Op.ADD),
            Op.ADD_PLAIN: additive(Op.ADD_PLAIN),
            Op.SUB: additive(Op.SUB),
            Op.SUB_PLAIN: additive(Op.SUB_PLAIN),
            Op.RSUB_PLAIN: additive(Op.RSUB_PLAIN),
            Op.NEG: neg,
            Op.MUL: mul,
            Op.MUL_PLAIN: mul_plain,
            Op.MATMUL: matmul,
            Op.MATMUL_PLAIN: matmul_plain,
            Op.RMATMUL_PLAIN: rmatmul_plain,
            Op.DOT: matmul,
            Op.DOT_PLAIN: matmul_plain,
            Op.SUM: total,
            Op.GETITEM: structural(Op.GETITEM),
            Op.RESHAPE: structural(Op.RESHAPE),
            Op.TRANSPOSE: transpose,
            Op.POLYVAL: polyval,
        }

    def _poly_coefficients(self, c: list[float], l0: int, g0: float) -> list[float]:
        """Each coefficient as the real evaluator realises it (its leaf constant rounded)."""
        degree = len(c) - 1
        top = 1 << (degree.bit_length() - 1)
        levels, gains = {1: l0}, {1: g0}
        p = 1
        while p * 2 <= top:
            levels[2 * p] = levels[p] + 1
            gains[2 * p] = gains[p] ** 2 * self._factors[levels[p]]
            p *= 2

        def term_level(i: int) -> int:
            if i == 1:
                return l0 + 1
            left, right = _split(i)
            return max(term_level(left), levels[right]) + 1

        def leaf(value: float, i: int) -> float:
            if i == 1:
                return value
            left, right = _split(i)
            t = max(term_level(left), levels[right])
            return leaf(value / (gains[right] * self._factors[t]), left)

        out = [c[0]]
        for i, ci in enumerate(c[1:], start=1):
            if ci == 0.0:
                out.append(0.0)
                continue
            encoded = leaf(ci, i) * self._correction(l0) / g0
            rounded = round(encoded * self._delta) / self._delta
            out.append(ci * rounded / encoded)
        return out
