"""Escalation chains: ack timeouts, stop on ack, repeats and ``then`` links, delivery fallback, in/off-hours chains."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.chains import EscalationPolicy
from pymonitor.actors.alerting.escalation import EXHAUSTED, EscalationStep, Escalator
from pymonitor.actors.alerting.schedule import BusinessHours

RECEIVERS = ("sms-oncall", "voice-oncall", "email-oncall", "sms-lead", "email-team", "sms-manager")
MIN = 60_000


def chains(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "day": {
            "levels": [
                {"receivers": ["email-team"], "ack_timeout": "30m"},
                {"receivers": ["sms-lead"], "ack_timeout": "15m"},
            ]
        },
        "night": {
            "levels": [
                {"receivers": ["sms-oncall"], "ack_timeout": "10m", "fallback": ["voice-oncall"]},
                {"receivers": ["sms-lead", "email-oncall"], "ack_timeout": "10m"},
            ],
            "repeat": 1,
            "then": "management",
        },
        "management": {"levels": [{"receivers": ["sms-manager"], "ack_timeout": "1h"}]},
    }
    base.update(overrides)
    return base


def policy(**overrides: Any) -> EscalationPolicy:
    return EscalationPolicy.from_config(
        {"escalation": {"in_hours": "day", "off_hours": "night", "chains": chains(**overrides)}}, receivers=RECEIVERS
    )


def who(steps: list[EscalationStep]) -> list[tuple[int, tuple[str, ...], str]]:
    return [(s.at_ms // MIN, s.receivers, s.reason) for s in steps]


def night() -> Escalator:
    e = Escalator(policy())
    assert e.start("fp1", 0, chain="night")
    return e


# --- config ---------------------------------------------------------------------------------------


def test_self_referencing_chain_is_refused_naming_the_cycle() -> None:
    with pytest.raises(AlertConfigError, match=r"^escalation.chains.loop.then: chains loop back: loop -> loop$"):
        policy(loop={"levels": [{"receivers": ["sms-oncall"], "ack_timeout": "5m"}], "then": "loop"})


def test_longer_cycle_is_refused_naming_every_chain_in_it() -> None:
    cyc = chains(management={"levels": [{"receivers": ["sms-manager"], "ack_timeout": "1h"}], "then": "night"})
    with pytest.raises(AlertConfigError, match=r"chains loop back: night -> management -> night$"):
        EscalationPolicy.from_config({"escalation": {"in_hours": "day", "chains": cyc}}, receivers=RECEIVERS)


@pytest.mark.parametrize(
    ("escalation", "message"),
    [
        (None, r"^escalation: expected a table"),
        ({"in_hours": "day"}, r"^escalation.chains: at least one chain"),
        ({"chains": chains()}, r"^escalation.in_hours: missing"),
        ({"in_hours": "weekend", "chains": chains()}, r"^escalation.in_hours: unknown chain 'weekend' \(known: day, "),
        ({"in_hours": "day", "off_hours": "x", "chains": chains()}, r"^escalation.off_hours: unknown chain 'x'"),
        ({"in_hours": "day", "chains": chains(day={"levels": []})}, r"^escalation.chains.day.levels: expected 1 to 20"),
        (
            {"in_hours": "day", "chains": chains(day={})},
            r"^escalation.chains.day.levels: expected 1 to 20 levels, got 0",
        ),
        (
            {"in_hours": "day", "chains": chains(day={"levels": [{"receivers": ["pager"], "ack_timeout": 60}]})},
            r"^escalation.chains.day.levels\[0\].receivers\[0\]: unknown receiver 'pager'",
        ),
        (
            {"in_hours": "day", "chains": chains(day={"levels": [{"receivers": [], "ack_timeout": 60}]})},
            r"^escalation.chains.day.levels\[0\].receivers: at least one receiver",
        ),
        (
            {"in_hours": "day", "chains": chains(day={"levels": [{"receivers": ["sms-lead"]}]})},
            r"^escalation.chains.day.levels\[0\].ack_timeout: missing",
        ),
        (
            {"in_hours": "day", "chains": chains(day={"levels": [{"receivers": ["sms-lead"], "ack_timeout": 0}]})},
            r"^escalation.chains.day.levels\[0\].ack_timeout: expected a positive duration",
        ),
        (
            {
                "in_hours": "day",
                "chains": chains(day={"levels": [{"receivers": ["sms-lead"], "ack_timeout": 5}], "repeat": 99}),
            },
            r"^escalation.chains.day.repeat: expected an integer from 0 to 10, got 99",
        ),
        (
            {
                "in_hours": "day",
                "chains": chains(day={"levels": [{"receivers": ["sms-lead"], "ack_timeout": 5}], "then": "x"}),
            },
            r"^escalation.chains.day.then: unknown chain 'x'",
        ),
        ({"in_hours": "day", "chains": chains(), "chain": "x"}, r"^escalation.chain: unknown key"),
    ],
)
def test_bad_escalation_configs_are_refused_naming_the_key(escalation: Any, message: str) -> None:
    with pytest.raises(AlertConfigError, match=message):
        EscalationPolicy.from_config({"escalation": escalation}, receivers=RECEIVERS)


def test_off_hours_chain_defaults_to_the_in_hours_chain() -> None:
    p = EscalationPolicy.from_config({"escalation": {"in_hours": "day", "chains": chains()}}, receivers=RECEIVERS)
    assert p.off_hours == "day"


# --- running --------------------------------------------------------------------------------------------


def test_first_level_is_told_at_once_and_level_2_after_the_ack_timeout() -> None:
    e = night()
    assert who(e.due(0)) == [(0, ("sms-oncall",), "start")]
    assert e.next_due_ms() == 10 * MIN
    assert e.due(10 * MIN - 1) == []
    [step] = e.due(10 * MIN)
    assert (step.level, step.receivers, step.reason, step.chain) == (
        1,
        ("sms-lead", "email-oncall"),
        "ack timeout",
        "night",
    )
    assert e.level_of("fp1") == ("night", 1, 0)


def test_ack_stops_the_escalation() -> None:
    e = night()
    e.due(0)
    assert e.ack("fp1", "alice", 5 * MIN)
    assert e.due(60 * MIN) == [] and e.active == 0 and e.level_of("fp1") is None
    assert not e.ack("fp1", "bob", 6 * MIN)
    assert e.next_due_ms() is None


def test_ack_before_the_first_due_drops_the_queued_start() -> None:
    e = night()
    e.ack("fp1", "alice", 0)
    assert e.due(0) == []


def test_starting_twice_does_not_restart_the_escalation() -> None:
    e = night()
    assert not e.start("fp1", 5 * MIN, chain="night")
    assert len(e.due(5 * MIN)) == 1


def test_loop_limit_repeats_the_chain_then_moves_on_then_stops() -> None:
    e = night()
    steps = e.due(0) + e.due(500 * MIN)  # a slow caller gets every step, in order, at its own time
    assert who(steps) == [
        (0, ("sms-oncall",), "start"),
        (10, ("sms-lead", "email-oncall"), "ack timeout"),
        (20, ("sms-oncall",), "ack timeout: repeat 1 of 1"),
        (30, ("sms-lead", "email-oncall"), "ack timeout"),
        (40, ("sms-manager",), "ack timeout: then chain 'management'"),
        (100, (), EXHAUSTED),
    ]
    assert [s.loop for s in steps] == [0, 0, 1, 1, 0, 0]
    assert e.active == 0 and e.due(1000 * MIN) == []


def test_delivery_failure_tells_the_fallback_at_once() -> None:
    e = night()
    e.due(0)
    assert e.delivery_failed("fp1", "sms-oncall", 2 * MIN)
    assert who(e.due(2 * MIN)) == [(2, ("voice-oncall",), "delivery to sms-oncall failed: fallback")]
    assert e.next_due_ms() == 12 * MIN  # the fallback gets a full ack timeout
    assert e.level_of("fp1") == ("night", 0, 0)


def test_failed_fallback_escalates_to_the_next_level_at_once() -> None:
    e = night()
    e.due(0)
    e.delivery_failed("fp1", "sms-oncall", 1 * MIN)
    e.due(1 * MIN)
    assert e.delivery_failed("fp1", "voice-oncall", 2 * MIN)
    assert who(e.due(2 * MIN)) == [(2, ("sms-lead", "email-oncall"), "delivery to voice-oncall failed")]
    assert e.next_due_ms() == 12 * MIN


def test_second_failure_on_a_level_after_its_fallback_escalates() -> None:
    e = night()
    e.delivery_failed("fp1", "sms-oncall", 0)
    assert e.delivery_failed("fp1", "sms-oncall", 1 * MIN)
    assert [s.level for s in e.due(1 * MIN)] == [0, 0, 1]


def test_delivery_failure_on_a_level_without_fallback_escalates_at_once() -> None:
    e = Escalator(policy())
    e.start("fp1", 0, chain="day")
    e.due(0)
    assert e.delivery_failed("fp1", "email-team", 3 * MIN)
    assert who(e.due(3 * MIN)) == [(3, ("sms-lead",), "delivery to email-team failed")]


def test_late_or_unknown_failure_reports_change_nothing() -> None:
    e = night()
    e.due(10 * MIN)  # now at level 1
    assert not e.delivery_failed("fp1", "sms-oncall", 11 * MIN)
    assert not e.delivery_failed("nope", "sms-oncall", 11 * MIN)
    assert e.due(11 * MIN) == []


def test_stop_on_resolution_and_independent_alerts() -> None:
    e = night()
    e.start("fp2", 5 * MIN, chain="day")
    assert e.active == 2 and e.next_due_ms() == 0
    e.due(5 * MIN)
    assert e.stop("fp1") and not e.stop("fp1")
    assert [s.fingerprint for s in e.due(35 * MIN)] == ["fp2"]


def test_chain_is_chosen_by_business_hours_at_start() -> None:
    hours = BusinessHours.parse("office", {"time_zone": "Europe/Berlin", "weekly": {"mon-fri": ["08:00-18:00"]}})
    e = Escalator(policy(), hours)
    tuesday_noon = round(datetime(2026, 12, 1, 11, tzinfo=UTC).timestamp() * 1000)
    tuesday_night = round(datetime(2026, 12, 1, 23, tzinfo=UTC).timestamp() * 1000)
    e.start("a", tuesday_noon)
    e.start("b", tuesday_night)
    assert {s.fingerprint: s.chain for s in e.due(tuesday_night)} == {"a": "day", "b": "night"}


def test_without_hours_the_in_hours_chain_is_used() -> None:
    e = Escalator(policy())
    e.start("a", 0)
    assert e.due(0)[0].chain == "day"


def test_starting_an_unknown_chain_is_refused() -> None:
    with pytest.raises(AlertConfigError, match=r"^escalation: unknown chain 'weekend' \(known: day, "):
        Escalator(policy()).start("a", 0, chain="weekend")
