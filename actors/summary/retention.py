"""Retention tiers and how much disk they take, from row sizes measured in a real SQLite file.

Defaults on a node: raw readings 7 days, 1-minute summaries 90 days, 1-hour 365 days, 1-day 5 years.
Raw rows are the hub's ``readings`` table (its own migrations) plus a ``(device, metric, ts)`` index
for queries and expiry. Summaries are stored in blocks, one row per series and block (an hour of
1-minute summaries, a day of hours, 30 days of days): a zstd-compressed CBOR list of
:meth:`Summary.to_row`, where a one-sample window is just its time offset and value. A row per
summary would make the 1-minute tier, at one sample a minute, bigger than the raw data it replaces.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import zstandard

from pymonitor.store.hub_schema import HUB_MIGRATIONS

from .aggregate import rollup, summarise
from .errors import SummaryError
from .summary import Summary
from .windows import Tumbling

DAY_MS = 86_400_000
MEASURE_SAMPLES = 120_000  # raw samples generated to measure row sizes; a CLI run stays near a second


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    window_ms: int  # 0 = raw readings
    keep_days: float
    block_windows: int = 1  # summaries per stored row

    @property
    def per_day(self) -> float:
        """Windows per series and day."""
        return DAY_MS / self.window_ms if self.window_ms else 0.0


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("raw", 0, 7),
    Tier("1m", 60_000, 90, block_windows=60),
    Tier("1h", 3_600_000, 365, block_windows=24),
    Tier("1d", DAY_MS, 5 * 365, block_windows=30),
)


def tiers_with(raw_days: float, minute_days: float, hour_days: float, day_days: float) -> tuple[Tier, ...]:
    kept = (raw_days, minute_days, hour_days, day_days)
    for tier, days in zip(DEFAULT_TIERS, kept, strict=True):
        if days < 0:
            raise SummaryError(f"tiers at {tier.name}: keep days must be >= 0, got {days}")
    return tuple(Tier(t.name, t.window_ms, d, t.block_windows) for t, d in zip(DEFAULT_TIERS, kept, strict=True))


def _file_bytes(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA page_count").fetchone()[0]) * int(conn.execute("PRAGMA page_size").fetchone()[0])


def _series(n_series: int, samples: int, interval_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Sensor-like series: a slow random walk around 20 with 0.01 resolution, one row per series."""
    rng = np.random.default_rng(7)
    ts = np.arange(samples, dtype=np.int64) * interval_ms + 1_767_225_600_000  # 2026-01-01
    values = np.round(20.0 + rng.normal(0.0, 0.05, (n_series, samples)).cumsum(axis=1), 2)
    return ts, values


def measure_row_bytes(interval_s: float, workdir: Path | None = None) -> dict[str, float]:
    """Bytes per raw reading and per summary of each tier, from files written in a temp dir."""
    interval_ms = max(1, round(interval_s * 1000))
    samples = max(2, min(int(2 * DAY_MS / interval_ms), MEASURE_SAMPLES // 4))  # two days per series
    n_series = max(4, MEASURE_SAMPLES // samples)
    ts, values = _series(n_series, samples, interval_ms)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        conn = sqlite3.connect(Path(tmp) / "measure.db", isolation_level=None)
        for migration in HUB_MIGRATIONS:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute("CREATE INDEX readings_series_ts ON readings (device_id, metric_id, ts_ms)")
        conn.execute(
            "CREATE TABLE summaries (series_id INTEGER NOT NULL, tier INTEGER NOT NULL,"
            " block_start_ms INTEGER NOT NULL, rows BLOB NOT NULL,"
            " PRIMARY KEY (series_id, tier, block_start_ms)) WITHOUT ROWID"
        )
        empty = _file_bytes(conn)
        conn.execute("BEGIN")
        order = np.argsort(np.tile(ts, n_series), kind="stable")  # time-major, as readings arrive
        device = np.repeat(np.arange(n_series) // 4, samples)[order]
        metric = np.repeat(np.arange(n_series) % 4, samples)[order]
        conn.executemany(
            "INSERT INTO readings (device_id, metric_id, ts_ms, value, device_seq) VALUES (?, ?, ?, ?, ?)",
            zip(device.tolist(), metric.tolist(), np.tile(ts, n_series)[order].tolist(),
                values.ravel()[order].tolist(), (np.arange(order.size) // n_series).tolist(), strict=True),
        )  # fmt: skip
        conn.execute("COMMIT")
        out: dict[str, float] = {"raw": (_file_bytes(conn) - empty) / (n_series * samples)}
        minutes = [summarise(ts, values[s], Tumbling(60_000), quantiles=True) for s in range(n_series)]
        for code, tier in enumerate(DEFAULT_TIERS[1:], start=1):
            before, count = _file_bytes(conn), 0
            conn.execute("BEGIN")
            for s in range(n_series):
                summaries = minutes[s] if tier.window_ms == 60_000 else rollup(minutes[s], Tumbling(tier.window_ms))
                count += len(summaries)
                for start, block in _blocks(summaries, tier):
                    conn.execute("INSERT INTO summaries VALUES (?, ?, ?, ?)", (s, code, start, block))
            conn.execute("COMMIT")
            out[tier.name] = (_file_bytes(conn) - before) / max(count, 1)
        conn.close()
    return out


def _blocks(summaries: list[Summary], tier: Tier) -> list[tuple[int, bytes]]:
    span = tier.window_ms * tier.block_windows
    groups: dict[int, list[list[Any]]] = {}
    for s in summaries:
        start = s.start_ms // span * span
        groups.setdefault(start, []).append([(s.start_ms - start) // tier.window_ms, *s.to_row()])
    compressor = zstandard.ZstdCompressor(level=3)
    return [(start, compressor.compress(cbor2.dumps(rows))) for start, rows in groups.items()]


@dataclass(frozen=True, slots=True)
class TierPlan:
    tier: str
    keep_days: float
    rows: int  # readings for raw, summaries for the rollup tiers
    bytes_per_row: float
    bytes: int


@dataclass(frozen=True, slots=True)
class StoragePlan:
    metrics_per_min: float
    series: int
    days: float
    tiers: tuple[TierPlan, ...]
    total_bytes: int
    basis: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_storage(
    metrics_per_min: float,
    days: float,
    tiers: tuple[Tier, ...] = DEFAULT_TIERS,
    series: int | None = None,
    row_bytes: dict[str, float] | None = None,
) -> StoragePlan:
    """Disk held after ``days`` of ``metrics_per_min`` readings over ``series`` series (default: one a minute each)."""
    if metrics_per_min <= 0:
        raise SummaryError(f"metrics_per_min: expected > 0, got {metrics_per_min}")
    if days <= 0:
        raise SummaryError(f"days: expected > 0, got {days}")
    n_series = series if series is not None else max(1, round(metrics_per_min))
    if n_series <= 0:
        raise SummaryError(f"series: expected > 0, got {series}")
    samples_per_day = metrics_per_min * 1440 / n_series  # per series
    basis = "given"
    if row_bytes is None:
        row_bytes = measure_row_bytes(86_400 / samples_per_day)
        basis = f"measured: SQLite file in a temp dir, about {MEASURE_SAMPLES:,} readings and their summaries"
    plans = []
    for tier in tiers:
        kept = min(days, tier.keep_days)
        if tier.window_ms == 0:
            rows = metrics_per_min * 1440 * kept
        else:
            rows = n_series * min(tier.per_day, samples_per_day) * kept
        plans.append(TierPlan(tier.name, kept, round(rows), row_bytes[tier.name], round(rows * row_bytes[tier.name])))
    return StoragePlan(metrics_per_min, n_series, days, tuple(plans), sum(p.bytes for p in plans), basis)
