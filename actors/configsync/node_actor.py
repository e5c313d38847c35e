"""Node side of remote config: take the retained desired state, apply it, write the TOML, report back.

:class:`ConfigAgent` is the shell around :func:`~.apply.apply` for one node (files in, frames
out, no threads), so a simulator or a bench can host hundreds of nodes on one network thread;
:class:`NodeConfigActor` runs one agent under the supervisor, :class:`NodeConfigRole` wires it to
the node's MQTT session (persistent, QoS 1: a node that was offline gets the latest retained
version, plus whatever was queued, as soon as it reconnects). Reports go up on ``.../up/ack``.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pykka
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pymonitor.actors.runtime.clock import Clock
from pymonitor.actors.runtime.intake import Accepted, Inbound, accept, dead_letter
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor
from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, NetworkLoop, topics
from pymonitor.deploy.config import NodeConfig
from pymonitor.messages import encode
from pymonitor.messages.config import ConfigDesired

from .apply import ApplyResult, NodeConfigState, apply, rejected
from .errors import ConfigSyncError
from .merge import MergePolicy
from .node_state import load_node_state, save_node_state
from .signing import ReplayGuard
from .tomlfile import write_config_file
from .validate import validate

log = logging.getLogger(__name__)

DESIRED_MAX_BYTES = 256 * 1024
"""A config document is a few KiB; a bigger frame on the config topic is refused unread."""

HealthCheck = Callable[[NodeConfig], list[str]]
"""Run after a new config is applied: the names of the checks that fail (empty: healthy)."""

Frame = tuple[str, bytes]


@dataclass
class NodeConfigCounters:
    applied: int = 0  # new versions written and run
    unchanged: int = 0  # a version already applied (the retained message again after a reconnect)
    rejected: int = 0
    dead_letters: int = 0  # frames on the config topic that are not a desired config
    state_reset: int = 0  # the state file was corrupt: started as never configured remotely


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigSyncError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigSyncError(f"{path}: not valid TOML: {exc}") from None


class ConfigAgent:
    """One node's config: a desired frame in, the file written, the state saved, report frames out.

    Not thread-safe: one caller at a time (its actor, or the one worker of a simulated node).
    """

    def __init__(
        self,
        toml_path: str | Path,
        state_path: str | Path,
        trusted: Mapping[str, Ed25519PublicKey],
        *,
        policy: MergePolicy = "hub-wins",
        health: HealthCheck | None = None,
        counters: NodeConfigCounters | None = None,
    ) -> None:
        self.toml_path = Path(toml_path)
        self.state_path = Path(state_path)
        self.trusted = dict(trusted)
        self.policy = policy
        self.health = health
        self.counters = counters if counters is not None else NodeConfigCounters()
        local = read_toml(self.toml_path)
        self.config = validate(local)  # a node does not start on a config it cannot run
        self.node = self.config.node.name
        self.fleet = self.config.node.fleet
        self.state: NodeConfigState
        self.guard: ReplayGuard
        try:
            self.state, self.guard = load_node_state(self.state_path, local)
        except ConfigSyncError as exc:
            log.error("%s: %s; starting as never configured remotely", self.node, exc)
            self.counters.state_reset += 1
            self.state, self.guard = NodeConfigState(local=local), ReplayGuard()

    @property
    def topic(self) -> str:
        return topics.config(self.fleet, self.node)

    def handle(self, topic: str, payload: bytes, now_ms: int) -> list[Frame]:
        """The frames to publish in answer to one frame from the config topic."""
        got = accept(self.node, Inbound(topic, payload), now_ms, DESIRED_MAX_BYTES)
        if isinstance(got, Accepted) and isinstance(got.message, ConfigDesired):
            result = self.apply(got.message, now_ms)
            return [(topics.up(self.fleet, self.node, "ack"), encode(result.report))]
        self.counters.dead_letters += 1
        if isinstance(got, Accepted):
            reason = f"expected config.desired.v1 on the config topic, got {type(got.message).__name__}"
            got = dead_letter(self.node, topic, payload, reason, now_ms)
        log.warning("%s: refused a frame on %s: %s", self.node, topic, got.reason)
        return [(topics.up(self.fleet, self.node, "deadletter"), encode(got))]

    def apply(self, desired: ConfigDesired, now_ms: int) -> ApplyResult:
        """Apply one desired config: write the file and the state (in that order) or reject; never half."""
        result = apply(desired, self.state, self.trusted, now_ms, replay=self.guard, policy=self.policy)
        if result.changed:
            try:
                write_config_file(self.toml_path, result.state.local)
                save_node_state(self.state_path, result.state, self.guard)
            except ConfigSyncError as exc:
                log.error("%s: cannot apply version %d: %s", self.node, desired.version, exc)
                result = rejected(desired, self.state, "write_failed", str(exc), now_ms)
        elif result.state is not self.state:
            try:  # remember a refusal across restarts; if that fails, the same refusal is simply worked out again
                save_node_state(self.state_path, result.state, self.guard)
            except ConfigSyncError as exc:
                log.error("%s: cannot save the config state: %s", self.node, exc)
        self.state = result.state
        if not result.applied:
            self.counters.rejected += 1
            log.warning("%s: refused version %d: %s: %s", self.node, desired.version, *self._why(result))
        elif not result.changed:
            self.counters.unchanged += 1
        else:
            self.counters.applied += 1
            assert result.config is not None
            self.config = result.config
            failed = self.health(result.config) if self.health is not None else []
            if failed:
                result = dataclasses.replace(result, report=dataclasses.replace(result.report, failed_checks=failed))
        return result

    @staticmethod
    def _why(result: ApplyResult) -> tuple[str, str]:
        return result.report.reason, result.report.detail


@dataclass(frozen=True, slots=True)
class GetNodeConfig:
    """Ask for the config the node runs now and its counters."""


@dataclass
class NodeConfigSettings:
    toml_path: Path
    state_path: Path
    trusted: Mapping[str, Ed25519PublicKey]
    policy: MergePolicy = "hub-wins"
    health: HealthCheck | None = None
    on_config: Callable[[NodeConfig], object] | None = None  # run the new config (restart roles, ...)
    counters: NodeConfigCounters = field(default_factory=NodeConfigCounters)  # survives actor restarts


Publisher = Callable[[str, bytes], None]


class NodeConfigActor(SupervisedActor):
    """Owns the node's config file and state file; nothing else writes them."""

    def __init__(self, supervisor: Supervisor | None, settings: NodeConfigSettings, clock: Clock, publish: Publisher):
        super().__init__(supervisor, "configsync")
        self.settings = settings
        self.clock = clock
        self.publish = publish
        self.agent: ConfigAgent | None = None

    def start_role(self) -> None:
        s = self.settings
        self.agent = ConfigAgent(
            s.toml_path, s.state_path, s.trusted, policy=s.policy, health=s.health, counters=s.counters
        )

    def on_receive(self, message: Any) -> Any:
        assert self.agent is not None
        if isinstance(message, Inbound):
            before = self.agent.config
            for topic, payload in self.agent.handle(message.topic, message.payload, self.clock.now_ms()):
                self.publish(topic, payload)
            if self.agent.config is not before and self.settings.on_config is not None:
                self.settings.on_config(self.agent.config)
        elif isinstance(message, GetNodeConfig):
            return self.agent.config, vars(self.agent.counters).copy()
        return None


CONFIG_ACTOR = "configsync"


class NodeConfigRole:
    """A node's config sync: its own persistent MQTT session on the config topic, and the actor."""

    def __init__(
        self,
        settings: NodeConfigSettings,
        *,
        address: BrokerAddress,
        clock: Clock,
        supervisor: Supervisor,
        loop: NetworkLoop | None = None,
        ca_file: str | None = None,
    ) -> None:
        local = validate(read_toml(settings.toml_path))
        self.settings = settings
        self.clock = clock
        self.supervisor = supervisor
        self.frames_dropped = 0
        self.fleet, self.node = local.node.fleet, local.node.name
        options = BridgeOptions(
            client_id=f"{self.fleet}.{self.node}.config",
            subscriptions=[topics.config(self.fleet, self.node)],
            ca_file=ca_file,
            loop=loop,
        )
        self.bridge = MqttBridge(address, options, self._on_frame)

    def _on_frame(self, topic: str, payload: bytes) -> None:
        if not self.supervisor.tell(CONFIG_ACTOR, Inbound(topic, payload)):
            self.frames_dropped += 1  # the retained message comes again on the next reconnect

    def _publish(self, topic: str, payload: bytes) -> None:
        self.bridge.publish(topic, payload)

    def start(self) -> NodeConfigRole:
        def factory(sup: Supervisor) -> pykka.ActorRef[Any]:
            return NodeConfigActor.start(sup, self.settings, self.clock, self._publish)

        self.supervisor.start(CONFIG_ACTOR, factory)
        self.bridge.start()
        return self

    def current(self, timeout_s: float = 10.0) -> tuple[NodeConfig, dict[str, int]]:
        ref = self.supervisor.ref(CONFIG_ACTOR)
        if ref is None:
            raise ConfigSyncError("the config actor is not running")
        return cast("tuple[NodeConfig, dict[str, int]]", ref.ask(GetNodeConfig(), timeout=timeout_s))

    def stop(self) -> None:
        """Disconnect cleanly (the broker keeps the session and queues what comes meanwhile), stop the actor."""
        self.bridge.stop()
        ref = self.supervisor.ref(CONFIG_ACTOR)
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=30)
