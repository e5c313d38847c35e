"""Wiring of the alerting role: its MQTT subscription and its supervised actor."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pykka

from pymonitor.actors.runtime.clock import Clock
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, topics

from .actor import ALERTING_ACTOR, AlertingActor, GetAlertStats
from .config import AlertingConfig

SUBSCRIBED_KINDS = ("readings", "events")


class AlertingRole:
    """The alerting actor on a fleet's broker: subscribes to every node's readings and events.

    It reads beside the hub rather than through it, so alerting does not wait for the hub's
    store. Frames are never acknowledged here (the hub does that); with ``share_group`` several
    alerting processes split the fleet, which must then be its own group, not the hub's.
    """

    def __init__(
        self,
        *,
        fleet: str,
        node: str,
        config: AlertingConfig,
        db_path: str | Path,
        address: BrokerAddress,
        clock: Clock,
        supervisor: Supervisor,
        share_group: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.config, self.db_path, self.clock, self.supervisor = config, Path(db_path), clock, supervisor
        self.frames_dropped = 0
        options = BridgeOptions(
            client_id=f"{fleet}.{node}",
            subscriptions=[topics.fleet_filter(fleet, kind, share_group=share_group) for kind in SUBSCRIBED_KINDS],
            ca_file=ca_file,
        )
        self.bridge = MqttBridge(address, options, self._on_frame)

    def _on_frame(self, topic: str, payload: bytes) -> None:
        if not self.supervisor.tell(ALERTING_ACTOR, Inbound(topic, payload)):
            self.frames_dropped += 1

    def start(self) -> AlertingRole:
        def factory(sup: Supervisor) -> pykka.ActorRef[Any]:
            return AlertingActor.start(sup, self.config, self.db_path, self.clock)

        self.supervisor.start(ALERTING_ACTOR, factory)
        self.bridge.start()
        return self

    def stats(self, timeout_s: float = 10.0) -> dict[str, Any]:
        ref = self.supervisor.ref(ALERTING_ACTOR)
        stats = {} if ref is None else cast("dict[str, Any]", ref.ask(GetAlertStats(), timeout=timeout_s))
        return {**stats, "frames_dropped": self.frames_dropped}

    def stop(self) -> None:
        self.bridge.stop()
        ref = self.supervisor.ref(ALERTING_ACTOR)
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=30)
