"""Shared fixtures of the federated tests (not a test module)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from securecomp.federated import ConsentRegistry, PseudonymKey

T0 = datetime(2030, 1, 1, tzinfo=UTC)

#: Tables holding per-user records (everything but the append-only audit log).
USER_TABLES = ("users", "consent_events", "selections", "participation", "budget_ledger")


class FakeClock:
    """A clock the test moves by hand; each reading advances one microsecond (distinct times)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def new_registry(tmp_path: Path, clock: FakeClock | None = None) -> tuple[ConsentRegistry, Path]:
    """A registry in ``tmp_path/consent.db`` with its key in ``tmp_path/keys/consent.key``."""
    (tmp_path / "keys").mkdir(exist_ok=True)
    key_file = tmp_path / "keys" / "consent.key"
    key = PseudonymKey.generate()
    key.save(key_file)
    reg = ConsentRegistry.open(
        tmp_path / "consent.db", key, create=True, clock=clock or FakeClock()
    )
    return reg, key_file


def raw(db: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection to inspect (or attack) the database directly."""
    return sqlite3.connect(db)


def rows_mentioning(conn: sqlite3.Connection, value: str, tables: tuple[str, ...]) -> int:
    """Number of rows in ``tables`` in which some column equals ``value``."""
    total = 0
    for table in tables:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        where = " OR ".join(f"{c} = ?" for c in cols)
        total += conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE {where}", (value,) * len(cols)
        ).fetchone()[0]
    return total
