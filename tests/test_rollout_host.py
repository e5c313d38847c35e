"""The hub's rollout host: frames in, frames out, state saved before anything leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymonitor.actors.rollout import (
    RolloutEngine,
    RolloutError,
    RolloutHost,
    RolloutSpec,
    RolloutStore,
    WavePlan,
    decode_commands,
    encode_reports,
)
from pymonitor.messages import Event, encode

INVENTORY = {f"gw{i % 2}-d{i:03d}": {"version": "1"} for i in range(20)}
SPEC = RolloutSpec(rollout_id="r1", target_version="2", waves=WavePlan(canary=4, percentages=(100,)), concurrency=20)


def node_of(device: str) -> str:
    return device.split("-")[0]


def answer_all(host: RolloutHost, frames: list[tuple[str, bytes]], now: int) -> None:
    for topic, frame in frames:
        node = topic.split("/")[3]
        cmds = decode_commands(frame)
        reports = [(d, "applied", v) for d, v in cmds.apply] + [(d, "rolled_back", v) for d, v in cmds.rollback]
        host.on_frame(encode_reports(node, cmds.rollout_id, reports, fleet="f", now_ms=now)[1], now)


def test_the_host_runs_a_rollout_from_frames_to_completion(tmp_path: Path) -> None:
    host = RolloutHost(RolloutStore(tmp_path / "r.db"), fleet="f", node_of=node_of)
    host.start(SPEC, INVENTORY, 0)
    now = 0
    while host.engines["r1"].state == "running":
        answer_all(host, host.tick(now), now + 1)
        now += 100
    assert host.engines["r1"].status().applied == 20 and host.counters.commands == 20
    assert host.counters.results == {"accepted": 20}
    assert RolloutStore(tmp_path / "r.db").states() == {"r1": "completed"}
    host.forget("r1")
    assert host.engines == {}


def test_the_host_picks_up_rollouts_stored_by_the_cli_and_applies_their_controls(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path / "r.db")
    host = RolloutHost(store, fleet="f", node_of=node_of)
    store.save(RolloutEngine.start(SPEC, INVENTORY, 0))  # what `pymonitor rollout start` does
    store.request("r1", "pause", 1)
    assert host.tick(5) == [] and host.engines["r1"].state == "paused"
    assert host.log == ["pause #1: done"]
    assert RolloutHost(store, fleet="f", node_of=node_of).engines["r1"].state == "paused"  # restart picks it up


def test_bad_foreign_and_unknown_frames_are_counted_not_raised(tmp_path: Path) -> None:
    host = RolloutHost(RolloutStore(tmp_path / "r.db"), fleet="f", node_of=node_of)
    host.on_frame(b"\x01\x02", 0)
    host.on_frame(encode(Event(node="gw0", ts_ms=0, kind="battery.low", severity="info", message="")), 0)
    host.on_frame(encode_reports("gw0", "nobody", [("gw0-d000", "applied", "2")], fleet="f", now_ms=0)[1], 0)
    c = host.counters
    assert (c.bad_frames, c.unknown_rollout, c.report_frames) == (1, 1, 0) and "rollout report" in c.last_error


def test_the_host_refuses_a_rollout_id_already_in_the_file(tmp_path: Path) -> None:
    host = RolloutHost(RolloutStore(tmp_path / "r.db"), fleet="f", node_of=node_of)
    host.start(SPEC, INVENTORY, 0)
    with pytest.raises(RolloutError, match="rollout_id: 'r1' already exists"):
        host.start(SPEC, INVENTORY, 0)
