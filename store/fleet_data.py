"""Columnar reads of the hub store for the fleet-health roles: one metric of a whole fleet at once.

A role that looks at 10,000 devices over 90 days wants arrays, not rows: one SQL query per
metric, fetched straight into a numpy record array, then sorted by device and time. The
inventory comes back columnar too, with integer codes for grouping by site or gateway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

_ROW = np.dtype([("device_id", np.int64), ("ts_ms", np.int64), ("value", np.float64)])
INVENTORY_COLUMNS = ("gateway", "site", "location", "battery_type", "model", "firmware")


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """Readings of one metric: row ``i`` is ``devices[device_index[i]]`` at ``ts_ms[i]``.

    Rows are sorted by device (in ``devices`` order, which is by name), then time;
    ``offsets[k]:offsets[k + 1]`` are the rows of ``devices[k]``.
    """

    metric: str
    devices: tuple[str, ...]
    device_index: npt.NDArray[np.int32]
    ts_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    def of(self, device: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(ts_ms, value) of one device (empty arrays when it has no rows)."""
        try:
            k = self.devices.index(device)
        except ValueError:
            return self.ts_ms[:0], self.value[:0]
        start, end = int(self.offsets[k]), int(self.offsets[k + 1])
        return self.ts_ms[start:end], self.value[start:end]


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    """The device inventory, one entry per device, sorted by device name."""

    device: tuple[str, ...]
    gateway: tuple[str, ...]
    site: tuple[str, ...]
    location: tuple[str | None, ...]
    battery_type: tuple[str | None, ...]
    model: tuple[str | None, ...]
    firmware: tuple[str | None, ...]
    labels: tuple[dict[str, str], ...]
    updated_ms: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.device)

    def codes(self, column: str) -> tuple[tuple[str | None, ...], npt.NDArray[np.int32]]:
        """Distinct values of a column (sorted, None first) and each device's code into them, for numpy grouping."""
        if column not in INVENTORY_COLUMNS:
            raise ValueError(f"column: expected one of {', '.join(INVENTORY_COLUMNS)}, got {column!r}")
        values: tuple[str | None, ...] = getattr(self, column)
        names = tuple(sorted(set(values), key=lambda v: (v is not None, v or "")))
        index = {name: i for i, name in enumerate(names)}
        return names, np.fromiter((index[v] for v in values), dtype=np.int32, count=len(values))

    def index_of(self, devices: Sequence[str]) -> npt.NDArray[np.int32]:
        """Each device's row in this inventory, -1 for a device it does not list (e.g. ``Series.devices``)."""
        rows = {name: i for i, name in enumerate(self.device)}
        return np.fromiter((rows.get(d, -1) for d in devices), dtype=np.int32, count=len(devices))


class FleetData:
    """Read access to a hub store's readings and inventory (the connection is not closed here)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def metrics(self) -> list[str]:
        return [name for (name,) in self.conn.execute("SELECT name FROM metrics ORDER BY name")]

    def series(
        self,
        metric: str,
        devices: Sequence[str] | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> Series:
        """One metric's readings in ``[since_ms, until_ms)``, of the given devices (default: all)."""
        sql = ["SELECT device_id, ts_ms, value FROM readings WHERE metric_id = (SELECT id FROM metrics WHERE name = ?)"]
        params: list[Any] = [metric]
        if devices is not None:
            sql.append("AND device_id IN (SELECT d.id FROM devices d, json_each(?) j WHERE d.name = j.value)")
            params.append(orjson.dumps(list(devices)).decode())
        if since_ms is not None:
            sql.append("AND ts_ms >= ?")
            params.append(since_ms)
        if until_ms is not None:
            sql.append("AND ts_ms < ?")
            params.append(until_ms)
        rows = np.fromiter(self.conn.execute(" ".join(sql), params), dtype=_ROW)
        return self._columns(metric, rows)

    def _columns(self, metric: str, rows: npt.NDArray[Any]) -> Series:
        ids = rows["device_id"]
        present = np.flatnonzero(np.bincount(ids)) if len(rows) else np.zeros(0, dtype=np.int64)
        names = self._names(present)
        order = sorted(range(len(present)), key=names.__getitem__)
        lookup = np.zeros(int(present[-1]) + 1 if len(present) else 1, dtype=np.int32)
        lookup[present[order]] = np.arange(len(order), dtype=np.int32)
        device_index = lookup[ids]
        sort = np.lexsort((rows["ts_ms"], device_index))
        device_index = device_index[sort]
        counts = np.bincount(device_index, minlength=len(order))
        return Series(
            metric=metric,
            devices=tuple(names[i] for i in order),
            device_index=device_index,
            ts_ms=rows["ts_ms"][sort],
            value=rows["value"][sort],
            offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
        )

    def _names(self, ids: npt.NDArray[np.int64]) -> list[str]:
        found = dict(
            self.conn.execute(
                "SELECT d.id, d.name FROM devices d, json_each(?) j WHERE d.id = j.value",
                (orjson.dumps(ids.tolist()).decode(),),
            )
        )
        return [found.get(int(i), f"#{int(i)}") for i in ids]

    def inventory(self) -> Inventory:
        rows = self.conn.execute(
            "SELECT d.name, i.gateway, i.site, i.location, i.battery_type, i.model, i.firmware, i.labels,"
            " i.updated_ms FROM inventory i JOIN devices d ON d.id = i.device_id ORDER BY d.name"
        ).fetchall()
        cols = list(zip(*rows, strict=True)) if rows else [()] * 9
        return Inventory(
            device=tuple(cols[0]),
            gateway=tuple(cols[1]),
            site=tuple(cols[2]),
            location=tuple(cols[3]),
            battery_type=tuple(cols[4]),
            model=tuple(cols[5]),
            firmware=tuple(cols[6]),
            labels=tuple(orjson.loads(text) for text in cols[7]),
            updated_ms=np.array(cols[8], dtype=np.int64),
        )

    def devices_at_site(self, site: str) -> list[str]:
        return self._devices_where("i.site = ?", site)

    def devices_of_gateway(self, gateway: str) -> list[str]:
        return self._devices_where("i.gateway = ?", gateway)

    def _devices_where(self, condition: str, value: str) -> list[str]:
        sql = f"SELECT d.name FROM inventory i JOIN devices d ON d.id = i.device_id WHERE {condition} ORDER BY d.name"
        return [name for (name,) in self.conn.execute(sql, (value,))]
