"""CKKSParameters (derived facts, fingerprint) and validate_ckks on good and bad chains."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from securecomp.errors import InsecureParameterError, ParameterError
from securecomp.params import (
    DEFAULT_CKKS_PARAMETERS,
    CKKSParameters,
    InsecureParametersWarning,
    insecure_test_parameters,
    seal_primes,
    validate_ckks,
)

DRIFTY_26 = CKKSParameters(8192, (31, 26, 26, 26, 26, 26, 26, 31), 26)
DRIFTY_21 = CKKSParameters(8192, (40, 21, 21, 21, 21, 21, 21, 40), 21)


def test_derived_properties() -> None:
    p = CKKSParameters(8192, (60, 40, 40, 60), 40)
    assert p.depth == 2
    assert p.slot_count == 4096
    assert p.total_log_q == 200
    assert p.scale == 2.0**40
    assert p.security_bits == 128
    assert not p.security_label.insecure
    assert p.primes == seal_primes(8192, (60, 40, 40, 60))
    assert p == DEFAULT_CKKS_PARAMETERS
    assert CKKSParameters(8192, (40, 40), 30).depth == 0
    assert CKKSParameters(4096, (25, 25), 20).security_bits == 256  # 50 <= 58
    over = CKKSParameters(4096, (60, 40, 60), 40)
    assert over.security_bits == 0 and over.security_label.insecure


def test_fields_are_normalized_and_frozen() -> None:
    p = CKKSParameters(np.int64(8192), [60, np.int32(40), 40, 60], np.int64(40))  # type: ignore[arg-type]
    assert type(p.poly_modulus_degree) is int and type(p.scale_bits) is int
    assert p.coeff_mod_bit_sizes == (60, 40, 40, 60)
    assert all(type(b) is int for b in p.coeff_mod_bit_sizes)
    assert hash(p) == hash(DEFAULT_CKKS_PARAMETERS)
    with pytest.raises(AttributeError):
        p.scale_bits = 30  # type: ignore[misc]


def test_fingerprint_is_stable_and_distinguishes() -> None:
    p = CKKSParameters(8192, (60, 40, 40, 60), 40)
    want = hashlib.sha256(b"securecomp/ckks-parameters/v1;N=8192;q=60,40,40,60;scale=40")
    assert p.fingerprint == want.digest()
    assert p.fingerprint_hex == want.hexdigest()
    others = [
        CKKSParameters(16384, (60, 40, 40, 60), 40),
        CKKSParameters(8192, (60, 40, 60), 40),
        CKKSParameters(8192, (60, 40, 40, 60), 39),
        CKKSParameters(8192, (60, 40, 40, 59), 40),
    ]
    assert len({p.fingerprint, *(o.fingerprint for o in others)}) == 5


@pytest.mark.parametrize(
    "args,match",
    [
        ((1000, (60, 40, 60), 40), "power of two"),
        ((0, (60, 40, 60), 40), "power of two"),
        ((8192, (60,), 40), "at least two primes"),
        ((8192, (60, 0, 60), 40), "positive"),
        ((8192, (60, 40.5, 60), 40), "must be an int"),
        ((8192, (60, True, 60), 40), "bool"),
        ((8192, (60, 40, 60), 0), "at least 1"),
        ((8192, (60, 40, 60), 40.0), "must be an int"),
        ((8192, 60, 40), "sequence of ints"),
    ],
)
def test_malformed_parameters_are_refused(args: tuple, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        CKKSParameters(*args)


@pytest.mark.parametrize(
    "params",
    [
        CKKSParameters(8192, (60, 40, 40, 60), 40),
        CKKSParameters(16384, (60, 40, 40, 40, 40, 40, 40, 60), 40),
        CKKSParameters(4096, (40, 20, 40), 20),
        CKKSParameters(2048, (27, 27), 20),
        DRIFTY_26,  # 2.8% over 6 levels: within the 5% default
    ],
)
def test_good_chains_pass(params: CKKSParameters) -> None:
    assert validate_ckks(params) is params


def test_non_power_of_two_n() -> None:
    with pytest.raises(ParameterError, match="power of two"):
        validate_ckks(CKKSParameters(6000, (60, 40, 60), 40))


def test_n_too_large_for_seal() -> None:
    with pytest.raises(ParameterError, match="larger than SEAL"):
        validate_ckks(CKKSParameters(65536, (60, 40, 60), 40))


def test_n_below_the_table_is_insecure() -> None:
    with pytest.raises(InsecureParameterError, match="below 1024"):
        validate_ckks(CKKSParameters(512, (20, 20), 10))


def test_prime_over_60_bits() -> None:
    with pytest.raises(ParameterError, match="2 to 60 bits"):
        validate_ckks(CKKSParameters(16384, (61, 40, 61), 40))


def test_primes_must_exist() -> None:
    with pytest.raises(ParameterError, match="cannot find"):
        validate_ckks(CKKSParameters(8192, (30, 15, 30), 15))


def test_over_the_table_is_insecure_and_names_the_fix() -> None:
    with pytest.raises(InsecureParameterError, match=r"219 bits exceeds 218.*N = 8192"):
        validate_ckks(CKKSParameters(8192, (59, 40, 40, 40, 40), 40))
    with pytest.raises(InsecureParameterError):  # fine at 128-bit, not at 192-bit
        validate_ckks(DEFAULT_CKKS_PARAMETERS, security_bits=192)


def test_over_the_table_allowed_inside_the_opt_in() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureParametersWarning)
        with insecure_test_parameters():
            validate_ckks(CKKSParameters(4096, (60, 40, 60), 40))


def test_first_prime_must_exceed_the_scale() -> None:
    with pytest.raises(ParameterError, match="first prime has 40 bits"):
        validate_ckks(CKKSParameters(8192, (40, 40, 40, 60), 40))


@pytest.mark.parametrize("middle,word", [(30, "smaller"), (50, "larger"), (41, "larger")])
def test_middle_primes_must_match_the_scale(middle: int, word: str) -> None:
    with pytest.raises(ParameterError, match=f"middle prime #2 has {middle} bits, {word}"):
        validate_ckks(CKKSParameters(8192, (60, 40, middle, 60), 40))


def test_drifting_chain_is_refused() -> None:
    with pytest.raises(ParameterError, match="scale drift"):
        validate_ckks(DRIFTY_21)
    # Only the depth actually planned counts: one 21-bit rescale drifts 17% > 5% ...
    with pytest.raises(ParameterError, match="scale drift"):
        validate_ckks(DRIFTY_21, depth=1)
    # ... but no rescale at all drifts nothing.
    validate_ckks(DRIFTY_21, depth=0)
    # The tolerance is the caller's: 2.8% fails at 1%, passes at 5%.
    with pytest.raises(ParameterError, match="scale drift"):
        validate_ckks(DRIFTY_26, drift_tolerance=0.01)
    validate_ckks(DRIFTY_26, depth=3, drift_tolerance=0.01)  # 0.49% over 3 levels


def test_depth_must_fit_the_chain() -> None:
    with pytest.raises(ParameterError, match="depth 3 needs 3 rescales"):
        validate_ckks(DEFAULT_CKKS_PARAMETERS, depth=3)
    with pytest.raises(ParameterError, match="non-negative"):
        validate_ckks(DEFAULT_CKKS_PARAMETERS, depth=-1)


@pytest.mark.parametrize("tol", [-0.1, float("nan"), float("inf"), "0.05"])
def test_bad_tolerance(tol: object) -> None:
    with pytest.raises(ParameterError, match="drift_tolerance"):
        validate_ckks(DEFAULT_CKKS_PARAMETERS, drift_tolerance=tol)  # type: ignore[arg-type]


def test_bad_security_level() -> None:
    with pytest.raises(ParameterError, match="security_bits"):
        validate_ckks(DEFAULT_CKKS_PARAMETERS, security_bits=100)
