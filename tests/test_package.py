"""The top-level package: light import, subpackages on attribute access."""

from __future__ import annotations

import subprocess
import sys

import pytest

import securecomp


def test_import_is_light() -> None:
    code = (
        "import sys, securecomp; "
        "heavy = [m for m in ('tenseal', 'sklearn', 'ray', 'phe') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", sorted(securecomp._SUBPACKAGES))
def test_subpackages_on_access(name: str) -> None:
    module = getattr(securecomp, name)
    assert module.__name__ == f"securecomp.{name}"
    assert name in dir(securecomp)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        securecomp.nonexistent
