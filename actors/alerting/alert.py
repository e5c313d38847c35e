"""The values that flow through alerting: what the rule engine reads and the one ``Alert`` it emits.

Small on purpose: rules, routing, escalation and channels all speak these types, so an
``Alert`` carries only what a human or a router needs (who, what, how bad, since when), and
its ``fingerprint`` is the stable identity that ties a firing to its resolution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

Severity = Literal["info", "warning", "critical", "emergency"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical", "emergency")
"""Least to most urgent; ``severity_rank`` orders them."""
_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}

AlertState = Literal["firing", "resolved"]


def severity_rank(severity: str) -> int:
    """0 (info) to 3 (emergency): ``severity_rank(a.severity) >= severity_rank("critical")``."""
    return _RANK[severity]


def is_severity(value: object) -> bool:
    """Whether ``value`` names a severity (for config validation)."""
    return isinstance(value, str) and value in _RANK


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id of rule + labels: the same alert keeps it across restarts and processes."""
    text = "\x1f".join([rule, *(f"{k}\x1e{v}" for k, v in sorted(labels.items()))])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Series(NamedTuple):
    """What a time series is about: one metric of one device on one node."""

    node: str
    device: str
    metric: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One state transition of one rule for one subject: it started firing, or it resolved."""

    fingerprint: str  # fingerprint(rule, labels); the same for the firing and its resolution
    rule: str
    labels: Mapping[str, str]  # node / device / metric / site when known, plus the rule's own labels
    severity: Severity
    state: AlertState
    summary: str  # plain language, e.g. "battery low: 11.2 V on gw-7/bms (below 11.5)"
    value: float | None = None  # the value that caused the transition, if any
    starts_ms: int
    ends_ms: int | None = None  # set on resolution


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One reading of one series; NaN means the device reported it missing."""

    node: str
    device: str
    metric: str
    ts_ms: int
    value: float
    site: str | None = None

    @property
    def series(self) -> Series:
        return Series(self.node, self.device, self.metric)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The outcome of one service check (ping, HTTP, broker, disk...), failure or success."""

    name: str
    ok: bool
    ts_ms: int
    detail: str = ""
    node: str | None = None
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyEvent:
    """An anomaly detector's verdict on one point of a series; higher ``score`` is more unusual."""

    series: Series
    ts_ms: int
    score: float
    site: str | None = None
