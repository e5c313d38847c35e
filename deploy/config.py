"""Node configuration: a TOML file validated against typed sections.

Each section is a msgspec Struct; unknown keys and wrong types are refused with the file,
the TOML path and the reason (``node.toml at [hub].flush_interval_ms: expected int, got str``).
A section that is present turns its role on (``[hub]``, ``[simulator]``).
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from pymonitor.actors.summary.config import SummarySection, parse_summary_config
from pymonitor.actors.summary.errors import SummaryError
from pymonitor.actors.summary.uplink_plan import check_uplink
from pymonitor.broker.topics import NAME_PATTERN
from pymonitor.broker.url import BrokerUrlError, parse_broker_url

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN.pattern)]
Positive = Annotated[int, msgspec.Meta(gt=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file, the key and why."""


class NodeSection(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    fleet: Name = "default"


class BrokerSection(msgspec.Struct, forbid_unknown_fields=True):
    url: str = "auto"  # a mqtt:// or mqtts:// URL, or "embedded"/"mosquitto"/"auto" to start one here
    ca_file: str | None = None


class ClockSection(msgspec.Struct, forbid_unknown_fields=True):
    speed: PositiveFloat = 1.0
    start_ms: Annotated[int, msgspec.Meta(ge=0)] | None = None  # an accelerated clock starts here (a replay)


class HubSection(msgspec.Struct, forbid_unknown_fields=True):
    db: str = "pymonitor.db"
    flush_interval_ms: Positive = 200
    flush_max_frames: Positive = 256
    share_group: Name | None = None
    # Retention tiers (actors/hub/retention.py; defaults: actors/summary/retention.py DEFAULT_TIERS,
    # twelve months of 1h summaries): days each tier is kept, and a budget for the DB file (0: none).
    raw_days: NonNegativeFloat = 7.0
    minute_days: NonNegativeFloat = 90.0
    hour_days: NonNegativeFloat = 365.0
    day_days: NonNegativeFloat = 1825.0
    storage_budget_mb: NonNegativeFloat = 0.0
    retention_interval_s: PositiveFloat = 300.0
    # Fleet rollouts (actors/rollout/actor.py): the state file `pymonitor rollout start` writes to turns the
    # rollout actor on; its commands are signed with this ed25519 key (`pymonitor config keygen --key ...`).
    rollouts_db: str | None = None
    signing_key: str | None = None
    # Remote configuration (actors/configsync/): the hub's config database turns the config-sync role on;
    # desired configs are signed with signing_key and published retained to each node.
    config_db: str | None = None
    # Fleet-health roles (actors/fleet_roles/, docs/fleet.md): battery, firmware, calibration, environment and
    # gateway load, fed from the hub's stream; their events go up as event.v1. Each analyses the whole fleet
    # every fleet_analyse_every_s (and a minute after start); `pymonitor fleet ...` serves the latest answer.
    fleet_roles: bool = False
    fleet_analyse_every_s: PositiveFloat = 300.0
    # Alerting (actors/alerting/, docs/alerting.md): its TOML file turns the alerting role on beside the hub;
    # every alert, notification and acknowledgement goes to alerts_db.
    alerting_config: str | None = None
    alerts_db: str = "alerts.db"


class SimulatorSection(msgspec.Struct, forbid_unknown_fields=True):
    devices: Positive = 500
    gateways: Positive = 10
    interval_s: PositiveFloat = 1.0
    seed: Annotated[int, msgspec.Meta(ge=0)] = 1
    max_rows_per_frame: Positive = 4096
    ack_timeout_s: PositiveFloat = 10.0
    compression: Literal["none", "zstd", "zlib"] = "none"
    alerts: bool = True  # threshold alerts (battery low, vibration high) sent as events
    outbox_dir: str | None = None  # one durable outbox file per gateway here; None = in memory
    outbox_cap_mb: Positive = 256  # per gateway, on disk
    durability: Literal["normal", "full"] = "normal"  # "full": fsync each commit (survives power loss)
    live_window_s: PositiveFloat = 60.0  # after an outage, older frames drain as backfill
    daily_budget_mb: PositiveFloat | None = None  # per gateway and UTC day; past its pace sampling thins out
    uplink: Literal["raw", "summaries"] = "raw"  # summaries: raw stays in the raw tier until the hub asks
    summary_window_s: PositiveFloat = 3600.0
    raw_keep_days: PositiveFloat = 7.0
    summary_keep_days: PositiveFloat = 90.0  # the summaries sent, kept on the node too (its own tier)


class ConfigSyncSection(msgspec.Struct, forbid_unknown_fields=True):
    """A node that takes its config from the hub: whose signatures it trusts, where it keeps its state."""

    trusted_keys: str  # a directory of the hub's public keys (*.pem, `pymonitor config keygen` makes them)
    state: str = "configsync.state"  # applied versions, base for three-way merges, replay window
    policy: Literal["hub-wins", "node-wins", "refuse"] = "hub-wins"  # a key changed both here and at the hub


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True):
    node: NodeSection
    broker: BrokerSection = msgspec.field(default_factory=BrokerSection)
    clock: ClockSection = msgspec.field(default_factory=ClockSection)
    hub: HubSection | None = None
    simulator: SimulatorSection | None = None
    summary: SummarySection | None = None  # per-metric windows and functions of the summary uplink
    configsync: ConfigSyncSection | None = None  # this node's config comes from the hub, signed


_PATH = re.compile(r" - at `\$((?:\.[A-Za-z0-9_]+|\[\d+\])*)`$")


def _toml_path(path: str) -> str:
    parts = [p for p in path.split(".") if p]
    if not parts:
        return "the top level"
    return f"[{parts[0]}]" + "".join(f".{p}" for p in parts[1:])


def _choices(path: str) -> tuple[Any, ...]:
    """The allowed values of the Literal field at a ``.section.key`` path, if it is one."""
    hint: Any = NodeConfig
    for part in (p for p in path.split(".") if p):
        hints = typing.get_type_hints(hint) if isinstance(hint, type) else {}
        hint = hints.get(part)
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
            hint = args[0]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def _explain(error: msgspec.ValidationError) -> tuple[str, str]:
    text = str(error)
    match = _PATH.search(text)
    path = match.group(1) if match else ""
    reason = text[: match.start()] if match else text
    reason = reason.replace("`", "")
    choices = _choices(path)
    if choices and reason.startswith("Invalid enum value"):
        reason = f"expected one of {', '.join(map(str, choices))}, got {reason.split(' ', 3)[-1]}"
    reason = re.sub(r"^Object contains unknown field (\S+)", r"unknown key '\1'", reason)
    reason = re.sub(r"^Object missing required field (\S+)", r"missing required key '\1'", reason)
    if reason.startswith("Expected"):
        reason = "e" + reason[1:]
    return _toml_path(path), reason


def parse_config(data: dict[str, Any], source: str = "config") -> NodeConfig:
    """Validate already-parsed TOML data."""
    data = dict(data)
    summary_table = data.pop("summary", None)
    try:
        config = msgspec.convert(data, NodeConfig, strict=True)
    except msgspec.ValidationError as exc:
        where, reason = _explain(exc)
        raise ConfigError(f"{source} at {where}: {reason}") from None
    if summary_table is not None:
        try:  # its own parser: its errors name the metric's table, which msgspec's paths cannot
            config.summary = parse_summary_config(summary_table)
            check_uplink(config.summary)
        except SummaryError as exc:
            raise ConfigError(f"{source} at {exc}") from None
    url = config.broker.url
    if url not in ("embedded", "mosquitto", "auto"):
        try:
            parse_broker_url(url)
        except BrokerUrlError as exc:
            raise ConfigError(f"{source} at [broker].url: {exc}") from None
    for signed in ("rollouts_db", "config_db"):
        if config.hub is not None and getattr(config.hub, signed) is not None and config.hub.signing_key is None:
            raise ConfigError(f"{source} at [hub].signing_key: required with [hub].{signed} (what it sends is signed)")
    if config.simulator is not None and config.simulator.gateways > config.simulator.devices:
        raise ConfigError(f"{source} at [simulator].gateways: more gateways than devices")
    return config


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node's TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path.name)
