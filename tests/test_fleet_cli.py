"""``pymonitor fleet ...``: each role's answer, human-readable and --json, from a real hub store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from pymonitor.actors.fleet_roles import FleetQueryError
from pymonitor.actors.fleet_roles.answers import parse_now
from pymonitor.bench.fleet import StoreWriter, build_store
from pymonitor.cli.fleet import fleet_app

ROLES = ("battery", "firmware", "calibration", "environment", "gateways")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("fleet") / "hub.db"
    built = build_store(path, seed=4, devices=200, days=10)
    return path, int(built["now_ms"])


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(fleet_app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("role", ROLES)
def test_every_role_answers_in_json_as_one_object(fleet: tuple[Path, int], role: str) -> None:
    path, now = fleet
    code, out, _ = _run(role, "--db", str(path), "--now", str(now), "--json")
    assert code == 0
    answer = orjson.loads(out.strip().splitlines()[-1])
    assert answer["now_ms"] == now and answer["role"] == role


def test_battery_text_lists_rates_alerts_and_trips(fleet: tuple[Path, int]) -> None:
    path, now = fleet
    code, out, _ = _run("battery", "--db", str(path), "--now", str(now), "--limit", "2", "--threshold", "60")
    assert code == 0
    assert "battery at 2026-01-11: " in out and " devices; ok " in out
    assert "battery_type alkaline_2aa" in out and "alerts (" in out and "visit site-" in out
    code, out, _ = _run("battery", "--db", str(path), "--now", str(now), "--device", "bat-000007")
    assert code == 0 and "bat-000007 (" in out and "readings used" in out


def test_firmware_text_shows_versions_and_unauthorised_changes(fleet: tuple[Path, int], tmp_path: Path) -> None:
    path, now = fleet
    advisories = tmp_path / "adv.toml"
    advisories.write_text('[[advisory]]\nid = "PMSA-9"\nmodel = "TH-200"\naffected = "<1.4.0"\n')
    code, out, _ = _run("firmware", "--db", str(path), "--now", str(now), "--advisories", str(advisories))
    assert code == 0
    assert "TH-200" in out and "vulnerable: " in out and "PMSA-9" in out
    assert "unauthorised changes: " in out and "no approved rollout explains the change" in out


def test_calibration_environment_and_gateways_print_their_findings(fleet: tuple[Path, int]) -> None:
    path, now = fleet
    code, out, _ = _run("calibration", "--db", str(path), "--now", str(now), "--days", "7", "--device", "bat-000001")
    assert code == 0 and "sensors;" in out and "schedule:" in out and "bat-000001 temperature_c" in out
    code, out, _ = _run("environment", "--db", str(path), "--now", str(now), "--days", "10")
    assert code == 0 and "devices analysed" in out and "recommendations:" in out and "vibration" in out
    code, out, _ = _run("gateways", "--db", str(path), "--now", str(now), "--capacity", "0.001", "--limit", "3")
    assert code == 0 and "bottlenecks (" in out and "plan: " in out and " -> gw-site-" in out


def test_small_stores_print_their_empty_and_drifting_cases(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    w = StoreWriter(db)
    w.inventory([{"device": "t1", "gateway": "g", "site": "s", "location": "room"}])
    w.events("calibration.done", [("t1", 1_767_225_600_000, {})])
    w.readings("temperature_c", ["t1"], [1_767_225_600_000], [999.0])
    w.readings("vibration_ms2", ["t1"], [1_767_225_600_000], [1.0])
    w.close()
    code, out, _ = _run("environment", "--db", str(db), "--now", "latest")
    assert code == 0 and "none: no exposure clearly raises failures" in out and "quarantined:" in out
    empty = tmp_path / "empty.db"
    StoreWriter(empty).close()
    code, out, _ = _run("gateways", "--db", str(empty))
    assert code == 0 and "the inventory is empty" in out


def test_calibration_text_shows_drifting_sensors(tmp_path: Path) -> None:
    from pymonitor.simulators.health.calibration import CalibrationScenario

    sc = CalibrationScenario.generate(2, devices=30, days=14, drift_share=0.3, drift_size=0.05)
    w = StoreWriter(tmp_path / "hub.db")
    w.inventory(
        [{"device": d, "gateway": "g", "site": "s", "location": loc} for d, loc in zip(sc.devices, sc.locations)]
    )
    for i, (device, metric) in enumerate(zip(sc.devices, sc.metrics)):
        keep = [k for k in range(len(sc.ts_ms)) if sc.values[i, k] == sc.values[i, k]]
        w.readings(
            metric, [device] * len(keep), [int(sc.ts_ms[k]) for k in keep], [float(sc.values[i, k]) for k in keep]
        )
    w.close()
    code, out, _ = _run("calibration", "--db", str(tmp_path / "hub.db"), "--now", "latest", "--days", "14")
    assert code == 0 and "drifting (" in out and "% at " in out and "(drift)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("battery", "--db", "/nonexistent/hub.db"), "no such hub store"),
        (("battery", "--now", "yesterday-ish"), "--now: expected epoch ms"),
        (("gateways", "--min-quality", "2"), "min_quality"),
        (("firmware", "--approved", "/nonexistent/approved.toml"), "cannot read"),
    ],
)
def test_bad_input_exits_2_with_the_reason(fleet: tuple[Path, int], args: tuple[str, ...], message: str) -> None:
    path, _ = fleet
    full = list(args) if "--db" in args else [*args, "--db", str(path)]
    code, _, err = _run(*full)
    assert code == 2 and message in err


def test_now_latest_of_a_store_without_readings_is_an_error(tmp_path: Path) -> None:
    StoreWriter(tmp_path / "hub.db").close()
    code, _, err = _run("battery", "--db", str(tmp_path / "hub.db"), "--now", "latest")
    assert code == 2 and "holds no readings" in err


def test_now_defaults_to_the_clock_and_reads_iso_times() -> None:
    assert parse_now(None, lambda: None, lambda: 42) == 42
    assert parse_now("latest", lambda: 7, lambda: 42) == 7
    assert parse_now("2026-01-01T00:00:00Z", lambda: None, lambda: 0) == 1_767_225_600_000
    assert parse_now("2026-01-01T01:00:00", lambda: None, lambda: 0) == 1_767_229_200_000
    with pytest.raises(FleetQueryError):
        parse_now("latest", lambda: None, lambda: 0)
    for not_ascii in ("²", "-٣"):  # digits to str.isdigit, not epoch ms
        with pytest.raises(FleetQueryError):
            parse_now(not_ascii, lambda: None, lambda: 0)


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_now_as_epoch_ms_round_trips(ms: int) -> None:
    assert parse_now(str(ms), lambda: None, lambda: 0) == ms


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_now_as_iso_time_is_that_moment(moment: datetime) -> None:
    expected = int(moment.timestamp() * 1000)
    assert parse_now(moment.isoformat(), lambda: None, lambda: 0) == expected


@given(st.text(max_size=30))
def test_now_never_crashes_on_text(text: str) -> None:
    try:
        parse_now(text, lambda: 1, lambda: 0)
    except FleetQueryError:
        pass
