"""Clock correction end to end against ground truth: DeviceBank clocks -> frames -> HubCore -> HubStore -> SQLite.

The scenario is ``pymonitor bench clocks`` (bench/clocks.py): 50 devices, one sample a minute,
drifting and rebooting clocks, radio delay and buffered samples, and a four-hour uplink outage
whose frames arrive afterwards as backfill behind the live ones.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pymonitor.bench.clocks import main, run
from pymonitor.store import HubStore


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("clocks") / "hub.db"
    return {**run(devices=50, days=2, seed=3, db_path=db, outage_hours=4), "db": db}


def test_at_least_99_percent_of_stored_corrected_timestamps_are_within_a_second(result: dict[str, Any]) -> None:
    assert result["rows"] == 50 * 2 * 1440  # every sample stored once, the outage's too
    assert result["within_1s_fraction"] >= 0.99
    assert result["uncorrected_within_1s_fraction"] < 0.05  # the device clocks alone: far off


def test_backfill_that_arrived_hours_late_is_corrected_as_well(result: dict[str, Any]) -> None:
    assert result["backfill_rows"] == 50 * 4 * 60
    assert result["backfill_within_1s_fraction"] >= 0.99


def test_reboots_are_found_and_every_row_has_both_timestamps(result: dict[str, Any]) -> None:
    assert result["clock_steps"] > 0
    assert result["resets"] >= result["clock_steps"]
    store = HubStore(result["db"])
    try:
        missing, changed = store.conn.execute(
            "SELECT COUNT(*) - COUNT(ts_corrected_ms), SUM(ts_corrected_ms != ts_ms) FROM readings"
        ).fetchone()
    finally:
        store.close()
    assert missing == 0
    assert changed > 0.95 * result["rows"]  # ts_ms stays what the device said


def test_the_bench_prints_one_json_line_with_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--devices", "5", "--days", "0.5", "--outage-hours", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bench"] == "clocks"
    assert result["rows"] == 5 * 720
    for key in ("within_1s_fraction", "uncorrected_within_1s_fraction", "p50_abs_error_ms", "p99_abs_error_ms",
                "resets"):  # fmt: skip
        assert isinstance(result[key], int | float)
