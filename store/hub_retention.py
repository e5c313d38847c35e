"""Retention tiers of the hub store: roll readings up into 1m/1h/1d summaries, expire, keep a budget.

A pass (:meth:`HubRetention.run`) runs on its own connection in short ``BEGIN IMMEDIATE``
transactions, each bounded by ``rows_per_tx`` source rows, so ingest waits at most one of them;
a pass runs at most ``tx_per_pass`` of them per tier and step, then the next pass goes on.
Every step is idempotent: a rollup window is recomputed whole from its source and replaces its
row, and a watermark per tier (``retention_marks``) says where the next pass resumes. A pass cut
short (a crash, an error) resumes from the last committed watermark.

Late readings (a backfill, a device whose clock was off) that land in a minute already rolled up
are found by rowid (``raw_rowid``: the highest rowid any pass has seen) and their windows are
recomputed in 1m, then 1h and 1d where those are rolled up already. A late reading older than
the raw rows already expired cannot be merged without the rest of its minute: it is deleted and
counted (``raw``/``late_expired``).

Time is ``readings.ts_ms`` (what the device said), as indexed; the summaries nodes send
(``window_summaries``) stay their own tier ("node"), expired like the hub tier of their window
size, never rolled into the hub's rollups (a raw backfill of the same window would count twice).
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import cbor2
import numpy as np

from pymonitor.actors.hub.retention import (
    DROP_ORDER,
    ROLLUP_TIERS,
    TIER_BY_NAME,
    RetentionSettings,
    RollupTier,
    age_cutoff,
    chunk_end,
    floor_to,
    node_summary_keep_ms,
    over_budget,
    rollup_limit,
)
from pymonitor.actors.summary import DDSketch, Summary, Tumbling, rollup, summarise
from pymonitor.actors.summary.sketch import DEFAULT_ALPHA

from .database import BUSY_TIMEOUT_MS

BUDGET_CHUNK_ROWS = 2_000
"""Rows deleted per budget transaction before the size is measured again."""
MAX_CHUNKS = 200
"""Expiry and budget transactions per tier and pass (each at most ``rows_per_tx`` rows)."""

Series = tuple[int, int]  # (device_id, metric_id)

_ROLLUP_COLUMNS = (
    "tier, start_ms, device_id, metric_id, count, skipped, min, max, sum, mean, m2, first, last,"
    " first_ts_ms, last_ts_ms, sketch"
)


@dataclass
class PassReport:
    """What one pass did."""

    rolled: dict[str, int] = field(default_factory=dict)  # windows written per tier
    late: int = 0  # late raw rows whose windows were recomputed
    dropped: dict[str, int] = field(default_factory=dict)  # "tier/reason" -> rows
    used_bytes: int = 0  # after the pass
    file_bytes: int = 0

    def add_drop(self, tier: str, reason: str, rows: int) -> None:
        if rows:
            key = f"{tier}/{reason}"
            self.dropped[key] = self.dropped.get(key, 0) + rows


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _to_row(code: int, device: int, metric: int, s: Summary) -> tuple[Any, ...]:
    """A one-value window stores no sketch (it is rebuilt from the value on reading: ~60 bytes less)."""
    one = s.count == 1 and s.skipped == 0 and s.sketch is not None and s.sketch.alpha == DEFAULT_ALPHA
    sketch = None if s.sketch is None or one else cbor2.dumps(s.sketch.to_dict())
    return (code, s.start_ms, device, metric, s.count, s.skipped, s.min, s.max, s.sum, s.mean, s.m2,
            _num(s.first), _num(s.last), s.first_ts_ms, s.last_ts_ms, sketch)  # fmt: skip


def _from_row(row: tuple[Any, ...], window_ms: int, single: DDSketch | None = None) -> Summary:
    """A stored rollup; ``single``: the sketch of a one-value window already rebuilt (see :func:`_singles`)."""
    start, count, skipped, lo, hi, total, mean, m2, first, last, first_ts, last_ts, sketch = row
    nan = math.nan
    if sketch is not None:
        rebuilt = DDSketch.from_dict(cbor2.loads(sketch))
    elif single is not None:
        rebuilt = single
    else:  # a one-value window (see _to_row)
        rebuilt = DDSketch(DEFAULT_ALPHA)
        rebuilt.add(first)
    return Summary(
        start_ms=start, end_ms=start + window_ms, count=count, skipped=skipped,
        sum=total if total is not None else 0.0, min=lo if lo is not None else math.inf,
        max=hi if hi is not None else -math.inf, mean=mean if mean is not None else 0.0,
        m2=m2 if m2 is not None else 0.0, first=nan if first is None else first, last=nan if last is None else last,
        first_ts_ms=first_ts or 0, last_ts_ms=last_ts or 0,
        sketch=rebuilt,
    )  # fmt: skip


class HubRetention:
    """Runs retention passes over a hub store file (already migrated by :class:`HubStore`)."""

    def __init__(self, path: str | Path, settings: RetentionSettings) -> None:
        self.path = Path(path)
        self.settings = settings
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.incremental_vacuum = int(self.conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2
        # Rollup scans and expiry need time order; made here, not by a migration, so a hub without
        # retention does not pay for the index on every insert.
        self.conn.execute("CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts_ms)")

    def close(self) -> None:
        self.conn.close()

    # -- the pass -------------------------------------------------------------------------------

    def run(self, now_ms: int) -> PassReport:
        """One bounded pass: late raw rows, then rollups 1m → 1h → 1d, then expiry, then the budget."""
        report = PassReport()
        txs = self.settings.tx_per_pass
        for _ in range(txs):
            if self._late(report) < self.settings.rows_per_tx:
                break
        for tier in ROLLUP_TIERS:
            for _ in range(txs):
                if not self._forward(tier, now_ms, report):
                    break
        self._expire(now_ms, report)
        self._budget(report)
        report.used_bytes, report.file_bytes = self.used_bytes(), self.file_bytes()
        return report

    def _forward(self, tier: RollupTier, now_ms: int, report: PassReport) -> bool:
        """One chunk of windows rolled up, in one transaction; False when there was nothing to do."""
        with self._tx():
            marks = self.marks()
            limit = rollup_limit(tier, now_ms, self.settings.settle_ms, marks.get(tier.source))
            if limit is None:
                return False
            mark = marks.get(tier.name)
            if mark is None:
                first = self._source_min(tier)
                if first is None:
                    return False
                mark = floor_to(first, tier.window_ms)
                if tier.source == "raw":
                    self._set_mark("raw_rowid", self._max_rowid())
            if mark >= limit:
                self._set_mark(tier.name, mark)
                return False
            nth = self._source_nth(tier, mark, limit, self.settings.rows_per_tx)
            end = chunk_end(mark, limit, tier.window_ms, nth)
            written = self._roll(tier, mark, end, None)
            self._set_mark(tier.name, end)
        report.rolled[tier.name] = report.rolled.get(tier.name, 0) + written
        return True

    def _late(self, report: PassReport) -> int:
        """Recompute the windows that readings arriving after their minute was rolled up fell into;
        returns the late rows looked at (``rows_per_tx`` at most)."""
        with self._tx():
            marks = self.marks()
            seen, minute_mark = marks.get("raw_rowid"), marks.get("1m")
            if seen is None or minute_mark is None:
                return 0
            rows = self.conn.execute(
                "SELECT rowid, device_id, metric_id, ts_ms FROM readings WHERE rowid > ? AND ts_ms < ?"
                " ORDER BY rowid LIMIT ?",
                (seen, minute_mark, self.settings.rows_per_tx),
            ).fetchall()
            top = rows[-1][0] if len(rows) == self.settings.rows_per_tx else self._max_rowid()
            expired_before = marks.get("raw_expired")
            # the rest of such a minute is gone: recomputing it would replace the rollup with a part
            gone = [r for r in rows if expired_before is not None and floor_to(r[3], 60_000) < expired_before]
            if gone:
                self.conn.executemany("DELETE FROM readings WHERE rowid = ?", ((r[0],) for r in gone))
                self._count_drop("raw", "late_expired", len(gone), report)
            windows = {((r[1], r[2]), floor_to(r[3], 60_000)) for r in rows if r not in gone}
            for tier in ROLLUP_TIERS:
                if not windows:
                    break
                tier_mark = marks.get(tier.name)
                source_expired = marks.get(f"{tier.source}_expired")
                todo = {(s, floor_to(t, tier.window_ms)) for s, t in windows}
                todo = {(s, t) for s, t in todo if tier_mark is not None and t < tier_mark}
                if source_expired is not None:
                    todo = {(s, t) for s, t in todo if t >= source_expired}
                for series, start in sorted(todo):
                    self._roll(tier, start, start + tier.window_ms, series)
                windows = todo
            self._set_mark("raw_rowid", top if top is not None else seen)
        report.late += len(rows) - len(gone)
        return len(rows)

    def _roll(self, tier: RollupTier, start: int, end: int, series: Series | None) -> int:
        """Summaries of ``tier`` for windows in [start, end) from its source, written over old rows."""
        where, args = "", cast("tuple[int, ...]", ())
        if series is not None:
            where, args = " AND device_id = ? AND metric_id = ?", series
        out: list[tuple[Any, ...]] = []
        window = Tumbling(tier.window_ms)
        if tier.source == "raw":
            cur = self.conn.execute(
                f"SELECT device_id, metric_id, ts_ms, value FROM readings WHERE ts_ms >= ? AND ts_ms < ?{where}"
                " ORDER BY device_id, metric_id, ts_ms",
                (start, end, *args),
            )
            for (device, metric), ts, values in _grouped_raw(cur):
                for s in summarise(ts, values, window, quantiles=True):
                    out.append(_to_row(tier.code, device, metric, s))
        else:
            source = TIER_BY_NAME[tier.source]
            cur = self.conn.execute(
                "SELECT device_id, metric_id, start_ms, count, skipped, min, max, sum, mean, m2, first, last,"
                " first_ts_ms, last_ts_ms, sketch FROM rollups"
                f" WHERE tier = ? AND start_ms >= ? AND start_ms < ?{where}"
                " ORDER BY device_id, metric_id, start_ms",
                (source.code, start, end, *args),
            )
            by_series: dict[Series, list[Summary]] = defaultdict(list)
            fetched = cur.fetchall()
            singles = _singles([row[10] for row in fetched if row[14] is None])
            for row in fetched:
                single = next(singles) if row[14] is None else None
                by_series[(row[0], row[1])].append(_from_row(row[2:], source.window_ms, single))
            for (device, metric), finer in by_series.items():
                for s in rollup(finer, window):
                    out.append(_to_row(tier.code, device, metric, s))
        marks = ",".join("?" * 16)
        self.conn.executemany(f"INSERT OR REPLACE INTO rollups ({_ROLLUP_COLUMNS}) VALUES ({marks})", out)
        return len(out)

    def _expire(self, now_ms: int, report: PassReport) -> None:
        marks = self.marks()
        s = self.settings
        raw_cut = age_cutoff(now_ms, s.keep_ms("raw"), marks.get("1m"))
        if marks.get("1m") is not None:
            self._drop_raw(raw_cut, "age", report)
        for i, tier in enumerate(ROLLUP_TIERS):
            nxt = ROLLUP_TIERS[i + 1].name if i + 1 < len(ROLLUP_TIERS) else None
            next_mark = marks.get(nxt) if nxt else None
            if nxt is not None and next_mark is None:
                continue  # nothing rolled up further yet: keep everything
            self._drop_rollups(tier, age_cutoff(now_ms, s.keep_ms(tier.name), next_mark), "age", report)
        for (window_ms,) in self.conn.execute("SELECT DISTINCT window_ms FROM window_summaries").fetchall():
            self._drop_node(now_ms - node_summary_keep_ms(window_ms, s), window_ms, "age", report)

    def _budget(self, report: PassReport) -> None:
        if over_budget(self.used_bytes(), self.settings) == 0:
            return
        marks = self.marks()
        target = self.settings.budget_bytes * self.settings.low_water
        far_future = 2**62
        for tier, rolled_only in DROP_ORDER:
            for _ in range(MAX_CHUNKS * 4):
                if self.used_bytes() <= target:
                    self._release()
                    return
                reason = "budget" if rolled_only or tier != "raw" else "budget_unrolled"
                if tier == "raw":
                    bound = marks.get("1m") if rolled_only else far_future
                    n = 0 if bound is None else self._drop_raw(bound, reason, report, chunks=1, chunk=BUDGET_CHUNK_ROWS)
                elif tier == "node":
                    n = self._drop_node(far_future, None, reason, report, chunks=1, chunk=BUDGET_CHUNK_ROWS)
                else:
                    idx = [t.name for t in ROLLUP_TIERS].index(tier)
                    nxt = ROLLUP_TIERS[idx + 1].name if idx + 1 < len(ROLLUP_TIERS) else None
                    bound = (marks.get(nxt) if nxt else far_future) if rolled_only else far_future
                    if bound is None:
                        n = 0
                    else:
                        rt = TIER_BY_NAME[tier]
                        n = self._drop_rollups(rt, bound, reason, report, chunks=1, chunk=BUDGET_CHUNK_ROWS)
                if n == 0:
                    break
        self._release()

    def _release(self) -> None:
        if self.incremental_vacuum:
            self.conn.execute("PRAGMA incremental_vacuum")

    # -- deletes, chunked, each chunk its own transaction and counted -----------------------------

    def _drop_raw(
        self, before: int, reason: str, report: PassReport, chunks: int = MAX_CHUNKS, chunk: int | None = None
    ) -> int:
        chunk = chunk or self.settings.rows_per_tx
        total = 0
        for _ in range(chunks):
            with self._tx():
                cur = self.conn.execute(
                    "DELETE FROM readings WHERE rowid IN"
                    " (SELECT rowid FROM readings WHERE ts_ms < ? ORDER BY ts_ms LIMIT ?) RETURNING ts_ms",
                    (before, chunk),
                )
                gone = [r[0] for r in cur.fetchall()]
                if gone:
                    newest = max(gone) + 1
                    old = self.marks().get("raw_expired")
                    self._set_mark("raw_expired", newest if old is None else max(old, newest))
                    self._count_drop("raw", reason, len(gone), report)
            total += len(gone)
            if len(gone) < chunk:
                break
        return total

    def _drop_rollups(
        self, tier: RollupTier, before: int, reason: str, report: PassReport, chunks: int = MAX_CHUNKS,
        chunk: int | None = None,
    ) -> int:  # fmt: skip
        chunk = chunk or self.settings.rows_per_tx
        total = 0
        for _ in range(chunks):
            with self._tx():
                row = self.conn.execute(
                    "SELECT start_ms FROM rollups WHERE tier = ? AND start_ms < ? ORDER BY start_ms LIMIT 1 OFFSET ?",
                    (tier.code, before, chunk),
                ).fetchone()
                bound = before if row is None else max(row[0], self._min_start(tier) + 1)
                n = self.conn.execute(
                    "DELETE FROM rollups WHERE tier = ? AND start_ms < ?", (tier.code, bound)
                ).rowcount
                if n:
                    old = self.marks().get(f"{tier.name}_expired")
                    self._set_mark(f"{tier.name}_expired", bound if old is None else max(old, bound))
                    self._count_drop(tier.name, reason, n, report)
            total += n
            if row is None:
                break
        return total

    def _min_start(self, tier: RollupTier) -> int:
        row = self.conn.execute("SELECT MIN(start_ms) FROM rollups WHERE tier = ?", (tier.code,)).fetchone()
        return int(row[0]) if row[0] is not None else 0

    def _drop_node(
        self, before: int, window_ms: int | None, reason: str, report: PassReport, chunks: int = MAX_CHUNKS,
        chunk: int | None = None,
    ) -> int:  # fmt: skip
        chunk = chunk or self.settings.rows_per_tx
        which = "" if window_ms is None else " AND window_ms = ?"
        args = () if window_ms is None else (window_ms,)
        total = 0
        for _ in range(chunks):
            with self._tx():
                n = self.conn.execute(
                    "DELETE FROM window_summaries WHERE rowid IN (SELECT rowid FROM window_summaries"
                    f" WHERE start_ms < ?{which} ORDER BY start_ms LIMIT ?)",
                    (before, *args, chunk),
                ).rowcount
                self._count_drop("node", reason, n, report)
            total += n
            if n < chunk:
                break
        return total

    # -- helpers --------------------------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self.conn)

    def marks(self) -> dict[str, int]:
        return {name: int(v) for name, v in self.conn.execute("SELECT name, value FROM retention_marks")}

    def _set_mark(self, name: str, value: int | None) -> None:
        if value is not None:
            self.conn.execute("INSERT OR REPLACE INTO retention_marks (name, value) VALUES (?, ?)", (name, value))

    def _count_drop(self, tier: str, reason: str, rows: int, report: PassReport) -> None:
        if rows <= 0:
            return
        self.conn.execute(
            "INSERT INTO retention_drops (tier, reason, rows) VALUES (?, ?, ?)"
            " ON CONFLICT (tier, reason) DO UPDATE SET rows = rows + excluded.rows",
            (tier, reason, rows),
        )
        report.add_drop(tier, reason, rows)

    def _max_rowid(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM readings").fetchone()[0])

    def _source_min(self, tier: RollupTier) -> int | None:
        if tier.source == "raw":
            row = self.conn.execute("SELECT MIN(ts_ms) FROM readings").fetchone()
        else:
            row = self.conn.execute(
                "SELECT MIN(start_ms) FROM rollups WHERE tier = ?", (TIER_BY_NAME[tier.source].code,)
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def _source_nth(self, tier: RollupTier, start: int, end: int, n: int) -> int | None:
        if tier.source == "raw":
            sql = "SELECT ts_ms FROM readings WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms"
            args: tuple[int, ...] = (start, end)
        else:
            sql = "SELECT start_ms FROM rollups WHERE tier = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms"
            args = (TIER_BY_NAME[tier.source].code, start, end)
        row = self.conn.execute(sql + " LIMIT 1 OFFSET ?", (*args, n)).fetchone()
        return None if row is None else int(row[0])

    def used_bytes(self) -> int:
        """Bytes of the main file holding data: ``(page_count - freelist_count) * page_size``."""
        pages = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * int(self.conn.execute("PRAGMA page_size").fetchone()[0])

    def file_bytes(self) -> int:
        """``page_count * page_size``: the main file as SQLite sees it (the WAL not included)."""
        pages = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
        return pages * int(self.conn.execute("PRAGMA page_size").fetchone()[0])

    def tier_stats(self) -> dict[str, Any]:
        """Rows per tier, watermarks and drops, for ``pymonitor stats``."""
        rows = {"raw": int(self.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])}
        for tier in ROLLUP_TIERS:
            rows[tier.name] = int(
                self.conn.execute("SELECT COUNT(*) FROM rollups WHERE tier = ?", (tier.code,)).fetchone()[0]
            )
        rows["node"] = int(self.conn.execute("SELECT COUNT(*) FROM window_summaries").fetchone()[0])
        drops = {f"{t}/{r}": int(n) for t, r, n in self.conn.execute("SELECT tier, reason, rows FROM retention_drops")}
        free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
        return {"rows": rows, "marks": self.marks(), "dropped": drops, "used_bytes": self.used_bytes(),
                "file_bytes": self.file_bytes(), "free_pages": free}  # fmt: skip


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")


def _grouped_raw(cur: Iterable[tuple[int, int, int, float]]) -> Iterable[tuple[Series, np.ndarray, np.ndarray]]:
    """Rows ordered by (device, metric, ts) as one (series, ts array, value array) per series."""
    rows = list(cur)
    if not rows:
        return
    devices = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    metrics = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    ts = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((r[3] for r in rows), dtype=np.float64, count=len(rows))
    change = np.flatnonzero((devices[1:] != devices[:-1]) | (metrics[1:] != metrics[:-1])) + 1
    bounds = [0, *change.tolist(), len(rows)]
    for lo, hi in pairwise(bounds):
        yield (int(devices[lo]), int(metrics[lo])), ts[lo:hi], values[lo:hi]


def _singles(values: list[float]) -> Iterator[DDSketch]:
    """Sketches of one value each, bucketed in one vectorised call (``DDSketch.add`` per value is ~45 µs)."""
    if not values:
        return
    v = np.asarray(values, dtype=np.float64)
    probe = DDSketch(DEFAULT_ALPHA)
    indices = probe.bucket_indices(np.where(v != 0.0, np.abs(v), 1.0)).tolist()
    for value, index in zip(v.tolist(), indices, strict=True):
        sketch = DDSketch(DEFAULT_ALPHA)
        if value > 0.0:
            sketch.add_buckets({index: 1}, {}, 0, value, value)
        elif value < 0.0:
            sketch.add_buckets({}, {index: 1}, 0, value, value)
        else:
            sketch.add_buckets({}, {}, 1, value, value)
        yield sketch
