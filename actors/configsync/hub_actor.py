"""Hub side of remote config: the actor that owns the config DB, and its MQTT wiring.

:class:`HubConfigActor` runs a :class:`~.service.ConfigService` on its own thread: operator
edits and rollbacks come in as messages, node reports as frames from ``+/up/ack``; each report is
recorded, settles the node's pending version, and may trigger an automatic rollback, which is
signed and published retained like any other version.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pymonitor.actors.runtime.clock import Clock
from pymonitor.actors.runtime.intake import Accepted, Inbound, accept
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor
from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, topics
from pymonitor.messages.config import ConfigReport
from pymonitor.store.config_store import ConfigStore

from .patch import PatchOp
from .service import ConfigService, Publisher, Sent

log = logging.getLogger(__name__)

REPORT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class PatchNode:
    node: str
    ops: Sequence[PatchOp]
    note: str = ""


@dataclass(frozen=True, slots=True)
class PatchGroup:
    group: str
    ops: Sequence[PatchOp]
    note: str = ""


@dataclass(frozen=True, slots=True)
class SetGroups:
    node: str
    groups: Sequence[str]


@dataclass(frozen=True, slots=True)
class Rollback:
    node: str
    to_version: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class GetConfigStats:
    """Ask for the counters and the nodes that have not reported on their latest version."""


@dataclass
class HubConfigCounters:
    reports: int = 0
    applied: int = 0
    rejected: int = 0
    rollbacks: int = 0  # automatic ones, after failing health checks
    resigned: int = 0  # versions signed again for nodes that found them expired
    ignored: int = 0  # other messages on the ack topics (command acks)
    dead_letters: int = 0


@dataclass
class HubConfigSettings:
    fleet: str
    db_path: Path
    key: Ed25519PrivateKey
    author: str = "hub"
    counters: HubConfigCounters = field(default_factory=HubConfigCounters)  # survives actor restarts


class HubConfigActor(SupervisedActor):
    """Owns the config DB; operator commands are asked, node reports told."""

    def __init__(self, supervisor: Supervisor | None, settings: HubConfigSettings, clock: Clock, publish: Publisher):
        super().__init__(supervisor, "configsync-hub")
        self.settings = settings
        self.clock = clock
        self.publish = publish
        self.service: ConfigService | None = None

    def start_role(self) -> None:
        s = self.settings
        store = ConfigStore(s.db_path)
        self.service = ConfigService(
            store, fleet=s.fleet, now_ms=self.clock.now_ms, key=s.key, publish=self.publish, author=s.author
        )
        self.service.restore_pending()

    def on_stop(self) -> None:
        if self.service is not None:
            self.service.store.close()

    def on_failure(self, *args: Any) -> None:
        self.on_stop()
        super().on_failure(*args)

    def on_receive(self, message: Any) -> Any:
        service = self.service
        assert service is not None
        if isinstance(message, Inbound):
            return self._on_frame(service, message)
        if isinstance(message, PatchNode):
            return service.patch_node(message.node, message.ops, note=message.note)
        if isinstance(message, PatchGroup):
            return service.patch_group(message.group, message.ops, note=message.note)
        if isinstance(message, SetGroups):
            return service.set_groups(message.node, message.groups)
        if isinstance(message, Rollback):
            return service.rollback(message.node, message.to_version, note=message.note)
        if isinstance(message, GetConfigStats):
            return {"counters": vars(self.settings.counters).copy(), "lagging": service.lagging()}
        return None

    def _on_frame(self, service: ConfigService, inbound: Inbound) -> Sent | None:
        counters = self.settings.counters
        got = accept("hub", inbound, self.clock.now_ms(), REPORT_MAX_BYTES)
        if not isinstance(got, Accepted):
            counters.dead_letters += 1
            log.warning("config report refused: %s", got.reason)
            return None
        report = got.message
        if not isinstance(report, ConfigReport):
            counters.ignored += 1
            return None
        counters.reports += 1
        if report.status == "applied":
            counters.applied += 1
        else:
            counters.rejected += 1
            log.warning("%s refused config version %d: %s: %s", report.node, report.version, report.reason,
                        report.detail)  # fmt: skip
        sent = service.on_report(report)
        if sent is not None and report.reason == "stale":
            counters.resigned += 1
        elif sent is not None:
            counters.rollbacks += 1
            log.warning("%s rolled back to version %d: %s", report.node, sent.state.restores, sent.state.note)
        return sent


HUB_CONFIG_ACTOR = "configsync-hub"


class HubConfigRole:
    """The hub's config sync: a connection that hears every node's reports and publishes desired state."""

    def __init__(
        self,
        settings: HubConfigSettings,
        *,
        node: str,
        address: BrokerAddress,
        clock: Clock,
        supervisor: Supervisor,
        share_group: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.supervisor = supervisor
        self.frames_dropped = 0
        options = BridgeOptions(
            client_id=f"{settings.fleet}.{node}.config",
            subscriptions=[topics.fleet_filter(settings.fleet, "ack", share_group=share_group)],
            ca_file=ca_file,
        )
        self.bridge = MqttBridge(address, options, self._on_frame)

    def _on_frame(self, topic: str, payload: bytes) -> None:
        if not self.supervisor.tell(HUB_CONFIG_ACTOR, Inbound(topic, payload)):
            self.frames_dropped += 1

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.bridge.publish(topic, payload, retain=retain)

    def start(self) -> HubConfigRole:
        def factory(sup: Supervisor) -> pykka.ActorRef[Any]:
            return HubConfigActor.start(sup, self.settings, self.clock, self._publish)

        self.supervisor.start(HUB_CONFIG_ACTOR, factory)
        self.bridge.start()
        return self

    def ask(self, message: Any, timeout_s: float = 30.0) -> Any:
        """Run an operator command (PatchNode, PatchGroup, SetGroups, Rollback, GetConfigStats) on the actor."""
        ref = self.supervisor.ref(HUB_CONFIG_ACTOR)
        if ref is None:
            raise RuntimeError("the hub config actor is not running")
        return ref.ask(message, timeout=timeout_s)

    def stop(self) -> None:
        self.bridge.stop()
        ref = self.supervisor.ref(HUB_CONFIG_ACTOR)
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=30)
