"""Keyed pseudonyms for user identifiers: HMAC-SHA256 under a key kept apart from the data.

A pseudonym is ``HMAC-SHA256(key, domain || user_id)`` in hex (RFC 2104 / FIPS 198-1 with
SHA-256). What the consent registry hands out (client selection, participation records, the
privacy-budget ledger seen by the trainer) and the entries of its audit log name users by
pseudonym only.

This is *pseudonymisation* in the sense of GDPR Art. 4(5): the data can no longer be
attributed to a person "without the use of additional information", provided that the
additional information "is kept separately and is subject to technical and organisational
measures". Here that information is twofold. The key is stored apart: in its own file,
readable by its owner only (mode 0600, like an SSH private key), never in the database. The
registry file is not separate from its own records: its ``users`` table maps every raw
identifier to its pseudonym, next to the audit log, so the file itself is personal data in
the clear and is protected as such (created 0600, refused on open when group or others may
access it; see `securecomp.federated.store`). Pseudonymised data is still personal data
(GDPR Recital 26): a pseudonym is stable, so everything recorded under it can be linked
together, and anyone holding the key can recompute it from a guessed identifier. It is not
anonymity.

Rotating the key (`ConsentRegistry.rotate_key`) re-keys every pseudonym the registry holds
and destroys the old key, so records made under the old pseudonyms elsewhere (older audit
entries, a trainer's logs) can no longer be linked to a user by anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from securecomp.errors import ParameterError

__all__ = ["KEY_BYTES", "PseudonymKey"]

#: Length of a pseudonym key: 256 bits, the output size of SHA-256 (RFC 2104 section 3).
KEY_BYTES = 32

# Domain separation: the same key never yields the pseudonym of one string and the key id
# (or any future derived value) of another.
_PSEUDONYM_DOMAIN = b"securecomp/consent/pseudonym/v1\x00"
_KEY_ID_DOMAIN = b"securecomp/consent/key-id/v1\x00"


class PseudonymKey:
    """A 32-byte HMAC-SHA256 key that maps user identifiers to pseudonyms.

    Invariant: ``k.pseudonym(u) == k.pseudonym(v)`` iff ``u == v`` (up to HMAC collisions,
    probability about 2^-256 per pair), and pseudonyms under two different keys are unrelated.
    The key bytes never appear in ``repr`` or ``str``.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
            raise ParameterError(
                f"a pseudonym key is exactly {KEY_BYTES} bytes; "
                "create one with PseudonymKey.generate()"
            )
        self._key = bytes(key)

    @classmethod
    def generate(cls) -> PseudonymKey:
        """A fresh key of 32 bytes from the operating system's CSPRNG (`secrets`)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    # --- derivations -------------------------------------------------------------------------

    def pseudonym(self, user_id: str) -> str:
        """The pseudonym of ``user_id``: 64 hex digits of HMAC-SHA256.

        Identifiers are opaque strings hashed as their UTF-8 bytes (no Unicode
        normalisation: two spellings of one name are two users).
        """
        if not isinstance(user_id, str) or not user_id:
            raise ParameterError("a user identifier is a non-empty string")
        mac = hmac.new(self._key, _PSEUDONYM_DOMAIN + user_id.encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()

    @property
    def key_id(self) -> str:
        """A public 16-hex-digit fingerprint, stored in the registry to match key and database.

        It is a MAC of a constant, so it reveals nothing about the key beyond equality.
        """
        return hmac.new(self._key, _KEY_ID_DOMAIN, hashlib.sha256).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PseudonymKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"PseudonymKey(key_id={self.key_id})"

    # --- key files ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key to a new file readable and writable by its owner only (0600).

        Refuses to overwrite an existing file: losing a key orphans every pseudonym.
        """
        target = Path(path)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ParameterError(
                f"key file {str(target)!r} already exists; choose another path "
                "(use ConsentRegistry.rotate_key to replace a key)"
            ) from None
        try:
            _write_fd(fd, self._key)
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def replace_file(self, path: str | os.PathLike[str]) -> None:
        """Atomically replace the key file at ``path`` (used by key rotation).

        The new key is written to a sibling temporary file (0600), flushed, then renamed over
        ``path``, so a crash leaves either the old or the new key, never a torn file.
        """
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_fd(fd, self._key)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PseudonymKey:
        """Read a key file written by `save`, refusing one that others can read.

        Raises
        ------
        ParameterError
            The file is missing, not exactly 32 bytes, or (on POSIX) readable or writable by
            group or others; the message says how to fix it.
        """
        target = Path(path)
        try:
            info = target.stat()
        except OSError as exc:
            raise ParameterError(
                f"cannot read key file {str(target)!r}: {exc.strerror or exc}"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise ParameterError(f"key file {str(target)!r} is not a regular file")
        if os.name == "posix" and info.st_mode & 0o077:
            # Like ssh with private keys: a key others can read is no longer kept separately.
            raise ParameterError(
                f"key file {str(target)!r} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {str(target)!r}"
            )
        if info.st_size != KEY_BYTES:
            raise ParameterError(
                f"key file {str(target)!r} holds {info.st_size} bytes, not {KEY_BYTES}: "
                "it is not a securecomp pseudonym key"
            )
        return cls(target.read_bytes())


def _write_fd(fd: int, data: bytes) -> None:
    try:
        # The mode given to os.open is filtered by the umask and ignored for existing
        # files: set it explicitly.
        if os.name == "posix":
            os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
