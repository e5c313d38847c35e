"""The rollout state machine: waves, gates, timeouts, pause/resume/abort and confirmed rollback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pymonitor.actors.rollout import (
    Command,
    DeviceState,
    GatePolicy,
    NoTargetError,
    RolloutEngine,
    RolloutSpec,
    RolloutSpecError,
    RolloutStateError,
    WavePlan,
    parse_selector,
)

STEP_MS = 100
Answer = Callable[[Command], tuple[str, str] | None]  # (outcome, version) or None: never answers


def fleet(n: int, version: str = "1.0") -> dict[str, dict[str, str]]:
    return {f"dev{i:04d}": {"version": version, "site": "north" if i % 2 else "south"} for i in range(n)}


def make_spec(**kwargs: object) -> RolloutSpec:
    base: dict[str, object] = {
        "rollout_id": "fw-2",
        "target_version": "2.0",
        "waves": WavePlan(canary=5, percentages=(25, 100)),
        "gates": GatePolicy(min_success_rate=0.9, soak_ms=300, abort_min_executed=10_000),
        "concurrency": 10,
        "timeout_ms": 1000,
    }
    base.update(kwargs)
    return RolloutSpec(**base)  # type: ignore[arg-type]


def healthy(cmd: Command) -> tuple[str, str]:
    return ("applied", cmd.version) if cmd.action == "apply" else ("rolled_back", cmd.version)


def drive(
    engine: RolloutEngine, answer: Answer = healthy, *, now: int = 0, steps: int = 1000
) -> tuple[list[Command], int]:
    """Tick every STEP_MS; each command is answered (or not) before the next tick. Stops when the rollout ends."""
    sent: list[Command] = []
    for _ in range(steps):
        commands = engine.tick(now)
        sent += commands
        now += STEP_MS
        for cmd in commands:
            reply = answer(cmd)
            if reply is not None:
                engine.on_report(cmd.device, reply[0], reply[1], now)
        if engine.state in ("completed", "aborted"):
            break
    return sent, now


def test_a_healthy_rollout_applies_every_device_once_wave_by_wave() -> None:
    engine = RolloutEngine.start(make_spec(), fleet(40), now_ms=0)
    first = engine.tick(0)
    assert [c.device for c in first] == [f"dev{i:04d}" for i in range(5)]  # the canary only
    assert all(c.action == "apply" and c.version == "2.0" and c.rollout_id == "fw-2" for c in first)
    for cmd in first:
        engine.on_report(cmd.device, "applied", "2.0", 50)
    sent, _ = drive(engine, now=100)
    status = engine.status()
    assert status.state == "completed"
    assert status.applied == 40 and status.pending == status.in_flight == 0
    assert Counter(c.device for c in sent + first).most_common(1)[0][1] == 1
    assert [w.size for w in status.waves] == [5, 5, 30] and all(w.gate == "passed" for w in status.waves)


def test_next_wave_waits_for_the_soak_after_the_last_answer() -> None:
    engine = RolloutEngine.start(make_spec(), fleet(40), now_ms=0)
    for cmd in engine.tick(0):
        engine.on_report(cmd.device, "applied", "2.0", 50)
    assert engine.tick(100) == [] and engine.status().waves[0].gate == "soaking"
    assert engine.tick(349) == []  # the soak runs from the last answer (50 ms), not from the tick that saw it
    assert len(engine.tick(350)) == 5 and engine.wave == 1
    assert engine.status().waves[1].gate == "open" and engine.status().waves[2].gate == "waiting"


def test_concurrency_bounds_the_applies_in_flight() -> None:
    engine = RolloutEngine.start(
        make_spec(waves=WavePlan(canary=100, percentages=(100,)), concurrency=7), fleet(100), 0
    )
    assert len(engine.tick(0)) == 7
    assert engine.tick(10) == []
    engine.on_report("dev0000", "applied", "2.0", 20)
    engine.on_report("dev0001", "failed", "1.0", 20)
    assert [c.device for c in engine.tick(30)] == ["dev0007", "dev0008"]
    assert engine.status().in_flight == 7


def test_exponential_waves_run_to_completion() -> None:
    engine = RolloutEngine.start(make_spec(waves=WavePlan(canary=2, growth_factor=2)), fleet(30), 0)
    drive(engine)
    status = engine.status()
    assert status.state == "completed" and [w.size for w in status.waves] == [2, 4, 8, 16]


def test_start_refuses_a_selector_that_targets_no_device() -> None:
    with pytest.raises(NoTargetError, match="site=east"):
        RolloutEngine.start(make_spec(selector=parse_selector(["site=east"])), fleet(10), 0)


def test_start_refuses_a_target_whose_current_version_is_unknown() -> None:
    inventory = fleet(3)
    del inventory["dev0001"]["version"]
    with pytest.raises(RolloutSpecError, match=r"inventory\['dev0001'\].version: missing"):
        RolloutEngine.start(make_spec(), inventory, 0)


def test_only_selected_devices_are_commanded() -> None:
    engine = RolloutEngine.start(make_spec(selector=parse_selector(["site=north"])), fleet(20), 0)
    sent, _ = drive(engine)
    assert engine.state == "completed" and len(sent) == 10
    assert all(int(c.device[3:]) % 2 for c in sent)


def test_health_failures_in_the_canary_abort_and_roll_back_every_changed_device() -> None:
    sick = {"dev0001"}

    def answer(cmd: Command) -> tuple[str, str]:
        if cmd.action == "apply":
            return ("health_failed" if cmd.device in sick else "applied", cmd.version)
        return ("rolled_back", cmd.version)

    engine = RolloutEngine.start(make_spec(), fleet(40), 0)
    sent, _ = drive(engine, answer)
    status = engine.status()
    assert status.state == "aborted" and "wave 0: success rate 4/5 = 80.0%" in status.reason
    rollbacks = [c for c in sent if c.action == "rollback"]
    assert sorted(c.device for c in rollbacks) == [f"dev{i:04d}" for i in range(5)]
    assert all(c.version == "1.0" for c in rollbacks)
    assert status.changed == status.rolled_back == 5
    assert status.waves[0].gate == "failed" and status.waves[1].pending == 5
    assert not [c for c in sent if c.action == "apply" and int(c.device[3:]) >= 5]


def test_rollback_goes_to_each_devices_own_previous_version() -> None:
    inventory = fleet(6)
    inventory["dev0002"]["version"] = "1.5"
    engine = RolloutEngine.start(make_spec(waves=WavePlan(canary=6, percentages=(100,))), inventory, 0)
    for cmd in engine.tick(0):
        engine.on_report(cmd.device, "applied", "2.0", 10)
    engine.abort(20)
    back = {c.device: c.version for c in engine.tick(30)}
    assert back["dev0002"] == "1.5" and back["dev0000"] == "1.0"


def test_rolled_back_counts_only_confirmations_on_the_previous_version() -> None:
    engine = RolloutEngine.start(make_spec(waves=WavePlan(canary=4, percentages=(100,))), fleet(4), 0)
    for cmd in engine.tick(0):
        engine.on_report(cmd.device, "applied", "2.0", 10)
    engine.abort(20, "operator: bad batch")
    assert len(engine.tick(30)) == 4
    assert engine.on_report("dev0000", "rolled_back", "2.0", 40) == "rejected"
    assert "rolled back to '2.0', expected '1.0'" in engine.last_rejection
    assert engine.on_report("dev0001", "rolled_back", "1.0", 40) == "accepted"
    assert engine.on_report("dev0001", "rolled_back", "1.0", 41) == "duplicate"
    engine.tick(30 + 1000)  # the other three never confirm within the timeout
    status = engine.status()
    assert status.state == "aborted" and status.reason == "operator: bad batch"
    assert status.rolled_back == 1 and status.rollback_unconfirmed == 3
    assert status.unconfirmed_devices == ("dev0000", "dev0002", "dev0003")
    assert engine.on_report("dev0002", "rolled_back", "1.0", 2000) == "accepted"  # a late confirmation counts
    assert engine.status().rolled_back == 2 and engine.unconfirmed_devices() == ["dev0000", "dev0003"]


def test_failure_share_aborts_mid_wave_and_in_flight_devices_that_applied_are_rolled_back() -> None:
    spec = make_spec(
        waves=WavePlan(canary=40, percentages=(100,)),
        gates=GatePolicy(abort_failure_share=0.5, abort_min_executed=4),
        concurrency=8,
    )
    engine = RolloutEngine.start(spec, fleet(40), 0)
    first = engine.tick(0)
    for cmd in first[:4]:
        engine.on_report(cmd.device, "failed", "1.0", 10)
    assert engine.tick(20) == [] and engine.state == "aborting"
    assert "failure share 4/4" in engine.reason
    engine.on_report(first[4].device, "applied", "2.0", 30)  # answers after the abort: it changed
    engine.on_report(first[5].device, "failed", "1.0", 30)
    commands = engine.tick(40)
    assert [(c.action, c.device) for c in commands] == [("rollback", first[4].device)]
    engine.on_report(first[4].device, "rolled_back", "1.0", 50)
    engine.tick(60)
    assert engine.state == "aborting"  # two applies still in flight
    engine.tick(1000)  # they time out: they may have applied, so they are rolled back too
    assert {c.device for c in engine.tick(1001)} == set() and engine.status().changed == 3
    status = engine.status()
    assert status.rollback_pending == 2 and status.pending == 32


def test_error_budget_aborts_the_rollout() -> None:
    spec = make_spec(gates=GatePolicy(max_failures=1, min_success_rate=0.0, abort_min_executed=10_000))
    engine = RolloutEngine.start(spec, fleet(40), 0)
    bad = {"dev0001", "dev0007"}

    def answer(cmd: Command) -> tuple[str, str]:
        return ("failed", "1.0") if cmd.device in bad else healthy(cmd)

    sent, _ = drive(engine, answer)
    assert engine.state == "aborted" and "error budget spent: 2 failures, budget 1" in engine.reason
    assert engine.status().changed == engine.status().rolled_back == 8  # dev0000..dev0009 but the two failed


def test_devices_that_never_answer_time_out_and_count_as_configured() -> None:
    silent = {"dev0003"}

    def answer(cmd: Command) -> tuple[str, str] | None:
        return None if cmd.device in silent else healthy(cmd)

    engine = RolloutEngine.start(make_spec(), fleet(40), 0)
    drive(engine, answer)
    assert engine.state == "aborted"  # 4/5 < 90 %: a timeout is a failure by default
    assert engine.status().timed_out == 0 and engine.status().changed == 5  # the silent one is rolled back too

    apart = make_spec(gates=GatePolicy(min_success_rate=0.9, soak_ms=300, timeout_counts_as="timeout"))
    engine = RolloutEngine.start(apart, fleet(40), 0)
    drive(engine, answer)
    status = engine.status()
    assert status.state == "completed" and status.timed_out == 1 and status.applied == 39
    assert engine.device_state("dev0003") == DeviceState.TIMED_OUT


def test_a_late_answer_after_a_timeout_is_taken_and_counted_late() -> None:
    engine = RolloutEngine.start(make_spec(gates=GatePolicy(timeout_counts_as="timeout")), fleet(10), 0)
    engine.tick(0)
    engine.on_report("dev0004", "applied", "2.0", 10)
    engine.tick(1000)
    assert engine.status().timed_out == 4
    assert engine.on_report("dev0000", "applied", "2.0", 1500) == "accepted"
    status = engine.status()
    assert status.timed_out == 3 and status.applied == 2 and status.reports["late"] == 1


def test_health_failure_reported_during_the_soak_fails_the_gate() -> None:
    engine = RolloutEngine.start(make_spec(), fleet(40), 0)
    for cmd in engine.tick(0):
        engine.on_report(cmd.device, "applied", "2.0", 10)
    engine.tick(100)
    assert engine.on_report("dev0002", "health_failed", "2.0", 200) == "accepted"
    assert engine.tick(400) == [] or engine.state == "aborting"
    assert engine.state in ("aborting", "aborted") and engine.status().health_failed == 0
    assert engine.status().changed == 5


def test_pause_stops_new_applies_and_resume_carries_on() -> None:
    engine = RolloutEngine.start(make_spec(), fleet(40), 0)
    for cmd in engine.tick(0):
        engine.on_report(cmd.device, "applied", "2.0", 10)
    engine.pause(20)
    assert engine.tick(1000) == [] and engine.status().state == "paused"
    with pytest.raises(RolloutStateError, match="pause: rollout fw-2 is paused; only a running rollout can"):
        engine.pause(1001)
    engine.resume(1100)
    assert len(engine.tick(1100)) == 5
    with pytest.raises(RolloutStateError, match="resume"):
        engine.resume(1200)


def test_paused_rollout_still_aborts_on_its_thresholds() -> None:
    spec = make_spec(gates=GatePolicy(abort_failure_share=0.5, abort_min_executed=2))
    engine = RolloutEngine.start(spec, fleet(40), 0)
    engine.tick(0)
    engine.pause(1)
    for device in ("dev0000", "dev0001", "dev0002"):
        engine.on_report(device, "failed", "1.0", 5)
    engine.tick(10)
    assert engine.state == "aborting"


def test_finished_rollouts_refuse_commands() -> None:
    engine = RolloutEngine.start(make_spec(), fleet(10), 0)
    drive(engine)
    for action in (engine.pause, engine.resume, engine.abort):
        with pytest.raises(RolloutStateError, match="is completed"):
            action(5000)


def test_aborting_a_rollout_that_changed_nothing_ends_at_once() -> None:
    engine = RolloutEngine(make_spec(), ["a", "b"], ["1.0", "1.0"], [1, 2])
    assert engine.state == "pending"
    engine.abort(0)
    assert engine.state == "aborted" and engine.tick(1) == []


@pytest.mark.parametrize(
    ("device", "outcome", "version", "result", "why"),
    [
        ("ghost", "applied", "2.0", "rejected", "not a target"),
        ("dev0000", "exploded", "2.0", "rejected", "outcome 'exploded' unknown"),
        ("dev0009", "applied", "2.0", "rejected", "never commanded"),
        ("dev0009", "rolled_back", "1.0", "rejected", "no rollback was asked"),
    ],
)
def test_bad_reports_are_rejected_counted_and_explained(
    device: str, outcome: str, version: str, result: str, why: str
) -> None:
    engine = RolloutEngine.start(make_spec(), fleet(10), 0)
    engine.tick(0)
    assert engine.on_report(device, outcome, version, 10) == result
    assert why in engine.last_rejection and engine.status().reports["rejected"] == 1


def test_repeated_and_stale_reports_change_nothing() -> None:
    engine = RolloutEngine.start(make_spec(), fleet(10), 0)
    engine.tick(0)
    engine.on_report("dev0000", "applied", "2.0", 10)
    engine.on_report("dev0001", "failed", "1.0", 10)
    engine.on_report("dev0002", "applied", "2.0", 10)
    engine.on_report("dev0002", "health_failed", "2.0", 11)
    assert engine.on_report("dev0000", "applied", "2.0", 12) == "duplicate"
    assert engine.on_report("dev0001", "failed", "1.0", 12) == "duplicate"
    assert engine.on_report("dev0002", "health_failed", "2.0", 12) == "duplicate"
    assert engine.on_report("dev0001", "applied", "2.0", 12) == "stale"
    assert engine.on_report("dev0002", "applied", "2.0", 12) == "stale"
    status = engine.status()
    assert (status.applied, status.failed, status.health_failed) == (1, 1, 1)
    assert status.reports == {"accepted": 4, "duplicate": 3, "stale": 2, "rejected": 0, "late": 0}


def test_applied_on_another_version_counts_as_failed() -> None:
    engine = RolloutEngine.start(make_spec(), fleet(10), 0)
    engine.tick(0)
    assert engine.on_report("dev0000", "applied", "1.9", 10) == "accepted"
    assert engine.device_state("dev0000") == DeviceState.FAILED


def test_status_is_json_able_and_an_idle_tick_touches_no_device() -> None:
    engine = RolloutEngine.start(make_spec(), fleet(40), 0)
    engine.tick(0)
    engine.take_dirty()
    assert engine.tick(10) == [] and engine.take_dirty() == []
    view = orjson.loads(orjson.dumps(engine.status().to_dict()))
    assert view["state"] == "running" and view["waves"][0]["in_flight"] == 5 and view["targets"] == 40


def test_each_wave_runs_at_its_own_concurrency() -> None:
    spec = make_spec(waves=WavePlan(canary=4, percentages=(100,)), concurrency=(2, 6), gates=GatePolicy())
    engine = RolloutEngine.start(spec, fleet(40), 0)
    sizes = []
    now = 0
    while engine.state == "running":
        commands = engine.tick(now)
        sizes.append(len(commands))
        for cmd in commands:
            engine.on_report(cmd.device, "applied", "2.0", now + 1)
        now += STEP_MS
    assert engine.state == "completed" and sizes[:2] == [2, 2] and max(sizes) == 6


@settings(max_examples=60, deadline=None)
@example(answers=["applied"], rollback_silent=set(), abort_at=0, timeout_mode="failed")  # aborted before any apply
@given(
    answers=st.lists(
        st.sampled_from(["applied", "failed", "health_failed", "silent", "late"]), min_size=1, max_size=60
    ),
    rollback_silent=st.sets(st.integers(0, 59)),
    abort_at=st.one_of(st.none(), st.integers(0, 30)),
    timeout_mode=st.sampled_from(["failed", "timeout"]),
)
def test_any_run_ends_with_every_device_accounted_for_and_none_applied_twice(
    answers: list[str], rollback_silent: set[int], abort_at: int | None, timeout_mode: str
) -> None:
    n = len(answers)
    spec = make_spec(
        waves=WavePlan(canary=2, growth_factor=2),
        gates=GatePolicy(min_success_rate=0.5, soak_ms=100, abort_min_executed=5, timeout_counts_as=timeout_mode),
        concurrency=3,
    )
    engine = RolloutEngine.start(spec, fleet(n), 0)
    late: list[str] = []

    def answer(cmd: Command) -> tuple[str, str] | None:
        i = int(cmd.device[3:])
        if cmd.action == "rollback":
            return None if i in rollback_silent else ("rolled_back", cmd.version)
        kind = answers[i]
        if kind == "late":
            late.append(cmd.device)
            return None
        return None if kind == "silent" else (kind, cmd.version)

    sent: list[Command] = []
    now = 0
    for step in range(400):
        if step == abort_at and engine.state in ("running", "paused"):
            engine.abort(now)
        commands = engine.tick(now)
        sent += commands
        now += STEP_MS * 3
        for cmd in commands:
            reply = answer(cmd)
            if reply is not None:
                engine.on_report(cmd.device, reply[0], reply[1], now)
        if step % 7 == 0 and late:
            engine.on_report(late.pop(), "applied", "2.0", now)  # answers after its timeout
        if engine.state in ("completed", "aborted"):
            break
    status = engine.status()
    assert status.state in ("completed", "aborted")
    assert max(Counter(c.device for c in sent if c.action == "apply").values(), default=0) <= 1  # none twice
    counted = status.pending + status.in_flight + status.applied + status.failed + status.health_failed
    counted += status.timed_out + status.rollback_pending + status.rolled_back + status.rollback_unconfirmed
    assert counted == n
    if status.state == "aborted":
        assert status.rolled_back + status.rollback_unconfirmed == status.changed
        assert status.rollback_pending == status.in_flight == 0
        assert status.rollback_unconfirmed == len(engine.unconfirmed_devices())
