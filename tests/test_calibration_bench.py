"""The fleet_calibration bench: recall and false alarms on a small seeded fleet."""

from __future__ import annotations

import orjson
import pytest

from pymonitor.bench import fleet_calibration


def test_calibration_bench_counts_recall_and_false_alarms() -> None:
    result = fleet_calibration.run(5, devices=400, days=20)
    assert result["drifted"] > 0 and result["healthy"] > 0
    assert result["drift_recall_2pct"] == round(result["drifted_found"] / result["drifted"], 4)
    assert result["drift_false_alarm_rate"] == round(result["false_alarms"] / result["healthy"], 5)
    assert result["drift_recall_2pct"] >= 0.9 and result["drift_false_alarm_rate"] <= 0.02
    orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)


def test_calibration_bench_main_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet_calibration.main(["--seed", "5", "--devices", "200", "--days", "20"]) == 0
    last = orjson.loads(capsys.readouterr().out.splitlines()[-1])
    assert last["bench"] == "fleet_calibration" and last["per_seed"][0]["seed"] == 5
