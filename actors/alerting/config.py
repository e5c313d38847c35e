"""The whole ``[alerting]`` config: rules, channels, receivers, route, muting, hours, escalation, replies.

One TOML file (or the ``[alerting]`` table of a bigger one), parsed by the cores' own parsers so
every error reads the same: ``AlertConfigError: alerts.toml: alerting.route.receiver: unknown
receiver 'pager' (known: ops-mail, ops-sms)``. A receiver is a channel plus the recipients it
reaches; routes and escalation levels name receivers, never channels, so swapping an SMS gateway
is one line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .alert import SEVERITIES
from .chains import EscalationPolicy
from .channels.config import ChannelSpec, parse_channels
from .errors import AlertConfigError
from .fields import count, fail, table, text, texts
from .replies import RepliesConfig
from .routing import RoutingTree
from .rules import Rule, parse_rules
from .schedule import BusinessHours, EmergencyRules, profiles
from .silences import InhibitRule, MaintenanceWindow, Silence

Style = Literal["sms", "push", "full"]
"""How a receiver's messages are written: one SMS that fits, a short push, or the full text."""
STYLE_OF_CHANNEL: Mapping[str, Style] = {
    "sms_http": "sms",
    "gammu": "sms",
    "ntfy": "push",
    "gotify": "push",
    "email": "full",
    "webhook": "full",
    "log": "full",
}
MAX_SMS_SEGMENTS = 10
TOP_KEYS = frozenset(
    {"rules", "channels", "receivers", "route", "inhibit", "maintenance", "silences", "hours", "emergency",
     "escalation", "notify", "replies", "sites"}
)  # fmt: skip
_NOTIFY_KEYS = frozenset({"hours", "site_hours", "escalate", "sms_per_hour", "sms_burst"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Receiver:
    """Who a route or an escalation level reaches: a channel and its recipients."""

    name: str
    channel: str
    style: Style
    recipients: tuple[str, ...]
    max_segments: int = 1  # SMS parts one message may take


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifySettings:
    """Which business-hours profile applies where, what escalates, and the SMS rate limit."""

    hours: str | None = None  # the default profile; None: always in hours
    site_hours: Mapping[str, str] = field(default_factory=dict)  # site -> profile
    escalate: frozenset[str] = frozenset({"critical", "emergency"})  # severities that start an escalation
    sms_per_hour: float = 30.0
    sms_burst: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertingConfig:
    rules: tuple[Rule, ...]
    channels: Mapping[str, ChannelSpec]
    receivers: Mapping[str, Receiver]
    routing: RoutingTree
    inhibit: tuple[InhibitRule, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    silences: tuple[Silence, ...] = ()
    hours: Mapping[str, BusinessHours] = field(default_factory=dict)
    emergency: EmergencyRules = field(default_factory=EmergencyRules)
    escalation: EscalationPolicy | None = None
    notify: NotifySettings = field(default_factory=NotifySettings)
    replies: RepliesConfig | None = None
    sites: Mapping[str, str] = field(default_factory=dict)  # node -> site, for nodes that do not say

    def profile_for(self, labels: Mapping[str, str]) -> BusinessHours | None:
        """The business-hours profile of an alert's site (or the default one); None: always in hours."""
        name = self.notify.site_hours.get(labels.get("site", ""), self.notify.hours)
        return None if name is None else self.hours[name]

    def in_hours(self, labels: Mapping[str, str], ts_ms: int) -> bool:
        """The rule engine's ``in_hours`` hook."""
        profile = self.profile_for(labels)
        return profile is None or profile.in_hours(ts_ms)


def parse_config(raw: Mapping[str, object], *, now_ms: int) -> AlertingConfig:
    """The config from a TOML document (its ``[alerting]`` table if it has one); errors name the path."""
    spec = table(raw.get("alerting", raw), "alerting" if "alerting" in raw else "(top level)", TOP_KEYS)
    channels = parse_channels(spec.get("channels", {}))
    receivers = _receivers(spec.get("receivers", {}), channels)
    hour_profiles = profiles(spec)
    notify = _notify(spec.get("notify", {}), hour_profiles)
    escalation = EscalationPolicy.from_config(spec, receivers=receivers) if "escalation" in spec else None
    return AlertingConfig(
        rules=parse_rules(spec.get("rules", [])),
        channels=channels,
        receivers=receivers,
        routing=RoutingTree.from_config(spec, receivers=receivers),
        inhibit=tuple(InhibitRule.parse(r, f"inhibit[{i}]") for i, r in enumerate(_list(spec, "inhibit"))),
        maintenance=tuple(
            MaintenanceWindow.parse(m, f"maintenance[{i}]") for i, m in enumerate(_list(spec, "maintenance"))
        ),
        silences=tuple(
            Silence.parse(s, f"silences[{i}]", now_ms=now_ms) for i, s in enumerate(_list(spec, "silences"))
        ),
        hours=hour_profiles,
        emergency=EmergencyRules.parse(spec.get("emergency", {}), "emergency"),
        escalation=escalation,
        notify=notify,
        replies=RepliesConfig.parse(spec["replies"]) if "replies" in spec else None,
        sites={node: text(site, f"sites.{node}") for node, site in table(spec.get("sites", {}), "sites").items()},
    )


def load_config(path: str | Path, *, now_ms: int) -> AlertingConfig:
    """Read and parse a TOML file; every error starts with the file name."""
    where = Path(path)
    try:
        raw = tomllib.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AlertConfigError(f"{where}: not valid TOML: {exc}") from None
    try:
        return parse_config(raw, now_ms=now_ms)
    except AlertConfigError as exc:
        prefix = "alerting." if "alerting" in raw and not str(exc).startswith("alerting") else ""
        raise AlertConfigError(f"{where}: {prefix}{exc}") from None


def _list(spec: Mapping[str, object], key: str) -> list[object]:
    raw = spec.get(key, [])
    if not isinstance(raw, list):
        raise fail(key, f"expected a list of tables ([[{key}]]), got {type(raw).__name__}")
    return raw


def _receivers(raw: object, channels: Mapping[str, ChannelSpec]) -> dict[str, Receiver]:
    found: dict[str, Receiver] = {}
    for name, item in table(raw, "receivers").items():
        where = f"receivers.{name}"
        spec = table(item, where, {"channel", "recipients", "max_segments"})
        if "channel" not in spec:
            raise fail(f"{where}.channel", "missing (the name of a [channels.<name>] table)")
        channel = text(spec["channel"], f"{where}.channel")
        if channel not in channels:
            known = ", ".join(sorted(channels)) or "none defined"
            raise fail(f"{where}.channel", f"unknown channel {channel!r} (known: {known})")
        recipients = texts(spec.get("recipients", []), f"{where}.recipients")
        if not recipients:
            raise fail(f"{where}.recipients", "at least one recipient (an address, number, topic or name)")
        segments = count(spec.get("max_segments", 1), f"{where}.max_segments", maximum=MAX_SMS_SEGMENTS)
        if segments < 1:
            raise fail(f"{where}.max_segments", f"expected an integer from 1 to {MAX_SMS_SEGMENTS}, got 0")
        found[name] = Receiver(
            name=name,
            channel=channel,
            style=STYLE_OF_CHANNEL.get(channels[channel].type, "full"),
            recipients=recipients,
            max_segments=segments,
        )
    if not found:
        raise fail("receivers", "at least one receiver (routes send to receivers)")
    return found


def _notify(raw: object, hours: Mapping[str, BusinessHours]) -> NotifySettings:
    spec = table(raw, "notify", _NOTIFY_KEYS)

    def profile(value: object, where: str) -> str:
        name = text(value, where)
        if name not in hours:
            raise fail(where, f"unknown business-hours profile {name!r} (known: {', '.join(sorted(hours)) or 'none'})")
        return name

    site_hours = {
        site: profile(name, f"notify.site_hours.{site}")
        for site, name in table(spec.get("site_hours", {}), "notify.site_hours").items()
    }
    escalate = texts(spec.get("escalate", ["critical", "emergency"]), "notify.escalate")
    for i, name in enumerate(escalate):
        if name not in SEVERITIES:
            raise fail(f"notify.escalate[{i}]", f"expected one of {', '.join(SEVERITIES)}, got {name!r}")
    per_hour = spec.get("sms_per_hour", 30.0)
    if isinstance(per_hour, bool) or not isinstance(per_hour, int | float) or not per_hour > 0:
        raise fail("notify.sms_per_hour", f"expected a positive number, got {per_hour!r}")
    burst = count(spec.get("sms_burst", 10), "notify.sms_burst", maximum=1000)
    if burst < 1:
        raise fail("notify.sms_burst", "expected an integer from 1 to 1000, got 0")
    return NotifySettings(
        hours=profile(spec["hours"], "notify.hours") if "hours" in spec else None,
        site_hours=site_hours,
        escalate=frozenset(escalate),
        sms_per_hour=float(per_hour),
        sms_burst=burst,
    )
