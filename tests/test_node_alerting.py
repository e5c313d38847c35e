"""A hub node with [hub].alerting_config runs the alerting role beside the hub: readings fire rules,
the alerts land in the alert history and a notification reaches the log channel."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MosquittoBroker, wait_for

from pymonitor.actors.runtime.node import RunningNode, start_node
from pymonitor.deploy.config import ConfigError, parse_config

ALERTS_TOML = """
[alerting.channels.audit]
type = "log"

[alerting.receivers.log]
channel = "audit"
recipients = ["audit"]

[[alerting.rules]]
name = "battery_below_ten"
kind = "threshold"
metric = "battery_v"
threshold = {below = 10.0}

[alerting.route]
receiver = "log"
group_wait = "1s"
"""


def node_config(tmp_path: Path, url: str, alerting: Path) -> dict[str, object]:
    unique = tmp_path.name[-24:].strip("_").replace("_", "-")
    return {
        "node": {"name": "hub", "fleet": f"al-{unique}"},
        "broker": {"url": url},
        "hub": {"db": str(tmp_path / "hub.db"), "alerting_config": str(alerting), "alerts_db": str(tmp_path / "a.db")},
        "simulator": {"devices": 6, "gateways": 2, "interval_s": 1.0},
    }


@pytest.fixture
def alerting_node(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[RunningNode]:
    path = tmp_path / "alerts.toml"
    path.write_text(ALERTS_TOML)
    node = start_node(parse_config(node_config(tmp_path, mosquitto.url, path)))
    try:
        yield node
    finally:
        node.stop()


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # the table is not there yet
            return 0


def test_readings_below_the_threshold_become_alerts_in_the_history_and_a_notification(
    alerting_node: RunningNode, tmp_path: Path
) -> None:
    db = tmp_path / "a.db"
    wait_for(lambda: count(db, "SELECT COUNT(DISTINCT fingerprint) FROM alerts") >= 6, what="an alert per device")
    sent = "SELECT COUNT(*) FROM attempts WHERE status IN ('sent', 'delivered')"
    wait_for(lambda: count(db, sent) >= 1, what="a notification handed to the log channel")
    assert alerting_node.status()["alerting"]["alerts"] >= 6


def test_a_bad_alerting_file_stops_the_node_before_it_starts_naming_the_key(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(ALERTS_TOML.replace('receiver = "log"', 'receiver = "pager"'))
    with pytest.raises(ConfigError, match=r"\[hub\].alerting_config: .*alerts.toml: alerting.route.receiver"):
        start_node(parse_config(node_config(tmp_path, mosquitto.url, path)))
