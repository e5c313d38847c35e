"""Rollout state in SQLite: a hub restarted mid-rollout finishes it as if it never stopped."""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import pytest

from pymonitor.actors.rollout import (
    Command,
    GatePolicy,
    RolloutEngine,
    RolloutSpec,
    RolloutStateError,
    RolloutStore,
    RolloutStoreError,
    WavePlan,
    apply_controls,
)

STEP_MS = 100


def fleet(n: int) -> dict[str, dict[str, str]]:
    return {f"dev{i:04d}": {"version": "1.0" if i % 3 else "1.1"} for i in range(n)}


def spec(**gates: object) -> RolloutSpec:
    policy = GatePolicy(min_success_rate=0.8, soak_ms=200, timeout_counts_as="timeout", **gates)  # type: ignore[arg-type]
    return RolloutSpec(
        rollout_id="fw-7",
        target_version="7.0",
        waves=WavePlan(canary=10, percentages=(10, 50, 100)),
        gates=policy,
        concurrency=25,
        timeout_ms=700,
    )


def answer(cmd: Command) -> tuple[str, str] | None:
    """Deterministic per device: most apply, some fail, a few never answer."""
    if cmd.action == "rollback":
        return ("rolled_back", cmd.version)
    roll = zlib.crc32(cmd.device.encode()) % 100
    if roll < 4:
        return None
    return ("failed", "1.0") if roll < 9 else ("applied", cmd.version)


def step(engine: RolloutEngine, now: int, store: RolloutStore | None, sent: list[Command], send: bool = True) -> None:
    commands = engine.tick(now)
    if store is not None:
        store.save(engine)  # saved before sending: at most once
    if not send:
        return
    sent += commands
    for cmd in commands:
        reply = answer(cmd)
        if reply is not None:
            engine.on_report(cmd.device, reply[0], reply[1], now + STEP_MS // 2)


def finish(engine: RolloutEngine, now: int, store: RolloutStore | None, sent: list[Command]) -> int:
    while engine.state not in ("completed", "aborted"):
        step(engine, now, store, sent)
        now += STEP_MS
    return now


def outcome(engine: RolloutEngine) -> tuple[object, ...]:
    status = engine.status().to_dict()
    status.pop("updated_ms")
    states = [int(engine.device_state(n)) for n in engine.names]
    return status, states


def test_a_rollout_reloaded_halfway_ends_exactly_as_an_uninterrupted_one(tmp_path: Path) -> None:
    reference = RolloutEngine.start(spec(), fleet(300), 0)
    ref_sent: list[Command] = []
    finish(reference, 0, None, ref_sent)
    assert reference.state == "completed"

    store = RolloutStore(tmp_path / "rollouts.db")
    engine = RolloutEngine.start(spec(), fleet(300), 0)
    sent: list[Command] = []
    now = 0
    while engine.status().applied < 120:
        step(engine, now, store, sent)
        now += STEP_MS
    store.save(engine)  # the answers that came in since the tick
    store.close()
    del engine

    store = RolloutStore(tmp_path / "rollouts.db")
    resumed = store.load("fw-7")
    assert resumed.status().applied >= 120
    finish(resumed, now, store, sent)
    assert outcome(resumed) == outcome(reference)
    assert sorted((c.action, c.device) for c in sent) == sorted((c.action, c.device) for c in ref_sent)
    assert Counter(c.device for c in sent if c.action == "apply").most_common(1)[0][1] == 1
    assert outcome(RolloutStore(tmp_path / "rollouts.db").load("fw-7")) == outcome(resumed)


def run_for(store: RolloutStore, until_ms: int) -> tuple[RolloutEngine, list[Command]]:
    """A 100-device rollout saved on every tick up to ``until_ms``."""
    engine = RolloutEngine.start(spec(), fleet(100), 0)
    sent: list[Command] = []
    for now in range(0, until_ms, STEP_MS):
        step(engine, now, store, sent)
    return engine, sent


def test_commands_lost_with_the_hub_time_out_and_are_never_applied_twice(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path / "rollouts.db")
    engine, sent = run_for(store, 1500)
    step(engine, 1500, store, sent, send=False)  # saved as commanded, then the hub died before publishing
    lost = engine.status().in_flight
    assert lost > 0
    resumed = RolloutStore(tmp_path / "rollouts.db").load("fw-7")
    finish(resumed, 1600, store, sent)
    status = resumed.status()
    assert status.state == "completed" and status.timed_out >= lost
    assert Counter(c.device for c in sent if c.action == "apply").most_common(1)[0][1] == 1


def test_an_abort_in_progress_resumes_its_rollbacks_after_a_restart(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path / "rollouts.db")
    engine, sent = run_for(store, 2000)
    engine.abort(2000, "operator")
    step(engine, 2000, store, sent, send=False)  # some rollbacks issued (lost), the rest still queued
    resumed = store.load("fw-7")
    assert resumed.state == "aborting" and resumed.status().rollback_pending == resumed.changed
    finish(resumed, 2100, store, sent)
    status = resumed.status()
    assert status.state == "aborted"
    assert status.rolled_back + status.rollback_unconfirmed == status.changed
    assert status.rollback_unconfirmed == 25  # the first concurrency-sized batch never left the hub


def test_saves_write_only_the_devices_that_changed(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path / "rollouts.db")
    engine = RolloutEngine.start(spec(), fleet(300), 0)
    assert store.save(engine) == 300
    engine.tick(0)
    assert store.save(engine) == 10
    assert store.save(engine) == 0
    assert store.states() == {"fw-7": "running"} and store.ids() == ["fw-7"]


def test_operator_controls_are_queued_and_applied_by_the_engine_host(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path / "rollouts.db")
    engine = RolloutEngine.start(spec(), fleet(50), 0)
    store.save(engine)
    store.request("fw-7", "pause", 10)
    store.request("fw-7", "pause", 11)
    store.request("fw-7", "abort", 12, "bad batch")
    lines = apply_controls(store, engine, 20)
    assert lines[0] == "pause #1: done"
    assert lines[1].startswith("pause #2: refused: pause: rollout fw-7 is paused")
    assert lines[2] == "abort #3: done" and engine.reason == "bad batch"
    assert store.pending_controls("fw-7") == []
    store.request("fw-7", "resume", 30)
    assert apply_controls(store, engine, 40)[0].startswith("resume #4: refused")


def test_controls_for_unknown_rollouts_or_actions_are_refused(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path / "rollouts.db")
    with pytest.raises(RolloutStoreError, match="no rollout 'nope'"):
        store.request("nope", "pause", 0)
    with pytest.raises(RolloutStateError, match="action: expected one of pause, resume, abort"):
        store.request("nope", "explode", 0)
    with pytest.raises(RolloutStoreError, match="no rollout 'nope' \\(known: none\\)"):
        store.load("nope")


def test_the_signing_sequence_only_grows_across_reopens(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path / "rollouts.db")
    assert [store.next_seq(), store.next_seq()] == [1, 2]
    store.close()
    assert RolloutStore(tmp_path / "rollouts.db").next_seq() == 3


def test_a_damaged_saved_state_is_refused_with_the_reason(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path / "rollouts.db")
    engine = RolloutEngine.start(spec(), fleet(20), 0)
    store.save(engine)
    store.conn.execute("UPDATE rollouts SET header = ? WHERE id = 'fw-7'", (b"{not json",))
    with pytest.raises(RolloutStoreError, match="header is not JSON"):
        store.load("fw-7")
    store.conn.execute("UPDATE rollouts SET header = ? WHERE id = 'fw-7'", (b'{"spec": {}}',))
    with pytest.raises(RolloutStoreError, match="does not load"):
        store.load("fw-7")
    store.save(engine)
    store.conn.execute("DELETE FROM rollout_devices WHERE pos = 3")
    with pytest.raises(RolloutStoreError, match="not positions 0..n-1"):
        store.load("fw-7")
