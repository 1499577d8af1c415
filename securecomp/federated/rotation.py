"""Rotation of the pseudonym key of a consent registry.

Rotating the key (NIST SP 800-57 Part 1 Rev. 5, section 5.3: cryptoperiods) re-keys every
pseudonym the registry holds and destroys the old key. Pseudonyms recorded elsewhere under
the old key (older audit entries, a trainer's logs) then cannot be linked to anyone, which is
the point: the rotation record holds key ids and a count, never an old-to-new mapping.

Steps, ordered so that a crash never leaves a registry without its key:

1. check that the key file holds the registry's current key;
2. write a fresh key (`secrets`, 32 bytes) to ``<key file>.new``, mode 0600;
3. in one transaction, recompute every user's pseudonym from the raw identifier, record the
   new key id, and audit the rotation;
4. rename the ``.new`` file over the key file, destroying the old key.

A crash before (3) commits leaves a stale ``.new`` file (refused by the next rotation, to be
deleted); a crash between (3) and (4) leaves the new key in ``.new``: rename it yourself.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from securecomp.errors import KeyMismatchError, ParameterError
from securecomp.federated import store
from securecomp.federated.pseudonym import PseudonymKey

__all__ = ["rotate_key_file"]


def rotate_key_file(
    conn: sqlite3.Connection, current: PseudonymKey, key_path: str | Path, at: str
) -> PseudonymKey:
    """Run the rotation above on the registry behind ``conn``; return the new key.

    Raises
    ------
    KeyMismatchError
        ``key_path`` does not hold ``current``.
    ParameterError
        A ``.new`` file is left over from an interrupted rotation, or the key file is
        unreadable.
    """
    path = Path(key_path)
    if PseudonymKey.load(path) != current:
        raise KeyMismatchError(f"{str(path)!r} does not hold this registry's current key")
    pending = path.with_name(path.name + ".new")
    if pending.exists():
        # The registry was opened with the current key, so this file is a leftover of a
        # rotation that never committed: it holds no key anything depends on.
        raise ParameterError(
            f"{str(pending)!r} is left over from an interrupted rotation that did not "
            "commit (the registry still uses the current key); delete it and rotate again"
        )
    new = PseudonymKey.generate()
    new.save(pending)
    try:
        with store.transaction(conn):
            users = store.rekey(conn, new.pseudonym)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'key_id'", (new.key_id,))
            store.append_audit(
                conn,
                at,
                "key_rotated",
                detail={"old_key_id": current.key_id, "new_key_id": new.key_id, "users": users},
            )
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    pending.replace(path)
    return new
