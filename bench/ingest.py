"""The ingest benchmark: readings per second from simulated gateways through mosquitto into the hub's SQLite.

One run, one freshly started mosquitto (free port, persistence on), two measurements:

* baseline: raw paho-mqtt, one QoS 1 message per reading, one publisher process and one
  subscriber (this process) -- what "just send every reading over MQTT" achieves here;
* PyMonitor: a simulated fleet in a separate process (so it has its own GIL and core) sends
  columnar batches over QoS 1 to a :class:`HubRole` in this process, which stores them in
  SQLite. Every reading is accounted for from the database, not from what senders believe.

``--restart-broker`` restarts mosquitto (SIGTERM, same port) partway: the result must still be
zero lost and zero duplicated readings. Progress goes to stderr; stdout's last line is the JSON.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from pymonitor.actors.hub import HubRole
from pymonitor.actors.runtime.clock import RealClock
from pymonitor.actors.runtime.limits import raise_open_file_limit
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BrokerAddress, MosquittoBroker, free_port
from pymonitor.simulators.fleet import FleetSimulator
from pymonitor.store import HubStore

from .common import CpuMeter, children_named, emit_result, own_cpu_s, own_peak_rss_mb, progress, python_version

FLEET = "bench"
METRICS_PER_DEVICE = 4
BASELINE_TOPIC = "bench/baseline/readings"
BASELINE_PAYLOAD = struct.Struct("<IQqd")  # device, seq, ts_ms, value: 28 bytes, one reading
CONNECT_TIMEOUT_S = 10.0
PROGRESS_EVERY_S = 1.0
RESTART_AT_FRACTION = 0.4  # of the sampling time: well inside the run, with frames in flight both ways


@dataclass(frozen=True, slots=True)
class IngestOptions:
    devices: int
    gateways: int
    interval_s: float
    speed: float
    seconds: float
    max_rows_per_frame: int
    ack_timeout_s: float
    flush_interval_ms: int
    flush_max_frames: int
    baseline_messages: int
    baseline_seconds: float
    baseline_window: int
    restart_broker: bool
    drain_timeout_s: float
    seed: int


# ----------------------------------------------------------------------------- baseline


def _baseline_publisher(conn: Connection, host: str, port: int, count: int, max_s: float, window: int) -> None:
    """Child process: publish one-reading QoS 1 messages with ``window`` of them always awaiting their PUBACK.

    The fastest raw-paho publisher we found here: one thread drives the client's loop and each
    PUBACK publishes the next message. paho's own in-flight limit stays off (0), because paho
    scans every in-flight message on each PUBACK when it is set, which makes a big window slow.
    """
    state = {"sent": 0, "acks": 0}
    deadline = [float("inf")]
    ts_ms = time.time_ns() // 1_000_000
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline-pub", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(0)

    def publish_next() -> None:
        n = state["sent"] = state["sent"] + 1
        client.publish(BASELINE_TOPIC, BASELINE_PAYLOAD.pack(n % 20_000, n, ts_ms + n, 21.5), qos=1)

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        state["acks"] += 1
        if state["sent"] < count and (state["sent"] & 255 or time.monotonic() < deadline[0]):
            publish_next()

    client.on_publish = on_publish
    client.connect(host, port)
    give_up = time.monotonic() + CONNECT_TIMEOUT_S
    while not client.is_connected() and time.monotonic() < give_up:
        client.loop(0.05)
    if not client.is_connected():
        conn.send({"error": "baseline publisher could not connect"})
        return
    conn.send({"ready": True, "cpu_s": own_cpu_s()})
    conn.recv()  # go
    first = time.monotonic()
    deadline[0] = first + max_s
    for _ in range(min(window, count)):
        publish_next()
    give_up = deadline[0] + 30
    while state["acks"] < state["sent"] and time.monotonic() < give_up:
        client.loop(0.05)
    conn.send({"sent": state["sent"], "acked": state["acks"], "first_publish": first, "cpu_s": own_cpu_s()})
    client.disconnect()


@dataclass
class BaselineResult:
    messages: int
    received: int
    msgs_per_s: float
    seconds: float
    cpu_percent: float


def measure_baseline(address: BrokerAddress, options: IngestOptions) -> BaselineResult:
    """Raw paho QoS 1 publish -> subscribe, one reading per message.

    Rate = received / (first publish -> last receive).
    """
    ctx = multiprocessing.get_context("spawn")
    received = [0]
    last = [0.0]
    subscribed = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe(BASELINE_TOPIC, qos=1)

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        subscribed.set()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        received[0] += 1
        last[0] = time.monotonic()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline-sub", protocol=mqtt.MQTTv311)
    sub.on_connect = on_connect
    sub.on_subscribe = on_subscribe
    sub.on_message = on_message
    sub.connect(address.host, address.port)
    sub.loop_start()
    ours, theirs = ctx.Pipe()
    pub = ctx.Process(
        target=_baseline_publisher,
        args=(
            theirs,
            address.host,
            address.port,
            options.baseline_messages,
            options.baseline_seconds,
            options.baseline_window,
        ),
        name="bench-baseline-pub",
    )
    pub.start()
    try:
        if not subscribed.wait(CONNECT_TIMEOUT_S):
            raise RuntimeError("baseline subscriber could not subscribe")
        ready = ours.recv()
        if "error" in ready:
            raise RuntimeError(ready["error"])
        meter = CpuMeter()
        for proc in [psutil.Process(), *children_named("mosquitto")]:
            meter.add(proc)
        wall0 = time.monotonic()
        ours.send("go")
        report = ours.recv()  # every message published and acknowledged by the broker
        sent, first = int(report["sent"]), float(report["first_publish"])
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while received[0] < sent and time.monotonic() < deadline:
            time.sleep(0.01)
        meter.sample()
        wall = time.monotonic() - wall0
    finally:
        pub.join(10)
        if pub.is_alive():
            pub.terminate()
        sub.disconnect()
        sub.loop_stop()
    seconds = max(1e-9, last[0] - first)
    return BaselineResult(
        messages=sent,
        received=received[0],
        msgs_per_s=round(received[0] / seconds, 1),
        seconds=round(seconds, 3),
        cpu_percent=round((meter.seconds() + report["cpu_s"] - ready["cpu_s"]) / wall * 100, 1),
    )


# ----------------------------------------------------------------------------- simulated fleet (child process)


def _simulate(conn: Connection, host: str, port: int, options: IngestOptions) -> None:
    """Child process: run the fleet for ``seconds``, stop sampling, wait until every frame is acked, report."""
    raise_open_file_limit(options.gateways + 1)
    clock = RealClock(speed=options.speed)
    supervisor = Supervisor(clock)
    fleet = FleetSimulator(
        fleet=FLEET,
        devices=options.devices,
        gateways=options.gateways,
        address=BrokerAddress(host, port),
        clock=clock,
        supervisor=supervisor,
        interval_s=options.interval_s,
        seed=options.seed,
        max_rows_per_frame=options.max_rows_per_frame,
        ack_timeout_s=options.ack_timeout_s * options.speed,  # clock seconds: the outbox lives on the fast clock
    )
    try:
        fleet.start()
        start = time.monotonic()
        conn.send({"started": start})
        while (elapsed := time.monotonic() - start) < options.seconds:
            time.sleep(min(PROGRESS_EVERY_S, options.seconds - elapsed))
            conn.send({"progress": fleet.totals(), "elapsed_s": time.monotonic() - start})
        fleet.stop_sampling()
        for node in fleet.gateways:  # mailbox order: once status() answers, StopSampling has been handled
            ref = supervisor.ref(node)
            if ref is not None:
                ref.proxy().status().get(timeout=CONNECT_TIMEOUT_S)
        sampling_s = time.monotonic() - start
        conn.send({"sampling_stopped": sampling_s, "progress": fleet.totals()})
        deadline = time.monotonic() + options.drain_timeout_s
        while fleet.pending_frames() and time.monotonic() < deadline:
            time.sleep(0.02)
        totals = fleet.totals()
        conn.send(
            {
                "done": totals,
                "sampling_s": sampling_s,
                "drain_s": time.monotonic() - start - sampling_s,
                "cpu_s": own_cpu_s(),
                "peak_rss_mb": own_peak_rss_mb(),
            }
        )
    finally:
        fleet.stop()
        supervisor.stop_all()
        clock.stop()


# ----------------------------------------------------------------------------- PyMonitor run (hub in this process)


def _store_figures(db_path: Path) -> dict[str, Any]:
    """Accounting and timing, read back from the hub's database."""
    store = HubStore(db_path)
    try:
        accounting = store.reading_accounting()
        first_ms, last_ms, frames = store.conn.execute(
            "SELECT MIN(received_ms), MAX(received_ms), COUNT(*) FROM frames"
        ).fetchone()
        # Readings of every transaction but the last, over the span between the first and the last
        # transaction's start: each counted reading was committed inside the span (no fencepost bias).
        inside = store.conn.execute(
            "SELECT COALESCE(SUM(readings), 0) FROM frames WHERE received_ms < ?", (last_ms,)
        ).fetchone()[0]
    finally:
        store.close()
    span_s = ((last_ms or 0) - (first_ms or 0)) / 1000
    return {
        "accounting": accounting,
        "frames": int(frames),
        "store_span_s": round(span_s, 3),
        "readings_per_s": round(inside / span_s, 1) if span_s > 0 else 0.0,
    }


def measure_pymonitor(broker: MosquittoBroker, address: BrokerAddress, options: IngestOptions) -> dict[str, Any]:
    """Fleet (child process) -> mosquitto -> HubRole -> SQLite; every reading accounted for from the database."""
    ctx = multiprocessing.get_context("spawn")
    tmp = tempfile.TemporaryDirectory(prefix="pm-bench-ingest-")
    db_path = Path(tmp.name) / "hub.db"
    clock = RealClock()
    supervisor = Supervisor(clock)
    hub = HubRole(
        fleet=FLEET,
        node="hub",
        db_path=db_path,
        address=address,
        clock=clock,
        supervisor=supervisor,
        flush_interval_ms=options.flush_interval_ms,
        flush_max_frames=options.flush_max_frames,
    )
    hub_meter, broker_meter = CpuMeter(), CpuMeter()
    hub_meter.add(psutil.Process())
    for proc in children_named("mosquitto"):
        broker_meter.add(proc)
    wall0 = time.monotonic()
    hub.start()
    if not hub.bridge.wait_connected(CONNECT_TIMEOUT_S):
        raise RuntimeError(f"the hub could not connect to {address}")
    ours, theirs = ctx.Pipe()
    sim = ctx.Process(target=_simulate, args=(theirs, address.host, address.port, options), name="bench-fleet")
    restarts = 0
    sim_report: dict[str, Any] = {}
    try:
        sim.start()
        started: float | None = None
        restart_at = options.seconds * RESTART_AT_FRACTION if options.restart_broker else None
        while True:
            if not ours.poll(0.05):
                if not sim.is_alive():
                    raise RuntimeError(f"the simulator process ended early (exit code {sim.exitcode})")
            else:
                msg = ours.recv()
                if "started" in msg:
                    started = float(msg["started"])
                    progress(f"fleet    {options.devices:,} devices behind {options.gateways} gateways started")
                if "progress" in msg:
                    _show_progress(msg, hub)
                if "done" in msg:
                    sim_report = msg
                    break
            if restart_at is not None and started is not None and time.monotonic() - started >= restart_at:
                restart_at = None
                broker_meter.sample()  # the old mosquitto's CPU, before it ends
                t = time.monotonic()
                broker.restart()
                restarts += 1
                for proc in children_named("mosquitto"):
                    broker_meter.add(proc, born_inside=True)
                progress(f"broker   restarted (SIGTERM, same port) in {time.monotonic() - t:.2f} s")
        hub_meter.sample()
        broker_meter.sample()
        wall = time.monotonic() - wall0
        hub_counters = vars(hub.settings.counters).copy()
        dropped = hub.frames_dropped
    finally:
        sim.join(30)
        if sim.is_alive():
            sim.terminate()
            sim.join(5)
        hub.stop()
        supervisor.stop_all()
        clock.stop()
    figures = _store_figures(db_path)
    tmp.cleanup()
    totals = sim_report["done"]
    sim_cpu_s = float(sim_report["cpu_s"])  # the child's own rusage, taken when it was done
    hub_cpu_s, broker_cpu_s = hub_meter.seconds(), broker_meter.seconds()
    cpu_s = hub_cpu_s + broker_cpu_s + sim_cpu_s
    accounting = figures["accounting"]
    generated = int(totals["generated"])
    return {
        "readings_per_s": figures["readings_per_s"],
        "offered_readings_per_s": round(generated / float(sim_report["sampling_s"]), 1),
        "generated": generated,
        "stored": accounting["distinct"],
        "rows": accounting["rows"],
        "lost": generated - accounting["distinct"],
        "duplicates": accounting["duplicates"],
        "frames": figures["frames"],
        "store_span_s": figures["store_span_s"],
        "sampling_s": round(float(sim_report["sampling_s"]), 3),
        "drain_s": round(float(sim_report["drain_s"]), 3),
        "pending_frames_at_end": int(totals["pending_frames"]),
        "resent_frames": int(totals["resends"]),
        "evicted_readings": int(totals["evicted_readings"]),
        "duplicate_frames_dropped": int(hub_counters.get("duplicates", 0)),
        "hub_frames_refused": dropped,
        "broker_restarts": restarts,
        "cpu_percent": round(cpu_s / wall * 100, 1),
        "cpu_s": {"hub": round(hub_cpu_s, 2), "sim": round(sim_cpu_s, 2), "broker": round(broker_cpu_s, 2)},
        "broker_peak_rss_mb": round(broker_meter.peak_rss_mb(), 1),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(own_peak_rss_mb(), 1),
        "sim_peak_rss_mb": round(float(sim_report["peak_rss_mb"]), 1),
    }


def _show_progress(msg: dict[str, Any], hub: HubRole) -> None:
    totals = msg["progress"]
    label = f"{msg['elapsed_s']:5.1f} s" if "elapsed_s" in msg else "stopped"
    progress(
        f"{label}  generated {totals['generated']:>11,}  acked {totals['acked_readings']:>11,}"
        f"  stored {hub.settings.counters.readings:>11,}  waiting frames {totals['pending_frames']:>6}"
    )


# ----------------------------------------------------------------------------- main


def mosquitto_version(binary: str) -> str | None:
    try:
        out = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for word in (out.stdout + out.stderr).split("\n", 1)[0].split():
        if word[:1].isdigit():
            return word
    return None


def parse_args(argv: list[str] | None) -> tuple[IngestOptions, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="pymonitor bench ingest", description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=60_000, help="simulated devices (default 60000)")
    p.add_argument("--gateways", type=int, default=30, help="gateways they sit behind (default 30)")
    p.add_argument("--interval", type=float, default=1.0, help="sampling interval per device, clock s (default 1)")
    p.add_argument("--speed", type=float, default=1.0, help="simulator clock speed-up (default 1: real time)")
    p.add_argument("--seconds", type=float, default=10.0, help="real seconds of sampling (default 10)")
    p.add_argument("--max-rows-per-frame", type=int, default=4096, help="rows per gateway frame (default 4096)")
    p.add_argument("--ack-timeout", type=float, default=10.0, help="real s before a gateway resends (default 10)")
    p.add_argument("--flush-interval-ms", type=int, default=200, help="hub flush timer (default 200)")
    p.add_argument("--flush-max-frames", type=int, default=8, help="hub flush batch, frames (default 8)")
    p.add_argument("--baseline-messages", type=int, default=50_000, help="baseline messages (default 50000)")
    p.add_argument("--baseline-seconds", type=float, default=6.0, help="baseline publishing cap, s (default 6)")
    p.add_argument("--baseline-window", type=int, default=500, help="baseline messages in flight (default 500)")
    p.add_argument("--restart-broker", action="store_true", help="restart mosquitto partway through the run")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="max s to wait for every frame's ack")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print only the JSON result on stdout")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result to this file")
    ns = p.parse_args(argv)
    options = IngestOptions(
        devices=ns.devices,
        gateways=ns.gateways,
        interval_s=ns.interval,
        speed=ns.speed,
        seconds=ns.seconds,
        max_rows_per_frame=ns.max_rows_per_frame,
        ack_timeout_s=ns.ack_timeout,
        flush_interval_ms=ns.flush_interval_ms,
        flush_max_frames=ns.flush_max_frames,
        baseline_messages=ns.baseline_messages,
        baseline_seconds=ns.baseline_seconds,
        baseline_window=ns.baseline_window,
        restart_broker=ns.restart_broker,
        drain_timeout_s=ns.drain_timeout,
        seed=ns.seed,
    )
    return options, ns


def main(argv: list[str] | None = None) -> int:
    """Run the baseline and the PyMonitor ingest on one fresh mosquitto; exit 1 if any reading was lost or doubled."""
    options, ns = parse_args(argv)
    t0 = time.monotonic()
    broker = MosquittoBroker(port=free_port())  # never 1883: a real broker may live there
    broker.start()
    address = BrokerAddress(broker.host, broker.port)
    try:
        progress(f"broker   mosquitto {mosquitto_version(broker.binary) or '?'} on {broker.url}, persistence on")
        progress(f"baseline raw paho QoS 1, one {BASELINE_PAYLOAD.size}-byte message per reading")
        baseline = measure_baseline(address, options)
        progress(
            f"baseline {baseline.received:,} messages in {baseline.seconds:.2f} s: {baseline.msgs_per_s:,.0f} msgs/s"
        )
        offered = options.devices * METRICS_PER_DEVICE * options.speed / options.interval_s
        progress(f"pymonitor nominal offer {offered:,.0f} readings/s for {options.seconds:g} s")
        run = measure_pymonitor(broker, address, options)
    finally:
        broker.close()
    ratio = run["readings_per_s"] / baseline.msgs_per_s if baseline.msgs_per_s else 0.0
    result: dict[str, Any] = {
        "bench": "ingest",
        "readings_per_s": run["readings_per_s"],
        "baseline_msgs_per_s": baseline.msgs_per_s,
        "ratio": round(ratio, 2),
        "lost": run["lost"],
        "duplicates": run["duplicates"],
        "generated": run["generated"],
        "stored": run["stored"],
        "cpu_percent": run["cpu_percent"],
        "peak_rss_mb": run["peak_rss_mb"],
        "sim_peak_rss_mb": run["sim_peak_rss_mb"],
        "devices": options.devices,
        "gateways": options.gateways,
        "seconds": options.seconds,
        "broker_restarts": run["broker_restarts"],
        "python": python_version(),
        "mosquitto": mosquitto_version(broker.binary),
        "nproc": os.cpu_count(),
        **{k: v for k, v in run.items() if k not in ("readings_per_s", "lost", "duplicates", "generated", "stored")},
        "baseline": asdict(baseline),
        "options": asdict(options),
        "bench_wall_s": round(time.monotonic() - t0, 2),
    }
    ok = result["lost"] == 0 and result["duplicates"] == 0
    if not ns.json:
        print(
            f"ingest: {result['readings_per_s']:,.0f} readings/s vs baseline {baseline.msgs_per_s:,.0f} msgs/s"
            f" (x{result['ratio']}), lost {result['lost']}, duplicates {result['duplicates']}"
            f" -> {'OK' if ok else 'FAILED'}"
        )
    emit_result(result, out=ns.out)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
