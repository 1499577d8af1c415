from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import HARNESSES, Harness
from harness_mpc import mpc_harnesses

# Registered here rather than in harness.py: harness_mpc imports `Harness` from it, and the
# fixture below must see every harness when its parameters are computed.
HARNESSES.update(mpc_harnesses())


@pytest.fixture(scope="module", params=sorted(HARNESSES))
def backend(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Each registered backend in turn, with its key material (module-scoped: contexts are slow)."""
    harness = HARNESSES[request.param]()
    try:
        yield harness
    finally:
        harness.close()
