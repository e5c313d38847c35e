"""``pymonitor import``: CSV readings and inventory into the hub store, validated row by row."""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pymonitor.cli.fleet_import import app
from pymonitor.store import HubStore
from pymonitor.store.fleet_import import (
    MIN_TS_MS,
    ImportFormatError,
    InventoryRules,
    ReadingRules,
    Rejection,
    check_header,
    check_value,
    import_inventory,
    import_readings,
    parse_ts,
    read_rows,
)

NOW_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z
INVENTORY = (
    "device,gateway,site,location,battery_type,model,firmware\n"
    "dev-1,gw-1,site-a,north field,LiSOCl2,TH-2,1.2.0\n"
    "dev-2,gw-1,site-a,,,,\n"
    "dev-3,gw-2,site-b,,,,\n"
)


def clock() -> int:
    return NOW_MS


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def rejects_of(path: str | None) -> list[dict[str, str]]:
    assert path is not None
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def store(tmp_path: Path) -> HubStore:
    hub = HubStore(tmp_path / "hub.db")
    import_inventory(hub, write(tmp_path / "inventory.csv", INVENTORY), clock=clock)
    return hub


def readings(store: HubStore) -> list[tuple[str, str, int, float, int]]:
    return store.conn.execute(
        "SELECT d.name, m.name, r.ts_ms, r.value, r.device_seq FROM readings r JOIN devices d ON d.id = r.device_id"
        " JOIN metrics m ON m.id = r.metric_id ORDER BY d.name, r.ts_ms, m.name"
    ).fetchall()


# --- timestamps and values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-11-23T10:00:00Z", 1_795_428_000_000),
        ("2026-11-23T11:00:00+01:00", 1_795_428_000_000),
        ("2026-11-23T10:00:00", 1_795_428_000_000),  # naive: UTC
        ("2026-11-23 10:00:00.250", 1_795_428_000_250),
        ("2026-11-23", 1_795_392_000_000),
        ("1795428000", 1_795_428_000_000),  # seconds
        (" 1795428000.5 ", 1_795_428_000_500),
        ("1795428000000", 1_795_428_000_000),  # milliseconds
        ("1795428000000.4", 1_795_428_000_000),
        ("99999999999", 99_999_999_999_000),  # just below the ms threshold: still seconds
        ("100000000000", 100_000_000_000),
    ],
)
def test_parse_ts_reads_iso_and_epoch_seconds_or_milliseconds(text: str, ms: int) -> None:
    assert parse_ts(text) == ms


@pytest.mark.parametrize("text", ["", "yesterday", "nan", "inf", "2026-13-01", "12:00"])
def test_parse_ts_names_what_it_expected(text: str) -> None:
    with pytest.raises(ValueError, match="^ts: "):
        parse_ts(text)


@pytest.mark.parametrize(
    ("metric", "value", "code"),
    [
        ("temp_c", math.nan, "value_not_finite"),
        ("temp_c", -math.inf, "value_not_finite"),
        ("battery_v", -0.1, "voltage_negative"),
        ("supply_v", -3.0, "voltage_negative"),
        ("humidity", 100.5, "humidity_range"),
        ("soil_humidity_pct", -1.0, "humidity_range"),
    ],
)
def test_impossible_values_are_rejected_with_a_reason(metric: str, value: float, code: str) -> None:
    why = check_value(metric, value)
    assert why is not None and why.code == code and why.message.startswith("value: ")


@pytest.mark.parametrize(("metric", "value"), [("battery_v", 0.0), ("humidity", 0.0), ("humidity", 100.0),
                                               ("temp_c", -40.0), ("level", -1.0)])  # fmt: skip
def test_possible_values_pass(metric: str, value: float) -> None:
    assert check_value(metric, value) is None


def test_reading_rules_check_fields_names_time_and_inventory() -> None:
    rules = ReadingRules(now_ms=NOW_MS, known=lambda device: device != "ghost")

    def code(*fields: str) -> str:
        why = rules.parse(list(fields))
        return why.code if isinstance(why, Rejection) else "ok"

    assert code("dev-1", "2026-11-23", "temp_c") == "fields"
    assert code("", "2026-11-23", "temp_c", "1") == "device_missing"
    assert code("dev 1", "2026-11-23", "temp_c", "1") == "device_invalid"
    assert code("dev-1", "2026-11-23", "temp/c", "1") == "metric_invalid"
    assert code("dev-1", "soon", "temp_c", "1") == "ts_invalid"
    assert code("dev-1", "1999-12-31T23:59:59Z", "temp_c", "1") == "ts_before_2000"
    assert code("dev-1", "2026-11-24T00:00:01Z", "temp_c", "1") == "ts_future"
    assert code("dev-1", "2026-11-24T00:00:00Z", "temp_c", "1") == "ok"  # exactly a day ahead is allowed
    assert code("dev-1", "2026-11-23", "temp_c", "warm") == "value_invalid"
    assert code("dev-1", "2026-11-23", "battery_v", "-1") == "voltage_negative"
    assert code("ghost", "2026-11-23", "temp_c", "1") == "device_unknown"
    assert code("dev-1", "soon", "temp_c", "1") == "ts_invalid"  # a remembered bad ts is still bad
    assert rules.parse(["dev-1", "2000-01-01T00:00:00Z", "temp_c", "1"]) == ("dev-1", "temp_c", MIN_TS_MS, 1.0)


def test_ts_cache_starts_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pymonitor.store.fleet_import.TS_CACHE_SIZE", 2)
    rules = ReadingRules(now_ms=NOW_MS, known=lambda device: True)
    stamps = [f"2026-11-2{day}" for day in range(1, 4)] * 2
    parsed = [rules.parse(["dev-1", ts, "temp_c", "1"]) for ts in stamps]
    assert [p[2] for p in parsed if isinstance(p, tuple)] == [parse_ts(ts) for ts in stamps]


# --- headers -----------------------------------------------------------------------------------


def test_wrong_readings_header_names_expected_and_found_and_stores_nothing(store: HubStore, tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "device,time,metric,value\ndev-1,2026-11-23,temp_c,1\n")
    with pytest.raises(ImportFormatError) as exc:
        import_readings(store, path, clock=clock)
    assert "expected the header 'device,ts,metric,value', found 'device,time,metric,value'" in str(exc.value)
    assert "line 1" in str(exc.value)
    assert readings(store) == []
    assert store.conn.execute("SELECT COUNT(*) FROM import_runs WHERE kind = 'readings'").fetchone()[0] == 0


def test_readings_header_allows_no_extra_columns() -> None:
    with pytest.raises(ImportFormatError, match="expected the header 'device,ts,metric,value'"):
        check_header(["device", "ts", "metric", "value", "unit"], ("device", "ts", "metric", "value"), extra=False,
                     where="r.csv")  # fmt: skip


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("device,gateway,site\n", "expected the header 'device,gateway,site,location,battery_type,model,firmware"),
        ("device,gateway,site,location,battery_type,model,firmware,my label\n", "label column 'my label'"),
        ("device,gateway,site,location,battery_type,model,firmware,site\n", "label column 'site'"),
        ("device,gateway,site,location,battery_type,model,firmware,a,a\n", "label columns repeat a name"),
        ("", "the file is empty"),
    ],
)
def test_inventory_header_errors_say_what_is_wrong(tmp_path: Path, header: str, message: str) -> None:
    hub = HubStore(tmp_path / "hub.db")
    with pytest.raises(ImportFormatError, match=message):
        import_inventory(hub, write(tmp_path / "inv.csv", header), clock=clock)


def test_unreadable_first_record_is_a_header_error(store: HubStore, tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", '"' + "x" * 200_000 + '"\n')
    with pytest.raises(ImportFormatError, match="expected the header"):
        import_readings(store, path, clock=clock)


def test_missing_file_is_a_format_error(store: HubStore, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="cannot read the file"):
        import_readings(store, tmp_path / "nope.csv", clock=clock)


def test_header_with_byte_order_mark_and_spaces_is_accepted(store: HubStore, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbfdevice, ts ,metric,value\r\ndev-1,2026-11-22T10:00:00Z,temp_c,21.5\r\n")
    report = import_readings(store, path, clock=clock)
    assert report.rows_ok == 1 and report.rejects_path is None


# --- readings import ---------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_line_and_reason_and_the_rest_kept(store: HubStore, tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv",
        "device,ts,metric,value\n"
        "dev-1,2026-11-22T10:00:00Z,battery_v,3.61\n"
        "dev-1,2026-11-22T10:00:00Z,battery_v,-3.6\n"
        "\n"
        'dev-2,1795341600,humidity,"5\n0"\n'  # a quoted field over two lines: reported at its first line
        "dev-2,1795341600,humidity,101\n"
        "dev-9,1795341600,humidity,40\n"
        "dev-2,1795341600000,humidity,40\n"
        "dev-3,1795341600,temp_c,NaN,extra\n"
        "dev-3,1795341600,temp_c,nan\n",
    )
    report = import_readings(store, path, clock=clock)
    assert (report.rows_ok, report.rows_bad, report.duplicates) == (2, 6, 0)
    assert report.rejected == {"voltage_negative": 1, "value_invalid": 1, "humidity_range": 1, "device_unknown": 1,
                               "fields": 1, "value_not_finite": 1}  # fmt: skip
    rows = rejects_of(report.rejects_path)
    assert [(r["line"], r["code"]) for r in rows] == [
        ("3", "voltage_negative"), ("5", "value_invalid"), ("7", "humidity_range"), ("8", "device_unknown"),
        ("10", "fields"), ("11", "value_not_finite"),
    ]  # fmt: skip
    assert rows[0]["row"] == "dev-1,2026-11-22T10:00:00Z,battery_v,-3.6"
    assert rows[1]["row"] == 'dev-2,1795341600,humidity,"5\n0"'
    assert "dev-9" in rows[3]["reason"] and "--allow-unknown" in rows[3]["reason"]
    assert Path(report.rejects_path or "").parent == store.path.parent
    assert readings(store) == [
        ("dev-1", "battery_v", 1_795_341_600_000, 3.61, 0),
        ("dev-2", "humidity", 1_795_341_600_000, 40.0, 0),
    ]


def test_rejects_go_where_asked(store: HubStore, tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "device,ts,metric,value\ndev-1,x,temp_c,1\n")
    report = import_readings(store, path, clock=clock, rejects_path=tmp_path / "out" / "bad.csv")
    assert report.rejects_path == str(tmp_path / "out" / "bad.csv")
    assert rejects_of(report.rejects_path)[0]["code"] == "ts_invalid"


def test_unreadable_record_is_rejected_and_the_import_goes_on(store: HubStore, tmp_path: Path) -> None:
    huge = '"' + "x" * 200_000 + '"'
    path = write(tmp_path / "r.csv", f"device,ts,metric,value\n{huge},1,2,3\ndev-1,1795341600,temp_c,1\n")
    report = import_readings(store, path, clock=clock)
    assert report.rejected == {"csv": 1} and report.rows_ok == 1


def test_allow_unknown_creates_the_device(store: HubStore, tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "device,ts,metric,value\nnew-1,1795341600,temp_c,1\nnew-1,1795345200,temp_c,2\n")
    report = import_readings(store, path, clock=clock, allow_unknown=True)
    assert (report.rows_ok, report.created_devices) == (2, 1)
    assert [r[:2] for r in readings(store)] == [("new-1", "temp_c")] * 2


def test_duplicates_are_kept_once_within_a_file_across_chunks_and_against_the_store(
    store: HubStore, tmp_path: Path
) -> None:
    first = write(tmp_path / "a.csv", "device,ts,metric,value\ndev-1,1795341600,temp_c,1\n")
    import_readings(store, first, clock=clock)
    path = write(
        tmp_path / "b.csv",
        "device,ts,metric,value\n"
        "dev-1,2026-11-22T10:00:00Z,temp_c,9\n"  # already in the store (1795341600 s)
        "dev-1,1795345200,temp_c,2\n"
        "dev-1,1795345200000,temp_c,3\n"  # same chunk, same key: the first row wins
        "dev-2,1795345200,temp_c,4\n"
        "dev-1,1795345200,temp_c,5\n",  # a later chunk
    )
    report = import_readings(store, path, clock=clock, chunk_rows=3)
    assert (report.rows_ok, report.duplicates, report.rows_bad) == (2, 3, 0)
    assert [(r[0], r[3]) for r in readings(store)] == [("dev-1", 1.0), ("dev-1", 2.0), ("dev-2", 4.0)]
    again = import_readings(store, path, clock=clock)
    assert (again.rows_ok, again.duplicates) == (0, 5)


def test_device_seq_continues_after_existing_readings_in_time_order(store: HubStore, tmp_path: Path) -> None:
    store.conn.execute(
        "INSERT INTO readings (device_id, metric_id, ts_ms, value, device_seq)"
        " SELECT id, 1, 1700000000000, 1.0, 41 FROM devices WHERE name = 'dev-1'"
    )
    path = write(
        tmp_path / "r.csv",
        "device,ts,metric,value\n"
        "dev-1,1795345200,temp_c,2\n"
        "dev-1,1795341600,temp_c,1\n"
        "dev-2,1795341600,temp_c,1\n"
        "dev-1,1795348800,temp_c,3\n",
    )
    import_readings(store, path, clock=clock, chunk_rows=2)
    seqs = [(r[0], r[2], r[4]) for r in readings(store) if r[1] == "temp_c"]
    assert seqs == [
        ("dev-1", 1_700_000_000_000, 41),
        ("dev-1", 1_795_341_600_000, 42),
        ("dev-1", 1_795_345_200_000, 43),
        ("dev-1", 1_795_348_800_000, 44),
        ("dev-2", 1_795_341_600_000, 0),
    ]


def test_import_runs_record_each_import(store: HubStore, tmp_path: Path) -> None:
    times = iter([NOW_MS, NOW_MS + 1500])
    path = write(tmp_path / "r.csv", "device,ts,metric,value\ndev-1,1795341600,temp_c,1\ndev-1,x,temp_c,1\n")
    report = import_readings(store, path, clock=lambda: next(times))
    row = store.conn.execute(
        "SELECT kind, file, rows_ok, rows_bad, duplicates, rejects, started_ms, finished_ms FROM import_runs"
        " WHERE id = ?",
        (report.run_id,),
    ).fetchone()
    assert row == ("readings", str(path), 1, 1, 0, report.rejects_path, NOW_MS, NOW_MS + 1500)
    assert report.to_dict()["rejected"] == {"ts_invalid": 1}


def test_a_failed_chunk_rolls_back_and_earlier_chunks_stay(store: HubStore, tmp_path: Path) -> None:
    store.conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON readings WHEN NEW.value = 666 BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    path = write(
        tmp_path / "r.csv",
        "device,ts,metric,value\ndev-1,1795341600,temp_c,1\nnew-1,1795341600,temp_c,666\n",
    )
    with pytest.raises(Exception, match="no"):
        import_readings(store, path, clock=clock, chunk_rows=1, allow_unknown=True)
    assert [r[3] for r in readings(store)] == [1.0]
    run = store.conn.execute("SELECT rows_ok, finished_ms FROM import_runs WHERE kind = 'readings'").fetchone()
    assert run == (1, None)  # interrupted: what was committed, no finish stamp
    assert store.conn.execute("SELECT COUNT(*) FROM devices WHERE name = 'new-1'").fetchone()[0] == 0


# --- inventory import --------------------------------------------------------------------------


def test_inventory_upserts_and_extra_columns_become_labels(tmp_path: Path) -> None:
    hub = HubStore(tmp_path / "hub.db")
    first = import_inventory(hub, write(tmp_path / "a.csv", INVENTORY), clock=clock)
    assert (first.rows_ok, first.created_devices, first.updated) == (3, 3, 0)
    second = import_inventory(
        hub,
        write(
            tmp_path / "b.csv",
            "device,gateway,site,location,battery_type,model,firmware,owner,zone\n"
            "dev-1,gw-9,site-z,,AA,TH-3,1.3.0,ops,\n"
            "dev-4,gw-9,site-z,roof,,,,,z1\n"
            "dev-4,gw-9,site-y,roof,,,,,z2\n",
        ),
        clock=lambda: NOW_MS + 1,
    )
    assert (second.rows_ok, second.created_devices, second.updated) == (3, 1, 2)
    rows = hub.conn.execute(
        "SELECT d.name, i.gateway, i.site, i.location, i.battery_type, i.model, i.firmware, i.labels, i.updated_ms"
        " FROM inventory i JOIN devices d ON d.id = i.device_id ORDER BY d.name"
    ).fetchall()
    assert rows[0] == ("dev-1", "gw-9", "site-z", None, "AA", "TH-3", "1.3.0", '{"owner":"ops"}', NOW_MS + 1)
    assert rows[3] == ("dev-4", "gw-9", "site-y", "roof", None, None, None, '{"zone":"z2"}', NOW_MS + 1)
    assert rows[2][:3] == ("dev-3", "gw-2", "site-b")


def test_inventory_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    hub = HubStore(tmp_path / "hub.db")
    text = (
        "device,gateway,site,location,battery_type,model,firmware\n"
        "dev-1,,site-a,,,,\n"
        "dev-2,gw-1,site a,,,,\n"
        "dev-3,gw-1,site-a\n"
        f"dev-4,gw-1,site-a,{'x' * 300},,,\n"
        "dev-5,gw-1,site-a,,,,\n"
    )
    report = import_inventory(hub, write(tmp_path / "inv.csv", text), clock=clock)
    assert report.rows_ok == 1
    assert [(r["line"], r["code"]) for r in rejects_of(report.rejects_path)] == [
        ("2", "gateway_missing"), ("3", "site_invalid"), ("4", "fields"), ("5", "text_too_long"),
    ]  # fmt: skip


def test_a_failed_inventory_chunk_rolls_back(tmp_path: Path) -> None:
    hub = HubStore(tmp_path / "hub.db")
    hub.conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON inventory WHEN NEW.site = 'site-b' BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    with pytest.raises(Exception, match="no"):
        import_inventory(hub, write(tmp_path / "inv.csv", INVENTORY), clock=clock, chunk_rows=2)
    assert [name for (name,) in hub.conn.execute("SELECT name FROM devices ORDER BY name")] == ["dev-1", "dev-2"]


def test_inventory_rules_strip_fields() -> None:
    rules = InventoryRules(["device", "gateway", "site", "location", "battery_type", "model", "firmware", "tag"])
    row = rules.parse([" dev-1 ", "gw-1", "site-a", " ", "", "", "", " t "])
    assert not isinstance(row, Rejection)
    assert (row.device, row.location, row.labels) == ("dev-1", None, {"tag": "t"})


# --- robustness --------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    ["dev-1", "dev-2", "ghost", "temp_c", "battery_v", "humidity", "1795341600", "2026-11-22T10:00:00Z", "-1", "nan",
     "3.5", "", '"', ",", " ", "\x00", "\u00e9"]
)  # fmt: skip
LINES = st.one_of(
    st.text(max_size=40),
    st.lists(FRAGMENTS, min_size=0, max_size=6).map(",".join),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINES, max_size=12), newline=st.sampled_from(["\n", "\r\n"]))
def test_arbitrary_lines_are_each_imported_or_rejected_with_a_reason(lines: list[str], newline: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubStore(Path(tmp) / "hub.db")
        import_inventory(hub, write(Path(tmp) / "inv.csv", INVENTORY), clock=clock)
        path = write(Path(tmp) / "r.csv", newline.join(["device,ts,metric,value", *lines]) + newline)
        report = import_readings(hub, path, clock=clock, chunk_rows=4)
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
            records = sum(1 for _ in read_rows(f)) - 1
        assert report.rows_ok + report.duplicates + report.rows_bad == records
        assert hub.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == report.rows_ok
        rejected = rejects_of(report.rejects_path) if report.rows_bad else []
        assert len(rejected) == report.rows_bad and all(r["reason"] and r["code"] for r in rejected)
        hub.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_after_the_header_never_crash_the_importer(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubStore(Path(tmp) / "hub.db")
        path = Path(tmp) / "r.csv"
        path.write_bytes(b"device,ts,metric,value\n" + body)
        report = import_readings(hub, path, clock=clock, allow_unknown=True)
        assert report.finished_ms == NOW_MS
        assert hub.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == report.rows_ok
        hub.close()


@given(fields=st.lists(st.text(max_size=30), max_size=6))
def test_reading_rules_never_raise(fields: list[str]) -> None:
    assert ReadingRules(now_ms=NOW_MS, known=lambda device: True).parse(fields) is not None


# --- CLI ---------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_imports_inventory_then_readings_with_a_summary(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    inv = runner.invoke(app, ["inventory", str(write(tmp_path / "inv.csv", INVENTORY)), "--db", str(db)])
    assert inv.exit_code == 0, inv.output
    assert "stored" in inv.output and "updated" in inv.output
    path = write(tmp_path / "r.csv", "device,ts,metric,value\ndev-1,1795341600,temp_c,1\nzz,1795341600,temp_c,1\n")
    out = runner.invoke(app, ["readings", str(path), "--db", str(db), "--rejects", str(tmp_path / "bad.csv")])
    assert out.exit_code == 0, out.output
    assert "device_unknown" in out.output and str(tmp_path / "bad.csv") in out.output
    assert "duplicates" in out.output


def test_cli_json_and_allow_unknown(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    path = write(tmp_path / "r.csv", "device,ts,metric,value\nnew-1,1795341600,temp_c,1\n")
    out = runner.invoke(app, ["readings", str(path), "--db", str(db), "--allow-unknown", "--json"])
    assert out.exit_code == 0, out.output
    data = orjson.loads(out.output.strip().splitlines()[-1])
    assert (data["rows_ok"], data["created_devices"], data["rejects_path"]) == (1, 1, None)


def test_cli_wrong_header_exits_2_with_the_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "a,b\n")
    out = runner.invoke(app, ["readings", str(path), "--db", str(tmp_path / "hub.db")])
    assert out.exit_code == 2
    assert "expected the header 'device,ts,metric,value', found 'a,b'" in out.output


def test_cli_store_it_cannot_open_exits_2(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    HubStore(db).conn.execute("PRAGMA user_version = 99")
    out = runner.invoke(app, ["inventory", str(write(tmp_path / "inv.csv", INVENTORY)), "--db", str(db)])
    assert out.exit_code == 2 and "newer than this PyMonitor knows" in out.output
