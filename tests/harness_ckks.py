"""The CKKS harness for the shared backend tests (`tests/harness.py`).

Tensors are protected in the library's default layouts (1-d ``vector``, 2-d ``column``)
under the default secure parameters (N = 8192, [60, 40, 40, 60], scale 2^40).
"""

from __future__ import annotations

from harness import Harness

from securecomp.he.ckks import COLUMN, VECTOR, ckks_keygen
from securecomp.params import DEFAULT_CKKS_PARAMETERS, predicted_error
from securecomp.tensor import Op

#: The planned precision of the shared tests' workload: depth 2 on inputs |x| <= 8
#: (the planner's heuristic bound at a 2^-40 per-slot failure probability).
CKKS_ATOL = predicted_error(DEFAULT_CKKS_PARAMETERS, 2, 8.0)


def ckks_harness() -> Harness:
    """Key holder's backend with Galois keys, and an independent key for mixing tests."""
    backend, key = ckks_keygen(galois_keys=True)
    other, _ = ckks_keygen()
    # ``X @ Y`` with both factors column-packed is not supported (the factors sit in slots
    # that would need permuting; X @ w takes w in layout 'element'), so MATMUL is left out.
    ops = (backend.capabilities(VECTOR) & backend.capabilities(COLUMN)) - {Op.MATMUL}
    return Harness(
        name="ckks",
        protect=backend.encrypt,
        open=lambda t: t.decrypt(key),
        protect_other_key=other.encrypt,
        atol=CKKS_ATOL,
        ops=frozenset(ops),
    )
