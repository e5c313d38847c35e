"""Alert rules from config: ``[[rules]]`` tables parsed into frozen :class:`Rule` objects.

Every error names the path and the reason (``rules[2].threshold.above: expected a number, got 'hot'``);
tables and texts are read with the package's ``fields`` readers, so rule errors read like routing's.

Config, one ``[[rules]]`` table per rule (a value at or past a threshold fails)::

    [[rules]]
    name = "temp_high"                    # unique; the summary defaults to "temp high"
    kind = "threshold"                    # threshold | rate_of_change | absence | anomaly | check
    metric = "temp_c"                     # node = / device = narrow it further
    threshold = { above = { warning = 70, critical = 90 }, clear = { critical = 85 } }
    fire_after = 3                        # consecutive failures; resolve_after: consecutive successes
    labels = { team = "facilities" }
    out_of_hours = { severity = "info", threshold = { above = 95 } }   # replaces the section whole

    # rate_of_change = { window_s = 600, above = 2.0 }   per minute, over points spanning >= half the window
    # absence = { after_s = 300 }     without metric: the whole node; one failure per silent tick()
    # anomaly = { score = 3.0, clear = 2.0 }
    # check = { name = "broker" }     kind = "check", no metric/device; any check without a name
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from . import fields
from .alert import Severity, is_severity, severity_rank
from .errors import AlertConfigError

Kind = Literal["threshold", "rate_of_change", "absence", "anomaly", "check"]
KINDS: tuple[Kind, ...] = ("threshold", "rate_of_change", "absence", "anomaly", "check")
RATE_SAMPLES = 32
"""Points kept per rate series: one per ``window / RATE_SAMPLES``, so memory does not grow with the reading rate."""
_COMMON_KEYS = frozenset(
    {"name", "kind", "metric", "node", "device", "severity", "summary", "labels", "fire_after", "resolve_after"}
)
_NOT_FOR_CHECKS = frozenset({"metric", "device"})  # a check result has neither
_HOURS_KEYS = ("in_hours", "out_of_hours")
_RESERVED_LABELS = frozenset({"node", "device", "metric", "site", "check"})
_SECTION_KEYS: dict[str, frozenset[str]] = {
    "threshold": frozenset({"above", "below", "clear"}),
    "rate_of_change": frozenset({"above", "below", "clear", "window_s"}),
    "absence": frozenset({"after_s"}),
    "anomaly": frozenset({"score", "clear"}),
    "check": frozenset({"name"}),
}

InHours = Callable[[Mapping[str, str], int], bool]
"""``in_hours(labels, ts_ms)``: whether business hours apply to this subject at this time."""
HOURS_CACHE_MS = 60_000
"""The schedule is asked at most once per subject per clock minute: schedules change on minutes, and
asking for every reading would halve the engine's throughput."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Level:
    """One severity step. ``fire`` and ``clear`` are multiplied by the rule's sign, so "below" is "above" negated."""

    severity: Severity
    fire: float
    clear: float
    text: str  # "above 90", for alert summaries


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The part of a rule that business hours may replace."""

    severity: Severity
    sign: float = 1.0  # +1: fires above, -1: fires below
    levels: tuple[Level, ...] = ()  # least to most severe; threshold, rate_of_change, anomaly
    window_ms: int = 0  # rate_of_change
    after_ms: int = 0  # absence


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One parsed rule; build with :func:`parse_rules`."""

    name: str
    kind: Kind
    metric: str | None = None  # None: any metric (absence without a metric watches whole nodes)
    node: str | None = None
    device: str | None = None
    check: str | None = None  # check rules: the check name, None for any
    summary: str
    labels: Mapping[str, str]
    fire_after: int = 1
    resolve_after: int = 1
    limits: Limits
    in_hours: Limits | None = None
    out_of_hours: Limits | None = None


# ---------------------------------------------------------------------------------------------- config


def _fail(path: str, expected: str, got: object) -> AlertConfigError:
    return AlertConfigError(f"{path}: expected {expected}, got {got!r}")


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, "a number", value)
    return float(value)


def _positive(value: object, path: str) -> float:
    number = _number(value, path)
    if number <= 0:
        raise _fail(path, "a positive number", value)
    return number


def _count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, "a whole number >= 1", value)
    return value


def _optional_text(table: Mapping[str, object], key: str, path: str) -> str | None:
    value = table.get(key)
    return None if value is None else fields.text(value, f"{path}.{key}")


def _severity(value: object, path: str) -> Severity:
    if not is_severity(value):
        raise _fail(path, "one of info, warning, critical, emergency", value)
    return value  # type: ignore[return-value]  # is_severity checked it


def _labels(value: object, path: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, text in fields.table(value, path).items():
        if key in _RESERVED_LABELS:
            raise AlertConfigError(f"{path}.{key}: reserved label (set from the observation)")
        labels[key] = fields.text(text, f"{path}.{key}")
    return labels


def _by_severity(value: object, path: str, default: Severity) -> list[tuple[Severity, float]]:
    """``90`` or ``{warning = 70, critical = 90}`` as (severity, number) pairs, least severe first."""
    if not isinstance(value, Mapping):
        return [(default, _number(value, path))]
    pairs = [(_severity(key, f"{path}.{key}"), _number(number, f"{path}.{key}")) for key, number in value.items()]
    if not pairs:
        raise _fail(path, "a number or a table of severity = number", value)
    return sorted(pairs, key=lambda pair: severity_rank(pair[0]))


def _levels(section: Mapping[str, object], path: str, severity: Severity, unit: str) -> tuple[float, tuple[Level, ...]]:
    """(sign, levels) of a section holding exactly one of ``above`` / ``below`` and an optional ``clear``."""
    if ("above" in section) == ("below" in section):
        raise AlertConfigError(f"{path}: expected exactly one of above, below")
    direction = "above" if "above" in section else "below"
    sign = 1.0 if direction == "above" else -1.0
    fires = _by_severity(section[direction], f"{path}.{direction}", severity)
    clears = dict(_by_severity(section["clear"], f"{path}.clear", fires[0][0])) if "clear" in section else {}
    levels: list[Level] = []
    for sev, fire in fires:
        if levels and sign * fire <= levels[-1].fire:
            raise _fail(f"{path}.{direction}.{sev}", f"a value past {levels[-1].severity}'s threshold", fire)
        clear = clears.pop(sev, fire)
        if sign * clear > sign * fire:
            side = "at most" if sign > 0 else "at least"
            raise _fail(f"{path}.clear", f"{side} the fire threshold {fire:g} (fires {direction})", clear)
        levels.append(Level(severity=sev, fire=sign * fire, clear=sign * clear, text=f"{direction} {fire:g}{unit}"))
    if clears:
        raise AlertConfigError(f"{path}.clear.{next(iter(clears))}: no {direction} threshold at that severity")
    return sign, tuple(levels)


def _limits(kind: Kind, table: Mapping[str, object], path: str, severity: Severity) -> Limits:
    severity = _severity(table.get("severity", severity), f"{path}.severity")
    if kind == "check":
        return Limits(severity=severity)
    where = f"{path}.{kind}"
    section = fields.table(table.get(kind), where, _SECTION_KEYS[kind])
    if kind == "absence":
        return Limits(severity=severity, after_ms=round(_positive(section.get("after_s"), f"{where}.after_s") * 1000))
    if kind == "anomaly":
        score = _number(section.get("score"), f"{where}.score")
        clear = _number(section.get("clear", score), f"{where}.clear")
        if clear > score:
            raise _fail(f"{where}.clear", f"at most the fire score {score:g}", clear)
        return Limits(
            severity=severity, levels=(Level(severity=severity, fire=score, clear=clear, text=f"score {score:g}"),)
        )
    if kind == "threshold":
        sign, levels = _levels(section, where, severity, "")
        return Limits(severity=severity, sign=sign, levels=levels)
    window_ms = round(_positive(section.get("window_s"), f"{where}.window_s") * 1000)
    sign, levels = _levels(section, where, severity, "/min")
    return Limits(severity=severity, sign=sign, levels=levels, window_ms=window_ms)


def _rule(entry: object, path: str) -> Rule:
    table = fields.table(entry, path)
    kind = table.get("kind")
    if kind not in KINDS:
        raise _fail(f"{path}.kind", "one of " + ", ".join(KINDS), kind)
    allowed = (_COMMON_KEYS - _NOT_FOR_CHECKS if kind == "check" else _COMMON_KEYS) | {kind, *_HOURS_KEYS}
    fields.table(table, path, allowed)
    name = fields.text(table.get("name"), f"{path}.name")
    metric = _optional_text(table, "metric", path)
    if metric is None and kind in ("threshold", "rate_of_change"):
        raise AlertConfigError(f"{path}.metric: required for a {kind} rule")
    check = None
    if kind == "check":
        section = fields.table(table.get("check", {}), f"{path}.check", _SECTION_KEYS["check"])
        check = _optional_text(section, "name", f"{path}.check")
    limits = _limits(kind, table, path, "warning")
    hours: dict[str, Limits | None] = {}
    for key in _HOURS_KEYS:
        override = table.get(key)
        if override is not None:
            override = fields.table(override, f"{path}.{key}", {"severity"} if kind == "check" else {"severity", kind})
            override = {kind: table.get(kind), **override}
        hours[key] = None if override is None else _limits(kind, override, f"{path}.{key}", limits.severity)
    return Rule(
        name=name,
        kind=kind,
        metric=metric,
        node=_optional_text(table, "node", path),
        device=_optional_text(table, "device", path),
        check=check,
        summary=fields.text(table.get("summary", name.replace("_", " ")), f"{path}.summary"),
        labels=_labels(table.get("labels", {}), f"{path}.labels"),
        fire_after=_count(table.get("fire_after", 1), f"{path}.fire_after"),
        resolve_after=_count(table.get("resolve_after", 1), f"{path}.resolve_after"),
        limits=limits,
        in_hours=hours["in_hours"],
        out_of_hours=hours["out_of_hours"],
    )


def parse_rules(entries: object, path: str = "rules") -> tuple[Rule, ...]:
    """Rules from the ``[[rules]]`` array of a TOML document; errors name the path: ``rules[2].threshold.above``."""
    if not isinstance(entries, list):
        raise _fail(path, "a list of rule tables", entries)
    rules: list[Rule] = []
    where: dict[str, int] = {}
    for index, entry in enumerate(entries):
        rule = _rule(entry, f"{path}[{index}]")
        if rule.name in where:
            raise AlertConfigError(
                f"{path}[{index}].name: duplicate rule {rule.name!r} (also {path}[{where[rule.name]}])"
            )
        where[rule.name] = index
        rules.append(rule)
    return tuple(rules)
