"""The alerting pipeline core and its config: alerts in, effects out (record, mute, defer, send, escalate)."""

from __future__ import annotations

import functools
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.alert import Alert, AnomalyEvent, CheckResult, Observation, Series
from pymonitor.actors.alerting.config import AlertingConfig, load_config, parse_config
from pymonitor.actors.alerting.effects import (
    Deferred,
    Effect,
    Muted,
    RecordAck,
    RecordAlerts,
    RecordEscalation,
    RecordSilence,
    Send,
)
from pymonitor.actors.alerting.inputs import event_alert
from pymonitor.actors.alerting.pipeline import AlertPipeline
from pymonitor.actors.alerting.render import full_text, push_text, sms_text, subject
from pymonitor.actors.alerting.silences import Silence
from pymonitor.actors.alerting.sms import encoding, segments
from pymonitor.messages import Event

MIN = 60_000
# 2026-12-07 is a Monday; Europe/Berlin is UTC+1 in December.
MON_10H = int(datetime(2026, 12, 7, 9, 0, tzinfo=UTC).timestamp() * 1000)  # 10:00 local
MON_23H = int(datetime(2026, 12, 7, 22, 0, tzinfo=UTC).timestamp() * 1000)  # 23:00 local
TUE_08H = int(datetime(2026, 12, 8, 7, 0, tzinfo=UTC).timestamp() * 1000)  # 08:00 local, the opening

EXAMPLE = """
[alerting.channels.ops-mail]
type = "email"
host = "smtp.example.org"
from = "alerts@example.org"

[alerting.channels.sms-gw]
type = "sms_http"
url = "https://sms.example.org/api"
token = "t0ken"
from = "PyMonitor"

[alerting.channels.phone-push]
type = "ntfy"
server = "https://ntfy.example.org"
topic = "ops"

[alerting.channels.audit]
type = "log"

[alerting.receivers.ops-mail]
channel = "ops-mail"
recipients = ["ops@example.org"]

[alerting.receivers.oncall-sms]
channel = "sms-gw"
recipients = ["+447700900123"]

[alerting.receivers.lead-sms]
channel = "sms-gw"
recipients = ["+447700900456"]

[alerting.receivers.push]
channel = "phone-push"
recipients = ["ops"]

[alerting.receivers.log]
channel = "audit"
recipients = ["audit"]

[[alerting.rules]]
name = "battery_low"
kind = "threshold"
metric = "battery_v"
threshold = {below = {warning = 11.5, critical = 10.5}, clear = {warning = 11.8}}

[[alerting.rules]]
name = "temp_high"
kind = "threshold"
metric = "temp_c"
threshold = {above = 90}
severity = "critical"

[[alerting.rules]]
name = "broker_check"
kind = "check"
severity = "critical"

[[alerting.rules]]
name = "odd_power"
kind = "anomaly"
anomaly = {score = 0.9}

[alerting.route]
receiver = "ops-mail"
group_by = ["site"]
group_wait = "30s"
group_interval = "5m"

[[alerting.route.routes]]
matchers = ['severity=~"critical|emergency"']
receiver = "oncall-sms"
group_by = ["..."]
group_wait = "1ms"

[[alerting.route.routes]]
matchers = ['rule="odd_power"']
receiver = "push"

[[alerting.inhibit]]
source_matchers = ['rule="event.gateway.down"']
target_matchers = ['rule="battery_low"']
equal = ["node"]

[alerting.hours.office]
time_zone = "Europe/Berlin"
weekly = {"mon-fri" = ["08:00-18:00"]}

[alerting.notify]
hours = "office"

[alerting.escalation]
in_hours = "day"

[alerting.escalation.chains.day]
levels = [
  {receivers = ["oncall-sms"], ack_timeout = "10m", fallback = ["push"]},
  {receivers = ["lead-sms"], ack_timeout = "10m"},
]
"""


@functools.cache
def config(text: str = EXAMPLE, now_ms: int = MON_10H) -> AlertingConfig:
    """Parsed once per text: configs are immutable, pipelines keep their own state."""
    return parse_config(tomllib.loads(text), now_ms=now_ms)


def pipeline(text: str = EXAMPLE) -> AlertPipeline:
    return AlertPipeline(config(text))


def obs(device: str, metric: str, value: float, ts: int, site: str = "Site A", node: str = "gw1") -> Observation:
    return Observation(node=node, device=device, metric=metric, ts_ms=ts, value=value, site=site)


def sends(effects: list[Effect]) -> list[Send]:
    return [e for e in effects if isinstance(e, Send)]


def of(effects: list[Effect], kind: type) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


# --- config ----------------------------------------------------------------------------------------


def test_example_config_parses_every_section() -> None:
    cfg = config()
    assert set(cfg.receivers) == {"ops-mail", "oncall-sms", "lead-sms", "push", "log"}
    assert cfg.receivers["oncall-sms"].style == "sms"
    assert cfg.receivers["push"].style == "push"
    assert cfg.receivers["ops-mail"].style == "full"
    assert [r.name for r in cfg.rules] == ["battery_low", "temp_high", "broker_check", "odd_power"]
    assert cfg.escalation is not None and cfg.escalation.in_hours == "day"
    assert cfg.in_hours({}, MON_10H) and not cfg.in_hours({}, MON_23H)


def test_config_without_alerting_table_and_without_hours_is_always_in_hours() -> None:
    raw = {
        "channels": {"log": {"type": "log"}},
        "receivers": {"log": {"channel": "log", "recipients": ["me"]}},
        "route": {"receiver": "log"},
    }
    cfg = parse_config(raw, now_ms=0)
    assert cfg.profile_for({"site": "x"}) is None and cfg.in_hours({}, 0)
    assert cfg.escalation is None and cfg.replies is None


BASE = {
    "channels": {"log": {"type": "log"}},
    "receivers": {"log": {"channel": "log", "recipients": ["me"]}},
    "route": {"receiver": "log"},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, "(top level).bogus: unknown key"),
        ({"receivers": {}}, "receivers: at least one receiver"),
        ({"receivers": {"x": {"recipients": ["a"]}}}, "receivers.x.channel: missing"),
        ({"receivers": {"x": {"channel": "nope", "recipients": ["a"]}}}, "receivers.x.channel: unknown channel 'nope'"),
        ({"receivers": {"x": {"channel": "log"}}}, "receivers.x.recipients: at least one recipient"),
        ({"receivers": {"x": {"channel": "log", "recipients": ["a"], "max_segments": 0}}}, "x.max_segments"),
        ({"notify": {"hours": "nope"}}, "notify.hours: unknown business-hours profile 'nope'"),
        ({"notify": {"site_hours": {"A": "nope"}}}, "notify.site_hours.A: unknown business-hours profile"),
        ({"notify": {"escalate": ["loud"]}}, "notify.escalate[0]: expected one of"),
        ({"notify": {"sms_per_hour": 0}}, "notify.sms_per_hour: expected a positive number"),
        ({"notify": {"sms_burst": 0}}, "notify.sms_burst: expected an integer from 1"),
        ({"inhibit": {"a": 1}}, "inhibit: expected a list of tables"),
        ({"rules": [{"name": "x", "kind": "threshold"}]}, "rules[0].metric: required"),
        ({"route": {"receiver": "pager"}}, "route.receiver: unknown receiver 'pager'"),
    ],
)
def test_bad_configs_are_refused_naming_the_path(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AlertConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_config({**BASE, **change}, now_ms=0)


def test_load_config_names_the_file_and_the_alerting_path(tmp_path: Path) -> None:
    good = tmp_path / "alerts.toml"
    good.write_text(EXAMPLE)
    assert load_config(good, now_ms=MON_10H).receivers["log"].channel == "audit"
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.replace('receiver = "push"', 'receiver = "pager"'))
    with pytest.raises(AlertConfigError, match=r"bad\.toml: alerting\.route\.routes\[1\]\.receiver: unknown receiver"):
        load_config(bad, now_ms=0)
    broken = tmp_path / "broken.toml"
    broken.write_text("[alerting\n")
    with pytest.raises(AlertConfigError, match="broken.toml: not valid TOML"):
        load_config(broken, now_ms=0)
    with pytest.raises(AlertConfigError, match="missing.toml: cannot read"):
        load_config(tmp_path / "missing.toml", now_ms=0)
    top = tmp_path / "top.toml"
    top.write_text("[alerting]\nbogus = 1\n")
    with pytest.raises(AlertConfigError, match=r"top\.toml: alerting\.bogus: unknown key"):
        load_config(top, now_ms=0)


# --- the path of an alert ---------------------------------------------------------------------------


def test_every_transition_is_recorded_and_a_warning_waits_for_group_wait() -> None:
    p = pipeline()
    effects = p.observe([obs("bms", "battery_v", 11.2, MON_10H)], MON_10H)
    recorded = of(effects, RecordAlerts)
    assert len(recorded) == 1 and recorded[0].alerts[0].severity == "warning"
    assert sends(effects) == []
    assert p.next_due_ms() == MON_10H + 30_000
    later = sends(p.tick(MON_10H + 30_000))
    assert [s.receiver for s in later] == ["ops-mail"]
    assert later[0].message.recipient == "ops@example.org" and later[0].kind == "notification"
    assert "battery low" in later[0].message.text and "site=Site A" in later[0].message.text


def test_critical_pages_at_once_by_sms_and_starts_escalation_to_the_next_level() -> None:
    p = pipeline()
    effects = p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    assert sends(effects) == []  # group_wait 1 ms
    effects = p.tick(MON_10H + 1)
    page = sends(effects)
    assert [(s.receiver, s.message.recipient) for s in page] == [("oncall-sms", "+447700900123")]
    assert encoding(page[0].message.text) == "GSM-7" and segments(page[0].message.text) == 1
    assert page[0].message.text.startswith("CRIT temp high")
    assert page[0].message.severity == "critical"
    steps = of(effects, RecordEscalation)
    assert [(s.step.level, s.step.reason) for s in steps] == [(0, "start")]
    # nobody acks in 10 minutes: the lead is told, in one message
    effects = p.tick(MON_10H + 1 + 10 * MIN)
    escalated = sends(effects)
    assert [(s.receiver, s.kind) for s in escalated] == [("lead-sms", "escalation")]
    assert escalated[0].message.text.startswith("ESCALATED (level 2 of day: ack timeout)")
    # ... and after the last level, the chain is exhausted: recorded, nobody else told
    effects = p.tick(MON_10H + 1 + 20 * MIN)
    assert sends(effects) == [] and [s.step.reason for s in of(effects, RecordEscalation)] == ["exhausted"]


def test_ack_stops_escalation_and_is_recorded() -> None:
    p = pipeline()
    p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    fp = sends(p.tick(MON_10H + 1))[0].message.fingerprints[0]
    acks = p.ack(fp, by="alice", via="sms", now_ms=MON_10H + MIN)
    assert [(a.fingerprint, a.by, a.detail) for a in of(acks, RecordAck)] == [(fp, "alice", "escalation stopped")]
    assert sends(p.tick(MON_10H + 30 * MIN)) == []
    assert of(p.ack(fp, by="bob", via="api", now_ms=MON_10H), RecordAck)[0].detail == "nothing was escalating"
    assert p.ack(fp, by="bob", via="cli", now_ms=MON_10H, record=False) == []


def test_delivery_failure_falls_back_at_once() -> None:
    p = pipeline()
    p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    fp = sends(p.tick(MON_10H + 1))[0].message.fingerprints[0]
    effects = p.delivery_failed(fp, "oncall-sms", MON_10H + 5_000)
    assert [(s.receiver, s.kind) for s in sends(effects)] == [("push", "escalation")]
    assert "fallback" in sends(effects)[0].message.text
    assert p.delivery_failed("unknown", "oncall-sms", MON_10H) == []


def test_resolution_is_notified_and_stops_escalation() -> None:
    p = pipeline()
    p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    p.tick(MON_10H + 1)
    effects = p.observe([obs("t1", "temp_c", 50, MON_10H + MIN)], MON_10H + MIN)
    assert of(effects, RecordAlerts)[0].alerts[0].state == "resolved"
    later = p.tick(MON_10H + MIN + 5 * MIN)
    assert [s.message.text.startswith("OK temp high resolved") for s in sends(later)] == [True]
    assert p.escalator is not None and p.escalator.active == 0


def test_off_hours_warning_waits_for_the_morning_digest_and_emergencies_page() -> None:
    p = pipeline()
    effects = p.observe(
        [obs("bms", "battery_v", 11.2, MON_23H), obs("bms2", "battery_v", 11.0, MON_23H, site="Site B")], MON_23H
    )
    deferred = of(effects, Deferred)
    assert [d.until_ms for d in deferred] == [TUE_08H, TUE_08H]
    from pymonitor.actors.alerting.actor import suppression

    kept = suppression(deferred[0])
    assert (kept.kind, kept.until_ms, kept.reason) == (
        "deferred",
        TUE_08H,
        "off hours, not an emergency: waits for the digest",
    )
    assert p.next_due_ms() == TUE_08H
    # a critical at night pages at once (group_wait 1 ms)
    p.observe([obs("t1", "temp_c", 99, MON_23H)], MON_23H)
    assert [s.receiver for s in sends(p.tick(MON_23H + 1))] == ["oncall-sms"]
    # one of the two warnings resolves overnight: the digest says so instead of listing the flapping
    p.observe([obs("bms2", "battery_v", 12.5, MON_23H + MIN, site="Site B")], MON_23H + MIN)
    assert [s for s in sends(p.tick(TUE_08H - 1)) if s.kind == "digest"] == []  # the critical reminds, no digest
    digest = [s for s in sends(p.tick(TUE_08H)) if s.kind == "digest"]
    assert [s.receiver for s in digest] == ["ops-mail"]
    text = digest[0].message.text
    assert text.startswith("Overnight digest (office):") and "Firing (1)" in text and "Resolved (1)" in text
    # at opening the still-firing one re-enters routing: its group tells it, then its resolution, as usual
    assert [s.receiver for s in sends(p.tick(TUE_08H + 30_000)) if s.kind == "notification"] == ["ops-mail"]
    p.observe([obs("bms", "battery_v", 12.5, TUE_08H + MIN)], TUE_08H + MIN)
    assert any("Resolved (1)" in s.message.text for s in sends(p.tick(TUE_08H + 10 * MIN)))


def test_silenced_alert_is_recorded_muted_and_its_resolution_says_nothing() -> None:
    p = pipeline()
    p.silence(
        Silence.parse(
            {"id": "s1", "matchers": ['site="Site A"'], "duration": "1h", "created_by": "bob", "comment": "works"},
            "silence",
            now_ms=MON_10H,
        )
    )
    effects = p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    assert len(of(effects, RecordAlerts)) == 1
    assert "silenced by s1 (bob: works)" in of(effects, Muted)[0].reason
    effects = p.observe([obs("t1", "temp_c", 20, MON_10H + MIN)], MON_10H + MIN)
    assert of(effects, RecordAlerts) and sends(effects + p.tick(MON_10H + 10 * MIN)) == []
    assert p.counters.muted == 1


def test_alert_still_firing_when_its_silence_ends_is_notified_then() -> None:
    p = pipeline()
    spec = {"id": "s1", "matchers": ['rule="temp_high"'], "duration": "10m", "created_by": "bob", "comment": "works"}
    p.silence(Silence.parse(spec, "silence", now_ms=MON_10H))
    assert of(p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H), Muted)
    assert sends(p.tick(MON_10H + 5 * MIN)) == []
    assert sends(p.tick(MON_10H + 10 * MIN)) == []  # the silence ended: into its group, which waits 1 ms
    (page,) = sends(p.tick(MON_10H + 10 * MIN + 1))
    assert page.receiver == "oncall-sms" and page.message.text.startswith("CRIT temp high")


def test_level_one_receivers_the_route_did_not_reach_are_told_when_escalation_starts() -> None:
    text = EXAMPLE.replace('receiver = "oncall-sms"\ngroup_by = ["..."]', 'receiver = "ops-mail"\ngroup_by = ["..."]')
    p = pipeline(text)
    p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    effects = p.tick(MON_10H + 1)
    assert [(s.receiver, s.kind) for s in sends(effects)] == [
        ("ops-mail", "notification"),
        ("oncall-sms", "escalation"),
    ]
    assert sends(effects)[1].message.text.startswith("ESCALATED (level 1 of day: start)")


def test_gateway_down_event_inhibits_its_battery_alerts() -> None:
    p = pipeline()
    down = Event(node="gw1", ts_ms=MON_10H, kind="gateway.down", severity="warning", message="gateway gw1 down")
    p.event(down, MON_10H)
    effects = p.observe([obs("bms", "battery_v", 11.2, MON_10H)], MON_10H)
    assert "inhibited by 1 firing alert(s)" in of(effects, Muted)[0].reason
    up = Event(node="gw1", ts_ms=MON_10H, kind="gateway.down", severity="warning", message="up", labels={"state": "ok"})
    p.event(up, MON_10H + 1)
    effects = p.observe([obs("bms3", "battery_v", 11.2, MON_10H + 2)], MON_10H + 2)
    assert of(effects, Muted) == []


def test_events_become_alerts_and_debug_events_are_counted_and_dropped() -> None:
    error = Event(node="gw1", ts_ms=5, kind="disk.full", severity="error", message="disk 99%", source="sda", value=99.0)
    alert = event_alert(error)
    assert alert is not None and alert.rule == "event.disk.full" and alert.severity == "critical"
    assert alert.labels == {"node": "gw1", "device": "sda"} and alert.state == "firing" and alert.value == 99.0
    cleared = event_alert(Event(node="gw1", ts_ms=9, kind="disk.full", severity="info", message="", labels={
        "state": "resolved", "device": "sda"}))  # fmt: skip
    assert cleared is not None and cleared.state == "resolved" and cleared.ends_ms == 9
    assert cleared.fingerprint == alert.fingerprint and cleared.summary == "disk.full"
    p = pipeline()
    assert p.event(Event(node="gw1", ts_ms=1, kind="boot", severity="debug", message="hi"), 1) == []
    assert p.counters.ignored_events == 1
    sited = event_alert(error, "Site A")
    assert sited is not None and sited.labels["site"] == "Site A"


def test_sites_from_config_label_readings_and_events_of_nodes_that_do_not_say() -> None:
    p = pipeline(EXAMPLE + '\n[alerting.sites]\ngw9 = "Hill Farm"\n')
    effects = p.observe([Observation(node="gw9", device="t1", metric="temp_c", ts_ms=MON_10H, value=95)], MON_10H)
    assert of(effects, RecordAlerts)[0].alerts[0].labels["site"] == "Hill Farm"
    down = Event(node="gw9", ts_ms=MON_10H, kind="gateway.down", severity="warning", message="down")
    assert of(p.event(down, MON_10H), RecordAlerts)[0].alerts[0].labels["site"] == "Hill Farm"
    with pytest.raises(AlertConfigError, match="sites.gw9: expected a non-empty string"):
        config(EXAMPLE + "\n[alerting.sites]\ngw9 = 3\n")


def test_checks_and_anomalies_flow_through_the_same_path() -> None:
    p = pipeline()
    effects = p.check(CheckResult(name="broker", ok=False, ts_ms=MON_10H, node="hub"), MON_10H)
    assert of(effects, RecordAlerts)[0].alerts[0].rule == "broker_check"
    effects = p.anomaly(AnomalyEvent(series=Series("gw1", "pm", "power_w"), ts_ms=MON_10H, score=0.95), MON_10H)
    assert of(effects, RecordAlerts)[0].alerts[0].rule == "odd_power"
    later = sends(p.tick(MON_10H + 30_000))
    assert sorted(s.receiver for s in later) == ["oncall-sms", "push"]
    push = next(s for s in later if s.receiver == "push")
    assert push.message.text.startswith("WARN odd power")


def test_ready_made_alerts_and_absence_tick() -> None:
    p = pipeline()
    alert = Alert(fingerprint="f1", rule="manual", labels={}, severity="info", state="firing", summary="x",
                  starts_ms=MON_10H)  # fmt: skip
    assert of(p.alerts([alert], MON_10H), RecordAlerts)
    assert of(p.tick(MON_10H + 1), RecordAlerts) == []


def test_sms_storm_is_rate_limited_per_recipient() -> None:
    text = EXAMPLE.replace('[alerting.notify]\nhours = "office"', "[alerting.notify]\nsms_per_hour = 1\nsms_burst = 2")
    p = pipeline(text)
    effects: list[Effect] = []
    for i in range(4):  # four criticals, each its own group (group_by all labels), each paging
        effects += p.observe([obs(f"t{i}", "temp_c", 95, MON_10H + i * 10)], MON_10H + i * 10)
        effects += p.tick(MON_10H + i * 10 + 1)
    pages = [s for s in sends(effects) if s.receiver == "oncall-sms"]
    assert [s.rate_limited for s in pages] == [False, False, True, True]
    assert p.counters.rate_limited == 2


def test_without_escalation_nothing_escalates() -> None:
    text = EXAMPLE[: EXAMPLE.index("[alerting.escalation]")]
    p = pipeline(text)
    p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    effects = p.tick(MON_10H + 1)
    assert of(effects, RecordEscalation) == [] and len(sends(effects)) == 1
    assert p.delivery_failed("x", "oncall-sms", MON_10H) == []
    assert of(p.ack("x", by="a", via="api", now_ms=MON_10H), RecordAck)[0].detail == "nothing was escalating"
    assert p.next_due_ms() is not None
    resolved = p.observe([obs("t1", "temp_c", 20, MON_10H + MIN)], MON_10H + MIN)
    assert of(resolved, RecordAlerts)[0].alerts[0].state == "resolved"


def test_resolution_after_the_digest_time_but_before_its_tick_is_in_the_digest() -> None:
    p = pipeline()
    p.observe([obs("bms", "battery_v", 11.2, MON_23H)], MON_23H)
    p.observe([obs("bms", "battery_v", 12.5, TUE_08H + 1)], TUE_08H + 1)
    digest = [s for s in sends(p.tick(TUE_08H + 2)) if s.kind == "digest"]
    assert len(digest) == 1 and "Resolved (1)" in digest[0].message.text and "Firing" not in digest[0].message.text


# --- rendering -------------------------------------------------------------------------------------


def storm(n: int, sites: int = 3) -> list[Alert]:
    rules = ["battery_low", "temp_high", "link_down"]
    return [
        Alert(fingerprint=f"f{i}", rule=rules[i % 3], labels={"site": f"Site {chr(65 + i % sites)}"},
              severity="warning", state="firing", summary=f"{rules[i % 3]} on d{i}", starts_ms=0)
        for i in range(n)
    ]  # fmt: skip


def test_sms_storm_across_three_sites_fits_one_gsm7_segment_and_names_sites_and_counts() -> None:
    text = sms_text(storm(10_000), [])
    assert encoding(text) == "GSM-7" and segments(text) == 1 and len(text) <= 160
    assert text.startswith("10000 alerts at 3 sites")
    assert all(site in text for site in ("Site A", "Site B", "Site C")) or "Site A/B/C" in text


def test_sms_lists_few_alerts_one_per_line_and_says_how_many_resolved_in_a_storm() -> None:
    few = sms_text(storm(2), [])
    assert few.count("\n") == 1 and few.startswith("WARN")
    both = sms_text(storm(50), storm(3))
    assert both.endswith(", 3 resolved") and segments(both) == 1
    only_resolved = sms_text([], storm(50))
    assert only_resolved.startswith("OK 50 alerts")
    headed = sms_text(storm(1), [], header="ESCALATED")
    assert headed.startswith("ESCALATED WARN")


def test_push_and_full_texts() -> None:
    push = push_text(storm(12), [])
    assert push.endswith("... and 2 more") and push.count("\n") == 10
    full = full_text(storm(2), storm(1), header="H")
    assert full.splitlines()[0] == "H" and "Firing (2):" in full and "Resolved (1):" in full
    assert subject(storm(2), storm(1)) == "[WARN] 2 firing, 1 resolved: battery low"
    assert subject([], storm(1)) == "[OK] 1 resolved: battery low"
    assert subject([], []) == "[OK] nothing"


# --- the actor (shell) -----------------------------------------------------------------------------


def test_actor_feeds_frames_records_effects_and_delivers_through_channels(tmp_path: Path) -> None:
    import time

    from pymonitor.actors.alerting.actor import (
        AckAlert,
        AlertingActor,
        ApiReply,
        GetAlertStats,
        LinkReply,
        SmsReply,
        Tick,
    )
    from pymonitor.actors.alerting.inputs import observations
    from pymonitor.actors.runtime.clock import SimClock
    from pymonitor.actors.runtime.intake import Inbound
    from pymonitor.broker import topics
    from pymonitor.messages import ReadingBatch, encode
    from pymonitor.store.alert_store import AlertStore

    text = EXAMPLE.replace('[alerting.notify]\nhours = "office"', "")
    for name in ("ops-mail", "sms-gw", "phone-push"):  # every channel a log channel: nothing leaves the test
        start = text.index(f"[alerting.channels.{name}]")
        end = text.index("\n\n", start)
        text = text[:start] + f'[alerting.channels.{name}]\ntype = "log"' + text[end:]
    clock = SimClock(MON_10H)
    db = tmp_path / "alerts.db"
    ref = AlertingActor.start(None, config(text), db, clock)
    try:
        batch = ReadingBatch.build(
            node="gw1", session=1, seq=1, devices=["t1", "t2"], metrics=["temp_c"], device_index=[0, 1],
            device_seq=[1, 1], ts_ms=[MON_10H, MON_10H], values=[[95.0, float("nan")]],
        )  # fmt: skip
        assert [o.device for o in observations(batch)] == ["t1"]
        ref.tell(Inbound(topics.up("fleet", "gw1", "readings"), encode(batch)))
        ref.tell(Inbound("not/a/topic", b"junk"))
        ref.tell(Event(node="gw1", ts_ms=MON_10H, kind="disk.full", severity="warning", message="disk full"))
        ref.tell(obs("t3", "temp_c", 20, MON_10H))
        ref.tell([obs("t4", "temp_c", 20, MON_10H)])
        ref.tell(CheckResult(name="broker", ok=True, ts_ms=MON_10H))
        ref.tell(AnomalyEvent(series=Series("gw1", "pm", "power_w"), ts_ms=MON_10H, score=0.1))
        ref.ask(GetAlertStats())
        clock.advance(1)  # the 1 ms group_wait of the critical route: the wake timer pages
        ref.ask(GetAlertStats())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            store = AlertStore(db)
            attempts = store.counts()["attempts"]
            store.close()
            if attempts:
                break
            time.sleep(0.01)
        store = AlertStore(db)
        fp = store.active()[-1]["fingerprint"]
        store.record_acknowledgement(fp, "ack", "carol", "cli", True, "on it", MON_10H + 2)
        store.add_silence(['site="Nowhere"'], MON_10H, MON_10H + 3_600_000, "bob", "test", MON_10H)
        store.add_silence(["not a matcher"], MON_10H, MON_10H + 3_600_000, "bob", "bad row", MON_10H)
        store.close()
        ref.tell(AckAlert(fingerprint=fp, by="dave"))
        clock.advance(1_000)  # the regular tick polls the store: the CLI ack and silence reach the pipeline
        stats = ref.ask(GetAlertStats())
        ref.tell(Tick())
        ref.tell(SmsReply("+447700900123", "STATUS 2468"))
        assert ref.ask(LinkReply("x.y")) == (False, "replies are not configured")
        assert ref.ask(ApiReply("alice", "k", {})) == (False, "replies are not configured")
        silences = ref.ask(GetAlertStats())["silences"]
    finally:
        ref.stop()
    assert stats["alerts"] == 2 and stats["dead_letters"] == 1 and stats["messages"] >= 1
    store = AlertStore(db)
    counts = store.counts()
    history = store.history(fingerprint=fp)[0]
    store.close()
    assert counts["alerts"] == 2 and counts["notifications"] >= 1 and counts["attempts"] >= 1
    assert counts["escalations"] >= 1
    assert {a["by"] for a in history["acknowledgements"]} == {"carol", "dave"}
    assert silences == 1  # the bad row is logged and skipped


# --- two-way replies ---------------------------------------------------------------------------------

REPLIES = """
[alerting.replies]
secret = "reply-signing-key"
responders = [{name = "alice", phone = "+447700900123", pin = "2468", api_key = "alice-key"}]
"""


def paged() -> tuple[AlertPipeline, str, str]:
    """A pipeline with replies whose critical alert paged by SMS; returns it, the fingerprint and the SMS code."""
    p = pipeline(EXAMPLE + REPLIES)
    p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    page = sends(p.tick(MON_10H + 1))[0]
    code = page.message.text.split()[0].removeprefix("#")
    return p, page.message.fingerprints[0], code


def test_sms_page_carries_the_alert_code_and_an_sms_ack_stops_escalation() -> None:
    p, fp, code = paged()
    assert p.codebook.fingerprint_of(code) == fp
    effects = p.reply_sms("+44 7700 900123", f"ACK {code} 2468", MON_10H + MIN)
    (ack,) = of(effects, RecordAck)
    assert (ack.fingerprint, ack.action, ack.by, ack.via, ack.accepted) == (fp, "ack", "alice", "sms", True)
    assert "2468" not in ack.detail  # the PIN never reaches the audit trail
    assert p.escalator is not None and p.escalator.active == 0


def test_wrong_pin_and_unknown_sender_are_refused_and_audited() -> None:
    p, _, code = paged()
    (wrong,) = of(p.reply_sms("+447700900123", f"ACK {code} 1111", MON_10H + MIN), RecordAck)
    assert not wrong.accepted and wrong.detail == "wrong PIN" and wrong.action == "refused"
    (stranger,) = of(p.reply_sms("+15550000000", f"ACK {code} 2468", MON_10H + MIN), RecordAck)
    assert not stranger.accepted and stranger.detail == "unknown sender"
    assert p.escalator is not None and p.escalator.active == 1


def test_sms_silence_mutes_that_alert_and_is_kept() -> None:
    p, fp, code = paged()
    effects = p.reply_sms("+447700900123", f"SILENCE {code} 2h 2468", MON_10H + MIN)
    (kept,) = of(effects, RecordSilence)
    assert kept.silence.ends_ms - kept.silence.starts_ms == 7_200_000 and kept.silence.created_by == "alice"
    refire = Alert(fingerprint=fp, rule="temp_high", labels=p._firing[fp].labels, severity="critical",
                   state="firing", summary="again", starts_ms=MON_10H)  # fmt: skip
    assert p.muter.is_muted(refire, MON_10H + 2 * MIN) is not None
    p.observe([obs("t1", "temp_c", 20, MON_10H + 3 * MIN)], MON_10H + 3 * MIN)  # resolved: its code is freed
    assert p.codebook.fingerprint_of(code) is None
    assert of(p.reply_sms("+447700900123", f"SILENCE {code} 2h 2468", MON_10H + 4 * MIN), RecordSilence) == []


def test_status_request_answers_by_sms_with_what_fires() -> None:
    p, _, _ = paged()
    (answer,) = sends(p.reply_sms("+447700900123", "STATUS 2468", MON_10H + MIN))
    assert answer.kind == "status" and answer.message.recipient == "+447700900123"
    assert answer.receiver == "oncall-sms" and answer.message.text.startswith("CRIT temp high")
    p.observe([obs("t1", "temp_c", 20, MON_10H + 2 * MIN)], MON_10H + 2 * MIN)
    (calm,) = sends(p.reply_sms("+447700900123", "STATUS 2468", MON_10H + 3 * MIN))
    assert calm.message.text == "No alerts firing."


def test_status_without_an_sms_receiver_answers_nothing() -> None:
    sms_channel = 'type = "sms_http"\nurl = "https://sms.example.org/api"\ntoken = "t0ken"\nfrom = "PyMonitor"'
    text = EXAMPLE.replace(sms_channel, 'type = "log"')
    p = pipeline(text + REPLIES)
    effects = p.reply_sms("+447700900123", "STATUS 2468", MON_10H)
    assert sends(effects) == [] and of(effects, RecordAck)[0].action == "status"


def test_email_link_and_api_acks() -> None:
    p, fp, code = paged()
    assert p.replies is not None
    token = p.replies.link_token(fp, "alice", MON_10H)
    (by_link,) = of(p.reply_token(token, MON_10H + MIN), RecordAck)
    assert by_link.accepted and by_link.via == "email" and by_link.fingerprint == fp
    (again,) = of(p.reply_token(token, MON_10H + MIN), RecordAck)
    assert not again.accepted and again.detail == "token already used"
    (by_api,) = of(p.reply_api("alice", "alice-key", {"action": "ack", "alert": code}, MON_10H + MIN), RecordAck)
    assert by_api.accepted and by_api.via == "api"
    (bad_key,) = of(p.reply_api("alice", "nope", {"action": "ack", "alert": code}, MON_10H + MIN), RecordAck)
    assert not bad_key.accepted and bad_key.detail == "bad API key"


def test_silence_links_for_alerts_not_firing_change_nothing_and_work_without_escalation() -> None:
    p = pipeline(EXAMPLE[: EXAMPLE.index("[alerting.escalation]")] + REPLIES)
    assert p.replies is not None and p.escalator is None
    gone = p.replies.link_token("0123456789abcdef", "alice", MON_10H, action="silence", duration_ms=3_600_000)
    effects = p.reply_token(gone, MON_10H)
    assert of(effects, RecordAck)[0].accepted and of(effects, RecordSilence) == []
    p.observe([obs("t1", "temp_c", 95, MON_10H)], MON_10H)
    fp = sends(p.tick(MON_10H + 1))[0].message.fingerprints[0]
    token = p.replies.link_token(fp, "alice", MON_10H, action="silence", duration_ms=3_600_000)
    assert len(of(p.reply_token(token, MON_10H + MIN), RecordSilence)) == 1


def test_replies_without_config_are_refused() -> None:
    p = pipeline()
    assert p.replies is None
    refusals = [
        *p.reply_sms("+447700900123", "ACK 1234 2468", 0),
        *p.reply_token("x.y", 0),
        *p.reply_api("alice", "k", {}, 0),
    ]
    assert [(r.via, r.accepted, r.detail) for r in of(refusals, RecordAck)] == [
        ("sms", False, "replies are not configured"),
        ("email", False, "replies are not configured"),
        ("api", False, "replies are not configured"),
    ]


def test_the_documented_example_config_parses() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "alerting.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = config(example)
    assert cfg.escalation is not None and cfg.escalation.off_hours == "night" and cfg.replies is not None
    assert len(cfg.maintenance) == 1 and len(cfg.inhibit) == 1 and cfg.notify.sms_burst == 10


@pytest.mark.needs_mosquitto
def test_alerting_role_alerts_on_an_event_published_over_mosquitto(broker_address: Any, tmp_path: Path) -> None:
    from conftest import wait_for

    from pymonitor.actors.alerting.role import AlertingRole
    from pymonitor.actors.runtime.clock import RealClock
    from pymonitor.actors.runtime.supervisor import Supervisor
    from pymonitor.broker import BridgeOptions, MqttBridge, topics
    from pymonitor.messages import encode
    from pymonitor.store.alert_store import AlertStore

    raw = {
        "channels": {"audit": {"type": "log"}},
        "receivers": {"log": {"channel": "audit", "recipients": ["audit"]}},
        "route": {"receiver": "log", "group_wait": "1ms"},
    }
    clock = RealClock()
    supervisor = Supervisor(clock)
    db = tmp_path / "alerts.db"
    role = AlertingRole(fleet="fl", node="alerting", config=parse_config(raw, now_ms=0), db_path=db,
                        address=broker_address, clock=clock, supervisor=supervisor)  # fmt: skip
    node = MqttBridge(broker_address, BridgeOptions(client_id="fl.gw1"), lambda topic, payload: None)
    role.start()
    node.start()
    try:
        assert role.bridge.wait_connected(10) and node.wait_connected(10)

        def subscribed() -> bool:  # a refused junk frame proves the role's subscription is in place
            node.publish(topics.up("fl", "gw1", "events"), b"not a frame")
            return bool(role.stats()["dead_letters"])

        wait_for(subscribed, what="the alerting role to subscribe")
        event = Event(node="gw1", ts_ms=clock.now_ms(), kind="disk.full", severity="error", message="disk 99% full")
        node.publish(topics.up("fl", "gw1", "events"), encode(event))

        def delivered() -> int:
            store = AlertStore(db)
            try:
                return store.counts()["attempts"]
            finally:
                store.close()

        wait_for(delivered, what="the event's notification to be delivered")
        stats = role.stats()
    finally:
        node.stop()
        role.stop()
        supervisor.stop_all()
        clock.stop()
    assert stats["alerts"] == 1 and stats["dead_letters"] >= 1 and stats["frames_dropped"] == 0
    store = AlertStore(db)
    (row,) = store.history()
    store.close()
    assert row["rule"] == "event.disk.full" and row["severity"] == "critical"
    assert row["notifications"][0]["attempts"][0]["status"] == "delivered"


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8))
_VALUES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)  # fmt: skip
_SECTIONS = st.sampled_from(["rules", "channels", "receivers", "route", "notify", "hours", "escalation", "sites"])


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(_SECTIONS, _VALUES, max_size=4), st.booleans())
def test_config_parser_refuses_any_garbage_with_a_config_error(garbage: dict[str, Any], on_base: bool) -> None:
    raw = {**BASE, **garbage} if on_base else garbage
    try:
        parse_config(raw, now_ms=MON_10H)
    except AlertConfigError as exc:
        assert ": " in str(exc)  # path: reason


def test_actor_reads_gammu_replies_and_carrier_failures_escalate(tmp_path: Path) -> None:
    from conftest import wait_for

    from pymonitor.actors.alerting.actor import AlertingActor, CarrierStatus, GetAlertStats, Tick
    from pymonitor.actors.alerting.channels import StatusUpdate
    from pymonitor.actors.runtime.clock import SimClock
    from pymonitor.store.alert_store import AlertStore

    spool = {name: tmp_path / name for name in ("outbox", "sent", "error", "inbox")}
    for path in spool.values():
        path.mkdir()
    text = EXAMPLE.replace('[alerting.notify]\nhours = "office"', "") + REPLIES
    for name in ("ops-mail", "phone-push"):
        start = text.index(f"[alerting.channels.{name}]")
        text = text[:start] + f'[alerting.channels.{name}]\ntype = "log"' + text[text.index("\n\n", start) :]
    start = text.index("[alerting.channels.sms-gw]")
    gammu = "\n".join(f'{key} = "{path}"' for key, path in spool.items())
    text = text[:start] + f'[alerting.channels.sms-gw]\ntype = "gammu"\n{gammu}' + text[text.index("\n\n", start) :]
    clock = SimClock(MON_10H)
    db = tmp_path / "alerts.db"
    ref = AlertingActor.start(None, config(text), db, clock)

    def attempts() -> list[dict[str, Any]]:
        store = AlertStore(db)
        try:
            return [a for n in store.notifications_of(fp) for a in n["attempts"]] if fp else []
        finally:
            store.close()

    def active() -> list[dict[str, Any]]:
        store = AlertStore(db)
        try:
            return store.active()
        finally:
            store.close()

    fp = ""
    try:
        ref.tell(obs("t1", "temp_c", 95, MON_10H))
        ref.ask(GetAlertStats())
        clock.advance(1)
        ref.ask(GetAlertStats())
        fp = wait_for(active, what="the alert")[0]["fingerprint"]
        sent = wait_for(attempts, what="the page to be spooled")
        assert sent[0]["status"] == "sent" and list(spool["outbox"].iterdir())
        spooled = next(spool["outbox"].iterdir()).read_bytes()
        code = spooled.decode("utf-16" if spooled[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8").split()[0][1:]
        (spool["inbox"] / "IN20261207_100100_00_+447700900123_00.txt").write_text(f"ACK {code} 2468")
        ref.tell(CarrierStatus(StatusUpdate(provider_id="nobody-knows", status="failed", carrier_status="X")))
        ref.tell(CarrierStatus(StatusUpdate(provider_id=sent[0]["provider_id"], status="failed",
                                            carrier_status="UNDELIV", error="absent subscriber")))  # fmt: skip
        ref.tell(Tick())
        stats = ref.ask(GetAlertStats())
    finally:
        ref.stop()
    assert stats["carrier_unknown"] == 1
    store = AlertStore(db)
    history = store.history(fingerprint=fp)[0]
    store.close()
    assert any(a["detail"] == "carrier: UNDELIV (absent subscriber)" for a in attempts())
    assert any(e["reason"] == "delivery to oncall-sms failed: fallback" for e in history["escalations"])
    assert [(a["action"], a["via"], a["by"]) for a in history["acknowledgements"]] == [("ack", "sms", "alice")]


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 7 * 24 * 60),  # minute of the week after MON_10H
            st.integers(0, 15),  # device
            st.sampled_from([("temp_c", 97.0), ("battery_v", 11.0), ("battery_v", 10.0)]),
            st.sampled_from(["Site A", "Site B", "Site C"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_every_alert_that_keeps_firing_reaches_someone(readings: list[tuple[int, int, tuple[str, float], str]]) -> None:
    """Nothing is dropped silently: in hours, off hours, grouped, deferred or escalated, a firing alert is told."""
    p = pipeline()
    fired: set[str] = set()
    told: set[str] = set()
    now = MON_10H
    for minute, device, (metric, value), site in sorted(readings):
        at = MON_10H + minute * MIN
        while now + 30 * MIN < at:
            now += 30 * MIN
            told.update(fp for s in sends(p.tick(now)) for fp in s.message.fingerprints)
        effects = p.observe([obs(f"d{device}", metric, value, at, site=site)], at)
        fired.update(a.fingerprint for r in of(effects, RecordAlerts) for a in r.alerts)
        told.update(fp for s in sends(effects) for fp in s.message.fingerprints)
        now = max(now, at)
    for _ in range(4 * 24 * 2):  # four more days, past any closure, opening and group wait
        now += 30 * MIN
        told.update(fp for s in sends(p.tick(now)) for fp in s.message.fingerprints)
    assert fired <= told
