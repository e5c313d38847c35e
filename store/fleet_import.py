"""``pymonitor import``: history and inventory from another system, loaded into the hub store.

Fleets rarely start empty. Readings (``device,ts,metric,value``) and a device inventory
(``device,gateway,site,location,battery_type,model,firmware[,label...]``) arrive as CSV; each
row is validated on its own: a good row is stored, a bad one is counted by reason and written
to a rejects CSV with its line number, and the import goes on. Only a wrong header stops an
import before anything is stored.

Files are streamed (one row at a time) and stored in transactions of ``chunk_rows`` rows, so
the hub that owns the store keeps writing between them. See docs/import.md.
"""

from __future__ import annotations

import csv
import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO, TypeVar

import orjson

from pymonitor.broker.topics import NAME_PATTERN

from .hub_store import HubStore, _Names

READINGS_HEADER = ("device", "ts", "metric", "value")
INVENTORY_HEADER = ("device", "gateway", "site", "location", "battery_type", "model", "firmware")
INVENTORY_REQUIRED = ("device", "gateway", "site")
"""Inventory fields that must be present and valid names; the others are free text and may be empty."""
CHUNK_ROWS = 50_000
"""Rows stored per transaction: large enough to be fast, small enough not to hold the hub's writer long."""
EPOCH_MS_FROM = 100_000_000_000
"""A numeric ts at or above this is milliseconds, below it seconds (1e11 s is the year 5138; 1e11 ms is 1973)."""
MIN_TS_MS = 946_684_800_000
"""2000-01-01T00:00:00Z: older readings are taken for a clock that was never set."""
FUTURE_SLACK_MS = 86_400_000
"""A reading more than a day ahead of the import's clock is taken for a wrong clock."""
TS_CACHE_SIZE = 65_536
"""Distinct ts strings remembered (a fleet's rows share a handful of timestamps per interval)."""
TEXT_MAX = 256
"""Longest free-text inventory field accepted."""

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class ImportFormatError(ValueError):
    """A file that cannot be imported at all (missing, unreadable, or a wrong header); nothing was stored."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one row was not stored: ``code`` is the counter it goes to, ``message`` says field and reason."""

    code: str
    message: str


ParsedReading = tuple[str, str, int, float]
"""(device, metric, ts_ms, value) of a valid row: a plain tuple, as a million of them go by per import."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryRow:
    device: str
    gateway: str
    site: str
    location: str | None
    battery_type: str | None
    model: str | None
    firmware: str | None
    labels: dict[str, str]


@dataclass(slots=True, kw_only=True)
class ImportReport:
    """What one import did; ``rejected`` counts bad rows by reason code."""

    kind: str
    file: str
    run_id: int
    rows_ok: int = 0
    rows_bad: int = 0
    duplicates: int = 0
    created_devices: int = 0
    updated: int = 0  # inventory rows that replaced an existing entry
    rejected: Counter[str] = field(default_factory=Counter)
    rejects_path: str | None = None
    started_ms: int = 0
    finished_ms: int = 0

    def to_dict(self) -> dict[str, object]:
        """The JSON view (``--json``): every field, reasons sorted by code."""
        return {**asdict(self), "rejected": dict(sorted(self.rejected.items()))}


# --- row validation (pure) ---------------------------------------------------------------------


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check_name(what: str, text: str) -> Rejection | None:
    if not text:
        return Rejection(f"{what}_missing", f"{what}: required, got an empty field")
    if not NAME_PATTERN.fullmatch(text):
        return Rejection(
            f"{what}_invalid", f"{what}: expected 1-64 letters, digits or _ . : - (not starting with a symbol), "
            f"got {_short(text)}"
        )  # fmt: skip
    return None


def parse_ts(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (naive = UTC) or epoch seconds/milliseconds.

    Raises ValueError saying what was expected.
    """
    stripped = text.strip()
    try:
        whole = int(stripped)  # exact, where float() would round
    except ValueError:
        pass
    else:
        return whole if abs(whole) >= EPOCH_MS_FROM else whole * 1000
    try:
        number = float(stripped)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ValueError(f"ts: expected a finite epoch time, got {_short(text)}")
        return round(number if abs(number) >= EPOCH_MS_FROM else number * 1000.0)
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(
            f"ts: expected ISO 8601 (2026-11-23T10:00:00Z) or epoch seconds/milliseconds, got {_short(text)}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS  # a timedelta: exact for every datetime


def check_value(metric: str, value: float) -> Rejection | None:
    """The physically impossible values of a metric, by its name."""
    if not math.isfinite(value):
        return Rejection("value_not_finite", f"value: expected a finite number, got {value}")
    if metric.endswith("_v") and value < 0:
        return Rejection("voltage_negative", f"value: a voltage ({metric}) cannot be negative, got {value}")
    if "humidity" in metric and not 0.0 <= value <= 100.0:
        return Rejection("humidity_range", f"value: humidity ({metric}) must be within 0-100 %, got {value}")
    return None


class ReadingRules:
    """Validates reading rows against a clock and the known devices; remembers parsed timestamps."""

    def __init__(self, *, now_ms: int, known: Callable[[str], bool]) -> None:
        self._max_ms = now_ms + FUTURE_SLACK_MS
        self._known = known
        self._ts: dict[str, int | str] = {}
        self._devices: set[str] = set()  # valid and known
        self._metrics: set[str] = set()  # valid

    def _ts_ms(self, text: str) -> int | str:
        cached = self._ts.get(text)
        if cached is None:
            try:
                cached = parse_ts(text)
            except ValueError as exc:
                cached = str(exc)
            if len(self._ts) >= TS_CACHE_SIZE:
                self._ts.clear()
            self._ts[text] = cached
        return cached

    def parse(self, fields: list[str]) -> ParsedReading | Rejection:
        if len(fields) != len(READINGS_HEADER):
            return Rejection("fields", f"expected 4 fields (device,ts,metric,value), got {len(fields)}")
        device, ts_text, metric, value_text = fields
        # Names repeat on every row: each is checked once.
        if device not in self._devices:
            bad = _check_name("device", device)
            if bad is not None:
                return bad
        if metric not in self._metrics:
            bad = _check_name("metric", metric)
            if bad is not None:
                return bad
            self._metrics.add(metric)
        ts_ms = self._ts_ms(ts_text)
        if isinstance(ts_ms, str):
            return Rejection("ts_invalid", ts_ms)
        if ts_ms < MIN_TS_MS:
            return Rejection("ts_before_2000", f"ts: before 2000-01-01 (a clock that was never set?), got {ts_text}")
        if ts_ms > self._max_ms:
            return Rejection("ts_future", f"ts: more than a day in the future, got {ts_text}")
        try:
            value = float(value_text)
        except ValueError:
            return Rejection("value_invalid", f"value: expected a number, got {_short(value_text)}")
        bad = check_value(metric, value)
        if bad is not None:
            return bad
        if device not in self._devices:
            if not self._known(device):
                return Rejection(
                    "device_unknown", f"device: {device!r} is not in the inventory (import it first or --allow-unknown)"
                )
            self._devices.add(device)
        return (device, metric, ts_ms, value)


class InventoryRules:
    """Validates inventory rows of a file whose header has been checked."""

    def __init__(self, header: list[str]) -> None:
        self._header = header
        self._labels = header[len(INVENTORY_HEADER) :]

    def parse(self, fields: list[str]) -> InventoryRow | Rejection:
        if len(fields) != len(self._header):
            return Rejection("fields", f"expected {len(self._header)} fields (as the header), got {len(fields)}")
        values = [f.strip() for f in fields]
        for name in INVENTORY_REQUIRED:
            bad = _check_name(name, values[INVENTORY_HEADER.index(name)])
            if bad is not None:
                return bad
        for name, text in zip(self._header, values, strict=True):
            if len(text) > TEXT_MAX:
                return Rejection("text_too_long", f"{name}: at most {TEXT_MAX} characters, got {len(text)}")
        device, gateway, site, location, battery_type, model, firmware = values[: len(INVENTORY_HEADER)]
        labels = {k: v for k, v in zip(self._labels, values[len(INVENTORY_HEADER) :], strict=True) if v}
        return InventoryRow(
            device=device,
            gateway=gateway,
            site=site,
            location=location or None,
            battery_type=battery_type or None,
            model=model or None,
            firmware=firmware or None,
            labels=labels,
        )


def check_header(found: list[str] | None, expected: tuple[str, ...], *, extra: bool, where: str) -> list[str]:
    """The header's column names, or ImportFormatError naming what was expected and what was found."""
    want = ",".join(expected) + ("[,label...]" if extra else "")
    if found is None:
        raise ImportFormatError(f"{where}: the file is empty; expected the header {want!r}")
    names = [name.strip() for name in found]
    fits = names[: len(expected)] == list(expected) and (extra or len(names) == len(expected))
    if not fits:
        raise ImportFormatError(f"{where} line 1: expected the header {want!r}, found {','.join(found)!r}")
    labels = names[len(expected) :]
    for label in labels:
        if not NAME_PATTERN.fullmatch(label) or label in expected:
            raise ImportFormatError(
                f"{where} line 1: label column {label!r} must be a new name (letters, digits, _.:-)"
            )
    if len(set(labels)) != len(labels):
        raise ImportFormatError(f"{where} line 1: label columns repeat a name: {','.join(labels)!r}")
    return names


# --- streaming ---------------------------------------------------------------------------------


def read_rows(stream: TextIO) -> Iterator[tuple[int, list[str] | Rejection, str]]:
    """(first line number, fields or why the line is unreadable, original text) of each non-blank record."""
    raw_lines: list[str] = []

    def lines() -> Iterator[str]:
        for line in stream:
            raw_lines.append(line)
            yield line

    reader = csv.reader(lines(), strict=False)
    line_no = 0
    while True:
        start = line_no + 1
        raw_lines.clear()
        try:
            fields: list[str] | Rejection | None = next(reader, None)
        except csv.Error as exc:
            fields = Rejection("csv", f"not a CSV record: {exc}")
        line_no = reader.line_num
        if fields is None:
            return
        if fields == []:  # a blank line
            continue
        yield start, fields, "".join(raw_lines).rstrip("\r\n")


class _Rejects:
    """The rejects CSV (line, code, reason, row), created on the first rejected row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._writer: csv.DictWriter[str] | None = None

    def write(self, line: int, why: Rejection, row: str) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.DictWriter(self._file, ("line", "code", "reason", "row"))
            self._writer.writeheader()
        self._writer.writerow({"line": line, "code": why.code, "reason": why.message, "row": row})

    @property
    def written(self) -> bool:
        return self._writer is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _open_text(path: Path, where: str) -> TextIO:
    try:
        # utf-8-sig: a spreadsheet's byte order mark is not part of the first column's name;
        # undecodable bytes become U+FFFD, so such a row is rejected (bad name) instead of stopping the import.
        return path.open("r", newline="", encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise ImportFormatError(f"{where}: cannot read the file: {exc.strerror}") from None


def default_rejects_path(store: HubStore, kind: str, run_id: int) -> Path:
    """Next to the store: ``<db>.import-<run>-<kind>.rejects.csv``."""
    return store.path.with_name(f"{store.path.name}.import-{run_id}-{kind}.rejects.csv")


# --- the importer ------------------------------------------------------------------------------


class _Run:
    """The ``import_runs`` row and the report of one import."""

    def __init__(self, store: HubStore, kind: str, path: Path, clock: Callable[[], int], rejects: Path | None):
        self.store = store
        self.clock = clock
        started = clock()
        cur = store.conn.execute(
            "INSERT INTO import_runs (kind, file, started_ms) VALUES (?, ?, ?)", (kind, str(path), started)
        )
        run_id = int(cur.lastrowid or 0)
        self.report = ImportReport(kind=kind, file=str(path), run_id=run_id, started_ms=started)
        self.rejects = _Rejects(rejects or default_rejects_path(store, kind, run_id))

    def reject(self, line: int, why: Rejection, row: str) -> None:
        self.report.rows_bad += 1
        self.report.rejected[why.code] += 1
        self.rejects.write(line, why, row)

    def save(self, *, finished: bool) -> None:
        """Update the run's row (inside the caller's transaction, or on its own)."""
        r = self.report
        if finished:
            r.finished_ms = self.clock()
            r.rejects_path = str(self.rejects.path) if self.rejects.written else None
        self.store.conn.execute(
            "UPDATE import_runs SET rows_ok = ?, rows_bad = ?, duplicates = ?, rejects = ?, finished_ms = ?"
            " WHERE id = ?",
            (r.rows_ok, r.rows_bad, r.duplicates, r.rejects_path, r.finished_ms or None, r.run_id),
        )


def _device_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0])


def _inventory_names(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT d.name FROM inventory i JOIN devices d ON d.id = i.device_id")}


_KEY_TABLE = (
    "CREATE TEMP TABLE {name} (device_id INTEGER NOT NULL, metric_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
    " {extra} PRIMARY KEY (device_id, metric_id, ts_ms)) WITHOUT ROWID"
)
_TEMP_TABLES = {
    # every key this run has stored or found stored: a duplicate in a later chunk is found here
    "import_keys": _KEY_TABLE.format(name="import_keys", extra=""),
    # keys of the chunk being stored that were in the store before the run
    "import_old": _KEY_TABLE.format(name="import_old", extra=""),
    # the chunk being stored, one row per key (the first of the file)
    "import_chunk": "CREATE TEMP TABLE import_chunk (device_id INTEGER, metric_id INTEGER, ts_ms INTEGER, value REAL)",
    # the last device_seq per device
    "import_seq": "CREATE TEMP TABLE import_seq (device_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)",
}


class _ReadingWriter:
    """Stores validated readings a chunk at a time, set-wise in SQL: ids, duplicates (in this run and
    in the store), a synthetic device_seq per device."""

    def __init__(self, store: HubStore, run: _Run) -> None:
        self.run = run
        self.conn = conn = store.conn
        self.devices = _Names(conn, "devices")
        self.metrics = _Names(conn, "metrics")
        for name, create in _TEMP_TABLES.items():
            conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
            conn.execute(create)
        # Rows in the store before this run: only these need the (unindexed) duplicate scan.
        self.old_rowid = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM readings").fetchone()[0])
        self.old_span: tuple[int, int] = (0, -1)
        if self.old_rowid:
            conn.execute(
                "INSERT INTO temp.import_seq SELECT device_id, MAX(device_seq) FROM readings GROUP BY device_id"
            )
            # History older (or newer) than what the store holds never needs the scan below.
            self.old_span = conn.execute("SELECT MIN(ts_ms), MAX(ts_ms) FROM readings").fetchone()

    def close(self) -> None:
        for name in _TEMP_TABLES:
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def _drop_stored(self) -> None:
        """Drop the chunk's rows whose key was in the store before the run (one scan of those rows)."""
        conn = self.conn
        low, high = conn.execute("SELECT MIN(ts_ms), MAX(ts_ms) FROM temp.import_chunk").fetchone()
        if low is None or high < self.old_span[0] or low > self.old_span[1]:
            return
        conn.execute("DELETE FROM temp.import_old")
        conn.execute(
            "INSERT OR IGNORE INTO temp.import_old SELECT r.device_id, r.metric_id, r.ts_ms"
            " FROM readings r CROSS JOIN temp.import_keys k"
            " ON k.device_id = r.device_id AND k.metric_id = r.metric_id AND k.ts_ms = r.ts_ms"
            " WHERE r.rowid <= ? AND r.ts_ms BETWEEN ? AND ?",
            (self.old_rowid, low, high),
        )
        conn.execute(
            "DELETE FROM temp.import_chunk WHERE EXISTS (SELECT 1 FROM temp.import_old o WHERE"
            " o.device_id = import_chunk.device_id AND o.metric_id = import_chunk.metric_id"
            " AND o.ts_ms = import_chunk.ts_ms)"
        )

    def __call__(self, chunk: list[ParsedReading]) -> None:
        conn = self.conn
        before = _device_count(conn)
        devices = list(dict.fromkeys(r[0] for r in chunk))
        metrics = list(dict.fromkeys(r[1] for r in chunk))
        device_ids = dict(zip(devices, self.devices.ids(devices), strict=True))
        metric_ids = dict(zip(metrics, self.metrics.ids(metrics), strict=True))
        self.run.report.created_devices += _device_count(conn) - before
        first: dict[tuple[int, int, int], float] = {}
        for d, m, ts, v in chunk:  # the first row of a (device, metric, ts) wins, within the file and the store
            first.setdefault((device_ids[d], metric_ids[m], ts), v)
        conn.execute("DELETE FROM temp.import_chunk")
        conn.executemany("INSERT INTO temp.import_chunk VALUES (?, ?, ?, ?)", ((*k, v) for k, v in first.items()))
        conn.execute(
            "DELETE FROM temp.import_chunk WHERE EXISTS (SELECT 1 FROM temp.import_keys k WHERE"
            " k.device_id = import_chunk.device_id AND k.metric_id = import_chunk.metric_id"
            " AND k.ts_ms = import_chunk.ts_ms)"
        )
        conn.execute("INSERT INTO temp.import_keys SELECT device_id, metric_id, ts_ms FROM temp.import_chunk")
        self._drop_stored()
        last = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM readings").fetchone()[0])
        # device_seq continues each device's counter, in time order within the chunk
        stored = conn.execute(
            "INSERT INTO readings (device_id, metric_id, ts_ms, value, device_seq)"
            " SELECT c.device_id, c.metric_id, c.ts_ms, c.value, COALESCE(s.seq, -1)"
            " + ROW_NUMBER() OVER (PARTITION BY c.device_id ORDER BY c.ts_ms, c.metric_id)"
            " FROM temp.import_chunk c LEFT JOIN temp.import_seq s ON s.device_id = c.device_id"
        ).rowcount
        conn.execute(
            "INSERT INTO temp.import_seq SELECT device_id, MAX(device_seq) FROM readings WHERE rowid > ?"
            " GROUP BY device_id ON CONFLICT (device_id) DO UPDATE SET seq = excluded.seq",
            (last,),
        )
        report = self.run.report
        report.rows_ok += stored
        report.duplicates += len(chunk) - stored

    def reload(self) -> None:
        self.devices.reload()
        self.metrics.reload()


class _InventoryWriter:
    """Upserts validated inventory rows."""

    def __init__(self, store: HubStore, run: _Run, clock: Callable[[], int]) -> None:
        self.run = run
        self.conn = store.conn
        self.clock = clock
        self.devices = _Names(self.conn, "devices")

    def __call__(self, chunk: list[InventoryRow]) -> None:
        conn = self.conn
        before = _device_count(conn)
        ids = self.devices.ids([row.device for row in chunk])
        self.run.report.created_devices += _device_count(conn) - before
        now = self.clock()
        for device_id, row in zip(ids, chunk, strict=True):
            values = (row.gateway, row.site, row.location, row.battery_type, row.model, row.firmware,
                      orjson.dumps(row.labels).decode(), now, device_id)  # fmt: skip
            cur = conn.execute(
                "UPDATE inventory SET gateway = ?, site = ?, location = ?, battery_type = ?, model = ?,"
                " firmware = ?, labels = ?, updated_ms = ? WHERE device_id = ?",
                values,
            )
            if cur.rowcount:
                self.run.report.updated += 1
            else:
                conn.execute(
                    "INSERT INTO inventory (gateway, site, location, battery_type, model, firmware, labels,"
                    " updated_ms, device_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
        self.run.report.rows_ok += len(chunk)

    def reload(self) -> None:
        self.devices.reload()


def _header(rows: Iterator[tuple[int, list[str] | Rejection, str]]) -> list[str] | None:
    first = next(rows, None)
    if first is None:
        return None
    return [first[2]] if isinstance(first[1], Rejection) else first[1]


def _load(
    store: HubStore,
    rows: Iterator[tuple[int, list[str] | Rejection, str]],
    run: _Run,
    parse: Callable[[list[str]], T | Rejection],
    write: Callable[[list[T]], None],
    reload: Callable[[], None],
    chunk_rows: int,
) -> None:
    """Validate each row, reject the bad ones, store the good ones a transaction per chunk."""
    chunk: list[T] = []

    def work() -> None:
        write(chunk)
        run.save(finished=False)

    def flush() -> None:
        store.conn.execute("BEGIN IMMEDIATE")
        try:
            work()
            store.conn.execute("COMMIT")
        except BaseException:
            store.conn.execute("ROLLBACK")
            reload()
            raise
        chunk.clear()

    try:
        for line, fields, raw in rows:
            parsed = fields if isinstance(fields, Rejection) else parse(fields)
            if isinstance(parsed, Rejection):
                run.reject(line, parsed, raw)
                continue
            chunk.append(parsed)
            if len(chunk) >= chunk_rows:
                flush()
        flush()
    finally:
        run.rejects.close()
    run.save(finished=True)


def import_readings(
    store: HubStore,
    path: str | Path,
    *,
    clock: Callable[[], int],
    allow_unknown: bool = False,
    rejects_path: str | Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Import a readings CSV (``device,ts,metric,value``) into the hub store, row by row.

    ``clock`` gives milliseconds since the epoch: the run's stamps and the "far future" bound.
    Raises ImportFormatError (nothing stored) for an unreadable file or a wrong header.
    """
    path = Path(path)
    with _open_text(path, str(path)) as stream:
        rows = read_rows(stream)
        check_header(_header(rows), READINGS_HEADER, extra=False, where=str(path))
        run = _Run(store, "readings", path, clock, None if rejects_path is None else Path(rejects_path))
        known = _inventory_names(store.conn)
        rules = ReadingRules(now_ms=run.report.started_ms, known=lambda d: allow_unknown or d in known)
        writer = _ReadingWriter(store, run)
        try:
            _load(store, rows, run, rules.parse, writer, writer.reload, chunk_rows)
        finally:
            writer.close()
    return run.report


def import_inventory(
    store: HubStore,
    path: str | Path,
    *,
    clock: Callable[[], int],
    rejects_path: str | Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Upsert an inventory CSV into the hub store; extra columns become labels.

    A device named twice in the file keeps its last row. Raises ImportFormatError (nothing
    stored) for an unreadable file or a wrong header.
    """
    path = Path(path)
    with _open_text(path, str(path)) as stream:
        rows = read_rows(stream)
        rules = InventoryRules(check_header(_header(rows), INVENTORY_HEADER, extra=True, where=str(path)))
        run = _Run(store, "inventory", path, clock, None if rejects_path is None else Path(rejects_path))
        writer = _InventoryWriter(store, run, clock)
        _load(store, rows, run, rules.parse, writer, writer.reload, chunk_rows)
    return run.report
