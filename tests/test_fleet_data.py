"""Columnar reads of the hub store for the fleet-health roles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pymonitor.store import HubStore
from pymonitor.store.fleet_data import FleetData
from pymonitor.store.fleet_import import import_inventory, import_readings

NOW_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z
H = 3_600_000
T0 = NOW_MS - 10 * H


@pytest.fixture
def store(tmp_path: Path) -> HubStore:
    hub = HubStore(tmp_path / "hub.db")
    inv = tmp_path / "inv.csv"
    inv.write_text(
        "device,gateway,site,location,battery_type,model,firmware,owner\n"
        "b-2,gw-1,site-a,,LiSOCl2,TH-2,1.0,ops\n"
        "a-1,gw-1,site-a,roof,LiSOCl2,TH-2,1.1,\n"
        "c-3,gw-2,site-b,,,TH-3,1.1,lab\n"
    )
    import_inventory(hub, inv, clock=lambda: NOW_MS)
    rows = ["device,ts,metric,value"]
    # time-major and devices out of name order, as a hub receives them
    for hour in range(3):
        for device, base in (("c-3", 30.0), ("b-2", 20.0), ("a-1", 10.0)):
            rows.append(f"{device},{(T0 + hour * H) // 1000},battery_v,{base + hour}")
            rows.append(f"{device},{(T0 + hour * H) // 1000},temp_c,{-base}")
    csv = tmp_path / "r.csv"
    csv.write_text("\n".join(rows) + "\n")
    import_readings(hub, csv, clock=lambda: NOW_MS)
    return hub


def test_series_is_sorted_by_device_name_then_time(store: HubStore) -> None:
    series = FleetData(store.conn).series("battery_v")
    assert series.metric == "battery_v" and len(series) == 9
    assert series.devices == ("a-1", "b-2", "c-3")
    assert series.device_index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert series.ts_ms.tolist() == [T0, T0 + H, T0 + 2 * H] * 3
    assert series.value.tolist() == [10.0, 11.0, 12.0, 20.0, 21.0, 22.0, 30.0, 31.0, 32.0]
    assert series.offsets.tolist() == [0, 3, 6, 9]
    assert series.device_index.dtype == np.int32 and series.ts_ms.dtype == np.int64


def test_series_of_one_device(store: HubStore) -> None:
    series = FleetData(store.conn).series("battery_v")
    ts, values = series.of("b-2")
    assert ts.tolist() == [T0, T0 + H, T0 + 2 * H] and values.tolist() == [20.0, 21.0, 22.0]
    ts, values = series.of("nobody")
    assert ts.size == 0 and values.size == 0


def test_series_filters_devices_and_time_half_open(store: HubStore) -> None:
    data = FleetData(store.conn)
    series = data.series("battery_v", devices=["c-3", "a-1", "nobody"], since_ms=T0 + H, until_ms=T0 + 2 * H)
    assert series.devices == ("a-1", "c-3")
    assert series.value.tolist() == [11.0, 31.0]
    assert len(data.series("battery_v", devices=[])) == 0


def test_unknown_metric_gives_an_empty_series(store: HubStore) -> None:
    series = FleetData(store.conn).series("pressure_hpa")
    assert len(series) == 0 and series.devices == () and series.offsets.tolist() == [0]


def test_a_device_row_without_a_name_is_shown_by_its_id(store: HubStore) -> None:
    store.conn.execute("INSERT INTO readings (device_id, metric_id, ts_ms, value, device_seq) VALUES (99, 1, 1, 0, 0)")
    series = FleetData(store.conn).series("battery_v", until_ms=2)
    assert series.devices == ("#99",)


def test_metrics_are_listed_by_name(store: HubStore) -> None:
    assert FleetData(store.conn).metrics() == ["battery_v", "temp_c"]


def test_inventory_is_columnar_by_device_name(store: HubStore) -> None:
    inv = FleetData(store.conn).inventory()
    assert len(inv) == 3
    assert inv.device == ("a-1", "b-2", "c-3")
    assert inv.site == ("site-a", "site-a", "site-b")
    assert inv.location == ("roof", None, None)
    assert inv.battery_type == ("LiSOCl2", "LiSOCl2", None)
    assert inv.labels == ({}, {"owner": "ops"}, {"owner": "lab"})
    assert inv.updated_ms.tolist() == [NOW_MS] * 3
    names, codes = inv.codes("battery_type")
    assert names == (None, "LiSOCl2") and codes.tolist() == [1, 1, 0]
    names, codes = inv.codes("gateway")
    assert names == ("gw-1", "gw-2") and codes.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="column: expected one of gateway"):
        inv.codes("device")


def test_inventory_joins_a_series_by_device(store: HubStore) -> None:
    data = FleetData(store.conn)
    inv, series = data.inventory(), data.series("battery_v", devices=["c-3", "b-2"])
    rows = inv.index_of(series.devices + ("nobody",))
    assert rows.tolist() == [1, 2, -1]
    _, site_codes = inv.codes("site")
    per_row_site = site_codes[rows[series.device_index]]
    assert per_row_site.tolist() == [0, 0, 0, 1, 1, 1]


def test_devices_by_site_and_gateway(store: HubStore) -> None:
    data = FleetData(store.conn)
    assert data.devices_at_site("site-a") == ["a-1", "b-2"]
    assert data.devices_of_gateway("gw-2") == ["c-3"]
    assert data.devices_at_site("nowhere") == []


def test_empty_store_gives_empty_inventory(tmp_path: Path) -> None:
    inv = FleetData(HubStore(tmp_path / "hub.db").conn).inventory()
    assert len(inv) == 0 and inv.updated_ms.size == 0 and inv.codes("site") == ((), pytest.approx(np.zeros(0)))
