"""Store reads shaped for the cores: padded per-device histories and (devices x time bins) grids.

The hub store gives one metric as sorted columns (:class:`~pymonitor.store.fleet_data.Series`);
the cores want rectangles. Both shapes are built with a few numpy operations, never a loop per
reading, because a query over 10,000 devices must answer in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pymonitor.store.fleet_data import Inventory, Series

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True, kw_only=True)
class Padded:
    """One row per device, one column per reading (in time order); ``present`` marks real readings."""

    devices: tuple[str, ...]
    ts_ms: NDArray[np.int64]
    value: NDArray[np.float64]
    present: NDArray[np.bool_]


def padded(series: Series) -> Padded:
    """The series as a (devices, most readings of one device) rectangle, left-aligned."""
    counts = np.diff(series.offsets)
    width = int(counts.max()) if counts.size else 0
    n = len(series.devices)
    rows = series.device_index.astype(np.int64)
    cols = np.arange(len(series), dtype=np.int64) - series.offsets[:-1][rows] if len(series) else rows
    ts = np.zeros((n, width), dtype=np.int64)
    value = np.full((n, width), np.nan)
    present = np.zeros((n, width), dtype=np.bool_)
    ts[rows, cols] = series.ts_ms
    value[rows, cols] = series.value
    present[rows, cols] = True
    return Padded(devices=series.devices, ts_ms=ts, value=value, present=present)


def aligned(primary: Series, other: Series, fill: float) -> NDArray[np.float64]:
    """``other``'s value at each of ``primary``'s rows (same device, same ts); its device median, else ``fill``.

    A battery voltage wants the temperature measured with it; a reading that came without one gets
    the device's typical temperature rather than none.
    """
    out = np.full(len(primary), fill)
    if not len(primary) or not len(other):
        return out
    lookup = {name: i for i, name in enumerate(primary.devices)}
    other_rows = np.fromiter((lookup.get(d, -1) for d in other.devices), dtype=np.int64, count=len(other.devices))
    o_dev = other_rows[other.device_index]
    keep = o_dev >= 0
    o_key = o_dev[keep] * (1 << 42) + other.ts_ms[keep]
    o_val = other.value[keep]
    order = np.argsort(o_key, kind="stable")
    o_key, o_val = o_key[order], o_val[order]
    key = primary.device_index.astype(np.int64) * (1 << 42) + primary.ts_ms
    pos = np.minimum(np.searchsorted(o_key, key), max(len(o_key) - 1, 0))
    hit = (o_key[pos] == key) if len(o_key) else np.zeros(len(key), dtype=np.bool_)
    # Device medians for the misses (finite values only).
    med = np.full(len(primary.devices), fill)
    finite = np.isfinite(o_val)
    dev_of = (o_key >> 42)[finite]
    vals = o_val[finite]
    if vals.size:
        order2 = np.lexsort((vals, dev_of))
        dev_sorted, val_sorted = dev_of[order2], vals[order2]
        starts = np.searchsorted(dev_sorted, np.arange(len(primary.devices)))
        ends = np.searchsorted(dev_sorted, np.arange(len(primary.devices)), side="right")
        has = ends > starts
        med[has] = val_sorted[((starts + ends - 1) // 2)[has]]
    out = np.where(hit, o_val[pos] if len(o_val) else fill, med[primary.device_index])
    return np.asarray(out, dtype=np.float64)


def binned(series: Series, devices: Sequence[str], start_ms: int, bins: int, bin_ms: int) -> NDArray[np.float32]:
    """Mean of each device's readings per time bin from ``start_ms`` as a (devices, bins) float32 grid; NaN if none.

    Non-finite readings are left for the cores to count: a bin with one NaN reading is NaN.
    """
    grid_sum = np.zeros((len(devices), bins), dtype=np.float64)
    grid_n = np.zeros((len(devices), bins), dtype=np.int64)
    if len(series) and bins > 0:
        lookup = {name: i for i, name in enumerate(devices)}
        rows = np.fromiter((lookup.get(d, -1) for d in series.devices), dtype=np.int64, count=len(series.devices))
        row = rows[series.device_index]
        col = (series.ts_ms - start_ms) // bin_ms
        keep = (row >= 0) & (col >= 0) & (col < bins)
        flat = row[keep] * bins + col[keep]
        grid_sum.reshape(-1)[:] = np.bincount(flat, weights=series.value[keep], minlength=len(devices) * bins)
        grid_n.reshape(-1)[:] = np.bincount(flat, minlength=len(devices) * bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(grid_n > 0, grid_sum / grid_n, np.nan).astype(np.float32)


def inventory_rows(inventory: Inventory, devices: Sequence[str]) -> NDArray[np.int64]:
    """Each device's row in the inventory (-1 for one it does not list)."""
    return inventory.index_of(devices).astype(np.int64)


def label_int(inventory: Inventory, row: int, key: str, default: int, low: int, high: int) -> int:
    """An integer label of one inventory row, clipped to ``low..high``; ``default`` when absent or not a number."""
    text = inventory.labels[row].get(key) if row >= 0 else None
    try:
        value = int(text) if text is not None else default
    except ValueError:
        return default
    return min(max(value, low), high)
