"""The hub's SQLite store: readings written in batched, idempotent transactions.

Summary frames (``summary.batch.v1``) are frames of the same seq space too: a ``frames`` row
(``event = 2``), then one ``window_summaries`` row per window, once.

Idempotency is per frame: ``frames`` has the primary key (node, session, seq), and a frame's
readings are inserted in the same transaction as its ``frames`` row, only when that row is
new. A redelivered frame (QoS 1, or a node resending after a lost ack) changes nothing. Held
events (``seq > 0``) are frames of the same seq space: a ``frames`` row (``event = 1``), then
the event, once.
"""

from __future__ import annotations

import math
import sqlite3
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from pathlib import Path
from typing import Any

import orjson

from pymonitor.messages import DeadLetter, Event, NodeBirth, NodeDeath, ReadingBatch, SummaryBatch
from pymonitor.messages.columns import unpack_deltas, unpack_indexes

from .database import open_store
from .hub_schema import HUB_MIGRATIONS

NAME_CHUNK = 500
"""Names looked up per SELECT (SQLite allows 32,766 parameters; small chunks keep statements cheap)."""
LIST_CACHE_SIZE = 4096
"""Distinct name lists remembered (about one per gateway); past this the cache starts over."""

Frame = ReadingBatch | Event | SummaryBatch
SUMMARY_FRAME = 2
"""``frames.event`` of a summary frame (0: readings, 1: a held event)."""
Stamper = Callable[[ReadingBatch], list[int] | None]
"""Given a frame about to be stored: its corrected timestamps per row, or None (ts_corrected_ms NULL)."""


@dataclass(frozen=True, slots=True)
class TrafficRow:
    """Bandwidth of one node on one UTC day in one direction and stream."""

    node: str
    day: str  # UTC date, "2026-11-23"
    direction: str  # "up" (node to hub) or "down" (hub to node)
    stream: str  # topic kind: readings, backfill, events, state, ack, deadletter, ...
    bytes: int
    frames: int


@dataclass
class WriteResult:
    """What one batched transaction did."""

    stored: list[Frame] = field(default_factory=list)
    duplicates: list[Frame] = field(default_factory=list)
    readings: int = 0


class _Names:
    """Interns names (nodes, devices, metrics) into integer ids, cached in memory."""

    def __init__(self, conn: sqlite3.Connection, table: str) -> None:
        self._conn = conn
        self._table = table
        self._ids: dict[str, int] = {}
        self.reload()

    def reload(self) -> None:
        """Forget the cache (after a rollback it may hold ids that were never committed)."""
        self._ids = {name: id_ for id_, name in self._conn.execute(f"SELECT id, name FROM {self._table}")}
        self._lists: dict[tuple[str, ...], list[int]] = {}

    def ids(self, names: Sequence[str]) -> list[int]:
        """Ids of names, in order. A gateway sends the same device list in every frame, so whole
        lists are cached too."""
        key = tuple(names)
        cached = self._lists.get(key)
        if cached is not None:
            return cached
        missing = [n for n in dict.fromkeys(names) if n not in self._ids]
        if missing:
            insert = f"INSERT OR IGNORE INTO {self._table}(name) VALUES (?)"
            self._conn.executemany(insert, ((n,) for n in missing))
            for start in range(0, len(missing), NAME_CHUNK):
                chunk = missing[start : start + NAME_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(f"SELECT name, id FROM {self._table} WHERE name IN ({marks})", chunk)
                self._ids.update((name, int(id_)) for name, id_ in rows)
        found = [self._ids[n] for n in names]
        if len(self._lists) >= LIST_CACHE_SIZE:
            self._lists.clear()
        self._lists[key] = found
        return found


class HubStore:
    """Readings, frames, node states, events and dead letters of one hub."""

    def __init__(self, path: str | Path) -> None:
        opened = open_store(path, HUB_MIGRATIONS)
        self.path = opened.path
        self.set_aside = opened.set_aside
        self.db = opened.db
        self.conn: sqlite3.Connection = opened.db.conn
        self._nodes = _Names(self.conn, "nodes")
        self._devices = _Names(self.conn, "devices")
        self._metrics = _Names(self.conn, "metrics")

    def close(self) -> None:
        self.conn.close()

    def write_frames(
        self,
        frames: Iterable[Frame],
        received_ms: int,
        traffic: Iterable[TrafficRow] = (),
        stamp: Stamper | None = None,
    ) -> WriteResult:
        """Store frames (and traffic totals) in one transaction; frames already stored are duplicates.

        ``stamp`` is asked for the corrected timestamps of each reading frame that is new, in order.
        """
        result = WriteResult()
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO traffic (node, day, direction, stream, bytes, frames) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (node, day, direction, stream)"
                " DO UPDATE SET bytes = bytes + excluded.bytes, frames = frames + excluded.frames",
                ((t.node, t.day, t.direction, t.stream, t.bytes, t.frames) for t in traffic),
            )
            for frame in frames:
                node_id = self._nodes.ids([frame.node])[0]
                if isinstance(frame, Event):
                    rows, backfill, event = 0, 0, 1
                elif isinstance(frame, SummaryBatch):
                    rows, backfill, event = frame.rows, 0, SUMMARY_FRAME
                else:
                    rows, backfill, event = frame.rows, int(frame.backfill), 0
                cur = conn.execute(
                    "INSERT OR IGNORE INTO frames(node_id, session, seq, rows, readings, received_ms, backfill, event)"
                    " VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                    (node_id, frame.session, frame.seq, rows, received_ms, backfill, event),
                )
                if cur.rowcount == 0:
                    result.duplicates.append(frame)
                    continue
                if isinstance(frame, Event):
                    self.insert_event(frame, received_ms)
                    result.stored.append(frame)
                    continue
                if isinstance(frame, SummaryBatch):
                    self._insert_summaries(frame, node_id)
                    result.stored.append(frame)
                    continue
                count = self._insert_readings(frame, None if stamp is None else stamp(frame))
                conn.execute(
                    "UPDATE frames SET readings = ? WHERE node_id = ? AND session = ? AND seq = ?",
                    (count, node_id, frame.session, frame.seq),
                )
                result.stored.append(frame)
                result.readings += count
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            for names in (self._nodes, self._devices, self._metrics):
                names.reload()
            raise
        return result

    def _insert_readings(self, frame: ReadingBatch, corrected: list[int] | None = None) -> int:
        """Insert the measured cells; ``corrected`` (per row, or None) fills ts_corrected_ms."""
        cols = frame.columns()
        device_ids = self._devices.ids(frame.devices)
        metric_ids = self._metrics.ids(frame.metrics)
        dev_col = [device_ids[i] for i in cols.device_index]
        sql, extra = (_INSERT_READING, ()) if corrected is None else (_INSERT_CORRECTED, (corrected,))
        count = 0
        for metric_id, values in zip(metric_ids, cols.values, strict=True):
            measured = [v == v for v in values]  # NaN != NaN: not measured
            rows = compress(zip(dev_col, repeat(metric_id), cols.ts_ms, values, cols.device_seq, *extra), measured)
            cur = self.conn.executemany(sql, rows)
            count += cur.rowcount
        return count

    def _insert_summaries(self, frame: SummaryBatch, node_id: int) -> None:
        """One row per window of a new summary frame."""
        device_ids = self._devices.ids(frame.devices)
        metric_ids = self._metrics.ids(frame.metrics)
        stats = [frame.stat(name).tolist() for name in ("min", "max", "sum", "first", "last", "m2")]
        starts = unpack_deltas(frame.window_start_ms)
        counts = array("q", frame.count).tolist() if frame.rows else []
        devs, mets = unpack_indexes(frame.device_index), unpack_indexes(frame.metric_index)
        # A window already stored (a node re-sending summaries from its summary tier) is kept once.
        self.conn.executemany(
            "INSERT INTO window_summaries(node_id, session, seq, device_id, metric_id, start_ms, window_ms, count,"
            " min, max, sum, first, last, m2, alpha, sketch) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM window_summaries WHERE device_id = ?4 AND metric_id = ?5"
            " AND start_ms = ?6 AND window_ms = ?7)",
            (
                (node_id, frame.session, frame.seq, device_ids[devs[i]], metric_ids[mets[i]], starts[i],
                 frame.window_ms, counts[i], *(column[i] for column in stats), frame.alpha, frame.sketches[i])
                for i in range(frame.rows)
            ),
        )  # fmt: skip

    def summaries(self) -> list[dict[str, Any]]:
        """Every stored window (for queries and tests), by device, metric and start."""
        cur = self.conn.execute(
            "SELECT d.name, m.name, s.start_ms, s.window_ms, s.count, s.min, s.max, s.sum, s.first, s.last, s.m2,"
            " s.alpha, s.sketch FROM window_summaries s JOIN devices d ON d.id = s.device_id"
            " JOIN metrics m ON m.id = s.metric_id ORDER BY d.name, m.name, s.start_ms"
        )
        keys = ("device", "metric", "start_ms", "window_ms", "count", "min", "max", "sum", "first", "last", "m2",
                "alpha", "sketch")  # fmt: skip
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]

    def record_birth(self, birth: NodeBirth) -> None:
        self._nodes.ids([birth.node])
        self.conn.execute(
            "UPDATE nodes SET role = ?, version = ?, session = ?, connects = ?, online = 1,"
            " last_birth_ms = ?, last_seen_ms = ? WHERE name = ?",
            (birth.role, birth.version, birth.session, birth.connects, birth.ts_ms, birth.ts_ms, birth.node),
        )

    def record_death(self, death: NodeDeath, received_ms: int) -> None:
        self._nodes.ids([death.node])
        # A Will from an older session must not mark a node that already came back as offline.
        self.conn.execute(
            "UPDATE nodes SET online = 0, last_death_reason = ?, last_seen_ms = ?"
            " WHERE name = ? AND (session IS NULL OR session <= ?)",
            (death.reason, death.ts_ms or received_ms, death.node, death.session),
        )

    def insert_event(self, event: Event, received_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO events(node, ts_ms, received_ms, kind, severity, source, message, value, labels, details,"
            " session, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.node,
                event.ts_ms,
                received_ms,
                event.kind,
                event.severity,
                event.source,
                event.message,
                event.value if event.value is None or math.isfinite(event.value) else None,
                orjson.dumps(event.labels).decode(),
                orjson.dumps(event.details, default=_json_default).decode(),
                event.session,
                event.seq,
            ),
        )

    def insert_dead_letter(self, letter: DeadLetter) -> None:
        self.conn.execute(
            "INSERT INTO dead_letters(received_ms, node, topic, reason, payload, payload_size)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (letter.ts_ms, letter.node, letter.topic, letter.reason, letter.payload, letter.payload_size),
        )

    def stats(self) -> dict[str, Any]:
        """Counts for ``pymonitor stats``: one cheap query per figure."""

        def one(sql: str) -> Any:
            return self.conn.execute(sql).fetchone()[0]

        first, last = self.conn.execute("SELECT MIN(ts_ms), MAX(ts_ms) FROM readings").fetchone()
        return {
            "path": str(self.path),
            "nodes": one("SELECT COUNT(*) FROM nodes"),
            "nodes_online": one("SELECT COUNT(*) FROM nodes WHERE online = 1"),
            "devices": one("SELECT COUNT(*) FROM devices"),
            "metrics": one("SELECT COUNT(*) FROM metrics"),
            "frames": one("SELECT COUNT(*) FROM frames WHERE event = 0"),
            "readings": one("SELECT COUNT(*) FROM readings"),
            "backfill_frames": one("SELECT COUNT(*) FROM frames WHERE backfill = 1"),
            "events": one("SELECT COUNT(*) FROM events"),
            "dead_letters": one("SELECT COUNT(*) FROM dead_letters"),
            "first_ts_ms": first,
            "last_ts_ms": last,
        }

    def per_node(self) -> list[dict[str, Any]]:
        """Frames and readings per node, with its last known state."""
        rows = self.conn.execute(
            "SELECT n.name, n.role, n.online, n.session, n.connects, n.last_seen_ms,"
            " COUNT(f.seq), COALESCE(SUM(f.readings), 0)"
            " FROM nodes n LEFT JOIN frames f ON f.node_id = n.id AND f.event = 0 GROUP BY n.id ORDER BY n.name"
        ).fetchall()
        keys = ("node", "role", "online", "session", "connects", "last_seen_ms", "frames", "readings")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def reading_accounting(self) -> dict[str, int]:
        """Rows vs distinct (device, seq, metric): the duplicate count comes from the data itself."""
        rows = int(self.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
        dup_rows = self.conn.execute(
            "SELECT COALESCE(SUM(c - 1), 0) FROM (SELECT COUNT(*) c FROM readings"
            " GROUP BY device_id, device_seq, metric_id HAVING c > 1)"
        ).fetchone()[0]
        return {"rows": rows, "duplicates": int(dup_rows), "distinct": rows - int(dup_rows)}

    def traffic(self, day: str | None = None) -> list[dict[str, Any]]:
        """Bytes and frames per node, day, direction and stream (one day, or all)."""
        sql = "SELECT node, day, direction, stream, bytes, frames FROM traffic"
        cur = self.conn.execute(sql + (" WHERE day = ?" if day else "") + " ORDER BY day, node, direction, stream",
                                (day,) if day else ())  # fmt: skip
        keys = ("node", "day", "direction", "stream", "bytes", "frames")
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]

    def recent_events(self, limit: int = 20) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT node, ts_ms, kind, severity, source, message FROM events ORDER BY id DESC LIMIT ?", (limit,)
        )
        keys = ("node", "ts_ms", "kind", "severity", "source", "message")
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


_INSERT_READING = "INSERT INTO readings(device_id, metric_id, ts_ms, value, device_seq) VALUES (?, ?, ?, ?, ?)"
_INSERT_CORRECTED = (
    "INSERT INTO readings(device_id, metric_id, ts_ms, value, device_seq, ts_corrected_ms) VALUES (?, ?, ?, ?, ?, ?)"
)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot show {type(value).__name__} as JSON")
