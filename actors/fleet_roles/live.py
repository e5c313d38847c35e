"""What the role actors receive from the hub's stream: readings decoded once and shared, and events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pymonitor.messages import Event, ReadingBatch


@dataclass(frozen=True, slots=True, kw_only=True)
class Readings:
    """One reading batch as numpy columns (read-only, shared by every role: unpacked once, not per role)."""

    node: str
    devices: tuple[str, ...]
    metrics: tuple[str, ...]
    device_index: NDArray[np.int64]  # per row, into devices
    ts_ms: NDArray[np.int64]
    values: NDArray[np.float64]  # (metrics, rows); NaN = not measured

    @property
    def rows(self) -> int:
        return int(self.ts_ms.shape[0])

    @classmethod
    def of(cls, batch: ReadingBatch) -> Readings:
        cols = batch.columns()
        values = np.array([np.asarray(v, dtype=np.float64) for v in cols.values]).reshape(len(batch.metrics), -1)
        values.setflags(write=False)
        return cls(
            node=batch.node,
            devices=tuple(batch.devices),
            metrics=tuple(batch.metrics),
            device_index=np.asarray(cols.device_index, dtype=np.int64),
            ts_ms=np.asarray(cols.ts_ms, dtype=np.int64),
            values=values,
        )


Item = Readings | Event
"""What a role's inbox holds."""


def size(item: Item) -> int:
    """Readings (row x metric cells) an item counts for in a bounded inbox; an event counts as one."""
    return item.rows * len(item.metrics) if isinstance(item, Readings) else 1
