"""Hub retention tiers: rollups equal direct summaries, expiry, budget, idempotence, resuming."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pymonitor.actors.hub.retention import DAY_MS, HOUR_MS, MINUTE_MS, RetentionSettings
from pymonitor.actors.summary import Summary, Tumbling, summarise
from pymonitor.store import HubStore
from pymonitor.store.hub_retention import HubRetention, _from_row

T0 = 1_767_225_600_000  # 2026-01-01, a day boundary
ALPHA = 0.01


def _insert(conn: sqlite3.Connection, rows: list[tuple[int, int, int, float]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO readings (device_id, metric_id, ts_ms, value, device_seq) VALUES (?, ?, ?, ?, 0)", rows
    )
    conn.execute("COMMIT")


def _series_rows(n_series: int, start: int, end: int, step_ms: int, seed: int = 3) -> list[tuple[int, int, int, float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for ts in range(start, end, step_ms):
        for s in range(n_series):
            rows.append((s // 2 + 1, s % 2 + 1, ts, float(np.round(20 + rng.normal(0, 5), 3))))
    return rows


def _settle(ret: HubRetention, now_ms: int, max_passes: int = 500) -> int:
    """Passes until one does nothing; returns how many ran."""
    for i in range(max_passes):
        report = ret.run(now_ms)
        if not report.rolled and not report.late and not report.dropped:
            return i + 1
    raise AssertionError("retention did not settle")


def _rollups(path: Path, code: int, window_ms: int) -> dict[tuple[int, int, int], Summary]:
    conn = sqlite3.connect(path)
    out = {}
    for row in conn.execute(
        "SELECT device_id, metric_id, start_ms, count, skipped, min, max, sum, mean, m2, first, last,"
        " first_ts_ms, last_ts_ms, sketch FROM rollups WHERE tier = ?",
        (code,),
    ):
        out[(row[0], row[1], row[2])] = _from_row(row[2:], window_ms)
    conn.close()
    return out


def _table(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    rows = conn.execute(sql).fetchall()
    conn.close()
    return rows


def _lower_quantile(values: np.ndarray, q: float) -> float:
    s = np.sort(values)
    return float(s[math.floor(q * (s.size - 1))])


@pytest.fixture
def hub(tmp_path: Path) -> HubStore:
    store = HubStore(tmp_path / "hub.db")
    yield store
    store.close()


def _check_equal(path: Path, rows: list[tuple[int, int, int, float]]) -> None:
    by_series: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for d, m, ts, v in rows:
        by_series.setdefault((d, m), []).append((ts, v))
    for code, window_ms in ((1, MINUTE_MS), (2, HOUR_MS), (3, DAY_MS)):
        got = _rollups(path, code, window_ms)
        expected_keys = set()
        for (d, m), samples in by_series.items():
            samples.sort()
            ts = np.array([t for t, _ in samples], dtype=np.int64)
            vs = np.array([v for _, v in samples])
            for want in summarise(ts, vs, Tumbling(window_ms), quantiles=True, alpha=ALPHA):
                key = (d, m, want.start_ms)
                expected_keys.add(key)
                have = got[key]
                assert (have.count, have.min, have.max, have.first, have.last) == (
                    want.count, want.min, want.max, want.first, want.last
                )  # fmt: skip
                assert (have.first_ts_ms, have.last_ts_ms) == (want.first_ts_ms, want.last_ts_ms)
                assert have.mean == pytest.approx(want.mean, rel=1e-9)
                assert have.stddev == pytest.approx(want.stddev, rel=1e-6, abs=1e-9)
                assert have.sum == pytest.approx(want.sum, rel=1e-9)
                inside = vs[(ts >= want.start_ms) & (ts < want.end_ms)]
                assert have.sketch is not None
                for q in (0.05, 0.5, 0.95, 0.99):
                    true = _lower_quantile(inside, q)
                    assert abs(have.sketch.quantile(q) - true) <= ALPHA * abs(true) + 1e-9
        assert set(got) == expected_keys, f"tier {code}"


def test_rollups_equal_direct_summaries_of_the_raw_rows(hub: HubStore) -> None:
    rows = _series_rows(4, T0, T0 + 2 * DAY_MS, 30_000)
    _insert(hub.conn, rows)
    ret = HubRetention(hub.path, RetentionSettings(rows_per_tx=5_000))
    _settle(ret, T0 + 3 * DAY_MS)
    assert ret.marks()["1d"] == T0 + 2 * DAY_MS
    _check_equal(hub.path, rows)
    ret.close()


def test_running_twice_rolls_up_nothing_twice(hub: HubStore) -> None:
    rows = _series_rows(3, T0, T0 + 3 * HOUR_MS, 10_000)
    _insert(hub.conn, rows)
    ret = HubRetention(hub.path, RetentionSettings())
    now = T0 + 5 * HOUR_MS
    _settle(ret, now)
    before = _table(hub.path, "SELECT * FROM rollups ORDER BY tier, start_ms, device_id, metric_id")
    again = ret.run(now)
    assert again.rolled == {} and again.late == 0
    assert _table(hub.path, "SELECT * FROM rollups ORDER BY tier, start_ms, device_id, metric_id") == before
    counts = dict(_table(hub.path, "SELECT tier, SUM(count) FROM rollups GROUP BY tier"))
    assert counts == {1: len(rows), 2: len(rows)}  # the day is not over yet


def test_an_interrupted_pass_resumes_where_it_stopped(hub: HubStore, tmp_path: Path) -> None:
    rows = _series_rows(4, T0, T0 + DAY_MS + 2 * HOUR_MS, 60_000)
    _insert(hub.conn, rows)
    now = T0 + 3 * DAY_MS
    ret = HubRetention(hub.path, RetentionSettings(rows_per_tx=700))
    calls = {"n": 0}
    real_roll = ret._roll

    def flaky(*args: Any) -> int:
        calls["n"] += 1
        if calls["n"] in (3, 9, 20):
            real_roll(*args)  # written, then the transaction fails: nothing of it may stay
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return real_roll(*args)

    ret._roll = flaky  # type: ignore[method-assign]
    failures = 0
    for _ in range(300):
        try:
            report = ret.run(now)
        except sqlite3.OperationalError:
            failures += 1
            continue
        if not report.rolled and not report.late and not report.dropped:
            break
    assert failures == 3
    ret.close()
    _check_equal(hub.path, rows)


def test_late_readings_are_rolled_into_their_minute_hour_and_day(hub: HubStore) -> None:
    rows = _series_rows(2, T0, T0 + DAY_MS + HOUR_MS, 60_000)
    _insert(hub.conn, rows)
    ret = HubRetention(hub.path, RetentionSettings())
    now = T0 + 3 * DAY_MS
    _settle(ret, now)
    late = [(1, 1, T0 + 5 * HOUR_MS + 30_500, 99.0), (1, 2, T0 + 7 * HOUR_MS + 1, -3.0)]
    _insert(hub.conn, late)
    report = ret.run(now)
    assert report.late == 2
    _check_equal(hub.path, rows + late)
    ret.close()


def test_each_tier_expires_by_its_own_age_and_drops_are_counted(hub: HubStore) -> None:
    rows = _series_rows(2, T0, T0 + 10 * DAY_MS, 600_000)
    _insert(hub.conn, rows)
    hub.conn.executemany(
        "INSERT INTO window_summaries VALUES (1, 1, ?, 1, 1, ?, 60000, 1, 0, 0, 0, 0, 0, 0, 0.01, x'')",
        [(i, T0 + i * DAY_MS) for i in range(10)],
    )
    settings = RetentionSettings(raw_days=2, minute_days=4, hour_days=6, day_days=8)
    ret = HubRetention(hub.path, settings)
    now = T0 + 10 * DAY_MS
    _settle(ret, now)
    (raw_min,) = _table(hub.path, "SELECT MIN(ts_ms) FROM readings")[0]
    assert raw_min >= now - 2 * DAY_MS
    for code, days in ((1, 4), (2, 6), (3, 8)):
        (start,) = _table(hub.path, f"SELECT MIN(start_ms) FROM rollups WHERE tier = {code}")[0]
        assert now - days * DAY_MS <= start < now - days * DAY_MS + DAY_MS
    drops = {(t, r): n for t, r, n in _table(hub.path, "SELECT tier, reason, rows FROM retention_drops")}
    (left,) = _table(hub.path, "SELECT COUNT(*) FROM readings")[0]
    assert drops[("raw", "age")] == len(rows) - left
    assert drops[("node", "age")] == 6  # one summary a day, 1m windows kept 4 days
    assert drops[("1m", "age")] > 0 and drops[("1h", "age")] > 0
    assert drops[("1d", "age")] == 2 * 2  # two series, days 1 and 2
    ret.close()


def test_the_file_stops_growing_at_the_budget_under_continued_ingest(hub: HubStore) -> None:
    budget_mb = 3.0
    settings = RetentionSettings(storage_budget_mb=budget_mb, rows_per_tx=5_000)
    ret = HubRetention(hub.path, settings)
    sizes = []
    ts = T0
    for _ in range(120):
        rows = [(s + 1, 1, ts + i * 1000, float((ts // 1000 + i + s) % 97)) for i in range(100) for s in range(20)]
        _insert(hub.conn, rows)
        ts += 100_000
        ret.run(ts)
        sizes.append(ret.file_bytes())
    budget = round(budget_mb * 1024 * 1024)
    assert max(sizes) <= budget
    # over the last 80,000 readings (about 5 MB of raw rows) the file grows by a few pages at most
    assert sizes[-1] - sizes[-40] <= 16 * 4096
    stats = ret.tier_stats()
    assert stats["dropped"]["raw/budget"] > 0
    assert stats["rows"]["1m"] > 0
    hub.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert hub.path.stat().st_size <= budget
    ret.close()


def test_a_pass_reads_at_most_rows_per_tx_times_tx_per_pass_source_rows(hub: HubStore) -> None:
    rows = _series_rows(5, T0, T0 + 6 * HOUR_MS, 10_000)  # 30 rows a minute
    _insert(hub.conn, rows)
    ret = HubRetention(hub.path, RetentionSettings(rows_per_tx=1_000, tx_per_pass=3))
    now = T0 + DAY_MS
    ret.run(now)
    (rolled,) = _table(hub.path, "SELECT SUM(count) FROM rollups WHERE tier = 1")[0]
    assert 3 * 1_000 - 3 * 30 <= rolled <= 3 * 1_000  # whole minutes, up to the 1,000th row of each chunk
    passes = 1 + _settle(ret, now)
    (rolled,) = _table(hub.path, "SELECT SUM(count) FROM rollups WHERE tier = 1")[0]
    assert rolled == len(rows) and passes >= len(rows) // 3_000
    ret.close()
