"""The gateway load benchmark: CPU and memory of a durable gateway node buffering N metrics a minute.

A gateway node process (durable outbox, link-adaptive uplink, alerts) samples ``--devices``
devices of 4 metrics every ``--interval`` seconds (250 devices at 60 s = 1,000 metrics/min) and
sends them to a hub node through mosquitto. Its CPU time and peak RSS are read from /proc over
``--seconds``. Baseline, same run and same rate: a bare paho client publishing each reading as
its own JSON message at QoS 1 (what a hand-written forwarder does), measured the same way.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from pymonitor.broker import MosquittoBroker, free_port

from .common import emit_result, process_cpu_s, process_peak_rss_mb, progress, python_version
from .crash import NODE_CMD, hub_config, hub_counts

FLEET = "load"
WARMUP_S = 10.0  # imports, first connect, schema: not what a gateway costs while it runs
METRICS_PER_DEVICE = 4


def measure(proc: subprocess.Popen[bytes], seconds: float) -> dict[str, float]:
    """CPU (percent of one core) and peak RSS of a running process over ``seconds`` after a warm-up."""
    ps = psutil.Process(proc.pid)
    time.sleep(WARMUP_S)
    cpu0, t0 = process_cpu_s(ps), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = process_cpu_s(ps), time.monotonic()
    return {"cpu_pct_of_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 2), "peak_rss_mb": process_peak_rss_mb(ps)}


def baseline_publisher(host: str, port: int, per_minute: int, seconds: float) -> None:
    """One JSON message per reading at QoS 1, evenly spread: the hand-written forwarder."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-load-baseline")
    client.connect(host, port)
    client.loop_start()
    gap, n = 60.0 / per_minute, 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        body = {"device": f"dev-{n % 1000:04d}", "metric": "temperature_c", "ts": time.time_ns() // 1_000_000}
        client.publish(f"baseline/{FLEET}/readings", orjson.dumps({**body, "value": 20.0 + n % 7}), qos=1)
        n += 1
        time.sleep(max(0.0, start + n * gap - time.monotonic()))
    client.loop_stop()
    client.disconnect()


def run(args: argparse.Namespace) -> dict[str, Any]:
    per_minute = round(args.devices * METRICS_PER_DEVICE * 60 / args.interval)
    with tempfile.TemporaryDirectory(prefix="pm-load-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(port=free_port()).start()
        hub = subprocess.Popen([*NODE_CMD, str(hub_config(work, broker.url, FLEET))], stderr=subprocess.DEVNULL)
        config = work / "gateway.toml"
        config.write_text(
            f'[node]\nname = "site"\nfleet = "{FLEET}"\n[broker]\nurl = "{broker.url}"\n'
            f"[simulator]\ndevices = {args.devices}\ngateways = 1\ninterval_s = {args.interval}\n"
            f'outbox_dir = "{work / "outbox"}"\ndurability = "{args.durability}"\n',
            encoding="utf-8",
        )
        procs: list[subprocess.Popen[bytes]] = [hub]
        try:
            progress(f"gateway: {per_minute} metrics/min for {args.seconds:.0f} s")
            gateway = subprocess.Popen([*NODE_CMD, str(config)], stderr=subprocess.DEVNULL)
            procs.append(gateway)
            ours = measure(gateway, args.seconds)
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=60)
            progress("gateway: baseline (one JSON message per reading)")
            child = [sys.executable, "-m", "pymonitor.bench.gateway_load", "--baseline-child"]
            base = subprocess.Popen([*child, broker.host, str(broker.port), str(per_minute), str(args.seconds + 20)])
            procs.append(base)
            theirs = measure(base, args.seconds)
            base.wait(timeout=args.seconds + 60)
            hub.send_signal(signal.SIGTERM)
            hub.wait(timeout=60)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            broker.close()
        stored = hub_counts(work / "hub.db")["stored"]
    return {
        "bench": "gateway",
        "metrics_per_min": per_minute,
        "devices": args.devices,
        "interval_s": args.interval,
        "durability": args.durability,
        "seconds": args.seconds,
        "cpu_pct_of_core": ours["cpu_pct_of_core"],
        "peak_rss_mb": ours["peak_rss_mb"],
        "baseline_cpu_pct_of_core": theirs["cpu_pct_of_core"],
        "baseline_peak_rss_mb": theirs["peak_rss_mb"],
        "stored_readings": stored,
        "cores": psutil.cpu_count(),
        "python": python_version(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pymonitor bench gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=250)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples of one device")
    parser.add_argument("--seconds", type=float, default=120.0, help="measured time after a warm-up")
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    parser.add_argument("--json", action="store_true", help="accepted for symmetry: the last stdout line is JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emit_result(run(args), out=args.out)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--baseline-child"]:
        host, port, rate, seconds = sys.argv[2:6]
        baseline_publisher(host, int(port), int(rate), float(seconds))
    else:
        sys.exit(main(sys.argv[1:]))
