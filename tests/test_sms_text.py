"""SMS text: GSM 03.38 encoding, segment counts, transliteration, fitting, storm summaries, batching, rate limits."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.alert import Alert, Severity
from pymonitor.actors.alerting.sms import (
    GSM_BASIC,
    GSM_EXTENSION,
    SmsRateLimiter,
    alert_line,
    batch,
    encoding,
    fit,
    segments,
    summarize_storm,
    transliterate,
)

HOUR_MS = 3_600_000


def _alert(
    rule: str, site: str | None, *, severity: Severity = "warning", summary: str = "", state: str = "firing"
) -> Alert:
    return Alert(
        fingerprint=f"{rule}-{site}",
        rule=rule,
        labels={"site": site} if site else {},
        severity=severity,
        state="firing" if state == "firing" else "resolved",
        summary=summary or rule.replace("_", " "),
        starts_ms=0,
    )


def _storm(count: int, rules: list[str], sites: list[str], seed: int = 1) -> list[Alert]:
    rng = random.Random(seed)
    return [_alert(rng.choice(rules), rng.choice(sites)) for _ in range(count)]


# -- encoding and segments


@pytest.mark.parametrize(("length", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
def test_gsm7_text_takes_160_septets_then_153_per_part(length: int, parts: int) -> None:
    text = "a" * length
    assert encoding(text) == "GSM-7"
    assert segments(text) == parts


def test_empty_text_is_one_gsm7_message() -> None:
    assert (encoding(""), segments("")) == ("GSM-7", 1)


@pytest.mark.parametrize(("count", "parts"), [(80, 1), (81, 2), (153, 3)])
def test_extension_characters_take_two_septets(count: int, parts: int) -> None:
    text = "€" * count
    assert encoding(text) == "GSM-7"
    assert segments(text) == parts  # 76 per part: an escape pair never straddles parts, so 153 take 3


def test_every_extension_character_counts_twice() -> None:
    for char in "^{}\\[~]|€\f":
        assert segments(char * 80) == 1
        assert segments(char * 81) == 2
    assert GSM_EXTENSION.isdisjoint(GSM_BASIC)


def test_escape_pair_is_not_split_across_parts() -> None:
    # 306 septets would fill two parts of 153 exactly, but the pair cannot start at septet 153
    assert segments("a" * 151 + "€" + "a" * 153) == 2
    assert segments("a" * 152 + "€" + "a" * 152) == 3


@pytest.mark.parametrize(
    ("char", "count", "parts"),
    [("ж", 70, 1), ("ж", 71, 2), ("ж", 134, 2), ("ж", 135, 3)]
    # an emoji is a surrogate pair (2 units) never split: 33 per part of 67, the 34th would straddle
    + [("\U0001f600", 35, 1), ("\U0001f600", 36, 2), ("\U0001f600", 66, 2), ("\U0001f600", 67, 3)],
)
def test_ucs2_text_takes_70_utf16_units_then_67_per_part(char: str, count: int, parts: int) -> None:
    text = char * count
    assert encoding(text) == "UCS-2"
    assert segments(text) == parts


def test_one_non_gsm_character_switches_to_ucs2() -> None:
    text = "a" * 100 + "ę"
    assert encoding(text) == "UCS-2"
    assert segments(text) == 2
    assert segments(transliterate(text)) == 1


# -- transliteration


def test_transliterate_keeps_gsm_letters_and_plains_the_rest() -> None:
    assert transliterate("déjà vu, Ångström, straße, Æsir, Ñandú") == "déjà vu, Ångström, straße, Æsir, Ñandu"
    assert transliterate("Zażółć gęślą jaźń") == "Zazolc gesla jazn"
    assert transliterate("Łódź, Őrség, crème brûlée") == "Lodz, Orség, crème brulée"
    assert transliterate("\u201cquoted\u201d \u2018single\u2019 a\u2013b a\u2014b wait\u2026") == (
        "\"quoted\" 'single' a-b a-b wait..."
    )
    assert transliterate("21.5\u00a0°C, 70°F, 30° tilt") == "21.5 C, 70F, 30 deg tilt"
    assert transliterate("½ ™ ² ×") == "1/2 TM 2 x"


def test_transliterate_drops_controls_and_marks_unknown_symbols() -> None:
    assert transliterate("a\x00b\x1bc\u200bd") == "abcd"
    assert transliterate("snow \u2603 and \U0001f600") == "snow ? and ?"
    assert transliterate("e\u0301") == "é"  # decomposed input is composed first


def test_transliterate_output_of_every_replacement_is_gsm7() -> None:
    text = "“”„‟«»″‘’‚‛‹›′`´‐‑‒–—―−\t\u00a0\u2009\u202f\u3000\u00ad…°•·×÷⁄±µμ©®←→≤≥≠łŁđĐðÐþÞœŒıħĦŧŦ"
    assert encoding(transliterate(text)) == "GSM-7"


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_transliterate_always_gives_gsm7(text: str) -> None:
    assert encoding(transliterate(text)) == "GSM-7"


# -- fit


def test_fit_keeps_text_that_fits() -> None:
    assert fit("a" * 160) == "a" * 160


def test_fit_cuts_at_the_segment_budget_with_an_ellipsis() -> None:
    assert fit("a" * 161) == "a" * 157 + "..."
    assert fit("a" * 400, max_segments=2) == "a" * 303 + "..."
    assert segments(fit("ж" * 100)) == 1
    assert fit("ж" * 100).endswith("...")


def test_fit_does_not_end_on_a_space_before_the_ellipsis() -> None:
    text = "word " * 40
    assert not fit(text).endswith(" ...")


@pytest.mark.parametrize("budget", [0, -1, True, 1.5])
def test_fit_rejects_a_budget_below_one_segment(budget: int) -> None:
    with pytest.raises(AlertConfigError, match=r"max_segments: expected a whole number >= 1"):
        fit("text", budget)


@given(st.text(max_size=800), st.integers(min_value=1, max_value=4))
@settings(max_examples=200, deadline=None)
def test_fit_output_never_exceeds_its_budget(text: str, budget: int) -> None:
    fitted = fit(text, budget)
    assert segments(fitted) <= budget
    assert fitted == text or fitted.endswith("...")


# -- storm summaries


def test_storm_summary_groups_by_rule_most_frequent_first_with_sites() -> None:
    alerts = (
        [_alert("battery_low", "Site A")] * 5
        + [_alert("battery_low", "Site B")] * 4
        + [_alert("offline", "Site C")] * 3
        + [_alert("temp_high", "Site A")] * 2
    )
    assert summarize_storm(alerts) == (
        "14 alerts at 3 sites: 9x battery low (Site A, Site B), 3x offline (Site C), 2x temp high (Site A)"
    )


def test_storm_of_ten_thousand_alerts_at_three_sites_fits_one_gsm7_segment() -> None:
    alerts = _storm(
        10_000, ["battery_low", "offline", "temp_high", "door_open", "pump_fault"], ["Nord", "Süd", "Óbuda"]
    )
    text = summarize_storm(alerts)
    assert encoding(text) == "GSM-7" and segments(text) == 1 and len(text) <= 160
    assert text.startswith("10000 alerts at 3 sites")
    for site in ("Nord", "Süd", "Obuda"):
        assert site in text
    counts = [int(part.split("x ")[0]) for part in text.split(": ", 1)[1].split(", ")]
    assert sum(counts) == 10_000


def test_storm_summary_drops_group_sites_then_groups_but_names_every_site() -> None:
    sites = [f"Pumping station {name}" for name in ("North", "South", "East", "West")]
    alerts = _storm(500, [f"sensor_{i}_out_of_range" for i in range(12)], sites)
    text = summarize_storm(alerts)
    assert len(text) <= 160
    assert "Pumping station North/South/East/West" in text or all(site in text for site in sites)
    assert "x other" in text


def test_storm_summary_factors_out_a_shared_site_prefix_then_abbreviates() -> None:
    alerts = _storm(2_000, ["offline"], [f"Springfield North {i}" for i in range(12)])
    text = summarize_storm(alerts)
    assert text.startswith("2000 alerts at 12 sites (Springfield North ")
    assert len(text) <= 160
    many = _storm(2_000, ["offline"], [f"Springfield North {i}" for i in range(40)])
    assert len(summarize_storm(many)) <= 160


def test_storm_summary_falls_back_to_the_count_then_cuts() -> None:
    alerts = _storm(3_000, ["offline"], [f"Site {i:03d}" for i in range(300)])
    assert summarize_storm(alerts) == "3000 alerts at 300 sites"
    assert summarize_storm(alerts, max_chars=12) == "3000 aler..."


def test_storm_summary_of_one_alert_without_a_site_and_of_none() -> None:
    assert summarize_storm([_alert("offline", None)]) == "1 alert at 1 site: 1x offline (no site)"
    assert summarize_storm([]) == "0 alerts"


# -- batching


def test_alert_line_tags_severity_and_resolution_in_gsm7() -> None:
    assert (
        alert_line(_alert("temp_high", "A", severity="critical", summary="temp high: 95 °C")) == "CRIT temp high: 95 C"
    )
    assert (
        alert_line(_alert("temp_high", "A", summary="temp high resolved", state="resolved")) == "OK temp high resolved"
    )


def test_batch_combines_alerts_that_fit_and_splits_the_rest() -> None:
    alerts = [_alert("offline", "A", summary=f"gw-{i} offline \u2013 no data for 300 s") for i in range(10)]
    messages = batch(alerts, max_segments=1)
    assert len(messages) > 1
    assert all(segments(message) == 1 and encoding(message) == "GSM-7" for message in messages)
    assert sum(message.count("\n") + 1 for message in messages) == 10
    assert batch(alerts[:2], max_segments=1) == [
        "WARN gw-0 offline - no data for 300 s\nWARN gw-1 offline - no data for 300 s"
    ]


def test_batch_cuts_a_single_overlong_alert_to_the_budget() -> None:
    messages = batch([_alert("x", "A", summary="y" * 500)], max_segments=2)
    assert len(messages) == 1 and segments(messages[0]) == 2 and messages[0].endswith("...")
    assert batch([], max_segments=1) == []


# -- rate limit


def test_rate_limiter_allows_a_burst_then_refills_per_hour_per_recipient() -> None:
    limiter = SmsRateLimiter(per_hour=6, burst=2)
    assert [limiter.allow("+4911", 0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("+4922", 0)  # another recipient has its own bucket
    assert not limiter.allow("+4911", HOUR_MS // 6 - 1)
    assert limiter.allow("+4911", HOUR_MS // 6)
    assert (limiter.refused, limiter.refused_by["+4911"]) == (2, 2)


def test_rate_limiter_bucket_never_exceeds_burst_and_ignores_clock_steps_back() -> None:
    limiter = SmsRateLimiter(per_hour=60, burst=3)
    assert [limiter.allow("r", 100 * HOUR_MS) for _ in range(4)] == [True, True, True, False]
    assert not limiter.allow("r", 0)  # clock stepped back: nothing refilled
    assert not limiter.allow("r", 100 * HOUR_MS + 59_999)
    assert limiter.allow("r", 100 * HOUR_MS + 60_000)


@pytest.mark.parametrize(
    ("per_hour", "burst", "message"),
    [
        (0, 1, "per_hour: expected a positive number, got 0"),
        (True, 1, "per_hour"),
        ("5", 1, "per_hour"),
        (5, 0, "burst: expected a whole number >= 1, got 0"),
        (5, 1.5, "burst"),
        (5, False, "burst"),
    ],
)
def test_rate_limiter_rejects_bad_settings(per_hour: float, burst: int, message: str) -> None:
    with pytest.raises(AlertConfigError, match=message):
        SmsRateLimiter(per_hour=per_hour, burst=burst)
