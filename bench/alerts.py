"""The alerting benchmark: violation-to-channel latency, a 10,000-alert storm, and its SMS summary.

Three measurements in one run, one JSON object:

- ``alert_to_channel_p99_ms``: ``--violations`` threshold violations (one per device, spread over
  ``--spread-s``) told to a real :class:`AlertingActor` on the real clock; the critical route's
  ``group_wait`` is 1 ms (the route parser takes only positive durations: this is "0"), so each
  pages at once through the webhook channel to a real HTTP server on 127.0.0.1. Latency is from
  just before the observation is told to the actor to the server receiving the request. Baseline
  in the same run: the same webhook channel POSTing directly (``baseline_webhook_post_p99_ms``).
- ``storm_*``: ``--storm-alerts`` alerts (3 rules, one of them critical, 3 sites, one device each) within
  ``--storm-window-s`` of simulated time through the pure pipeline, every effect carried out by the
  actor's :class:`EffectRunner` into a real :class:`AlertStore`; then 15 simulated minutes of ticks.
  ``storm_notifications_per_recipient`` is the most any one recipient got; ``storm_recorded_fraction``
  is alerts in the store / alerts raised by the rules. Routes: every alert to an SMS receiver (one
  group, default 60 s group_wait), a mail receiver (by site) and a chat webhook (by rule); the
  criticals also page at once (group_wait 1 ms, one group), so the pager gets the first critical
  then one more message with the rest at the next group_interval.
- ``storm_sms_segments`` / ``storm_sms_text``: the SMS the storm became (one group across 3 sites).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pymonitor.actors.alerting.actor import AlertingActor, EffectRunner, GetAlertStats
from pymonitor.actors.alerting.alert import Observation, fingerprint
from pymonitor.actors.alerting.channels import OutgoingMessage, WebhookChannel, WebhookConfig
from pymonitor.actors.alerting.config import parse_config
from pymonitor.actors.alerting.effects import RecordAlerts, Send
from pymonitor.actors.alerting.pipeline import AlertPipeline
from pymonitor.actors.alerting.sms import encoding, segments
from pymonitor.actors.runtime.clock import RealClock
from pymonitor.store.alert_store import AlertStore

from .common import emit_result, progress, python_version

START_MS = 1_796_637_600_000  # 2026-12-07 (a Monday) 08:00 UTC
SITES = ("Site Alpha", "Site Bravo", "Site Charlie")
STORM_READINGS = (("battery_v", 10.0), ("temp_c", 95.0), ("rssi_dbm", -120.0))  # each violates one storm rule
STORM_BATCH_MS = 100  # the hub hands readings over in batches like this
AFTER_STORM_MS = 15 * 60_000
WAIT_DELIVERY_S = 60.0


def latency_config(url: str) -> dict[str, Any]:
    return {
        "channels": {"hook": {"type": "webhook", "url": url, "secret": "bench-secret"}, "audit": {"type": "log"}},
        "receivers": {
            "pager": {"channel": "hook", "recipients": ["pager"]},
            "log": {"channel": "audit", "recipients": ["audit"]},
        },
        "rules": [{"name": "temp_high", "kind": "threshold", "metric": "temp_c", "threshold": {"above": 90},
                   "severity": "critical"}],
        "route": {
            "receiver": "log",
            "routes": [{"matchers": ['severity="critical"'], "receiver": "pager", "group_by": ["..."],
                        "group_wait": "1ms"}],
        },
    }  # fmt: skip


def storm_config() -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {"name": "battery_low", "kind": "threshold", "metric": "battery_v", "threshold": {"below": 11.5}},
        {
            "name": "temp_high",
            "kind": "threshold",
            "metric": "temp_c",
            "threshold": {"above": 90},
            "severity": "critical",
        },
        {"name": "link_poor", "kind": "threshold", "metric": "rssi_dbm", "threshold": {"below": -110}},
    ]
    every = ['severity=~".+"']
    return {
        "channels": {
            "sms": {"type": "sms_http", "url": "https://sms.invalid/api", "token": "t", "from": "PyMonitor"},
            "mail": {"type": "email", "host": "smtp.invalid", "from": "alerts@example.org"},
            "hook": {"type": "webhook", "url": "https://hooks.invalid/alerts"},
        },
        "receivers": {
            "oncall-sms": {"channel": "sms", "recipients": ["+447700900001", "+447700900002"]},
            "pager": {"channel": "sms", "recipients": ["+447700900003"]},
            "ops-mail": {"channel": "mail", "recipients": ["ops@example.org", "lead@example.org"]},
            "chat": {"channel": "hook", "recipients": ["chat"]},
        },
        "rules": rules,
        "route": {
            "receiver": "chat",
            "group_by": ["rule"],
            "routes": [
                {
                    "matchers": ['severity="critical"'],
                    "receiver": "pager",
                    "group_by": [],
                    "group_wait": "1ms",
                    "continue": True,
                },
                {"matchers": every, "receiver": "oncall-sms", "group_by": [], "continue": True},
                {"matchers": every, "receiver": "ops-mail", "group_by": ["site"], "continue": True},
                {"matchers": every, "receiver": "chat", "group_by": ["rule"]},
            ],
        },
    }


# --- 1. latency ------------------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as any production webhook receiver
    received: dict[str, float]
    lock: threading.Lock

    def do_POST(self) -> None:
        arrived = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        for fp in orjson.loads(body).get("alerts", []):
            with self.lock:
                self.received.setdefault(fp, arrived)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops connections under a burst: 1 s SYN retransmits
    daemon_threads = True


def _serve() -> tuple[ThreadingHTTPServer, dict[str, float]]:
    received: dict[str, float] = {}
    handler = type("Hook", (_Hook,), {"received": received, "lock": threading.Lock()})
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="bench-hook", daemon=True).start()
    return server, received


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values) * 1000, q)), 2) if values else float("nan")


def baseline_post(url: str, count: int) -> list[float]:
    """Seconds per direct webhook POST: the floor under the pipeline's latency."""
    channel = WebhookChannel(WebhookConfig.parse({"type": "webhook", "url": url, "secret": "s"}, "baseline"))
    spent = []
    for i in range(count):
        msg = OutgoingMessage(id=f"b{i}", recipient="pager", subject="baseline", text="baseline", fingerprints=())
        t0 = time.perf_counter()
        channel.send(msg, 0)
        spent.append(time.perf_counter() - t0)
    channel.close()
    return spent


def measure_latency(violations: int, spread_s: float, db: Path) -> dict[str, Any]:
    server, received = _serve()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    clock = RealClock()
    config = parse_config(latency_config(url), now_ms=clock.now_ms())
    actor = AlertingActor.start(None, config, db, clock, workers=8)
    sent: dict[str, float] = {}
    gap_s = spread_s / max(violations, 1)
    try:
        start = time.perf_counter()
        for i in range(violations):
            device = f"d{i:05d}"
            fp = fingerprint("temp_high", {"node": "gw1", "device": device, "metric": "temp_c"})
            obs = Observation(node="gw1", device=device, metric="temp_c", ts_ms=clock.now_ms(), value=95.0)
            sent[fp] = time.perf_counter()
            actor.tell(obs)
            pause = start + (i + 1) * gap_s - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        deadline = time.perf_counter() + WAIT_DELIVERY_S
        while len(received) < violations and time.perf_counter() < deadline:
            time.sleep(0.01)
        stats = actor.ask(GetAlertStats())
    finally:
        actor.stop()
        clock.stop()
    latencies = [received[fp] - t0 for fp, t0 in sent.items() if fp in received]
    baseline = baseline_post(url, min(200, max(violations, 1)))
    server.shutdown()
    server.server_close()
    return {
        "alert_to_channel_p99_ms": _ms(latencies, 99),
        "alert_to_channel_p50_ms": _ms(latencies, 50),
        "alert_to_channel_max_ms": _ms(latencies, 100),
        "violations": violations,
        "delivered": len(latencies),
        "critical_group_wait_ms": 1,
        "baseline_webhook_post_p99_ms": _ms(baseline, 99),
        "actor_counters": stats,
    }


# --- 2 and 3. storm --------------------------------------------------------------------------------


def measure_storm(alerts: int, window_s: float, db: Path) -> dict[str, Any]:
    config = parse_config(storm_config(), now_ms=START_MS)
    pipeline = AlertPipeline(config)
    store = AlertStore(db)
    sends: list[Send] = []
    runner = EffectRunner(store, lambda send, _id: sends.append(send))
    window_ms = round(window_s * 1000)
    raised = 0
    t0 = time.perf_counter()
    batch: list[Observation] = []
    batch_end = START_MS + STORM_BATCH_MS
    for i in range(alerts):
        ts = START_MS + i * window_ms // max(alerts, 1)
        if ts >= batch_end:
            effects = pipeline.observe(batch, batch_end)
            raised += sum(len(e.alerts) for e in effects if isinstance(e, RecordAlerts))
            runner.run(effects)
            batch, batch_end = [], batch_end + STORM_BATCH_MS
        metric, value = STORM_READINGS[i % len(STORM_READINGS)]
        site = SITES[(i // len(STORM_READINGS)) % len(SITES)]
        node = f"gw{i % 40:02d}-{site[5:].lower()}"
        batch.append(Observation(node=node, device=f"dev{i:05d}", metric=metric, ts_ms=ts, value=value, site=site))
    effects = pipeline.observe(batch, batch_end)
    raised += sum(len(e.alerts) for e in effects if isinstance(e, RecordAlerts))
    runner.run(effects)
    now = batch_end
    while now < START_MS + window_ms + AFTER_STORM_MS:
        now += 1000
        runner.run(pipeline.tick(now))
    wall_s = time.perf_counter() - t0
    recorded = store.counts()["alerts"]
    store.close()
    per_recipient = Counter(send.message.recipient for send in sends)
    sms = [send.message.text for send in sends if send.receiver == "oncall-sms"]
    text = sms[0] if sms else ""
    return {
        "storm_alerts": raised,
        "storm_window_s": window_s,
        "storm_recorded_fraction": round(recorded / raised, 6) if raised else 0.0,
        "storm_notifications_per_recipient": max(per_recipient.values(), default=0),
        "storm_notifications_by_recipient": dict(sorted(per_recipient.items())),
        "storm_sms_segments": segments(text) if text else 0,
        "storm_sms_encoding": encoding(text),
        "storm_sms_chars": len(text),
        "storm_sms_text": text,
        "storm_wall_s": round(wall_s, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pymonitor bench alerts", description=__doc__.splitlines()[0])
    parser.add_argument("--violations", type=int, default=1000, help="threshold violations for the latency run")
    parser.add_argument("--spread-s", type=float, default=10.0, help="seconds the violations are spread over")
    parser.add_argument("--storm-alerts", type=int, default=10_000)
    parser.add_argument("--storm-window-s", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="accepted for symmetry; the JSON line is always printed")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        progress(f"latency: {args.violations} violations over {args.spread_s:g} s to a webhook on 127.0.0.1")
        latency = measure_latency(args.violations, args.spread_s, Path(tmp) / "latency.db")
        progress(f"storm: {args.storm_alerts} alerts in {args.storm_window_s:g} s (simulated clock)")
        storm = measure_storm(args.storm_alerts, args.storm_window_s, Path(tmp) / "storm.db")
    result = {"bench": "alerts", **latency, **storm, "python": python_version()}
    emit_result(result, out=args.out)
    ok = (
        latency["delivered"] == args.violations
        and storm["storm_recorded_fraction"] == 1.0
        and storm["storm_notifications_per_recipient"] <= 5
        and storm["storm_sms_segments"] == 1
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
