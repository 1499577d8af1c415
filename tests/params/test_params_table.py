"""The HomomorphicEncryption.org table as data (values from ePrint 2019/939 / SEAL hestdparms.h)."""

from __future__ import annotations

import itertools

import pytest

from securecomp.errors import ParameterError
from securecomp.params import (
    HE_STANDARD_MAX_LOG_Q,
    HE_STANDARD_POLY_DEGREES,
    SECURITY_LEVELS,
    ckks_security_bits,
    max_log_q,
)


def test_128_bit_row_is_the_standard() -> None:
    expected = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
    assert dict(HE_STANDARD_MAX_LOG_Q[128]) == expected
    for n, bits in expected.items():
        assert max_log_q(n) == bits


def test_higher_rows_are_seal_values_and_monotone() -> None:
    assert dict(HE_STANDARD_MAX_LOG_Q[192]) == dict(
        zip(HE_STANDARD_POLY_DEGREES, (19, 37, 75, 152, 305, 611), strict=True)
    )
    assert dict(HE_STANDARD_MAX_LOG_Q[256]) == dict(
        zip(HE_STANDARD_POLY_DEGREES, (14, 29, 58, 118, 237, 476), strict=True)
    )
    assert SECURITY_LEVELS == (128, 192, 256)
    for n in HE_STANDARD_POLY_DEGREES:
        # More security allows less modulus; a larger ring allows more (about 2x per doubling).
        assert max_log_q(n, 128) > max_log_q(n, 192) > max_log_q(n, 256)
    for a, b in itertools.pairwise(HE_STANDARD_POLY_DEGREES):
        assert 1.9 < max_log_q(b) / max_log_q(a) < 2.1


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        HE_STANDARD_MAX_LOG_Q[128][8192] = 300  # type: ignore[index]


def test_security_bits_label() -> None:
    assert ckks_security_bits(8192, 218) == 128
    assert ckks_security_bits(8192, 219) == 0
    assert ckks_security_bits(8192, 152) == 192
    assert ckks_security_bits(8192, 118) == 256
    assert ckks_security_bits(512, 10) == 0  # not tabulated: no claim


@pytest.mark.parametrize("n,sec", [(512, 128), (65536, 128), (8192, 100), (3000, 128)])
def test_max_log_q_rejects_unknown_entries(n: int, sec: int) -> None:
    with pytest.raises(ParameterError, match=r"table|row"):
        max_log_q(n, sec)
