"""Link profiles and outage schedules: named links validate, schedules answer exactly."""

from __future__ import annotations

import pytest

from pymonitor.actors.runtime import SimClock
from pymonitor.simulators.link import (
    DAY_S,
    PROFILES,
    LinkError,
    LinkProfile,
    Outage,
    OutageSchedule,
    get_profile,
)


def test_named_profiles_cover_the_links_remote_sites_use() -> None:
    assert {"broadband", "3g", "2g_edge", "satellite"} <= set(PROFILES)
    edge = get_profile("2g_edge")
    assert 30_000 <= edge.rate_bps_up <= 80_000  # type: ignore[operator]
    assert 300 <= edge.rtt_ms <= 1000
    assert 0.02 <= edge.loss <= 0.05
    sat = get_profile("satellite")
    assert 500 <= sat.rtt_ms <= 700
    assert 100_000 <= sat.rate_bps_up <= 1_000_000  # type: ignore[operator]


def test_an_unknown_profile_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown link profile '2g'; known profiles: 2g_edge, 3g, broadband"):
        get_profile("2g")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rate_bps_up", 0, "at rate_bps_up: expected a positive int"),
        ("rate_bps_down", 1.5, "at rate_bps_down: expected a positive int"),
        ("delay_ms", -1, "at delay_ms: expected >= 0"),
        ("jitter_ms", 300, "at jitter_ms: expected 0 <= jitter_ms <= delay_ms"),
        ("loss", 1.0, "at loss: expected 0 <= loss < 1"),
        ("mtu", 100, "at mtu: expected an int from 576 to 65535"),
        ("name", "", "at name: expected a non-empty string"),
    ],
)
def test_a_bad_profile_names_the_field(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {"name": "x", "rate_bps_up": 1000, "rate_bps_down": None, "delay_ms": 250}
    fields[field] = value
    with pytest.raises(LinkError, match=message):
        LinkProfile(**fields)  # type: ignore[arg-type]


def test_an_outage_schedule_answers_whether_the_link_is_down() -> None:
    schedule = OutageSchedule([Outage(100, 50), Outage(10, 5), Outage(15, 5)])
    assert [o.start_s for o in schedule.outages] == [10, 15, 100]
    assert not schedule.offline_at(9.999)
    assert schedule.offline_at(10)
    assert schedule.offline_at(19.9)
    assert not schedule.offline_at(20)  # an outage covers [start, end)
    assert schedule.next_change(0) == 10
    assert schedule.next_change(12) == 15  # the next outage starts where this one ends
    assert schedule.next_change(20) == 100
    assert schedule.next_change(150) is None
    # back-to-back outages are one stretch down, not a blink up in between
    assert schedule.transitions() == [(10, True), (20, False), (100, True), (150, False)]
    assert schedule.offline_s(until_s=120) == 30


def test_an_outage_of_days_runs_on_a_simulated_clock() -> None:
    schedule = OutageSchedule.periodic(first_s=DAY_S, every_s=7 * DAY_S, duration_s=3 * DAY_S, count=4)
    assert schedule.offline_s(until_s=28 * DAY_S) == 12 * DAY_S
    clock = SimClock(start_ms=0)
    seen: list[tuple[int, bool]] = []
    for t_s, offline in schedule.transitions():
        clock.call_later(t_s, lambda offline=offline: seen.append((clock.now_ms(), offline)))
    clock.advance(90 * 86_400_000)  # 90 days in an instant
    assert seen[:2] == [(86_400_000, True), (4 * 86_400_000, False)]
    assert len(seen) == 8


def test_overlapping_outages_are_refused() -> None:
    with pytest.raises(LinkError, match=r"outage schedule at \[1\]: .* starts before"):
        OutageSchedule([Outage(0, 10), Outage(5, 10)])


def test_a_bad_outage_names_the_field() -> None:
    with pytest.raises(LinkError, match="at duration_s: expected > 0"):
        Outage(0, 0)
    with pytest.raises(LinkError, match="at start_s: expected >= 0"):
        Outage(-1, 5)
