"""Durable gateways against a real mosquitto: kill -9, a lossy 2G link, a corrupt outbox file."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from test_end_to_end import running_hub

from pymonitor.actors.runtime.clock import RealClock
from pymonitor.broker import BrokerAddress, MosquittoBroker
from pymonitor.simulators.fleet import FleetSimulator
from pymonitor.simulators.link import ImpairedLink, get_profile
from pymonitor.store.outbox import DurableOutbox

pytestmark = pytest.mark.needs_mosquitto


def test_a_gateway_killed_with_sigkill_again_and_again_loses_and_duplicates_nothing(
    mosquitto: MosquittoBroker,
) -> None:
    from pymonitor.bench.crash import run

    args = argparse.Namespace(
        kills=3, devices=50, interval=0.2, min_up=1.0, max_up=2.5, settle=8.0, durability="normal", seed=3
    )
    result = run(args)
    assert result["generated"] > 0
    assert result["lost"] == 0, result
    assert result["duplicates"] == 0, result
    assert result["stored"] + result["pending"] >= result["generated"]


def fleet_of(
    node_address: BrokerAddress, hub: Any, outbox_dir: Path, clock: RealClock | None = None, **options: Any
) -> FleetSimulator:
    """One durable gateway of 20 devices (1 s apart unless ``options`` say otherwise) beside the hub."""
    settings: dict[str, Any] = {"devices": 20, "interval_s": 1.0, "ack_timeout_s": 5.0, "compression": "zstd"}
    return FleetSimulator(
        fleet="durable",
        gateways=1,
        address=node_address,
        clock=clock or hub.clock,
        supervisor=hub.supervisor,
        outbox_dir=outbox_dir,
        **{**settings, **options},
    )


def outbox_tallies(outbox_dir: Path) -> dict[str, int]:
    (path,) = outbox_dir.glob("*.outbox")
    box = DurableOutbox(path)
    try:
        return box.tallies()
    finally:
        box.close()


def test_over_a_lossy_2g_link_95_percent_of_frames_arrive_within_three_retries(
    broker_address: BrokerAddress, tmp_path: Path
) -> None:
    profile = get_profile("2g_edge")
    with (
        running_hub(broker_address, tmp_path, "durable") as hub,
        ImpairedLink(broker_address, profile=profile, seed=7) as link,
    ):
        fleet = fleet_of(link.address, hub, tmp_path / "outbox").start()
        hub.fleet = fleet
        wait_for(lambda: fleet.totals()["acked_readings"] > 2_000, timeout_s=90, what="readings over 2G")
        status = fleet.statuses()[0]
        fleet.stop_sampling()
        wait_for(lambda: fleet.pending_frames() == 0, timeout_s=90, what="the outbox to drain over 2G")
        fleet.stop()
        hub.fleet = None
        retransmits = link.counters.retransmits
    tallies = outbox_tallies(tmp_path / "outbox")
    acked = {k: v for k, v in tallies.items() if k.startswith("acked_attempts_")}
    within = sum(acked.get(f"acked_attempts_{n}", 0) for n in (1, 2, 3, 4))
    assert sum(acked.values()) == tallies["acked_frames"]
    assert within >= 0.95 * tallies["acked_frames"], acked
    assert retransmits > 0  # the link really lost packets (each cost a retransmission timeout)
    # The uplink learnt the link: a round trip of a few hundred ms or more, zstd frames.
    assert status["link"]["rtt_ms"] is not None and status["link"]["rtt_ms"] >= profile.rtt_ms * 0.5
    assert "zstd" in (status["plan"] or "")
    stored = hub.query("SELECT COUNT(*) FROM readings")[0][0]
    assert stored == tallies["readings"]


def test_a_corrupt_outbox_is_set_aside_reported_upstream_and_replaced(
    broker_address: BrokerAddress, tmp_path: Path
) -> None:
    outbox_dir = tmp_path / "outbox"
    outbox_dir.mkdir()
    bad = outbox_dir / "gw-0000.outbox"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x13" * 8192)  # a header, then garbage: a torn, broken file
    with running_hub(broker_address, tmp_path, "durable") as hub:
        fleet = fleet_of(broker_address, hub, outbox_dir).start()
        hub.fleet = fleet
        wait_for(
            lambda: hub.query("SELECT message FROM events WHERE kind = 'outbox.corrupt'"),
            what="the outbox.corrupt event at the hub",
        )
        wait_for(lambda: fleet.totals()["acked_readings"] > 0, what="readings from the fresh outbox")
    kept = [p for p in outbox_dir.iterdir() if p.name.startswith("gw-0000.outbox.corrupt")]
    assert kept and kept[0].read_bytes().startswith(b"SQLite format 3\x00\x13")
    with sqlite3.connect(outbox_dir / "gw-0000.outbox") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_spent_daily_budget_thins_sampling_and_says_so(broker_address: BrokerAddress, tmp_path: Path) -> None:
    with running_hub(broker_address, tmp_path, "durable") as hub:
        clock = RealClock(speed=600.0)  # ten simulated minutes a second: the budget's pace shows quickly
        try:
            fleet = fleet_of(
                broker_address,
                hub,
                tmp_path / "outbox",
                clock,
                interval_s=60.0,
                daily_budget_bytes=20_000,  # far below what 20 devices a minute need
            ).start()
            hub.fleet = fleet
            status = wait_for(
                lambda: next((s for s in fleet.statuses() if s["sampling_stride"] > 1 and s["skipped_samples"]), None),
                what="the budget to raise the sampling stride",
            )
        finally:
            if hub.fleet is not None:
                hub.fleet.stop()
                hub.fleet = None
            clock.stop()
    assert status["budget"]["budget_bytes"] == 20_000
    assert status["budget"]["stride"] == status["sampling_stride"]


def first_row(hub: Any, sql: str) -> tuple[Any, ...] | None:
    """The query's first row once its first column is non-zero (the hub may not have the table yet)."""
    rows = hub.query(sql)
    return rows[0] if rows and rows[0][0] else None


def test_a_summaries_node_sends_windows_and_serves_the_raw_window_the_hub_asks_for(
    broker_address: BrokerAddress, tmp_path: Path
) -> None:
    """Per-metric config too: battery_v in 20-minute windows without quantiles, the rest in 10-minute ones;
    the node keeps what it sent in its summary tier and sends it again when asked, the hub keeps it once."""
    from test_end_to_end import RawClient

    from pymonitor.actors.summary.config import MetricSummary, SummarySection
    from pymonitor.broker import topics
    from pymonitor.messages import CommandAck, encode
    from pymonitor.messages.requests import RawRequest

    with running_hub(broker_address, tmp_path, "durable") as hub:
        clock = RealClock(speed=60.0)  # a simulated minute a second: ten-minute windows close quickly
        acks = RawClient(broker_address, "watch-acks", (topics.up("durable", "gw-0000", "ack"),))
        try:
            fleet = fleet_of(
                broker_address,
                hub,
                tmp_path / "outbox",
                clock,
                devices=5,
                interval_s=60.0,
                uplink="summaries",
                summary_window_s=600.0,
                summary=SummarySection(metrics={"battery_v": MetricSummary(size_s=1200.0, functions=["min", "last"])}),
            ).start()
            hub.fleet = fleet
            wait_for(
                lambda: first_row(hub, "SELECT COUNT(*) FROM window_summaries WHERE window_ms = 1200000"),
                timeout_s=90,
                what="20-minute battery windows at the hub",
            )
            windows = wait_for(
                lambda: first_row(hub, "SELECT COUNT(*), MIN(start_ms) FROM window_summaries WHERE window_ms = 600000"),
                timeout_s=60,
                what="closed summary windows at the hub",
            )
            assert hub.query("SELECT COUNT(*) FROM readings")[0][0] == 0  # raw stays on the node
            start = int(windows[1])
            request = RawRequest(id="req-1", from_ms=start, to_ms=start + 600_000, ts_ms=clock.now_ms())
            acks.publish(topics.command("durable", "gw-0000", "raw.request"), encode(request))
            stored = wait_for(
                lambda: first_row(hub, "SELECT COUNT(*), MIN(ts_ms), MAX(ts_ms) FROM readings"),
                timeout_s=60,
                what="the raw window at the hub",
            )
            (answer,) = acks.take(1, CommandAck, what="the node's answer")
            frames_before = hub.query("SELECT COUNT(*) FROM frames")[0][0]
            again = RawRequest(
                id="req-2", from_ms=start, to_ms=start + 600_000, ts_ms=clock.now_ms(), tier="summaries"
            )
            acks.publish(topics.command("durable", "gw-0000", "raw.request"), encode(again))
            (resent,) = acks.take(1, CommandAck, what="the node's answer from its summary tier")
            wait_for(
                lambda: hub.query("SELECT COUNT(*) FROM frames")[0][0] >= frames_before + resent.result["frames"],
                timeout_s=30,
                what="the summaries sent again",
            )
            twice = hub.query(
                "SELECT COUNT(*) FROM (SELECT 1 FROM window_summaries"
                " GROUP BY device_id, metric_id, start_ms, window_ms HAVING COUNT(*) > 1)"
            )[0][0]
            battery = hub.query(
                "SELECT COUNT(*), SUM(length(s.sketch) = 0) FROM window_summaries s JOIN metrics m"
                " ON m.id = s.metric_id WHERE m.name = 'battery_v'"
            )[0]
            others = hub.query(
                "SELECT COUNT(*), MIN(s.window_ms), MIN(length(s.sketch)) FROM window_summaries s JOIN metrics m"
                " ON m.id = s.metric_id WHERE m.name != 'battery_v'"
            )[0]
        finally:
            if hub.fleet is not None:
                hub.fleet.stop()
                hub.fleet = None
            acks.close()
            clock.stop()
    assert isinstance(answer, CommandAck) and answer.id == "req-1" and answer.status == "ok"
    count, first, last = stored
    assert start <= first and last < start + 600_000  # only the window asked for
    assert count == answer.result["readings"] > 0
    assert battery[0] > 0 and battery[1] == battery[0]  # no quantiles asked: no sketch sent
    assert others[0] > 0 and others[1] == 600_000 and others[2] > 0
    assert resent.id == "req-2" and resent.status == "ok" and resent.result["frames"] >= 1
    assert (tmp_path / "outbox" / "gw-0000.outbox.summaries").exists()
    assert twice == 0  # sent again, kept once
