"""Opening SQLite files the PyMonitor way: WAL, schema migrations, corrupt files set aside.

A store that finds its file corrupt says so, renames it to ``<name>.corrupt-<ms>`` and
starts clean rather than refusing to run (the renamed file stays for forensics).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


class StoreError(RuntimeError):
    """A store could not be opened or migrated; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class Migration:
    """Statements that move a schema from ``version - 1`` to ``version``."""

    version: int
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OpenedStore:
    db: sqlite_utils.Database
    path: Path
    set_aside: Path | None  # where a corrupt file was moved, if one was


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL: a commit survives a process kill; only an OS crash/power cut may lose the
    # last transactions (never corrupt the file). Stores that must survive power cuts use FULL.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _healthy(conn: sqlite3.Connection) -> bool:
    try:
        row = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError:
        return False
    return row is not None and row[0] == "ok"


def _set_aside(path: Path) -> Path:
    target = path.with_name(f"{path.name}.corrupt-{time.time_ns() // 1_000_000}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply the migrations newer than the file's ``user_version``; returns the new version."""
    latest = max((m.version for m in migrations), default=0)
    # The version is read inside the write transaction: two processes opening a new file at once
    # must not both run the same migration.
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if current > latest:
            raise StoreError(f"schema version {current} is newer than this PyMonitor knows ({latest}); upgrade it")
        for mig in sorted(migrations, key=lambda m: m.version):
            if mig.version <= current:
                continue
            for stmt in mig.statements:
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={mig.version}")
            current = mig.version
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current


def open_store(path: str | Path, migrations: Sequence[Migration]) -> OpenedStore:
    """Open (or create) a SQLite store and bring its schema up to date."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    set_aside: Path | None = None
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path)
        healthy = _healthy(conn)
    except sqlite3.DatabaseError:
        healthy = False
    if not healthy:
        if conn is not None:
            conn.close()
        set_aside = _set_aside(path)
        log.error("store %s is corrupt: moved it to %s and started a new one", path, set_aside)
        conn = _connect(path)
    assert conn is not None
    try:
        migrate(conn, migrations)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: cannot apply the schema: {exc}") from None
    except StoreError:
        conn.close()
        raise
    return OpenedStore(sqlite_utils.Database(conn), path, set_aside)


TALLIES_TABLE = "CREATE TABLE tallies (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
"""Lifetime counters a store keeps in its own file, so they survive restarts."""


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error) on an autocommit connection.

    The stores' connections are autocommit (``isolation_level=None``), so ``with conn:`` would not
    group statements: this does, making a batch one commit instead of one per row.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def add_tally(conn: sqlite3.Connection, name: str, delta: int) -> None:
    """Add ``delta`` to a counter in the ``tallies`` table, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO tallies (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + ?",
        (name, delta, delta),
    )
