"""``pymonitor bench alerts``: one JSON line; every violation reaches the webhook, a storm is few messages."""

from __future__ import annotations

import json

import pytest

from pymonitor.bench import alerts


def test_alerts_bench_reports_latency_storm_and_sms_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code = alerts.main(["--violations", "20", "--spread-s", "0.2", "--storm-alerts", "600", "--storm-window-s", "6"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert result["bench"] == "alerts" and result["delivered"] == result["violations"] == 20
    assert result["alert_to_channel_p99_ms"] >= result["alert_to_channel_p50_ms"] > 0
    assert result["storm_alerts"] == 600 and result["storm_recorded_fraction"] == 1.0
    assert 1 <= result["storm_notifications_per_recipient"] <= 5
    assert result["storm_notifications_by_recipient"]["+447700900003"] == 2  # the pager: first critical, then the rest
    assert result["storm_sms_segments"] == 1 and result["storm_sms_encoding"] == "GSM-7"
    text = result["storm_sms_text"]
    assert text.startswith("600 alerts at 3 sites") and "Site Alpha" in text and "200x" in text
