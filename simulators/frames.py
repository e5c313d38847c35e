"""Packing a :class:`SampleBlock` into a :class:`ReadingBatch` with numpy (no per-row Python)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pymonitor.messages import ReadingBatch
from pymonitor.messages.columns import quantize

from .models import METRICS, VALUE_SCALE, SampleBlock


def _deltas(column: NDArray[np.int64]) -> bytes:
    out = np.empty(len(column), dtype="<i8")
    if len(column):
        out[0] = column[0]
        np.subtract(column[1:], column[:-1], out=out[1:])
    return out.tobytes()


def block_to_batch(
    block: SampleBlock, *, node: str, session: int, seq: int, devices: list[str], backfill: bool = False
) -> tuple[ReadingBatch, int]:
    """The batch for a block and how many readings (measured cells) it carries (with the gateway's
    receipt times when the block has them, so the hub can correct the device clocks).

    Values go as int64 steps of each metric's resolution (``VALUE_SCALE``); a value finer than its
    step is rounded to it, one that does not fit int64 raises OverflowError.
    """
    values = np.asarray(block.values, dtype=np.float64)
    batch = ReadingBatch(
        node=node,
        session=session,
        seq=seq,
        devices=devices,
        metrics=list(METRICS),
        rows=block.rows,
        device_index=block.device_index.astype("<u4").tobytes(),
        device_seq=_deltas(block.device_seq),
        ts_ms=_deltas(block.ts_ms),
        values=[],
        steps=[quantize(values[i], scale).astype("<i8").tobytes() for i, scale in enumerate(VALUE_SCALE)],
        backfill=backfill,
        received_ms=b"" if block.received_ms is None else _deltas(block.received_ms),
        value_scale=list(VALUE_SCALE),
    )
    return batch, int(np.count_nonzero(~np.isnan(values)))
