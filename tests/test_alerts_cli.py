"""``pymonitor alerts`` and ``pymonitor notify``: list, history, ack, silence, test-route, notify test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pymonitor.actors.alerting.actor import EffectRunner, silence_of
from pymonitor.actors.alerting.alert import Observation
from pymonitor.actors.alerting.config import load_config
from pymonitor.actors.alerting.effects import Send
from pymonitor.actors.alerting.pipeline import AlertPipeline
from pymonitor.cli.alerts import alerts_app, notify_app
from pymonitor.store.alert_store import AlertStore

runner = CliRunner()
NOW = 1_796_637_600_000

CONFIG = """
[alerting.channels.audit]
type = "log"

[alerting.channels.hook]
type = "webhook"
url = "{url}"
retry = {{max_attempts = 2, base_delay = "1ms", max_delay = "2ms"}}

[alerting.receivers.ops]
channel = "audit"
recipients = ["ops"]

[alerting.receivers.pager]
channel = "hook"
recipients = ["pager"]

[[alerting.rules]]
name = "temp_high"
kind = "threshold"
metric = "temp_c"
threshold = {{above = 90}}
severity = "critical"

[alerting.route]
receiver = "ops"

[[alerting.route.routes]]
matchers = ['severity="critical"']
receiver = "pager"
group_wait = "1ms"

[alerting.hours.never]
time_zone = "UTC"
weekly = {{mon = ["00:00-00:01"]}}

[alerting.notify]
site_hours = {{"Night Site" = "never"}}

[[alerting.silences]]
id = "static"
matchers = ['site="Quiet"']
duration = "100d"
created_by = "ops"
comment = "decommissioned"
"""


class _Hook(BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def config_file(tmp_path: Path, hook: tuple[str, type[_Hook]]) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(CONFIG.format(url=hook[0]))
    return path


@pytest.fixture
def db(tmp_path: Path, config_file: Path) -> Path:
    """A history with one critical alert that fired, paged (two attempts) and still fires."""
    path = tmp_path / "alerts.db"
    store = AlertStore(path)
    pipeline = AlertPipeline(load_config(config_file, now_ms=NOW))

    def deliver(send: Send, notification_id: int) -> None:
        store.record_attempt(notification_id, 1, "retry", "HTTP 503", None, send.at_ms)
        store.record_attempt(notification_id, 2, "sent", "HTTP 200", None, send.at_ms + 5)

    effects = EffectRunner(store, deliver)
    effects.run(pipeline.observe([Observation(node="gw1", device="t1", metric="temp_c", ts_ms=NOW, value=95)], NOW))
    effects.run(pipeline.tick(NOW + 1))
    store.close()
    return path


def fingerprint_in(db: Path) -> str:
    store = AlertStore(db)
    (fp,) = store.fingerprints_recorded()
    store.close()
    return fp


def test_list_shows_firing_alerts_human_and_json(db: Path) -> None:
    human = runner.invoke(alerts_app, ["list", "--db", str(db)])
    assert human.exit_code == 0 and "critical" in human.output and "1 firing" in human.output
    data = json.loads(runner.invoke(alerts_app, ["list", "--db", str(db), "--json"]).output.splitlines()[-1])
    assert [row["rule"] for row in data["firing"]] == ["temp_high"]


def test_list_on_an_empty_history_and_a_missing_file(tmp_path: Path) -> None:
    AlertStore(tmp_path / "empty.db").close()
    assert "no alerts firing" in runner.invoke(alerts_app, ["list", "--db", str(tmp_path / "empty.db")]).output
    missing = runner.invoke(alerts_app, ["list", "--db", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2 and "no such alert history file" in missing.output


def test_history_shows_notifications_with_attempts(db: Path) -> None:
    human = runner.invoke(alerts_app, ["history", "--db", str(db), "--since", "100000d"])
    assert human.exit_code == 0
    assert "notified pager via hook to pager: #1 retry, #2 sent" in human.output
    data = json.loads(runner.invoke(alerts_app, ["history", "--db", str(db), "--json"]).output.splitlines()[-1])
    (row,) = data["history"]
    assert row["state"] == "firing" and row["notifications"][0]["attempts"][1]["status"] == "sent"
    assert "no alert history" in runner.invoke(alerts_app, ["history", "--db", str(db), "--fingerprint", "x"]).output
    bad = runner.invoke(alerts_app, ["history", "--db", str(db), "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_history_says_why_an_alert_did_not_notify(tmp_path: Path, config_file: Path) -> None:
    path = tmp_path / "quiet.db"
    store = AlertStore(path)
    pipeline = AlertPipeline(load_config(config_file, now_ms=NOW))
    runner_ = EffectRunner(store, lambda send, nid: None)
    quiet = Observation(node="gw1", device="t1", metric="temp_c", ts_ms=NOW, value=95, site="Quiet")
    runner_.run(pipeline.observe([quiet], NOW))
    store.close()
    out = runner.invoke(alerts_app, ["history", "--db", str(path)]).output
    assert "muted at" in out and "silenced by static (ops: decommissioned)" in out


def test_ack_by_prefix_is_recorded_and_the_actor_picks_it_up(db: Path) -> None:
    fp = fingerprint_in(db)
    result = runner.invoke(alerts_app, ["ack", fp[:6], "--db", str(db), "--by", "alice"])
    assert result.exit_code == 0 and f"acknowledged {fp} as alice" in result.output
    data = json.loads(runner.invoke(alerts_app, ["ack", fp, "--db", str(db), "--by", "bob", "--json"]).output)
    assert data["acknowledged"] == fp
    store = AlertStore(db)
    rows = store.acknowledgements_after(0, via="cli")
    assert [(r["by"], r["via"]) for r in rows] == [("alice", "cli"), ("bob", "cli")]
    assert store.acknowledgements_after(rows[-1]["id"]) == [] and store.last_acknowledgement_id() == rows[-1]["id"]
    history = store.history(fingerprint=fp)[0]
    store.close()
    assert [a["by"] for a in history["acknowledgements"]] == ["alice", "bob"]
    unknown = runner.invoke(alerts_app, ["ack", "zzz", "--db", str(db), "--by", "x"])
    assert unknown.exit_code == 2 and "matches no alert" in unknown.output


def test_silence_is_validated_stored_and_usable_by_the_muter(db: Path) -> None:
    result = runner.invoke(
        alerts_app,
        ["silence", "--db", str(db), "-m", 'site="Site A"', "--duration", "2h", "--by", "bob", "--comment", "works"],
    )
    assert result.exit_code == 0 and 'silence 1: site="Site A" until' in result.output
    store = AlertStore(db)
    (row,) = store.silences_after(0)
    store.close()
    assert row["ends_ms"] - row["starts_ms"] == 7_200_000
    assert silence_of(row, row["starts_ms"]).matchers[0].value == "Site A"
    bad = runner.invoke(
        alerts_app, ["silence", "--db", str(db), "-m", "site=A", "--duration", "2h", "--by", "b", "--comment", "c"]
    )
    assert bad.exit_code == 2 and "silence.matchers[0]" in bad.output
    data = json.loads(
        runner.invoke(
            alerts_app,
            [
                "silence",
                "--db",
                str(db),
                "-m",
                'node="gw1"',
                "--duration",
                "1h",
                "--by",
                "b",
                "--comment",
                "c",
                "--json",
            ],
        ).output  # fmt: skip
    )
    assert data["silence"] == 2 and data["matchers"] == ['node="gw1"']


def test_test_route_says_where_an_alert_goes(config_file: Path) -> None:
    args = ["test-route", "--config", str(config_file), "-l", "node=gw1", "--rule", "temp_high"]
    human = runner.invoke(alerts_app, [*args, "--severity", "critical"])
    assert human.exit_code == 0 and "-> pager via hook to pager" in human.output
    data = json.loads(runner.invoke(alerts_app, [*args, "--json"]).output)
    assert [r["receiver"] for r in data["routes"]] == ["ops"] and data["muted"] is None
    assert data["routes"][0]["preview"].startswith("Firing (1):")
    night = json.loads(runner.invoke(alerts_app, [*args, "-l", "site=Night Site", "--json"]).output)
    assert night["hours"] == "never" and night["deferred_until_ms"] is not None
    assert "waits for the digest" in runner.invoke(alerts_app, [*args, "-l", "site=Night Site"]).output
    paging = runner.invoke(alerts_app, [*args, "-l", "site=Night Site", "--severity", "critical"])
    assert "is an emergency: pages now" in paging.output
    quiet = runner.invoke(alerts_app, [*args, "-l", "site=Quiet"])
    assert "muted now: silenced by static (ops: decommissioned)" in quiet.output


def test_test_route_refuses_bad_input(config_file: Path, tmp_path: Path) -> None:
    base = ["test-route", "--config", str(config_file)]
    assert "--severity: expected one of" in runner.invoke(alerts_app, [*base, "--severity", "loud"]).output
    assert "--label: expected name=value" in runner.invoke(alerts_app, [*base, "-l", "oops"]).output
    bad = tmp_path / "bad.toml"
    bad.write_text("[alerting]\nroute = 1\n")
    result = runner.invoke(alerts_app, ["test-route", "--config", str(bad)])
    assert result.exit_code == 2 and "bad.toml: alerting." in result.output


def test_notify_test_sends_through_a_real_webhook_and_records_it(config_file: Path, tmp_path: Path) -> None:
    history = tmp_path / "h.db"
    result = runner.invoke(notify_app, ["test", "hook", "--config", str(config_file), "--db", str(history)])
    assert (
        result.exit_code == 0 and "attempt 1: sent HTTP 200" in result.output and "hook -> pager: sent" in result.output
    )
    store = AlertStore(history)
    assert store.counts()["notifications"] == 1 and store.counts()["attempts"] == 1
    store.close()
    logged = json.loads(runner.invoke(notify_app, ["test", "audit", "--config", str(config_file), "--json"]).output)
    assert logged["status"] == "delivered" and logged["recipient"] == "ops"


def test_notify_test_reports_a_failing_channel_with_exit_1(config_file: Path, hook: tuple[str, type[_Hook]]) -> None:
    hook[1].status = 503
    result = runner.invoke(notify_app, ["test", "hook", "--config", str(config_file), "--recipient", "me", "--json"])
    data = json.loads(result.output.splitlines()[-1])
    assert result.exit_code == 1 and data["status"] == "failed" and len(data["attempts"]) == 2
    assert data["recipient"] == "me"
    unknown = runner.invoke(notify_app, ["test", "nope", "--config", str(config_file)])
    assert unknown.exit_code == 2 and "unknown channel 'nope' (known: audit, hook)" in unknown.output
