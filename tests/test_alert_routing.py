"""Routing tree, notification grouping and muting (silences, maintenance, inhibition) of the alerting package."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.alert import Alert, fingerprint
from pymonitor.actors.alerting.fields import duration_ms
from pymonitor.actors.alerting.grouping import NotificationScheduler, group_labels
from pymonitor.actors.alerting.matchers import parse_matcher
from pymonitor.actors.alerting.routing import RoutingTree, Timings
from pymonitor.actors.alerting.silences import Muter, Silence

RECEIVERS = ("ops", "sms-oncall", "email-site", "audit")
S = 1000
MIN = 60 * S


def alert(
    rule: str = "battery_low", state: str = "firing", severity: str = "warning", at: int = 0, **labels: str
) -> Alert:
    return Alert(
        fingerprint=fingerprint(rule, labels),
        rule=rule,
        labels=labels,
        severity=severity,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        summary=f"{rule} on {labels}",
        starts_ms=at,
        ends_ms=at if state == "resolved" else None,
    )


def tree(route: dict[str, Any]) -> RoutingTree:
    return RoutingTree.from_config({"route": route}, receivers=RECEIVERS)


def receivers_of(t: RoutingTree, a: Alert) -> list[str]:
    return [m.receiver for m in t.route(a)]


# --- matchers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('site="berlin"', {"site": "berlin"}, True),
        ('site="berlin"', {"site": "bonn"}, False),
        ('site!="berlin"', {"site": "bonn"}, True),
        ('site!="berlin"', {}, True),
        ('severity=~"crit"', {"severity": "critical"}, False),  # anchored
        ('severity=~"crit.*"', {"severity": "critical"}, True),
        ('severity!~"crit.*"', {"severity": "warning"}, True),
        ('team=""', {}, True),  # a missing label is the empty string
        ('msg="say \\"hi\\""', {"msg": 'say "hi"'}, True),
    ],
)
def test_matcher_semantics_follow_alertmanager(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text, "m").matches(labels) is expected


def test_matcher_prints_as_written() -> None:
    assert str(parse_matcher(' site = "a" ', "m")) == 'site="a"'


@pytest.mark.parametrize("bad", ["site", "site=berlin", '="x"', 'site=="x"', 5, ""])
def test_matcher_refuses_malformed_text(bad: object) -> None:
    with pytest.raises(AlertConfigError, match=r"^m\[0\]: expected"):
        parse_matcher(bad, "m[0]")


@given(st.text(max_size=40))
def test_matcher_parser_never_crashes_on_arbitrary_text(source: str) -> None:
    try:
        m = parse_matcher(source, "m")
    except AlertConfigError as exc:
        assert str(exc).startswith("m: ")
    else:
        m.matches({"a": source})


# --- durations --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ms"), [(30, 30_000), (0.5, 500), ("30s", 30_000), ("1h30m", 5_400_000), ("250ms", 250)]
)
def test_durations_accept_numbers_and_units(raw: object, ms: int) -> None:
    assert duration_ms(raw, "x") == ms


@pytest.mark.parametrize("raw", ["soon", "", "5", "-5s", 0, -3, True, None, "5m junk"])
def test_durations_refuse_non_positive_or_unreadable(raw: object) -> None:
    with pytest.raises(AlertConfigError, match=r"^x: expected a positive duration"):
        duration_ms(raw, "x")


# --- routing --------------------------------------------------------------------------------------


def test_routing_picks_first_matching_child_and_falls_back_to_root() -> None:
    t = tree(
        {
            "receiver": "ops",
            "routes": [
                {"matchers": ['severity=~"critical|emergency"'], "receiver": "sms-oncall"},
                {"matchers": ['site="berlin"'], "receiver": "email-site"},
            ],
        }
    )
    assert receivers_of(t, alert(severity="critical", site="berlin")) == ["sms-oncall"]
    assert receivers_of(t, alert(site="berlin")) == ["email-site"]
    assert receivers_of(t, alert(site="bonn")) == ["ops"]


def test_routing_continue_also_tries_following_routes() -> None:
    t = tree(
        {
            "receiver": "ops",
            "routes": [
                {"matchers": ['site=~".+"'], "receiver": "audit", "continue": True},
                {"matchers": ['severity="critical"'], "receiver": "sms-oncall"},
                {"matchers": ['site="berlin"'], "receiver": "email-site"},
            ],
        }
    )
    assert receivers_of(t, alert(severity="critical", site="berlin")) == ["audit", "sms-oncall"]
    assert receivers_of(t, alert(site="bonn")) == ["audit"]
    assert receivers_of(t, alert()) == ["ops"]


def test_child_routes_inherit_receiver_grouping_and_timings() -> None:
    t = tree(
        {
            "receiver": "ops",
            "group_by": ["site"],
            "group_wait": "10s",
            "routes": [
                {
                    "matchers": ['site="berlin"'],
                    "group_interval": "1m",
                    "routes": [{"matchers": ['rule="door_open"'], "receiver": "email-site", "group_by": ["..."]}],
                }
            ],
        }
    )
    [outer] = t.route(alert(site="berlin"))
    assert (outer.receiver, outer.group_by, outer.path) == ("ops", ("site",), "route.routes[0]")
    assert outer.timings == Timings(group_wait_ms=10 * S, group_interval_ms=MIN)
    [inner] = t.route(alert(site="berlin", rule="door_open"))
    assert (inner.receiver, inner.group_by, inner.path) == ("email-site", ("...",), "route.routes[0].routes[0]")
    assert inner.timings.group_interval_ms == MIN and inner.timings.repeat_interval_ms == 4 * 3600 * S
    [root] = t.route(alert(site="bonn"))
    assert root.path == "route"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, r"^route: missing"),
        ({"route": {}}, r"^route.receiver: missing"),
        ({"route": []}, r"^route: expected a table, got list"),
        ({"route": {"receiver": "pager"}}, r"^route.receiver: unknown receiver 'pager' \(known: audit, "),
        ({"route": {"receiver": "ops", "matchers": []}}, r"^route.matchers: the root route matches every alert"),
        ({"route": {"receiver": "ops", "continue": True}}, r"^route.continue: not allowed"),
        ({"route": {"receiver": "ops", "group_wait": "later"}}, r"^route.group_wait: expected a positive duration"),
        ({"route": {"receiver": "ops", "reciever": "x"}}, r"^route.reciever: unknown key"),
        ({"route": {"receiver": "ops", "group_by": ["...", "site"]}}, r"^route.group_by: \"...\" \(all labels\)"),
        (
            {"route": {"receiver": "ops", "routes": [{}, {"matchers": ['x=~"("']}]}},
            r"^route.routes\[1\].matchers\[0\]: bad regex '\(': missing \)",
        ),
        (
            {"route": {"receiver": "ops", "routes": [{"continue": "yes"}]}},
            r"^route.routes\[0\].continue: expected true",
        ),
        ({"route": {"receiver": "ops", "routes": {"a": 1}}}, r"^route.routes: expected a list"),
        ({"route": {"receiver": "ops", "routes": [{"receiver": "nobody"}]}}, r"^route.routes\[0\].receiver: unknown"),
        ({"route": {"receiver": "ops", "group_by": [1]}}, r"^route.group_by\[0\]: expected a non-empty string"),
        ({"route": {1: "x"}}, r"^route: expected string keys"),
    ],
)
def test_bad_route_configs_are_refused_naming_the_path(config: dict[Any, Any], message: str) -> None:
    with pytest.raises(AlertConfigError, match=message):
        RoutingTree.from_config(config, receivers=RECEIVERS)


def test_routes_nested_too_deep_are_refused() -> None:
    route: dict[str, Any] = {"receiver": "ops"}
    for _ in range(20):
        route = {"receiver": "ops", "routes": [route]}
    with pytest.raises(AlertConfigError, match=r"nested deeper than 16 levels"):
        tree(route)


def test_unknown_receiver_message_says_when_none_are_defined() -> None:
    with pytest.raises(AlertConfigError, match=r"known: none defined"):
        RoutingTree.from_config({"route": {"receiver": "ops"}}, receivers=())


# --- grouping ---------------------------------------------------------------------------------------


def scheduler(**route: Any) -> NotificationScheduler:
    return NotificationScheduler(tree({"receiver": "ops", **route}))


def test_group_labels_by_all_labels_and_missing_labels() -> None:
    assert group_labels({"b": "2", "a": "1"}, ("...",)) == {"a": "1", "b": "2"}
    assert group_labels({"a": "1"}, ("a", "site")) == {"a": "1", "site": ""}


def test_first_notification_waits_group_wait_and_collects_the_burst() -> None:
    s = scheduler(group_by=["site"], group_wait="30s")
    s.add(alert(site="a", device="d1"), 0)
    s.add(alert(site="a", device="d2"), 10 * S)
    s.add(alert(site="b", device="d3"), 20 * S)
    assert s.due(29 * S) == []
    assert s.next_due_ms() == 30 * S
    notes = s.due(30 * S)
    assert [(n.group_labels, n.count) for n in notes] == [({"site": "a"}, 2)]
    [b] = s.due(50 * S)
    assert b.group_labels == {"site": "b"} and b.route == "route" and b.at_ms == 50 * S


def test_no_change_means_no_notification_until_repeat_interval() -> None:
    s = scheduler(group_wait="30s", group_interval="5m", repeat_interval="1h")
    a = alert(device="d1")
    s.add(a, 0)
    assert len(s.due(30 * S)) == 1
    s.add(a, 60 * S)  # the rules engine re-sends the same firing alert: not news
    assert s.due(30 * S + 5 * MIN) == []
    ticks = [s.due(30 * S + k * 5 * MIN) for k in range(2, 13)]
    assert [len(t) for t in ticks] == [0] * 10 + [1]  # reminder once an hour has passed since the last send
    assert ticks[-1][0].firing == (a,)


def test_new_alert_is_sent_at_next_group_interval_with_the_whole_group() -> None:
    s = scheduler(group_wait="30s", group_interval="5m")
    s.add(alert(device="d1"), 0)
    s.due(30 * S)
    s.add(alert(device="d2"), MIN)
    assert s.due(4 * MIN) == []
    [n] = s.due(30 * S + 5 * MIN)
    assert n.count == 2 and {a.labels["device"] for a in n.firing} == {"d1", "d2"}


def test_resolution_is_sent_once_then_the_group_disappears() -> None:
    s = scheduler(group_wait="30s", group_interval="5m")
    s.add(alert(device="d1"), 0)
    s.due(30 * S)
    s.add(alert(device="d1", state="resolved", at=MIN), MIN)
    [n] = s.due(30 * S + 5 * MIN)
    assert n.firing == () and [a.state for a in n.resolved] == ["resolved"] and n.count == 1
    assert s.groups == 0 and s.next_due_ms() is None
    assert s.due(DAY) == []


DAY = 24 * 3600 * S


def test_resolved_alert_never_notified_as_firing_is_dropped_quietly() -> None:
    s = scheduler(group_wait="30s")
    s.add(alert(device="d1", state="resolved"), 0)  # no group for it: nothing to take back
    assert s.groups == 0
    s.add(alert(device="d1"), 0)
    s.add(alert(device="d1", state="resolved"), 10 * S)
    assert s.due(30 * S) == []
    assert s.groups == 0


def test_resolution_of_an_unknown_alert_in_an_existing_group_is_ignored() -> None:
    s = scheduler(group_wait="30s")
    s.add(alert(device="d1"), 0)
    s.add(alert(device="d2", state="resolved"), 5 * S)
    [n] = s.due(30 * S)
    assert n.count == 1 and n.resolved == ()


def test_partly_resolved_group_reports_both_and_keeps_firing() -> None:
    s = scheduler(group_wait="30s", group_interval="5m")
    s.add(alert(device="d1"), 0)
    s.add(alert(device="d2"), 0)
    s.due(30 * S)
    s.add(alert(device="d2", state="resolved"), MIN)
    s.add(alert(device="d3"), MIN)
    s.add(alert(device="d3", state="resolved"), 2 * MIN)  # fired and resolved between two sends
    [n] = s.due(30 * S + 5 * MIN)
    assert [a.labels["device"] for a in n.firing] == ["d1"]
    assert [a.labels["device"] for a in n.resolved] == ["d2"]
    assert s.groups == 1


def test_alert_that_fired_and_resolved_between_two_sends_is_not_news() -> None:
    s = scheduler(group_wait="30s", group_interval="5m")
    s.add(alert(device="d1"), 0)
    s.due(30 * S)
    s.add(alert(device="d2"), MIN)
    s.add(alert(device="d2", state="resolved"), 2 * MIN)
    assert s.due(30 * S + 5 * MIN) == []
    assert s.groups == 1


def test_late_due_call_keeps_the_group_cadence() -> None:
    s = scheduler(group_wait="30s", group_interval="5m")
    s.add(alert(device="d1"), 0)
    s.due(30 * S + 12 * MIN)  # a slow caller
    assert s.next_due_ms() == 30 * S + 15 * MIN


def test_alert_routed_to_two_receivers_is_notified_to_both() -> None:
    s = scheduler(
        routes=[{"matchers": ['site="a"'], "receiver": "audit", "continue": True}, {"receiver": "email-site"}]
    )
    s.add(alert(site="a"), 0)
    assert sorted(n.receiver for n in s.due(MIN)) == ["audit", "email-site"]


@pytest.mark.parametrize("group_by", [[], ["site"]])
def test_storm_of_10000_alerts_in_a_minute_becomes_a_handful_of_notifications(group_by: list[str]) -> None:
    """3 sites x 5 rules x many devices, 10,000 alerts over 60 s, with default timings."""
    s = NotificationScheduler(
        tree(
            {
                "receiver": "ops",
                "group_by": group_by,
                "routes": [{"matchers": ['severity="critical"'], "receiver": "sms-oncall", "continue": True}],
            }
        )
    )
    sites, rules = ("berlin", "bonn", "hamburg"), [f"rule{r}" for r in range(5)]
    sent = []
    for i in range(10_000):
        now = i * 6  # 10,000 alerts spread over 60 s
        sev = "critical" if i % 10 == 0 else "warning"
        s.add(alert(rules[i % 5], severity=sev, site=sites[i % 3], device=f"dev{i}"), now)
        if i % 100 == 0:
            sent += s.due(now)
    for now in range(60 * S, 30 * MIN, 10 * S):  # the next half hour, polled every 10 s
        sent += s.due(now)
    per_receiver: dict[str, list[int]] = {}
    for n in sent:
        per_receiver.setdefault(n.receiver, []).append(n.count)
    assert set(per_receiver) == {"ops", "sms-oncall"}
    assert all(len(counts) <= 5 for counts in per_receiver.values()), per_receiver
    assert sum(per_receiver["ops"]) == 9_000 and sum(per_receiver["sms-oncall"]) == 1_000


# --- silences, maintenance windows, inhibition ----------------------------------------------------------

HOUR = 3600 * S


def muter(now_ms: int = 0, **config: Any) -> Muter:
    return Muter.from_config(config, now_ms=now_ms)


SILENCE = {
    "id": "s-1",
    "matchers": ['site="berlin"', 'rule=~"battery.*"'],
    "duration": "2h",
    "created_by": "alice",
    "comment": "battery swap",
}


def test_silence_mutes_matching_alerts_until_it_expires() -> None:
    m = muter(now_ms=HOUR, silences=[SILENCE])
    [s] = m.silences
    assert (s.starts_ms, s.ends_ms) == (HOUR, 3 * HOUR)
    hit = alert(site="berlin", device="d1")
    assert m.is_muted(hit, HOUR) == "silenced by s-1 (alice: battery swap)"
    assert m.is_muted(hit, HOUR - 1) is None  # not yet started
    assert m.is_muted(alert(site="bonn"), 2 * HOUR) is None
    assert m.is_muted(alert("door_open", site="berlin"), 2 * HOUR) is None
    assert m.is_muted(hit, 3 * HOUR) is None  # expired
    assert m.prune(3 * HOUR - 1) == []
    assert [x.id for x in m.prune(3 * HOUR)] == ["s-1"] and m.silences == ()


def test_silence_can_be_expired_early_and_replaced() -> None:
    m = muter(silences=[{**SILENCE, "duration": "10h", "starts_ms": 0}])
    hit = alert(site="berlin")
    assert m.is_muted(hit, HOUR) is not None
    assert m.expire("s-1", 2 * HOUR)
    assert m.is_muted(hit, 2 * HOUR) is None
    assert not m.expire("s-1", 3 * HOUR)  # already ended
    assert not m.expire("nope", 3 * HOUR)
    m.add_silence(Silence.parse({**SILENCE, "comment": "again"}, "s", now_ms=4 * HOUR))
    assert m.is_muted(hit, 4 * HOUR) == "silenced by s-1 (alice: again)"


def test_expiring_a_silence_that_has_not_started_ends_it_before_it_starts() -> None:
    m = muter(silences=[{**SILENCE, "starts_ms": 5 * HOUR}])
    assert m.expire("s-1", HOUR)
    assert m.is_muted(alert(site="berlin"), 5 * HOUR) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"matchers": []}, r"^silences\[0\].matchers: at least one matcher"),
        ({"created_by": None}, r"^silences\[0\].created_by: missing"),
        ({"comment": ""}, r"^silences\[0\].comment: expected a non-empty string"),
        ({"ends_ms": 5}, r"^silences\[0\]: set exactly one of ends_ms or duration"),
        ({"duration": None}, r"^silences\[0\]: set exactly one of ends_ms or duration"),
        ({"duration": None, "ends_ms": 5, "starts_ms": 10}, r"^silences\[0\].ends_ms: must be after starts_ms \(10\)"),
        ({"starts_ms": -1}, r"^silences\[0\].starts_ms: expected an integer"),
        ({"starts_ms": True}, r"^silences\[0\].starts_ms: expected an integer"),
        ({"until": 5}, r"^silences\[0\].until: unknown key"),
    ],
)
def test_bad_silences_are_refused_naming_the_key(changes: dict[str, Any], message: str) -> None:
    spec = {k: v for k, v in {**SILENCE, **changes}.items() if v is not None}
    with pytest.raises(AlertConfigError, match=message):
        muter(silences=[spec])


def test_duplicate_silence_ids_are_refused() -> None:
    with pytest.raises(AlertConfigError, match=r"^silences\[1\].id: duplicate silence id 's-1'"):
        muter(silences=[SILENCE, SILENCE])


def test_maintenance_window_recurs_weekly_in_its_time_zone() -> None:
    m = muter(
        maintenance=[
            {
                "name": "patch-sunday",
                "matchers": ['site="berlin"'],
                "time_zone": "Europe/Berlin",
                "weekly": {"sun": ["02:00-04:00"]},
            }
        ]
    )
    sunday_0230_cet = 1_796_520_600_000  # 2026-12-06 01:30 UTC
    hit = alert(site="berlin")
    assert m.is_muted(hit, sunday_0230_cet) == "in maintenance window 'patch-sunday'"
    assert m.is_muted(hit, sunday_0230_cet + 7 * 24 * HOUR) is not None  # next week too
    assert m.is_muted(hit, sunday_0230_cet + 2 * HOUR) is None  # 04:30
    assert m.is_muted(alert(site="bonn"), sunday_0230_cet) is None


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"name": "w", "matchers": ['a="b"'], "weekly": {}}, r"^maintenance\[0\].time_zone: missing"),
        (
            {"name": "w", "matchers": ['a="b"'], "time_zone": "Mars/Olympus", "weekly": {}},
            r"unknown time zone 'Mars/Olympus'",
        ),
        (
            {"name": "w", "matchers": ['a="b"'], "time_zone": "UTC", "weekly": {"sun": ["04:00-02:00"]}},
            r"weekly.sun\[0\]",
        ),
    ],
)
def test_bad_maintenance_windows_are_refused(window: dict[str, Any], message: str) -> None:
    with pytest.raises(AlertConfigError, match=message):
        muter(maintenance=[window])


GATEWAY_INHIBIT = {
    "source_matchers": ['rule="gateway_down"'],
    "target_matchers": ['rule!="gateway_down"'],
    "equal": ["gateway"],
}


def test_gateway_down_inhibits_alerts_of_devices_behind_the_same_gateway() -> None:
    m = muter(inhibit=[GATEWAY_INHIBIT])
    down = alert("gateway_down", severity="critical", gateway="gw-7")
    behind = alert("device_silent", gateway="gw-7", device="d1")
    elsewhere = alert("device_silent", gateway="gw-8", device="d2")
    assert m.is_muted(behind, 0) is None  # nothing fires yet
    m.observe(down)
    m.observe(elsewhere)  # not a source: ignored by the index
    reason = m.is_muted(behind, 0)
    assert reason is not None and reason.startswith("inhibited by 1 firing alert(s) via inhibit[0]")
    assert m.is_muted(elsewhere, 0) is None
    assert m.is_muted(down, 0) is None  # a source never inhibits itself
    m.observe(alert("gateway_down", state="resolved", gateway="gw-7"))
    assert m.is_muted(behind, 0) is None
    m.observe(alert("gateway_down", state="resolved", gateway="gw-9"))  # unknown resolution: harmless


def test_inhibition_needs_every_source_of_a_key_resolved() -> None:
    m = muter(
        inhibit=[
            {**GATEWAY_INHIBIT, "source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"']}
        ]
    )
    m.observe(alert("gateway_down", severity="critical", gateway="gw-7"))
    m.observe(alert("gateway_power", severity="critical", gateway="gw-7"))
    m.observe(alert("gateway_down", severity="critical", state="resolved", gateway="gw-7"))
    assert m.is_muted(alert("x", gateway="gw-7"), 0) is not None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"target_matchers": ['a="b"']}, r"^inhibit\[0\].source_matchers: missing"),
        ({"source_matchers": ['a="b"'], "target_matchers": []}, r"^inhibit\[0\].target_matchers: at least one"),
        (
            {"source_matchers": ['a="b"'], "target_matchers": ['a="c"'], "equal": "gw"},
            r"^inhibit\[0\].equal: expected a list",
        ),
    ],
)
def test_bad_inhibit_rules_are_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(AlertConfigError, match=message):
        muter(inhibit=[rule])


def test_maintenance_needs_every_key() -> None:
    with pytest.raises(AlertConfigError, match=r"^maintenance\[0\].name: missing"):
        muter(maintenance=[{}])
    with pytest.raises(AlertConfigError, match=r"^silences: expected a list"):
        muter(silences={})


def test_silence_with_explicit_end() -> None:
    spec = {k: v for k, v in SILENCE.items() if k != "duration"}
    s = Silence.parse({**spec, "starts_ms": 10, "ends_ms": 20}, "s", now_ms=0)
    assert (s.active(9), s.active(10), s.active(19), s.active(20)) == (False, True, True, False)


ROUTE_KEYS = {
    "receiver",
    "matchers",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "continue",
    "routes",
}
toml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["ops", "30s", 'a="b"', "...", "(", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(sorted(ROUTE_KEYS)), inner, max_size=4),
    max_leaves=12,
)


@given(toml_values)
def test_route_parser_refuses_garbage_with_a_path_never_a_crash(raw: object) -> None:
    try:
        t = RoutingTree.from_config({"route": raw}, receivers=RECEIVERS)
    except AlertConfigError as exc:
        assert str(exc).startswith("route")
    else:
        assert t.route(alert(site="a"))


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.booleans(), st.integers(0, 30 * MIN)),
        min_size=1,
        max_size=60,
    )
)
def test_every_firing_alert_is_notified_and_every_notified_resolution_is_sent(
    events: list[tuple[int, bool, int]],
) -> None:
    s = scheduler(group_by=["site"], group_wait="30s", group_interval="1m")
    last: dict[str, str] = {}
    fired: set[str] = set()
    notified: set[str] = set()
    for device, resolved, at in sorted(events, key=lambda e: e[2]):
        notified |= {a.fingerprint for n in s.due(at) for a in n.firing}
        a = alert(state="resolved" if resolved else "firing", site=str(device % 3), device=str(device))
        s.add(a, at)
        last[a.fingerprint] = a.state
        if not resolved:
            fired.add(a.fingerprint)
    sent_resolved: set[str] = set()
    for now in range(30 * MIN, 40 * MIN, 10 * S):
        for n in s.due(now):
            notified |= {a.fingerprint for a in n.firing}
            sent_resolved |= {a.fingerprint for a in n.resolved}
    still_firing = {fp for fp, state in last.items() if state == "firing"}
    assert still_firing <= notified
    # a resolution is sent only for alerts that were notified as firing
    assert sent_resolved <= notified
    if not still_firing:
        assert s.groups == 0  # resolved groups are dropped once their news is out


def test_storm_of_repeats_is_deduplicated_by_fingerprint() -> None:
    """10,000 alerts over 60 s that are 300 distinct alerts (3 sites x 5 rules x 20 devices) re-sent."""
    s = scheduler(group_by=["site"])
    sites = ("berlin", "bonn", "hamburg")
    for i in range(10_000):
        k = i % 300
        s.add(alert(f"rule{k % 5}", site=sites[k // 100], device=f"dev{k % 20}-{k // 5}"), i * 6)
    sent = [n for now in range(0, 30 * MIN, 10 * S) for n in s.due(now)]
    assert len(sent) == 3 and sum(n.count for n in sent) == 300
    assert all(len({a.fingerprint for a in n.firing}) == n.count for n in sent)
