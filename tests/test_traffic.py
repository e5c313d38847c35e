"""Bandwidth accounting: per node, UTC day, direction and stream, stored with the frames."""

from __future__ import annotations

from pathlib import Path

from pymonitor.actors.hub import HubCore
from pymonitor.actors.hub.core import WriteFrames
from pymonitor.actors.hub.traffic import TrafficLedger, utc_day
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.broker import topics
from pymonitor.messages import ReadingBatch, encode
from pymonitor.store import HubStore, open_store
from pymonitor.store.hub_schema import HUB_MIGRATIONS
from pymonitor.store.hub_store import TrafficRow

NOW_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z


def batch(seq: int) -> ReadingBatch:
    return ReadingBatch.build(
        node="gw-1", session=1, seq=seq, devices=["d"], metrics=["t"], device_index=[0], device_seq=[seq],
        ts_ms=[NOW_MS], values=[[1.0]],
    )  # fmt: skip


def test_the_ledger_sums_per_node_day_direction_and_stream() -> None:
    ledger = TrafficLedger()
    ledger.add("gw-1", NOW_MS, "up", "readings", 100)
    ledger.add("gw-1", NOW_MS + 1, "up", "readings", 50)
    ledger.add("gw-1", NOW_MS + 86_400_000, "up", "readings", 7)  # the next UTC day
    ledger.add("gw-1", NOW_MS, "down", "ack", 30)
    rows = sorted(ledger.drain(), key=lambda r: (r.day, r.direction))
    assert rows == [
        TrafficRow("gw-1", "2026-11-23", "down", "ack", 30, 1),
        TrafficRow("gw-1", "2026-11-23", "up", "readings", 150, 2),
        TrafficRow("gw-1", "2026-11-24", "up", "readings", 7, 1),
    ]
    assert not ledger and ledger.drain() == []
    assert utc_day(NOW_MS - 1) == "2026-11-22"


def test_the_hub_counts_what_it_receives_refuses_and_acknowledges() -> None:
    hub = HubCore("f", "hub", flush_max_frames=100)
    frame = encode(batch(1))
    hub.on_frame(Inbound(topics.up("f", "gw-1", "readings"), frame), NOW_MS)
    hub.on_frame(Inbound(topics.up("f", "gw-1", "readings"), b"garbage"), NOW_MS)  # refused, still sent
    hub.on_frame(Inbound("not/a/pymonitor/topic", b"xx"), NOW_MS)  # no node to charge
    (write,) = hub.on_flush(NOW_MS)
    assert isinstance(write, WriteFrames)
    assert write.traffic == [TrafficRow("gw-1", "2026-11-23", "up", "readings", len(frame) + 7, 2)]
    hub.on_written(write.frames, [], 1, NOW_MS)
    (only_traffic,) = hub.on_flush(NOW_MS)  # no frames pending, but the ack's bytes are owed
    assert isinstance(only_traffic, WriteFrames) and only_traffic.frames == []
    assert [(t.direction, t.stream, t.frames) for t in only_traffic.traffic] == [("down", "ack", 1)]


def test_the_store_adds_traffic_up_in_the_frames_transaction(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "hub.db")
    try:
        row = TrafficRow("gw-1", "2026-11-23", "up", "readings", 100, 1)
        store.write_frames([batch(1)], NOW_MS, [row])
        store.write_frames([], NOW_MS, [row, TrafficRow("gw-2", "2026-11-23", "up", "events", 5, 1)])
        assert store.traffic("2026-11-23") == [
            {"node": "gw-1", "day": "2026-11-23", "direction": "up", "stream": "readings", "bytes": 200, "frames": 2},
            {"node": "gw-2", "day": "2026-11-23", "direction": "up", "stream": "events", "bytes": 5, "frames": 1},
        ]
        assert store.traffic("2026-01-01") == []
    finally:
        store.close()


def test_a_store_made_before_traffic_existed_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = open_store(path, HUB_MIGRATIONS[:1])
    old.db.conn.close()
    store = HubStore(path)
    try:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(HUB_MIGRATIONS)
        assert store.traffic() == []
    finally:
        store.close()
