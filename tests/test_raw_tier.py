"""The raw tier of a node: batches kept for a while, cut to a window when the hub asks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pymonitor.messages import ReadingBatch, decode, decode_unpacked, encode, encode_packed
from pymonitor.store.raw_tier import DAY_MS, RawTier, RawTierError

T0_MS = 1_767_225_600_000  # 2026-01-01
MIN_MS = 60_000


def make_batch(seq: int, start_ms: int, *, minutes: int = 10, scale: list[float] | None = None) -> ReadingBatch:
    """Two devices, one sample each a minute from ``start_ms``; d1's temp missing every third minute."""
    ts, index, dseq, volts, temp, received = [], [], [], [], [], []
    for k in range(minutes):
        for d in (0, 1):
            ts.append(start_ms + k * MIN_MS + d * 7)
            index.append(d)
            dseq.append(seq * 1000 + k)
            volts.append(3.7 - 0.001 * k - 0.01 * d)
            temp.append(math.nan if d == 1 and k % 3 == 0 else 20.0 + 0.01 * k)
            received.append(start_ms + k * MIN_MS + 300 + d)
    return ReadingBatch.build(
        node="gw-1", session=5, seq=seq, devices=["d0", "d1"], metrics=["volts", "temp_c"],
        device_index=index, device_seq=dseq, ts_ms=ts, values=[volts, temp], received_ms=received,
        value_scale=scale,
    )  # fmt: skip


def add(tier: RawTier, batch: ReadingBatch, *, packed: str | None = None, now_ms: int = T0_MS) -> bytes:
    payload = encode_packed(batch, packed) if packed else encode(batch)
    cols = batch.columns()
    tier.add(payload, min(cols.ts_ms), max(cols.ts_ms), batch.rows, batch.reading_count(), now_ms)
    return payload


def rows_of(frames: list[bytes]) -> list[tuple[str, int, int]]:
    out = []
    for frame in frames:
        batch = decode_unpacked(frame)
        cols = batch.columns()
        out += [
            (batch.devices[i], s, t) for i, s, t in zip(cols.device_index, cols.device_seq, cols.ts_ms, strict=True)
        ]
    return out


def test_a_window_gives_only_the_rows_inside_of_a_batch_spanning_its_edges(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    add(tier, make_batch(1, T0_MS))  # minutes 0..9
    frames = tier.window(T0_MS + 3 * MIN_MS, T0_MS + 6 * MIN_MS)
    assert len(frames) == 1
    got = rows_of(frames)
    assert [t for _, _, t in got] == [T0_MS + k * MIN_MS + d * 7 for k in (3, 4, 5) for d in (0, 1)]
    assert [s for _, s, _ in got] == [1003, 1003, 1004, 1004, 1005, 1005]
    cut = decode(frames[0])
    assert (cut.node, cut.session, cut.seq) == ("gw-1", 5, 1)
    assert cut.columns().received_ms == [T0_MS + k * MIN_MS + 300 + d for k in (3, 4, 5) for d in (0, 1)]


def test_the_window_is_half_open(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    add(tier, make_batch(1, T0_MS))
    assert [t for _, _, t in rows_of(tier.window(T0_MS, T0_MS + 7))] == [T0_MS]
    assert [t for _, _, t in rows_of(tier.window(T0_MS + 7, T0_MS + 8))] == [T0_MS + 7]


def test_a_batch_wholly_inside_is_served_as_stored(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    first = add(tier, make_batch(1, T0_MS), packed="zstd")
    second = add(tier, make_batch(2, T0_MS + 10 * MIN_MS), packed="zlib")
    assert tier.window(T0_MS - DAY_MS, T0_MS + DAY_MS) == [first, second]
    assert tier.tallies()["served_frames"] == 2


def test_the_device_filter_keeps_only_those_devices(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    add(tier, make_batch(1, T0_MS))
    got = rows_of(tier.window(T0_MS, T0_MS + DAY_MS, devices={"d1"}))
    assert {d for d, _, _ in got} == {"d1"} and len(got) == 10
    assert tier.window(T0_MS, T0_MS + DAY_MS, devices={"nobody"}) == []
    assert tier.window(T0_MS, T0_MS + DAY_MS, devices=set()) == []


def test_the_device_filter_skips_batches_without_those_devices(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    other = ReadingBatch.build(
        node="gw-1", session=5, seq=9, devices=["d0", "d7"], metrics=["volts"], device_index=[0],
        device_seq=[1], ts_ms=[T0_MS], values=[[3.3]],
    )  # fmt: skip
    add(tier, other)
    add(tier, make_batch(1, T0_MS))
    assert len(tier.window(T0_MS, T0_MS + DAY_MS, devices={"d7"})) == 0  # d7 listed but without a row
    assert [decode(f).seq for f in tier.window(T0_MS, T0_MS + DAY_MS, devices={"d0"})] == [9, 1]


def test_an_empty_window_gives_nothing(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    add(tier, make_batch(1, T0_MS))
    assert tier.window(T0_MS + 100, T0_MS + 200) == []  # overlaps the batch, holds no row
    assert tier.window(T0_MS + DAY_MS, T0_MS + 2 * DAY_MS) == []
    assert tier.window(T0_MS + 5, T0_MS + 5) == []


@pytest.mark.parametrize("codec", [None, "zstd", "zlib"])
def test_quantized_frames_stay_bit_exact_and_keep_their_envelope(tmp_path: Path, codec: str | None) -> None:
    tier = RawTier(tmp_path / "raw.db")
    batch = make_batch(1, T0_MS, scale=[0.001, 0.01])
    add(tier, batch, packed=codec)
    (frame,) = tier.window(T0_MS + 2 * MIN_MS, T0_MS + 5 * MIN_MS)
    outer = decode(frame)
    assert (type(outer).__name__ == "PackedFrame") == (codec is not None)
    if codec:
        assert outer.codec == codec
    cut = decode_unpacked(frame)
    assert cut.value_scale == [0.001, 0.01] and not cut.values
    rows = slice(4, 10)  # minutes 2, 3, 4 of both devices
    for stored, served in zip(batch.steps, cut.steps, strict=True):
        assert served == stored[rows.start * 8 : rows.stop * 8]
    assert cut.reading_count() == 11  # 6 rows x 2 metrics, d1's temp missing at minute 3


def test_float64_frames_are_copied_not_converted(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    batch = make_batch(1, T0_MS)
    add(tier, batch)
    cut = decode(tier.window(T0_MS + MIN_MS, T0_MS + 2 * MIN_MS)[0])
    assert cut.values == [col[16:32] for col in batch.values]


def test_expire_drops_what_is_older_than_keep_days_and_counts_it(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db", keep_days=7)
    old = make_batch(1, T0_MS)
    add(tier, old)
    add(tier, make_batch(2, T0_MS + 2 * DAY_MS))
    assert tier.oldest_ms() == T0_MS
    assert tier.expire(T0_MS + 7 * DAY_MS) == 0  # the newest row of the old batch is younger than 7 days
    assert tier.expire(T0_MS + 8 * DAY_MS) == 1
    assert tier.oldest_ms() == T0_MS + 2 * DAY_MS
    assert tier.tallies()["expired_frames"] == 1
    assert tier.tallies()["expired_readings"] == old.reading_count()
    status = tier.status()
    assert status["frames"] == 1 and status["dropped_through_ms"] == T0_MS + 9 * MIN_MS + 7


def test_a_window_older_than_the_tier_gives_nothing_and_oldest_ms_says_why(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db", keep_days=1)
    add(tier, make_batch(1, T0_MS))
    add(tier, make_batch(2, T0_MS + 3 * DAY_MS))
    tier.expire(T0_MS + 3 * DAY_MS)
    assert tier.window(T0_MS, T0_MS + DAY_MS) == []
    oldest = tier.oldest_ms()
    assert oldest is not None and oldest > T0_MS + DAY_MS


def test_past_the_cap_the_oldest_batches_go_first(tmp_path: Path) -> None:
    sizes = [len(encode(make_batch(i, T0_MS + i * DAY_MS))) for i in range(3)]
    tier = RawTier(tmp_path / "raw.db", cap_bytes=sizes[0] + sizes[1] + 10)
    add(tier, make_batch(2, T0_MS + 2 * DAY_MS))
    add(tier, make_batch(0, T0_MS))
    add(tier, make_batch(1, T0_MS + DAY_MS))  # over the cap: batch 0 (the oldest rows) goes
    assert [decode(f).seq for f in tier.window(0, T0_MS + 10 * DAY_MS)] == [1, 2]
    assert tier.tallies()["evicted_frames"] == 1
    assert tier.tallies()["evicted_readings"] == make_batch(0, T0_MS).reading_count()
    assert tier.status()["size_bytes"] == sizes[1] + sizes[2] <= tier.cap_bytes


def test_a_smaller_cap_at_restart_is_applied_by_expire(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    for i in range(3):
        add(tier, make_batch(i, T0_MS + i * MIN_MS * 10))
    tier.close()
    tier = RawTier(tmp_path / "raw.db", cap_bytes=1)
    assert tier.expire(T0_MS) == 2  # the newest batch stays, even over the cap
    assert [decode(f).seq for f in tier.window(0, T0_MS + DAY_MS)] == [2]
    assert tier.tallies()["frames"] == 3  # tallies survive the restart


def test_add_refuses_what_is_not_a_reading_batch_or_lies_about_it(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "raw.db")
    batch = make_batch(1, T0_MS)
    with pytest.raises(RawTierError, match="not a reading batch"):
        tier.add(b"\xff\x00", T0_MS, T0_MS, 1, 1, T0_MS)
    with pytest.raises(RawTierError, match="outside"):
        tier.add(encode(batch), T0_MS + 1, T0_MS + DAY_MS, batch.rows, 1, T0_MS)
    with pytest.raises(RawTierError, match="rows"):
        tier.add(encode(batch), T0_MS, T0_MS + DAY_MS, batch.rows + 1, 1, T0_MS)
    assert len(tier) == 0 and tier.status()["size_bytes"] == 0


def test_a_corrupt_file_is_set_aside_and_the_tier_starts_clean(tmp_path: Path) -> None:
    path = tmp_path / "raw.db"
    path.write_bytes(b"this is not a database" * 100)
    tier = RawTier(path)
    assert tier.set_aside is not None and tier.set_aside.exists()
    assert tier.status()["set_aside"] == str(tier.set_aside)
    assert len(tier) == 0 and tier.oldest_ms() is None
    add(tier, make_batch(1, T0_MS))
    assert len(tier.window(T0_MS, T0_MS + DAY_MS)) == 1
