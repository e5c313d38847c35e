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
frames wait, so it never starves live data.

Past ``cap_bytes``, in the transaction of the ``add`` that went over: first the backfill is
thinned, if the outbox has a ``thinner`` (such as :func:`pymonitor.messages.thinning.thin_frame`,
every other sample of each device): the frames thinned the fewest times first, oldest first,
each at most ``max_thins`` times; a thinned frame keeps its (session, seq), so dedup and acks
work as before. Only when no backfill can be thinned any more are whole frames evicted: the
lowest priority first, oldest first. Thinning and eviction are counted per priority
(``downsampled_*``, ``evicted_*``) and the counts survive restarts.

The file also holds the node's own state (``state``, key -> bytes), written in the same
transaction as a frame when ``add`` is given one: after ``kill -9`` the saved sampling
position always matches the frames on disk.

Acks: an ack deletes only frames that have been sent at least once (the hub cannot have
acknowledged anything else). An ack naming a frame never sent (forged, or a stale replay) is
ignored and counted as ``unsent_acks``; one naming a frame that is not here counts as
``unknown_acks``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from .database import TALLIES_TABLE, Migration, add_tally, open_store

log = logging.getLogger(__name__)

OUTBOX_CAP_BYTES = 256 * 1024 * 1024
"""Default cap: comfortable on a Raspberry Pi's SD card next to the OS and the raw tier."""
BACKFILL_SHARE = 0.3
MAX_THINS = 2
"""How many times one backfill frame may be thinned (each pass halves it with ``thin_frame``)."""
NOT_THINNABLE = -1
"""``frames.thinned`` of a frame the thinner cannot make smaller: it is not offered again."""

Thinner = Callable[[bytes], tuple[bytes, int] | None]
"""payload -> (smaller payload, readings left), or None when it cannot thin that payload."""


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
            TALLIES_TABLE,
        ),
    ),
    Migration(
        2,
        (
            "CREATE TABLE node_state (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
            # times thinned; NOT_THINNABLE once the thinner has said no
            "ALTER TABLE frames ADD COLUMN thinned INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX frames_thin ON frames (priority, thinned, created_ms)",
        ),
    ),
    Migration(
        3,
        # Live data that holds an anomaly stays live after an outage instead of joining the backfill.
        ("ALTER TABLE frames ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        4,
        # The up-topic kind when it is not the priority's usual one (summaries travel as live data).
        ("ALTER TABLE frames ADD COLUMN stream TEXT",),
    ),
)


ATTEMPTS_TALLIED = 5


def attempts_tally(attempts: int) -> str:
    """The tally an acknowledged frame counts in by how many sends it took: ``acked_attempts_1`` ..
    ``acked_attempts_5plus``, so "delivered within 3 retries" is read straight from the file."""
    return f"acked_attempts_{attempts}" if attempts < ATTEMPTS_TALLIED else f"acked_attempts_{ATTEMPTS_TALLIED}plus"


class OutboxError(ValueError):
    """A frame or node state the outbox cannot take (a duplicate key, an unknown priority, a negative size)."""


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
    kind: str | None = None  # the up-topic kind, when not the priority's usual stream

    @property
    def stream(self) -> str:
        return self.kind or STREAM_OF[self.priority]


class DurableOutbox:
    """Frames of one node, on disk, in drain order."""

    def __init__(
        self,
        path: str | Path,
        *,
        cap_bytes: int = OUTBOX_CAP_BYTES,
        durability: str = "normal",
        backfill_share: float = BACKFILL_SHARE,
        thinner: Thinner | None = None,
        max_thins: int = MAX_THINS,
    ) -> None:
        if durability not in ("normal", "full"):
            raise OutboxError(f"durability must be 'normal' or 'full', got {durability!r}")
        if cap_bytes <= 0:
            raise OutboxError(f"cap_bytes must be positive, got {cap_bytes}")
        if max_thins < 0:
            raise OutboxError(f"max_thins must not be negative, got {max_thins}")
        opened = open_store(path, OUTBOX_MIGRATIONS)
        self.path = opened.path
        self.set_aside = opened.set_aside  # a corrupt file found at start, kept for forensics
        self.conn: sqlite3.Connection = opened.db.conn
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        self.cap_bytes = cap_bytes
        self.backfill_share = backfill_share
        self.thinner = thinner
        self.max_thins = max_thins
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
        state: Mapping[str, bytes] | None = None,
        urgent: bool = False,
        stream: str | None = None,
    ) -> None:
        """Commit a frame, the node ``state`` that goes with it, and whatever the cap needs, before returning.

        All or nothing: a refused frame (a duplicate) leaves the saved state as it was. An
        ``urgent`` live frame (it holds an anomaly) is never demoted to backfill. ``stream`` sends
        the frame on another up-topic kind than its priority's (summaries go as live data).
        """
        if not isinstance(priority, Priority):
            raise OutboxError(f"unknown priority {priority!r}")
        if readings < 0:
            raise OutboxError(f"readings must not be negative, got {readings}")
        items = self._state_items(state or {})
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                conn.execute(
                    "INSERT INTO frames (session, seq, priority, created_ms, payload, size, readings, urgent, stream)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (session, seq, int(priority), now_ms, payload, len(payload), readings, int(urgent), stream),
                )
            except sqlite3.IntegrityError:
                raise OutboxError(f"frame ({session}, {seq}) is already in the outbox") from None
            self._write_state(conn, items)
            add_tally(conn, "frames", 1)
            add_tally(conn, "readings", readings)
            self.size_bytes += len(payload)
            self._make_room(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self.size_bytes = int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM frames").fetchone()[0])
            raise

    def _make_room(self, conn: sqlite3.Connection) -> None:
        while self.size_bytes > self.cap_bytes:
            if not self._thin_one(conn) and not self._evict_one(conn):
                return

    def _thin_one(self, conn: sqlite3.Connection) -> bool:
        """Thin the backfill frame thinned the fewest times, oldest first; False if none is left to try."""
        if self.thinner is None:
            return False
        row = conn.execute(
            "SELECT id, payload, readings, thinned FROM frames WHERE priority = ? AND thinned >= 0 AND thinned < ?"
            " ORDER BY thinned, created_ms, id LIMIT 1",
            (int(Priority.BACKFILL), self.max_thins),
        ).fetchone()
        if row is None:
            return False
        frame_id, payload, readings, thinned = row
        try:
            result = self.thinner(payload)
        except Exception:  # a thinner bug must not stop the node buffering: counted and logged
            log.exception("outbox %s: the thinner failed on a frame; it is left as it was", self.path)
            add_tally(conn, "thin_errors", 1)
            result = None
        if result is None or len(result[0]) >= len(payload):
            conn.execute("UPDATE frames SET thinned = ? WHERE id = ?", (NOT_THINNABLE, frame_id))
            return True  # tried: the next candidate, or eviction, gets its turn
        smaller, left = result
        left = max(0, min(left, readings))  # the books balance even if the thinner miscounts
        conn.execute(
            "UPDATE frames SET payload = ?, size = ?, readings = ?, thinned = ? WHERE id = ?",
            (smaller, len(smaller), left, thinned + 1, frame_id),
        )
        self.size_bytes -= len(payload) - len(smaller)
        add_tally(conn, "downsampled_frames_backfill", 1)
        add_tally(conn, "downsampled_readings_backfill", readings - left)
        return True

    def _evict_one(self, conn: sqlite3.Connection) -> bool:
        """Evict the lowest-priority, oldest frame; False if that would leave nothing buffered."""
        row = conn.execute(
            "SELECT id, priority, size, readings FROM frames ORDER BY priority DESC, created_ms, id LIMIT 1"
        ).fetchone()
        count = conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM frames LIMIT 2)").fetchone()[0]
        if row is None or count <= 1:
            return False  # one frame larger than the cap is kept: dropping it would buffer nothing
        frame_id, priority, size, readings = row
        conn.execute("DELETE FROM frames WHERE id = ?", (frame_id,))
        self.size_bytes -= size
        name = Priority(priority).name.lower()
        add_tally(conn, f"evicted_frames_{name}", 1)
        add_tally(conn, f"evicted_readings_{name}", readings)
        return True

    # node state

    def save_state(self, state: Mapping[str, bytes]) -> None:
        """Commit node state (key -> bytes) on its own; ``add(..., state=...)`` commits it with a frame."""
        items = self._state_items(state)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._write_state(conn, items)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def state(self) -> dict[str, bytes]:
        """The node state last committed (empty for a new file)."""
        return {key: bytes(value) for key, value in self.conn.execute("SELECT key, value FROM node_state")}

    @staticmethod
    def _state_items(state: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
        items = []
        for key, value in state.items():
            if not isinstance(key, str) or not isinstance(value, bytes | bytearray | memoryview):
                raise OutboxError(f"node state maps str to bytes, got {key!r}: {type(value).__name__}")
            items.append((key, bytes(value)))
        return items

    @staticmethod
    def _write_state(conn: sqlite3.Connection, items: list[tuple[str, bytes]]) -> None:
        conn.executemany(
            "INSERT INTO node_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            items,
        )

    def demote_live(self, older_than_ms: int) -> int:
        """Live frames created before ``older_than_ms`` become backfill (sent on the backfill stream);
        urgent ones (holding an anomaly) stay live, so they drain before the history."""
        cur = self.conn.execute(
            "UPDATE frames SET priority = ? WHERE priority = ? AND created_ms < ? AND urgent = 0",
            (int(Priority.BACKFILL), int(Priority.LIVE), older_than_ms),
        )
        return cur.rowcount

    # draining

    def to_send(
        self,
        now_ms: int,
        resend_after_ms: int,
        connection: int = 0,
        budget_bytes: int | None = None,
        limit: int | None = None,
        max_priority: Priority = Priority.BACKFILL,
    ) -> list[PendingFrame]:
        """Frames due (never sent, or unacknowledged for ``resend_after_ms``), in drain order; marks them sent.

        With a ``budget_bytes``, stops at the budget (at least one frame always goes) and gives
        backfill at most ``backfill_share`` of it while live frames are waiting. With a ``limit``,
        at most that many frames, the first in drain order (a half-open circuit breaker sends one).
        ``max_priority=Priority.EVENT`` sends only events (a spent daily budget).
        Payloads are read only for the frames chosen: a large backlog costs an index scan, not its bytes.
        """
        if limit is not None and limit <= 0:
            return []
        due_before = now_ms - resend_after_ms
        rows: list[Any] = []
        for priority, order in ((Priority.EVENT, "ASC"), (Priority.LIVE, "DESC"), (Priority.BACKFILL, "ASC")):
            if priority > max_priority:
                break
            rows.extend(
                self.conn.execute(
                    "SELECT id, session, seq, size, readings, created_ms, priority, sent_ms, attempts, stream"
                    " FROM frames WHERE priority = ? AND (sent_ms IS NULL OR sent_ms <= ?)"
                    f" ORDER BY created_ms {order}, id {order} LIMIT ?",
                    (int(priority), due_before, -1 if limit is None else limit),  # -1: no limit
                )
            )
        chosen = self._within_budget(rows, budget_bytes)[:limit]
        if not chosen:
            return []
        frames = []
        resends = 0
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for frame_id, session, seq, _size, readings, created, priority, sent_ms, attempts, kind in chosen:
                resends += sent_ms is not None
                (payload,) = self.conn.execute("SELECT payload FROM frames WHERE id = ?", (frame_id,)).fetchone()
                frames.append(
                    PendingFrame(
                        session,
                        seq,
                        payload,
                        readings,
                        created,
                        Priority(priority),
                        now_ms,
                        attempts + 1,
                        connection,
                        kind,
                    )
                )
            self.conn.executemany(
                "UPDATE frames SET sent_ms = ?, attempts = attempts + 1, sent_connection = ? WHERE id = ?",
                ((now_ms, connection, row[0]) for row in chosen),
            )
            add_tally(self.conn, "resends", resends)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return frames

    def _within_budget(self, rows: list[Any], budget_bytes: int | None) -> list[Any]:
        if budget_bytes is None:
            return rows
        live_waiting = any(row[6] != Priority.BACKFILL for row in rows)
        backfill_cap = budget_bytes * self.backfill_share if live_waiting else budget_bytes
        chosen: list[Any] = []
        spent = backfill_spent = 0
        for row in rows:
            size = row[3]
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
        """Delete acknowledged frames that were sent at least once; returns how many.

        An ack for a frame never sent (forged or replayed) or not here changes nothing; both are
        counted (``unsent_acks``, ``unknown_acks``).
        """
        conn = self.conn
        done = unknown = unsent = readings_done = freed = 0
        longest = -1
        by_attempts: Counter[str] = Counter()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for seq in seqs:
                # SELECT then DELETE rather than DELETE ... RETURNING: Debian 11's SQLite (3.34) lacks it.
                row = conn.execute(
                    "SELECT id, size, readings, created_ms, attempts FROM frames WHERE session = ? AND seq = ?",
                    (session, seq),
                ).fetchone()
                if row is None:
                    unknown += 1
                    continue
                frame_id, size, readings, created_ms, attempts = row
                if attempts == 0:
                    unsent += 1  # the hub cannot have this frame: whoever acks it is wrong
                    continue
                conn.execute("DELETE FROM frames WHERE id = ?", (frame_id,))
                done += 1
                freed += size
                readings_done += readings
                longest = max(longest, now_ms - created_ms)
                by_attempts[attempts_tally(attempts)] += 1
            # One update per tally for the whole ack, not one per frame.
            if unknown:
                add_tally(conn, "unknown_acks", unknown)
            if unsent:
                add_tally(conn, "unsent_acks", unsent)
            if done:
                add_tally(conn, "acked_frames", done)
                add_tally(conn, "acked_readings", readings_done)
                for name, count in by_attempts.items():
                    add_tally(conn, name, count)
                worst = self._get(conn, "worst_delay_ms")
                if longest > worst:
                    add_tally(conn, "worst_delay_ms", longest - worst)
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
        return {**_waiting(self.conn, self.path), "cap_bytes": self.cap_bytes, "size_bytes": self.size_bytes}


def _waiting(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    per = {p.name.lower(): {"frames": 0, "readings": 0, "bytes": 0} for p in Priority}
    for priority, frames, readings, size in conn.execute(
        "SELECT priority, COUNT(*), SUM(readings), SUM(size) FROM frames GROUP BY priority"
    ):
        per[Priority(priority).name.lower()] = {"frames": frames, "readings": readings, "bytes": size}
    return {"path": str(path), "pending": per, "tallies": dict(conn.execute("SELECT name, value FROM tallies"))}


def read_status(path: str | Path) -> dict[str, Any]:
    """What a node's outbox holds, read without changing the file: no migration, no lock taken.

    For looking at the file of a running node (perhaps of another PyMonitor version) from outside;
    opening it as a :class:`DurableOutbox` would migrate it under the node's feet.
    """
    path = Path(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = _waiting(conn, path)
        out["size_bytes"] = sum(row["bytes"] or 0 for row in out["pending"].values())
        out["schema_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
        return out
    finally:
        conn.close()
