"""The shared SecureTensor tests (tests/tensor/test_tensor_shared.py) on the MPC backend.

They run unchanged against the numpy oracle, for 2 and 3 parties with dealer truncation
and for 2 parties with SecureML local truncation, through the lock-step simulation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from harness import Harness
from harness_mpc import mpc_harness

_PATH = Path(__file__).resolve().parents[1] / "tensor" / "test_tensor_shared.py"
_spec = importlib.util.spec_from_file_location("_mpc_shared_tensor_tests", _PATH)
assert _spec is not None and _spec.loader is not None
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)

for _name in dir(_shared):
    if _name.startswith("test_"):
        globals()[_name] = getattr(_shared, _name)


@pytest.fixture(scope="module", params=["2p-dealer", "3p-dealer", "2p-local"])
def backend(request: pytest.FixtureRequest) -> Harness:
    parties, truncation = {
        "2p-dealer": (2, "dealer"),
        "3p-dealer": (3, "dealer"),
        "2p-local": (2, "local"),
    }[request.param]
    return mpc_harness(parties, truncation)
