"""HubStore on real SQLite files: idempotent batched writes, accounting, node states, corrupt files."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pymonitor.messages import DeadLetter, Event, NodeBirth, NodeDeath, ReadingBatch
from pymonitor.store import HubStore, StoreError

NOW_MS = 1_767_225_600_000
METRICS = ["temp", "volt"]


def batch(
    node: str = "gw-1", seq: int = 1, session: int = 7, *, devices: tuple[str, ...] = ("dev-1", "dev-2")
) -> ReadingBatch:
    """Two rows per device; the second metric is NaN (not measured) on the first row."""
    rows = 2 * len(devices)
    return ReadingBatch.build(
        node=node,
        session=session,
        seq=seq,
        devices=list(devices),
        metrics=METRICS,
        device_index=[i % len(devices) for i in range(rows)],
        device_seq=[seq * 10 + i // len(devices) for i in range(rows)],
        ts_ms=[NOW_MS + seq * 1000 + i for i in range(rows)],
        values=[[20.0 + i for i in range(rows)], [math.nan] + [3.3] * (rows - 1)],
    )


def count(store: HubStore, table: str) -> int:
    return int(store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    s = HubStore(tmp_path / "hub.db")
    yield s
    s.close()


# ---------------------------------------------------------------- readings


def test_writing_the_same_frames_twice_stores_them_once(store: HubStore) -> None:
    frames = [batch(seq=1), batch(seq=2), batch("gw-2", seq=1)]
    first = store.write_frames(frames, NOW_MS)
    assert first.stored == frames
    assert first.duplicates == []
    assert first.readings == 3 * 7  # 4 rows x 2 metrics, minus one NaN cell, per frame
    rows = count(store, "readings")

    second = store.write_frames(frames, NOW_MS + 1)
    assert second.stored == []
    assert second.duplicates == frames
    assert second.readings == 0
    assert count(store, "readings") == rows
    assert count(store, "frames") == 3


def test_duplicates_inside_one_transaction_are_recognised(store: HubStore) -> None:
    frame = batch(seq=3)
    result = store.write_frames([frame, frame, frame], NOW_MS)
    assert len(result.stored) == 1
    assert len(result.duplicates) == 2
    assert store.reading_accounting() == {"rows": 7, "duplicates": 0, "distinct": 7}


def test_same_seq_in_a_new_session_is_a_new_frame(store: HubStore) -> None:
    store.write_frames([batch(seq=1, session=7)], NOW_MS)
    result = store.write_frames([batch(seq=1, session=8)], NOW_MS)
    assert len(result.stored) == 1
    assert count(store, "frames") == 2


def test_nan_cells_are_not_stored(store: HubStore) -> None:
    frame = batch(devices=("dev-1",))  # 2 rows: temp twice, volt only on the second row
    result = store.write_frames([frame], NOW_MS)
    assert result.readings == frame.reading_count() == 3
    values = store.conn.execute("SELECT value FROM readings").fetchall()
    assert len(values) == 3
    assert all(not math.isnan(v) for (v,) in values)
    frames_row = store.conn.execute("SELECT rows, readings, received_ms, backfill FROM frames").fetchone()
    assert frames_row == (2, 3, NOW_MS, 0)


def test_node_device_and_metric_names_are_interned_once(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = HubStore(path)
    store.write_frames([batch(seq=n) for n in range(1, 6)], NOW_MS)
    store.write_frames([batch(seq=6, devices=("dev-2", "dev-3"))], NOW_MS)
    assert count(store, "nodes") == 1
    assert count(store, "metrics") == 2
    assert count(store, "devices") == 3
    store.close()

    reopened = HubStore(path)  # the name cache is rebuilt from the file, not re-inserted
    reopened.write_frames([batch(seq=7, devices=("dev-1", "dev-4"))], NOW_MS)
    names = [n for (n,) in reopened.conn.execute("SELECT name FROM devices ORDER BY id")]
    assert names == ["dev-1", "dev-2", "dev-3", "dev-4"]
    assert count(reopened, "nodes") == 1
    reopened.close()


def test_reading_accounting_counts_duplicates_from_the_data(store: HubStore) -> None:
    store.write_frames([batch(seq=1), batch(seq=2)], NOW_MS)
    assert store.reading_accounting() == {"rows": 14, "duplicates": 0, "distinct": 14}
    # Bypass the frame dedup: a raw duplicate row must show up, proving the counter can fail.
    store.conn.execute("INSERT INTO readings SELECT * FROM readings LIMIT 1")
    assert store.reading_accounting() == {"rows": 15, "duplicates": 1, "distinct": 14}


def test_a_frame_stored_as_backfill_is_counted_as_backfill(store: HubStore) -> None:
    live = batch(seq=1)
    replayed = ReadingBatch.build(
        node="gw-1", session=7, seq=2, devices=["dev-1"], metrics=["temp"],
        device_index=[0], device_seq=[99], ts_ms=[NOW_MS], values=[[1.5]], backfill=True,
    )  # fmt: skip
    store.write_frames([live, replayed], NOW_MS)
    assert store.stats()["backfill_frames"] == 1


def test_a_failed_write_leaves_no_stale_names_behind(store: HubStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real_insert = store._insert_readings
    calls = []

    def fail_on_second(frame: ReadingBatch, corrected: list[int] | None = None) -> int:
        calls.append(frame)
        if len(calls) == 2:
            raise OverflowError("disk says no")
        return real_insert(frame, corrected)

    monkeypatch.setattr(store, "_insert_readings", fail_on_second)
    with pytest.raises(OverflowError):
        store.write_frames([batch("gw-1", seq=1, devices=("dev-a", "dev-b")), batch("gw-1", seq=2)], NOW_MS)
    monkeypatch.setattr(store, "_insert_readings", real_insert)
    assert count(store, "frames") == 0  # the transaction was rolled back...

    store.write_frames([batch("gw-1", seq=1, devices=("dev-a", "dev-b"))], NOW_MS)
    store.record_birth(NodeBirth(node="gw-other", session=1, ts_ms=NOW_MS, role="gateway", version="0"))
    by_node = {row["node"]: row["frames"] for row in store.per_node()}
    # ...so the retried frame must belong to gw-1 and its devices must exist.
    assert by_node == {"gw-1": 1, "gw-other": 0}
    assert count(store, "devices") == 2


# ---------------------------------------------------------------- opening: corrupt and newer files


def test_a_corrupt_file_is_set_aside_and_a_fresh_store_opens(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    garbage = b"this is not a database\x00" * 200
    path.write_bytes(garbage)
    store = HubStore(path)
    try:
        assert store.set_aside is not None
        assert store.set_aside.parent == tmp_path
        prefix = "hub.db.corrupt-"
        assert store.set_aside.name.startswith(prefix)
        assert store.set_aside.name[len(prefix) :].isdigit()
        assert store.set_aside.read_bytes() == garbage  # kept for forensics, untouched
        result = store.write_frames([batch()], NOW_MS)
        assert len(result.stored) == 1
        assert store.stats()["frames"] == 1
    finally:
        store.close()
    reopened = HubStore(path)
    assert reopened.set_aside is None
    assert reopened.stats()["frames"] == 1
    reopened.close()


def test_a_database_with_damaged_pages_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = HubStore(path)
    store.write_frames([batch(seq=n) for n in range(1, 200)], NOW_MS)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * 4096
    data[4096 : 3 * 4096] = b"\xa5" * (2 * 4096)  # keep the header, wreck the pages after it
    path.write_bytes(bytes(data))

    fresh = HubStore(path)
    try:
        assert fresh.set_aside is not None
        assert fresh.stats()["frames"] == 0
    finally:
        fresh.close()


def test_a_store_newer_than_this_code_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    HubStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        HubStore(path)
    assert path.exists()  # a newer file is not corrupt: it is neither moved nor replaced
    assert not list(tmp_path.glob("*.corrupt-*"))


# ---------------------------------------------------------------- node states, events, dead letters


def birth(session: int, connects: int = 1, ts_ms: int = NOW_MS) -> NodeBirth:
    return NodeBirth(node="gw-1", session=session, ts_ms=ts_ms, role="gateway", version="0.1.0", connects=connects)


def node_row(store: HubStore) -> tuple[object, ...]:
    return tuple(
        store.conn.execute(
            "SELECT role, version, session, connects, online, last_birth_ms, last_seen_ms, last_death_reason"
            " FROM nodes WHERE name = 'gw-1'"
        ).fetchone()
    )


def test_a_birth_marks_the_node_online_with_its_session(store: HubStore) -> None:
    store.record_birth(birth(session=100, connects=3))
    assert node_row(store) == ("gateway", "0.1.0", 100, 3, 1, NOW_MS, NOW_MS, None)


def test_a_death_of_the_current_session_marks_the_node_offline(store: HubStore) -> None:
    store.record_birth(birth(session=100))
    store.record_death(NodeDeath(node="gw-1", session=100, reason="connection lost"), received_ms=NOW_MS + 5)
    assert node_row(store)[4:] == (0, NOW_MS, NOW_MS + 5, "connection lost")  # a Will has no ts: arrival time


def test_a_death_of_an_older_session_does_not_mark_a_newer_session_offline(store: HubStore) -> None:
    store.record_birth(birth(session=200))
    store.record_death(NodeDeath(node="gw-1", session=100, reason="connection lost"), received_ms=NOW_MS + 5)
    role, version, session, connects, online, *_ = node_row(store)
    assert (session, online) == (200, 1)


def test_a_death_with_its_own_timestamp_keeps_it(store: HubStore) -> None:
    store.record_birth(birth(session=100))
    store.record_death(NodeDeath(node="gw-1", session=100, reason="shutdown", ts_ms=NOW_MS + 2), received_ms=NOW_MS + 9)
    assert node_row(store)[4:] == (0, NOW_MS, NOW_MS + 2, "shutdown")


def test_events_are_stored_with_their_labels_and_details(store: HubStore) -> None:
    event = Event(
        node="gw-1", ts_ms=NOW_MS, kind="battery.low", severity="warning", message="3.1 V", source="dev-1",
        value=3.1, labels={"site": "north"}, details={"raw": b"\x01\x02", "n": 3},
    )  # fmt: skip
    not_a_number = Event(node="gw-1", ts_ms=NOW_MS, kind="x.y", severity="info", message="m", value=math.nan)
    store.insert_event(event, received_ms=NOW_MS + 1)
    store.insert_event(not_a_number, received_ms=NOW_MS + 2)
    rows = store.conn.execute(
        "SELECT kind, severity, source, value, labels, details, received_ms FROM events"
    ).fetchall()
    assert rows[0] == ("battery.low", "warning", "dev-1", 3.1, '{"site":"north"}', '{"raw":"0102","n":3}', NOW_MS + 1)
    assert rows[1][3] is None  # NaN is not a value
    assert store.recent_events(1)[0]["kind"] == "x.y"


def test_dead_letters_are_stored_with_reason_and_payload_head(store: HubStore) -> None:
    letter = DeadLetter(
        node="hub", ts_ms=NOW_MS, topic="pm/v1/f/gw-1/up/readings", reason="MessageError: at $: not a CBOR frame",
        payload=b"\xff\x00", payload_size=4000,
    )  # fmt: skip
    store.insert_dead_letter(letter)
    row = store.conn.execute(
        "SELECT received_ms, node, topic, reason, payload, payload_size FROM dead_letters"
    ).fetchone()
    assert row == (NOW_MS, "hub", "pm/v1/f/gw-1/up/readings", "MessageError: at $: not a CBOR frame", b"\xff\x00", 4000)


def test_stats_and_per_node_sum_up_the_store(store: HubStore) -> None:
    store.write_frames([batch("gw-1", 1), batch("gw-1", 2), batch("gw-2", 1, devices=("dev-9",))], NOW_MS)
    store.record_birth(birth(session=7, connects=2))
    store.insert_event(Event(node="gw-1", ts_ms=NOW_MS, kind="a.b", severity="info", message="m"), NOW_MS)
    store.insert_dead_letter(DeadLetter(node="hub", ts_ms=NOW_MS, topic="t", reason="r", payload=b"", payload_size=0))
    stats = store.stats()
    assert stats == {
        "path": str(store.path),
        "nodes": 2,
        "nodes_online": 1,
        "devices": 3,
        "metrics": 2,
        "frames": 3,
        "readings": 7 + 7 + 3,
        "backfill_frames": 0,
        "events": 1,
        "dead_letters": 1,
        "first_ts_ms": NOW_MS + 1000,
        "last_ts_ms": NOW_MS + 2000 + 3,
    }
    assert store.per_node() == [
        {"node": "gw-1", "role": "gateway", "online": 1, "session": 7, "connects": 2, "last_seen_ms": NOW_MS,
         "frames": 2, "readings": 14},
        {"node": "gw-2", "role": None, "online": 0, "session": None, "connects": None, "last_seen_ms": None,
         "frames": 1, "readings": 3},
    ]  # fmt: skip


# ---------------------------------------------------------------- held events: one seq space with reading frames


def held_event(seq: int, session: int = 7) -> Event:
    return Event(node="gw-1", ts_ms=NOW_MS, kind="door.open", severity="info", message="m", session=session, seq=seq)


def test_a_held_event_is_stored_once_however_often_it_comes(store: HubStore) -> None:
    first = store.write_frames([batch(seq=1), held_event(2), held_event(2)], NOW_MS)
    again = store.write_frames([held_event(2), batch(seq=3)], NOW_MS + 1)
    assert first.stored == [batch(seq=1), held_event(2)]
    assert first.duplicates == [held_event(2)]
    assert again.stored == [batch(seq=3)] and again.duplicates == [held_event(2)]
    rows = store.conn.execute("SELECT kind, session, seq, received_ms FROM events").fetchall()
    assert rows == [("door.open", 7, 2, NOW_MS)]
    assert store.stats()["frames"] == 2  # reading frames; the event's identity row is not one
    assert store.per_node()[0]["frames"] == 2


def test_an_event_reusing_a_reading_frames_seq_is_a_duplicate(store: HubStore) -> None:
    store.write_frames([batch(seq=5)], NOW_MS)
    result = store.write_frames([held_event(5), held_event(5, session=8)], NOW_MS)
    assert result.duplicates == [held_event(5)]  # one seq space per node and session
    assert result.stored == [held_event(5, session=8)]
    assert count(store, "events") == 1


def test_fire_and_forget_events_keep_their_zero_identity(store: HubStore) -> None:
    store.insert_event(Event(node="gw-1", ts_ms=NOW_MS, kind="a.b", severity="info", message="m"), NOW_MS)
    assert store.conn.execute("SELECT session, seq FROM events").fetchone() == (0, 0)
    assert count(store, "frames") == 0


# ---------------------------------------------------------------- corrected timestamps


def corrected_rows(store: HubStore) -> list[tuple[int, int | None]]:
    sql = "SELECT ts_ms, ts_corrected_ms FROM readings WHERE metric_id = 1 ORDER BY rowid"
    return store.conn.execute(sql).fetchall()


def test_corrected_timestamps_are_stored_beside_the_device_ones(store: HubStore) -> None:
    frame = batch(seq=1)  # four rows
    store.write_frames([frame], NOW_MS, stamp=lambda f: [7, 8, 9, 10])
    assert corrected_rows(store) == [(NOW_MS + 1000 + i, 7 + i) for i in range(4)]
    volt = store.conn.execute("SELECT ts_corrected_ms FROM readings WHERE metric_id = 2 ORDER BY rowid").fetchall()
    assert volt == [(8,), (9,), (10,)]  # the NaN cell of row 0 is not a reading


def test_without_a_correction_the_column_is_null(store: HubStore) -> None:
    store.write_frames([batch(seq=1)], NOW_MS)
    store.write_frames([batch(seq=2)], NOW_MS, stamp=lambda f: None)
    assert {c for _, c in corrected_rows(store)} == {None}


def test_only_new_frames_are_stamped(store: HubStore) -> None:
    stamped: list[int] = []

    def stamp(frame: ReadingBatch) -> list[int] | None:
        stamped.append(frame.seq)
        return None

    store.write_frames([batch(seq=1), batch(seq=2)], NOW_MS, stamp=stamp)
    store.write_frames([batch(seq=2), batch(seq=3), batch(seq=1)], NOW_MS, stamp=stamp)
    assert stamped == [1, 2, 3]  # a duplicate must not feed the clock estimate twice


def test_a_store_of_schema_2_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    from pymonitor.store import open_store
    from pymonitor.store.hub_schema import HUB_MIGRATIONS

    path = tmp_path / "v2.db"
    old = open_store(path, HUB_MIGRATIONS[:2]).db.conn
    old.execute("INSERT INTO nodes(id, name) VALUES (1, 'gw-1')")
    old.execute("INSERT INTO readings VALUES (1, 1, ?, 20.5, 1)", (NOW_MS,))
    old.execute("INSERT INTO frames VALUES (1, 7, 1, 1, 1, ?, 0)", (NOW_MS,))
    old.close()
    store = HubStore(path)
    try:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == HUB_MIGRATIONS[-1].version
        assert corrected_rows(store) == [(NOW_MS, None)]
        assert store.conn.execute("SELECT event FROM frames").fetchall() == [(0,)]
        assert store.write_frames([batch(seq=1), batch(seq=2)], NOW_MS).duplicates == [batch(seq=1)]  # still deduped
    finally:
        store.close()
