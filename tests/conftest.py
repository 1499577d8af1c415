from __future__ import annotations

import pytest
from harness import HARNESSES, Harness


@pytest.fixture(scope="module", params=sorted(HARNESSES))
def backend(request: pytest.FixtureRequest) -> Harness:
    """Each registered backend in turn, with its key material (module-scoped: contexts are slow)."""
    return HARNESSES[request.param]()
