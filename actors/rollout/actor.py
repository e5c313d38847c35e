"""The hub's rollout actor: carries frames between a :class:`RolloutHost` and its own MQTT session.

Reports come in from every node's ``up/events`` (other events are ignored by the host); on each
tick the host picks up rollouts the CLI stored, applies queued pause/resume/abort, saves, and
returns signed command frames, published here at QoS 1. The session is persistent (fixed client
id, clean_session off): while the actor restarts or the hub is down, the broker keeps the
reports, so a restarted hub carries on from the state file without commanding a device twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import pykka
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pymonitor.actors.runtime.clock import Clock, TimerHandle
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor, tell_if_alive
from pymonitor.actors.runtime.supervisor import _drain as drain_tells
from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, topics

from .host import RolloutHost
from .state_store import RolloutStore
from .wire import MAX_BATCH, Signer

log = logging.getLogger(__name__)

ROLLOUT_ACTOR = "rollout"
TICK_INTERVAL_S = 0.2
UNROUTED_NODE = "unrouted"
"""Where commands for a device no node is known to host go: nobody listens, so the device times out."""
RELOAD_MIN_MS = 5_000
STOP_FLUSH_S = 5.0


class NodeDirectory:
    """device -> the node (gateway) hosting it, from ``load`` (reloaded on a miss, at most every few seconds).

    A device no node hosts is routed to :data:`UNROUTED_NODE` and counted: it times out in the
    rollout, which is what an unreachable device does anyway.
    """

    def __init__(self, load: Callable[[], Mapping[str, str]], now_ms: Callable[[], int]) -> None:
        self.load = load
        self.now_ms = now_ms
        self.hosts: dict[str, str] = dict(load())
        self.loaded_ms = now_ms()
        self.unrouted = 0

    def __call__(self, device: str) -> str:
        node = self.hosts.get(device)
        if node is None and self.now_ms() - self.loaded_ms >= RELOAD_MIN_MS:
            self.hosts, self.loaded_ms = dict(self.load()), self.now_ms()
            node = self.hosts.get(device)
        if node is None:
            self.unrouted += 1
            return UNROUTED_NODE
        return node


@dataclass(frozen=True, slots=True)
class RolloutTick:
    """Timer tick: run the host and publish its commands."""


@dataclass(frozen=True, slots=True)
class GetRolloutStats:
    """Ask for the host's counters and the state of every rollout in the file."""


@dataclass
class RolloutActorCounters:
    ticks: int = 0
    frames_in: int = 0
    frames_out: int = 0
    ticks_offline: int = 0  # ticks skipped while the broker was away (nothing sent, nothing timed out)


@dataclass
class RolloutSettings:
    fleet: str
    node: str  # the hub's node name: its MQTT client id is "<fleet>.<node>.rollout"
    db_path: Path
    node_of: Callable[[str], str]
    key: Ed25519PrivateKey | None  # None: unsigned commands (only nodes that trust no key accept them)
    tick_interval_s: float = TICK_INTERVAL_S
    max_batch: int = MAX_BATCH
    ca_file: str | None = None
    counters: RolloutActorCounters = field(default_factory=RolloutActorCounters)  # survives actor restarts


class RolloutActor(SupervisedActor):
    """Owns the rollout state file and the rollout MQTT session; nothing else writes either."""

    def __init__(self, supervisor: Supervisor | None, settings: RolloutSettings, clock: Clock, address: BrokerAddress):
        super().__init__(supervisor, ROLLOUT_ACTOR)
        self.settings = settings
        self.clock = clock
        self.address = address
        self.host: RolloutHost | None = None
        self.bridge: MqttBridge | None = None
        self._timer: TimerHandle | None = None

    def start_role(self) -> None:
        s = self.settings
        store = RolloutStore(s.db_path)
        signer = None if s.key is None else Signer(s.key, store.next_seq)
        self.host = RolloutHost(store, fleet=s.fleet, node_of=s.node_of, signer=signer, max_batch=s.max_batch)
        ref = self.actor_ref
        options = BridgeOptions(
            client_id=f"{s.fleet}.{s.node}.rollout",
            subscriptions=[topics.fleet_filter(s.fleet, "events")],
            clean_session=False,
            ca_file=s.ca_file,
        )
        self.bridge = MqttBridge(self.address, options, lambda t, p: tell_if_alive(ref, Inbound(t, p)))
        self.bridge.start()
        self._schedule()

    def on_stop(self) -> None:
        """Let the last commands reach the broker, take the reports already received, save, disconnect."""
        if self._timer is not None:
            self._timer.cancel()
        if self.bridge is not None:
            _wait_for_pubacks(self.bridge, STOP_FLUSH_S)
            self.bridge.stop()  # a clean disconnect: the broker keeps the session and queues reports
        if self.host is not None:
            for message in drain_tells(self.actor_inbox):  # frames were PUBACKed already: they exist nowhere else
                if isinstance(message, Inbound):
                    self._on_frame(self.host, message)
            self.host.store.close()

    def on_failure(self, *args: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.bridge is not None:
            self.bridge.stop()
        if self.host is not None:
            self.host.store.close()  # saved on every report frame and every tick; the supervisor moves the rest
        super().on_failure(*args)

    def _schedule(self) -> None:
        ref = self.actor_ref
        self._timer = self.clock.call_later(self.settings.tick_interval_s, lambda: tell_if_alive(ref, RolloutTick()))

    def on_receive(self, message: Any) -> Any:
        host = self.host
        assert host is not None and self.bridge is not None
        counters = self.settings.counters
        if isinstance(message, Inbound):
            self._on_frame(host, message)
        elif isinstance(message, RolloutTick):
            self._tick(host, self.bridge, counters)
            self._schedule()
        elif isinstance(message, GetRolloutStats):
            return {
                "counters": vars(counters).copy(),
                "host": asdict(host.counters),
                "rollouts": host.store.states(),
                "connected": self.bridge.connected,
            }
        return None

    def _on_frame(self, host: RolloutHost, inbound: Inbound) -> None:
        """One frame from ``up/events``; a report is saved at once, so a crash cannot lose what it said."""
        self.settings.counters.frames_in += 1
        before = host.counters.report_frames
        host.on_frame(inbound.payload, self.clock.now_ms())
        if host.counters.report_frames != before:
            for engine in host.engines.values():
                host.store.save(engine)

    def _tick(self, host: RolloutHost, bridge: MqttBridge, counters: RolloutActorCounters) -> None:
        if not bridge.connected:
            counters.ticks_offline += 1  # no answers can arrive: timeouts would be unfair, commands would queue
            return
        counters.ticks += 1
        frames = host.tick(self.clock.now_ms())  # saved before they are sent: at most once per device
        for line in host.log:
            log.info("rollout control %s", line)
        host.log.clear()
        for topic, payload in frames:
            bridge.publish(topic, payload)
        counters.frames_out += len(frames)


def _wait_for_pubacks(bridge: MqttBridge, timeout_s: float) -> None:
    """Commands are saved as sent before they are published: give the last ones a moment to get through."""
    deadline = time.monotonic() + timeout_s
    while bridge.connected and bridge.counters.puback < bridge.counters.published and time.monotonic() < deadline:
        time.sleep(0.01)


class RolloutRole:
    """The hub's rollouts: the supervised actor (which owns its MQTT session)."""

    def __init__(self, settings: RolloutSettings, *, address: BrokerAddress, clock: Clock, supervisor: Supervisor):
        self.settings = settings
        self.address = address
        self.clock = clock
        self.supervisor = supervisor

    def start(self) -> RolloutRole:
        def factory(sup: Supervisor) -> pykka.ActorRef[Any]:
            return RolloutActor.start(sup, self.settings, self.clock, self.address)

        self.supervisor.start(ROLLOUT_ACTOR, factory)
        return self

    def stats(self, timeout_s: float = 10.0) -> dict[str, Any]:
        ref = self.supervisor.ref(ROLLOUT_ACTOR)
        if ref is None or not ref.is_alive():
            return {}
        return cast("dict[str, Any]", ref.ask(GetRolloutStats(), timeout=timeout_s))

    def stop(self) -> None:
        ref = self.supervisor.ref(ROLLOUT_ACTOR)
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=30)
