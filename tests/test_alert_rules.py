"""Alert rules: config errors that name the path, and an engine that fires once and resolves once."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.alert import (
    Alert,
    AnomalyEvent,
    CheckResult,
    Observation,
    Series,
    fingerprint,
    is_severity,
    severity_rank,
)
from pymonitor.actors.alerting.rules import RATE_SAMPLES, Rule, RuleEngine, always_in_hours, parse_rules

MINUTE_MS = 60_000


def _rule(**fields: Any) -> dict[str, Any]:
    return {"name": "temp_high", "kind": "threshold", "metric": "temp_c", "threshold": {"above": 90}, **fields}


def _engine(*entries: dict[str, Any], **options: Any) -> RuleEngine:
    return RuleEngine(parse_rules(list(entries)), **options)


def _obs(
    value: float,
    ts_ms: int = 0,
    *,
    metric: str = "temp_c",
    node: str = "gw-1",
    device: str = "probe-1",
    site: str | None = None,
) -> Observation:
    return Observation(node=node, device=device, metric=metric, ts_ms=ts_ms, value=value, site=site)


def _feed(engine: RuleEngine, values: list[float], **kwargs: Any) -> list[Alert]:
    alerts: list[Alert] = []
    for index, value in enumerate(values):
        alerts += engine.observe(_obs(value, index * 1000, **kwargs))
    return alerts


def _states(alerts: list[Alert]) -> list[tuple[str, str]]:
    return [(alert.state, alert.severity) for alert in alerts]


# -- value types


def test_severities_are_ordered_and_validated() -> None:
    assert [severity_rank(s) for s in ("info", "warning", "critical", "emergency")] == [0, 1, 2, 3]
    assert is_severity("critical") and not is_severity("fatal") and not is_severity(3)


def test_fingerprint_is_stable_and_ignores_label_order() -> None:
    assert fingerprint("r", {"a": "1", "b": "2"}) == fingerprint("r", {"b": "2", "a": "1"})
    assert fingerprint("r", {"a": "1"}) != fingerprint("s", {"a": "1"})
    assert len(fingerprint("r", {"a": "1"})) == 16 and int(fingerprint("r", {"a": "1"}), 16) >= 0


def test_observation_names_its_series() -> None:
    assert _obs(1.0).series == Series("gw-1", "probe-1", "temp_c")


# -- config


def test_parse_rules_builds_frozen_rules_with_defaults() -> None:
    (rule,) = parse_rules([_rule(labels={"team": "ops"})])
    assert isinstance(rule, Rule)
    assert (rule.summary, rule.fire_after, rule.resolve_after, rule.limits.severity) == ("temp high", 1, 1, "warning")
    assert rule.labels == {"team": "ops"} and rule.in_hours is None
    with pytest.raises(AttributeError):
        rule.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"rules": []}, "rules: expected a list of rule tables, got {'rules': []}"),
        ([42], "rules[0]: expected a table, got int"),
        ([{1: "x"}], "rules[0]: expected string keys, got 1"),
        ([_rule(kind="magic")], "rules[0].kind: expected one of threshold, rate_of_change, absence, anomaly, check"),
        ([_rule(colour="red")], "rules[0].colour: unknown key"),
        ([_rule(name="")], "rules[0].name: expected a non-empty string, got ''"),
        ([_rule(metric=None)], "rules[0].metric: required for a threshold rule"),
        ([_rule(metric=3)], "rules[0].metric: expected a non-empty string, got 3"),
        ([_rule(severity="fatal")], "rules[0].severity: expected one of info, warning, critical, emergency"),
        ([_rule(fire_after=-2)], "rules[0].fire_after: expected a whole number >= 1, got -2"),
        ([_rule(resolve_after=0)], "rules[0].resolve_after: expected a whole number >= 1, got 0"),
        ([_rule(fire_after=True)], "rules[0].fire_after: expected a whole number >= 1, got True"),
        ([_rule(fire_after=1.5)], "rules[0].fire_after: expected a whole number >= 1, got 1.5"),
        ([_rule(labels={"node": "x"})], "rules[0].labels.node: reserved label"),
        ([_rule(labels={"team": 5})], "rules[0].labels.team: expected a non-empty string, got 5"),
        ([_rule(labels="ops")], "rules[0].labels: expected a table, got str"),
        ([_rule(threshold=None)], "rules[0].threshold: expected a table, got None"),
        ([_rule(threshold={"above": "hot"})], "rules[0].threshold.above: expected a number, got 'hot'"),
        ([_rule(threshold={"above": True})], "rules[0].threshold.above: expected a number, got True"),
        ([_rule(threshold={"above": math.inf})], "rules[0].threshold.above: expected a number, got inf"),
        ([_rule(threshold={})], "rules[0].threshold: expected exactly one of above, below"),
        ([_rule(threshold={"above": 1, "below": 0})], "rules[0].threshold: expected exactly one of above, below"),
        ([_rule(threshold={"above": {}})], "rules[0].threshold.above: expected a number or a table of severity"),
        ([_rule(threshold={"above": {"loud": 3}})], "rules[0].threshold.above.loud: expected one of info, warning"),
        ([_rule(threshold={"above": {"warning": "x"}})], "rules[0].threshold.above.warning: expected a number"),
        (
            [_rule(threshold={"above": {"warning": 90, "critical": 70}})],
            "rules[0].threshold.above.critical: expected a value past warning's threshold, got 70",
        ),
        (
            [_rule(threshold={"below": {"warning": 11.5, "critical": 11.8}})],
            "rules[0].threshold.below.critical: expected a value past warning's threshold, got 11.8",
        ),
        (
            [_rule(threshold={"above": 90, "clear": 95})],
            "rules[0].threshold.clear: expected at most the fire threshold 90 (fires above), got 95",
        ),
        (
            [_rule(threshold={"below": 11.5, "clear": 11})],
            "rules[0].threshold.clear: expected at least the fire threshold 11.5 (fires below), got 11",
        ),
        (
            [_rule(threshold={"above": {"warning": 70}, "clear": {"critical": 60}})],
            "rules[0].threshold.clear.critical: no above threshold at that severity",
        ),
        ([_rule(threshold={"above": 1, "for_s": 3})], "rules[0].threshold.for_s: unknown key"),
        (
            [_rule(kind="rate_of_change", threshold=None, rate_of_change={"above": 5})],
            "rules[0].threshold: unknown key",
        ),
        (
            [{"name": "r", "kind": "rate_of_change", "metric": "m", "rate_of_change": {"above": 5, "window_s": -1}}],
            "rules[0].rate_of_change.window_s: expected a positive number, got -1",
        ),
        ([{"name": "a", "kind": "absence", "absence": {}}], "rules[0].absence.after_s: expected a number, got None"),
        ([{"name": "a", "kind": "anomaly", "anomaly": {"score": "x"}}], "rules[0].anomaly.score: expected a number"),
        (
            [{"name": "a", "kind": "anomaly", "anomaly": {"score": 3, "clear": 4}}],
            "rules[0].anomaly.clear: expected at most the fire score 3, got 4",
        ),
        ([{"name": "c", "kind": "check", "check": {"host": "x"}}], "rules[0].check.host: unknown key"),
        ([{"name": "c", "kind": "check", "metric": "temp_c"}], "rules[0].metric: unknown key"),
        ([{"name": "c", "kind": "check", "check": {"name": ""}}], "rules[0].check.name: expected a non-empty string"),
        ([_rule(in_hours=[1])], "rules[0].in_hours: expected a table, got list"),
        ([_rule(in_hours={"metric": "x"})], "rules[0].in_hours.metric: unknown key"),
        (
            [_rule(out_of_hours={"threshold": {"above": "hot"}})],
            "rules[0].out_of_hours.threshold.above: expected a number, got 'hot'",
        ),
        ([_rule(out_of_hours={"severity": "loud"})], "rules[0].out_of_hours.severity: expected one of info"),
        (
            [{"name": "c", "kind": "check", "in_hours": {"check": {"name": "x"}}}],
            "rules[0].in_hours.check: unknown key",
        ),
        ([_rule(), _rule(metric="other")], "rules[1].name: duplicate rule 'temp_high' (also rules[0])"),
        ([_rule(summary="")], "rules[0].summary: expected a non-empty string"),
    ],
)
def test_bad_config_is_rejected_with_its_path(entries: object, message: str) -> None:
    with pytest.raises(AlertConfigError) as error:
        parse_rules(entries)
    assert str(error.value).startswith(message)


RULES_TOML = """
[[rules]]
name = "temp_high"
kind = "threshold"
metric = "temp_c"
threshold = { above = { warning = 70, critical = 90 }, clear = { critical = 85 } }
fire_after = 3
labels = { team = "facilities" }
out_of_hours = { severity = "info", threshold = { above = 95 } }

[[rules]]
name = "heating_fast"
kind = "rate_of_change"
metric = "temp_c"
rate_of_change = { window_s = 600, above = 2.0 }

[[rules]]
name = "node_silent"
kind = "absence"
absence = { after_s = 300 }

[[rules]]
name = "odd_reading"
kind = "anomaly"
anomaly = { score = 3.0, clear = 2.0 }

[[rules]]
name = "broker_down"
kind = "check"
check = { name = "broker" }
severity = "critical"
"""


def test_a_toml_rules_document_parses() -> None:
    rules = parse_rules(tomllib.loads(RULES_TOML)["rules"])
    assert [(r.name, r.kind) for r in rules] == [
        ("temp_high", "threshold"),
        ("heating_fast", "rate_of_change"),
        ("node_silent", "absence"),
        ("odd_reading", "anomaly"),
        ("broker_down", "check"),
    ]
    temp_high = rules[0]
    assert [(lv.severity, lv.fire, lv.clear) for lv in temp_high.limits.levels] == [
        ("warning", 70, 70),
        ("critical", 90, 85),
    ]
    assert temp_high.out_of_hours is not None and temp_high.out_of_hours.levels[0].fire == 95
    assert (rules[1].limits.window_ms, rules[2].limits.after_ms, rules[4].check) == (600_000, 300_000, "broker")


def test_error_names_the_index_of_the_bad_rule() -> None:
    with pytest.raises(AlertConfigError, match=r"^rules\[2\]\.threshold\.above: expected a number, got 'hot'$"):
        parse_rules([_rule(name="a"), _rule(name="b"), _rule(name="c", threshold={"above": "hot"})])


@given(
    st.dictionaries(
        st.sampled_from(["name", "kind", "metric", "threshold", "fire_after", "labels", "x"]),
        st.one_of(
            st.none(),
            st.integers(-3, 100),
            st.text(max_size=8),
            st.floats(allow_nan=True),
            st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=4), max_size=3),
        ),
    )
)
@settings(max_examples=300, deadline=None)
def test_any_config_parses_or_fails_with_alert_config_error(entry: dict[str, object]) -> None:
    try:
        parse_rules([entry])
    except AlertConfigError as error:
        assert str(error).startswith("rules[0]")


# -- thresholds


def test_threshold_fires_once_and_resolves_once() -> None:
    engine = _engine(_rule(labels={"team": "ops"}))
    alerts = _feed(engine, [50, 95, 96, 97, 80, 70], site="Site A")
    assert _states(alerts) == [("firing", "warning"), ("resolved", "warning")]
    firing, resolved = alerts
    assert firing.labels == {"node": "gw-1", "device": "probe-1", "metric": "temp_c", "site": "Site A", "team": "ops"}
    assert firing.fingerprint == resolved.fingerprint == fingerprint("temp_high", firing.labels)
    assert firing.summary == "temp high: 95 on gw-1/probe-1 temp_c (above 90)" and firing.value == 95
    assert (firing.starts_ms, firing.ends_ms) == (1000, None)
    assert resolved.summary == "temp high resolved: 80 on gw-1/probe-1 temp_c"
    assert (resolved.starts_ms, resolved.ends_ms) == (1000, 4000)
    assert engine.tracked == 0  # quiet series cost nothing


@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.floats(50, 100), max_size=60),
    st.integers(1, 3),
    st.integers(1, 3),
)
@settings(max_examples=200, deadline=None)
def test_any_readings_give_alternating_transitions(values: list[float], fire_after: int, resolve_after: int) -> None:
    levels = {"above": {"warning": 70, "critical": 90}, "clear": {"warning": 60, "critical": 85}}
    engine = _engine(_rule(threshold=levels, fire_after=fire_after, resolve_after=resolve_after))
    alerts = _feed(engine, values)
    firing: Alert | None = None
    for alert in alerts:
        assert alert.value is not None and math.isfinite(alert.value)
        if alert.state == "resolved":
            assert firing is not None and alert.ends_ms is not None
            firing = None
        else:
            assert firing is None or firing.severity != alert.severity  # re-fires only to change severity
            firing = alert
    assert engine.invalid == sum(not math.isfinite(value) for value in values)
    assert engine.tracked <= 1


def test_threshold_fires_at_the_threshold_value() -> None:
    assert _states(_feed(_engine(_rule()), [90])) == [("firing", "warning")]


def test_threshold_below_with_hysteresis_holds_until_clear() -> None:
    engine = _engine(_rule(name="battery_low", metric="battery_v", threshold={"below": 11.5, "clear": 11.8}))
    alerts = _feed(engine, [12.0, 11.4, 11.6, 11.7, 11.9], metric="battery_v")
    assert _states(alerts) == [("firing", "warning"), ("resolved", "warning")]
    assert alerts[1].value == 11.9


def test_hysteresis_fire_above_90_clear_below_85() -> None:
    engine = _engine(_rule(threshold={"above": 90, "clear": 85}))
    assert _states(_feed(engine, [91, 86, 85, 89, 84.9])) == [("firing", "warning"), ("resolved", "warning")]


def test_severity_levels_escalate_and_deescalate_with_one_fingerprint() -> None:
    engine = _engine(_rule(threshold={"above": {"warning": 70, "critical": 90}, "clear": {"critical": 85}}))
    alerts = _feed(engine, [75, 80, 95, 87, 84, 60])
    assert _states(alerts) == [
        ("firing", "warning"),
        ("firing", "critical"),
        ("firing", "warning"),
        ("resolved", "warning"),
    ]
    assert len({alert.fingerprint for alert in alerts}) == 1
    assert len({alert.starts_ms for alert in alerts}) == 1


def test_fire_after_n_consecutive_failures_and_resolve_after_m_successes() -> None:
    engine = _engine(_rule(fire_after=3, resolve_after=2))
    assert _feed(engine, [95, 95, 50, 95, 95]) == []  # a success resets the failure streak
    alerts = _feed(engine, [95, 50, 95, 50, 50])
    assert _states(alerts) == [("firing", "warning"), ("resolved", "warning")]
    assert alerts[0].starts_ms == 0 and alerts[1].ends_ms == 4000


def test_nan_and_inf_are_counted_and_never_fire_or_resolve() -> None:
    engine = _engine(_rule())
    assert _feed(engine, [math.nan, math.inf, -math.inf]) == []
    assert engine.invalid == 3
    assert _states(_feed(engine, [95, math.nan, 95])) == [("firing", "warning")]
    assert engine.invalid == 4


def test_values_that_are_not_numbers_are_counted_as_invalid() -> None:
    engine = _engine(_rule(), {"name": "odd", "kind": "anomaly", "anomaly": {"score": 3}})
    assert engine.observe(_obs(None)) == []  # type: ignore[arg-type]
    assert engine.observe(_obs("95")) == []  # type: ignore[arg-type]
    assert engine.anomaly(AnomalyEvent(series=Series("a", "b", "c"), ts_ms=0, score=None)) == []  # type: ignore[arg-type]
    assert engine.invalid == 3


def test_firing_lists_the_latest_alert_of_each_firing_subject() -> None:
    engine = _engine(_rule(threshold={"above": {"warning": 70, "critical": 90}}))
    _feed(engine, [75, 95], device="a")
    _feed(engine, [75, 50], device="b")
    _feed(engine, [75], device="c", metric="humidity")
    assert [(a.labels["device"], a.severity, a.value) for a in engine.firing()] == [("a", "critical", 95)]


def test_rules_match_metric_node_and_device() -> None:
    engine = _engine(_rule(node="gw-2", device="probe-9"), _rule(name="any_temp"))
    assert engine.observe(_obs(95, metric="humidity")) == []
    alerts = (
        engine.observe(_obs(95))
        + engine.observe(_obs(95, node="gw-2"))
        + engine.observe(_obs(95, node="gw-2", device="probe-9"))
    )
    assert [(a.rule, a.labels["node"]) for a in alerts] == [
        ("any_temp", "gw-1"),
        ("any_temp", "gw-2"),
        ("temp_high", "gw-2"),
        ("any_temp", "gw-2"),
    ]


def test_series_are_independent() -> None:
    engine = _engine(_rule())
    assert len(engine.observe(_obs(95, device="a")) + engine.observe(_obs(95, device="b"))) == 2
    assert engine.tracked == 2


def test_sites_come_from_config_or_observations() -> None:
    engine = _engine(_rule(), sites={"gw-1": "Depot"})
    assert engine.observe(_obs(95))[0].labels["site"] == "Depot"
    assert engine.observe(_obs(95, node="gw-3"))[0].labels.get("site") is None


# -- business hours


def test_out_of_hours_limits_replace_threshold_and_severity() -> None:
    asked: list[tuple[Mapping[str, str], int]] = []

    def in_hours(labels: Mapping[str, str], ts_ms: int) -> bool:
        asked.append((labels, ts_ms))
        return ts_ms < 10 * MINUTE_MS

    entry = _rule(
        severity="critical", labels={"team": "ops"}, out_of_hours={"severity": "info", "threshold": {"above": 99}}
    )
    engine = _engine(entry, in_hours=in_hours)
    assert _states(engine.observe(_obs(95, 0))) == [("firing", "critical")]
    assert _states(engine.observe(_obs(60, 1))) == [("resolved", "critical")]
    assert engine.observe(_obs(95, 20 * MINUTE_MS)) == []  # out of hours: fires above 99 only
    assert _states(engine.observe(_obs(99.5, 20 * MINUTE_MS + 1))) == [("firing", "info")]
    assert asked == [  # once per subject and minute
        ({"node": "gw-1", "device": "probe-1", "metric": "temp_c", "team": "ops"}, 0),
        ({"node": "gw-1", "device": "probe-1", "metric": "temp_c", "team": "ops"}, 20 * MINUTE_MS),
    ]


def test_schedule_answer_is_reused_within_the_minute_only() -> None:
    calls: list[int] = []

    def in_hours(labels: Mapping[str, str], ts_ms: int) -> bool:
        calls.append(ts_ms)
        return False

    engine = _engine(_rule(out_of_hours={"severity": "info"}), in_hours=in_hours)
    for ts_ms in (0, 59_999, 60_000, 60_001):
        engine.observe(_obs(20, ts_ms))
    engine.observe(_obs(20, 0, device="probe-2"))
    assert calls == [0, 60_000, 0]


def test_in_hours_override_and_severity_only_override() -> None:
    entry = _rule(in_hours={"threshold": {"above": 50}}, out_of_hours={"severity": "emergency"})
    engine = _engine(entry, in_hours=lambda labels, ts_ms: ts_ms < 10 * MINUTE_MS)
    assert _states(engine.observe(_obs(60, 0))) == [("firing", "warning")]
    assert _states(engine.observe(_obs(95, 20 * MINUTE_MS))) == [("firing", "emergency")]  # severity change re-fires
    (rule,) = engine.rules
    assert rule.out_of_hours is not None and rule.out_of_hours.levels[0].fire == rule.limits.levels[0].fire == 90


def test_default_schedule_is_always_in_hours() -> None:
    assert always_in_hours({}, 0)
    engine = _engine(_rule(out_of_hours={"severity": "info"}, in_hours={"severity": "critical"}))
    assert _states(engine.observe(_obs(95))) == [("firing", "critical")]


# -- rate of change


def _rate_rule(**section: Any) -> dict[str, Any]:
    return {
        "name": "heating_fast",
        "kind": "rate_of_change",
        "metric": "temp_c",
        "rate_of_change": {"window_s": 600, "above": 2.0, **section},
    }


def test_rate_of_change_fires_on_a_fast_rise_per_minute() -> None:
    engine = _engine(_rate_rule())
    alerts: list[Alert] = []
    for minute in range(30):  # flat for 10 min, then +3 per minute, then flat again
        value = 20 + 3 * min(max(minute - 10, 0), 8)
        alerts += engine.observe(_obs(value, minute * MINUTE_MS))
    assert _states(alerts) == [("firing", "warning"), ("resolved", "warning")]
    assert alerts[0].summary.startswith("heating fast: +") and alerts[0].summary.endswith("(above 2/min)")
    assert alerts[0].starts_ms == 17 * MINUTE_MS and alerts[0].value == pytest.approx(2.1)  # (41 - 20) / 10 min


def test_rate_of_change_needs_points_spanning_half_the_window() -> None:
    engine = _engine(_rate_rule())
    assert engine.observe(_obs(20, 0)) + engine.observe(_obs(80, 4 * MINUTE_MS)) == []  # 15/min, but over 4 min only
    assert _states(engine.observe(_obs(80, 5 * MINUTE_MS))) == [("firing", "warning")]


def test_rate_of_change_below_catches_a_fast_fall() -> None:
    engine = _engine(_rate_rule(above=None) | {"rate_of_change": {"window_s": 60, "below": -10}})
    alerts = [a for s in range(0, 120, 5) for a in engine.observe(_obs(100 - 0.5 * s, s * 1000))]
    assert _states(alerts) == [("firing", "warning")]
    assert alerts[0].value == pytest.approx(-30)


def test_rate_of_change_keeps_bounded_history_and_counts_out_of_order_points() -> None:
    engine = _engine(_rate_rule())
    for second in range(3600):
        engine.observe(_obs(20, second * 1000))
    assert all(len(history) <= RATE_SAMPLES + 1 for history in engine._history.values())
    assert engine.observe(_obs(50, 1000)) == [] and engine.out_of_order == 1


def test_rate_of_change_restarts_after_a_gap_longer_than_the_window() -> None:
    engine = _engine(_rate_rule())
    assert engine.observe(_obs(20, 0)) == []
    assert engine.observe(_obs(90, 3_600_000)) == []  # no point left in the window: no rate from a stale one
    assert _states(engine.observe(_obs(120, 3_600_000 + 5 * MINUTE_MS))) == [("firing", "warning")]


# -- absence


def test_absence_of_a_series_fires_on_tick_and_resolves_on_data() -> None:
    engine = _engine({"name": "probe_silent", "kind": "absence", "metric": "temp_c", "absence": {"after_s": 300}})
    assert engine.tick(0) == []  # nothing seen yet: nothing known to be missing
    engine.observe(_obs(20, 0, site="Site B"))
    engine.observe(_obs(20, 20_000))
    engine.observe(_obs(20, 21_000, metric="humidity"))  # another metric does not count
    assert engine.tick(319_999) == []
    (firing,) = engine.tick(320_000)
    assert firing.summary == "probe silent: no data from gw-1/probe-1 temp_c for 300 s"
    assert firing.labels == {"node": "gw-1", "device": "probe-1", "metric": "temp_c", "site": "Site B"}
    assert engine.tick(400_000) == []
    assert engine.observe(_obs(20, 10_000)) == []  # a late old reading neither moves last-seen back...
    (resolved,) = engine.observe(_obs(20, 500_000))  # ...and fresh data resolves
    assert (resolved.state, resolved.summary) == (
        "resolved",
        "probe silent resolved: gw-1/probe-1 temp_c reporting again",
    )
    assert engine.tick(600_000) == []


def test_absence_of_a_node_counts_any_metric_and_debounces_on_ticks() -> None:
    engine = _engine(
        {
            "name": "node_silent",
            "kind": "absence",
            "absence": {"after_s": 60},
            "fire_after": 2,
            "resolve_after": 2,
            "severity": "critical",
        }
    )
    engine.observe(_obs(1, 0, metric="a"))
    engine.observe(_obs(1, 30_000, metric="b"))
    assert engine.tick(90_000) == []  # first silent tick
    assert _states(engine.tick(100_000)) == [("firing", "critical")]
    assert engine.observe(_obs(1, 110_000, metric="c")) == []
    alerts = engine.observe(_obs(1, 111_000, metric="c"))
    assert _states(alerts) == [("resolved", "critical")] and alerts[0].labels == {"node": "gw-1"}


def test_absence_rule_respects_business_hours_after_s() -> None:
    entry = {
        "name": "silent",
        "kind": "absence",
        "absence": {"after_s": 60},
        "out_of_hours": {"absence": {"after_s": 3600}},
    }
    engine = _engine(entry, in_hours=lambda labels, ts_ms: False)
    engine.observe(_obs(1, 0))
    assert engine.tick(120_000) == []
    assert len(engine.tick(3_600_000)) == 1


# -- anomalies


def test_anomaly_events_fire_at_score_and_clear_below_clear() -> None:
    engine = _engine(
        {
            "name": "odd_temp",
            "kind": "anomaly",
            "metric": "temp_c",
            "anomaly": {"score": 3, "clear": 2},
            "severity": "info",
        }
    )
    series = Series("gw-1", "probe-1", "temp_c")
    alerts: list[Alert] = []
    for index, score in enumerate([1.0, 3.5, 2.5, math.nan, 1.5]):
        alerts += engine.anomaly(AnomalyEvent(series=series, ts_ms=index, score=score, site="Site C"))
    assert _states(alerts) == [("firing", "info"), ("resolved", "info")]
    assert alerts[0].summary == "odd temp: score 3.5 on gw-1/probe-1 temp_c (score 3)"
    assert alerts[0].labels["site"] == "Site C" and engine.invalid == 1
    other = AnomalyEvent(series=Series("gw-1", "probe-1", "humidity"), ts_ms=9, score=9.0)
    assert engine.anomaly(other) == []
    assert _engine({"name": "any", "kind": "anomaly", "anomaly": {"score": 3}}).anomaly(other) != []


# -- service checks


def test_check_failures_fire_and_successes_resolve() -> None:
    engine = _engine(
        {"name": "broker_down", "kind": "check", "check": {"name": "broker"}, "fire_after": 2, "severity": "critical"}
    )

    def result(ok: bool, ts_ms: int, name: str = "broker") -> CheckResult:
        return CheckResult(name=name, ok=ok, ts_ms=ts_ms, detail="" if ok else "connection refused", node="hub-1")

    assert engine.check(result(True, 0)) == []
    assert engine.check(result(False, 1)) == []
    assert engine.check(result(False, 2, name="disk")) == []
    (firing,) = engine.check(result(False, 3))
    assert firing.summary == "broker down: broker failed on hub-1: connection refused"
    assert firing.labels == {"node": "hub-1", "check": "broker"}
    assert engine.check(result(False, 4)) == []
    (resolved,) = engine.check(result(True, 5))
    assert (resolved.state, resolved.summary) == ("resolved", "broker down resolved: broker ok on hub-1")


def test_check_without_node_uses_its_site_and_node_filters_apply() -> None:
    engine = _engine({"name": "any_check", "kind": "check"}, {"name": "hub_check", "kind": "check", "node": "hub-1"})
    alerts = engine.check(CheckResult(name="http", ok=False, ts_ms=0, site="Site D"))
    assert [(a.rule, dict(a.labels)) for a in alerts] == [("any_check", {"check": "http", "site": "Site D"})]


def test_check_rule_has_business_hours_severity() -> None:
    entry = {"name": "c", "kind": "check", "out_of_hours": {"severity": "info"}}
    engine = _engine(entry, in_hours=lambda labels, ts_ms: labels.get("check") != "nightly")
    assert _states(engine.check(CheckResult(name="nightly", ok=False, ts_ms=0))) == [("firing", "info")]
