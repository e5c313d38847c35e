"""The rollout benchmark: a fleet rollout over a real mosquitto, at 100,000 devices, and a bad version.

Three measurements in one run, one JSON object:

- ``devices``/``completed``/``wall_s``: a rollout of ``devices`` simulated devices over a real
  broker (mosquitto started on a free port, or ``--broker mqtt://...``). Devices live in a few
  paho clients, one per ``--per-node`` devices, all on one :class:`NetworkLoop` thread; each
  client is a node subscribed to its own ``.../down/cmd/rollout`` and answers with batched
  ``rollout.report`` events. The hub side is one more client, the :class:`RolloutEngine`, and a
  :class:`RolloutStore` saved on every tick. Commands are ed25519-signed and verified per node.
- ``devices_100k_completed``: the pure engine on a simulated clock with 100,000 devices answering
  after random latencies (some fail, some never answer), state saved to SQLite on every tick.
- ``baseline_unbatched_wall_s``: the same rollout with one signed frame per device (``ratio``).
- ``restart_*``: the same rollout with the hub stopped halfway and a new one carrying on from the
  state file (persistent MQTT session): no device may be commanded twice.
- ``bad_version``: health fails on 10 % of the canary; the rollout must abort, every changed
  device must confirm its rollback (``rolled_back == changed``) and none stay on the bad version.

``apply_after_reconnect_p99_s`` belongs to the config-sync bench and is reported as None here.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import queue
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pymonitor.actors.configsync import ReplayGuard, SignatureError, generate_key, trusted_keys
from pymonitor.actors.rollout import (
    GatePolicy,
    RolloutEngine,
    RolloutError,
    RolloutHost,
    RolloutSpec,
    RolloutStore,
    Signer,
    WavePlan,
    decode_commands,
    encode_reports,
    select_targets,
)
from pymonitor.actors.rollout.wire import MAX_BATCH
from pymonitor.broker import (
    BridgeOptions,
    MqttBridge,
    NetworkLoop,
    topics,
)
from pymonitor.broker.url import BrokerAddress

from .common import bench_broker, emit_result, own_cpu_s, own_peak_rss_mb, progress, python_version

FLEET = "bench"
HUB_NODE = "rollout-hub"
OLD, NEW = "1.0.0", "2.0.0"
TICK_S = 0.02
CONNECT_TIMEOUT_S = 30.0


def device_name(node: int, device: int) -> str:
    return f"gw{node:03d}-d{device:05d}"


def node_of(device: str) -> str:
    return device.split("-", 1)[0]


def make_inventory(devices: int, per_node: int) -> dict[str, dict[str, str]]:
    return {device_name(i // per_node, i): {"version": OLD, "fleet": FLEET} for i in range(devices)}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rollout_spec(rollout_id: str, *, canary: int, concurrency: int, soak_ms: int, timeout_ms: int) -> RolloutSpec:
    return RolloutSpec(
        rollout_id=rollout_id,
        target_version=NEW,
        waves=WavePlan(canary=canary, percentages=(1, 5, 25, 100)),
        gates=GatePolicy(min_success_rate=0.95, soak_ms=soak_ms, abort_min_executed=50),
        concurrency=concurrency,
        timeout_ms=timeout_ms,
    )


@dataclass
class SimFleet:
    """Devices answering rollout commands, one paho client per node, all driven by one network thread."""

    address: BrokerAddress
    nodes: list[str]
    trusted: dict[str, Any]
    health_fail: set[str]
    versions: dict[str, str] = field(default_factory=dict)
    applies: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    loop: NetworkLoop = field(default_factory=lambda: NetworkLoop("rollout-fleet"))
    bridges: list[MqttBridge] = field(default_factory=list)

    def start(self) -> None:
        for node in self.nodes:
            guard = ReplayGuard()
            holder: list[MqttBridge] = []
            ready = encode_reports(node, "ready", [], fleet=FLEET, now_ms=0)

            def announce(_connects: int, holder: list[MqttBridge] = holder, ready: tuple[str, bytes] = ready) -> None:
                # Published after the SUBSCRIBE on the same connection: once the hub hears it, the node listens.
                holder[0].publish(*ready)

            options = BridgeOptions(
                client_id=f"{FLEET}-{node}",
                clean_session=True,
                subscriptions=[topics.command(FLEET, node, "rollout")],
                loop=self.loop,
                on_connected=announce,
            )
            bridge = MqttBridge(self.address, options, self._handler(node, guard, holder))
            holder.append(bridge)
            self.bridges.append(bridge)
            bridge.start()

    def _handler(self, node: str, guard: ReplayGuard, holder: list[MqttBridge]) -> Callable[[str, bytes], None]:
        def on_frame(topic: str, payload: bytes) -> None:
            stamp = now_ms()
            try:
                cmds = decode_commands(payload, trusted=self.trusted, replay=guard, now_ms=stamp)
            except (RolloutError, SignatureError):
                self.refused += 1
                return
            reports = []
            for device, version in cmds.apply:
                self.versions[device] = version
                self.applies[device] += 1
                reports.append((device, "health_failed" if device in self.health_fail else "applied", version))
            for device, version in cmds.rollback:
                self.versions[device] = version
                reports.append((device, "rolled_back", version))
            holder[0].publish(*encode_reports(node, cmds.rollout_id, reports, fleet=FLEET, now_ms=stamp))

        return on_frame

    def stop(self) -> None:
        for bridge in self.bridges:
            bridge.stop()
        self.loop.stop()


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.01)


def broker_rollout(
    address: BrokerAddress,
    *,
    devices: int,
    per_node: int,
    rollout_id: str,
    health_fail_share: float,
    db_path: Path,
    canary: int,
    concurrency: int,
    soak_ms: int,
    timeout_ms: int,
    max_s: float,
    max_batch: int = MAX_BATCH,
    restart_at_applied: int | None = None,
) -> dict[str, Any]:
    """One rollout through the broker; returns what the engine and the devices ended with.

    ``max_batch=1`` is the baseline: one signed command frame and one report frame per device.
    ``restart_at_applied``: once that many devices applied, the hub stops (disconnects, saves,
    drops its engine) and a new one carries on from the state file; its MQTT session is
    persistent, so the broker keeps the reports sent meanwhile.
    """
    inventory = make_inventory(devices, per_node)
    spec = rollout_spec(rollout_id, canary=canary, concurrency=concurrency, soak_ms=soak_ms, timeout_ms=timeout_ms)
    targets = select_targets(inventory, spec.selector)
    sick_every = round(1 / health_fail_share) if health_fail_share else 0
    health_fail = set(targets[: min(canary, len(targets))][::sick_every]) if sick_every else set()
    key = generate_key()
    store = RolloutStore(db_path)
    host = RolloutHost(store, fleet=FLEET, node_of=node_of, signer=Signer(key, store.next_seq), max_batch=max_batch)
    frames: queue.Queue[tuple[str, bytes]] = queue.Queue()
    hub_loop = NetworkLoop("rollout-hub")
    hub_options = BridgeOptions(
        client_id=f"{FLEET}-{HUB_NODE}-{rollout_id}-{uuid.uuid4().hex[:8]}",
        clean_session=False,
        subscriptions=[topics.fleet_filter(FLEET, "events")],
        loop=hub_loop,
    )
    hub = MqttBridge(address, hub_options, lambda t, p: frames.put((t, p)))
    nodes = sorted({node_of(d) for d in inventory})
    fleet = SimFleet(address, nodes, trusted_keys([key.public_key()]), health_fail)
    ready: set[str] = set()
    counts = Counter[str]()

    def take(block_s: float, live: bool) -> None:
        try:
            item: tuple[str, bytes] | None = frames.get(timeout=block_s)
        except queue.Empty:
            return
        stamp = now_ms()
        while item is not None:
            topic, payload = item
            if topics.parse(topic).node not in ready:
                ready.add(topics.parse(topic).node)  # its first frame is its "ready" announcement
            elif live:
                host.on_frame(payload, stamp)
            try:
                item = frames.get_nowait()
            except queue.Empty:
                item = None

    def heard(names: list[str]) -> bool:
        take(0.05, False)
        return ready.issuperset(names)

    try:
        hub.start()
        _wait(lambda: hub.wait_connected(0.1), CONNECT_TIMEOUT_S, "the hub to connect")
        probe = encode_reports(HUB_NODE, "ready", [], fleet=FLEET, now_ms=0)
        hub.publish(*probe)  # the hub hears its own probe: its subscription is in place
        _wait(lambda: heard([HUB_NODE]), CONNECT_TIMEOUT_S, "the hub's subscription")
        fleet.start()
        _wait(lambda: heard(nodes), CONNECT_TIMEOUT_S, "every node to subscribe")
        cpu0 = own_cpu_s()
        t0 = time.monotonic()
        engine = host.start(spec, inventory, now_ms())
        last_tick = 0.0
        engine_s = 0.0
        while engine.state not in ("completed", "aborted") and time.monotonic() - t0 < max_s:
            if (
                restart_at_applied is not None
                and not counts["hub_restarts"]
                and engine.status().applied >= restart_at_applied
            ):
                hub.stop()
                take(0.0, True)  # what reached this process before it stopped (a clean SIGTERM flushes it)
                store.save(engine)
                store.close()
                counts["commands_before_restart"] += host.counters.commands
                del engine
                store = RolloutStore(db_path)
                host = RolloutHost(
                    store, fleet=FLEET, node_of=node_of, signer=Signer(key, store.next_seq), max_batch=max_batch
                )
                engine = host.engines[rollout_id]
                hub = MqttBridge(address, hub_options, lambda t, p: frames.put((t, p)))
                hub.start()
                if not hub.wait_connected(CONNECT_TIMEOUT_S):
                    raise TimeoutError(f"the restarted hub did not connect within {CONNECT_TIMEOUT_S:.0f} s")
                counts["hub_restarts"] += 1
            take(TICK_S, True)
            if time.monotonic() - last_tick >= TICK_S:
                last_tick = time.monotonic()
                stamp = now_ms()
                e0 = time.perf_counter()
                out = host.tick(stamp)  # saved before sending: a hub restarted now never commands a device twice
                engine_s += time.perf_counter() - e0
                for topic, frame in out:
                    hub.publish(topic, frame)
                counts["command_frames"] += len(out)
        wall_s = time.monotonic() - t0
        cpu_s = own_cpu_s() - cpu0
    finally:
        fleet.stop()
        hub.stop()
        hub_loop.stop()
        store.close()
    status = engine.status()
    on_new = sum(1 for v in fleet.versions.values() if v == NEW)
    return {
        "state": status.state,
        "reason": status.reason,
        "targets": status.targets,
        "completed": status.applied if status.state == "completed" else 0,
        "applied": status.applied,
        "failed": status.failed,
        "health_failed": status.health_failed,
        "timed_out": status.timed_out,
        "changed": status.changed,
        "rolled_back": status.rolled_back,
        "rollback_unconfirmed": status.rollback_unconfirmed,
        "devices_on_target": on_new,
        "left_on_bad_version": on_new if status.state == "aborted" else 0,
        "applied_twice": sum(1 for n in fleet.applies.values() if n > 1),
        "applies_sent": sum(fleet.applies.values()),
        "health_fail_devices": len(health_fail),
        "refused_commands": fleet.refused,
        "waves": [w.size for w in status.waves],
        "wall_s": round(wall_s, 3),
        "engine_s": round(engine_s, 3),
        "cpu_s": round(cpu_s, 2),
        "reports": dict(status.reports),
        "commands": host.counters.commands + counts.pop("commands_before_restart", 0),
        "report_frames": host.counters.report_frames,
        "bad_frames": host.counters.bad_frames,
        **dict(counts),
    }


def simulated_rollout(devices: int, *, seed: int, db_path: Path | None, step_ms: int = 1000) -> dict[str, Any]:
    """The pure engine with ``devices`` devices answering after random latencies on a simulated clock."""
    rng = np.random.default_rng(seed)
    inventory = make_inventory(devices, 1000)
    spec = RolloutSpec(
        rollout_id="sim-100k",
        target_version=NEW,
        waves=WavePlan(canary=100, percentages=(1, 5, 25, 100)),
        gates=GatePolicy(min_success_rate=0.95, soak_ms=60_000, abort_min_executed=1000),
        concurrency=5000,
        timeout_ms=120_000,
    )
    t0 = time.perf_counter()
    engine = RolloutEngine.start(spec, inventory, 0)
    store = RolloutStore(db_path) if db_path is not None else None
    position = {name: i for i, name in enumerate(engine.names)}
    latency_ms = rng.lognormal(mean=np.log(3000), sigma=0.8, size=devices).astype(np.int64)
    roll = rng.random(devices)  # < 0.002: never answers; < 0.007: apply fails
    due: list[tuple[int, int, str, str]] = []
    seq = itertools.count()
    now = 0
    engine_s = save_s = 0.0
    ticks = commands_total = 0
    idle_s: list[float] = []  # ticks with nothing to do: their cost must not grow with the fleet
    while engine.state not in ("completed", "aborted") and now < 7 * 86_400_000:
        e0 = time.perf_counter()
        answered = 0
        while due and due[0][0] <= now:
            _, _, device, outcome = heapq.heappop(due)
            engine.on_report(device, outcome, NEW if outcome == "applied" else OLD, now)
            answered += 1
        commands = engine.tick(now)
        e1 = time.perf_counter()
        if not answered and not commands:
            idle_s.append(e1 - e0)
        if store is not None:
            store.save(engine)
        save_s += time.perf_counter() - e1
        engine_s += e1 - e0
        ticks += 1
        commands_total += len(commands)
        for cmd in commands:
            i = position[cmd.device]
            if roll[i] < 0.002:
                continue
            outcome = "failed" if roll[i] < 0.007 else "applied"
            heapq.heappush(due, (now + int(latency_ms[i]), next(seq), cmd.device, outcome))
        now += step_ms
    wall_s = time.perf_counter() - t0
    if store is not None:
        store.close()
    status = engine.status()
    return {
        "state": status.state,
        "completed": status.applied if status.state == "completed" else 0,
        "applied": status.applied,
        "failed": status.failed,
        "timed_out": status.timed_out,
        "waves": [w.size for w in status.waves],
        "simulated_s": now / 1000,
        "wall_s": round(wall_s, 2),
        "engine_s": round(engine_s, 2),
        "save_s": round(save_s, 2),
        "ticks": ticks,
        "commands": commands_total,
        "engine_us_per_device": round(engine_s / devices * 1e6, 2),
        "idle_ticks": len(idle_s),
        "idle_tick_us_p50": round(float(np.median(idle_s)) * 1e6, 1) if idle_s else None,
    }


def run(
    devices: int = 10_000,
    broker: str = "mosquitto",
    *,
    per_node: int = 1000,
    sim_devices: int = 100_000,
    bad_devices: int = 2000,
    canary: int = 100,
    concurrency: int = 2000,
    soak_ms: int = 200,
    timeout_ms: int = 30_000,
    max_s: float = 300.0,
    seed: int = 1,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """All three measurements; ``broker`` is ``mosquitto`` (start one on a free port) or an mqtt:// URL."""
    tmp = tempfile.TemporaryDirectory(prefix="pm-rollout-bench-") if workdir is None else None
    work = Path(tmp.name) if tmp is not None else workdir
    assert work is not None
    with bench_broker(broker, work) as address:

        def one(
            rollout_id: str, count: int, sick_share: float, max_batch: int = MAX_BATCH, restart_at: int | None = None
        ) -> dict[str, Any]:
            return broker_rollout(
                address,
                devices=count,
                per_node=per_node,
                rollout_id=rollout_id,
                health_fail_share=sick_share,
                db_path=work / f"{rollout_id}.db",
                canary=canary,
                concurrency=concurrency,
                soak_ms=soak_ms,
                timeout_ms=timeout_ms,
                max_s=max_s,
                max_batch=max_batch,
                restart_at_applied=restart_at,
            )

        good = one("bench-good", devices, 0.0)
        progress(f"rollout  {good['state']}: {good['completed']:,}/{devices:,} devices in {good['wall_s']} s")
        baseline = one("bench-unbatched", devices, 0.0, max_batch=1)
        progress(f"baseline {baseline['state']}: one frame per device, {baseline['wall_s']} s")
        restarted = one("bench-restart", devices, 0.0, restart_at=devices // 2)
        progress(f"restart  {restarted['state']}: {restarted['completed']:,} devices, hub restarted halfway")
        bad = one("bench-bad", bad_devices, 0.1)
        progress(f"bad      {bad['state']}: changed {bad['changed']}, rolled back {bad['rolled_back']}")
    sim = simulated_rollout(sim_devices, seed=seed, db_path=work / "sim.db")
    progress(f"sim      {sim['state']}: {sim['completed']:,}/{sim_devices:,} in {sim['wall_s']} s wall")
    if tmp is not None:
        tmp.cleanup()
    return {
        "bench": "rollout",
        "devices": devices,
        "completed": good["completed"],
        "wall_s": good["wall_s"],
        "devices_per_s": round(good["completed"] / good["wall_s"], 1) if good["wall_s"] else None,
        "applied_twice": good["applied_twice"],
        "baseline_unbatched_wall_s": baseline["wall_s"],
        "baseline_completed": baseline["completed"],
        "ratio": round(baseline["wall_s"] / good["wall_s"], 2) if good["wall_s"] else None,
        "restart_completed": restarted["completed"],
        "restart_applied_twice": restarted["applied_twice"],
        "restart_timed_out": restarted["timed_out"],
        "devices_100k": sim_devices,
        "devices_100k_completed": sim["completed"],
        "devices_100k_wall_s": sim["wall_s"],
        "devices_100k_idle_tick_us_p50": sim["idle_tick_us_p50"],
        "rolled_back": bad["rolled_back"],
        "changed": bad["changed"],
        "left_on_bad_version": bad["left_on_bad_version"],
        "bad_version_state": bad["state"],
        "apply_after_reconnect_p99_s": None,
        "good": good,
        "baseline": baseline,
        "restarted": restarted,
        "bad_version": bad,
        "simulated": sim,
        "peak_rss_mb": round(own_peak_rss_mb(), 1),
        "python": python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pymonitor bench rollout", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--broker", default="mosquitto", help="'mosquitto' (start one) or an mqtt:// URL")
    parser.add_argument("--per-node", type=int, default=1000, help="devices per simulated node (paho client)")
    parser.add_argument("--sim-devices", type=int, default=100_000)
    parser.add_argument("--bad-devices", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="accepted for symmetry: the last stdout line is JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)
    result = run(
        args.devices,
        args.broker,
        per_node=args.per_node,
        sim_devices=args.sim_devices,
        bad_devices=args.bad_devices,
        seed=args.seed,
    )
    emit_result(result, out=args.out)
    ok = result["completed"] == args.devices and result["left_on_bad_version"] == 0
    return 0 if ok and result["rolled_back"] == result["changed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
