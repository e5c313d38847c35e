"""Business hours (time zones, DST, holidays, closures, special hours), weekly ranges and the off-hours digest."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.alert import Alert, fingerprint
from pymonitor.actors.alerting.schedule import BusinessHours, Deferral, EmergencyRules, is_emergency, profiles
from pymonitor.actors.alerting.weekly import WeeklyHours, parse_days, parse_range

OFFICE: dict[str, Any] = {
    "time_zone": "Europe/Berlin",
    "weekly": {"mon-fri": ["08:00-12:00", "13:00-18:00"], "sat": ["09:00-12:00"]},
    "holidays": {"country": "DE", "subdivision": "BY"},
    "closures": ["2026-12-24", date(2026, 12, 31)],
    "special": {"2026-12-20": ["10:00-14:00"]},  # a Sunday before Christmas
}


def utc_ms(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> int:
    return round(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def office(**changes: Any) -> BusinessHours:
    return BusinessHours.parse("office", {**OFFICE, **changes})


def alert(severity: str = "warning", device: str = "d1", state: str = "firing", at: int = 0) -> Alert:
    labels = {"device": device}
    return Alert(
        fingerprint=fingerprint("r", labels),
        rule="r",
        labels=labels,
        severity=severity,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        summary="s",
        starts_ms=at,
    )


# --- weekly ranges ----------------------------------------------------------------------------------


def test_days_accept_single_ranges_and_lists() -> None:
    assert parse_days("mon", "x") == [0]
    assert parse_days("mon-fri", "x") == [0, 1, 2, 3, 4]
    assert parse_days("sat, SUN", "x") == [5, 6]


@pytest.mark.parametrize(
    ("spec", "message"), [("fri-mon", "runs backwards"), ("monday", "expected days"), ("mon-tue-wed", "")]
)
def test_bad_day_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(AlertConfigError, match=rf"^x: .*{message}"):
        parse_days(spec, "x")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("8-18", "expected a range like"),
        ("25:00-26:00", "not a time of day"),
        ("08:61-09:00", "not a time of day"),
        ("08:00-24:01", "not a time of day"),
        ("18:00-08:00", "ends before it starts; split a range over midnight"),
        ("08:00-08:00", "ends before it starts"),
    ],
)
def test_bad_ranges_are_refused(raw: str, message: str) -> None:
    with pytest.raises(AlertConfigError, match=rf"^x: .*{message}"):
        parse_range(raw, "x")


def test_range_may_end_at_midnight() -> None:
    assert parse_range("22:00-24:00", "x") == (22 * 60, 24 * 60)


def test_overlapping_ranges_on_one_day_are_refused_naming_both() -> None:
    with pytest.raises(AlertConfigError, match=r"^w.mon: ranges 08:00-12:00 and 11:00-14:00 overlap$"):
        WeeklyHours.parse({"mon": ["11:00-14:00", "08:00-12:00"]}, "w")
    with pytest.raises(AlertConfigError, match=r"^w \(wed\): ranges 08:00-18:00 and 12:00-13:00 overlap$"):
        WeeklyHours.parse({"mon-fri": ["08:00-18:00"], "wed": ["12:00-13:00"]}, "w")


def test_adjacent_ranges_do_not_overlap() -> None:
    assert WeeklyHours.parse({"mon": ["08:00-12:00", "12:00-13:00"]}, "w").days[0] == ((480, 720), (720, 780))


@given(st.text(max_size=20))
def test_range_parser_never_crashes(raw: str) -> None:
    try:
        start, end = parse_range(raw, "x")
    except AlertConfigError as exc:
        assert str(exc).startswith("x: ")
    else:
        assert 0 <= start < end <= 1440


# --- profiles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"time_zone": "Europe/Bxl"}, r"^hours.office.time_zone: unknown time zone 'Europe/Bxl'"),
        ({"time_zone": "../etc/passwd"}, r"^hours.office.time_zone: unknown time zone"),
        ({"holidays": {"country": "XX"}}, r"^hours.office.holidays.country: not supported .*Country XX"),
        (
            {"holidays": {"country": "DE", "subdivision": "ZZ"}},
            r"^hours.office.holidays.subdivision: not supported .*ZZ",
        ),
        ({"holidays": {"subdivision": "BY"}}, r"^hours.office.holidays.country: missing"),
        ({"holidays": {"country": "DE", "state": "BY"}}, r"^hours.office.holidays.state: unknown key"),
        ({"weekly": {}}, r"^hours.office.weekly: no opening hours on any day"),
        ({"closures": ["24.12.2026"]}, r"^hours.office.closures\[0\]: expected a date like 2026-12-24"),
        ({"closures": "2026-12-24"}, r"^hours.office.closures: expected a list"),
        (
            {"special": {"2026-12-24": ["10:00-12:00"]}},
            r"^hours.office.special.2026-12-24: the same date is also a closure",
        ),
        (
            {"special": {"2026-12-20": ["10:00-14:00", "13:00-15:00"]}},
            r"^hours.office.special.2026-12-20: ranges .* overlap",
        ),
        ({"opening": {}}, r"^hours.office.opening: unknown key"),
    ],
)
def test_bad_profiles_are_refused_naming_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(AlertConfigError, match=message):
        office(**changes)


def test_profile_needs_a_time_zone() -> None:
    spec = {k: v for k, v in OFFICE.items() if k != "time_zone"}
    with pytest.raises(AlertConfigError, match=r"^hours.office.time_zone: missing"):
        BusinessHours.parse("office", spec)


def test_weekday_hours_in_local_time_with_lunch_break() -> None:
    p = office()
    # Tuesday 2026-12-01, Berlin is UTC+1 in winter
    assert not p.in_hours(utc_ms(2026, 12, 1, 6, 59))
    assert p.in_hours(utc_ms(2026, 12, 1, 7, 0))
    assert not p.in_hours(utc_ms(2026, 12, 1, 11, 30))  # 12:30 local: lunch
    assert p.in_hours(utc_ms(2026, 12, 1, 16, 59, 59))
    assert not p.in_hours(utc_ms(2026, 12, 1, 17, 0))
    assert p.next_opening(utc_ms(2026, 12, 1, 11, 30)) == utc_ms(2026, 12, 1, 12, 0)
    assert p.next_opening(utc_ms(2026, 12, 1, 9, 15)) == utc_ms(2026, 12, 1, 9, 15)  # open now


def test_in_hours_follows_the_wall_clock_across_dst() -> None:
    p = office()
    # 08:00 local is 07:00 UTC in winter (Fri 2026-03-27) and 06:00 UTC in summer (Mon 2026-03-30)
    assert p.in_hours(utc_ms(2026, 3, 27, 7, 0)) and not p.in_hours(utc_ms(2026, 3, 27, 6, 59))
    assert p.in_hours(utc_ms(2026, 3, 30, 6, 0)) and not p.in_hours(utc_ms(2026, 3, 30, 5, 59))
    # Saturday evening before the spring change: next opening is Monday 08:00 CEST
    assert p.next_opening(utc_ms(2026, 3, 28, 12, 0)) == utc_ms(2026, 3, 30, 6, 0)
    # Friday evening before the autumn change (2026-10-25): Saturday 09:00 CEST, then Monday 08:00 CET
    assert p.next_opening(utc_ms(2026, 10, 23, 16, 0)) == utc_ms(2026, 10, 24, 7, 0)
    assert p.next_opening(utc_ms(2026, 10, 24, 10, 0)) == utc_ms(2026, 10, 26, 7, 0)


def test_opening_inside_the_spring_forward_gap_opens_when_the_clocks_jump() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC); 02:30 local does not exist that night
    p = office(special={"2026-03-29": ["02:30-04:00"]})
    assert p.next_opening(utc_ms(2026, 3, 28, 12, 0)) == utc_ms(2026, 3, 29, 1, 0)
    assert p.in_hours(utc_ms(2026, 3, 29, 1, 0)) and not p.in_hours(utc_ms(2026, 3, 29, 0, 59, 59))


def test_range_swallowed_by_the_spring_forward_gap_never_opens() -> None:
    p = office(special={"2026-03-29": ["02:00-03:00"]})
    assert p.next_opening(utc_ms(2026, 3, 28, 12, 0)) == utc_ms(2026, 3, 30, 6, 0)


def test_opening_in_the_repeated_autumn_hour_is_the_first_occurrence() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET; 02:30 local happens at 00:30 UTC and again at 01:30 UTC
    p = office(special={"2026-10-25": ["02:30-05:00"]})
    assert p.next_opening(utc_ms(2026, 10, 24, 12, 0)) == utc_ms(2026, 10, 25, 0, 30)


def test_public_holiday_is_out_of_hours() -> None:
    p = office()
    christmas = utc_ms(2026, 12, 25, 10, 0)  # a Friday, 11:00 in Berlin
    assert not p.in_hours(christmas)
    assert office(holidays={"country": "FR"}).in_hours(utc_ms(2026, 12, 22, 10, 0))
    # Fri 25th and Sat 26th are holidays, Sunday closed: Monday 28th 08:00
    assert p.next_opening(christmas) == utc_ms(2026, 12, 28, 7, 0)
    # Epiphany (6 January) is a holiday in Bavaria but not in Berlin
    assert not p.in_hours(utc_ms(2027, 1, 6, 10, 0))
    assert office(holidays={"country": "DE", "subdivision": "BE"}).in_hours(utc_ms(2027, 1, 6, 10, 0))


def test_custom_closure_is_out_of_hours() -> None:
    p = office()
    assert not p.in_hours(utc_ms(2026, 12, 24, 10, 0))  # Thursday, closed
    assert not p.in_hours(utc_ms(2026, 12, 31, 10, 0))  # TOML date value
    assert office(closures=[]).in_hours(utc_ms(2026, 12, 24, 10, 0))


def test_special_opening_hours_on_a_sunday() -> None:
    p = office()
    assert p.in_hours(utc_ms(2026, 12, 20, 9, 0))  # Sunday 10:00 local
    assert not p.in_hours(utc_ms(2026, 12, 20, 13, 0))
    assert not p.in_hours(utc_ms(2026, 12, 13, 9, 0))  # an ordinary Sunday
    assert p.next_opening(utc_ms(2026, 12, 19, 12, 0)) == utc_ms(2026, 12, 20, 9, 0)


def test_special_hours_win_over_a_holiday() -> None:
    p = office(special={"2026-12-25": ["09:00-11:00"]})
    assert p.in_hours(utc_ms(2026, 12, 25, 8, 30))


def test_hours_until_midnight_and_after() -> None:
    p = BusinessHours.parse("night", {"time_zone": "UTC", "weekly": {"mon": ["22:00-24:00"], "tue": ["00:00-06:00"]}})
    assert p.in_hours(utc_ms(2026, 11, 30, 23, 59)) and p.in_hours(utc_ms(2026, 12, 1, 0, 0))
    assert p.next_opening(utc_ms(2026, 12, 1, 7, 0)) == utc_ms(2026, 12, 7, 22, 0)


def test_profile_closed_for_over_a_year_reports_no_opening() -> None:
    days = [date.fromordinal(date(2026, 1, 1).toordinal() + i).isoformat() for i in range(420)]
    p = office(closures=days, special={})
    with pytest.raises(AlertConfigError, match=r"^hours.office: no opening within 400 days"):
        p.next_opening(utc_ms(2026, 1, 1, 0, 0))


def test_profiles_parses_the_hours_section() -> None:
    parsed = profiles(
        {"hours": {"office": OFFICE, "plant": {"time_zone": "UTC", "weekly": {"mon-sun": ["00:00-24:00"]}}}}
    )
    assert set(parsed) == {"office", "plant"}
    assert parsed["plant"].in_hours(utc_ms(2026, 12, 25, 3, 0))
    assert set(profiles({"hours": {"office": OFFICE, "x": {}}}, names=["office"])) == {"office"}
    assert profiles({}) == {}


# --- emergencies and the digest -------------------------------------------------------------------------


def test_emergency_severities_are_configurable() -> None:
    default = EmergencyRules()
    assert is_emergency(alert("critical"), default) and is_emergency(alert("emergency"), default)
    assert not is_emergency(alert("warning"), default)
    strict = EmergencyRules.parse({"page_severities": ["emergency"]}, "alerting.off_hours")
    assert not is_emergency(alert("critical"), strict)
    assert EmergencyRules.parse({}, "x") == default


def test_unknown_severity_in_emergency_rules_is_refused() -> None:
    with pytest.raises(AlertConfigError, match=r"^x.page_severities\[1\]: expected one of info, warning, critical"):
        EmergencyRules.parse({"page_severities": ["critical", "fatal"]}, "x")


def test_off_hours_warning_waits_for_next_business_morning_and_emergency_pages_now() -> None:
    d = Deferral(office())
    night = utc_ms(2026, 12, 1, 2, 0)  # Tuesday 03:00 Berlin
    morning = utc_ms(2026, 12, 1, 7, 0)
    assert d.defer(alert("critical", device="pump"), night) == night
    assert d.defer(alert("warning", device="d1", at=night), night) == morning
    assert d.defer(alert("info", device="d2", at=night - 1), night) == morning
    assert d.pending == 2 and d.next_due_ms() == morning
    assert d.digest_due(morning - 1) == []
    digest = d.digest_due(morning)
    assert [a.labels["device"] for a in digest] == ["d2", "d1"]  # oldest first
    assert d.pending == 0 and d.next_due_ms() is None


def test_in_hours_everything_is_delivered_now() -> None:
    d = Deferral(office())
    noon = utc_ms(2026, 12, 1, 10, 0)
    assert d.defer(alert("info"), noon) == noon and d.pending == 0


def test_digest_keeps_the_latest_state_of_an_alert_that_flapped_overnight() -> None:
    d = Deferral(office(), EmergencyRules(page_severities=frozenset({"emergency"})))
    night = utc_ms(2026, 12, 1, 2, 0)
    morning = utc_ms(2026, 12, 1, 7, 0)
    assert d.defer(alert("critical"), night) == morning
    assert d.defer(alert("critical", state="resolved"), night + 60_000) == morning
    [only] = d.digest_due(morning)
    assert only.state == "resolved"


YEAR_2026_MS = (utc_ms(2026, 1, 1, 0, 0), utc_ms(2027, 1, 1, 0, 0))
DST_NIGHTS = {"2026-03-29": ["02:30-04:00"], "2026-10-25": ["02:30-05:00"]}


@given(st.integers(*YEAR_2026_MS))
def test_next_opening_is_open_and_nothing_opens_earlier(ts_ms: int) -> None:
    p = office(special={**OFFICE["special"], **DST_NIGHTS})
    opening = p.next_opening(ts_ms)
    assert opening >= ts_ms and p.in_hours(opening)
    if opening > ts_ms:
        assert not p.in_hours(opening - 1)
        # no open minute in between (ranges start on whole minutes, so minutes are enough)
        assert not any(p.in_hours(t) for t in range(ts_ms, opening, 15 * 60_000))


def test_alert_that_becomes_an_emergency_overnight_leaves_the_digest_and_pages() -> None:
    d = Deferral(office())
    night = utc_ms(2026, 12, 1, 2, 0)
    assert d.defer(alert("warning"), night) == utc_ms(2026, 12, 1, 7, 0)
    assert d.defer(alert("critical"), night + 1) == night + 1
    assert d.pending == 0
