"""The offline benchmark: a gateway offline for two weeks comes back over 2G/EDGE and drains its outbox.

Phase 1 (the outage): a gateway node with a durable outbox runs on an accelerated clock that
starts ``--days`` before now, its link down (the link proxy refuses connections), until its
clock reaches the present: two weeks of samples and alerts pile up on disk. Phase 2 (the
reconnect): the link comes back with the ``--profile`` link (rate, delay, jitter, loss) and the
gateway starts again on real time (a power cycle at the end of the outage), beside a hub node
on the broker's side. A subscriber on the broker records when each frame arrives.

Measured: ``first_alert_s`` (the gateway's birth at the broker -> first alert there),
``max_live_lag_s`` (the worst age of the newest sample of a live frame, one sampled after the
reconnect, when it arrives; older frames on the readings stream are urgent ones holding an
anomaly, counted as ``urgent_frames``), ``drain_s`` (reconnect -> no
backfill or events left in the outbox), ``delivered`` against ``generated`` (from the hub's
database and the outbox's tallies), and, as the baseline of the same run, the link's own
capacity: ``ideal_drain_s`` = bytes sent / link rate.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pymonitor.broker import MosquittoBroker, free_port, topics
from pymonitor.messages import Event, MessageError, NodeBirth, ReadingBatch, decode_unpacked
from pymonitor.simulators.link import ImpairedLink, get_profile
from pymonitor.store.outbox import read_status

from .common import emit_result, progress, python_version
from .crash import NODE_CMD, hub_config, hub_counts

FLEET = "remote"
DAY_MS = 86_400_000
PHASE1_SPEED = 20_000.0  # two simulated weeks in about a minute


class Arrivals:
    """What reaches the broker from the gateway, stamped on arrival (a paho subscriber)."""

    def __init__(self, url_host: str, port: int) -> None:
        self.lock = threading.Lock()
        self.first_event_ms: int | None = None
        self.events = 0
        self.readings_frames: list[tuple[int, int]] = []  # (arrival, newest sample) of each up/readings frame
        self.birth_ms: int | None = None
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-offline-watch")
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{topics.ROOT}/{FLEET}/+/up/#", 1), (f"{topics.ROOT}/{FLEET}/+/state", 1)]
        )
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(url_host, port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time_ns() // 1_000_000
        try:
            parsed = topics.parse(msg.topic)
            body = decode_unpacked(bytes(msg.payload))
        except (topics.TopicError, MessageError):
            return
        with self.lock:
            gateway_birth = isinstance(body, NodeBirth) and body.role == "gateway"
            if parsed.kind == "state" and self.birth_ms is None and gateway_birth:
                self.birth_ms = now
            elif parsed.kind == "events" and isinstance(body, Event):
                self.events += 1
                if self.first_event_ms is None:
                    self.first_event_ms = now
            elif parsed.kind == "readings" and isinstance(body, ReadingBatch) and body.rows:
                self.readings_frames.append((now, max(body.columns().ts_ms)))

    def live_lags_ms(self, since_ms: int) -> list[int]:
        """Lags of the live frames: those whose newest sample was taken after ``since_ms``.

        Older frames on the readings stream are urgent ones (they hold an anomaly) sent ahead of
        the backfill; their age is the outage's, not a lag of live data.
        """
        with self.lock:
            return [arrived - newest for arrived, newest in self.readings_frames if newest >= since_ms]

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def gateway_config(work: Path, url: str, args: argparse.Namespace, *, start_ms: int | None, speed: float) -> Path:
    path = work / ("offline.toml" if start_ms is not None else "online.toml")
    clock = f"[clock]\nspeed = {speed}\n" + (f"start_ms = {start_ms}\n" if start_ms is not None else "")
    path.write_text(
        f'[node]\nname = "site"\nfleet = "{FLEET}"\n[broker]\nurl = "{url}"\n{clock}'
        f"[simulator]\ndevices = {args.devices}\ngateways = 1\ninterval_s = {args.interval}\nseed = {args.seed}\n"
        f'compression = "zstd"\noutbox_dir = "{work / "outbox"}"\n',
        encoding="utf-8",
    )
    return path


def outbox_status(outbox_dir: Path) -> dict[str, Any]:
    (path,) = sorted(outbox_dir.glob("*.outbox"))
    return read_status(path)  # read-only: the gateway owns the file


def run(args: argparse.Namespace) -> dict[str, Any]:
    profile = get_profile(args.profile)
    with tempfile.TemporaryDirectory(prefix="pm-offline-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(port=free_port()).start()
        link = ImpairedLink((broker.host, broker.port), profile=profile, outage_mode="drop", seed=args.seed).start()
        link.set_offline(True)
        hub_log = (work / "hub.log").open("wb")  # kept for a post-mortem if the hub dies
        hub = subprocess.Popen([*NODE_CMD, str(hub_config(work, broker.url, FLEET))], stderr=hub_log)
        arrivals = Arrivals(broker.host, broker.port)
        gateway: subprocess.Popen[bytes] | None = None
        try:
            arrivals.ready.wait(10)
            # Phase 1: the outage, on an accelerated clock that ends about now.
            offline_s = args.days * DAY_MS / 1000 / PHASE1_SPEED
            start_ms = time.time_ns() // 1_000_000 - int(args.days * DAY_MS) + int(offline_s * 1000)
            url = f"mqtt://127.0.0.1:{link.port}"
            cfg = gateway_config(work, url, args, start_ms=start_ms, speed=PHASE1_SPEED)
            progress(f"offline: {args.days} simulated days offline ({offline_s:.0f} s)")
            subprocess.run([*NODE_CMD, str(cfg), "--seconds", str(offline_s)], stderr=subprocess.DEVNULL, check=True)
            backlog = outbox_status(work / "outbox")
            progress(f"offline: backlog {backlog['size_bytes'] / 1e6:.2f} MB, pending {backlog['pending']}")
            # Phase 2: the link comes back over the profile; the gateway runs on real time.
            link.set_offline(False)
            bytes_before = link.counters.bytes_up
            reconnect_ms = time.time_ns() // 1_000_000
            gateway = subprocess.Popen(
                [*NODE_CMD, str(gateway_config(work, url, args, start_ms=None, speed=1.0))], stderr=subprocess.DEVNULL
            )
            drained_ms = None
            deadline = time.monotonic() + args.max_drain_s
            while time.monotonic() < deadline:
                time.sleep(5)
                pending = outbox_status(work / "outbox")["pending"]
                left = pending["event"]["frames"] + pending["backfill"]["frames"]
                progress(f"offline: {left} backfill/event frames left, {arrivals.events} events arrived")
                if left == 0:
                    drained_ms = time.time_ns() // 1_000_000
                    break
            bytes_up = link.counters.bytes_up - bytes_before
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=60)
            hub.send_signal(signal.SIGTERM)
            hub.wait(timeout=60)
        finally:
            for proc in (gateway, hub):
                if proc is not None and proc.poll() is None:
                    proc.kill()
            arrivals.stop()
            hub_log.close()
            if hub.returncode not in (None, 0, -signal.SIGTERM):
                progress(f"offline: the hub exited with {hub.returncode}: {(work / 'hub.log').read_text()[-2000:]}")
            link.stop()
            broker.close()
        final = outbox_status(work / "outbox")
        counts = hub_counts(work / "hub.db")
        with sqlite3.connect(work / "hub.db") as conn:
            events_stored = conn.execute("SELECT COUNT(*) FROM events WHERE kind NOT LIKE 'outbox.%'").fetchone()[0]
    tallies = final["tallies"]
    generated = tallies.get("readings", 0)
    pending = sum(p["readings"] for p in final["pending"].values())
    delivered = counts["stored"] - counts["duplicates"]
    rate_bytes_s = (profile.rate_bps_up or 0) / 8
    drain_s = None if drained_ms is None else round((drained_ms - reconnect_ms) / 1000, 1)
    connect_ms = arrivals.birth_ms or reconnect_ms
    live_lags = arrivals.live_lags_ms(reconnect_ms)
    return {
        "bench": "offline",
        "days": args.days,
        "devices": args.devices,
        "interval_s": args.interval,
        "profile": profile.name,
        "generated": generated,
        "delivered": delivered,
        "pending_after": pending,
        "evicted": sum(v for k, v in tallies.items() if k.startswith("evicted_readings_")),
        "duplicates": counts["duplicates"],
        "backlog_bytes": backlog["size_bytes"],
        "alerts_waiting_at_reconnect": backlog["pending"]["event"]["frames"],
        "alerts_delivered": events_stored,  # including those raised after the reconnect
        "first_alert_s": None if arrivals.first_event_ms is None else (arrivals.first_event_ms - connect_ms) / 1000,
        "connect_s": (connect_ms - reconnect_ms) / 1000,
        "max_live_lag_s": max(live_lags, default=0) / 1000,
        "live_frames": len(live_lags),
        "urgent_frames": len(arrivals.readings_frames) - len(live_lags),
        "drain_s": drain_s,
        "bytes_up": bytes_up,
        "ideal_drain_s": round(bytes_up / rate_bytes_s, 1) if rate_bytes_s else None,
        "python": python_version(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pymonitor bench offline", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between samples of one device")
    parser.add_argument("--profile", default="2g_edge", help="link profile after the outage")
    parser.add_argument("--max-drain-s", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="accepted for symmetry: the last stdout line is JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    emit_result(result, out=args.out)
    return 0
