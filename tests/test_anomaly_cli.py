"""``pymonitor anomaly score`` as a user runs it: one output row per input row, clear errors, no tracebacks."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pymonitor.cli.main import app

runner = CliRunner()


def series_csv(path: Path, n: int = 1500, spike_at: int | None = 1200) -> Path:
    values = 10 + np.sin(np.arange(n) / 20) + np.random.default_rng(0).normal(0, 0.1, n)
    if spike_at is not None:
        values[spike_at] = 30.0
    stamps = np.datetime64("2020-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
    lines = ["timestamp,value"] + [f"{str(t).replace('T', ' ')}:00,{v}" for t, v in zip(stamps, values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_out(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_score_writes_one_row_per_input_row_in_order(tmp_path: Path) -> None:
    source = series_csv(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["anomaly", "score", "--in", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_out(out)
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert [r[0] for r in rows[1:]] == [r[0] for r in read_out(source)[1:]]
    assert [float(r[1]) for r in rows[1:]] == [float(r[1]) for r in read_out(source)[1:]]
    scores = [float(r[2]) for r in rows[1:]]
    assert scores[:225] == [0.0] * 225  # learning: 15% of 1500 rows
    assert int(np.argmax(scores)) == 1200
    assert all(0.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("ts,value\n2020-01-01 00:00:00,1\n", ":1: expected the header"),
        ("timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 00:05:00,oops\n", ":3: value 'oops' is not a number"),
        ("timestamp,value\n2020-01-01 00:00:00,NaN\n", ":2: value 'NaN' is not finite"),
        ("timestamp,value\n2020-01-01 00:00:00,-inf\n", ":2: value '-inf' is not finite"),
    ],
)
def test_bad_input_fails_with_line_and_reason(tmp_path: Path, body: str, reason: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text(body)
    result = runner.invoke(app, ["anomaly", "score", "--in", str(source), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert reason in result.output
    assert "Traceback" not in result.output


def test_out_of_order_timestamps_are_scored_in_file_order_or_refused_when_strict(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("timestamp,value\n2020-01-01 00:05:00,1\n2020-01-01 00:05:00,2\n2020-01-01 00:00:00,3\n")
    out = tmp_path / "o.csv"
    result = runner.invoke(app, ["anomaly", "score", "--in", str(source), "--out", str(out)])
    assert result.exit_code == 0
    assert "2 row(s) out of time order" in result.output
    assert [r[1] for r in read_out(out)[1:]] == ["1.0", "2.0", "3.0"]
    strict = runner.invoke(app, ["anomaly", "score", "--in", str(source), "--out", str(out), "--strict-order"])
    assert strict.exit_code == 2
    assert ":3: timestamp '2020-01-01 00:05:00' repeats" in strict.output


def test_missing_input_and_unwritable_output_are_clear_errors_in_a_real_process(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pymonitor.cli.main", "anomaly", "score"]
    missing = subprocess.run(
        [*command, "--in", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert "nope.csv: cannot read" in missing.stderr
    source = series_csv(tmp_path / "in.csv", n=50, spike_at=None)
    unwritable = subprocess.run(
        [*command, "--in", str(source), "--out", str(tmp_path / "no" / "dir" / "o.csv")], capture_output=True, text=True
    )
    assert unwritable.returncode == 2
    assert "cannot write" in unwritable.stderr
    assert "Traceback" not in missing.stderr + unwritable.stderr
