"""The fleet roles' latest answers, kept in a file beside the hub store.

A role actor re-runs its analysis every few minutes over the whole fleet; what it found is written
here, one row per (role, options), so ``pymonitor fleet battery`` reads one row instead of
re-reading months of readings (seconds for 10,000 devices). The hub store stays the hub actor's
alone: this file has its own writer (the role actors' worker threads, one row at a time).

``computed_ms`` is the wall clock when the answer was written (how stale it is); ``now_ms`` is the
moment the answer is for, on the node's clock (which a simulated node may run faster).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .database import Migration, open_store

ANSWERS_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            "CREATE TABLE answers (role TEXT NOT NULL, options TEXT NOT NULL, now_ms INTEGER NOT NULL,"
            " computed_ms INTEGER NOT NULL, elapsed_ms REAL NOT NULL, answer BLOB NOT NULL,"
            " PRIMARY KEY (role, options))",
        ),
    ),
)


def answers_path(hub_db: str | Path) -> Path:
    """Where the answers of the roles reading ``hub_db`` live: ``hub.db`` -> ``hub.fleet-answers.db``."""
    hub = Path(hub_db)
    return hub.with_name(f"{hub.stem}.fleet-answers.db")


def wall_ms() -> int:
    """The wall clock in ms: how stale an answer is, whatever clock the node that wrote it runs."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAnswer:
    role: str
    options: str
    now_ms: int
    computed_ms: int
    elapsed_ms: float
    answer: dict[str, Any]

    def age_s(self, now_ms: int | None = None) -> float:
        """Seconds since the answer was written (by the wall clock)."""
        return max(0.0, ((wall_ms() if now_ms is None else now_ms) - self.computed_ms) / 1000)


class AnswerStore:
    """Read-write (the role actors) or read-only (the CLI) access to the answers file."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout=5000")
        else:
            self.conn = open_store(self.path, ANSWERS_MIGRATIONS).db.conn

    @classmethod
    def reader(cls, path: str | Path) -> AnswerStore | None:
        """A read-only store, or None when there is no answers file (no role has answered yet)."""
        if not Path(path).is_file():
            return None
        try:
            return cls(path, readonly=True)
        except sqlite3.DatabaseError:
            return None

    def close(self) -> None:
        self.conn.close()

    def put(self, role: str, options: str, now_ms: int, elapsed_ms: float, answer: dict[str, Any]) -> None:
        """Keep ``answer`` as the latest for (role, options), replacing the one before."""
        blob = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        self.conn.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
            (role, options, now_ms, wall_ms(), elapsed_ms, blob),
        )

    def get(self, role: str, options: str) -> StoredAnswer | None:
        """The latest answer for (role, options), or None (none yet, or the file cannot be read)."""
        try:
            row = self.conn.execute(
                "SELECT now_ms, computed_ms, elapsed_ms, answer FROM answers WHERE role = ? AND options = ?",
                (role, options),
            ).fetchone()
        except sqlite3.DatabaseError:
            return None
        if row is None:
            return None
        return StoredAnswer(
            role=role,
            options=options,
            now_ms=int(row[0]),
            computed_ms=int(row[1]),
            elapsed_ms=float(row[2]),
            answer=orjson.loads(row[3]),
        )
