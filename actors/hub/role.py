"""Wiring of the hub role: its MQTT connection and its supervised actor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pykka

from pymonitor import __version__
from pymonitor.actors.runtime.clock import Clock
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, topics
from pymonitor.messages import NodeBirth, NodeDeath, encode

from .actor import GetStats, HubActor, HubSettings
from .retention import RetentionSettings

HUB_ACTOR = "hub"
SUBSCRIBED_KINDS = ("readings", "backfill", "summaries", "events", "state", "deadletter")


class HubRole:
    """The hub: subscribes to a fleet and stores what it sends."""

    def __init__(
        self,
        *,
        fleet: str,
        node: str,
        db_path: str | Path,
        address: BrokerAddress,
        clock: Clock,
        supervisor: Supervisor,
        flush_interval_ms: int = 200,
        flush_max_frames: int = 256,
        share_group: str | None = None,
        ca_file: str | None = None,
        retention: RetentionSettings | None = None,
    ) -> None:
        self.fleet = fleet
        self.node = node
        self.clock = clock
        self.supervisor = supervisor
        self.settings = HubSettings(
            fleet, node, Path(db_path), flush_interval_ms, flush_max_frames, retention=retention
        )  # retention: passes every retention.interval_s of clock time, in their own thread
        self.session = clock.now_ms()
        self.frames_dropped = 0
        self.on_frame_also: Callable[[str, bytes], None] | None = None  # e.g. FleetRoles.on_frame

        def birth(connects: int) -> tuple[str, bytes]:
            msg = NodeBirth(
                node=node,
                session=self.session,
                ts_ms=clock.now_ms(),
                role="hub",
                version=__version__,
                connects=connects,
            )
            return topics.state(fleet, node), encode(msg)

        will = NodeDeath(node=node, session=self.session, reason="connection lost")
        options = BridgeOptions(
            client_id=f"{fleet}.{node}",
            subscriptions=[topics.fleet_filter(fleet, k, share_group=share_group) for k in SUBSCRIBED_KINDS],
            will=(topics.state(fleet, node), encode(will)),
            birth=birth,
            ca_file=ca_file,
        )
        self.bridge = MqttBridge(address, options, self._on_frame)

    def _on_frame(self, topic: str, payload: bytes) -> None:
        if not self.supervisor.tell(HUB_ACTOR, Inbound(topic, payload)):
            self.frames_dropped += 1  # not acknowledged, so the sender resends it
        if self.on_frame_also is not None:
            self.on_frame_also(topic, payload)  # the fleet-health roles: bounded queues, never blocks

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.bridge.publish(topic, payload, retain=retain)

    def start(self) -> HubRole:
        def factory(sup: Supervisor) -> pykka.ActorRef[Any]:
            return HubActor.start(sup, self.settings, self.clock, self._publish)

        self.supervisor.start(HUB_ACTOR, factory)
        self.bridge.start()
        return self

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Block until the hub actor has opened (and migrated) its store: readers of the store start after this."""
        ref = self.supervisor.ref(HUB_ACTOR)
        if ref is not None:
            ref.ask(GetStats(), timeout=timeout_s)  # answered only once on_start has run

    def stats(self, timeout_s: float = 10.0) -> dict[str, Any]:
        ref = self.supervisor.ref(HUB_ACTOR)
        if ref is None:
            return {}
        stats = cast("dict[str, Any]", ref.ask(GetStats(), timeout=timeout_s))
        stats["frames_dropped"] = self.frames_dropped
        stats["bridge"] = vars(self.bridge.counters).copy()
        return stats

    def stop(self) -> None:
        """Stop taking frames, then let the actor flush and close the store."""
        death = NodeDeath(node=self.node, session=self.session, reason="shutdown", ts_ms=self.clock.now_ms())
        self.bridge.stop(goodbye=(topics.state(self.fleet, self.node), encode(death)))
        ref = self.supervisor.ref(HUB_ACTOR)
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=30)
