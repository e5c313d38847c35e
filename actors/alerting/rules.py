"""Alert rules from config, and the engine that turns observations into firing and resolved alerts.

Pure: the caller feeds observations, check results, anomaly events and ``tick(now_ms)``; the engine
returns only state transitions, so an alert fires once and resolves once however often it is fed.

Every rule has a Gatus-style debounce (``fire_after`` consecutive failures, ``resolve_after``
consecutive successes) and thresholds with hysteresis (``clear``: fire at 90, hold until below 85).
A threshold may name several severities (``above = {warning = 70, critical = 90}``); moving between
them while firing re-emits ``firing`` with the same fingerprint and the new severity, so a router
can page on the escalation. ``in_hours`` / ``out_of_hours`` replace a rule's limits and severity
when the caller's business-hours callable says so.

State stays small: a series costs nothing until it fails once, and is dropped again when it is
quiet. Rate rules keep at most ``RATE_SAMPLES`` points per series; absence rules one timestamp.

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
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .alert import Alert, AnomalyEvent, CheckResult, Observation, Severity, fingerprint, is_severity, severity_rank
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


def _table(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _fail(path, "a table", value)
    unknown = [key for key in value if not isinstance(key, str)]
    if unknown:
        raise _fail(path, "string keys", unknown[0])
    return value


def _only(table: Mapping[str, object], allowed: frozenset[str], path: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise AlertConfigError(f"{path}.{unknown[0]}: unknown key (expected one of {', '.join(sorted(allowed))})")


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


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, "a non-empty string", value)
    return value


def _optional_text(table: Mapping[str, object], key: str, path: str) -> str | None:
    value = table.get(key)
    return None if value is None else _text(value, f"{path}.{key}")


def _severity(value: object, path: str) -> Severity:
    if not is_severity(value):
        raise _fail(path, "one of info, warning, critical, emergency", value)
    return value  # type: ignore[return-value]  # is_severity checked it


def _labels(value: object, path: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, text in _table(value, path).items():
        if key in _RESERVED_LABELS:
            raise AlertConfigError(f"{path}.{key}: reserved label (set from the observation)")
        labels[key] = _text(text, f"{path}.{key}")
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
    section = _table(table.get(kind), where)
    _only(section, _SECTION_KEYS[kind], where)
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
    table = _table(entry, path)
    kind = table.get("kind")
    if kind not in KINDS:
        raise _fail(f"{path}.kind", "one of " + ", ".join(KINDS), kind)
    _only(table, (_COMMON_KEYS - _NOT_FOR_CHECKS if kind == "check" else _COMMON_KEYS) | {kind, *_HOURS_KEYS}, path)
    name = _text(table.get("name"), f"{path}.name")
    metric = _optional_text(table, "metric", path)
    if metric is None and kind in ("threshold", "rate_of_change"):
        raise AlertConfigError(f"{path}.metric: required for a {kind} rule")
    check = None
    if kind == "check":
        section = _table(table.get("check", {}), f"{path}.check")
        _only(section, _SECTION_KEYS["check"], f"{path}.check")
        check = _optional_text(section, "name", f"{path}.check")
    limits = _limits(kind, table, path, "warning")
    hours: dict[str, Limits | None] = {}
    for key in _HOURS_KEYS:
        override = table.get(key)
        if override is not None:
            override = _table(override, f"{path}.{key}")
            _only(override, frozenset({"severity"} if kind == "check" else {"severity", kind}), f"{path}.{key}")
            override = {kind: table.get(kind), **override}
        hours[key] = None if override is None else _limits(kind, override, f"{path}.{key}", limits.severity)
    return Rule(
        name=name,
        kind=kind,
        metric=metric,
        node=_optional_text(table, "node", path),
        device=_optional_text(table, "device", path),
        check=check,
        summary=_text(table.get("summary", name.replace("_", " ")), f"{path}.summary"),
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


# ---------------------------------------------------------------------------------------------- engine

_Key = tuple[int, str, str, str]
"""(rule index, node, device, metric); for check rules (rule index, node, site, check name)."""
_QUIET, _FIRING, _RESOLVED = 0, 1, 2
_SHOWN = {"threshold": "{:.4g}", "rate_of_change": "{:+.3g}/min", "anomaly": "score {:.3g}"}


def always_in_hours(labels: Mapping[str, str], ts_ms: int) -> bool:
    """The default schedule: business hours all the time, so ``in_hours`` limits (or the base ones) apply."""
    return True


class _State:
    """Debounce and firing state of one rule on one subject; exists only while the subject is not quiet."""

    __slots__ = ("alert", "fails", "fingerprint", "labels", "level", "oks", "severity", "starts_ms")

    def __init__(self, rule: Rule, labels: dict[str, str]) -> None:
        self.level = -1  # index into the limits' levels while firing, -1 while not
        self.fails = 0
        self.oks = 0
        self.starts_ms = 0
        self.severity: Severity = rule.limits.severity
        self.labels = {**labels, **rule.labels}
        self.fingerprint = fingerprint(rule.name, self.labels)
        self.alert: Alert | None = None  # the last firing alert, while firing


def _level(limits: Limits, value: float, held: int) -> int:
    """The most severe level ``value`` reaches; a level already firing (``held``) holds down to its clear value."""
    signed = limits.sign * value
    levels = limits.levels
    for index in range(len(levels) - 1, -1, -1):
        level = levels[index]
        if signed >= (level.clear if held >= index else level.fire):
            return index
    return -1


def _step(rule: Rule, state: _State, level: int, severity: Severity, ts_ms: int) -> int:
    """Feed one failure (``level >= 0``) or success (-1) to the debounce; return the transition, if any."""
    if level >= 0:
        state.oks = 0
        if state.level < 0:
            state.fails += 1
            if state.fails < rule.fire_after:
                return _QUIET
            state.fails = 0
            state.starts_ms = ts_ms
        elif level == state.level and severity == state.severity:
            return _QUIET
        state.level = level
        state.severity = severity
        return _FIRING
    state.fails = 0
    if state.level < 0:
        return _QUIET
    state.oks += 1
    if state.oks < rule.resolve_after:
        return _QUIET
    state.oks = 0
    state.level = -1
    return _RESOLVED


def _alert(rule: Rule, state: _State, transition: int, ts_ms: int, value: float | None, what: str) -> Alert:
    firing = transition == _FIRING
    alert = Alert(
        fingerprint=state.fingerprint,
        rule=rule.name,
        labels=state.labels,
        severity=state.severity,
        state="firing" if firing else "resolved",
        summary=f"{rule.summary}: {what}" if firing else f"{rule.summary} resolved: {what}",
        value=value,
        starts_ms=state.starts_ms,
        ends_ms=None if firing else ts_ms,
    )
    state.alert = alert if firing else None
    return alert


def _finite(value: float) -> bool:
    """False for NaN, infinities and anything that is not a number (a decoder bug must not stop the engine)."""
    try:
        return math.isfinite(value)
    except TypeError:
        return False


def _subject(key: _Key) -> str:
    _, node, device, metric = key
    return node + (f"/{device}" if device else "") + (f" {metric}" if metric else "")


class RuleEngine:
    """Evaluates parsed rules; every method returns the alerts that changed state, most often none.

    NaN and infinite readings or scores are counted in ``invalid`` and otherwise ignored: they never
    fire, resolve or prove a series alive. Rate readings older than the series' last kept one are
    counted in ``out_of_order``.
    """

    def __init__(
        self, rules: Sequence[Rule], *, in_hours: InHours = always_in_hours, sites: Mapping[str, str] | None = None
    ) -> None:
        self.rules = tuple(rules)
        self.invalid = 0
        self.out_of_order = 0
        self._in_hours = in_hours
        self._sites: dict[str, str] = dict(sites or {})  # node -> site, learnt from observations
        self._hourly = tuple(r.in_hours is not None or r.out_of_hours is not None for r in self.rules)
        self._states: dict[_Key, _State] = {}
        self._history: dict[_Key, deque[tuple[int, float]]] = {}
        self._seen: dict[_Key, int] = {}
        self._hours: dict[_Key, tuple[int, bool]] = {}  # subject -> (minute, in hours) of its last schedule answer
        reading = [i for i, r in enumerate(self.rules) if r.kind in ("threshold", "rate_of_change", "absence")]
        self._any_metric = tuple(i for i in reading if self.rules[i].metric is None)
        metrics = {self.rules[i].metric for i in reading} - {None}
        self._by_metric = {m: tuple(i for i in reading if self.rules[i].metric in (None, m)) for m in metrics}
        self._anomaly_rules = tuple(i for i, r in enumerate(self.rules) if r.kind == "anomaly")
        self._check_rules = tuple(i for i, r in enumerate(self.rules) if r.kind == "check")

    def firing(self) -> list[Alert]:
        """The latest firing alert of every subject firing now (to re-announce after a restart or summarise)."""
        return [state.alert for state in self._states.values() if state.alert is not None]

    @property
    def tracked(self) -> int:
        """Subjects holding debounce or firing state (the rest cost nothing)."""
        return len(self._states)

    def observe(self, obs: Observation) -> list[Alert]:
        """Threshold, rate and absence rules on one reading."""
        indices = self._by_metric.get(obs.metric, self._any_metric)
        alerts: list[Alert] = []
        if not indices:
            return alerts
        value = obs.value
        if not _finite(value):
            self.invalid += 1
            return alerts
        node, device, metric, ts_ms = obs.node, obs.device, obs.metric, obs.ts_ms
        if obs.site is not None:
            self._sites[node] = obs.site
        for index in indices:
            rule = self.rules[index]
            if (rule.node is not None and rule.node != node) or (rule.device is not None and rule.device != device):
                continue
            if rule.kind == "absence":
                self._arrived(
                    rule, (index, node, device, metric) if rule.metric else (index, node, "", ""), ts_ms, alerts
                )
                continue
            key = (index, node, device, metric)
            limits = self._limits(rule, key, ts_ms) if self._hourly[index] else rule.limits
            if rule.kind == "threshold":
                self._judge(rule, key, limits, value, ts_ms, alerts)
                continue
            rate = self._rate(key, limits.window_ms, ts_ms, value)
            if rate is not None:
                self._judge(rule, key, limits, rate, ts_ms, alerts)
        return alerts

    def anomaly(self, event: AnomalyEvent) -> list[Alert]:
        """Anomaly rules on one detector verdict: a failure at ``score`` or more."""
        alerts: list[Alert] = []
        if not _finite(event.score):
            self.invalid += 1
            return alerts
        node, device, metric = event.series
        if event.site is not None:
            self._sites[node] = event.site
        for index in self._anomaly_rules:
            rule = self.rules[index]
            if rule.metric not in (None, metric) or rule.node not in (None, node) or rule.device not in (None, device):
                continue
            key = (index, node, device, metric)
            self._judge(rule, key, self._limits(rule, key, event.ts_ms), event.score, event.ts_ms, alerts)
        return alerts

    def check(self, result: CheckResult) -> list[Alert]:
        """Check rules on one service check result."""
        alerts: list[Alert] = []
        node = result.node or ""
        for index in self._check_rules:
            rule = self.rules[index]
            if rule.check not in (None, result.name) or rule.node not in (None, node):
                continue
            key = (index, node, result.site or "", result.name)
            state = self._states.get(key)
            if state is None:
                if result.ok:
                    continue
                state = self._states[key] = _State(rule, self._labels(rule, key))
            limits = self._limits(rule, key, result.ts_ms)
            transition = _step(rule, state, -1 if result.ok else 0, limits.severity, result.ts_ms)
            if transition:
                what = f"{result.name} {'ok' if result.ok else 'failed'}" + (f" on {node}" if node else "")
                what += f": {result.detail}" if result.detail else ""
                alerts.append(_alert(rule, state, transition, result.ts_ms, None, what))
            self._forget_if_quiet(key, state)
        return alerts

    def tick(self, now_ms: int) -> list[Alert]:
        """Absence rules: every subject silent for ``after_s`` counts one failure per tick."""
        alerts: list[Alert] = []
        for key, last_ms in self._seen.items():
            rule = self.rules[key[0]]
            limits = self._limits(rule, key, now_ms)
            silent_ms = now_ms - last_ms
            if silent_ms < limits.after_ms:
                continue
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = _State(rule, self._labels(rule, key))
            transition = _step(rule, state, 0, limits.severity, now_ms)
            if transition:
                what = f"no data from {_subject(key)} for {silent_ms // 1000} s"
                alerts.append(_alert(rule, state, transition, now_ms, None, what))
        return alerts

    # -- helpers

    def _labels(self, rule: Rule, key: _Key) -> dict[str, str]:
        _, node, device, what = key
        labels: dict[str, str] = {"node": node} if node else {}
        if rule.kind == "check":
            site = device or self._sites.get(node)
            labels["check"] = what
        else:
            site = self._sites.get(node)
            labels.update({name: text for name, text in (("device", device), ("metric", what)) if text})
        if site:
            labels["site"] = site
        return labels

    def _limits(self, rule: Rule, key: _Key, ts_ms: int) -> Limits:
        if not self._hourly[key[0]]:
            return rule.limits
        minute = ts_ms // HOURS_CACHE_MS
        cached = self._hours.get(key)
        if cached is not None and cached[0] == minute:
            inside = cached[1]
        else:
            inside = self._in_hours({**self._labels(rule, key), **rule.labels}, ts_ms)
            self._hours[key] = (minute, inside)
        return (rule.in_hours if inside else rule.out_of_hours) or rule.limits

    def _judge(self, rule: Rule, key: _Key, limits: Limits, value: float, ts_ms: int, alerts: list[Alert]) -> None:
        """One level-based evaluation (threshold, rate, anomaly score); appends the transition, if any."""
        state = self._states.get(key)
        level = _level(limits, value, -1 if state is None else state.level)
        if state is None:
            if level < 0:
                return
            state = self._states[key] = _State(rule, self._labels(rule, key))
        severity = limits.levels[level].severity if level >= 0 else state.severity
        transition = _step(rule, state, level, severity, ts_ms)
        if transition:
            what = f"{_SHOWN[rule.kind].format(value)} on {_subject(key)}"
            if transition == _FIRING:
                what += f" ({limits.levels[level].text})"
            alerts.append(_alert(rule, state, transition, ts_ms, value, what))
        self._forget_if_quiet(key, state)

    def _forget_if_quiet(self, key: _Key, state: _State) -> None:
        if state.level < 0 and state.fails == 0:
            del self._states[key]

    def _arrived(self, rule: Rule, key: _Key, ts_ms: int, alerts: list[Alert]) -> None:
        """A fresh reading proves the subject alive: a success for its absence rule. A late old one proves nothing."""
        if ts_ms <= self._seen.get(key, ts_ms - 1):
            return
        self._seen[key] = ts_ms
        state = self._states.get(key)
        if state is None:
            return
        transition = _step(rule, state, -1, state.severity, ts_ms)
        if transition:
            alerts.append(_alert(rule, state, transition, ts_ms, None, f"{_subject(key)} reporting again"))
        self._forget_if_quiet(key, state)

    def _rate(self, key: _Key, window_ms: int, ts_ms: int, value: float) -> float | None:
        """Change per minute since the oldest kept point in the window; None until the points span half of it."""
        history = self._history.get(key)
        if history is None:
            self._history[key] = deque([(ts_ms, value)], maxlen=RATE_SAMPLES + 1)
            return None
        if ts_ms <= history[-1][0]:
            self.out_of_order += 1
            return None
        start_ms = ts_ms - window_ms
        while history and history[0][0] < start_ms:
            history.popleft()
        rate = None
        if history and ts_ms - history[0][0] >= window_ms // 2:
            rate = (value - history[0][1]) * 60_000 / (ts_ms - history[0][0])
        if not history or ts_ms - history[-1][0] >= window_ms // RATE_SAMPLES:
            history.append((ts_ms, value))
        return rate
