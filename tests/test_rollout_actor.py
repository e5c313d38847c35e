"""Rollouts running for real: the hub's rollout actor and simulated gateways answering over mosquitto.

The device agent is tested alone first (signed commands, health, rollback, refusals); then a hub
node with a simulated fleet of 50 devices behind 5 gateways, started from a node config the way
``pymonitor run`` does, takes rollouts stored by ``pymonitor rollout start``: a good version
completes, a bad one aborts and rolls every changed device back, and a rollout survives its actor
being stopped and started again (a hub restart) and crashing (a supervised restart).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from conftest import wait_for
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from pymonitor.actors.configsync import generate_key, save_private_key, trusted_keys
from pymonitor.actors.configsync.signing import sign
from pymonitor.actors.rollout import Command, RolloutHost, Signer, decode_reports, encode_commands
from pymonitor.actors.rollout.actor import (
    ROLLOUT_ACTOR,
    UNROUTED_NODE,
    NodeDirectory,
    RolloutRole,
    RolloutSettings,
    _wait_for_pubacks,
)
from pymonitor.actors.rollout.wire import encode_reports
from pymonitor.actors.runtime.clock import SimClock
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.runtime.node import RunningNode, hub_inventory_hosts, start_node
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import MosquittoBroker, free_port, parse_broker_url, topics
from pymonitor.cli.rollout import app as rollout_cli
from pymonitor.deploy.config import ConfigError, parse_config
from pymonitor.messages import Command as CommandMessage
from pymonitor.messages import DeadLetter, Event, decode, encode
from pymonitor.simulators.rollout_agent import HealthModel, RolloutAgent, equip_gateways
from pymonitor.store import HubStore

FLEET = "ro"
OLD, NEW, BAD = "1.0.0", "2.0.0", "2.0.0-bad"
DEVICES = [f"dev-{i:02d}" for i in range(6)]

# ---------------------------------------------------------------- the device agent, pure


def frames_for(
    key: Ed25519PrivateKey | None,
    apply: list[str],
    rollback: list[tuple[str, str]] = (),  # type: ignore[assignment]
    *,
    version: str = NEW,
    seq: itertools.count[int] | None = None,
    now_ms: int = 1_000,
) -> bytes:
    cmds = [Command(action="apply", device=d, version=version, rollout_id="r1") for d in apply]
    cmds += [Command(action="rollback", device=d, version=v, rollout_id="r1") for d, v in rollback]
    counter = seq if seq is not None else itertools.count(1)
    signer = None if key is None else Signer(key, lambda: next(counter))
    [(topic, frame)] = encode_commands(cmds, lambda d: "gw", fleet=FLEET, now_ms=now_ms, signer=signer)
    assert topic == topics.command(FLEET, "gw", "rollout")
    return frame


def agent_with(key: Ed25519PrivateKey, health: HealthModel | None = None) -> RolloutAgent:
    return RolloutAgent.for_devices(
        fleet=FLEET, node="gw", devices=DEVICES, trusted=trusted_keys([key.public_key()]), health=health
    )


def reports_of(frames: list[tuple[str, bytes]]) -> list[tuple[str, str, str]]:
    [(topic, payload)] = frames
    assert topic == topics.up(FLEET, "gw", "events")
    decoded = decode_reports(payload)
    assert decoded is not None and decoded[0] == "r1"
    return decoded[1]


def test_agent_applies_a_signed_version_and_rolls_back_to_the_previous_one() -> None:
    key = generate_key()
    agent = agent_with(key)
    seq = itertools.count(1)
    got = reports_of(agent.handle("t", frames_for(key, DEVICES[:2], seq=seq), 1_000))
    assert got == [(DEVICES[0], "applied", NEW), (DEVICES[1], "applied", NEW)]
    assert agent.versions[DEVICES[0]] == NEW and agent.previous[DEVICES[0]] == OLD
    again = reports_of(agent.handle("t", frames_for(key, DEVICES[:1], seq=seq), 1_000))
    assert again == [(DEVICES[0], "applied", NEW)]
    assert agent.previous[DEVICES[0]] == OLD  # a repeated apply keeps the version to go back to
    back = reports_of(agent.handle("t", frames_for(key, [], [(DEVICES[0], OLD), (DEVICES[1], "")], seq=seq), 1_000))
    assert back == [(DEVICES[0], "rolled_back", OLD), (DEVICES[1], "rolled_back", OLD)]  # "": the kept one
    assert agent.versions[DEVICES[0]] == agent.versions[DEVICES[1]] == OLD and not agent.previous
    assert (agent.counters.applied, agent.counters.rolled_back, agent.counters.commands) == (3, 2, 3)


def test_agent_fails_health_on_a_bad_version_for_its_share_of_devices() -> None:
    key = generate_key()
    every = agent_with(key, HealthModel(fail_share=1.0))
    got = reports_of(every.handle("t", frames_for(key, DEVICES, version=BAD), 1_000))
    assert {outcome for _, outcome, _ in got} == {"health_failed"}
    assert all(v == BAD for v in every.versions.values())  # it runs the bad version until rolled back
    named = agent_with(key, HealthModel(bad_versions=frozenset({"3.1"}), bad_suffix="", fail_share=1.0))
    got = reports_of(named.handle("t", frames_for(key, DEVICES[:1], version="3.1"), 1_000))
    assert got == [(DEVICES[0], "health_failed", "3.1")]
    share = HealthModel(fail_share=0.1)
    fleet = [f"d{i}" for i in range(2000)]
    failing = sum(share.fails(d, BAD) for d in fleet)
    assert 120 < failing < 280 and not any(share.fails(d, NEW) for d in fleet)
    assert failing == sum(HealthModel(fail_share=0.1).fails(d, BAD) for d in fleet)  # the same devices every run
    with pytest.raises(ValueError, match="fail_share"):
        HealthModel(fail_share=1.5)


def test_agent_answers_failed_for_a_device_it_does_not_host() -> None:
    key = generate_key()
    agent = agent_with(key)
    got = reports_of(agent.handle("t", frames_for(key, ["elsewhere"], [("nowhere", OLD)]), 1_000))
    assert got == [("elsewhere", "failed", ""), ("nowhere", "failed", "")]
    assert agent.counters.unknown_devices == 2


@pytest.mark.parametrize(
    ("sent_by", "payload_kind", "reason"),
    [
        ("none", "unsigned", "unsigned"),
        ("stranger", "signed", "unknown_key"),
        ("hub", "replayed", "replayed"),
        ("hub", "expired", "expired"),
        ("hub", "garbage", "RolloutError"),
    ],
)
def test_agent_refuses_bad_commands_changes_nothing_and_says_why(sent_by: str, payload_kind: str, reason: str) -> None:
    hub = generate_key()
    agent = agent_with(hub)
    key = {"none": None, "stranger": generate_key(), "hub": hub}[sent_by]
    frame = frames_for(key, DEVICES[:1])
    if payload_kind == "replayed":
        agent.handle("t", frame, 1_000)
        agent.versions[DEVICES[0]] = OLD
    if payload_kind == "garbage":
        frame = b"\xa1not cbor"
    now = 10**12 if payload_kind == "expired" else 1_000
    [(topic, payload)] = agent.handle("pm/v1/ro/gw/down/cmd/rollout", frame, now)
    letter = decode(payload)
    assert topic == topics.up(FLEET, "gw", "deadletter") and isinstance(letter, DeadLetter)
    assert reason in letter.reason and letter.topic == "pm/v1/ro/gw/down/cmd/rollout"
    assert agent.versions[DEVICES[0]] == OLD and agent.counters.refused == 1


def test_agent_sends_nothing_for_a_command_naming_no_device() -> None:
    key = generate_key()
    agent = agent_with(key)
    env = sign({"rollout": "r1", "apply": [], "rollback": []}, key, issued_ms=0, expires_ms=10_000, seq=1)
    args = {"envelope": {n: getattr(env, n) for n in ("body", "key_id", "issued_ms", "expires_ms", "seq", "signature")}}
    frame = encode(CommandMessage(id="x", name="rollout", ts_ms=0, args=args, issuer=env.key_id))
    assert agent.handle("t", frame, 1_000) == [] and agent.counters.commands == 1


def test_equip_gateways_gives_each_gateway_an_agent_for_its_devices() -> None:
    class Gw:
        def __init__(self, node: str, devices: list[str]) -> None:
            self.fleet, self.node, self.devices = FLEET, node, devices
            self.rollout: RolloutAgent | None = None

    gws = [Gw("gw-a", ["d1", "d2"]), Gw("gw-b", ["d3"])]
    hosts = equip_gateways(gws, {}, initial_version="0.9")
    assert hosts == {"d1": "gw-a", "d2": "gw-a", "d3": "gw-b"}
    assert gws[1].rollout is not None and gws[1].rollout.versions == {"d3": "0.9"}
    assert isinstance(gws[0].rollout, RolloutAgent) and gws[0].rollout.node == "gw-a"


# ---------------------------------------------------------------- the node directory


def test_node_directory_reloads_on_a_miss_at_most_every_few_seconds() -> None:
    now = [0]
    table = {"d1": "gw-a"}
    loads = []

    def load() -> dict[str, str]:
        loads.append(now[0])
        return dict(table)

    directory = NodeDirectory(load, lambda: now[0])
    assert directory("d1") == "gw-a"
    table["d2"] = "gw-b"
    assert directory("d2") == UNROUTED_NODE  # too soon to reload
    now[0] = 10_000
    assert directory("d2") == "gw-b" and len(loads) == 2
    assert directory("d9") == UNROUTED_NODE and directory.unrouted == 2


def test_hub_inventory_hosts_reads_imported_gateways_and_tolerates_no_inventory(tmp_path: Path) -> None:
    assert hub_inventory_hosts(str(tmp_path / "missing" / "hub.db")) == {}
    plain = tmp_path / "plain.db"
    plain.write_bytes(b"")
    assert hub_inventory_hosts(str(plain)) == {}  # an empty file: no inventory table
    db = tmp_path / "hub.db"
    store = HubStore(db)
    store.conn.execute("INSERT INTO devices (id, name) VALUES (1, 'dev-1')")
    store.conn.execute("INSERT INTO inventory (device_id, gateway, site, updated_ms) VALUES (1, 'gw-7', 'site-1', 0)")
    store.conn.commit()
    store.close()
    assert hub_inventory_hosts(str(db)) == {"dev-1": "gw-7"}


def test_config_requires_a_signing_key_with_a_rollouts_db() -> None:
    with pytest.raises(ConfigError, match=r"\[hub\]\.signing_key: required"):
        parse_config({"node": {"name": "hub"}, "hub": {"rollouts_db": "r.db"}})
    config = parse_config({"node": {"name": "hub"}, "hub": {"rollouts_db": "r.db", "signing_key": "k.pem"}})
    assert config.hub is not None and config.hub.rollouts_db == "r.db"


def test_node_with_an_unreadable_signing_key_refuses_to_start_before_starting_anything(tmp_path: Path) -> None:
    config = parse_config(
        {
            "node": {"name": "hub"},
            "broker": {"url": "mqtt://127.0.0.1:1"},
            "hub": {"db": str(tmp_path / "hub.db"), "rollouts_db": "r.db", "signing_key": str(tmp_path / "no.key")},
        }
    )
    with pytest.raises(ConfigError, match=r"\[hub\]\.signing_key: .*no\.key: cannot read"):
        start_node(config)
    assert not (tmp_path / "hub.db").exists()


# ---------------------------------------------------------------- end to end over mosquitto

N_DEVICES, N_GATEWAYS = 50, 5


@pytest.fixture
def hub_node(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[RunningNode]:
    key_path = tmp_path / "hub.key"
    save_private_key(generate_key(), key_path)
    unique = tmp_path.name[-24:].strip("_").replace("_", "-")  # fresh MQTT sessions for every test
    config = parse_config(
        {
            "node": {"name": "hub", "fleet": f"ro-{unique}"},
            "broker": {"url": mosquitto.url},
            "hub": {"db": str(tmp_path / "hub.db"), "rollouts_db": str(tmp_path / "rollouts.db"),
                    "signing_key": str(key_path)},
            "simulator": {"devices": N_DEVICES, "gateways": N_GATEWAYS, "interval_s": 1.0},
        }
    )  # fmt: skip
    node = start_node(config)
    try:
        assert node.fleet is not None and node.rollouts is not None
        wait_for(lambda: all(s["connected"] for s in node.fleet.statuses()), what="every gateway to connect")
        wait_for(lambda: node.rollouts is not None and node.rollouts.stats().get("connected"), what="rollout actor")
        yield node
    finally:
        node.stop()


def agents(node: RunningNode) -> list[RolloutAgent]:
    out = [s.rollout for s in node.fleet.settings]
    assert all(a is not None for a in out)
    return out  # type: ignore[return-value]


def versions(node: RunningNode) -> dict[str, str]:
    return {d: v for a in agents(node) for d, v in list(a.versions.items())}


def start_rollout(node: RunningNode, tmp_path: Path, rollout_id: str, target: str, **spec: Any) -> Path:
    db = Path(node.config.hub.rollouts_db)  # type: ignore[union-attr, arg-type]
    inventory = {d: {"version": OLD} for d in versions(node)}
    spec_path, inv_path = tmp_path / f"{rollout_id}.json", tmp_path / "inventory.json"
    body = {"rollout_id": rollout_id, "target_version": target, "timeout_ms": 15_000, **spec}
    spec_path.write_bytes(orjson.dumps(body))
    inv_path.write_bytes(orjson.dumps(inventory))
    result = CliRunner().invoke(
        rollout_cli, ["start", str(spec_path), "--inventory", str(inv_path), "--db", str(db), "--json"]
    )
    assert result.exit_code == 0, result.output
    return db


def rollout_status(db: Path, rollout_id: str) -> dict[str, Any]:
    result = CliRunner().invoke(rollout_cli, ["status", rollout_id, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return dict(orjson.loads(result.output.strip().splitlines()[-1]))


def finished(db: Path, rollout_id: str) -> dict[str, Any] | None:
    status = rollout_status(db, rollout_id)
    return status if status["state"] in ("completed", "aborted") else None


@pytest.mark.needs_mosquitto
def test_rollout_started_from_the_cli_reaches_every_device(hub_node: RunningNode, tmp_path: Path) -> None:
    assert sorted(set(versions(hub_node).values())) == [OLD] and len(versions(hub_node)) == N_DEVICES
    db = start_rollout(hub_node, tmp_path, "good", NEW, waves={"canary": 5, "percentages": [20, 100]}, concurrency=20)
    status = wait_for(lambda: finished(db, "good"), what="the rollout to finish")
    assert status["state"] == "completed", status
    assert status["applied"] == N_DEVICES and [w["size"] for w in status["waves"]] == [5, 5, 40]
    assert set(versions(hub_node).values()) == {NEW}
    assert sum(a.counters.applied for a in agents(hub_node)) == N_DEVICES  # none commanded twice
    assert sum(a.counters.refused for a in agents(hub_node)) == 0  # every command verified
    stats = hub_node.rollouts.stats()  # type: ignore[union-attr]
    assert stats["rollouts"] == {"good": "completed"} and stats["host"]["report_frames"] >= N_GATEWAYS
    assert hub_node.status()["rollouts"] == {"good": "completed"}


@pytest.mark.needs_mosquitto
def test_bad_version_aborts_and_every_changed_device_is_rolled_back(hub_node: RunningNode, tmp_path: Path) -> None:
    for agent in agents(hub_node):
        agent.health = HealthModel(fail_share=0.3)  # before the rollout: no command has arrived yet
    db = start_rollout(
        hub_node, tmp_path, "bad", BAD, waves={"canary": 10, "percentages": [40, 100]}, concurrency=50,
        gates={"min_success_rate": 0.95},
    )  # fmt: skip
    status = wait_for(lambda: finished(db, "bad"), what="the bad rollout to finish rolling back")
    assert status["state"] == "aborted" and "success rate" in status["reason"], status
    assert status["changed"] > 0 and status["rolled_back"] == status["changed"]
    assert status["rollback_unconfirmed"] == 0
    assert BAD not in versions(hub_node).values()
    assert sum(a.counters.rolled_back for a in agents(hub_node)) == status["changed"]


@pytest.mark.needs_mosquitto
def test_rollout_resumes_after_the_rollout_actor_restarts(hub_node: RunningNode, tmp_path: Path) -> None:
    db = start_rollout(
        hub_node, tmp_path, "slow", NEW, waves={"canary": 5, "percentages": [20, 60, 100]}, concurrency=5
    )
    role = hub_node.rollouts
    assert role is not None
    wait_for(lambda: rollout_status(db, "slow")["applied"] >= 10, what="the rollout to get going")
    role.stop()  # the hub goes away mid-rollout; the broker keeps its session and the reports meanwhile
    assert rollout_status(db, "slow")["state"] == "running"
    restarted = RolloutRole(role.settings, address=role.address, clock=role.clock, supervisor=Supervisor(role.clock))
    hub_node.rollouts = restarted.start()
    status = wait_for(lambda: finished(db, "slow"), what="the restarted hub to finish the rollout")
    assert status["state"] == "completed" and status["applied"] == N_DEVICES, orjson.dumps(status).decode()
    assert set(versions(hub_node).values()) == {NEW}
    assert sum(a.counters.applied for a in agents(hub_node)) == N_DEVICES  # no device commanded twice


@pytest.mark.needs_mosquitto
def test_rollout_survives_a_crash_of_its_actor(
    hub_node: RunningNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_tick = RolloutHost.tick
    lost: list[int] = []

    def tick_then_crash_once(self: RolloutHost, now_ms: int) -> list[tuple[str, bytes]]:
        before = self.counters.commands
        frames = real_tick(self, now_ms)
        engine = self.engines.get("crash")
        if not lost and frames and engine is not None and engine.status().applied >= 15:
            lost.append(self.counters.commands - before)
            raise RuntimeError("injected crash after saving, before sending")
        return frames

    monkeypatch.setattr(RolloutHost, "tick", tick_then_crash_once)
    db = start_rollout(
        hub_node, tmp_path, "crash", NEW, waves={"canary": 5, "percentages": [20, 100]}, concurrency=5,
        timeout_ms=2_000, gates={"timeout_counts_as": "timeout"},
    )  # fmt: skip
    status = wait_for(lambda: finished(db, "crash"), what="the rollout to finish after the crash")
    assert lost and hub_node.supervisor.stats()["rollout"].restarts == 1
    assert status["state"] == "completed", status
    # The commands saved but never sent (the crash) time out: at most once, never twice.
    assert status["timed_out"] == lost[0] and status["applied"] == N_DEVICES - lost[0]
    assert sum(a.counters.applied for a in agents(hub_node)) == status["applied"]


@pytest.mark.needs_mosquitto
def test_pause_and_resume_from_the_cli_reach_the_running_hub(hub_node: RunningNode, tmp_path: Path) -> None:
    db = start_rollout(
        hub_node, tmp_path, "paused", NEW, waves={"canary": 5, "percentages": [20, 60, 100]}, concurrency=5
    )
    pause = CliRunner().invoke(rollout_cli, ["pause", "paused", "--db", str(db)])
    assert pause.exit_code == 0, pause.output
    wait_for(lambda: rollout_status(db, "paused")["state"] == "paused", what="the hub to apply the pause")
    held = rollout_status(db, "paused")
    assert held["pending"] > 0 and not held["pending_controls"]
    resume = CliRunner().invoke(rollout_cli, ["resume", "paused", "--db", str(db)])
    assert resume.exit_code == 0, resume.output
    status = wait_for(lambda: finished(db, "paused"), what="the resumed rollout to finish")
    assert status["state"] == "completed" and status["applied"] == N_DEVICES
    assert set(versions(hub_node).values()) == {NEW}


def test_rollout_actor_waits_while_the_broker_is_away_and_ignores_other_frames(tmp_path: Path) -> None:
    clock = SimClock()
    supervisor = Supervisor(clock)
    settings = RolloutSettings(
        fleet=FLEET, node="hub", db_path=tmp_path / "r.db", node_of=lambda d: "gw", key=generate_key()
    )
    nowhere = parse_broker_url(f"mqtt://127.0.0.1:{free_port()}")  # nothing listens: never connected
    role = RolloutRole(settings, address=nowhere, clock=clock, supervisor=supervisor).start()
    try:
        ref = supervisor.ref(ROLLOUT_ACTOR)
        assert ref is not None
        assert ref.ask(object(), timeout=5) is None  # started, its first tick scheduled; unknown asks answer None
        for _ in range(3):
            clock.advance(int(settings.tick_interval_s * 1000))
            ref.ask(object(), timeout=5)  # the tick was handled and the next one scheduled
        alert = Event(node="gw", ts_ms=1, kind="battery.low", severity="warning", message="low")
        report = encode_reports("gw", "nobody", [("d1", "applied", NEW)], fleet=FLEET, now_ms=1)[1]
        for payload in (encode(alert), report, b"junk"):
            ref.tell(Inbound(topics.up(FLEET, "gw", "events"), payload))
        stats = role.stats()
        assert stats["counters"]["ticks_offline"] == 3 and stats["counters"]["ticks"] == 0
        assert stats["counters"]["frames_in"] == 3 and stats["connected"] is False
        assert stats["host"]["unknown_rollout"] == 1 and stats["host"]["bad_frames"] == 1
    finally:
        role.stop()
    assert role.stats() == {}


def test_stopping_actor_gives_unacknowledged_commands_a_bounded_wait() -> None:
    stuck = SimpleNamespace(connected=True, counters=SimpleNamespace(published=2, puback=1))
    _wait_for_pubacks(stuck, 0.05)  # type: ignore[arg-type]  # returns at the deadline
    assert stuck.counters.puback == 1
