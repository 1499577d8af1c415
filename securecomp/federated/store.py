"""The consent registry's SQLite file: schema, versioning, safe opening, and the audit log.

One embedded database (the standard library's ``sqlite3``) holds the registry. Opening a
file checks, before anything is read or written, that it is a securecomp consent registry of
a known schema version: a corrupt file, another application's database, or one written by a
newer release raises `MalformedMessageError` naming the file and the problem.

Hardening follows SQLite's advice for database files of uncertain origin ("Defense Against
The Dark Arts", https://sqlite.org/security.html): ``trusted_schema=OFF`` (a crafted schema
cannot run functions with side effects), ``cell_size_check=ON`` and a ``quick_check`` on
open. ``secure_delete=ON`` overwrites deleted rows with zeros, so a purge (GDPR Art. 17,
erasure) does not leave the purged identifiers readable in free pages of the file.

The audit log (GDPR Art. 5(2), accountability; Art. 30, records of processing) is
append-only in the database itself: triggers abort any UPDATE or DELETE on it. Each entry
also carries a SHA-256 hash chained over the previous entry, so `verify_audit` detects an
entry edited or removed by someone who bypassed the triggers (e.g. dropped them), as long as
the latest hash is kept somewhere else too. Audit entries name users by pseudonym, never by
raw identifier, so entries copied out of the log (e.g. for an auditor) name nobody directly.

The file itself is personal data in the clear: its ``users`` table maps each raw identifier
to its pseudonym, which is exactly the additional information that re-identifies every
pseudonymised record (GDPR Art. 4(5)), and the audit log sits in the same file. Reading the
file therefore means reading the raw identifiers. So a new file is created readable and
writable by its owner only (mode 0600, like the pseudonym key and an SSH private key), and a
registry file, or a journal left beside it (``-journal``, ``-wal``, ``-shm``), that group or
others may access is refused on open with the ``chmod 600`` that fixes it. SQLite creates
those side files with the database file's own permissions (its Unix VFS copies the mode), so
they are 0600 as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from securecomp.errors import MalformedMessageError, ParameterError

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Clock",
    "append_audit",
    "audit_entries",
    "connect",
    "iso_utc",
    "rekey",
    "timestamp",
    "transaction",
    "verify_audit",
]

#: Version of the table layout below; a file of any other version is refused on open.
#: Version 2 added ``participation.dp_guarantee`` (whether a round had a differential-privacy
#: guarantee); a version 1 file cannot say, so it is refused rather than guessed about.
SCHEMA_VERSION = 2

#: SQLite ``application_id`` header field (offset 68) marking a consent registry: "SCCR".
APPLICATION_ID = 0x53434352

Clock = Callable[[], datetime]

_GENESIS = "0" * 64

_PURPOSES = "('training', 'personalization', 'evaluation')"

_DDL = f"""
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    user_id        TEXT NOT NULL UNIQUE,
    pseudonym      TEXT NOT NULL UNIQUE,
    enrolled_at    TEXT NOT NULL,
    budget_epsilon REAL NOT NULL CHECK (budget_epsilon >= 0),
    budget_delta   REAL NOT NULL CHECK (budget_delta >= 0 AND budget_delta < 1)
);
CREATE TABLE consent_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_ref INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose  TEXT NOT NULL CHECK (purpose IN {_PURPOSES}),
    action   TEXT NOT NULL CHECK (action IN ('grant', 'withdraw')),
    at       TEXT NOT NULL
);
CREATE INDEX consent_events_by_user ON consent_events (user_ref, purpose, seq);
CREATE TABLE rounds (
    purpose     TEXT NOT NULL CHECK (purpose IN {_PURPOSES}),
    round       INTEGER NOT NULL CHECK (round >= 0),
    selected_at TEXT NOT NULL,
    PRIMARY KEY (purpose, round)
);
CREATE TABLE selections (
    purpose  TEXT NOT NULL,
    round    INTEGER NOT NULL,
    user_ref INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (purpose, round, user_ref),
    FOREIGN KEY (purpose, round) REFERENCES rounds(purpose, round)
);
CREATE INDEX selections_by_user ON selections (user_ref);
CREATE TABLE participation (
    purpose      TEXT NOT NULL,
    round        INTEGER NOT NULL,
    user_ref     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at           TEXT NOT NULL,
    dp_guarantee INTEGER NOT NULL CHECK (dp_guarantee IN (0, 1)),
    PRIMARY KEY (purpose, round, user_ref),
    FOREIGN KEY (purpose, round) REFERENCES rounds(purpose, round)
);
CREATE INDEX participation_by_user ON participation (user_ref);
CREATE TABLE budget_ledger (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_ref INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose  TEXT NOT NULL CHECK (purpose IN {_PURPOSES}),
    round    INTEGER,
    epsilon  REAL NOT NULL CHECK (epsilon >= 0),
    delta    REAL NOT NULL CHECK (delta >= 0 AND delta < 1),
    at       TEXT NOT NULL
);
CREATE INDEX budget_ledger_by_user ON budget_ledger (user_ref);
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    event     TEXT NOT NULL,
    pseudonym TEXT,
    purpose   TEXT,
    round     INTEGER,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_by_pseudonym ON audit (pseudonym);
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
BEGIN SELECT RAISE(ABORT, 'consent events are never rewritten; record a new event'); END;
CREATE TRIGGER budget_ledger_no_update BEFORE UPDATE ON budget_ledger
BEGIN SELECT RAISE(ABORT, 'ledger entries are never rewritten; append a new entry'); END;
"""

_TABLES = frozenset(
    {
        "meta",
        "users",
        "consent_events",
        "rounds",
        "selections",
        "participation",
        "budget_ledger",
        "audit",
    }
)
#: Columns added after version 1, checked on open: a file that claims the current version
#: but lacks them was edited by hand, and would fail later in the middle of a round.
_COLUMNS = {"participation": frozenset({"dp_guarantee"})}
_TRIGGERS = frozenset(
    {
        "audit_append_only_update",
        "audit_append_only_delete",
        "consent_events_no_update",
        "budget_ledger_no_update",
    }
)


def iso_utc(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC with microseconds: fixed width, so text order is time order.

    Raises
    ------
    ParameterError
        ``moment`` is naive (no time zone): ambiguous, so refused.
    """
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ParameterError(
            "the registry clock must return a timezone-aware datetime "
            "(e.g. datetime.now(UTC)); naive times are ambiguous"
        )
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def timestamp(clock: Clock) -> str:
    """The clock's current time, formatted by `iso_utc`."""
    return iso_utc(clock())


def _malformed(path: str, what: str) -> MalformedMessageError:
    return MalformedMessageError(
        f"{path!r} is not a usable securecomp consent registry: {what}; "
        "check the --db path, or restore the file from a backup"
    )


def connect(path: str | Path, *, create: bool, meta: Mapping[str, str]) -> sqlite3.Connection:
    """Open (or with ``create=True`` initialise) a registry database and check it.

    Parameters
    ----------
    path : a file path, or ``":memory:"`` for a registry that lives only in this connection.
    create : create a missing file (mode 0600) and initialise a missing or empty file with
        ``meta``; never touches a non-empty database that is not a registry.
    meta : the ``meta`` rows to write on initialisation (schema version is added here).

    Raises
    ------
    ParameterError
        The file does not exist and ``create`` is false, or (on POSIX) the registry file or
        a journal beside it is accessible by group or others; the message gives the
        ``chmod 600`` that fixes it.
    MalformedMessageError
        The file is corrupt, belongs to another application, or has another schema version.
    """
    name = str(path)
    created: Path | None = None
    if name == ":memory:":
        conn = sqlite3.connect(":memory:", isolation_level=None)
    else:
        file = Path(path)
        if file.exists() and not file.is_file():
            raise ParameterError(f"{name!r} is not a regular file")
        if not file.exists():
            if not create:
                raise ParameterError(
                    f"no consent registry at {name!r}; check the path, or create one with "
                    "ConsentRegistry.open(path, key, create=True)"
                )
            created = _create_private(file)
        uri = f"{file.resolve().as_uri()}?mode=rw"  # never "rwc": SQLite would use the umask
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            _discard(created)
            raise ParameterError(f"cannot open {name!r}: {exc}") from None
    try:
        _configure(conn)
        private = None if name == ":memory:" else Path(path)
        _check_or_initialise(conn, name, create=create, meta=meta, private=private)
    except sqlite3.DatabaseError as exc:
        conn.close()
        _discard(created)
        raise _malformed(name, str(exc)) from None
    except BaseException:
        conn.close()
        _discard(created)
        raise
    return conn


def _create_private(file: Path) -> Path | None:
    """Create ``file`` empty with mode 0600 before SQLite opens it; return it if created here.

    Returns None when another process created the file meanwhile: it is then opened (and its
    permissions checked) like any existing file.
    """
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    except OSError as exc:
        raise ParameterError(f"cannot create {str(file)!r}: {exc.strerror or exc}") from None
    try:
        # The mode given to os.open is filtered by the umask: set it exactly.
        if os.name == "posix":
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return file


def _discard(created: Path | None) -> None:
    # A file this call created and could not initialise is removed, with any journal.
    if created is not None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{created}{suffix}").unlink(missing_ok=True)


def _check_private(file: Path) -> None:
    """Refuse a registry file, or a journal beside it, that group or others may access."""
    if os.name != "posix":
        return  # POSIX mode bits only; elsewhere, rely on the directory's access control
    for suffix in ("", "-journal", "-wal", "-shm"):
        target = f"{file}{suffix}"
        try:
            mode = os.stat(target).st_mode
        except FileNotFoundError:
            continue
        if mode & 0o077:
            raise ParameterError(
                f"consent registry file {target!r} is accessible by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); it holds raw user identifiers, so it "
                f"must be private to its owner: run chmod 600 {target!r}"
            )


def _configure(conn: sqlite3.Connection) -> None:
    for pragma in (
        "PRAGMA trusted_schema = OFF",
        "PRAGMA cell_size_check = ON",
        "PRAGMA secure_delete = ON",
        "PRAGMA foreign_keys = ON",
    ):
        conn.execute(pragma)


def _check_or_initialise(
    conn: sqlite3.Connection,
    name: str,
    *,
    create: bool,
    meta: Mapping[str, str],
    private: Path | None,
) -> None:
    # Reading the header is the first access to the file: a file that is not SQLite fails
    # here with "file is not a database", mapped to MalformedMessageError by the caller.
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    if app_id == 0 and not objects:
        if not create:
            raise _malformed(name, "the database is empty")
        if private is not None:
            _check_private(private)  # before the first write, not after
        _initialise(conn, meta)
        return
    if app_id != APPLICATION_ID:
        raise _malformed(name, "it is an SQLite database of another application")
    # The permission check comes after the header check, so a wrong path is reported as
    # "not a registry" rather than with advice to chmod someone else's file, and before
    # anything is read from the tables or written.
    if private is not None:
        _check_private(private)
    if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise _malformed(name, "SQLite's integrity check failed (the file is damaged)")
    tables = {n for t, n in objects if t == "table"}
    triggers = {n for t, n in objects if t == "trigger"}
    if _TABLES - tables:
        raise _malformed(name, f"tables missing: {sorted(_TABLES - tables)}")
    if _TRIGGERS - triggers:
        # Without them the audit log is no longer append-only: refuse rather than continue.
        raise _malformed(name, f"append-only triggers missing: {sorted(_TRIGGERS - triggers)}")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise _malformed(name, "the schema version is missing")
    if row[0] != str(SCHEMA_VERSION):
        version = str(row[0])
        older = version.isdigit() and int(version) < SCHEMA_VERSION
        hint = (
            "an older file is not migrated: its rounds do not record whether they had a "
            "differential-privacy guarantee; read it with the release that wrote it"
            if older
            else "a newer file needs a newer securecomp"
        )
        raise _malformed(
            name,
            f"schema version {row[0]!r}, this release reads version {SCHEMA_VERSION} only "
            f"({hint})",
        )
    for table, wanted in _COLUMNS.items():
        # The table name is a constant of this module, never input.
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if wanted - have:
            raise _malformed(name, f"columns missing from {table}: {sorted(wanted - have)}")


def _initialise(conn: sqlite3.Connection, meta: Mapping[str, str]) -> None:
    with transaction(conn):
        for statement in _DDL.split(";\n"):
            if statement.strip():
                # A trigger body holds its own ';': the split keeps it because the body's
                # semicolon is followed by ' END', not a newline.
                conn.execute(statement)
        rows = {**meta, "schema_version": str(SCHEMA_VERSION)}
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(rows.items()))
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: every statement inside commits together or not at all.

    ``BEGIN IMMEDIATE`` takes the write lock up front, so a check (e.g. of a budget) and the
    write it guards cannot interleave with another writer.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _entry_hash(prev_hash: str, row: tuple[Any, ...]) -> str:
    body = json.dumps([prev_hash, *row], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(body.encode("ascii")).hexdigest()


def append_audit(
    conn: sqlite3.Connection,
    at: str,
    event: str,
    *,
    pseudonym: str | None = None,
    purpose: str | None = None,
    round: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log (call inside a `transaction`).

    ``detail`` is stored as canonical JSON; it must never hold a raw user identifier.
    """
    last = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev_hash = last[0] if last else _GENESIS
    text = json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"))
    row = (at, event, pseudonym, purpose, round, text)
    conn.execute(
        "INSERT INTO audit (at, event, pseudonym, purpose, round, detail, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*row, prev_hash, _entry_hash(prev_hash, row)),
    )


def verify_audit(conn: sqlite3.Connection) -> str:
    """Recompute the audit hash chain; return the latest hash (the value to keep elsewhere).

    Raises
    ------
    MalformedMessageError
        An entry does not chain to its predecessor: the log was edited or cut.
    """
    prev = _GENESIS
    for seq, at, event, pseudonym, purpose, rnd, detail, prev_hash, digest in conn.execute(
        "SELECT seq, at, event, pseudonym, purpose, round, detail, prev_hash, hash "
        "FROM audit ORDER BY seq"
    ):
        if prev_hash != prev or digest != _entry_hash(
            prev, (at, event, pseudonym, purpose, rnd, detail)
        ):
            raise MalformedMessageError(
                f"audit entry {seq} does not chain to the entry before it: the audit log was "
                "modified outside the registry; investigate before trusting it"
            )
        prev = digest
    return prev


def audit_entries(conn: sqlite3.Connection, pseudonym: str | None = None) -> list[dict[str, Any]]:
    """Audit entries (all, or those under one pseudonym), oldest first, detail decoded."""
    query = "SELECT seq, at, event, pseudonym, purpose, round, detail FROM audit"
    args: tuple[str, ...] = ()
    if pseudonym is not None:
        query, args = query + " WHERE pseudonym = ?", (pseudonym,)
    return [
        {
            "seq": s,
            "at": at,
            "event": ev,
            "pseudonym": p,
            "purpose": pu,
            "round": r,
            "detail": json.loads(d),
        }
        for s, at, ev, p, pu, r, d in conn.execute(query + " ORDER BY seq", args)
    ]


def rekey(conn: sqlite3.Connection, pseudonym_of: Callable[[str], str]) -> int:
    """Recompute every user's pseudonym from the raw identifier (inside a transaction).

    Returns the number of users re-keyed. Child tables reference users by row id, so only
    the ``users`` table changes.
    """
    users = conn.execute("SELECT id, user_id FROM users").fetchall()
    conn.executemany(
        "UPDATE users SET pseudonym = ? WHERE id = ?", [(pseudonym_of(u), ref) for ref, u in users]
    )
    return len(users)
