"""summary.batch.v1: validated on decode, errors name the path; the hub stores a frame once and acks duplicates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.hub.core import HubCore, WriteFrames
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.summary.summarizer import Summarizer
from pymonitor.broker import topics
from pymonitor.messages import DeliveryAck, MessageError, ReadingBatch, SummaryBatch, decode, encode
from pymonitor.messages.summaries import pack_sketch, unpack_sketch
from pymonitor.store import HubStore

T0_MS = 1_767_225_600_000
FLEET, HUB = "fleet-01", "hub-1"


def frame(seq: int = 1) -> SummaryBatch:
    core = Summarizer(node="gw-1", session=7, seq=seq - 1, lateness_ms=10 * 3_600_000)
    batch = ReadingBatch.build(
        node="gw-1", session=7, seq=1, devices=["a", "b"], metrics=["t", "v"], device_index=[0, 1, 0, 1],
        device_seq=[1, 1, 2, 2], ts_ms=[T0_MS, T0_MS, T0_MS + 60_000, T0_MS + 3_600_000],
        values=[[20.5, -1.25, 20.75, 0.0], [3.3, None, 3.31, 3.29]], value_scale=[0.01, 0.01],
    )  # fmt: skip
    core.add(batch, 2**62)
    out = core.flush()
    assert out is not None
    return out


def test_a_sketch_with_counts_that_disagree_with_count_is_refused_naming_the_row() -> None:
    good = frame()
    bad = list(good.sketches)
    bad[1] = pack_sketch({5: 9}, {}, 0)
    with pytest.raises(MessageError, match=r"\$\.sketches\[1\]: holds 9 values"):
        decode(encode(dataclasses.replace(good, sketches=bad)))


def test_a_short_column_is_refused_naming_it() -> None:
    with pytest.raises(MessageError, match=r"\$\.m2: .* do not hold"):
        dataclasses.replace(frame(), m2=b"\x00")


@given(
    st.dictionaries(st.integers(-5000, 5000), st.integers(1, 10**6), max_size=40),
    st.dictionaries(st.integers(-5000, 5000), st.integers(1, 10**6), max_size=40),
    st.integers(0, 10**6),
    st.tuples(st.integers(-3000, 3000), st.integers(-3000, 3000)),
)
def test_sketch_bytes_round_trip(pos: dict[int, int], neg: dict[int, int], zero: int, bases: tuple[int, int]) -> None:
    assert unpack_sketch(pack_sketch(pos, neg, zero, bases), bases=bases) == (pos, neg, zero)


@given(st.binary(max_size=64))
def test_arbitrary_sketch_bytes_decode_or_raise_message_error(data: bytes) -> None:
    try:
        unpack_sketch(data)
    except MessageError as exc:
        assert "$.sketches" in str(exc)


def test_hub_stores_a_summary_frame_once_and_acks_the_duplicate(tmp_path: Path) -> None:
    hub = HubCore(FLEET, HUB, flush_max_frames=1)
    store = HubStore(tmp_path / "hub.db")
    summary = frame(seq=5)
    inbound = Inbound(topics.up(FLEET, "gw-1", "summaries"), encode(summary))
    acks = []
    for now in (T0_MS, T0_MS + 1):
        [write] = [e for e in hub.on_frame(inbound, now) if isinstance(e, WriteFrames)]
        result = store.write_frames(write.frames, now, write.traffic)
        acks += [decode(e.payload) for e in hub.on_written(result.stored, result.duplicates, result.readings, now)]
    assert [(a.session, a.ranges) for a in acks if isinstance(a, DeliveryAck)] == [(7, [[5, 5]]), (7, [[5, 5]])]
    assert hub.counters.summaries_stored == 1 and hub.counters.summary_duplicates == 1
    assert hub.counters.frames_stored == 0 and hub.counters.duplicates == 0
    rows = store.summaries()
    assert len(rows) == summary.rows == 5  # a: t, v; b: t in two hours, v
    first = rows[0]
    assert (first["device"], first["metric"], first["start_ms"], first["count"]) == ("a", "t", T0_MS, 2)
    assert (first["min"], first["max"], first["sum"]) == (20.5, 20.75, 41.25)
    assert store.stats()["frames"] == 0  # reading frames only
    store.close()


def test_a_summary_frame_on_the_readings_topic_is_a_dead_letter() -> None:
    hub = HubCore(FLEET, HUB)
    effects = hub.on_frame(Inbound(topics.up(FLEET, "gw-1", "readings"), encode(frame())), T0_MS)
    assert hub.counters.dead_letters == 1 and not any(isinstance(e, WriteFrames) for e in effects)
