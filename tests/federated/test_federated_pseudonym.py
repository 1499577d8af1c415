"""Pseudonym keys: HMAC-SHA256 against an independent implementation, key file handling."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC
from hypothesis import given
from hypothesis import strategies as st

from securecomp.errors import ParameterError
from securecomp.federated import PseudonymKey

DOMAIN = b"securecomp/consent/pseudonym/v1\x00"


def reference_pseudonym(key: bytes, user_id: str) -> str:
    mac = HMAC(key, hashes.SHA256())
    mac.update(DOMAIN + user_id.encode("utf-8"))
    return mac.finalize().hex()


@given(key=st.binary(min_size=32, max_size=32), user=st.text(min_size=1, max_size=50))
def test_pseudonym_is_hmac_sha256(key: bytes, user: str) -> None:
    assert PseudonymKey(key).pseudonym(user) == reference_pseudonym(key, user)


@given(a=st.text(min_size=1, max_size=20), b=st.text(min_size=1, max_size=20))
def test_pseudonyms_are_injective_and_key_dependent(a: str, b: str) -> None:
    k1, k2 = PseudonymKey(bytes(32)), PseudonymKey(bytes([1]) * 32)
    assert (k1.pseudonym(a) == k1.pseudonym(b)) == (a == b)
    assert k1.pseudonym(a) != k2.pseudonym(a)


def test_generate_save_load(tmp_path: Path) -> None:
    k = PseudonymKey.generate()
    assert k != PseudonymKey.generate()
    f = tmp_path / "k.key"
    k.save(f)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert len(f.read_bytes()) == 32
    assert PseudonymKey.load(f) == k
    assert PseudonymKey.load(f).key_id == k.key_id and len(k.key_id) == 16
    assert f.read_bytes().hex() not in repr(k) and k.key_id in repr(k)
    with pytest.raises(ParameterError, match="already exists"):
        PseudonymKey.generate().save(f)
    assert PseudonymKey.load(f) == k


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_load_refuses_keys_others_can_read(tmp_path: Path) -> None:
    f = tmp_path / "k.key"
    PseudonymKey.generate().save(f)
    f.chmod(0o644)
    with pytest.raises(ParameterError, match="chmod 600"):
        PseudonymKey.load(f)


def test_load_refuses_wrong_files(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="cannot read"):
        PseudonymKey.load(tmp_path / "missing")
    short = tmp_path / "short"
    short.write_bytes(b"x" * 31)
    short.chmod(0o600)
    with pytest.raises(ParameterError, match="31 bytes"):
        PseudonymKey.load(short)
    with pytest.raises(ParameterError, match="not a regular file"):
        PseudonymKey.load(tmp_path)
    for bad in (b"", b"x" * 33, "y" * 32):
        with pytest.raises(ParameterError):
            PseudonymKey(bad)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        PseudonymKey(bytes(32)).pseudonym("")


def test_replace_file_is_atomic_and_private(tmp_path: Path) -> None:
    f = tmp_path / "k.key"
    PseudonymKey.generate().save(f)
    new = PseudonymKey.generate()
    new.replace_file(f)
    assert PseudonymKey.load(f) == new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]
