"""Thinning a batch: every other sample per device goes, the rest stays exact, the envelope is kept."""

from __future__ import annotations

import math
import struct
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.messages import Event, PackedFrame, ReadingBatch, decode, decode_unpacked, encode, encode_packed
from pymonitor.messages.thinning import thin_frame

T0 = 1_767_225_600_000


def batch(
    device_index: list[int],
    device_seq: list[int],
    *,
    devices: int = 2,
    values: list[list[float | None]] | None = None,
    received: bool = False,
) -> ReadingBatch:
    rows = len(device_index)
    return ReadingBatch.build(
        node="gw-1", session=4, seq=9, devices=[f"dev-{i}" for i in range(devices)], metrics=["t", "h"],
        device_index=device_index, device_seq=device_seq, ts_ms=[T0 + 1000 * i for i in range(rows)],
        values=values or [[20.0 + i for i in range(rows)], [50.0 + i for i in range(rows)]],
        received_ms=[T0 + 1000 * i + 7 for i in range(rows)] if received else None, backfill=True,
    )  # fmt: skip


def rows_of(b: ReadingBatch) -> list[tuple[object, ...]]:
    """Rows as comparable tuples (NaN compared by its bits)."""
    c = b.columns()
    received = c.received_ms or [None] * b.rows
    return [
        (b.devices[c.device_index[i]], c.device_seq[i], c.ts_ms[i], received[i])
        + tuple(struct.pack("<d", col[i]) for col in c.values)
        for i in range(b.rows)
    ]


def test_every_other_sample_of_each_device_stays_with_all_its_columns() -> None:
    # rows interleave two devices; dev-0's samples arrive out of sequence order
    original = batch([0, 1, 0, 1, 0, 1, 0], [12, 1, 10, 2, 11, 3, 13], received=True)
    out = thin_frame(encode(original))
    assert out is not None
    payload, readings = out
    thinned = decode(payload)
    assert isinstance(thinned, ReadingBatch)
    c = thinned.columns()
    # dev-0 by sequence: 10, 11, 12, 13 -> keeps 10 and 12; dev-1: 1, 2, 3 -> keeps 1 and 3
    assert list(zip(c.device_index, c.device_seq, strict=True)) == [(0, 12), (1, 1), (0, 10), (1, 3)]
    assert c.ts_ms == [T0, T0 + 1000, T0 + 2000, T0 + 5000]
    assert c.received_ms == [t + 7 for t in c.ts_ms]
    assert list(c.values[0]) == [20.0, 21.0, 22.0, 25.0]
    assert readings == 8
    assert (thinned.node, thinned.session, thinned.seq, thinned.backfill) == ("gw-1", 4, 9, True)


def test_readings_left_do_not_count_unmeasured_cells() -> None:
    original = batch([0, 0, 0, 0], [1, 2, 3, 4], values=[[1.0, 2.0, None, 4.0], [None, 5.0, None, 6.0]])
    out = thin_frame(encode(original))
    assert out is not None
    assert out[1] == 1  # rows 1 and 3 stay: (1.0, NaN) and (None, None)


@pytest.mark.parametrize("codec", ["zstd", "zlib"])
def test_a_packed_frame_comes_back_packed_with_the_same_codec(codec: str) -> None:
    original = batch([0, 1] * 50, list(range(100)))
    out = thin_frame(encode_packed(original, codec))
    assert out is not None
    envelope = decode(out[0])
    assert isinstance(envelope, PackedFrame) and envelope.codec == codec
    assert decode_unpacked(out[0]).rows == 50


def test_a_thinned_frame_can_be_thinned_again() -> None:
    once = thin_frame(encode(batch([0] * 8, list(range(8)))))
    assert once is not None
    twice = thin_frame(once[0])
    assert twice is not None
    assert decode(twice[0]).columns().device_seq == [0, 4]


def test_what_cannot_be_thinned_gives_none() -> None:
    event = Event(node="gw-1", ts_ms=T0, kind="battery.low", severity="warning", message="low", session=1, seq=2)
    assert thin_frame(encode(event)) is None
    assert thin_frame(encode_packed(event)) is None
    assert thin_frame(b"\xff not cbor") is None
    assert thin_frame(b"") is None
    assert thin_frame(encode(batch([0, 1], [5, 5]))) is None  # one sample per device: nothing to drop
    assert thin_frame(encode(batch([], []))) is None


def test_a_quantized_batch_keeps_its_scale_and_the_exact_steps_of_the_rows_it_keeps() -> None:
    original = ReadingBatch.build(
        node="gw-1", session=4, seq=9, devices=["dev-0", "dev-1"], metrics=["t", "h"],
        device_index=[0, 1, 0, 1, 0], device_seq=[1, 1, 2, 2, 3], ts_ms=[T0 + 1000 * i for i in range(5)],
        values=[[21.51, 18.07, None, 18.09, 21.49], [55.3, math.nan, 54.9, 55.1, None]],
        value_scale=[0.01, 0.1], backfill=True,
    )  # fmt: skip
    out = thin_frame(encode_packed(original))
    assert out is not None
    thinned = decode_unpacked(out[0])
    assert isinstance(thinned, ReadingBatch)
    assert thinned.value_scale == [0.01, 0.1]
    kept = [0, 1, 4]  # dev-0 keeps seq 1 and 3, dev-1 keeps seq 1
    for before, after in zip(original.values, thinned.values, strict=True):
        steps = struct.unpack("<5q", before)
        assert struct.unpack("<3q", after) == tuple(steps[i] for i in kept)  # the int64 steps, copied
    assert [list(col) for col in thinned.columns().values][0] == [21.51, 18.07, 21.49]
    assert out[1] == thinned.reading_count() == 4  # (21.51, 55.3), (18.07, not measured), (21.49, not measured)


def test_a_column_too_wide_for_deltas_after_thinning_is_left_alone() -> None:
    # consecutive deltas fit int64, but rows 0 and 2 are further apart than int64 can say
    low, high = -(2**62) - 10, 2**62 + 10
    original = ReadingBatch.build(
        node="gw-1", session=1, seq=1, devices=["a"], metrics=["t"], device_index=[0, 0, 0],
        device_seq=[1, 2, 3], ts_ms=[low, 0, high], values=[[1.0, 2.0, 3.0]],
    )  # fmt: skip
    assert thin_frame(encode(original)) is None


@st.composite
def batches(draw: st.DrawFn) -> ReadingBatch:
    n_devices = draw(st.integers(1, 5))
    rows = draw(st.integers(0, 60))
    device_index = draw(st.lists(st.integers(0, n_devices - 1), min_size=rows, max_size=rows))
    # unique sequence numbers per device, in any row order
    device_seq = draw(st.lists(st.integers(0, 2**40), min_size=rows, max_size=rows, unique=True))
    ts_ms = draw(st.lists(st.integers(T0 - 10**9, T0 + 10**9), min_size=rows, max_size=rows))
    metrics = draw(st.integers(0, 3))
    scale = draw(st.none() | st.sampled_from([0.01, 0.1, 0.5, 3.0]))  # int64 steps of a resolution, or float64
    cell = st.none() | (st.floats() if scale is None else st.integers(-(10**9), 10**9).map(lambda q: q * scale))
    values = [draw(st.lists(cell, min_size=rows, max_size=rows)) for _ in range(metrics)]
    received = draw(st.booleans())
    return ReadingBatch.build(
        node="gw-9", session=draw(st.integers(0, 2**63 - 1)), seq=draw(st.integers(0, 2**63 - 1)),
        devices=[f"d{i}" for i in range(n_devices)], metrics=[f"m{i}" for i in range(metrics)],
        device_index=device_index, device_seq=device_seq, ts_ms=ts_ms, values=values,
        received_ms=[t + 5 for t in ts_ms] if received else None, backfill=draw(st.booleans()),
        value_scale=None if scale is None else [scale] * metrics,
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(original=batches(), codec=st.sampled_from([None, "zstd", "zlib"]))
def test_a_thinned_batch_decodes_to_about_half_of_its_rows_in_order(original: ReadingBatch, codec: str | None) -> None:
    payload = encode_packed(original, codec) if codec else encode(original)
    per_device = Counter(original.columns().device_index)
    out = thin_frame(payload)
    if all(n <= 1 for n in per_device.values()):
        assert out is None
        return
    assert out is not None
    thinned = decode_unpacked(out[0])
    assert isinstance(thinned, ReadingBatch)
    assert isinstance(decode(out[0]), PackedFrame) == (codec is not None)
    assert (thinned.node, thinned.session, thinned.seq, thinned.backfill) == (
        original.node, original.session, original.seq, original.backfill,
    )  # fmt: skip
    assert (thinned.devices, thinned.metrics) == (original.devices, original.metrics)
    assert thinned.value_scale == original.value_scale
    assert bool(thinned.received_ms) == bool(original.received_ms)
    before, after = rows_of(original), rows_of(thinned)
    # a subsequence of the original rows: nothing changed, nothing reordered
    it = iter(before)
    assert all(row in it for row in after)
    # per device: the samples with even rank in sequence order, so ceil(n / 2) of them
    kept = Counter(thinned.columns().device_index)
    assert kept == Counter({d: math.ceil(n / 2) for d, n in per_device.items()})
    for d in per_device:
        seqs = sorted(s for i, s in zip(original.columns().device_index, original.columns().device_seq) if i == d)
        got = sorted(s for i, s in zip(thinned.columns().device_index, thinned.columns().device_seq) if i == d)
        assert got == seqs[::2]
    assert original.rows / 2 <= thinned.rows <= (original.rows + len(per_device)) / 2
    assert out[1] == thinned.reading_count()
