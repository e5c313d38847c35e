"""``pymonitor bench fleet --seed N --json``: every fleet-health role's bench for one seed, plus the fleet queries
and the live stream.

Three parts, all seeded by ``--seed``:

1. Each role's own bench (``bench/fleet_battery.py``, ``fleet_calibration``, ``fleet_firmware``,
   ``fleet_environment``, ``fleet_gateways``); their headline keys are copied to the top level.
2. ``query_p99_ms``: a 10,000-device fleet (``--days`` of battery, temperature, humidity and
   vibration readings every 4 h, failures, firmware reports, an inventory with reach labels) is
   written into a real SQLite hub store by direct inserts; every role analyses it once, as its
   actor does each tick, keeping its answer beside the store (``role_analysis_s``); then every
   ``pymonitor fleet ROLE`` answer (``answers.ask``, the CLI's defaults, fresh connections) is
   timed ``--queries`` times each: p99 over all. ``query_fresh_p99_ms``: the same with ``--fresh``
   (computed from the store's readings), ``--fresh-queries`` times each.
3. ``live_backlog_growth``: the five role actors (supervised, each with its bounded inbox, analysing
   the store above every ``--analyse-every`` s) are fed a real-time (not accelerated) stream of
   1,000 readings/s (250 rows x 4 metrics) from 10,000 devices, plus their firmware reports, for
   ``--live-s`` seconds. Each role's inbox depth is sampled every 0.25 s; its growth is the
   least-squares slope of depth over time plus what it dropped per second (readings/s); the key
   is the worst role's. Then a burst shows each role's drain rate (headroom).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pymonitor.actors.fleet_roles import (
    FleetRoles,
    store_roles,
)
from pymonitor.actors.fleet_roles.answers import ask
from pymonitor.actors.fleet_roles.service import ROLE_OPTIONS
from pymonitor.actors.runtime.clock import RealClock
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.messages import Event, ReadingBatch
from pymonitor.simulators.health.battery import BatteryScenario
from pymonitor.store.hub_store import HubStore

from .common import emit_result, own_cpu_s, progress, python_version

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
METRICS = ("battery_v", "temperature_c", "humidity_pct", "vibration_g")
ROLE_BENCHES = {
    "battery": ("fleet_battery", ("battery_within_15pct",)),
    "calibration": ("fleet_calibration", ("drift_recall_2pct", "drift_false_alarm_rate")),
    "firmware": ("fleet_firmware", ("firmware_detect_max_s",)),
    "environment": ("fleet_environment", ("environment_s",)),
    "gateways": ("fleet_gateways", ("gateways_s",)),
}
SMALL = {"devices": 300, "gateways": 20, "days": 30, "hours": 12}
"""Sizes a role bench is run with under ``--small`` (smoke tests), where its run() takes them."""


# --- the query fleet ---------------------------------------------------------------------------


class StoreWriter:
    """Direct inserts into a real hub store (devices, metrics, readings, inventory, events), one transaction."""

    def __init__(self, path: Path) -> None:
        self.store = HubStore(path)
        self.conn = self.store.conn
        self.conn.execute("BEGIN")
        self._devices: dict[str, int] = {}
        self._metrics: dict[str, int] = {}

    def device_ids(self, names: Sequence[str]) -> list[int]:
        new = [n for n in dict.fromkeys(names) if n not in self._devices]
        start = len(self._devices) + 1
        self.conn.executemany("INSERT INTO devices(id, name) VALUES (?, ?)", enumerate(new, start))
        self._devices.update((n, start + k) for k, n in enumerate(new))
        return [self._devices[n] for n in names]

    def readings(self, metric: str, devices: Sequence[str], ts_ms: Sequence[int], values: Sequence[float]) -> None:
        """One metric's readings, row by row (``devices[i]`` at ``ts_ms[i]``)."""
        if metric not in self._metrics:
            self._metrics[metric] = len(self._metrics) + 1
            self.conn.execute("INSERT INTO metrics(id, name) VALUES (?, ?)", (self._metrics[metric], metric))
        ids = self.device_ids(devices)
        self.conn.executemany(
            "INSERT INTO readings(device_id, metric_id, ts_ms, value, device_seq) VALUES (?, ?, ?, ?, 0)",
            zip(ids, [self._metrics[metric]] * len(ids), ts_ms, values, strict=True),
        )

    def inventory(self, rows: Sequence[dict[str, Any]], updated_ms: int = 0) -> None:
        """Rows with device, gateway, site and optionally location, battery_type, model, firmware, labels."""
        ids = self.device_ids([r["device"] for r in rows])
        self.conn.executemany(
            "INSERT INTO inventory(device_id, gateway, site, location, battery_type, model, firmware, labels,"
            " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    r["gateway"],
                    r["site"],
                    r.get("location"),
                    r.get("battery_type"),
                    r.get("model"),
                    r.get("firmware"),
                    orjson.dumps(r.get("labels", {})).decode(),
                    updated_ms,
                )
                for i, r in zip(ids, rows, strict=True)
            ],
        )

    def events(self, kind: str, rows: Sequence[tuple[str, int, dict[str, Any]]]) -> None:
        """Events of one kind: (source, ts_ms, details) each."""
        self.conn.executemany(
            "INSERT INTO events(node, ts_ms, received_ms, kind, severity, source, message, labels, details)"
            " VALUES ('bench', ?, ?, ?, 'info', ?, '', '{}', ?)",
            [(ts, ts, kind, source, orjson.dumps(details).decode()) for source, ts, details in rows],
        )

    def close(self) -> None:
        self.conn.execute("COMMIT")
        self.store.close()


def build_store(path: Path, seed: int, devices: int, days: int) -> dict[str, Any]:
    """A seeded fleet's history and inventory written into a hub store at ``path``; what went in."""
    scenario = BatteryScenario.generate(seed, devices=devices, days=days, extra_days=60)
    rng = np.random.default_rng(seed + 7_000)
    meta, h = scenario.meta, scenario.history
    n = len(meta.devices)
    w = StoreWriter(path)
    rows, cols = np.nonzero(h.present & np.isfinite(h.voltage) & np.isfinite(h.temp_c))
    names = [meta.devices[i] for i in rows.tolist()]
    ts = h.ts_ms[rows, cols].tolist()
    location_rh = rng.uniform(35.0, 75.0, n)
    machine = rng.random(n) < 0.1
    values = {
        "battery_v": h.voltage[rows, cols],
        "temperature_c": h.temp_c[rows, cols],
        "humidity_pct": np.clip(location_rh[rows] + rng.normal(0, 2.0, rows.shape), 1.0, 99.0),
        "vibration_g": np.abs(np.where(machine[rows], 0.3, 0.02) + rng.normal(0, 0.01, rows.shape)),
    }
    for metric in METRICS:
        w.readings(metric, names, ts, values[metric].tolist())
    failed = np.flatnonzero(rng.random(n) < np.where(machine, 0.08, 0.02))
    fail_ts = scenario.start_ms + rng.integers(0, days * DAY_MS, failed.shape[0])
    w.readings("failure", [meta.devices[i] for i in failed.tolist()], fail_ts.tolist(), [1.0] * failed.shape[0])
    sites = sorted(set(meta.sites))
    site_pos = {s: i for i, s in enumerate(sites)}
    gateway = [f"gw-{s}" for s in meta.sites]  # one gateway per site; each device also hears the next site's
    neighbour = [f"gw-{sites[(site_pos[s] + 1) % len(sites)]}" for s in meta.sites]
    quality = rng.uniform(0.4, 0.8, n).tolist()
    w.inventory(
        [
            {
                "device": meta.devices[i],
                "gateway": gateway[i],
                "site": meta.sites[i],
                "location": meta.locations[i],
                "battery_type": meta.chemistries[i],
                "model": "TH-200",
                "firmware": "1.3.1",
                "labels": {
                    "criticality": str(int(meta.criticality[i])),
                    "reach": f"{gateway[i]}:0.9 {neighbour[i]}:{quality[i]:.2f}",
                },
            }
            for i in range(n)
        ],
        updated_ms=scenario.start_ms,
    )
    hash_of = {"1.3.1": "h131", "1.4.3": "h143", "1.4.4-dev.1": "hdev"}
    changed = np.flatnonzero(rng.random(n) < 0.01).tolist()
    reports = [(d, scenario.start_ms + 60_000, "1.3.1") for d in meta.devices]
    reports += [(meta.devices[i], scenario.now_ms - HOUR_MS, "1.4.4-dev.1" if i % 3 == 0 else "1.4.3") for i in changed]
    w.events("firmware.report", [(d, t, {"version": v, "image_hash": hash_of[v]}) for d, t, v in reports])
    w.close()
    return {
        "devices": n,
        "days": days,
        "readings": int(rows.shape[0]) * len(METRICS) + int(failed.shape[0]),
        "firmware_reports": len(reports),
        "now_ms": scenario.now_ms,
        "devices_names": meta.devices,
    }


def analyse_once(path: Path, now_ms: int) -> dict[str, float]:
    """Each role's analysis as its actor runs it (every row, the answer kept beside the store); seconds each."""
    seconds: dict[str, float] = {}
    for name, make in store_roles(path, "bench").items():
        role = make()
        start = time.perf_counter()
        role.analyse(now_ms)
        seconds[name] = round(time.perf_counter() - start, 2)
    return seconds


Timings = tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[str]]]


def _timed(call: Callable[[str], dict[str, Any]], repeats: int) -> Timings:
    """Wall and CPU ms of ``call(role)``, ``repeats`` times round the roles; and the answers' sources."""
    wall: dict[str, list[float]] = {name: [] for name in ROLE_OPTIONS}
    cpu: dict[str, list[float]] = {name: [] for name in ROLE_OPTIONS}
    sources: dict[str, list[str]] = {name: [] for name in ROLE_OPTIONS}
    for _ in range(repeats):
        for name in ROLE_OPTIONS:
            start, cpu_start = time.perf_counter(), time.process_time()
            answer = call(name)
            wall[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((time.process_time() - cpu_start) * 1000)
            sources[name].append(answer["source"]["kind"])
    return wall, cpu, sources


def _p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def time_queries(path: Path, now_ms: int, repeats: int, fresh_repeats: int) -> dict[str, Any]:
    """The CLI's answer path (``answers.ask``, a fresh connection each call, as each command opens one).

    First every role analyses the store once, as its actor does on each tick; then each command is
    timed ``repeats`` times as it runs beside a hub with its roles (the stored answer, cut to the
    CLI's limit), and ``fresh_repeats`` times with ``--fresh`` (computed from the store). Wall time
    is the figure; CPU time (this process) is reported next to it because the machine is shared.
    """
    analysis_s = analyse_once(path, now_ms)
    wall, cpu, sources = _timed(lambda role: ask(path, role, ROLE_OPTIONS[role]()), repeats)
    if any(kind != "role" for kinds in sources.values() for kind in kinds):
        raise RuntimeError(f"a query was not served from its role's answer: {sources}")
    fresh_wall, fresh_cpu, _ = _timed(
        lambda role: ask(path, role, ROLE_OPTIONS[role](), fresh=True, clock=lambda: now_ms), fresh_repeats
    )
    every = [ms for times in wall.values() for ms in times]
    fresh_every = [ms for times in fresh_wall.values() for ms in times]
    return {
        "query_p99_ms": _p(every, 99),
        "query_p50_ms": _p(every, 50),
        "query_cpu_p99_ms": _p([ms for times in cpu.values() for ms in times], 99),
        "query_ms_by_role": {
            n: {"p50": _p(t, 50), "max": round(max(t), 1), "cpu_p50": _p(cpu[n], 50)} for n, t in wall.items()
        },
        "queries": len(every),
        "role_analysis_s": analysis_s,
        "query_fresh_p99_ms": _p(fresh_every, 99) if fresh_every else None,
        "query_fresh_ms_by_role": {
            n: {"p50": _p(t, 50), "max": round(max(t), 1), "cpu_p50": _p(fresh_cpu[n], 50)}
            for n, t in fresh_wall.items()
            if t
        },
        "fresh_queries": len(fresh_every),
    }


# --- the live stream ---------------------------------------------------------------------------


def _batches(devices: tuple[str, ...], now_ms: int, rows: int, seq: int, rng: np.random.Generator) -> ReadingBatch:
    pick = rng.choice(len(devices), rows, replace=rows > len(devices))
    names = [devices[i] for i in pick.tolist()]
    return ReadingBatch.build(
        node="bench-gw",
        session=1,
        seq=seq,
        devices=names,
        metrics=list(METRICS),
        device_index=list(range(rows)),
        device_seq=[seq] * rows,
        ts_ms=[now_ms] * rows,
        values=[
            rng.uniform(3.3, 3.6, rows).tolist(),
            rng.uniform(5, 30, rows).tolist(),
            rng.uniform(30, 70, rows).tolist(),
            rng.uniform(0, 0.1, rows).tolist(),
        ],
    )


def _slope(t: list[float], depth: list[int]) -> float:
    if len(t) < 2:
        return 0.0
    x = np.asarray(t) - t[0]
    return float(np.polyfit(x, np.asarray(depth, dtype=np.float64), 1)[0])


class ShiftedClock(RealClock):
    """Real time (speed 1), shifted to start at ``start_ms``: a live run against a stored fleet's history."""

    def __init__(self, start_ms: int) -> None:
        super().__init__()
        self._shift_ms = start_ms - super().now_ms()

    def now_ms(self) -> int:
        return super().now_ms() + self._shift_ms


def live(
    path: Path, devices: tuple[str, ...], seconds: float, rate: int, analyse_every_s: float, seed: int, start_ms: int
) -> dict[str, Any]:
    """Real-time feed of ``rate`` readings/s into the five role actors; backlog slope and drops per role."""
    clock = ShiftedClock(start_ms)  # real time from the store's "now": analyses find the fleet's data
    supervisor = Supervisor(clock)
    raised: list[Event] = []
    lock = threading.Lock()

    def sink(event: Event) -> None:
        with lock:
            raised.append(event)

    roles = FleetRoles(supervisor, clock, store_roles(path, "bench"), sink, analyse_every_s=analyse_every_s)
    try:
        roles.start()
        measured = _feed(roles, devices, seconds, rate, seed, clock)
        burst = _burst(roles, devices, clock.now_ms(), np.random.default_rng(seed + 1))
        stats = roles.stats()
    finally:
        roles.stop()
        supervisor.stop_all()
        clock.stop()
    growth = measured.pop("growth")
    return {
        "live_backlog_growth": max(growth.values()),
        "live_feed": "real time (not accelerated), paced in 10 batches/s",
        **measured,
        "live_growth_by_role": growth,
        "live_failures_by_role": {n: s.get("failures", 0) for n, s in stats.items() if isinstance(s, dict)},
        "live_events_raised": len(raised),
        "live_event_kinds": sorted({e.kind for e in raised}),
        "live_analyses_by_role": {
            n: (s["role"] or {}).get("counts", {}).get("analyses", 0) for n, s in stats.items() if isinstance(s, dict)
        },
        "drain_readings_per_s_by_role": burst,
    }


def _feed(
    roles: FleetRoles, devices: tuple[str, ...], seconds: float, rate: int, seed: int, clock: ShiftedClock
) -> dict[str, Any]:
    """Offer ``rate`` readings/s for ``seconds``; sample every inbox's depth at each tick."""
    rng = np.random.default_rng(seed)
    ticks_per_s = 10
    rows = max(1, rate // len(METRICS) // ticks_per_s)
    samples: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name in roles.inboxes}
    seq = 0
    cpu0, start = own_cpu_s(), time.perf_counter()
    next_tick = start
    while (now := time.perf_counter()) - start < seconds:
        if now >= next_tick:
            seq += 1
            roles.offer(_batches(devices, clock.now_ms(), rows, seq, rng))
            if seq % 2 == 0:  # 10,000 devices every 15 min: about 11 firmware reports a second
                device = devices[int(rng.integers(len(devices)))]
                roles.offer(_report(device, clock.now_ms()))
            for name, inbox in roles.inboxes.items():
                samples[name][0].append(now - start)
                samples[name][1].append(inbox.depth)
            next_tick += 1 / ticks_per_s
        time.sleep(max(0.0, min(next_tick - time.perf_counter(), 0.05)))
    spent = time.perf_counter() - start
    growth = {}
    for name, inbox in roles.inboxes.items():
        t, depth = samples[name]
        growth[name] = round(max(0.0, _slope(t, depth)) + inbox.stats.dropped_readings / spent, 2)
    return {
        "growth": growth,
        "live_dropped_by_role": {n: inbox.stats.dropped_readings for n, inbox in roles.inboxes.items()},
        "live_peak_depth_by_role": {n: inbox.stats.peak_readings for n, inbox in roles.inboxes.items()},
        "live_readings_per_s": round(seq * rows * len(METRICS) / spent),
        "live_s": round(spent, 1),
        "live_cpu_s": round(own_cpu_s() - cpu0, 2),
    }


def _report(device: str, now_ms: int) -> Event:
    return Event(
        node="bench-gw",
        ts_ms=now_ms,
        kind="firmware.report",
        severity="info",
        message="",
        source=device,
        details={"version": "1.3.1", "image_hash": "h131"},
    )


def _burst(roles: FleetRoles, devices: tuple[str, ...], now_ms: int, rng: np.random.Generator) -> dict[str, int]:
    """Offer 100,000 readings at once; each reading role's drain rate (readings/s) until its inbox is empty."""
    readers = [name for name in roles.inboxes if name != "firmware"]  # firmware takes reports, not readings
    start = time.perf_counter()
    for seq in range(100):
        roles.offer(_batches(devices, now_ms, 250, 10_000 + seq, rng))
    total = 100 * 250 * len(METRICS)
    done: dict[str, int] = {}
    deadline = start + 120
    while len(done) < len(readers) and time.perf_counter() < deadline:
        for name in readers:
            if name not in done and roles.inboxes[name].depth == 0:
                done[name] = round(total / max(time.perf_counter() - start, 1e-6))
        time.sleep(0.005)
    return done


# --- the role benches ----------------------------------------------------------------------------


def role_bench(name: str, seed: int, small: bool) -> dict[str, Any] | None:
    """The role's own bench result; None when its module is not there (yet)."""
    module_name, _ = ROLE_BENCHES[name]
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
    except ModuleNotFoundError:
        return None
    run: Callable[..., dict[str, Any]] = module.run
    kwargs = {k: v for k, v in SMALL.items() if small and k in inspect.signature(run).parameters}
    start = time.perf_counter()
    result = run(seed, **kwargs)
    result["bench_s"] = round(time.perf_counter() - start, 2)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"bench": "fleet", "seed": args.seed, "small": args.small}
    roles: dict[str, Any] = {}
    for name, (_, keys) in ROLE_BENCHES.items():
        progress(f"fleet: {name} bench (seed {args.seed})")
        found = role_bench(name, args.seed, args.small)
        roles[name] = found
        for key in keys:
            result[key] = None if found is None else found.get(key)
    result["missing_role_benches"] = [n for n, r in roles.items() if r is None]
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        path = Path(tmp) / "hub.db"
        progress(f"fleet: writing a {args.devices:,}-device store ({args.days} days)")
        t0 = time.perf_counter()
        fleet = build_store(path, args.seed, args.devices, args.days)
        result["store"] = {k: v for k, v in fleet.items() if k != "devices_names"}
        result["store"]["build_s"] = round(time.perf_counter() - t0, 1)
        result["store"]["file_mb"] = round(path.stat().st_size / 1e6, 1)
        progress(f"fleet: timing queries ({args.queries} of each role, {args.fresh_queries} with --fresh)")
        result.update(time_queries(path, fleet["now_ms"], args.queries, args.fresh_queries))
        progress(f"fleet: live stream {args.rate} readings/s for {args.live_s} s")
        result.update(
            live(path, fleet["devices_names"], args.live_s, args.rate, args.analyse_every, args.seed, fleet["now_ms"])
        )
    result["roles"] = roles
    result["python"] = python_version()
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pymonitor bench fleet", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--json", action="store_true", help="Accepted for symmetry: the result is always JSON.")
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--queries", type=int, default=40, help="Timed calls of each role's query.")
    p.add_argument("--fresh-queries", type=int, default=3, help="Timed calls of each with --fresh.")
    p.add_argument("--live-s", type=float, default=30.0)
    p.add_argument("--rate", type=int, default=1_000, help="Readings/s of the live feed.")
    p.add_argument("--analyse-every", type=float, default=10.0, help="Seconds between each role's analyses.")
    p.add_argument("--small", action="store_true", help="Role benches at smoke-test sizes.")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emit_result(run(args), out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
