"""The uplink bench at toy size: every encoding measured on the same readings, NAB data optional."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from pymonitor.bench.uplink import as_float64, measure, nab_batches, publish_overhead, series_scale
from pymonitor.cli.main import app
from pymonitor.messages import ReadingBatch

SHARED_NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


def test_publish_overhead_counts_the_mqtt_header_topic_and_packet_id() -> None:
    small, large = publish_overhead(10), publish_overhead(1_000)
    assert large == small + 1  # a longer remaining-length field, nothing else changes


def test_measure_counts_only_measured_cells_as_readings() -> None:
    batch = ReadingBatch.build(
        node="g", session=1, seq=1, devices=["a", "b"], metrics=["t"], device_index=[0, 1],
        device_seq=[1, 1], ts_ms=[1, 2], values=[[1.0, None]],
    )  # fmt: skip
    result = measure([batch])
    assert result["readings"] == 1 and result["frames"] == 1
    assert result["json_payload_bytes_per_reading"] == len(orjson.dumps({"device": "a", "metric": "t", "ts": 1,
                                                                         "value": 1.0}))  # fmt: skip


def test_uplink_bench_reports_every_encoding_and_meets_the_json_cut(tmp_path: Path) -> None:
    fake_nab = tmp_path / "nab"
    (fake_nab / "data" / "demo").mkdir(parents=True)
    rows = "".join(f"2014-04-01 00:{m:02d}:00,{20 + (m % 7) * 0.5}\n" for m in range(60))
    (fake_nab / "data" / "demo" / "series.csv").write_text("timestamp,value\n" + rows)
    result = CliRunner().invoke(
        app,
        ["bench", "uplink", "--devices", "20", "--hours", "1", "--data", str(fake_nab), "--backlog-devices", "20",
         "--backlog-days", "0.5", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    for key in ("bytes_per_reading", "json_bytes_per_reading", "ratio_to_json"):
        assert report[key] > 0
    assert report["nab"]["readings"] == 60
    assert (report["nab"]["series"], report["nab"]["quantized_series"]) == (1, 1)  # written with one decimal
    assert report["fleet"]["cbor_bytes_per_reading"] > report["fleet"]["bytes_per_reading"]
    # sensor values as int64 steps beat the same readings as float64, measured in the same run
    assert report["fleet"]["float64_bytes_per_reading"] > report["fleet"]["bytes_per_reading"]
    backlog = report["backlog"]
    assert (backlog["devices"], backlog["interval_s"], backlog["days"]) == (20, 300.0, 0.5)
    assert 0.98 * 20 * 144 * 4 < backlog["readings"] <= 20 * 144 * 4  # 144 samples of 4 metrics, a few not measured
    assert backlog["float64_bytes_per_reading"] > backlog["bytes_per_reading"] > 0
    assert report["ratio_to_json"] == max(report["fleet"]["ratio_to_json"], report["nab"]["ratio_to_json"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,val\n2014-04-01 00:00:00,1\n", "bad.csv: expected the header 'timestamp,value'"),
        ("timestamp,value\n2014-04-01 00:00:00,1\nyesterday,2\n", "bad.csv:3: expected 'YYYY-MM-DD HH:MM:SS,number'"),
    ],
    ids=["wrong-header", "bad-row"],
)
def test_a_bad_nab_file_is_refused_naming_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "data" / "x").mkdir(parents=True)
    (tmp_path / "data" / "x" / "bad.csv").write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        nab_batches(tmp_path)


def test_float64_baseline_carries_the_same_readings_as_the_quantized_frame() -> None:
    quantized = ReadingBatch.build(
        node="g", session=1, seq=1, devices=["a"], metrics=["t"], device_index=[0, 0, 0], device_seq=[1, 2, 3],
        ts_ms=[1, 2, 3], values=[[21.51, None, -0.05]], value_scale=[0.01],
    )  # fmt: skip
    plain = as_float64(quantized)
    assert plain.value_scale == [] and quantized.value_scale == [0.01]
    assert [c.tobytes() for c in plain.columns().values] == [c.tobytes() for c in quantized.columns().values]  # type: ignore[attr-defined]
    assert as_float64(plain) is plain
    result = measure([plain])
    assert result["float64_bytes_per_reading"] == result["bytes_per_reading"]  # already float64: one encoding


@pytest.mark.parametrize(
    ("values", "places", "scale"),
    [
        ([3.06, 6.44, 5.0], 2, 0.01),
        ([12.0, 7.0], 0, 1.0),
        ([69.88083514, 71.22022706], 8, 1e-8),
        ([1e5, 0.30000000000000004], 17, None),  # 1e22 steps: beyond int64, keep float64
    ],
)
def test_a_nab_series_is_quantized_only_at_a_step_that_gives_back_every_value(
    values: list[float], places: int, scale: float | None
) -> None:
    assert series_scale(values, places) == scale


def test_nab_series_take_the_resolution_their_csv_was_written_with(tmp_path: Path) -> None:
    (tmp_path / "data" / "x").mkdir(parents=True)
    (tmp_path / "data" / "x" / "a_occupancy.csv").write_text(
        "timestamp,value\n2015-09-01 13:45:00,3.06\n2015-09-01 13:50:00,6.4\n2015-09-01 13:55:00,1.2e1\n"
    )
    (tmp_path / "data" / "x" / "b_float.csv").write_text(
        "timestamp,value\n2015-09-01 13:45:00,1e5\n2015-09-01 13:50:00,0.30000000000000004\n"
    )
    occupancy, floats = nab_batches(tmp_path)
    assert occupancy.value_scale == [0.01] and floats.value_scale == []
    assert list(occupancy.columns().values[0]) == [3.06, 6.4, 12.0]
    assert list(floats.columns().values[0]) == [1e5, 0.30000000000000004]
