"""A node process: load a config, start its broker bridge and roles, stop cleanly on a signal.

SIGTERM and SIGINT both mean "stop": the simulator stops sampling and gets a few seconds to
deliver what its outboxes hold, the hub flushes pending frames to SQLite, and every
connection sends a clean death before it closes.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pymonitor.actors.hub import HubRole
from pymonitor.actors.hub.retention import RetentionSettings
from pymonitor.actors.rollout.actor import NodeDirectory, RolloutRole, RolloutSettings
from pymonitor.broker import RunningBroker, parse_broker_url, start_broker
from pymonitor.deploy import NodeConfig
from pymonitor.deploy.config import ConfigError

from .clock import RealClock
from .limits import raise_open_file_limit
from .supervisor import Supervisor

log = logging.getLogger(__name__)

DRAIN_ON_STOP_S = 10.0
HUB_CONNECT_WAIT_S = 10.0
"""A hub and a simulator in one node: let the hub subscribe before the first frames fly."""


@dataclass
class RunningNode:
    """What a started node holds; :meth:`stop` releases it in the right order."""

    config: NodeConfig
    clock: RealClock
    supervisor: Supervisor
    broker: RunningBroker | None
    broker_url: str
    hub: HubRole | None = None
    rollouts: RolloutRole | None = None
    alerting: Any = None  # AlertingRole, imported lazily (its channels pull in httpx) only when configured
    config_hub: Any = None  # HubConfigRole: desired configs out, reports in
    config_node: Any = None  # NodeConfigRole: this node's config from the hub
    fleet_roles: Any = None  # FleetRoles (numpy-heavy cores, imported only when asked for)
    fleet: Any = None  # FleetSimulator, imported lazily (numpy) only when simulating
    stopped: threading.Event = field(default_factory=threading.Event)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"node": self.config.node.name, "broker": self.broker_url}
        if self.hub is not None:
            out["hub"] = self.hub.stats().get("counters", {})
        if self.rollouts is not None:
            out["rollouts"] = self.rollouts.stats().get("rollouts", {})
        if self.alerting is not None:
            out["alerting"] = self.alerting.stats()
        if self.fleet is not None:
            out["fleet"] = self.fleet.totals()
        return out

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        if self.fleet is not None:
            self.fleet.stop_sampling()
            deadline = time.monotonic() + DRAIN_ON_STOP_S
            while self.fleet.pending_frames() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.fleet.stop()
        if self.rollouts is not None:
            self.rollouts.stop()
        for role in (self.alerting, self.config_hub, self.config_node, self.fleet_roles):
            if role is not None:
                role.stop()
        if self.hub is not None:
            self.hub.stop()
        self.supervisor.stop_all()
        self.clock.stop()
        if self.broker is not None:
            self.broker.stop()
        self.stopped.set()


def start_node(config: NodeConfig, config_path: str | Path | None = None) -> RunningNode:
    """Start everything the config asks for (``config_path``: the TOML it came from, which config sync rewrites)."""
    signing_key = _signing_key(config)  # first: a missing key file must not leave half a node running
    rollout_key = signing_key if config.hub is not None and config.hub.rollouts_db is not None else None
    alerting = _alerting_config(config)  # and a bad alerting file neither
    synced = _config_sync_settings(config, config_path)
    command_trust = _command_trust(config, signing_key, None if synced is None else synced.trusted)
    clock = RealClock(speed=config.clock.speed, start_ms=config.clock.start_ms)
    supervisor = Supervisor(clock)
    broker: RunningBroker | None = None
    url = config.broker.url
    if url in ("embedded", "mosquitto", "auto"):
        broker = start_broker(url)
        url = broker.url
    address = parse_broker_url(url)
    node = RunningNode(config, clock, supervisor, broker, str(address))
    name, fleet_name = config.node.name, config.node.fleet
    if config.hub is not None:
        h = config.hub
        node.hub = HubRole(
            fleet=fleet_name,
            node=name,
            db_path=h.db,
            address=address,
            clock=clock,
            supervisor=supervisor,
            flush_interval_ms=h.flush_interval_ms,
            flush_max_frames=h.flush_max_frames,
            share_group=h.share_group,
            ca_file=config.broker.ca_file,
            retention=RetentionSettings(
                raw_days=h.raw_days,
                minute_days=h.minute_days,
                hour_days=h.hour_days,
                day_days=h.day_days,
                storage_budget_mb=h.storage_budget_mb,
                interval_s=h.retention_interval_s,
            ),
        ).start()
        if h.fleet_roles:
            node.fleet_roles = _start_fleet_roles(node, h.db, fleet_name, name, h.fleet_analyse_every_s)
        if config.simulator is not None and not node.hub.bridge.wait_connected(HUB_CONNECT_WAIT_S):
            log.warning("the hub is not connected to %s yet; the simulator's first frames will be resent", address)
    hosts: dict[str, str] = {}  # device -> gateway of a fleet simulated in this node
    if config.simulator is not None:
        from pymonitor.simulators.fleet import FleetSimulator

        s = config.simulator
        raise_open_file_limit(s.gateways + 1)
        node.fleet = FleetSimulator(
            fleet=fleet_name,
            devices=s.devices,
            gateways=s.gateways,
            address=address,
            clock=clock,
            supervisor=supervisor,
            interval_s=s.interval_s,
            seed=s.seed,
            max_rows_per_frame=s.max_rows_per_frame,
            ack_timeout_s=s.ack_timeout_s,
            compression=None if s.compression == "none" else s.compression,
            alerts=s.alerts,
            outbox_dir=s.outbox_dir,
            outbox_cap_bytes=s.outbox_cap_mb * 1024 * 1024,
            durability=s.durability,
            live_window_s=s.live_window_s,
            daily_budget_bytes=None if s.daily_budget_mb is None else int(s.daily_budget_mb * 1024 * 1024),
            uplink=s.uplink,
            summary_window_s=s.summary_window_s,
            raw_keep_days=s.raw_keep_days,
            summary=config.summary,
            summary_keep_days=s.summary_keep_days,
            trusted_keys=command_trust,  # the hub's key: its own simulated gateways take signed commands only
        )
        if rollout_key is not None:  # the hub's own simulated gateways answer its rollouts, trusting its key
            from pymonitor.actors.configsync import trusted_keys
            from pymonitor.simulators.rollout_agent import equip_gateways

            hosts = equip_gateways(node.fleet.settings, trusted_keys([rollout_key.public_key()]))
        node.fleet.start()
    if rollout_key is not None:
        node.rollouts = _start_rollouts(config, node, address, hosts, rollout_key)
    if signing_key is not None and config.hub is not None and config.hub.config_db is not None:
        from pymonitor.actors.configsync.hub_actor import HubConfigRole, HubConfigSettings

        node.config_hub = HubConfigRole(
            HubConfigSettings(fleet=fleet_name, db_path=Path(config.hub.config_db), key=signing_key),
            node=name,
            address=address,
            clock=clock,
            supervisor=supervisor,
            ca_file=config.broker.ca_file,
        ).start()
    if synced is not None:
        from pymonitor.actors.configsync.node_actor import NodeConfigRole

        node.config_node = NodeConfigRole(
            synced, address=address, clock=clock, supervisor=supervisor, ca_file=config.broker.ca_file
        ).start()
    if alerting is not None:
        from pymonitor.actors.alerting.role import AlertingRole

        assert config.hub is not None
        node.alerting = AlertingRole(
            fleet=fleet_name,
            node=f"{name}.alerting",
            config=alerting,
            db_path=config.hub.alerts_db,
            address=address,
            clock=clock,
            supervisor=supervisor,
            ca_file=config.broker.ca_file,
        ).start()
    return node


def _start_fleet_roles(node: RunningNode, db: str, fleet: str, name: str, every_s: float) -> Any:
    """The fleet-health role actors beside the hub: fed from its stream, their events published as event.v1."""
    from pymonitor.actors.fleet_roles.host import FleetRoles, store_roles
    from pymonitor.broker import topics
    from pymonitor.messages import encode

    hub = node.hub
    assert hub is not None
    hub.wait_ready()  # the roles read the store the hub creates: not before its schema exists

    def publish(event: Any) -> None:
        hub.bridge.publish(topics.up(fleet, name, "events"), encode(event))

    roles = FleetRoles(
        node.supervisor, node.clock, store_roles(Path(db), name), publish, node=f"{name}.fleet", analyse_every_s=every_s
    ).start()
    hub.on_frame_also = roles.on_frame
    return roles


def _alerting_config(config: NodeConfig) -> Any:
    """The hub's [alerting] file parsed (an AlertingConfig), or None; a bad file is a ConfigError naming it."""
    if config.hub is None or config.hub.alerting_config is None:
        return None
    try:
        from pymonitor.actors.alerting.config import load_config
        from pymonitor.actors.alerting.errors import AlertConfigError
    except ImportError as exc:  # httpx / holidays: the alerts extra
        raise ConfigError(f"[hub].alerting_config: alerting needs pymonitor[alerts] installed ({exc})") from None
    try:
        return load_config(config.hub.alerting_config, now_ms=time.time_ns() // 1_000_000)
    except AlertConfigError as exc:
        raise ConfigError(f"[hub].alerting_config: {exc}") from None


def _config_sync_settings(config: NodeConfig, config_path: str | Path | None) -> Any:
    """NodeConfigSettings for a node with [configsync], or None; what cannot work is a ConfigError naming it."""
    c = config.configsync
    if c is None:
        return None
    from pymonitor.actors.configsync import ConfigSyncError, load_trusted_keys
    from pymonitor.actors.configsync.node_actor import NodeConfigSettings

    if config_path is None:
        raise ConfigError("[configsync]: needs the node's TOML file (run it with `pymonitor node --config FILE`)")
    try:
        trusted = load_trusted_keys(c.trusted_keys)
    except ConfigSyncError as exc:
        raise ConfigError(f"[configsync].trusted_keys: {exc}") from None
    if not trusted:
        raise ConfigError(f"[configsync].trusted_keys: no public key (*.pem) in {c.trusted_keys}")
    return NodeConfigSettings(toml_path=Path(config_path), state_path=Path(c.state), trusted=trusted, policy=c.policy)


def _signing_key(config: NodeConfig, *, any_role: bool = False) -> Ed25519PrivateKey | None:
    """The hub's signing key when it runs rollouts or config sync (``any_role``: whenever it is set);
    a key file that does not load is a config error."""
    from pymonitor.actors.configsync import ConfigSyncError, load_private_key

    h = config.hub
    if h is None or h.signing_key is None or (not any_role and h.rollouts_db is None and h.config_db is None):
        return None
    try:
        return load_private_key(h.signing_key)
    except ConfigSyncError as exc:
        raise ConfigError(f"[hub].signing_key: {exc}") from None


def _command_trust(
    config: NodeConfig, signing_key: Ed25519PrivateKey | None, synced: Mapping[str, Ed25519PublicKey] | None
) -> dict[str, Ed25519PublicKey] | None:
    """The keys the node's simulated gateways take control commands from: the hub's own key ([hub].signing_key)
    and the keys a config-synced node trusts ([configsync].trusted_keys); None (unsigned accepted) without both."""
    from pymonitor.actors.configsync import trusted_keys

    if config.simulator is None:
        return None
    key = signing_key or _signing_key(config, any_role=True)
    trust = dict(synced or {})
    if key is not None:
        trust.update(trusted_keys([key.public_key()]))
    return trust or None


def hub_inventory_hosts(db_path: str) -> dict[str, str]:
    """device -> gateway from the hub store's imported inventory (`pymonitor import inventory`); {} without one."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}
    try:
        rows = conn.execute("SELECT d.name, i.gateway FROM inventory i JOIN devices d ON d.id = i.device_id")
        return dict(rows.fetchall())
    except sqlite3.Error:
        return {}  # no inventory table (yet)
    finally:
        conn.close()


def _start_rollouts(
    config: NodeConfig, node: RunningNode, address: Any, simulated: dict[str, str], key: Ed25519PrivateKey
) -> RolloutRole:
    h = config.hub
    assert h is not None and h.rollouts_db is not None
    directory = NodeDirectory(lambda: {**hub_inventory_hosts(h.db), **simulated}, node.clock.now_ms)
    settings = RolloutSettings(
        fleet=config.node.fleet,
        node=config.node.name,
        db_path=Path(h.rollouts_db),
        node_of=directory,
        key=key,
        ca_file=config.broker.ca_file,
    )
    return RolloutRole(settings, address=address, clock=node.clock, supervisor=node.supervisor).start()


def run_until_signal(
    node: RunningNode, *, seconds: float | None = None, report: Callable[[RunningNode], None] | None = None
) -> None:
    """Block until SIGTERM/SIGINT (or ``seconds``), reporting every few seconds, then stop the node."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while not stop.wait(5.0 if deadline is None else max(0.0, min(5.0, deadline - time.monotonic()))):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if report is not None:
                report(node)
    finally:
        node.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
