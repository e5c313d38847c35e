"""Remote config after an outage: how soon a node that was offline applies what changed meanwhile.

A real mosquitto (started on a free port, or ``--broker mqtt://...``), the hub's config actor
and N simulated nodes, each with its own persistent MQTT session, all on one
:class:`NetworkLoop` thread; a few worker threads run the nodes' :class:`ConfigAgent` (verify,
merge, validate, write the TOML atomically, report). The nodes go offline, the hub changes one
key of their group's config, the nodes come back, and for each node the time from its
reconnect to the hub hearing its applied report is measured. Baseline, same run: the same
change with every node online (from the hub's change to each applied report).
"""

from __future__ import annotations

import argparse
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pymonitor.actors.configsync import generate_key, trusted_keys
from pymonitor.actors.configsync.hub_actor import (
    GetConfigStats,
    HubConfigRole,
    HubConfigSettings,
    PatchGroup,
    SetGroups,
)
from pymonitor.actors.configsync.node_actor import ConfigAgent
from pymonitor.actors.configsync.patch import PatchOp
from pymonitor.actors.configsync.service import Sent
from pymonitor.actors.runtime.clock import RealClock
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, NetworkLoop, topics
from pymonitor.messages import decode_unpacked
from pymonitor.messages.config import ConfigReport

from .common import bench_broker, emit_result, own_peak_rss_mb, progress, python_version

FLEET = "cfgbench"
GROUP = "field"
TARGET_S = 5.0
"""Issue 7: a partial update queued for an offline node is applied within 5 s of its reconnect."""


@dataclass
class Reports:
    """What the hub hears, timed on arrival: the first applied report per (node, version), refusals counted."""

    applied_at: dict[tuple[str, int], float] = field(default_factory=dict)
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_frame(self, topic: str, payload: bytes) -> None:
        report = decode_unpacked(payload)
        if not isinstance(report, ConfigReport):
            return
        now = time.monotonic()
        with self.lock:
            if report.status == "applied":
                self.applied_at.setdefault((report.node, report.version), now)
            else:
                self.rejected += 1
                self.reasons[report.reason] = self.reasons.get(report.reason, 0) + 1

    def count(self, targets: dict[str, int]) -> int:
        with self.lock:
            return sum((node, v) in self.applied_at for node, v in targets.items())


class Fleet:
    """N nodes: one MQTT session each on one network thread, their agents on a few workers."""

    def __init__(self, address: BrokerAddress, work: Path, names: list[str], key_pub: Any, workers: int) -> None:
        self.address = address
        self.loop = NetworkLoop("config-bench-nodes")
        self.agents: dict[str, ConfigAgent] = {}
        trusted = trusted_keys([key_pub])
        for name in names:
            toml = work / f"{name}.toml"
            toml.write_text(f'[node]\nname = "{name}"\nfleet = "{FLEET}"\n\n[broker]\nurl = "auto"\n')
            self.agents[name] = ConfigAgent(toml, work / f"{name}.state", trusted)
        self.bridges: dict[str, MqttBridge] = {}
        self.connected_at: dict[str, float] = {}
        self.queues: list[queue.Queue[tuple[str, str, bytes] | None]] = [queue.Queue() for _ in range(workers)]
        self.threads = [threading.Thread(target=self._work, args=(q,), daemon=True) for q in self.queues]
        for thread in self.threads:
            thread.start()
        self.handler_errors = 0

    def _work(self, inbox: queue.Queue[tuple[str, str, bytes] | None]) -> None:
        while (item := inbox.get()) is not None:
            name, topic, payload = item
            try:
                for up_topic, frame in self.agents[name].handle(topic, payload, time.time_ns() // 1_000_000):
                    self.bridges[name].publish(up_topic, frame)
            except Exception:  # counted; one node's failure must not stop the others
                self.handler_errors += 1

    def _handler(self, name: str, index: int) -> Callable[[str, bytes], None]:
        inbox = self.queues[index % len(self.queues)]  # one worker per node: its frames stay in order
        return lambda topic, payload: inbox.put((name, topic, payload))

    def _connected(self, name: str) -> Callable[[int], None]:
        def record(connects: int) -> None:
            self.connected_at[name] = time.monotonic()

        return record

    def connect(self) -> None:
        """(Re)connect every node with a fresh client on its persistent session, as a restarted node does."""
        self.connected_at.clear()
        for i, (name, agent) in enumerate(self.agents.items()):
            options = BridgeOptions(
                client_id=f"{FLEET}.{name}.config",
                subscriptions=[agent.topic],
                on_connected=self._connected(name),
                loop=self.loop,
            )
            self.bridges[name] = MqttBridge(self.address, options, self._handler(name, i))
            self.bridges[name].start()

    def disconnect(self) -> None:
        for bridge in self.bridges.values():
            bridge.stop()

    def close(self) -> None:
        self.disconnect()
        for inbox in self.queues:
            inbox.put(None)
        for thread in self.threads:
            thread.join(5)
        self.loop.stop()


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _targets(sent: list[Sent]) -> dict[str, int]:
    return {s.node: s.state.version for s in sent}


def _quantiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    arr = np.asarray(values)
    return (round(float(np.quantile(arr, 0.5)), 3), round(float(np.quantile(arr, 0.99)), 3), round(float(arr.max()), 3))


def measure(
    address: BrokerAddress, work: Path, nodes: int, *, workers: int = 8, timeout_s: float = 60.0
) -> dict[str, Any]:
    """The whole scenario against one broker; every figure in seconds of wall time."""
    key = generate_key()
    names = [f"n{i:05d}" for i in range(nodes)]
    clock = RealClock()
    supervisor = Supervisor(clock)
    reports = Reports()
    observer = MqttBridge(
        address,
        BridgeOptions(
            client_id=f"{FLEET}.observer", subscriptions=[topics.fleet_filter(FLEET, "ack")], clean_session=True
        ),
        reports.on_frame,
    )
    hub = HubConfigRole(
        HubConfigSettings(FLEET, work / "config.db", key),
        node="hub",
        address=address,
        clock=clock,
        supervisor=supervisor,
    )
    fleet = Fleet(address, work, names, key.public_key(), workers)
    try:
        observer.start()
        hub.start()
        if not (observer.wait_connected(timeout_s) and hub.bridge.wait_connected(timeout_s)):
            raise RuntimeError(f"no connection to the broker at {address.host}:{address.port}")
        fleet.connect()
        _wait(lambda: len(fleet.connected_at) == nodes, timeout_s)
        progress(f"nodes    {len(fleet.connected_at)}/{nodes} connected")
        first: dict[str, int] = {}
        for name in names:
            first.update(_targets(hub.ask(SetGroups(name, [GROUP]))))
        _wait(lambda: reports.count(first) == nodes, timeout_s)

        # baseline: a one-key change with every node online
        t0 = time.monotonic()
        online = _targets(hub.ask(PatchGroup(GROUP, [PatchOp(op="set", path="clock.speed", value=1.5)])))
        _wait(lambda: reports.count(online) == nodes, timeout_s)
        online_s = [reports.applied_at[(n, v)] - t0 for n, v in online.items() if (n, v) in reports.applied_at]
        progress(f"online   {len(online_s)}/{nodes} applied")

        # the outage: nodes gone (sessions kept by the broker), a one-key change, nodes back
        fleet.disconnect()
        published = hub.bridge.counters.published
        queued = _targets(hub.ask(PatchGroup(GROUP, [PatchOp(op="set", path="clock.speed", value=2.0)])))
        _wait(lambda: hub.bridge.counters.puback >= published + len(queued), timeout_s)
        lagging_offline = len(hub.ask(GetConfigStats())["lagging"])
        fleet.connect()
        _wait(lambda: reports.count(queued) == nodes, timeout_s)
        after = [
            reports.applied_at[(n, v)] - fleet.connected_at[n]
            for n, v in queued.items()
            if (n, v) in reports.applied_at and n in fleet.connected_at
        ]
        connects = sorted(fleet.connected_at.values())
        _wait(lambda: not hub.ask(GetConfigStats())["lagging"], 5.0)
        stats = hub.ask(GetConfigStats())
        files_ok = sum(agent.config.clock.speed == 2.0 for agent in fleet.agents.values())
    finally:
        fleet.close()
        hub.stop()
        observer.stop()
        supervisor.stop_all()
        clock.stop()
    p50, p99, worst = _quantiles(after)
    b50, b99, _ = _quantiles(online_s)
    return {
        "nodes": nodes,
        "applied": len(after),
        "rejected": reports.rejected,
        "rejected_reasons": reports.reasons,
        "apply_after_reconnect_p50_s": p50,
        "apply_after_reconnect_p99_s": p99,
        "apply_after_reconnect_max_s": worst,
        "online_apply_p50_s": b50,
        "online_apply_p99_s": b99,
        "reconnect_spread_s": round(connects[-1] - connects[0], 3) if connects else None,
        "lagging_while_offline": lagging_offline,
        "lagging_after": len(stats["lagging"]),
        "hub_reports": stats["counters"]["reports"],
        "configs_on_disk_ok": files_ok,
        "handler_errors": fleet.handler_errors,
        "workers": workers,
    }


def run(
    nodes: int = 200,
    broker: str = "mosquitto",
    *,
    workers: int = 8,
    timeout_s: float = 60.0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """The scenario on a mosquitto started on a free port (``broker="mosquitto"``) or an mqtt:// URL."""
    tmp = tempfile.TemporaryDirectory(prefix="pm-config-bench-") if workdir is None else None
    work = Path(tmp.name) if tmp is not None else workdir
    assert work is not None
    t0 = time.perf_counter()
    try:
        with bench_broker(broker, work) as address:
            (work / "nodes").mkdir(parents=True, exist_ok=True)
            result = measure(address, work / "nodes", nodes, workers=workers, timeout_s=timeout_s)
    finally:
        if tmp is not None:
            tmp.cleanup()
    p99 = result["apply_after_reconnect_p99_s"]
    return {
        "bench": "config_sync",
        **result,
        "target_s": TARGET_S,
        "within_target": p99 is not None and p99 <= TARGET_S and result["applied"] == nodes,
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_rss_mb": round(own_peak_rss_mb(), 1),
        "python": python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    """Exit 1 unless every node applied the change and the p99 after reconnect is within 5 s."""
    parser = argparse.ArgumentParser(prog="pymonitor bench config_sync", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200, help="simulated nodes, one MQTT session each (default 200)")
    parser.add_argument("--broker", default="mosquitto", help="'mosquitto' (start one) or an mqtt:// URL")
    parser.add_argument("--workers", type=int, default=8, help="threads running the nodes' agents (default 8)")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up waiting for a phase after this many s")
    parser.add_argument("--json", action="store_true", help="accepted for symmetry: the last stdout line is JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.workers < 1 or args.timeout <= 0:
        parser.error("--nodes and --workers must be at least 1, --timeout positive")
    result = run(args.nodes, args.broker, workers=args.workers, timeout_s=args.timeout)
    emit_result(result, out=args.out)
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
