"""Rollouts over a real mosquitto (signed commands batched per node), and the wire format on its own."""

from __future__ import annotations

import itertools
from pathlib import Path

import cbor2
import pytest

from pymonitor.actors.configsync import ReplayGuard, SignatureError, generate_key, trusted_keys
from pymonitor.actors.rollout import (
    Command,
    RolloutError,
    Signer,
    decode_commands,
    decode_reports,
    encode_commands,
    encode_reports,
)
from pymonitor.bench.rollout import broker_rollout, run, simulated_rollout
from pymonitor.broker import BrokerAddress, MosquittoBroker
from pymonitor.messages import Event, encode

SMALL = {"per_node": 50, "canary": 20, "concurrency": 60, "soak_ms": 50, "timeout_ms": 20_000, "max_s": 60.0}


@pytest.mark.needs_mosquitto
def test_a_rollout_over_mosquitto_reaches_every_device_once(broker_address: BrokerAddress, tmp_path: Path) -> None:
    result = broker_rollout(
        broker_address, devices=200, rollout_id="t-good", health_fail_share=0.0, db_path=tmp_path / "r.db", **SMALL
    )  # type: ignore[arg-type]
    assert result["state"] == "completed" and result["completed"] == 200
    assert result["devices_on_target"] == 200 and result["applied_twice"] == 0 and result["refused_commands"] == 0
    assert result["waves"] == [20, 30, 150]


@pytest.mark.needs_mosquitto
def test_a_bad_canary_over_mosquitto_is_rolled_back_completely(broker_address: BrokerAddress, tmp_path: Path) -> None:
    result = broker_rollout(
        broker_address, devices=200, rollout_id="t-bad", health_fail_share=0.1, db_path=tmp_path / "r.db", **SMALL
    )  # type: ignore[arg-type]
    assert result["state"] == "aborted" and "wave 0" in result["reason"]
    assert result["health_fail_devices"] == 2
    assert result["changed"] == result["rolled_back"] == 20
    assert result["left_on_bad_version"] == 0 and result["applies_sent"] == 20


@pytest.mark.needs_mosquitto
def test_the_bench_returns_every_key(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    report = run(
        devices=100, broker=mosquitto.url, sim_devices=500, bad_devices=100, canary=10, soak_ms=10, workdir=tmp_path
    )
    keys = {"devices", "completed", "wall_s", "devices_100k_completed", "rolled_back", "left_on_bad_version", "ratio"}
    assert keys | {"apply_after_reconnect_p99_s"} <= set(report)
    assert report["completed"] == report["baseline_completed"] == report["restart_completed"] == 100
    assert report["restart_applied_twice"] == 0
    assert report["rolled_back"] == report["changed"] == 10
    assert report["left_on_bad_version"] == 0 and report["apply_after_reconnect_p99_s"] is None


def test_the_simulated_fleet_completes_with_its_failures_counted() -> None:
    result = simulated_rollout(3000, seed=3, db_path=None)
    assert result["state"] == "completed"
    assert result["applied"] + result["failed"] + result["timed_out"] == 3000 and result["completed"] > 2900


def commands(n: int) -> list[Command]:
    return [
        Command(action="apply" if i % 4 else "rollback", device=f"gw{i % 2}-d{i}", version="2", rollout_id="r")
        for i in range(n)
    ]


def node(device: str) -> str:
    return device.split("-")[0]


def test_commands_are_batched_per_node_and_read_back() -> None:
    frames = encode_commands(commands(8), node, fleet="f", now_ms=5)
    assert [t for t, _ in frames] == ["pm/v1/f/gw0/down/cmd/rollout", "pm/v1/f/gw1/down/cmd/rollout"]
    got = decode_commands(frames[0][1])
    assert got.rollout_id == "r" and got.rollback == [("gw0-d0", "2"), ("gw0-d4", "2")]
    assert got.apply == [("gw0-d2", "2"), ("gw0-d6", "2")]


def test_signed_commands_are_verified_and_refused_when_replayed_unsigned_or_foreign() -> None:
    key, seq = generate_key(), itertools.count(1)
    trusted = trusted_keys([key.public_key()])
    frames = encode_commands(commands(4), node, fleet="f", now_ms=1000, signer=Signer(key, lambda: next(seq)))
    guard = ReplayGuard()
    assert decode_commands(frames[0][1], trusted=trusted, replay=guard, now_ms=1001).rollout_id == "r"
    with pytest.raises(SignatureError, match="replayed"):
        decode_commands(frames[0][1], trusted=trusted, replay=guard, now_ms=1001)
    with pytest.raises(SignatureError, match="unknown_key"):
        decode_commands(frames[1][1], trusted=trusted_keys([generate_key().public_key()]), now_ms=1001)
    unsigned = encode_commands(commands(4), node, fleet="f", now_ms=1000)
    with pytest.raises(SignatureError, match="unsigned"):
        decode_commands(unsigned[0][1], trusted=trusted, now_ms=1001)
    frame = cbor2.loads(frames[1][1])
    del frame["args"]["envelope"]["seq"]
    with pytest.raises(RolloutError, match=r"envelope.seq: missing"):
        decode_commands(cbor2.dumps(frame), trusted=trusted, now_ms=1001)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ({"apply": []}, "args.rollout"),
        ({"rollout": "r", "apply": [["d"]]}, r"args.apply: expected a list of \[device, version\]"),
        ({"rollout": "r", "rollback": "d"}, "args.rollback"),
    ],
)
def test_malformed_command_bodies_are_refused_with_the_field(args: dict[str, object], why: str) -> None:
    frame = cbor2.dumps({"t": "command.v1", "id": "x", "name": "rollout", "ts_ms": 1, "args": args})
    with pytest.raises(RolloutError, match=why):
        decode_commands(frame)


def test_frames_that_are_not_rollout_commands_are_refused() -> None:
    with pytest.raises(RolloutError, match="rollout command: "):
        decode_commands(b"\xff\x00")
    other = cbor2.dumps({"t": "command.v1", "id": "x", "name": "reboot", "ts_ms": 1})
    with pytest.raises(RolloutError, match="expected command.v1 named 'rollout'"):
        decode_commands(other)


def test_reports_round_trip_and_other_events_are_left_alone() -> None:
    topic, frame = encode_reports("gw0", "r", [("gw0-d1", "applied", "2")], fleet="f", now_ms=7)
    assert topic == "pm/v1/f/gw0/up/events"
    assert decode_reports(frame) == ("r", [("gw0-d1", "applied", "2")])
    other = encode(Event(node="gw0", ts_ms=1, kind="battery.low", severity="warning", message="low"))
    assert decode_reports(other) is None


@pytest.mark.parametrize(
    ("details", "why"),
    [
        ({"rollout": "r"}, "expected 'rollout' and a 'reports' list"),
        ({"rollout": "r", "reports": [["d", "applied"]]}, r"reports\[0\]: expected \[device, outcome, version\]"),
        ({"rollout": "r", "reports": [["d", "exploded", "2"]]}, r"reports\[0\]: outcome 'exploded' unknown"),
    ],
)
def test_malformed_reports_are_refused_with_the_row(details: dict[str, object], why: str) -> None:
    event = Event(node="gw0", ts_ms=1, kind="rollout.report", severity="info", message="", details=details)
    with pytest.raises(RolloutError, match=why):
        decode_reports(encode(event))
    with pytest.raises(RolloutError, match="rollout report: "):
        decode_reports(b"\x00")


def test_frames_carry_at_most_max_batch_devices() -> None:
    frames = encode_commands(commands(10), node, fleet="f", now_ms=5, max_batch=2)
    per_frame = [len(decode_commands(f).apply) + len(decode_commands(f).rollback) for _, f in frames]
    assert sorted(per_frame) == [1, 1, 2, 2, 2, 2]  # 5 devices per node, in frames of 2, 2 and 1
    with pytest.raises(RolloutError, match="max_batch: expected a positive device count, got 0"):
        encode_commands(commands(1), node, fleet="f", now_ms=5, max_batch=0)


@pytest.mark.needs_mosquitto
def test_a_hub_restarted_mid_rollout_over_mosquitto_finishes_it_without_applying_twice(
    broker_address: BrokerAddress, tmp_path: Path
) -> None:
    result = broker_rollout(
        broker_address,
        devices=200,
        rollout_id="t-restart",
        health_fail_share=0.0,
        db_path=tmp_path / "r.db",
        restart_at_applied=30,
        **SMALL,  # type: ignore[arg-type]
    )
    assert result["hub_restarts"] == 1
    assert result["state"] == "completed" and result["completed"] == result["devices_on_target"] == 200
    assert result["applied_twice"] == 0 and result["timed_out"] == 0 and result["commands"] == 200
