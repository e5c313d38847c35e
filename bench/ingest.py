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
from dataclasses import asdict, dataclass, fields
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
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
from pymonitor.simulators.models import METRICS
from pymonitor.store import HubStore

from .common import (
    CpuMeter,
    children_named,
    emit_result,
    own_cpu_s,
    own_peak_rss_mb,
    process_peak_rss_mb,
    progress,
    python_version,
)

FLEET = "bench"
BASELINE_TOPIC = "bench/baseline/readings"
BASELINE_PAYLOAD = struct.Struct("<IQqd")  # device, seq, ts_ms, value: 28 bytes, one reading
CONNECT_TIMEOUT_S = 10.0
CHILD_START_TIMEOUT_S = 60.0  # spawn + imports on a loaded machine
PROGRESS_EVERY_S = 1.0
RESTART_AT_FRACTION = 0.4  # of the sampling time: well inside the run, with frames in flight both ways
SATURATED_TICKS = 1.5  # backlog at stop above this many ticks of offer: the hub was behind, its rate is its capacity


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


def _recv(conn: Connection, timeout_s: float, what: str) -> Any:
    """A message from a child process, or an error that says what never came."""
    if not conn.poll(timeout_s):
        raise RuntimeError(f"no {what} from the child process within {timeout_s:.0f} s")
    return conn.recv()


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
    lost: int
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
        ready = _recv(ours, CHILD_START_TIMEOUT_S, "baseline publisher start")
        if "error" in ready:
            raise RuntimeError(ready["error"])
        meter = CpuMeter()
        for proc in [psutil.Process(), *children_named("mosquitto")]:
            meter.add(proc)
        wall0 = time.monotonic()
        ours.send("go")
        # every message published and acknowledged by the broker
        report = _recv(ours, options.baseline_seconds + 60, "baseline publisher report")
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
        lost=sent - received[0],
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
        ack_timeout_s=options.ack_timeout_s * options.speed,  # in clock seconds: the outbox runs on the fast clock
    )
    try:
        fleet.start()
        start = time.monotonic()
        conn.send({"kind": "started"})
        while (elapsed := time.monotonic() - start) < options.seconds:
            time.sleep(min(PROGRESS_EVERY_S, options.seconds - elapsed))
            conn.send({"kind": "progress", "totals": fleet.totals(), "label": f"{time.monotonic() - start:5.1f} s"})
        fleet.stop_sampling()
        for node in fleet.gateways:  # mailbox order: once status() answers, StopSampling has been handled
            ref = supervisor.ref(node)
            if ref is not None:
                ref.proxy().status().get(timeout=CONNECT_TIMEOUT_S)
        sampling_s = time.monotonic() - start
        conn.send({"kind": "progress", "totals": fleet.totals(), "label": "stopped", "stopped": True})
        deadline = time.monotonic() + options.drain_timeout_s
        while fleet.pending_frames() and time.monotonic() < deadline:
            time.sleep(0.02)
        conn.send(
            {
                "kind": "done",
                "totals": fleet.totals(),
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


def _store_figures(db_path: Path, stopped_ms: int) -> dict[str, Any]:
    """Accounting and timing, read back from the hub's database."""
    store = HubStore(db_path)
    try:
        accounting = store.reading_accounting()
        first_ms, last_ms, frames = store.conn.execute(
            "SELECT MIN(received_ms), MAX(received_ms), COUNT(*) FROM frames"
        ).fetchone()

        def committed_before(ms: int) -> int:
            """Readings of transactions that started before ``ms`` (``received_ms``: a transaction's start)."""
            row = store.conn.execute("SELECT COALESCE(SUM(readings), 0) FROM frames WHERE received_ms < ?", (ms,))
            return int(row.fetchone()[0])

        # Every transaction but the last started and committed between the first and the last
        # transaction's start, so dividing their readings by that span has no fencepost bias.
        whole = committed_before(last_ms)
        sampling = committed_before(stopped_ms)
    finally:
        store.close()
    span_s = ((last_ms or 0) - (first_ms or 0)) / 1000
    sampling_span_s = (stopped_ms - (first_ms or stopped_ms)) / 1000
    return {
        "accounting": accounting,
        "frames": int(frames),
        "store_span_s": round(span_s, 3),
        "readings_per_s": round(whole / span_s, 1) if span_s > 0 else 0.0,
        "readings_per_s_while_sampling": round(sampling / sampling_span_s, 1) if sampling_span_s > 0 else 0.0,
    }


@dataclass
class _RunState:
    """What the parent learns while the fleet runs."""

    hub_meter: CpuMeter
    broker_meter: CpuMeter
    restarts: int = 0
    stopped_ms: int = 0  # hub clock (wall ms) when the gateways had stopped sampling
    backlog_at_stop: int = 0  # readings generated but not yet acknowledged at that moment
    report: dict[str, Any] | None = None


def _follow_fleet(
    conn: Connection, sim: BaseProcess, hub: HubRole, broker: MosquittoBroker, options: IngestOptions, run: _RunState
) -> None:
    """Show the child's progress, restart the broker when asked, return once the child has drained."""
    started: float | None = None
    restart_at = options.seconds * RESTART_AT_FRACTION if options.restart_broker else None
    while run.report is None:
        if conn.poll(0.05):
            msg = conn.recv()
            if msg["kind"] == "started":
                started = time.monotonic()
                progress(f"fleet    {options.devices:,} devices behind {options.gateways} gateways started")
            elif msg["kind"] == "progress":
                totals = msg["totals"]
                if msg.get("stopped"):
                    run.stopped_ms = time.time_ns() // 1_000_000  # what the hub's RealClock stamps frames with
                    run.backlog_at_stop = int(totals["generated"]) - int(totals["acked_readings"])
                progress(
                    f"{msg['label']}  generated {totals['generated']:>11,}  acked {totals['acked_readings']:>11,}"
                    f"  stored {hub.settings.counters.readings:>11,}  waiting frames {totals['pending_frames']:>6}"
                )
            elif msg["kind"] == "done":
                run.report = msg
        elif not sim.is_alive():
            raise RuntimeError(f"the simulator process ended early (exit code {sim.exitcode})")
        if restart_at is not None and started is not None and time.monotonic() - started >= restart_at:
            restart_at = None
            run.broker_meter.sample()  # the old mosquitto's CPU: it cannot be asked once it has ended
            t = time.monotonic()
            broker.restart()
            run.restarts += 1
            for proc in children_named("mosquitto"):
                run.broker_meter.add(proc, born_inside=True)
            progress(f"broker   restarted (SIGTERM, same port, persistence on) in {time.monotonic() - t:.2f} s")


def measure_pymonitor(broker: MosquittoBroker, address: BrokerAddress, options: IngestOptions) -> dict[str, Any]:
    """Fleet (child process) -> mosquitto -> HubRole -> SQLite; every reading accounted for from the database."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="pm-bench-ingest-") as tmp:
        db_path = Path(tmp) / "hub.db"
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
        run = _RunState(CpuMeter(), CpuMeter())
        run.hub_meter.add(psutil.Process())
        for proc in children_named("mosquitto"):
            run.broker_meter.add(proc)
        wall0 = time.monotonic()
        ours, theirs = ctx.Pipe()
        sim = ctx.Process(target=_simulate, args=(theirs, address.host, address.port, options), name="bench-fleet")
        try:
            hub.start()
            if not hub.bridge.wait_connected(CONNECT_TIMEOUT_S):
                raise RuntimeError(f"the hub could not connect to {address}")
            sim.start()
            _follow_fleet(ours, sim, hub, broker, options, run)
            run.hub_meter.sample()
            run.broker_meter.sample()
            wall = time.monotonic() - wall0
            hub_peak_rss_mb = process_peak_rss_mb(psutil.Process())  # before the accounting queries below
            hub_counters = vars(hub.settings.counters).copy()
        finally:
            if sim.pid is not None:
                sim.join(30)
                if sim.is_alive():
                    sim.terminate()
                    sim.join(5)
            hub.stop()
            supervisor.stop_all()
            clock.stop()
        figures = _store_figures(db_path, run.stopped_ms)
    assert run.report is not None
    totals = run.report["totals"]
    sim_cpu_s = float(run.report["cpu_s"])  # the child's own rusage, taken once it had drained
    hub_cpu_s, broker_cpu_s = run.hub_meter.seconds(), run.broker_meter.seconds()
    accounting = figures["accounting"]
    generated = int(totals["generated"])
    offered = options.devices * len(METRICS) * options.speed / options.interval_s
    return {
        "readings_per_s": figures["readings_per_s"],
        "offered_readings_per_s": round(offered, 1),
        "readings_per_s_while_sampling": figures["readings_per_s_while_sampling"],
        "backlog_at_stop": run.backlog_at_stop,
        "saturated": run.backlog_at_stop > SATURATED_TICKS * offered * max(options.interval_s / options.speed, 0.5),
        "generated": generated,
        "stored": accounting["distinct"],
        "rows": accounting["rows"],
        "lost": generated - accounting["distinct"],
        "duplicates": accounting["duplicates"],
        "frames": figures["frames"],
        "store_span_s": figures["store_span_s"],
        "sampling_s": round(float(run.report["sampling_s"]), 3),
        "drain_s": round(float(run.report["drain_s"]), 3),
        "pending_frames_at_end": int(totals["pending_frames"]),
        "resent_frames": int(totals["resends"]),
        "evicted_readings": int(totals["evicted_readings"]),
        "duplicate_frames_dropped": int(hub_counters["duplicates"]),
        "hub_frames_refused": hub.frames_dropped,
        "broker_restarts": run.restarts,
        "cpu_percent": round((hub_cpu_s + broker_cpu_s + sim_cpu_s) / wall * 100, 1),
        "cpu_s": {"hub": round(hub_cpu_s, 2), "sim": round(sim_cpu_s, 2), "broker": round(broker_cpu_s, 2)},
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(hub_peak_rss_mb, 1),
        "sim_peak_rss_mb": round(float(run.report["peak_rss_mb"]), 1),
        "broker_peak_rss_mb": round(run.broker_meter.peak_rss_mb(), 1),
    }


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
    p = argparse.ArgumentParser(prog="pymonitor bench ingest", description=(__doc__ or "").split("\n\n")[0])
    add = p.add_argument
    add("--devices", type=int, default=80_000, help="simulated devices (default 80000)")
    add("--gateways", type=int, default=40, help="gateways they sit behind (default 40)")
    add("--interval", dest="interval_s", type=float, default=1.0, help="s between samples of a device (default 1)")
    add("--speed", type=float, default=1.0, help="simulator clock speed-up (default 1: real time)")
    add("--seconds", type=float, default=8.0, help="real seconds of sampling (default 8)")
    add("--max-rows-per-frame", type=int, default=4096, help="rows per gateway frame (default 4096)")
    add("--ack-timeout", dest="ack_timeout_s", type=float, default=30.0, help="real s before a resend (default 30)")
    add("--flush-interval-ms", type=int, default=200, help="hub flush timer (default 200)")
    add("--flush-max-frames", type=int, default=8, help="hub flush batch, frames (default 8)")
    add("--baseline-messages", type=int, default=50_000, help="baseline messages (default 50000)")
    add("--baseline-seconds", type=float, default=6.0, help="baseline publishing cap, s (default 6)")
    add("--baseline-window", type=int, default=500, help="baseline messages in flight (default 500)")
    add("--restart-broker", action="store_true", help="restart mosquitto partway through the run")
    add("--drain-timeout", dest="drain_timeout_s", type=float, default=60.0, help="max s to wait for every ack")
    add("--seed", type=int, default=1)
    add("--json", action="store_true", help="print only the JSON result on stdout")
    add("--out", type=Path, default=None, help="also write the JSON result to this file")
    ns = p.parse_args(argv)
    for name in ("devices", "gateways", "interval_s", "speed", "seconds", "max_rows_per_frame", "baseline_window"):
        if getattr(ns, name) <= 0:
            p.error(f"{name} must be positive")
    if ns.gateways > ns.devices:
        p.error("--gateways must not exceed --devices: a gateway needs a device")
    options = IngestOptions(**{f.name: getattr(ns, f.name) for f in fields(IngestOptions)})
    return options, ns


def main(argv: list[str] | None = None) -> int:
    """Run the baseline and the PyMonitor ingest on one fresh mosquitto; exit 1 if any reading was lost or doubled."""
    options, ns = parse_args(argv)
    t0 = time.monotonic()
    broker = MosquittoBroker(port=free_port())  # never 1883: a real broker may live there
    version = mosquitto_version(broker.binary)
    address = BrokerAddress(broker.host, broker.port)
    try:
        broker.start()
        progress(f"broker   mosquitto {version or '?'} on {broker.url}, persistence on")
        progress(f"baseline raw paho QoS 1, one {BASELINE_PAYLOAD.size}-byte message per reading")
        baseline = measure_baseline(address, options)
        progress(
            f"baseline {baseline.received:,} messages in {baseline.seconds:.2f} s: {baseline.msgs_per_s:,.0f} msgs/s"
        )
        offered = options.devices * len(METRICS) * options.speed / options.interval_s
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
        "mosquitto": version,
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
