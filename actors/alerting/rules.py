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

Rules come from :func:`~pymonitor.actors.alerting.rule_config.parse_rules` (re-exported here).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

from .alert import Alert, AnomalyEvent, CheckResult, Observation, Severity, fingerprint
from .rule_config import HOURS_CACHE_MS, KINDS, RATE_SAMPLES, InHours, Kind, Level, Limits, Rule, parse_rules

__all__ = [
    "HOURS_CACHE_MS",
    "KINDS",
    "RATE_SAMPLES",
    "InHours",
    "Kind",
    "Level",
    "Limits",
    "Rule",
    "RuleEngine",
    "always_in_hours",
    "parse_rules",
]


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
