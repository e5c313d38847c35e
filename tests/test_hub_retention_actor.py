"""Retention in the hub actor (real SQLite, simulated clock) and against concurrent ingest."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pymonitor.actors.hub import Flush, GetStats, HubActor, HubSettings
from pymonitor.actors.hub.retention import (
    DEFAULT_TIERS,
    HOUR_MS,
    MINUTE_MS,
    ROLLUP_TIERS,
    RetentionSettings,
    age_cutoff,
    chunk_end,
    over_budget,
    rollup_limit,
)
from pymonitor.actors.runtime.clock import SimClock
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.broker import topics
from pymonitor.deploy.config import HubSection
from pymonitor.messages import ReadingBatch, encode
from pymonitor.store import HubStore
from pymonitor.store.hub_retention import HubRetention

NOW_MS = 1_767_225_600_000
FLEET = "farm"


def _frame(seq: int, ts: list[int]) -> ReadingBatch:
    n = len(ts)
    return ReadingBatch.build(
        node="gw-1", session=1, seq=seq, devices=["dev-1"], metrics=["temp"], device_index=[0] * n,
        device_seq=list(range(seq * n, seq * n + n)), ts_ms=ts, values=[[20.0 + k % 7 for k in range(n)]],
    )  # fmt: skip


def _wait_for(ref: Any, key: str, at_least: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        stats = ref.ask(GetStats(), timeout=10)
        if stats["retention"][key] >= at_least or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def test_the_actor_runs_a_pass_on_its_timer_and_a_failing_pass_never_stops_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SimClock(NOW_MS)
    settings = HubSettings(
        FLEET, "hub-1", tmp_path / "hub.db", flush_interval_ms=60_000, flush_max_frames=100,
        retention=RetentionSettings(interval_s=300),
    )  # fmt: skip
    ref = HubActor.start(None, settings, clock, lambda *_: None)
    try:
        ts = [NOW_MS - HOUR_MS + k * 10_000 for k in range(300)]
        ref.tell(Inbound(topics.up(FLEET, "gw-1", "readings"), encode(_frame(1, ts))))
        ref.tell(Flush())
        ref.ask(GetStats(), timeout=10)  # started, frames written, timers set
        clock.advance(300_000)
        stats = _wait_for(ref, "passes", 1)
        assert stats["retention"]["passes"] == 1 and stats["retention"]["rolled"] > 0
        calls = {"n": 0}

        def broken(self: HubRetention, now_ms: int) -> None:
            calls["n"] += 1
            raise RuntimeError("simulated")

        monkeypatch.setattr(HubRetention, "run", broken)
        clock.advance(300_000)
        stats = _wait_for(ref, "failures", 1)
        assert stats["retention"]["failures"] == 1
        ref.tell(Inbound(topics.up(FLEET, "gw-1", "readings"), encode(_frame(2, [NOW_MS + 1_000]))))
        ref.tell(Flush())
        stats = ref.ask(GetStats(), timeout=10)
        assert stats["counters"]["readings"] == 301
    finally:
        ref.stop(timeout=10)
    store = HubStore(tmp_path / "hub.db")
    try:
        minutes = store.conn.execute("SELECT SUM(count) FROM rollups WHERE tier = 1").fetchone()[0]
        assert minutes == 300
    finally:
        store.close()


def test_passes_and_ingest_run_at_once_without_losing_or_doubling_a_reading(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "hub.db")
    ret = HubRetention(store.path, RetentionSettings(rows_per_tx=2_000, settle_ms=0))
    stop = threading.Event()
    written = {"n": 0, "ts": NOW_MS}

    def ingest() -> None:
        while not stop.is_set():
            ts = written["ts"]
            rows = [(s, 1, ts + i * 1_000, float(i)) for i in range(60) for s in range(10)]
            store.conn.execute("BEGIN IMMEDIATE")
            store.conn.executemany(
                "INSERT INTO readings (device_id, metric_id, ts_ms, value, device_seq) VALUES (?, ?, ?, ?, 0)", rows
            )
            store.conn.execute("COMMIT")
            written["n"] += len(rows)
            written["ts"] = ts + 60_000

    worker = threading.Thread(target=ingest)
    worker.start()
    try:
        for _ in range(40):
            ret.run(written["ts"])
    finally:
        stop.set()
        worker.join()
    final = written["ts"] + 10 * MINUTE_MS
    for _ in range(100):
        report = ret.run(final)
        if not report.rolled and not report.late:
            break
    total = store.conn.execute("SELECT SUM(count) FROM rollups WHERE tier = 1").fetchone()[0]
    assert total == written["n"] == store.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    ret.close()
    store.close()


def test_hub_config_defaults_are_the_summary_tier_defaults() -> None:
    section = HubSection()
    days = {t.name: t.keep_days for t in DEFAULT_TIERS}
    assert (section.raw_days, section.minute_days, section.hour_days, section.day_days) == (
        days["raw"], days["1m"], days["1h"], days["1d"]
    )  # fmt: skip
    s = RetentionSettings()
    assert (s.raw_days, s.minute_days, s.hour_days, s.day_days) == tuple(days.values())
    assert section.storage_budget_mb == s.storage_budget_mb == 0.0


def test_planning_core() -> None:
    minute, hour, _ = ROLLUP_TIERS
    assert rollup_limit(minute, NOW_MS + 5 * MINUTE_MS + 1, 2 * MINUTE_MS, None) == NOW_MS + 3 * MINUTE_MS
    assert rollup_limit(hour, NOW_MS, 0, None) is None
    assert rollup_limit(hour, NOW_MS, 0, NOW_MS + 2 * HOUR_MS - 1) == NOW_MS + HOUR_MS
    assert chunk_end(0, 10 * MINUTE_MS, MINUTE_MS, None) == 10 * MINUTE_MS
    assert chunk_end(0, 10 * MINUTE_MS, MINUTE_MS, 30) == MINUTE_MS  # at least one window
    assert chunk_end(0, 10 * MINUTE_MS, MINUTE_MS, 4 * MINUTE_MS + 5) == 4 * MINUTE_MS
    assert age_cutoff(100, 10, None) == 90 and age_cutoff(100, 10, 50) == 50
    budget = RetentionSettings(storage_budget_mb=1.0)
    assert over_budget(900_000, budget) == 0
    assert over_budget(1_000_000, budget) == 1_000_000 - round(0.8 * 1024 * 1024)
    assert over_budget(10**9, RetentionSettings()) == 0
    with pytest.raises(ValueError, match="raw_days"):
        RetentionSettings(raw_days=-1)


def test_stats_shows_rows_per_tier_and_drops(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pymonitor.cli.main import app

    store = HubStore(tmp_path / "hub.db")
    store.conn.executemany(
        "INSERT INTO readings (device_id, metric_id, ts_ms, value, device_seq) VALUES (1, 1, ?, 1.5, 0)",
        [(NOW_MS + k * 1_000,) for k in range(600)],
    )
    ret = HubRetention(store.path, RetentionSettings(raw_days=0))
    ret.run(NOW_MS + HOUR_MS)
    ret.close()
    store.close()
    result = CliRunner().invoke(app, ["stats", "--db", str(tmp_path / "hub.db")])
    assert result.exit_code == 0, result.output
    assert "tiers         raw 0, 1m 10, 1h 0, 1d 0, node 0" in result.output
    assert "dropped       raw/age 600" in result.output
