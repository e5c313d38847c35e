"""Shared pieces of the REST API tests (no tests here): an alert history with firing alerts, a config
with replies and a signed SMS gateway, keys, and a TestClient over ``create_app``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from pymonitor.actors.alerting.alert import Alert, fingerprint
from pymonitor.actors.alerting.channels.base import Secret, signature
from pymonitor.actors.alerting.config import AlertingConfig, parse_config
from pymonitor.api.app import ApiSettings, create_app
from pymonitor.api.auth import ApiKeys, add_key
from pymonitor.store.alert_store import AlertStore

NOW = 1_796_637_600_000
CALLBACK_SECRET = "carrier-callback-secret"
ALERTING = f"""
[alerting.channels.sms-gw]
type = "sms_http"
url = "https://sms.example.org/api"
token = "t0ken"
from = "PyMonitor"
callback_secret = "{CALLBACK_SECRET}"

[alerting.receivers.oncall]
channel = "sms-gw"
recipients = ["+447700900123"]

[alerting.route]
receiver = "oncall"

[alerting.replies]
secret = "reply-signing-key"
max_silence = "1d"
default_country = "44"
responders = [{{name = "alice", phone = "+447700900123", pin = "2468", api_key = "alice-config-key"}}]
"""
HOT = {"site": "Site A", "node": "gw-1", "device": "bms"}
COLD = {"site": "Site B", "node": "gw-2", "device": "fridge"}
HOT_FP = fingerprint("temp_high", HOT)
COLD_FP = fingerprint("temp_low", COLD)


def alerting_config(text: str = ALERTING) -> AlertingConfig:
    return parse_config(tomllib.loads(text), now_ms=NOW)


def firing(store: AlertStore) -> None:
    """Two firing alerts (critical at Site A, warning at Site B) and one resolved."""
    gone = fingerprint("disk_full", {"node": "nas"})
    alerts = [
        Alert(fingerprint=HOT_FP, rule="temp_high", labels=HOT, severity="critical", state="firing",
              summary="temp 95 C on gw-1/bms", value=95.0, starts_ms=NOW - 60_000),
        Alert(fingerprint=COLD_FP, rule="temp_low", labels=COLD, severity="warning", state="firing",
              summary="temp -30 C on gw-2/fridge", value=-30.0, starts_ms=NOW - 30_000),
        Alert(fingerprint=gone, rule="disk_full", labels={"node": "nas"}, severity="info", state="firing",
              summary="disk full", starts_ms=NOW - 90_000),
        Alert(fingerprint=gone, rule="disk_full", labels={"node": "nas"}, severity="info", state="resolved",
              summary="disk full", starts_ms=NOW - 90_000, ends_ms=NOW - 10_000),
    ]  # fmt: skip
    store.record_alerts(alerts, NOW - 1000)


@dataclass
class Api:
    client: TestClient
    db: Path
    key: str
    keys_file: Path
    settings: ApiSettings

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def store(self) -> AlertStore:
        return AlertStore(self.db)

    def acks(self) -> list[dict[str, object]]:
        store = self.store()
        try:
            cur = store.conn.execute("SELECT * FROM acknowledgements ORDER BY id")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            store.close()

    def counts(self) -> dict[str, int]:
        store = self.store()
        try:
            return store.counts()
        finally:
            store.close()


def make_api(tmp_path: Path, *, alerting: AlertingConfig | None = None, hub_db: Path | None = None) -> Api:
    db = tmp_path / "alerts.db"
    store = AlertStore(db)
    firing(store)
    store.close()
    keys_file = tmp_path / "keys.json"
    key = add_key(keys_file, "ops-phone", NOW)
    responders = alerting.replies.responders if alerting is not None and alerting.replies is not None else ()
    settings = ApiSettings(alerts_db=db, hub_db=hub_db, alerting=alerting, keys=ApiKeys.load(keys_file, responders),
                           now_ms=lambda: NOW)  # fmt: skip
    return Api(client=TestClient(create_app(settings)), db=db, key=key, keys_file=keys_file, settings=settings)


def signed(
    body: dict[str, object] | bytes, *, secret: str = CALLBACK_SECRET, at_ms: int = NOW
) -> tuple[bytes, dict[str, str]]:
    """A body and the headers a carrier sends with it."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    stamp = str(at_ms // 1000)
    headers = {"X-Signature": "sha256=" + signature(Secret(secret), stamp, raw), "X-Signature-Timestamp": stamp,
               "Content-Type": "application/json"}  # fmt: skip
    return raw, headers
