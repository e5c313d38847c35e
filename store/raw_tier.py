"""A node's raw tier: the reading batches it made, kept for a while so the hub can ask for a window later.

The node sends summaries by default; a ``raw.request.v1`` gets the raw readings of a window from
here while the tier still holds them. One SQLite file (WAL), owned by one actor thread, like the
outbox. A batch is stored as it was made (its encoded payload, plain or ``frame.packed.v1``), with
indexed columns to select it by time and by device. :meth:`RawTier.window` cuts each batch down
to the rows inside the window and re-encodes it in the same envelope and codec: value columns are
copied as they are on the wire (quantized steps stay bit-exact, ``value_scale`` and
``received_ms`` as stored), and a batch wholly inside the window with no device filter is
served as its stored bytes. A cut batch keeps its ``(node, session, seq)``.

Retention: :meth:`RawTier.expire` deletes batches whose newest row is older than ``keep_days``
(measurement time), then, past ``cap_bytes`` (the sum of the stored payloads, not the file
size), the oldest batches first. ``add`` keeps the cap too. Both are counted in the tallies,
which survive restarts (``expired_*``, ``evicted_*``); ``dropped_through_ms`` in :meth:`status`
is the newest measurement time of any batch dropped: the tier is complete only after it.

A corrupt file is set aside and a new one started (``set_aside`` says where).

The same store is the node's **summary tier**: given ``summary.batch.v1`` frames (the summaries
the node sent, kept ``summary_keep_days``, 90 by default) it keeps them under the same rules; a
summary frame's bounds are its windows', and a window request gets every frame with a window
overlapping it, whole (frames of summaries are small; the hub keeps each window once).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pymonitor.messages.codec import MAX_FRAME_BYTES, decode, encode
from pymonitor.messages.errors import MessageError
from pymonitor.messages.packing import PackedFrame, pack, unpack
from pymonitor.messages.readings import ReadingBatch
from pymonitor.messages.summaries import SummaryBatch
from pymonitor.messages.thinning import take_rows

from .database import TALLIES_TABLE, Migration, add_tally, open_store

DAY_MS = 86_400_000
RAW_KEEP_DAYS = 7
RAW_CAP_BYTES = 512 * 1024 * 1024
"""Default cap: about what ``pymonitor storage plan`` gives for 7 days of 1,000 metrics a minute."""
SUMMARY_KEEP_DAYS = 90
SUMMARY_CAP_BYTES = 128 * 1024 * 1024
"""The summary tier's defaults: the remote seed keeps 90 days of summaries on the node; hourly windows
of 1,000 metrics (about 22 B each with a sketch, bench summarize) take about 48 MB in that time."""

RAW_TIER_MIGRATIONS = (
    Migration(
        1,
        (
            """CREATE TABLE batches (
                id INTEGER PRIMARY KEY, added_ms INTEGER NOT NULL,
                first_ts_ms INTEGER NOT NULL, last_ts_ms INTEGER NOT NULL,
                rows INTEGER NOT NULL, readings INTEGER NOT NULL, size INTEGER NOT NULL,
                codec TEXT NOT NULL, metrics TEXT NOT NULL, payload BLOB NOT NULL)""",
            # codec: '' for a plain frame, else the frame.packed.v1 codec; metrics: a JSON list
            "CREATE INDEX batches_first ON batches (first_ts_ms)",
            "CREATE INDEX batches_last ON batches (last_ts_ms)",
            """CREATE TABLE batch_devices (
                device TEXT NOT NULL, batch_id INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
                PRIMARY KEY (device, batch_id)) WITHOUT ROWID""",
            "CREATE INDEX batch_devices_batch ON batch_devices (batch_id)",
            TALLIES_TABLE,
        ),
    ),
)


class RawTierError(ValueError):
    """A payload the raw tier cannot take (not a reading batch, or columns that contradict its bounds)."""


def _open_batch(payload: bytes) -> tuple[ReadingBatch | SummaryBatch, str]:
    """The batch in a payload and the codec of its envelope ('' for a plain frame)."""
    outer = decode(payload)
    if isinstance(outer, PackedFrame):
        inner = decode(unpack(outer, MAX_FRAME_BYTES))
        codec = outer.codec
    else:
        inner, codec = outer, ""
    if not isinstance(inner, ReadingBatch | SummaryBatch):
        raise MessageError(
            f"expected a reading.batch.v1 or summary.batch.v1 frame, got {type(inner).__name__}", path="$.t"
        )
    return inner, codec


def _row_bounds(batch: ReadingBatch | SummaryBatch) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First and last measurement time each row covers (a summary row: its window)."""
    if isinstance(batch, SummaryBatch):
        starts = _absolute(batch.window_start_ms)
        return starts, starts + (batch.window_ms - 1)
    ts = _absolute(batch.ts_ms)
    return ts, ts


def _absolute(column: bytes) -> npt.NDArray[np.int64]:
    # Every partial sum is a value of the column, which the batch validated to fit int64: no wrap.
    return np.cumsum(np.frombuffer(column, dtype="<i8")).astype(np.int64)


class RawTier:
    """Reading batches of one node, on disk, selectable by time window and device."""

    def __init__(self, path: str | Path, *, keep_days: float = RAW_KEEP_DAYS, cap_bytes: int = RAW_CAP_BYTES) -> None:
        if keep_days < 0:
            raise RawTierError(f"keep_days must not be negative, got {keep_days}")
        if cap_bytes <= 0:
            raise RawTierError(f"cap_bytes must be positive, got {cap_bytes}")
        opened = open_store(path, RAW_TIER_MIGRATIONS)
        self.path = opened.path
        self.set_aside = opened.set_aside  # a corrupt file found at start, kept for forensics
        self.conn: sqlite3.Connection = opened.db.conn
        self.keep_days = keep_days
        self.cap_bytes = cap_bytes
        self.size_bytes = self._stored_bytes()

    def close(self) -> None:
        self.conn.close()

    def _stored_bytes(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(SUM(size), 0) FROM batches").fetchone()[0])

    # writing

    def add(self, payload: bytes, first_ts_ms: int, last_ts_ms: int, rows: int, readings: int, now_ms: int) -> None:
        """Commit a batch (an encoded ``reading.batch.v1``, plain or packed), and whatever the cap needs."""
        try:
            batch, codec = _open_batch(payload)
        except MessageError as exc:
            raise RawTierError(f"not a reading batch: {exc}") from None
        if batch.rows != rows:
            raise RawTierError(f"the batch holds {batch.rows} rows, not {rows}")
        if rows:
            lows, highs = _row_bounds(batch)
            low, high = int(lows.min()), int(highs.max())
            if low < first_ts_ms or high > last_ts_ms:
                raise RawTierError(f"rows from {low} to {high} ms lie outside [{first_ts_ms}, {last_ts_ms}]")
        elif first_ts_ms > last_ts_ms:
            raise RawTierError(f"first_ts_ms {first_ts_ms} is after last_ts_ms {last_ts_ms}")
        index = np.frombuffer(batch.device_index, dtype="<u4")
        devices = sorted({batch.devices[i] for i in np.unique(index).tolist()})
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "INSERT INTO batches (added_ms, first_ts_ms, last_ts_ms, rows, readings, size, codec, metrics, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now_ms,
                    first_ts_ms,
                    last_ts_ms,
                    rows,
                    readings,
                    len(payload),
                    codec,
                    json.dumps(batch.metrics),
                    payload,
                ),
            )
            conn.executemany(
                "INSERT INTO batch_devices (device, batch_id) VALUES (?, ?)", ((d, cur.lastrowid) for d in devices)
            )
            add_tally(conn, "frames", 1)
            add_tally(conn, "readings", readings)
            self.size_bytes += len(payload)
            self._evict_past_cap(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self.size_bytes = self._stored_bytes()
            raise

    def expire(self, now_ms: int) -> int:
        """Delete batches whose newest row is older than ``keep_days``, then the oldest past the cap; how many."""
        horizon = now_ms - round(self.keep_days * DAY_MS)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            frames, readings, size, newest = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(readings), 0), COALESCE(SUM(size), 0), MAX(last_ts_ms)"
                " FROM batches WHERE last_ts_ms < ?",
                (horizon,),
            ).fetchone()
            if frames:
                conn.execute("DELETE FROM batches WHERE last_ts_ms < ?", (horizon,))
                add_tally(conn, "expired_frames", frames)
                add_tally(conn, "expired_readings", readings)
                self._dropped_through(conn, newest)
                self.size_bytes -= size
            evicted = self._evict_past_cap(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self.size_bytes = self._stored_bytes()
            raise
        return int(frames) + evicted

    def _evict_past_cap(self, conn: sqlite3.Connection) -> int:
        """Past the cap, delete the batches with the oldest rows first; the newest batch always stays."""
        evicted = 0
        while self.size_bytes > self.cap_bytes:
            row = conn.execute(
                "SELECT id, size, readings, last_ts_ms FROM batches ORDER BY last_ts_ms, id LIMIT 1"
            ).fetchone()
            count = conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM batches LIMIT 2)").fetchone()[0]
            if row is None or count <= 1:
                break  # one batch larger than the cap is kept: dropping it would keep nothing
            batch_id, size, readings, last_ts_ms = row
            conn.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            self.size_bytes -= size
            add_tally(conn, "evicted_frames", 1)
            add_tally(conn, "evicted_readings", readings)
            self._dropped_through(conn, last_ts_ms)
            evicted += 1
        return evicted

    @staticmethod
    def _dropped_through(conn: sqlite3.Connection, last_ts_ms: int) -> None:
        conn.execute(
            "INSERT INTO tallies (name, value) VALUES ('dropped_through_ms', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)",
            (last_ts_ms,),
        )

    # reading

    def window(self, from_ms: int, to_ms: int, devices: set[str] | None = None) -> list[bytes]:
        """Frames of the rows measured in ``[from_ms, to_ms)`` (of ``devices``, if given), oldest batch first.

        ``[]`` when the tier holds none: compare ``from_ms`` with :meth:`oldest_ms` to tell a window
        already expired from one without data.
        """
        return list(self.iter_window(from_ms, to_ms, devices))

    def iter_window(self, from_ms: int, to_ms: int, devices: set[str] | None = None) -> Iterator[bytes]:
        """Like :meth:`window`, one frame at a time (a long window need not fit in memory)."""
        if from_ms >= to_ms or (devices is not None and not devices):
            return
        sql = "SELECT id, payload FROM batches WHERE first_ts_ms < ? AND last_ts_ms >= ?"
        args: tuple[Any, ...] = (to_ms, from_ms)
        if devices is not None:
            sql += " AND id IN (SELECT batch_id FROM batch_devices WHERE device IN (SELECT value FROM json_each(?)))"
            args += (json.dumps(sorted(devices)),)
        ids = [row[0] for row in self.conn.execute(sql + " ORDER BY first_ts_ms, id", args)]
        served = readings = uncut = 0
        for batch_id in ids:
            row = self.conn.execute("SELECT payload FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None:
                continue  # expired between the query and now
            frame, count, whole = self._cut(bytes(row[0]), from_ms, to_ms, devices)
            if frame is None:
                continue
            served += 1
            readings += count
            uncut += whole
            yield frame
        add_tally(self.conn, "served_windows", 1)
        add_tally(self.conn, "served_frames", served)
        add_tally(self.conn, "served_readings", readings)
        if uncut:
            add_tally(self.conn, "uncut_frames", uncut)

    @staticmethod
    def _cut(payload: bytes, from_ms: int, to_ms: int, devices: set[str] | None) -> tuple[bytes | None, int, bool]:
        """``(frame, readings, served whole because it could not be cut)``; no frame when no row is inside."""
        batch, codec = _open_batch(payload)
        lows, highs = _row_bounds(batch)
        inside = (highs >= from_ms) & (lows < to_ms)
        if devices is not None:
            wanted = np.array([d in devices for d in batch.devices], dtype=np.bool_)
            inside &= wanted[np.frombuffer(batch.device_index, dtype="<u4")]
        rows = np.flatnonzero(inside)
        if len(rows) == 0:
            return None, 0, False
        if isinstance(batch, SummaryBatch):
            return payload, 0, False  # whole: a few hundred bytes, and the hub keeps each window once
        if len(rows) == batch.rows:
            return payload, batch.reading_count(), False  # as stored, bit for bit
        try:
            cut = take_rows(batch, rows)
        except OverflowError:
            # Kept rows too far apart to delta-code in int64: the whole batch beats none (the hub filters by time).
            return payload, batch.reading_count(), True
        frame = encode(cut)
        return (encode(pack(frame, codec)) if codec else frame), cut.reading_count(), False

    def oldest_ms(self) -> int | None:
        """The earliest measurement time the tier can still serve (None when empty)."""
        row = self.conn.execute("SELECT MIN(first_ts_ms) FROM batches").fetchone()
        return None if row[0] is None else int(row[0])

    def tallies(self) -> dict[str, int]:
        """Lifetime counters, kept in the file so they survive restarts."""
        return dict(self.conn.execute("SELECT name, value FROM tallies").fetchall())

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0])

    def status(self) -> dict[str, Any]:
        """What the tier holds, what it can serve, and the lifetime tallies."""
        frames, readings, newest = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(readings), 0), MAX(last_ts_ms) FROM batches"
        ).fetchone()
        tallies = self.tallies()
        return {
            "path": str(self.path),
            "set_aside": None if self.set_aside is None else str(self.set_aside),
            "frames": frames,
            "readings": readings,
            "size_bytes": self.size_bytes,
            "cap_bytes": self.cap_bytes,
            "keep_days": self.keep_days,
            "oldest_ms": self.oldest_ms(),
            "newest_ms": newest,
            "dropped_through_ms": tallies.pop("dropped_through_ms", None),
            "tallies": tallies,
        }
