"""Rollout state in SQLite (WAL), so a hub restarted mid-rollout carries on where it stopped.

Each :meth:`RolloutStore.save` writes the engine's header and only the device rows that changed
since the previous save, in one transaction. Operator commands (pause, resume, abort) from
another process (the CLI) are queued in ``rollout_controls``; the process running the engine
applies them with :func:`apply_controls`, so two writers never race on the engine's state.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from pymonitor.store.database import Migration, open_store

from .engine import RolloutEngine
from .errors import RolloutStateError, RolloutStoreError

CONTROL_ACTIONS = ("pause", "resume", "abort")

MIGRATIONS = (
    Migration(
        1,
        (
            "CREATE TABLE rollouts (id TEXT PRIMARY KEY, header BLOB NOT NULL, state TEXT NOT NULL,"
            " updated_ms INTEGER NOT NULL)",
            "CREATE TABLE rollout_devices (rollout_id TEXT NOT NULL, pos INTEGER NOT NULL, name TEXT NOT NULL,"
            " previous TEXT NOT NULL, state INTEGER NOT NULL, sent_ms INTEGER NOT NULL,"
            " PRIMARY KEY (rollout_id, pos)) WITHOUT ROWID",
            "CREATE TABLE rollout_controls (seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT NOT NULL,"
            " action TEXT NOT NULL, reason TEXT NOT NULL, requested_ms INTEGER NOT NULL, done_ms INTEGER,"
            " outcome TEXT NOT NULL DEFAULT '')",
            "CREATE TABLE rollout_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        ),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlRequest:
    """An operator's pause/resume/abort waiting for the engine's host to apply it."""

    seq: int
    rollout_id: str
    action: str
    reason: str
    requested_ms: int


class RolloutStore:
    """One SQLite file holding any number of rollouts."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn: sqlite3.Connection = open_store(self.path, MIGRATIONS).db.conn

    def close(self) -> None:
        self.conn.close()

    def save(self, engine: RolloutEngine) -> int:
        """Write the header and the devices changed since the last save; returns how many rows were written."""
        header = engine.header()
        rows = engine.device_rows(engine.take_dirty())
        rid = engine.spec.rollout_id
        with self._tx():
            self.conn.execute(
                "INSERT OR REPLACE INTO rollouts (id, header, state, updated_ms) VALUES (?, ?, ?, ?)",
                (rid, orjson.dumps(header), engine.state, engine.updated_ms),
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO rollout_devices (rollout_id, pos, name, previous, state, sent_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(rid, *row) for row in rows],
            )
        return len(rows)

    def load(self, rollout_id: str) -> RolloutEngine:
        row = self.conn.execute("SELECT header FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
        if row is None:
            raise RolloutStoreError(
                f"{self.path}: no rollout {rollout_id!r} (known: {', '.join(self.ids()) or 'none'})"
            )
        try:
            header = orjson.loads(row[0])
        except orjson.JSONDecodeError as exc:
            raise RolloutStoreError(f"{self.path}: rollout {rollout_id!r}: header is not JSON: {exc}") from None
        rows = self.conn.execute(
            "SELECT pos, name, previous, state, sent_ms FROM rollout_devices WHERE rollout_id = ? ORDER BY pos",
            (rollout_id,),
        ).fetchall()
        return RolloutEngine.restore(header, rows)

    def ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM rollouts ORDER BY id")]

    def states(self) -> dict[str, str]:
        """Rollout id -> state, without loading any device rows."""
        return dict(self.conn.execute("SELECT id, state FROM rollouts ORDER BY id").fetchall())

    def request(self, rollout_id: str, action: str, now_ms: int, reason: str = "") -> int:
        """Queue an operator command for the engine's host; returns its sequence number."""
        if action not in CONTROL_ACTIONS:
            raise RolloutStateError(f"action: expected one of {', '.join(CONTROL_ACTIONS)}, got {action!r}")
        if rollout_id not in self.states():
            raise RolloutStoreError(
                f"{self.path}: no rollout {rollout_id!r} (known: {', '.join(self.ids()) or 'none'})"
            )
        with self._tx():
            cur = self.conn.execute(
                "INSERT INTO rollout_controls (rollout_id, action, reason, requested_ms) VALUES (?, ?, ?, ?)",
                (rollout_id, action, reason, now_ms),
            )
        return int(cur.lastrowid or 0)

    def pending_controls(self, rollout_id: str) -> list[ControlRequest]:
        rows = self.conn.execute(
            "SELECT seq, rollout_id, action, reason, requested_ms FROM rollout_controls"
            " WHERE rollout_id = ? AND done_ms IS NULL ORDER BY seq",
            (rollout_id,),
        ).fetchall()
        return [ControlRequest(seq=r[0], rollout_id=r[1], action=r[2], reason=r[3], requested_ms=r[4]) for r in rows]

    def mark_done(self, seq: int, now_ms: int, outcome: str) -> None:
        with self._tx():
            self.conn.execute(
                "UPDATE rollout_controls SET done_ms = ?, outcome = ? WHERE seq = ?", (now_ms, outcome, seq)
            )

    def next_seq(self, key: str = "signing_seq") -> int:
        """A counter that only grows, across restarts (the signing sequence of rollout commands)."""
        with self._tx():
            self.conn.execute(
                "INSERT INTO rollout_meta (key, value) VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET value = value + 1",
                (key,),
            )
            row = self.conn.execute("SELECT value FROM rollout_meta WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def _tx(self) -> _Transaction:
        return _Transaction(self.conn)


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def apply_controls(store: RolloutStore, engine: RolloutEngine, now_ms: int) -> list[str]:
    """Apply the operator commands queued for this engine; returns one line per command (done or why not)."""
    lines = []
    for req in store.pending_controls(engine.spec.rollout_id):
        try:
            if req.action == "pause":
                engine.pause(now_ms)
            elif req.action == "resume":
                engine.resume(now_ms)
            else:
                engine.abort(now_ms, req.reason or "aborted by the operator")
            outcome = "done"
        except RolloutStateError as exc:
            outcome = f"refused: {exc}"
        store.mark_done(req.seq, now_ms, outcome)
        lines.append(f"{req.action} #{req.seq}: {outcome}")
    return lines
