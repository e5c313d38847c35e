"""HubActor wiring (pykka, real SQLite, simulated clock, no broker): receipt stamps in, corrected timestamps and
held-event acks out."""

from __future__ import annotations

from pathlib import Path

from pymonitor.actors.hub import Flush, GetStats, HubActor, HubSettings
from pymonitor.actors.runtime.clock import SimClock
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.broker import topics
from pymonitor.messages import DeliveryAck, Event, ReadingBatch, decode, encode
from pymonitor.store import HubStore

NOW_MS = 1_767_225_600_000
FLEET = "farm"


def test_the_actor_stores_corrected_timestamps_and_acks_held_events_with_frames(tmp_path: Path) -> None:
    published: list[tuple[str, bytes]] = []
    clock = SimClock(NOW_MS)
    settings = HubSettings(FLEET, "hub-1", tmp_path / "hub.db", flush_interval_ms=60_000, flush_max_frames=100)
    ref = HubActor.start(None, settings, clock, lambda t, p, _retain: published.append((t, p)))
    try:
        ts = [NOW_MS - 40_000 + k * 60_000 for k in range(3)]  # a clock 40 s slow, received at once
        frame = ReadingBatch.build(
            node="gw-1", session=7, seq=1, devices=["dev-1"], metrics=["temp"], device_index=[0, 0, 0],
            device_seq=[1, 2, 3], ts_ms=ts, values=[[20.0, 21.0, 22.0]], received_ms=[t + 40_100 for t in ts],
        )  # fmt: skip
        event = Event(node="gw-1", ts_ms=NOW_MS, kind="door.open", severity="info", message="m", session=7, seq=2)
        ref.tell(Inbound(topics.up(FLEET, "gw-1", "readings"), encode(frame)))
        ref.tell(Inbound(topics.up(FLEET, "gw-1", "events"), encode(event)))
        ref.tell(Inbound(topics.up(FLEET, "gw-1", "events"), encode(event)))  # resent: stored once
        ref.tell(Flush())
        stats = ref.ask(GetStats(), timeout=10)
    finally:
        ref.stop(timeout=10)
    assert stats["counters"]["ts_corrected"] == 3
    assert stats["counters"]["events_stored"] == 1 and stats["counters"]["event_duplicates"] == 1
    assert stats["clocks"] == {"devices": 1, "resets": 0}
    acks = [decode(p) for t, p in published if t == topics.delivery_ack(FLEET, "gw-1")]
    assert [(a.session, a.ranges) for a in acks if isinstance(a, DeliveryAck)] == [(7, [[1, 2]])]
    store = HubStore(tmp_path / "hub.db")
    try:
        rows = store.conn.execute("SELECT ts_ms, ts_corrected_ms FROM readings ORDER BY device_seq").fetchall()
        assert rows == [(t, t + 40_100) for t in ts]
        assert store.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    finally:
        store.close()
