"""Fleet-health roles: store queries agree with the cores, roles raise events once, actors never stall each other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_for

from pymonitor.actors.battery import FleetHistory, forecast_fleet
from pymonitor.actors.calibration.drift import detect_drift
from pymonitor.actors.environment import analyse as environment_core
from pymonitor.actors.firmware import Device, FirmwareInventory, Image
from pymonitor.actors.fleet_roles import (
    BatteryOptions,
    CalibrationOptions,
    EnvironmentOptions,
    FirmwareOptions,
    FleetQueryError,
    FleetRoles,
    FleetService,
    GatewayOptions,
    LiveRole,
    Readings,
    RoleInbox,
    battery_query,
    calibration_query,
    load_approved,
    plain_roles,
    store_roles,
)
from pymonitor.actors.fleet_roles.grid import aligned, binned, label_int, padded
from pymonitor.actors.fleet_roles.roles import (
    BatteryRole,
    CalibrationRole,
    EnvironmentRole,
    FirmwareRole,
    GatewaysRole,
)
from pymonitor.actors.runtime.clock import RealClock, SimClock
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.bench.fleet import StoreWriter
from pymonitor.broker import topics
from pymonitor.messages import Event, ReadingBatch, encode
from pymonitor.simulators.health.battery import BatteryScenario
from pymonitor.simulators.health.calibration import CalibrationScenario
from pymonitor.simulators.health.environment import generate as environment_scenario
from pymonitor.store.fleet_data import FleetData

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
T0 = 1_767_225_600_000


def _row(device: str, gateway: str = "gw-a", site: str = "s1", **more: Any) -> dict[str, Any]:
    return {"device": device, "gateway": gateway, "site": site, **more}


# --- queries against the cores on the same data ------------------------------------------------


def test_battery_query_forecasts_what_the_core_forecasts_from_the_same_history(tmp_path: Path) -> None:
    sc = BatteryScenario.generate(3, devices=60, days=30, extra_days=30)
    h, meta = sc.history, sc.meta
    usable = h.present & np.isfinite(h.voltage) & np.isfinite(h.temp_c)
    rows, cols = np.nonzero(usable)
    w = StoreWriter(tmp_path / "hub.db")
    names = [meta.devices[i] for i in rows.tolist()]
    w.readings("battery_v", names, h.ts_ms[rows, cols].tolist(), h.voltage[rows, cols].tolist())
    w.readings("temperature_c", names, h.ts_ms[rows, cols].tolist(), h.temp_c[rows, cols].tolist())
    inventory = [
        _row(d, site=s, location=loc, battery_type=c, labels={"criticality": str(int(k))})
        for d, s, loc, c, k in zip(meta.devices, meta.sites, meta.locations, meta.chemistries, meta.criticality)
    ]
    inventory[0]["battery_type"] = "nuclear"  # not a chemistry: skipped, never forecast with a guessed curve
    w.inventory(inventory)
    w.readings("battery_v", ["stranger"], [sc.now_ms - HOUR_MS], [3.5])
    w.close()
    expected = forecast_fleet(
        FleetHistory(
            devices=h.devices[1:],
            chemistries=h.chemistries[1:],
            ts_ms=h.ts_ms[1:],
            voltage=h.voltage[1:],
            temp_c=h.temp_c[1:],
            present=usable[1:],
        ),
        sc.now_ms,
    )
    with FleetService(tmp_path / "hub.db") as service:
        got = battery_query.analyse(service.data, sc.now_ms, BatteryOptions()).forecast
        answer = service.battery(sc.now_ms, BatteryOptions(limit=5))
        one = service.battery(sc.now_ms, BatteryOptions(device=meta.devices[5]))
        site = service.battery(sc.now_ms, BatteryOptions(site=meta.sites[5]))
    assert got.devices == expected.devices
    np.testing.assert_allclose(got.p50, expected.p50, equal_nan=True)
    assert answer["skipped"] == {"not_in_inventory": 1, "unknown_battery_type": 1}
    assert answer["devices"] == 59 and len(answer["alerts"]) <= 5
    assert sum(answer["statuses"].values()) == 59
    assert [f["device"] for f in one["forecasts"]] == [meta.devices[5]]
    assert site["devices"] == meta.sites.count(meta.sites[5]) - (meta.sites[0] == meta.sites[5])
    assert {g["group"] for g in answer["rates"]["battery_type"]} <= {"lisocl2", "alkaline_2aa", "liion"}


def test_battery_query_of_an_empty_store_says_no_devices(tmp_path: Path) -> None:
    StoreWriter(tmp_path / "hub.db").close()
    with FleetService(tmp_path / "hub.db") as service:
        answer = service.battery(T0)
        assert service.latest_ms() is None
    assert answer["devices"] == 0 and answer["alerts"] == [] and answer["trips"] == []


def test_calibration_query_finds_the_drifts_the_core_finds(tmp_path: Path) -> None:
    sc = CalibrationScenario.generate(5, devices=48, days=14)
    w = StoreWriter(tmp_path / "hub.db")
    w.inventory([_row(d, location=loc) for d, loc in zip(sc.devices, sc.locations)])
    for metric in sorted(set(sc.metrics)):
        rows = [i for i, m in enumerate(sc.metrics) if m == metric]
        r, c = np.nonzero(np.isfinite(sc.values[rows]))
        w.readings(
            metric,
            [sc.devices[rows[i]] for i in r.tolist()],
            sc.ts_ms[c].tolist(),
            sc.values[np.asarray(rows)[r], c].tolist(),
        )
    w.readings("temperature_c", ["stranger"], [int(sc.ts_ms[-1])], [20.0])
    drifted = [d for d, flag in zip(sc.devices, sc.truth.drifted) if flag]
    w.events("calibration.done", [(sc.devices[0], int(sc.ts_ms[-1]) - 360 * DAY_MS, {})])
    w.close()
    expected = detect_drift(sc.devices, sc.locations, sc.metrics, sc.ts_ms, sc.values)
    now = int(sc.ts_ms[-1])
    with FleetService(tmp_path / "hub.db") as service:
        answer = service.calibration(now, CalibrationOptions(days=14, limit=1000, device=sc.devices[0]))
    found = {d["device"] for d in answer["drifting"]}
    assert found == {e.device for e in expected.events()}
    assert found and found <= set(drifted) | found  # the core's verdict, whatever it is, comes through unchanged
    assert answer["skipped"] == {"sensors_not_in_inventory": 1}
    assert answer["sensors"] == len(sc.devices)
    reasons = {(d["device"], d["reason"]) for d in answer["schedule"]}
    assert {(d, "drift") for d in found} <= reasons
    assert sc.devices[0] in {d for d, why in reasons if why in ("interval", "drift")}
    assert answer["sensor"][0]["calibrated_ms"] == [now - 360 * DAY_MS]


def test_calibration_options_refuse_a_non_positive_window() -> None:
    with pytest.raises(FleetQueryError, match="days: expected a positive number"):
        CalibrationOptions(days=0)


def test_environment_query_gives_the_cores_rate_ratios_from_the_store(tmp_path: Path) -> None:
    sc = environment_scenario(7, devices=150, days=20)
    d = sc.data
    names = [f"env-{i:04d}" for i in range(d.temperature_c.shape[0])]
    hours = d.temperature_c.shape[1]
    w = StoreWriter(tmp_path / "hub.db")
    w.inventory([_row(n, site=d.sites[s]) for n, s in zip(names, d.device_site.tolist())])
    for metric, grid in (("temperature_c", d.temperature_c), ("humidity_pct", d.humidity_pct)):
        r, c = np.nonzero(np.isfinite(grid))
        w.readings(metric, [names[i] for i in r.tolist()], (T0 + c * HOUR_MS).tolist(), grid[r, c].tolist())
    r, c = np.nonzero(np.isfinite(d.vibration_ms2))
    g = d.vibration_ms2[r, c] / 9.80665  # stored in g, as the fleet simulator reports: converted back on read
    w.readings("vibration_g", [names[i] for i in r.tolist()], (T0 + c * HOUR_MS).tolist(), g.tolist())
    fail_ts = (T0 + d.failure_hour * HOUR_MS).astype(np.int64)
    half = len(fail_ts) // 2
    w.readings("failure", [names[i] for i in d.failure_device[:half]], fail_ts[:half].tolist(), [1.0] * half)
    w.events("device.failure", [(names[i], int(t), {}) for i, t in zip(d.failure_device[half:], fail_ts[half:])])
    w.events("device.failure", [("stranger", T0 + HOUR_MS, {})])
    w.close()
    expected = environment_core(d)
    with FleetService(tmp_path / "hub.db") as service:
        answer = service.environment(T0 + (hours - 1) * HOUR_MS, EnvironmentOptions(days=hours / 24))
    for name, ratio in expected.fleet.items():
        got = answer["fleet"][name]
        assert got["method"] == ratio.method
        if got["ratio"] is not None:
            assert got["ratio"] == pytest.approx(ratio.ratio, rel=1e-3)
    assert answer["devices_analysed"] == expected.devices_analysed
    assert answer["skipped"] == {"failures_of_unknown_devices": 1}
    assert answer["quarantined"]["temperature_impossible"] == expected.quarantined["temperature_impossible"]


def test_environment_options_refuse_a_zero_bin() -> None:
    with pytest.raises(FleetQueryError, match="bin_hours"):
        EnvironmentOptions(bin_hours=0)


def _gateway_store(path: Path) -> None:
    w = StoreWriter(path)
    rows = [_row(f"d{i}", gateway="gw-a", labels={"reach": "gw-a:0.9 gw-b:0.8"}) for i in range(6)]
    rows += [_row("d6", gateway="gw-b", labels={"reach": "gw-b:0.9;gw-c:oops"})]  # a bad quality: counted
    rows += [_row("d7", gateway="gw-c", labels={"reach": "gw-c:0.9,gw-zz:0.9"})]  # an unknown gateway: counted
    rows += [_row("gw-b", gateway="gw-b", labels={"capacity_msgs_s": "5"})]
    rows += [_row("gw-c", gateway="gw-c", labels={"capacity_msgs_s": "lots"})]
    rows += [_row("d8", gateway="gw-c")]
    w.inventory(rows)
    for i in range(6):  # gw-a's devices send an uplink a second each for an hour
        w.readings("temperature_c", [f"d{i}"] * 3600, [T0 + k * 1000 for k in range(3600)], [20.0] * 3600)
    w.close()


def test_gateway_query_moves_devices_off_an_overloaded_gateway_to_ones_they_hear(tmp_path: Path) -> None:
    _gateway_store(tmp_path / "hub.db")
    with FleetService(tmp_path / "hub.db") as service:
        answer = service.gateways(T0 + 3600 * 1000 - 1, GatewayOptions(hours=1, capacity_msgs_s=2.0))
    util = {g["gateway"]: g["utilisation"] for g in answer["gateways"]}
    assert util["gw-a"] == pytest.approx(3.0)
    assert answer["bottlenecks"][0]["gateway"] == "gw-a"
    assert "over capacity" in answer["bottlenecks"][0]["reasons"]
    assert answer["plan"]["moves_total"] > 0
    assert {m["to"] for m in answer["moves"]} == {"gw-b"} and {m["from"] for m in answer["moves"]} == {"gw-a"}
    assert answer["plan"]["worst_util_after"] < answer["plan"]["worst_util_before"]
    assert answer["quarantined"] >= 3  # the unreadable quality, the unknown gateway, the bad capacity label


def test_gateway_query_of_an_empty_inventory_has_no_plan(tmp_path: Path) -> None:
    StoreWriter(tmp_path / "hub.db").close()
    with FleetService(tmp_path / "hub.db") as service:
        assert service.gateways(T0)["plan"] is None


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("hours", 0.0, "hours"), ("min_quality", 1.5, "min_quality"), ("capacity_msgs_s", float("nan"), "capacity")],
)
def test_gateway_options_name_the_bad_field(field: str, value: float, match: str) -> None:
    with pytest.raises(FleetQueryError, match=match):
        GatewayOptions(**{field: value})


def _firmware_store(path: Path) -> None:
    w = StoreWriter(path)
    w.inventory(
        [
            _row("d1", model="TH-200", firmware="1.2.0", labels={"image_hash": "h120"}),
            _row("d2", model="TH-200", firmware="1.2.0", labels={"image_hash": "h120", "group": "g1"}),
            _row("d3", model="TH-200", firmware="1.1.0", labels={"image_hash": "h110"}),
            _row("d4", model="LX-7", firmware="R12"),
            _row("d5", model="LX-7", firmware="not a version!"),
        ],
        updated_ms=T0,
    )
    w.events(
        "firmware.report",
        [
            ("d1", T0 + HOUR_MS, {"version": "1.2.0", "image_hash": "h120"}),
            ("d1", T0 + 5 * HOUR_MS, {"version": "1.3.0", "image_hash": "h130"}),  # the approved rollout
            ("d2", T0 + HOUR_MS, {"version": "1.2.0", "image_hash": "h120"}),
            ("d2", T0 + 5 * HOUR_MS, {"version": "1.2.0", "image_hash": "evil"}),  # same version, new image
            ("d4", T0 + HOUR_MS, {"version": "R12", "image_hash": "r12"}),
            ("d4", T0 + 2 * HOUR_MS, {"version": "R13", "image_hash": "r13"}),  # a model the file does not cover
            ("d2", T0 + 6 * HOUR_MS, {"no version": True}),
        ],
    )
    w.conn.execute(
        "INSERT INTO events(node, ts_ms, received_ms, kind, severity, source, message, labels, details)"
        " VALUES ('x', ?, ?, 'firmware.report', 'info', 'd3', '', '{}', 'not json')",
        (T0, T0),
    )
    w.close()
    (path.parent / "approved.toml").write_text(
        """
[[image]]
model = "TH-200"
version = "1.2.0"
image_hash = "h120"

[[image]]
model = "TH-200"
version = "1.1.0"
image_hash = "h110"

[[rollout]]
id = "r1"
model = "TH-200"
from = ["1.2.0"]
to = "1.3.0"
image_hash = "h130"
start_ms = 1767225600000
end_ms = 1767312000000
"""
    )
    (path.parent / "advisories.toml").write_text(
        '[[advisory]]\nid = "PMSA-1"\nmodel = "TH-200"\naffected = "<1.2.0"\nseverity = "high"\n'
    )


def test_firmware_query_flags_what_no_approved_rollout_explains(tmp_path: Path) -> None:
    _firmware_store(tmp_path / "hub.db")
    options = FirmwareOptions(approved=tmp_path / "approved.toml", advisories=tmp_path / "advisories.toml")
    with FleetService(tmp_path / "hub.db") as service:
        answer = service.firmware(T0 + DAY_MS, options)
    flagged = {(c["device"], c["current"]) for c in answer["unauthorised"]}
    assert flagged == {("d2", "1.2.0#evil"), ("d4", "R13#r13")}
    assert answer["outdated"] == ["d2", "d3"] and answer["vulnerable"] == [{"device": "d3", "advisories": ["PMSA-1"]}]
    assert answer["rollouts"] == [{"rollout": "r1", "done": 1, "pending": 1, "failed": 0}]
    assert answer["rejected"] == {"bad_version": 1, "bad_details": 2}
    versions = {(v["model"], v["site"]): v["versions"] for v in answer["versions"]}
    assert versions[("TH-200", "s1")] == {"1.1.0": 1, "1.2.0": 1, "1.3.0": 1}


def test_firmware_query_without_an_approved_file_takes_first_reports_as_the_baseline(tmp_path: Path) -> None:
    _firmware_store(tmp_path / "hub.db")
    with FleetService(tmp_path / "hub.db") as service:
        answer = service.firmware(T0 + DAY_MS)
    assert {c["device"] for c in answer["unauthorised"]} == {"d1", "d2", "d4"}  # nothing approved the update
    assert answer["vulnerable_total"] == 0 and answer["approved_file"] is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[[image]]\nmodel = 'x'\n", "lacks or mistypes field 'version'"),
        ("schemes = 3\n", r"\[schemes\]"),
        ("[[image\n", "not valid TOML"),
    ],
)
def test_a_bad_approved_file_is_refused_with_the_reason(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "approved.toml"
    path.write_text(text)
    with pytest.raises(FleetQueryError, match=match):
        load_approved(path)


def test_missing_and_bad_files_are_query_errors_not_crashes(tmp_path: Path) -> None:
    _firmware_store(tmp_path / "hub.db")
    (tmp_path / "bad.toml").write_text('[[advisory]]\nid = "A"\n')
    (tmp_path / "unreadable.toml").write_text('[[image]]\nmodel = "TH-200"\nversion = "?!"\nimage_hash = "h"\n')
    with FleetService(tmp_path / "hub.db") as service:
        with pytest.raises(FleetQueryError, match="cannot read"):
            service.firmware(T0, FirmwareOptions(advisories=tmp_path / "none.toml"))
        with pytest.raises(FleetQueryError, match="advisory"):
            service.firmware(T0, FirmwareOptions(advisories=tmp_path / "bad.toml"))
        with pytest.raises(FleetQueryError, match="approved images and rollouts"):
            service.firmware(T0, FirmwareOptions(approved=tmp_path / "unreadable.toml"))
    with pytest.raises(FleetQueryError, match="cannot read"):
        load_approved(tmp_path / "none.toml")


def test_a_missing_or_foreign_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FleetQueryError, match="no such hub store"):
        FleetService(tmp_path / "nope.db")
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(FleetQueryError, match="not a hub store"):
        FleetService(tmp_path / "junk.db")


# --- grids ---------------------------------------------------------------------------------------


def test_grids_pair_readings_by_time_and_fall_back_to_the_device_median(tmp_path: Path) -> None:
    w = StoreWriter(tmp_path / "hub.db")
    w.inventory([_row("a", labels={"criticality": "9"}), _row("b", labels={"criticality": "x"})])
    w.readings("battery_v", ["a", "a", "a", "b"], [T0, T0 + 1, T0 + 2, T0], [3.5, 3.4, 3.3, 3.6])
    w.readings("temperature_c", ["a", "a", "a", "c"], [T0, T0 + 2, T0 + 9, T0], [10.0, 30.0, 20.0, 0.0])
    w.close()
    with FleetService(tmp_path / "hub.db") as service:
        data = FleetData(service.conn)
        volts, temps = data.series("battery_v"), data.series("temperature_c")
        inv = data.inventory()
    np.testing.assert_allclose(aligned(volts, temps, 25.0), [10.0, 20.0, 30.0, 25.0])
    grid = padded(volts)
    assert grid.value.shape == (2, 3) and grid.present.sum() == 4
    bins = binned(temps, ["a", "b"], T0, 2, 5)
    assert bins[0, 0] == pytest.approx(20.0) and bins[0, 1] == pytest.approx(20.0) and np.isnan(bins[1]).all()
    assert label_int(inv, 0, "criticality", 1, 1, 3) == 3
    assert label_int(inv, 1, "criticality", 1, 1, 3) == 1
    assert label_int(inv, -1, "criticality", 2, 1, 3) == 2


def test_grids_of_empty_series_are_empty(tmp_path: Path) -> None:
    StoreWriter(tmp_path / "hub.db").close()
    with FleetService(tmp_path / "hub.db") as service:
        empty = FleetData(service.conn).series("battery_v")
    assert aligned(empty, empty, 25.0).shape == (0,)
    assert padded(empty).value.shape == (0, 0)
    assert np.isnan(binned(empty, ["a"], T0, 3, HOUR_MS)).all()


# --- roles ---------------------------------------------------------------------------------------


def _batch(devices: list[str], metrics: list[str], rows: list[tuple[int, int, list[float]]], seq: int = 1) -> Any:
    return ReadingBatch.build(
        node="gw-1",
        session=1,
        seq=seq,
        devices=devices,
        metrics=metrics,
        device_index=[r[0] for r in rows],
        device_seq=list(range(len(rows))),
        ts_ms=[r[1] for r in rows],
        values=[[r[2][k] for r in rows] for k in range(len(metrics))],
    )


def _alert(device: str, threshold: float) -> dict[str, Any]:
    return {
        "device": device,
        "site": "s1",
        "threshold_days": threshold,
        "days_to_empty_p10": threshold - 1,
        "days_to_empty_p50": threshold,
        "empty_by_ms": T0,
        "criticality": 2,
    }


def test_battery_role_raises_an_alert_once_and_again_only_when_it_tightens() -> None:
    answers = iter([[_alert("d1", 30)], [_alert("d1", 30)], [_alert("d1", 7)], [_alert("d1", 14)]])
    role = BatteryRole("hub", lambda now: {"alerts": next(answers)})
    raised = [role.analyse(T0 + k) for k in range(4)]
    assert [len(r) for r in raised] == [1, 0, 1, 0]
    assert raised[0][0].kind == "battery.depletion_soon" and raised[0][0].severity == "warning"
    assert raised[2][0].severity == "error" and raised[2][0].source == "d1"


def test_calibration_and_environment_roles_raise_each_finding_once() -> None:
    drift = {"device": "t1", "metric": "temperature_c", "location": "room", "since_ms": T0, "deviation_pct": 2.1}
    calib = CalibrationRole("hub", lambda now: {"drifting": [drift]})
    assert [e.kind for e in calib.analyse(T0)] == ["calibration.drift"] and calib.analyse(T0 + 1) == []
    env = EnvironmentRole("hub", lambda now: {"recommendations": ["shade them"]})
    assert [e.kind for e in env.analyse(T0)] == ["environment.recommendation"] and env.analyse(T0 + 1) == []
    assert env.ingest([Event(node="n", ts_ms=T0, kind="device.failure", severity="error", message="")], T0) == []
    assert env.counts["failures"] == 1


def test_gateway_role_raises_a_plan_when_the_worst_gateway_gets_worse() -> None:
    def answer(worst: float, moves: int) -> dict[str, Any]:
        plan = {"moves_total": moves, "worst_util_before": worst, "worst_util_after": 0.8, "fluid_bound_util": 0.5}
        return {"plan": plan, "moves": [{"device": "d", "from": "a", "to": "b"}], "bottlenecks": [{"gateway": "a"}]}

    answers = iter([answer(1.5, 3), answer(1.5, 3), answer(1.2, 0), answer(2.0, 4), {"plan": None}])
    role = GatewaysRole("hub", lambda now: next(answers))
    raised = [role.analyse(T0) for _ in range(5)]
    assert [len(r) for r in raised] == [1, 0, 0, 1, 0]
    assert raised[0][0].kind == "gateway.rebalance" and raised[0][0].details["moves"] == ["d:a->b"]


def test_a_role_without_a_query_analyses_nothing() -> None:
    assert BatteryRole("hub", None).analyse(T0) == []
    assert LiveRole("hub", None).events({}, T0) == []


def _firmware_inventory() -> FirmwareInventory:
    return FirmwareInventory(
        [Device(id="d1", model="TH-200", site="s1")], approved=[Image(model="TH-200", version="1.2.0", image_hash="h")]
    )


def _report(device: str, version: str, image_hash: str, ts: int, **more: Any) -> Event:
    details: dict[str, Any] = {"version": version, "image_hash": image_hash, **more}
    return Event(
        node="gw-1", ts_ms=ts, kind="firmware.report", severity="info", message="", source=device, details=details
    )


def test_firmware_role_raises_an_unauthorised_change_at_the_report_that_shows_it() -> None:
    role = FirmwareRole("hub", None, _firmware_inventory())
    assert role.ingest([_report("d1", "1.2.0", "h", T0)], T0) == []
    events = role.ingest([_report("d1", "1.2.0", "evil", T0 + 900_000, update_failed="1.3.0")], T0 + 900_000)
    assert [e.kind for e in events] == ["firmware.unauthorised_change"]
    assert events[0].severity == "critical" and events[0].details["current"] == "1.2.0#evil"
    bad = Event(node="n", ts_ms=T0, kind="firmware.report", severity="info", message="", source="d1")
    assert role.ingest([bad], T0) == [] and role.counts["bad_details"] == 1
    assert FirmwareRole("hub", None).ingest([_report("d1", "1.2.0", "h", T0)], T0) == []


def test_roles_count_the_readings_of_their_own_metrics() -> None:
    nan = float("nan")
    batch = Readings.of(
        _batch(["a", "b"], ["battery_v", "temperature_c"], [(0, T0, [3.5, 20.0]), (1, T0 + 5, [nan, 21.0])])
    )
    battery = BatteryRole("hub", None)
    battery.ingest([batch], T0)
    assert battery.counts["readings"] == 1 and battery.latest_ms == {"a": T0}
    gateways = GatewaysRole("hub", None)
    gateways.ingest([batch], T0)
    assert gateways.counts["uplinks"] == 2
    assert BatteryRole.wants(batch) and not FirmwareRole.wants(batch) and GatewaysRole.wants(batch)
    assert battery.stats()["devices_seen"] == 1


# --- inbox ---------------------------------------------------------------------------------------


def test_an_inbox_wakes_its_actor_once_and_drops_and_counts_past_its_capacity() -> None:
    inbox = RoleInbox(capacity=5)
    batch = Readings.of(_batch(["a"], ["battery_v"], [(0, T0, [3.5]), (0, T0 + 1, [3.4])]))
    assert inbox.offer(batch) == (True, True)
    assert inbox.offer(batch) == (True, False)
    assert inbox.offer(batch) == (False, False)
    assert inbox.depth == 4 and inbox.stats.dropped_readings == 2 and inbox.stats.dropped_items == 1
    assert len(inbox.take()) == 2 and inbox.depth == 0
    assert inbox.offer(batch) == (True, True)
    assert inbox.rearm() is True and inbox.take() and inbox.rearm() is False
    with pytest.raises(ValueError, match="capacity"):
        RoleInbox(0)


# --- actors --------------------------------------------------------------------------------------


@pytest.fixture
def runtime() -> Iterator[tuple[RealClock, Supervisor]]:
    clock = RealClock()
    supervisor = Supervisor(clock, restart_min_s=0.01, restart_max_s=0.05)
    yield clock, supervisor
    supervisor.stop_all()
    clock.stop()


class _Blocking(BatteryRole):
    """A battery role stuck in a long computation until released."""

    release = threading.Event()

    def ingest(self, items: Any, now_ms: int) -> list[Event]:
        self.release.wait(10)
        return super().ingest(items, now_ms)


class _Crashing(CalibrationRole):
    def ingest(self, items: Any, now_ms: int) -> list[Event]:
        items = list(items)
        if any(isinstance(i, Readings) and i.ts_ms[0] == 666 for i in items):
            raise RuntimeError("poison batch")
        return super().ingest(items, now_ms)


def test_a_stuck_role_drops_its_own_backlog_while_the_others_keep_up(runtime: tuple[RealClock, Supervisor]) -> None:
    clock, supervisor = runtime
    _Blocking.release.clear()
    makers = plain_roles("hub")
    makers["battery"] = lambda: _Blocking("hub", None)
    makers["calibration"] = lambda: _Crashing("hub", None)
    raised: list[Event] = []
    roles = FleetRoles(supervisor, clock, makers, raised.append, capacity=50, analyse_every_s=None).start()
    batch = _batch(["a"], ["battery_v", "temperature_c"], [(0, T0 + k, [3.5, 20.0]) for k in range(10)])
    for seq in range(30):
        roles.offer(batch)
        wait_for(lambda: roles.inboxes["gateways"].depth == 0, what="gateways keeps up")
    roles.offer(_batch(["a"], ["temperature_c"], [(0, 666, [20.0])]))  # the calibration role crashes on it
    wait_for(lambda: supervisor.stats()["fleet.calibration"].restarts == 1, what="calibration restarted")
    roles.offer(batch)
    wait_for(lambda: roles.inboxes["calibration"].depth == 0, what="the restarted calibration role takes input")
    battery = roles.inboxes["battery"].stats
    assert battery.dropped_readings > 0  # its own backlog hit its cap...
    assert roles.inboxes["gateways"].stats.dropped_readings == 0  # ...and nobody else lost anything
    assert roles.inboxes["environment"].stats.dropped_readings == 0
    _Blocking.release.set()
    wait_for(lambda: roles.inboxes["battery"].depth == 0, what="battery drains once released")
    stats = roles.stats()
    assert stats["gateways"]["role"]["counts"]["rows"] == 31 * 10 + 1
    assert stats["calibration"]["failures"] == 1
    assert stats["battery"]["dropped_readings"] == battery.dropped_readings
    roles.stop()


def test_frames_from_the_bridge_reach_the_roles_and_bad_ones_are_counted(runtime: tuple[RealClock, Supervisor]) -> None:
    clock, supervisor = runtime
    raised: list[Event] = []
    makers = plain_roles("hub")
    makers["firmware"] = lambda: FirmwareRole("hub", None, _firmware_inventory())
    roles = FleetRoles(supervisor, clock, makers, raised.append, analyse_every_s=None).start()
    events_topic = topics.up("fleet", "gw-1", "events")
    roles.on_frame(events_topic, encode(_report("d1", "1.2.0", "h", T0)))
    roles.on_frame(events_topic, encode(_report("d1", "9.9.9", "x", T0 + 1)))
    roles.on_frame(topics.up("fleet", "gw-1", "readings"), encode(_batch(["a"], ["battery_v"], [(0, T0, [3.5])])))
    roles.on_frame(events_topic, b"garbage")
    roles.on_frame("not/a/topic", b"")
    wait_for(lambda: raised, what="an unauthorised change event")
    assert [e.kind for e in raised] == ["firmware.unauthorised_change"]
    assert roles.refused == 2
    wait_for(lambda: roles.stats()["battery"]["role"]["counts"].get("readings") == 1, what="battery got the reading")


def test_analyses_run_on_the_clock_and_on_demand_and_a_failing_one_is_counted(
    runtime: tuple[RealClock, Supervisor],
) -> None:
    clock, supervisor = runtime
    calls: list[int] = []

    def battery_query(now: int) -> dict[str, Any]:
        calls.append(now)
        if len(calls) == 2:
            raise RuntimeError("store locked")
        return {"alerts": [_alert("d1", 14)]}

    raised: list[Event] = []
    makers = plain_roles("hub", {"battery": battery_query})
    roles = FleetRoles(supervisor, clock, makers, raised.append, analyse_every_s=0.05).start()
    wait_for(lambda: len(calls) >= 3, what="three scheduled analyses")
    assert len(raised) == 1  # raised once; the failing analysis did not stop the next
    assert roles.stats()["battery"]["role"]["analysis_failures"] == 1
    assert roles.analyse("battery") == 0
    with pytest.raises(KeyError):
        FleetRoles(Supervisor(clock), clock, {}, raised.append).analyse("battery")
    with pytest.raises(ValueError, match="roles"):
        FleetRoles(supervisor, clock, {"weather": makers["battery"]}, raised.append)


def test_store_roles_analyse_the_hub_store(tmp_path: Path, runtime: tuple[RealClock, Supervisor]) -> None:
    clock, supervisor = runtime
    _gateway_store(tmp_path / "hub.db")
    _firmware_store(tmp_path / "fw.db")
    raised: list[Event] = []
    roles = FleetRoles(supervisor, clock, store_roles(tmp_path / "hub.db", "hub"), raised.append, analyse_every_s=None)
    roles.start()
    for name in ("battery", "calibration", "environment", "firmware"):
        assert roles.analyse(name) == 0
    # Gateway traffic is measured up to the role's clock: the store's hour of uplinks is long past.
    assert roles.analyse("gateways") == 0
    gw = store_roles(tmp_path / "hub.db", "hub")["gateways"]()
    assert gw.query is not None and gw.query(T0 + 3600 * 1000)["gateways_total"] == 3
    fw = store_roles(tmp_path / "fw.db", "hub", load_approved(tmp_path / "approved.toml"))["firmware"]()
    assert fw.ingest([_report("d1", "1.3.0", "h999", T0 + 2 * DAY_MS)], T0) != []
    wait_for(lambda: roles.stats()["gateways"]["role"] is not None, what="stats")
    assert calibration_query.CALIBRATED_EVENT == "calibration.done"


def test_a_long_analysis_runs_beside_the_stream_and_overlapping_ticks_are_skipped(
    runtime: tuple[RealClock, Supervisor],
) -> None:
    clock, supervisor = runtime
    release = threading.Event()

    def slow_query(now: int) -> dict[str, Any]:
        release.wait(10)
        return {"alerts": [_alert("d1", 7)]}

    raised: list[Event] = []
    makers = plain_roles("hub", {"battery": slow_query})
    roles = FleetRoles(supervisor, clock, makers, raised.append, analyse_every_s=0.02).start()
    wait_for(lambda: roles.stats()["battery"]["role"]["analyses_skipped"] > 2, what="ticks during the analysis")
    batch = _batch(["a"], ["battery_v"], [(0, T0, [3.5])])
    for seq in range(5):
        roles.offer(batch)
        wait_for(lambda: roles.inboxes["battery"].depth == 0, what="battery drains while it analyses")
    assert roles.stats()["battery"]["role"]["counts"]["readings"] == 5 and raised == []
    release.set()
    wait_for(lambda: raised, what="the analysis's alert")
    assert [e.kind for e in raised] == ["battery.depletion_soon"]


def test_a_started_role_analyses_a_minute_in_then_every_period() -> None:
    clock = SimClock()
    supervisor = Supervisor(clock)
    calls: list[int] = []

    def gateways_query(now: int) -> dict[str, Any]:
        calls.append(now)
        return {"plan": None}

    start = clock.now_ms()
    roles = FleetRoles(
        supervisor, clock, plain_roles("hub", {"gateways": gateways_query}), lambda _: None, analyse_every_s=300.0
    ).start()
    try:
        roles.stats()  # answered once every actor has started (and set its first timer)
        clock.advance(59_000)
        assert calls == []
        clock.advance(1_000)  # FIRST_ANALYSIS_S after start, not a whole period
        wait_for(lambda: len(calls) == 1, what="the first analysis")
        roles.stats()  # answered after the actor handled the tick (and set the next timer)
        clock.advance(299_000)
        assert len(calls) == 1
        clock.advance(1_000)
        wait_for(lambda: len(calls) == 2, what="the next analysis, a period later")
        assert [t - start for t in calls] == [60_000, 360_000]
    finally:
        roles.stop()
        supervisor.stop_all()
