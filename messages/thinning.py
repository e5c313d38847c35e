"""Downsampling a stored reading batch: keep every other sample of each device.

What a node's outbox does to old backfill before it has to drop frames for space: half the
history at half the resolution beats losing the oldest half outright. The frame keeps its
identity (node, session, seq) and its envelope (plain CBOR, or ``frame.packed.v1`` with the same
codec), so dedup and acknowledgement work as before. Value columns are copied row by row as
they are on the wire, so quantized columns keep their ``value_scale`` and exact steps.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from .codec import MAX_FRAME_BYTES, decode, encode
from .columns import pack_deltas
from .errors import MessageError
from .packing import PackedFrame, pack, unpack
from .readings import ReadingBatch


def kept_rows(device_index: npt.NDArray[np.uint32], device_seq: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Rows to keep, in their original order: per device, every other sample by ``device_seq``.

    A device's samples are ranked 0, 1, 2... in ``device_seq`` order and the even ranks stay, so
    a device's first sample always stays (a device with one sample keeps it).
    """
    n = len(device_index)
    if n == 0:
        return np.arange(0, dtype=np.intp)
    order = np.lexsort((device_seq, device_index))  # by device, then by its own sequence
    by_device = device_index[order]
    position = np.arange(n)
    starts = np.ones(n, dtype=bool)
    starts[1:] = by_device[1:] != by_device[:-1]
    group_start = np.maximum.accumulate(np.where(starts, position, 0))
    keep = np.zeros(n, dtype=bool)
    keep[order[(position - group_start) % 2 == 0]] = True
    return np.flatnonzero(keep)


def take_rows(batch: ReadingBatch, rows: npt.NDArray[np.intp]) -> ReadingBatch:
    """The batch with only ``rows`` (in that order); value columns copied, never converted.

    Raises OverflowError when two kept rows are further apart than a delta-coded int64 allows.
    """

    def ints(column: bytes) -> bytes:
        # Python ints for the deltas: pack_deltas raises instead of wrapping around as numpy would.
        return pack_deltas(np.cumsum(np.frombuffer(column, dtype="<i8"))[rows].tolist())

    return dataclasses.replace(
        batch,
        rows=len(rows),
        device_index=np.frombuffer(batch.device_index, dtype="<u4")[rows].tobytes(),
        device_seq=ints(batch.device_seq),
        ts_ms=ints(batch.ts_ms),
        # 8 bytes a row, float64 or int64 steps alike: copied, never converted (no rounding drift)
        values=[np.frombuffer(col, dtype="<u8")[rows].tobytes() for col in batch.values],
        steps=[np.frombuffer(col, dtype="<u8")[rows].tobytes() for col in batch.steps],
        received_ms=ints(batch.received_ms) if batch.received_ms else b"",
    )


def thin_batch(batch: ReadingBatch) -> ReadingBatch | None:
    """The batch with every other sample of each device, or None when that removes nothing."""
    device_index = np.frombuffer(batch.device_index, dtype="<u4").astype(np.uint32)
    device_seq = np.cumsum(np.frombuffer(batch.device_seq, dtype="<i8")).astype(np.int64)
    rows = kept_rows(device_index, device_seq)
    if len(rows) == batch.rows:
        return None
    try:
        return take_rows(batch, rows)
    except OverflowError:
        return None  # a column that only fits delta-coded as it was: leave the frame alone


def thin_frame(payload: bytes) -> tuple[bytes, int] | None:
    """Thin an encoded reading batch: ``(payload, readings left)``, or None if it cannot be thinned.

    ``payload`` may be plain or a ``frame.packed.v1`` envelope; the result uses the same envelope
    and codec. Readings are non-NaN cells. Anything but a reading batch with more than one sample
    of some device (an event, bytes that do not decode) gives None.
    """
    try:
        outer = decode(payload)
        codec = outer.codec if isinstance(outer, PackedFrame) else None
        msg = decode(unpack(outer, MAX_FRAME_BYTES)) if isinstance(outer, PackedFrame) else outer
        if not isinstance(msg, ReadingBatch):
            return None
        thinned = thin_batch(msg)
        if thinned is None:
            return None
        frame = encode(thinned)
        out = encode(pack(frame, codec)) if codec is not None else frame
    except MessageError:
        return None
    return out, thinned.reading_count()
