"""Paillier key-size floor and labels (NIST SP 800-57 Pt. 1 Table 2)."""

from __future__ import annotations

import pytest

from securecomp.errors import InsecureParameterError, ParameterError
from securecomp.params import (
    DEFAULT_PAILLIER_BITS,
    MIN_PAILLIER_BITS,
    SMALL_TEST_PAILLIER_BITS,
    InsecureParametersWarning,
    check_paillier_key_bits,
    insecure_test_parameters,
)


def test_defaults() -> None:
    assert DEFAULT_PAILLIER_BITS == 3072
    assert MIN_PAILLIER_BITS == 2048
    label = check_paillier_key_bits(DEFAULT_PAILLIER_BITS)
    assert label.bits == 128 and not label.insecure
    assert "128-bit" in str(label) and "NIST" in str(label)


@pytest.mark.parametrize(
    "bits,level",
    [(2048, 112), (2050, 112), (3072, 128), (4096, 128), (7680, 192), (15360, 256), (16384, 256)],
)
def test_labels(bits: int, level: int) -> None:
    label = check_paillier_key_bits(bits)
    assert label.bits == level
    assert not label.insecure


@pytest.mark.parametrize("bits", [2046, 1024, 512])
def test_below_the_floor_is_refused(bits: int) -> None:
    with pytest.raises(InsecureParameterError, match="2048-bit floor"):
        check_paillier_key_bits(bits)


def test_below_the_floor_inside_the_opt_in_is_labelled_insecure() -> None:
    with pytest.warns(InsecureParametersWarning), insecure_test_parameters():
        small = check_paillier_key_bits(SMALL_TEST_PAILLIER_BITS)
        legacy = check_paillier_key_bits(1024)
    assert small.insecure and small.bits == 0
    assert legacy.insecure and legacy.bits == 80
    assert "INSECURE" in str(small)
    # Back outside: refused again.
    with pytest.raises(InsecureParameterError):
        check_paillier_key_bits(SMALL_TEST_PAILLIER_BITS)


@pytest.mark.parametrize(
    "bits,match",
    [
        (3073, "even"),
        (3072.0, "int"),
        ("3072", "int"),
        (True, "int"),
        (16386, "beyond"),
        (64, "too small"),
    ],
)
def test_malformed_sizes(bits: object, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        check_paillier_key_bits(bits)  # type: ignore[arg-type]
    # ... even inside the opt-in: these are not about security.
    with (
        pytest.warns(InsecureParametersWarning),
        insecure_test_parameters(),
        pytest.raises(ParameterError, match=match),
    ):
        check_paillier_key_bits(bits)  # type: ignore[arg-type]
