"""The uplink bench at toy size: every encoding measured on the same readings, NAB data optional."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from pymonitor.bench.uplink import measure, nab_batches, publish_overhead
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
        app, ["bench", "uplink", "--devices", "20", "--hours", "1", "--data", str(fake_nab), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    for key in ("bytes_per_reading", "json_bytes_per_reading", "ratio_to_json"):
        assert report[key] > 0
    assert report["nab"]["readings"] == 60
    assert report["fleet"]["cbor_bytes_per_reading"] > report["fleet"]["bytes_per_reading"]
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
