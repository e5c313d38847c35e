"""Targeting by labels, wave plans, gate policies and rollout specs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.rollout import (
    GatePolicy,
    NoTargetError,
    RolloutSpec,
    RolloutSpecError,
    Tally,
    WavePlan,
    abort_reason,
    gate_reason,
    parse_matcher,
    parse_selector,
    select_targets,
    spec_from_dict,
)

INVENTORY = {
    "a1": {"region": "eu", "hw": "b1", "version": "1.0"},
    "a2": {"region": "eu", "hw": "b2", "version": "1.0", "canary": "yes"},
    "a3": {"region": "us", "hw": "b2", "version": "1.1"},
    "a4": {"region": "us", "hw": "b3", "version": "1.0", "retired": "2025"},
}


def test_matchers_select_by_equality_alternatives_negation_and_presence() -> None:
    assert select_targets(INVENTORY, parse_selector(["region=eu"])) == ["a1", "a2"]
    assert select_targets(INVENTORY, parse_selector(["hw=b2|b3"])) == ["a2", "a3", "a4"]
    assert select_targets(INVENTORY, parse_selector(["hw!=b2", "!retired"])) == ["a1"]
    assert select_targets(INVENTORY, parse_selector(["canary"])) == ["a2"]
    assert select_targets(INVENTORY, parse_selector([])) == ["a1", "a2", "a3", "a4"]


def test_matchers_print_back_as_they_were_written() -> None:
    for text in ("region=eu", "hw=b1|b2", "tier!=gold", "canary", "!retired"):
        assert str(parse_matcher(text)) == text


def test_selector_matching_nothing_is_refused_with_the_selector_named() -> None:
    with pytest.raises(NoTargetError, match=r"region=mars.*none of the 4 devices"):
        select_targets(INVENTORY, parse_selector(["region=mars"]))
    with pytest.raises(NoTargetError, match="everything"):
        select_targets({}, ())


@pytest.mark.parametrize("bad", ["", "=eu", "region=", "!region=eu", "a b=c", "hw=b1|"])
def test_bad_matchers_name_their_position(bad: str) -> None:
    with pytest.raises(RolloutSpecError, match=r"selector\[1\]"):
        parse_selector(["region=eu", bad])


def test_selector_given_as_one_string_is_refused() -> None:
    with pytest.raises(RolloutSpecError, match="list of matchers"):
        parse_selector("region=eu")  # type: ignore[arg-type]


@given(st.text(max_size=30))
def test_any_text_either_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        parse_matcher(text)
    except RolloutSpecError:
        pass


def test_percentage_waves_are_cumulative_after_the_canary() -> None:
    assert WavePlan(canary=100, percentages=(1, 5, 25, 100)).ends(100_000) == [100, 1000, 5000, 25000, 100000]


def test_waves_smaller_than_the_canary_are_dropped() -> None:
    assert WavePlan(canary=10, percentages=(1, 5, 100)).ends(200) == [10, 200]
    assert WavePlan(canary=50, percentages=(100,)).ends(20) == [20]


def test_exponential_waves_double_after_the_canary() -> None:
    assert WavePlan(canary=5).ends(100) == [5, 15, 35, 75, 100]
    assert WavePlan(canary=1, growth_factor=3).ends(13) == [1, 4, 13]


@given(st.integers(1, 5000), st.integers(1, 200), st.floats(1.1, 10))
def test_exponential_plans_cover_every_target_in_growing_order(targets: int, canary: int, factor: float) -> None:
    ends = WavePlan(canary=canary, growth_factor=factor).ends(targets)
    assert ends[-1] == targets
    assert all(a < b for a, b in zip(ends, ends[1:], strict=False))


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"canary": 0}, "waves.canary"),
        ({"percentages": (5, 1, 100)}, r"waves.percentages\[1\]"),
        ({"percentages": (5, 150)}, r"waves.percentages\[1\]"),
        ({"percentages": (5, 50)}, "last wave must reach 100"),
        ({"growth_factor": 1}, "waves.growth_factor"),
    ],
)
def test_bad_wave_plans_name_the_field(kwargs: dict[str, object], where: str) -> None:
    with pytest.raises(RolloutSpecError, match=where):
        WavePlan(**kwargs)  # type: ignore[arg-type]


def test_a_plan_without_targets_is_refused() -> None:
    with pytest.raises(RolloutSpecError, match="at least one target"):
        WavePlan().ends(0)


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"min_success_rate": 1.5}, "min_success_rate"),
        ({"max_failures": -1}, "max_failures"),
        ({"soak_ms": -5}, "soak_ms"),
        ({"abort_failure_share": 0}, "abort_failure_share"),
        ({"abort_min_executed": 0}, "abort_min_executed"),
        ({"timeout_counts_as": "ignored"}, "timeout_counts_as"),
    ],
)
def test_bad_gate_policies_name_the_field(kwargs: dict[str, object], where: str) -> None:
    with pytest.raises(RolloutSpecError, match=f"gates.{where}"):
        GatePolicy(**kwargs)  # type: ignore[arg-type]


def tally(applied: int = 0, failed: int = 0, health_failed: int = 0, timed_out: int = 0, size: int = 100) -> Tally:
    return Tally(size=size, applied=applied, failed=failed, health_failed=health_failed, timed_out=timed_out)


def test_gate_passes_at_the_success_rate_and_fails_below_it() -> None:
    policy = GatePolicy(min_success_rate=0.9)
    assert gate_reason(policy, 0, tally(applied=90, failed=10)) is None
    assert "89.0% is below the gate 90.0%" in str(gate_reason(policy, 2, tally(applied=89, health_failed=11)))


def test_timeouts_count_as_failures_or_apart_as_configured() -> None:
    as_failed = GatePolicy(min_success_rate=0.9)
    apart = GatePolicy(min_success_rate=0.9, timeout_counts_as="timeout")
    t = tally(applied=90, timed_out=10)
    assert gate_reason(as_failed, 0, t) is None
    assert gate_reason(as_failed, 0, tally(applied=80, timed_out=20)) is not None
    assert gate_reason(apart, 0, tally(applied=80, timed_out=20)) is None
    assert t.failures(apart) == 0 and t.failures(as_failed) == 10


def test_a_wave_where_nobody_answered_fails_its_gate_even_when_timeouts_count_apart() -> None:
    policy = GatePolicy(timeout_counts_as="timeout")
    assert "none of its 10 devices answered" in str(gate_reason(policy, 1, tally(timed_out=10, size=10)))


def test_error_budget_aborts_one_failure_past_it() -> None:
    policy = GatePolicy(max_failures=3, abort_min_executed=1000)
    assert abort_reason(policy, tally(applied=50, failed=3)) is None
    assert "error budget spent: 4 failures, budget 3" in str(abort_reason(policy, tally(applied=50, failed=4)))


def test_failure_share_aborts_only_after_the_minimum_executed() -> None:
    policy = GatePolicy(abort_failure_share=0.3, abort_min_executed=10)
    assert abort_reason(policy, tally(failed=5, applied=4)) is None  # 9 executed: too few to judge
    assert "reached the abort threshold" in str(abort_reason(policy, tally(failed=3, applied=7)))
    assert abort_reason(policy, tally(failed=2, applied=8)) is None


SPEC = {
    "rollout_id": "fw-2.0",
    "target_version": "2.0",
    "kind": "firmware",
    "selector": ["region=eu"],
    "waves": {"canary": 2, "percentages": [50, 100]},
    "gates": {"min_success_rate": 0.9, "soak_ms": 1000},
    "concurrency": 10,
    "timeout_ms": 5000,
}


def test_spec_round_trips_through_its_dict_form() -> None:
    spec = spec_from_dict(SPEC)
    assert spec.waves.percentages == (50, 100)
    assert spec_from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"rollout_id": "has space"}, "rollout_id"),
        ({"target_version": " "}, "target_version"),
        ({"kind": "bios"}, "kind"),
        ({"concurrency": 0}, "concurrency"),
        ({"timeout_ms": -1}, "timeout_ms"),
        ({"colour": "red"}, "colour: unknown setting"),
        ({"waves": {"canary": 1, "speed": 3}}, "waves.speed: unknown setting"),
        ({"waves": [1, 2]}, "waves: expected a table"),
        ({"waves": {"percentages": 100}}, "waves.percentages: expected a list"),
        ({"gates": {"soak": 3}}, "gates.soak: unknown setting"),
    ],
)
def test_bad_specs_name_the_field(patch: dict[str, object], where: str) -> None:
    with pytest.raises(RolloutSpecError, match=where):
        spec_from_dict({**SPEC, **patch})


def test_spec_requires_id_and_version_and_a_table() -> None:
    with pytest.raises(RolloutSpecError, match="target_version: required"):
        spec_from_dict({"rollout_id": "x"})
    with pytest.raises(RolloutSpecError, match="spec: expected a table"):
        spec_from_dict([1])  # type: ignore[arg-type]


def test_spec_defaults_are_a_valid_rollout() -> None:
    spec = RolloutSpec(rollout_id="r", target_version="2")
    assert spec.kind == "firmware" and spec.concurrency > 0


def test_concurrency_per_wave_repeats_its_last_count_and_rollbacks_use_the_largest() -> None:
    spec = RolloutSpec(rollout_id="r", target_version="2", concurrency=(2, 50, 10))
    assert [spec.concurrency_of(w) for w in range(5)] == [2, 50, 10, 10, 10]
    assert spec.concurrency_of(-1) == 50
    assert RolloutSpec(rollout_id="r", target_version="2", concurrency=7).concurrency_of(-1) == 7
    assert spec_from_dict({**SPEC, "concurrency": [2, 50, 10]}) == spec_from_dict(
        spec_from_dict({**SPEC, "concurrency": [2, 50, 10]}).to_dict()
    )


@pytest.mark.parametrize(
    ("value", "where"), [((1, 0), r"concurrency\[1\]"), ((), "non-empty list"), (0, "concurrency")]
)
def test_bad_concurrency_names_the_wave(value: object, where: str) -> None:
    with pytest.raises(RolloutSpecError, match=where):
        RolloutSpec(rollout_id="r", target_version="2", concurrency=value)  # type: ignore[arg-type]
