"""``pymonitor bench summarize``: one JSON line; exact functions exact, quantiles within alpha, bytes counted."""

from __future__ import annotations

import json

import pytest

from pymonitor.bench import BENCHMARKS


def test_summarize_bench_reports_reduction_and_errors_against_exact_values(capsys: pytest.CaptureFixture[str]) -> None:
    BENCHMARKS["summarize"](["--json", "--devices", "5", "--days", "0.5", "--frame-hours", "6"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fleet = result["fleet"]
    assert result["bench"] == "summarize" and result["nab"] is None
    assert fleet["windows"] == fleet["windows_in_frames"] == fleet["summary_rows"] == 5 * 4 * 12
    assert fleet["mismatches"] == {"count": 0, "min": 0, "max": 0, "first": 0, "last": 0}
    assert result["quantiles_within_alpha"] and result["exact_functions_exact"]
    assert fleet["max_relative_error"]["avg"] < 1e-9
    assert result["reduction"] == fleet["reduction"] == round(1 - fleet["summary_bytes"] / fleet["raw_bytes"], 4)
    assert fleet["summary_frames"] == 2  # two 6-hour frames
