"""HubCore, the pure hub: routing, batching, acknowledgement and dead letters (no threads, no I/O)."""

from __future__ import annotations

import math

import cbor2
import pytest
from conftest import written

from pymonitor.actors.hub.core import HubCore, Publish, Record
from pymonitor.actors.runtime.intake import DEAD_LETTER_PAYLOAD_BYTES, Inbound
from pymonitor.broker import topics
from pymonitor.messages import DeadLetter, DeliveryAck, Event, NodeBirth, NodeDeath, ReadingBatch, decode, encode

FLEET = "farm"
HUB = "hub-1"
NOW_MS = 1_767_225_600_000
DEADLETTER_TOPIC = f"pm/v1/{FLEET}/{HUB}/up/deadletter"


def batch(node: str = "gw-1", seq: int = 1, session: int = 7, *, rows: int = 2) -> ReadingBatch:
    return ReadingBatch.build(
        node=node,
        session=session,
        seq=seq,
        devices=["dev-1", "dev-2"],
        metrics=["temp", "volt"],
        device_index=[i % 2 for i in range(rows)],
        device_seq=list(range(1, rows + 1)),
        ts_ms=[NOW_MS + i for i in range(rows)],
        values=[[20.0 + i for i in range(rows)], [math.nan] * rows],
    )


def readings_inbound(frame: ReadingBatch, kind: str = "readings") -> Inbound:
    return Inbound(topics.up(FLEET, frame.node, kind), encode(frame))


def core(**kwargs: int) -> HubCore:
    return HubCore(FLEET, HUB, **kwargs)


def only_dead_letter(effects: list[object]) -> DeadLetter:
    """The effects of a refused frame: keep the letter and publish it on the hub's dead-letter topic."""
    assert len(effects) == 2, effects
    record, publish = effects
    assert isinstance(record, Record)
    assert isinstance(record.message, DeadLetter)
    assert isinstance(publish, Publish)
    assert publish.topic == DEADLETTER_TOPIC
    assert not publish.retain
    assert decode(publish.payload) == record.message
    return record.message


# ---------------------------------------------------------------- readings, batching, flushing


@pytest.mark.parametrize("kind", ["readings", "backfill"])
def test_reading_batches_wait_in_pending_until_flush_max_frames(kind: str) -> None:
    hub = core(flush_max_frames=3)
    frames = [batch(seq=n) for n in (1, 2, 3)]
    assert hub.on_frame(readings_inbound(frames[0], kind), NOW_MS) == []
    assert hub.on_frame(readings_inbound(frames[1], kind), NOW_MS) == []
    assert hub.pending == frames[:2]
    effects = hub.on_frame(readings_inbound(frames[2], kind), NOW_MS)
    assert written(effects) == frames
    assert hub.pending == []
    assert hub.counters.frames == 3
    assert hub.counters.dead_letters == 0


def test_a_frame_arriving_after_the_flush_interval_flushes_without_waiting_for_the_timer() -> None:
    hub = core(flush_max_frames=100, flush_interval_ms=200)
    first, second = batch(seq=1), batch(seq=2)
    assert hub.on_frame(readings_inbound(first), NOW_MS) == []
    assert written(hub.on_frame(readings_inbound(second), NOW_MS + 200)) == [first, second]
    assert hub.pending == [] and hub.pending_rows == 0


def test_pending_rows_past_the_limit_flush_at_once() -> None:
    hub = core(flush_max_frames=100, flush_max_rows=3)
    frames = [batch(seq=n) for n in (1, 2, 3)]
    rows = 0
    for frame in frames:
        effects = hub.on_frame(readings_inbound(frame), NOW_MS)
        rows += frame.rows
        if rows >= 3:
            assert written(effects) == frames[: frames.index(frame) + 1]
            break
        assert effects == []
    else:
        pytest.fail("the row limit never flushed")


def test_flush_hands_over_what_is_pending_and_nothing_when_empty() -> None:
    hub = core(flush_max_frames=100)
    frame = batch()
    hub.on_frame(readings_inbound(frame), NOW_MS)
    assert written(hub.on_flush(NOW_MS)) == [frame]
    assert hub.on_flush(NOW_MS) == []


def test_written_frames_are_acked_once_per_node_and_session_with_collapsed_ranges() -> None:
    hub = core()
    stored = [batch("gw-1", seq) for seq in (1, 2, 3, 7)] + [batch("gw-1", 1, session=8), batch("gw-2", 4)]
    duplicates = [batch("gw-1", 4), batch("gw-1", 2)]  # a duplicate is acked too: its sender missed the ack
    effects = hub.on_written(stored, duplicates, readings=40, now_ms=NOW_MS)

    acks: dict[tuple[str, str, int], DeliveryAck] = {}
    for effect in effects:
        assert isinstance(effect, Publish)
        ack = decode(effect.payload)
        assert isinstance(ack, DeliveryAck)
        assert ack.hub_ts_ms == NOW_MS
        acks[(effect.topic, ack.node, ack.session)] = ack
    assert len(effects) == len(acks) == 3
    assert acks[(f"pm/v1/{FLEET}/gw-1/down/ack", "gw-1", 7)].ranges == [[1, 4], [7, 7]]
    assert acks[(f"pm/v1/{FLEET}/gw-1/down/ack", "gw-1", 8)].ranges == [[1, 1]]
    assert acks[(f"pm/v1/{FLEET}/gw-2/down/ack", "gw-2", 7)].ranges == [[4, 4]]
    assert hub.counters.frames_stored == 6
    assert hub.counters.duplicates == 2
    assert hub.counters.readings == 40
    assert hub.counters.acks == 3


def test_a_transaction_of_only_duplicates_is_still_acknowledged() -> None:
    hub = core()
    effects = hub.on_written([], [batch(seq=5), batch(seq=5)], readings=0, now_ms=NOW_MS)
    assert len(effects) == 1
    assert isinstance(effects[0], Publish)
    assert decode(effects[0].payload).ranges == [[5, 5]]
    assert hub.counters.duplicates == 2
    assert hub.counters.frames_stored == 0


def test_nothing_written_means_no_ack() -> None:
    assert core().on_written([], [], readings=0, now_ms=NOW_MS) == []


# ---------------------------------------------------------------- births, deaths, events


def test_births_deaths_and_events_become_records() -> None:
    hub = core()
    birth = NodeBirth(node="gw-1", session=7, ts_ms=NOW_MS, role="gateway", version="0.1.0", connects=2)
    death = NodeDeath(node="gw-1", session=7, reason="connection lost")
    event = Event(node="gw-1", ts_ms=NOW_MS, kind="battery.low", severity="warning", message="3.1 V", source="dev-1")
    state = topics.state(FLEET, "gw-1")
    assert hub.on_frame(Inbound(state, encode(birth)), NOW_MS) == [Record(birth)]
    assert hub.on_frame(Inbound(state, encode(death)), NOW_MS) == [Record(death)]
    assert hub.on_frame(Inbound(topics.up(FLEET, "gw-1", "events"), encode(event)), NOW_MS) == [Record(event)]
    assert (hub.counters.births, hub.counters.deaths, hub.counters.events) == (1, 1, 1)
    assert hub.counters.dead_letters == 0


def test_dead_letters_of_other_nodes_are_ignored_not_recorded_again() -> None:
    hub = core()
    letter = DeadLetter(
        node="gw-1", ts_ms=NOW_MS, topic="x", reason="MessageError: at $: nope", payload=b"", payload_size=0
    )
    assert hub.on_frame(Inbound(topics.up(FLEET, "gw-1", "deadletter"), encode(letter)), NOW_MS) == []
    assert hub.counters.ignored == 1
    assert hub.counters.dead_letters == 0


# ---------------------------------------------------------------- bad input: every case a dead letter


def test_garbage_bytes_become_a_dead_letter_saying_not_cbor() -> None:
    hub = core()
    topic = topics.up(FLEET, "gw-1", "readings")
    letter = only_dead_letter(hub.on_frame(Inbound(topic, b"\xff\xfe garbage \x00"), NOW_MS))
    assert letter.reason.startswith("MessageError: at $:")
    assert "not a CBOR frame" in letter.reason
    assert letter.node == HUB
    assert letter.topic == topic
    assert letter.payload == b"\xff\xfe garbage \x00"
    assert letter.ts_ms == NOW_MS
    assert hub.counters.dead_letters == 1
    assert hub.pending == []


def test_unknown_tag_becomes_a_dead_letter_naming_the_tag_path() -> None:
    hub = core()
    payload = cbor2.dumps({"t": "reading.batch.v99", "node": "gw-1"})
    letter = only_dead_letter(hub.on_frame(Inbound(topics.up(FLEET, "gw-1", "readings"), payload), NOW_MS))
    assert "at $.t" in letter.reason
    assert "unknown message tag 'reading.batch.v99'" in letter.reason


def test_wrong_field_type_becomes_a_dead_letter_naming_the_field() -> None:
    hub = core()
    body = cbor2.loads(encode(batch()))
    body["session"] = "seven"
    letter = only_dead_letter(hub.on_frame(Inbound(topics.up(FLEET, "gw-1", "readings"), cbor2.dumps(body)), NOW_MS))
    assert "reading.batch.v1 at $.session" in letter.reason
    assert "expected int, got str 'seven'" in letter.reason


def test_oversize_frame_becomes_a_dead_letter_keeping_only_its_head() -> None:
    hub = core(max_frame_bytes=64)
    payload = encode(batch(rows=50))
    assert len(payload) > DEAD_LETTER_PAYLOAD_BYTES
    letter = only_dead_letter(hub.on_frame(Inbound(topics.up(FLEET, "gw-1", "readings"), payload), NOW_MS))
    assert f"frame of {len(payload)} bytes exceeds the limit of 64 bytes" in letter.reason
    assert letter.payload_size == len(payload)
    assert letter.payload == payload[:DEAD_LETTER_PAYLOAD_BYTES]
    assert hub.pending == []


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (f"pm/v1/{FLEET}/bad+node/up/readings", "node name 'bad+node' is invalid"),
        ("other/topic", "is not under pm/v1"),
        (f"pm/v1/{FLEET}/gw-1/up/pictures", "unknown kind 'up/pictures'"),
        (f"pm/v1/{FLEET}//up/readings", "node name '' is invalid"),
    ],
)
def test_invalid_topic_becomes_a_dead_letter_naming_the_topic(topic: str, expected: str) -> None:
    hub = core()
    letter = only_dead_letter(hub.on_frame(Inbound(topic, encode(batch())), NOW_MS))
    assert letter.reason.startswith("TopicError: ")
    assert expected in letter.reason
    assert letter.topic == topic
    assert hub.pending == []


def test_frame_from_another_node_than_its_topic_becomes_a_dead_letter() -> None:
    hub = core()
    letter = only_dead_letter(
        hub.on_frame(Inbound(topics.up(FLEET, "gw-2", "readings"), encode(batch("gw-1"))), NOW_MS)
    )
    assert "at $.node" in letter.reason
    assert "'gw-1'" in letter.reason
    assert "'gw-2'" in letter.reason
    assert hub.pending == []


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("readings", Event(node="gw-1", ts_ms=NOW_MS, kind="x.y", severity="info", message="hi")),
        ("events", batch("gw-1")),
        ("state", batch("gw-1")),
        ("readings", NodeBirth(node="gw-1", session=1, ts_ms=NOW_MS, role="gateway", version="0")),
    ],
)
def test_message_of_the_wrong_kind_for_its_topic_becomes_a_dead_letter(kind: str, message: object) -> None:
    hub = core()
    topic = topics.state(FLEET, "gw-1") if kind == "state" else topics.up(FLEET, "gw-1", kind)
    letter = only_dead_letter(hub.on_frame(Inbound(topic, encode(message)), NOW_MS))
    assert f"a {type(message).__name__} does not belong on a {kind!r} topic" in letter.reason
    assert hub.pending == []
    assert hub.counters.frames == hub.counters.events == hub.counters.births == 0


def test_each_refused_frame_is_counted_and_good_frames_still_flow() -> None:
    hub = core(flush_max_frames=2, max_frame_bytes=4096)
    readings = topics.up(FLEET, "gw-1", "readings")
    bad = [
        Inbound(readings, b"\x00\x01garbage"),
        Inbound(readings, cbor2.dumps({"t": "no.such.v1"})),
        Inbound(readings, b"\xa1" + b"x" * 5000),
        Inbound("other/topic", encode(batch())),
        Inbound(topics.up(FLEET, "gw-9", "readings"), encode(batch("gw-1"))),
        Inbound(readings, encode(Event(node="gw-1", ts_ms=1, kind="a.b", severity="info", message="m"))),
    ]
    for n, inbound in enumerate(bad, start=1):
        only_dead_letter(hub.on_frame(inbound, NOW_MS))
        assert hub.counters.dead_letters == n
    good = [batch(seq=1), batch(seq=2)]
    assert hub.on_frame(readings_inbound(good[0]), NOW_MS) == []
    assert written(hub.on_frame(readings_inbound(good[1]), NOW_MS)) == good
    assert hub.counters.frames == 2
    assert hub.counters.dead_letters == len(bad)


# ---------------------------------------------------------------- held events (seq > 0): frames like reading batches


def held_event(seq: int, session: int = 7, node: str = "gw-1") -> Event:
    return Event(node=node, ts_ms=NOW_MS, kind="battery.low", severity="warning", message="3.1 V", session=session,
                 seq=seq)  # fmt: skip


def events_inbound(event: Event) -> Inbound:
    return Inbound(topics.up(FLEET, event.node, "events"), encode(event))


def test_a_held_event_waits_with_the_reading_frames_and_is_written_with_them() -> None:
    hub = core(flush_max_frames=3)
    first, event, last = batch(seq=1), held_event(2), batch(seq=3)
    assert hub.on_frame(readings_inbound(first), NOW_MS) == []
    assert hub.on_frame(events_inbound(event), NOW_MS) == []  # not a Record: it needs dedup and an ack
    assert written(hub.on_frame(readings_inbound(last), NOW_MS)) == [first, event, last]
    assert hub.counters.events == 1 and hub.counters.frames == 2


def test_held_events_are_acked_in_the_same_ranges_as_reading_frames_and_counted_apart() -> None:
    hub = core()
    stored = [batch(seq=1), held_event(2), batch(seq=4)]
    duplicates = [held_event(3), batch(seq=5)]
    (effect,) = hub.on_written(stored, duplicates, readings=10, now_ms=NOW_MS)
    assert isinstance(effect, Publish)
    ack = decode(effect.payload)
    assert isinstance(ack, DeliveryAck)
    assert (ack.node, ack.session, ack.ranges) == ("gw-1", 7, [[1, 5]])
    c = hub.counters
    assert (c.frames_stored, c.events_stored, c.duplicates, c.event_duplicates) == (2, 1, 1, 1)


# ---------------------------------------------------------------- timestamps: clock correction and range checks

DAY_MS = 86_400_000
YEAR_1999_MS = 915_148_800_000


def stamped_batch(ts: list[int], received: list[int] | None = None, *, devices: int = 1) -> ReadingBatch:
    rows = len(ts)
    return ReadingBatch.build(
        node="gw-1", session=7, seq=1, devices=[f"dev-{d}" for d in range(devices)], metrics=["temp", "volt"],
        device_index=[i % devices for i in range(rows)], device_seq=list(range(1, rows + 1)), ts_ms=ts,
        values=[[20.0] * rows, [3.3] + [math.nan] * (rows - 1)], received_ms=received,
    )  # fmt: skip


def test_a_batch_without_receipt_times_keeps_its_timestamps_uncorrected() -> None:
    hub = core()
    assert hub.stamp(stamped_batch([NOW_MS, NOW_MS + 1]), NOW_MS) is None
    assert hub.counters.ts_corrected == 0 and hub.clocks.devices == 0


def test_receipt_times_correct_each_devices_clock() -> None:
    hub = core()
    ts = [NOW_MS - 30_000, NOW_MS + 45_000, NOW_MS - 30_000 + 60_000, NOW_MS + 45_000 + 60_000]
    received = [NOW_MS + 200, NOW_MS + 100, NOW_MS + 60_200, NOW_MS + 60_100]  # dev-0 30 s slow, dev-1 45 s fast
    corrected = hub.stamp(stamped_batch(ts, received, devices=2), NOW_MS)
    assert corrected == [NOW_MS + 200, NOW_MS + 100, NOW_MS + 60_200, NOW_MS + 60_100]  # the best lag per device
    assert hub.counters.ts_corrected == 4


@pytest.mark.parametrize(
    ("ts", "out_of_range"),
    [
        ([NOW_MS + DAY_MS - 1, NOW_MS, NOW_MS - 5 * DAY_MS], 0),  # up to a day ahead and any past since 2000: fine
        ([NOW_MS + DAY_MS + 1, NOW_MS, NOW_MS], 2),  # first row: both metrics measured
        ([NOW_MS, YEAR_1999_MS, NOW_MS + 3 * DAY_MS], 2),  # one reading each: the second metric is NaN
    ],
)
def test_readings_stamped_far_ahead_of_the_hub_or_before_2000_are_counted(ts: list[int], out_of_range: int) -> None:
    hub = core()
    assert hub.stamp(stamped_batch(ts), NOW_MS) is None  # counted only: the store keeps every reading
    assert hub.counters.ts_out_of_range == out_of_range


def test_the_range_check_judges_the_corrected_time_when_there_is_one() -> None:
    hub = core()
    ahead = [NOW_MS + 3 * DAY_MS, NOW_MS + 3 * DAY_MS + 60_000]  # a clock three days fast...
    corrected = hub.stamp(stamped_batch(ahead, [NOW_MS, NOW_MS + 60_000]), NOW_MS)  # ...received just now
    assert corrected == [NOW_MS, NOW_MS + 60_000]
    assert hub.counters.ts_out_of_range == 0
    unset = [YEAR_1999_MS + 7, YEAR_1999_MS + 60_007]
    hub.stamp(stamped_batch(unset, [YEAR_1999_MS + 10, YEAR_1999_MS + 60_010]), NOW_MS)  # receipt says 1999 too
    assert hub.counters.ts_out_of_range == 3
