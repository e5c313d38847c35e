"""The durable outbox of a gateway or edge node: frames on disk until the hub confirms them.

One SQLite file (WAL) per node, owned by one actor. ``add`` returns only after the frame is
committed, so a frame the node counts as buffered survives ``kill -9``. Durability policy:

- ``durability="normal"`` (default): WAL with ``synchronous=NORMAL``. A commit survives a process
  crash; an OS crash or power cut may lose the last commits since the previous WAL checkpoint
  sync, never corrupt the file.
- ``durability="full"``: ``synchronous=FULL``, an fsync per commit: survives power loss too, at
  the price of one fsync per frame (milliseconds on SD cards).

Drain order (priority): events and alerts first (oldest first), then live readings (newest
first: the freshest picture matters most after an outage), then backfill (oldest first, so the
history fills in order). Backfill gets at most ``backfill_share`` of a send budget while live
frames wait, so it never starves live data. Past ``cap_bytes`` the lowest priority goes first,
oldest first; every eviction is counted per priority and the counts survive restarts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from .database import Migration, open_store

OUTBOX_CAP_BYTES = 256 * 1024 * 1024
"""Default cap: comfortable on a Raspberry Pi's SD card next to the OS and the raw tier."""
BACKFILL_SHARE = 0.3


class Priority(IntEnum):
    """Lower drains first; higher is evicted first."""

    EVENT = 0
    LIVE = 1
    BACKFILL = 2


STREAM_OF = {Priority.EVENT: "events", Priority.LIVE: "readings", Priority.BACKFILL: "backfill"}
"""The up-topic kind each priority is sent on."""

OUTBOX_MIGRATIONS = (
    Migration(
        1,
        (
            """CREATE TABLE frames (
                id INTEGER PRIMARY KEY, session INTEGER NOT NULL, seq INTEGER NOT NULL,
                priority INTEGER NOT NULL, created_ms INTEGER NOT NULL, payload BLOB NOT NULL,
                size INTEGER NOT NULL, readings INTEGER NOT NULL, sent_ms INTEGER,
                attempts INTEGER NOT NULL DEFAULT 0, sent_connection INTEGER NOT NULL DEFAULT 0,
                UNIQUE (session, seq))""",
            "CREATE INDEX frames_drain ON frames (priority, created_ms)",
            "CREATE TABLE tallies (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        ),
    ),
)


class OutboxError(ValueError):
    """A frame the outbox cannot take (a duplicate key, an unknown priority, a negative size)."""


@dataclass
class PendingFrame:
    """One frame waiting for its acknowledgement."""

    session: int
    seq: int
    payload: bytes
    readings: int
    created_ms: int
    priority: Priority = Priority.LIVE
    sent_ms: int | None = None
    attempts: int = 0
    sent_connection: int = 0

    @property
    def stream(self) -> str:
        return STREAM_OF[self.priority]


class DurableOutbox:
    """Frames of one node, on disk, in drain order."""

    def __init__(
        self,
        path: str | Path,
        *,
        cap_bytes: int = OUTBOX_CAP_BYTES,
        durability: str = "normal",
        backfill_share: float = BACKFILL_SHARE,
    ) -> None:
        if durability not in ("normal", "full"):
            raise OutboxError(f"durability must be 'normal' or 'full', got {durability!r}")
        if cap_bytes <= 0:
            raise OutboxError(f"cap_bytes must be positive, got {cap_bytes}")
        opened = open_store(path, OUTBOX_MIGRATIONS)
        self.path = opened.path
        self.set_aside = opened.set_aside  # a corrupt file found at start, kept for forensics
        self.conn: sqlite3.Connection = opened.db.conn
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        self.cap_bytes = cap_bytes
        self.backfill_share = backfill_share
        self.size_bytes = int(self.conn.execute("SELECT COALESCE(SUM(size), 0) FROM frames").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    # writing

    def add(
        self,
        session: int,
        seq: int,
        payload: bytes,
        readings: int,
        now_ms: int,
        priority: Priority = Priority.LIVE,
    ) -> None:
        """Commit a frame (and any evictions the cap needs) before returning."""
        if not isinstance(priority, Priority):
            raise OutboxError(f"unknown priority {priority!r}")
        if readings < 0:
            raise OutboxError(f"readings must not be negative, got {readings}")
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                conn.execute(
                    "INSERT INTO frames (session, seq, priority, created_ms, payload, size, readings)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (session, seq, int(priority), now_ms, payload, len(payload), readings),
                )
            except sqlite3.IntegrityError:
                raise OutboxError(f"frame ({session}, {seq}) is already in the outbox") from None
            self._tally(conn, "frames", 1)
            self._tally(conn, "readings", readings)
            self.size_bytes += len(payload)
            self._evict_over_cap(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self.size_bytes = int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM frames").fetchone()[0])
            raise

    def _evict_over_cap(self, conn: sqlite3.Connection) -> None:
        while self.size_bytes > self.cap_bytes:
            row = conn.execute(
                "SELECT id, priority, size, readings FROM frames ORDER BY priority DESC, created_ms, id LIMIT 1"
            ).fetchone()
            count = conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
            if row is None or count <= 1:
                return  # one frame larger than the cap is kept: dropping it would buffer nothing
            frame_id, priority, size, readings = row
            conn.execute("DELETE FROM frames WHERE id = ?", (frame_id,))
            self.size_bytes -= size
            name = Priority(priority).name.lower()
            self._tally(conn, f"evicted_frames_{name}", 1)
            self._tally(conn, f"evicted_readings_{name}", readings)

    @staticmethod
    def _tally(conn: sqlite3.Connection, name: str, delta: int) -> None:
        conn.execute(
            "INSERT INTO tallies (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + ?",
            (name, delta, delta),
        )

    def demote_live(self, older_than_ms: int) -> int:
        """Live frames created before ``older_than_ms`` become backfill (sent on the backfill stream)."""
        cur = self.conn.execute(
            "UPDATE frames SET priority = ? WHERE priority = ? AND created_ms < ?",
            (int(Priority.BACKFILL), int(Priority.LIVE), older_than_ms),
        )
        return cur.rowcount

    # draining

    def to_send(
        self, now_ms: int, resend_after_ms: int, connection: int = 0, budget_bytes: int | None = None
    ) -> list[PendingFrame]:
        """Frames due (never sent, or unacknowledged for ``resend_after_ms``), in drain order; marks them sent.

        With a ``budget_bytes``, stops at the budget (at least one frame always goes) and gives
        backfill at most ``backfill_share`` of it while live frames are waiting.
        """
        due_before = now_ms - resend_after_ms
        rows: list[Any] = []
        for priority, order in ((Priority.EVENT, "ASC"), (Priority.LIVE, "DESC"), (Priority.BACKFILL, "ASC")):
            rows.extend(
                self.conn.execute(
                    "SELECT id, session, seq, payload, readings, created_ms, priority, sent_ms, attempts,"
                    f" sent_connection FROM frames WHERE priority = ? AND (sent_ms IS NULL OR sent_ms <= ?)"
                    f" ORDER BY created_ms {order}, id {order}",
                    (int(priority), due_before),
                )
            )
        chosen = self._within_budget(rows, budget_bytes)
        frames = []
        resends = 0
        for _id, session, seq, payload, readings, created_ms, priority, sent_ms, attempts, _conn in chosen:
            resends += sent_ms is not None
            frames.append(
                PendingFrame(
                    session, seq, payload, readings, created_ms, Priority(priority), now_ms, attempts + 1, connection
                )
            )
        if chosen:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "UPDATE frames SET sent_ms = ?, attempts = attempts + 1, sent_connection = ? WHERE id = ?",
                ((now_ms, connection, row[0]) for row in chosen),
            )
            self._tally(self.conn, "resends", resends)
            self.conn.execute("COMMIT")
        return frames

    def _within_budget(self, rows: list[Any], budget_bytes: int | None) -> list[Any]:
        if budget_bytes is None:
            return rows
        live_waiting = any(row[6] != Priority.BACKFILL for row in rows)
        backfill_cap = budget_bytes * self.backfill_share if live_waiting else budget_bytes
        chosen: list[Any] = []
        spent = backfill_spent = 0
        for row in rows:
            size = len(row[3])
            if chosen and spent + size > budget_bytes:
                break
            if row[6] == Priority.BACKFILL:
                if chosen and backfill_spent + size > backfill_cap:
                    break
                backfill_spent += size
            chosen.append(row)
            spent += size
        return chosen

    def mark_unsent(self, before_connection: int | None = None) -> None:
        """After a reconnect, frames sent on an earlier connection go again at once."""
        if before_connection is None:
            self.conn.execute("UPDATE frames SET sent_ms = NULL")
        else:
            self.conn.execute("UPDATE frames SET sent_ms = NULL WHERE sent_connection < ?", (before_connection,))

    def ack(self, session: int, seqs: Iterable[int], now_ms: int) -> int:
        """Delete acknowledged frames; an ack for frames that are not here changes nothing (counted)."""
        conn = self.conn
        done = unknown = readings_done = freed = 0
        longest = -1
        conn.execute("BEGIN IMMEDIATE")
        try:
            for seq in seqs:
                # SELECT then DELETE rather than DELETE ... RETURNING: Debian 11's SQLite (3.34) lacks it.
                row = conn.execute(
                    "SELECT id, size, readings, created_ms FROM frames WHERE session = ? AND seq = ?", (session, seq)
                ).fetchone()
                if row is None:
                    unknown += 1
                    continue
                frame_id, size, readings, created_ms = row
                conn.execute("DELETE FROM frames WHERE id = ?", (frame_id,))
                done += 1
                freed += size
                readings_done += readings
                longest = max(longest, now_ms - created_ms)
            # One update per tally for the whole ack, not one per frame.
            if unknown:
                self._tally(conn, "unknown_acks", unknown)
            if done:
                self._tally(conn, "acked_frames", done)
                self._tally(conn, "acked_readings", readings_done)
                worst = self._get(conn, "worst_delay_ms")
                if longest > worst:
                    self._tally(conn, "worst_delay_ms", longest - worst)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.size_bytes -= freed  # only once committed: a rollback leaves the frames, and their bytes
        return done

    # looking

    @staticmethod
    def _get(conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT value FROM tallies WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def tallies(self) -> dict[str, int]:
        """Lifetime counters, kept in the file so they survive restarts and can be reported upstream."""
        return dict(self.conn.execute("SELECT name, value FROM tallies").fetchall())

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0])

    def status(self) -> dict[str, Any]:
        """Frames, readings and bytes waiting per priority, plus the lifetime tallies."""
        per = {p.name.lower(): {"frames": 0, "readings": 0, "bytes": 0} for p in Priority}
        for priority, frames, readings, size in self.conn.execute(
            "SELECT priority, COUNT(*), SUM(readings), SUM(size) FROM frames GROUP BY priority"
        ):
            per[Priority(priority).name.lower()] = {"frames": frames, "readings": readings, "bytes": size}
        return {
            "path": str(self.path),
            "cap_bytes": self.cap_bytes,
            "size_bytes": self.size_bytes,
            "pending": per,
            "tallies": self.tallies(),
        }
