"""Fleet queries answered from the hub store by running the role cores: used by the CLI and the role actors.

The store is opened read-only (``mode=ro``, WAL): the hub that owns it keeps writing while a query
reads, and a query can never change it. ``now_ms`` is passed in (the CLI's clock, the actor's
clock, or the newest reading for imported history), never read inside a query.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

from pymonitor.store.fleet_data import FleetData

from . import battery_query, calibration_query, environment_query, firmware_query, gateways_query
from .battery_query import BatteryOptions
from .calibration_query import CalibrationOptions
from .environment_query import EnvironmentOptions
from .errors import FleetQueryError
from .firmware_query import FirmwareOptions
from .gateways_query import GatewayOptions

BUSY_TIMEOUT_MS = 5_000
ROLE_OPTIONS: dict[str, Any] = {
    "battery": BatteryOptions,
    "firmware": FirmwareOptions,
    "calibration": CalibrationOptions,
    "environment": EnvironmentOptions,
    "gateways": GatewayOptions,
}
"""Each role's options class; ``ROLE_OPTIONS[role]()`` is what ``pymonitor fleet ROLE`` asks by default."""


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise FleetQueryError(f"--db {path}: no such hub store")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        conn.execute("SELECT 1 FROM inventory LIMIT 1").fetchall()
        conn.execute("SELECT 1 FROM readings LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise FleetQueryError(f"--db {path}: not a hub store with an inventory (schema 7+): {exc}") from None
    return conn


class FleetService:
    """One read-only connection to a hub store; one method per role, each returning a JSON-able dict."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(db_path)
        self.conn = _connect(self.path)
        self.data = FleetData(self.conn)

    def __enter__(self) -> FleetService:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def latest_ms(self) -> int | None:
        """Timestamp of the newest reading (a scan: the readings table has no time index on the hub)."""
        row = self.conn.execute("SELECT MAX(ts_ms) FROM readings").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def ask(self, role: str, now_ms: int, options: Any) -> dict[str, Any]:
        """The query of ``role`` (one of the methods below, by name) with its options."""
        if role not in ROLE_OPTIONS:
            raise FleetQueryError(f"role: expected one of {', '.join(ROLE_OPTIONS)}, got {role!r}")
        answer: dict[str, Any] = getattr(self, role)(now_ms, options)
        return answer

    def battery(self, now_ms: int, options: BatteryOptions | None = None) -> dict[str, Any]:
        return battery_query.query(self.data, now_ms, options or BatteryOptions())

    def firmware(self, now_ms: int, options: FirmwareOptions | None = None) -> dict[str, Any]:
        return firmware_query.query(self.data, now_ms, options or FirmwareOptions())

    def calibration(self, now_ms: int, options: CalibrationOptions | None = None) -> dict[str, Any]:
        return calibration_query.query(self.data, now_ms, options or CalibrationOptions())

    def environment(self, now_ms: int, options: EnvironmentOptions | None = None) -> dict[str, Any]:
        return environment_query.query(self.data, now_ms, options or EnvironmentOptions())

    def gateways(self, now_ms: int, options: GatewayOptions | None = None) -> dict[str, Any]:
        return gateways_query.query(self.data, now_ms, options or GatewayOptions())
