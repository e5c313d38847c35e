"""Remote config end to end: the hub service, the node agent, and both actors over a real mosquitto."""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.configsync import ConfigValidationError, PatchError, generate_key, key_id, trusted_keys
from pymonitor.actors.configsync.canonical import same_value
from pymonitor.actors.configsync.desired import desired_message, sign_desired
from pymonitor.actors.configsync.errors import ConfigSyncError
from pymonitor.actors.configsync.hub_actor import (
    GetConfigStats,
    HubConfigActor,
    HubConfigRole,
    HubConfigSettings,
    PatchGroup,
    PatchNode,
    Rollback,
    SetGroups,
)
from pymonitor.actors.configsync.node_actor import (
    ConfigAgent,
    GetNodeConfig,
    NodeConfigActor,
    NodeConfigRole,
    NodeConfigSettings,
)
from pymonitor.actors.configsync.patch import PatchOp
from pymonitor.actors.configsync.service import ConfigService, members_target, parse_assignment
from pymonitor.actors.configsync.tomlfile import to_toml
from pymonitor.actors.runtime.clock import RealClock
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BrokerAddress, topics
from pymonitor.deploy.config import NodeConfig
from pymonitor.messages import CommandAck, decode_unpacked, encode
from pymonitor.messages.config import ConfigDesired, ConfigReport
from pymonitor.store.config_store import ConfigStore

FLEET = "f1"
T0_MS = 1_767_225_600_000
TOPIC = topics.config(FLEET, "n1")


def ticking() -> Any:
    counter = itertools.count(T0_MS, 1000)
    return lambda: next(counter)


def write_node_toml(path: Path, node: str, extra: str = "") -> Path:
    path.write_text(f'[node]\nname = "{node}"\nfleet = "{FLEET}"\n{extra}')
    return path


def s(path: str, value: Any) -> PatchOp:
    return PatchOp(op="set", path=path, value=value)


class Published(list[tuple[str, bytes, bool]]):
    def __call__(self, topic: str, payload: bytes, retain: bool) -> None:
        self.append((topic, payload, retain))

    def desired(self) -> list[ConfigDesired]:
        return [decode_unpacked(p) for _, p, _ in self]  # type: ignore[misc]


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_key()


@pytest.fixture
def service(tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[ConfigService]:
    store = ConfigStore(tmp_path / "config.db")
    yield ConfigService(store, fleet=FLEET, now_ms=ticking(), key=key, publish=Published(), author="ops")
    store.close()


def agent_for(tmp_path: Path, node: str, key: Ed25519PrivateKey, **kw: Any) -> ConfigAgent:
    toml = write_node_toml(tmp_path / f"{node}.toml", node)
    return ConfigAgent(toml, tmp_path / f"{node}.state", trusted_keys([key.public_key()]), **kw)


def signed(key: Ed25519PrivateKey, node: str, version: int, doc: dict[str, Any], seq: int = 1) -> ConfigDesired:
    msg = desired_message(node, version, doc)
    return sign_desired(msg, key, issued_ms=T0_MS, expires_ms=T0_MS + 86_400_000, seq=seq)


def report_of(frames: list[tuple[str, bytes]]) -> ConfigReport:
    assert len(frames) == 1 and frames[0][0].endswith("/up/ack")
    report = decode_unpacked(frames[0][1])
    assert isinstance(report, ConfigReport)
    return report


# -- the hub service


def test_service_sends_a_signed_retained_version_per_change_and_nothing_when_unchanged(
    service: ConfigService,
) -> None:
    first = service.patch_node("n1", [s("clock.speed", 2.0)])
    assert [x.state.version for x in first] == [1] and first[0].message is not None
    assert service.patch_node("n1", [s("clock.speed", 2.0)]) == []  # same effective doc: no new version
    published = service.publisher
    assert isinstance(published, Published)
    topic, _, retain = published[0]
    assert topic == topics.config(FLEET, "n1") and retain
    assert published.desired()[0].doc == {"node": {"name": "n1"}, "clock": {"speed": 2.0}}
    assert service.lagging() == ["n1"]


def test_service_group_layer_reaches_members_below_node_overrides(service: ConfigService) -> None:
    service.set_groups("n1", ["field"])
    service.set_groups("n2", ["field"])
    service.patch_node("n2", [s("clock.speed", 4.0)])
    sent = service.patch_group("field", [s("clock.speed", 2.0), s("broker.url", "mqtt://10.0.0.1:1883")])
    assert sorted(x.node for x in sent) == ["n1", "n2"]
    assert service.effective("n1")["clock"] == {"speed": 2.0}
    assert service.effective("n2")["clock"] == {"speed": 4.0}
    assert service.members("field") == ["n1", "n2"] and service.groups_of("n3") == []


def test_service_refuses_an_invalid_change_and_stores_nothing(service: ConfigService) -> None:
    service.patch_node("n1", [s("clock.speed", 2.0)])
    before = service.store.targets()
    with pytest.raises(ConfigValidationError) as err:
        service.patch_node("n1", [s("clock.speed", -1.0)])
    assert err.value.field == "clock.speed" and "node n1" in err.value.reason
    with pytest.raises(ConfigValidationError) as unknown:
        service.patch_node("n1", [s("clock.warp", 9)])
    assert unknown.value.field == "clock.warp"
    with pytest.raises(PatchError):
        service.patch_node("n1", [PatchOp(op="remove", path="hub.db")])
    assert service.store.targets() == before and len(service.history("n1")) == 1


def test_service_diff_history_and_rollback_keep_every_version(service: ConfigService) -> None:
    service.patch_node("n1", [s("clock.speed", 2.0)])
    service.patch_node("n1", [s("clock.speed", 3.0)])
    assert [(o.path, o.value) for o in service.diff("n1")] == [("clock.speed", 3.0)]
    assert [(o.path, o.value) for o in service.diff("n1", to_version=1)] == [
        ("clock", {"speed": 2.0}),
        ("node", {"name": "n1"}),
    ]
    assert [o.op for o in service.diff("n1", 2, 1)] == ["set"]
    back = service.rollback("n1", 1)
    assert back.state.version == 3 and back.state.restores == 1 and back.state.doc["clock"] == {"speed": 2.0}
    # the node's overrides follow the rollback: editing another key does not bring 3.0 back
    again = service.patch_node("n1", [s("broker.url", "mqtt://h:1883")])
    assert again[0].state.doc["clock"] == {"speed": 2.0}
    assert [h.version for h in service.history("n1")] == [1, 2, 3, 4]
    with pytest.raises(ConfigSyncError, match="no sent version 9"):
        service.diff("n1", 9)
    with pytest.raises(ConfigSyncError, match="nothing was ever sent"):
        service.diff("ghost")
    with pytest.raises(ConfigSyncError, match="nothing was ever planned"):
        service.publish("ghost")


def test_service_rollback_drops_a_node_key_the_old_version_lacked(service: ConfigService) -> None:
    service.set_groups("n1", ["g"])
    service.patch_group("g", [s("broker.url", "mqtt://g:1883")])
    service.patch_node("n1", [s("clock.speed", 3.0)])
    back = service.rollback("n1", 1)  # version 1: the node's name and nothing else
    assert back.state.doc == {"node": {"name": "n1"}}
    assert "clock" not in service.node_layer("n1")
    assert service.store.latest(members_target("n1")) is not None


def test_service_rolls_back_on_a_report_of_failing_health_checks(service: ConfigService) -> None:
    service.patch_node("n1", [s("clock.speed", 2.0)])
    service.patch_node("n1", [s("clock.speed", 3.0)])
    ok = ConfigReport(node="n1", version=2, hash="h", status="applied", ts_ms=T0_MS, previous_version=1)
    assert service.on_report(ok) is None and service.lagging() == []
    sick = dataclasses.replace(ok, failed_checks=["broker reachable"])
    back = service.on_report(sick)
    assert back is not None and back.state.restores == 1 and back.state.author == "auto-rollback"
    assert "broker reachable" in back.state.note and service.lagging() == ["n1"]
    assert len(service.store.reports("n1")) == 2


def test_a_restarted_service_knows_from_the_db_which_nodes_lag(service: ConfigService) -> None:
    service.patch_node("n1", [s("clock.speed", 2.0)])
    service.patch_node("n2", [s("clock.speed", 2.0)])
    service.on_report(ConfigReport(node="n1", version=1, hash="h", status="applied", ts_ms=T0_MS))
    restarted = ConfigService(service.store, fleet=FLEET, now_ms=ticking())
    assert restarted.lagging() == []
    restarted.restore_pending()
    assert restarted.lagging() == ["n2"] and restarted.unreported("n1") is None
    assert restarted.unreported("n2") is not None and restarted.unreported("ghost") is None


def test_a_refused_forgery_with_a_higher_version_does_not_mark_the_node_up_to_date(service: ConfigService) -> None:
    sent = service.patch_node("n1", [s("clock.speed", 2.0)])[0].state
    forged = ConfigReport(node="n1", version=9, hash="x", status="rejected", reason="unknown_key", ts_ms=T0_MS)
    service.on_report(forged)
    assert service.lagging() == ["n1"] and service.unreported("n1") == sent
    refused = dataclasses.replace(forged, version=1, hash=sent.hash, reason="invalid")
    service.on_report(refused)  # the node refused what the hub sent: settled (it will not change its mind)
    assert service.lagging() == [] and service.unreported("n1") is None


def test_a_node_back_after_the_signature_expired_gets_the_same_version_signed_again(
    service: ConfigService, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    service.ttl_ms = 5_000
    service.patch_node("n1", [s("clock.speed", 2.0)])
    published = service.publisher
    assert isinstance(published, Published)
    agent = agent_for(tmp_path, "n1", key)
    late = service.now_ms() + 60_000
    stale = report_of(agent.handle(TOPIC, published[-1][1], late))
    assert stale.reason == "stale"
    again = service.on_report(stale)
    assert again is not None and again.state.version == 1 and again.message is not None
    assert again.message.seq > published.desired()[0].seq and len(published) == 2
    assert report_of(agent.handle(TOPIC, published[-1][1], service.now_ms())).status == "applied"
    assert service.on_report(dataclasses.replace(stale, version=7)) is None  # not the latest version: recorded only


def test_service_without_key_plans_but_sends_nothing(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c.db")
    svc = ConfigService(store, fleet=FLEET, now_ms=ticking())
    sent = svc.patch_node("n1", [s("clock.speed", 2.0)])
    assert sent[0].message is None and sent[0].state.version == 1 and svc.lagging() == []
    store.close()


def test_parse_assignment_reads_toml_values_and_bare_text() -> None:
    assert parse_assignment("clock.speed=2.5").value == 2.5
    assert parse_assignment("a.b = true").value is True
    assert parse_assignment('x.y="quoted"').value == "quoted"
    assert parse_assignment("broker.url=mqtt://h:1883").value == "mqtt://h:1883"
    assert parse_assignment("x.l=[1, 2]").value == [1, 2]
    with pytest.raises(ConfigSyncError, match="KEY=VALUE"):
        parse_assignment("novalue")


TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
)


@given(value=st.one_of(TOML_SCALARS, st.lists(TOML_SCALARS, max_size=4)))
def test_parse_assignment_reads_back_any_value_the_toml_writer_writes(value: Any) -> None:
    text = to_toml({"v": value}).strip()[len("v = ") :]
    assert same_value(parse_assignment(f"a.b={text}").value, value)


@given(text=st.text(max_size=40))
def test_parse_assignment_never_fails_with_anything_but_a_config_error(text: str) -> None:
    try:
        op = parse_assignment(text)
    except ConfigSyncError:
        return
    assert op.op == "set" and op.path


# -- the node agent


def test_agent_applies_writes_the_toml_and_reports_applied(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    agent = agent_for(tmp_path, "n1", key)
    msg = signed(key, "n1", 1, {"node": {"name": "n1"}, "clock": {"speed": 2.0}})
    report = report_of(agent.handle(topics.config(FLEET, "n1"), encode(msg), T0_MS))
    assert report.status == "applied" and report.version == 1
    on_disk = tomllib.loads(agent.toml_path.read_text())
    assert on_disk == {"node": {"name": "n1", "fleet": FLEET}, "clock": {"speed": 2.0}}
    assert agent.config.clock.speed == 2.0 and agent.state_path.exists()
    again = report_of(agent.handle(topics.config(FLEET, "n1"), encode(msg), T0_MS))  # the retained one again
    assert again.status == "applied" and again.detail == "already applied"
    assert (agent.counters.applied, agent.counters.unchanged) == (1, 1)
    restarted = ConfigAgent(agent.toml_path, agent.state_path, agent.trusted)
    assert restarted.state.base_version == 1 and restarted.config.clock.speed == 2.0


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda m, k: dataclasses.replace(m, signature=b""), "unsigned"),
        (lambda m, k: dataclasses.replace(m, doc={**m.doc, "clock": {"speed": 9.0}}), "forged"),
        (lambda m, k: signed(generate_key(), "n1", 1, m.doc), "unknown_key"),
        (lambda m, k: signed(k, "n1", 1, {"node": {"name": "n1"}, "clock": {"speed": -1.0}}), "invalid"),
        (lambda m, k: signed(k, "n1", 1, {"node": {"name": "n1"}, "clock": {"warp": 1}}), "invalid"),
        (lambda m, k: signed(k, "n2", 1, {"node": {"name": "n2"}}), "wrong_node"),
    ],
    ids=["unsigned", "forged", "unknown-key", "invalid-value", "unknown-key-in-doc", "wrong-node"],
)
def test_agent_refuses_bad_desired_state_and_keeps_its_config(
    tmp_path: Path, key: Ed25519PrivateKey, mangle: Any, reason: str
) -> None:
    agent = agent_for(tmp_path, "n1", key)
    before = agent.toml_path.read_bytes()
    good = signed(key, "n1", 1, {"node": {"name": "n1"}, "clock": {"speed": 2.0}})
    report = report_of(agent.handle(topics.config(FLEET, "n1"), encode(mangle(good, key)), T0_MS))
    assert report.status == "rejected" and report.reason == reason and report.detail
    assert agent.toml_path.read_bytes() == before and agent.counters.rejected == 1
    if reason == "invalid":
        assert report.detail.startswith("clock.")  # names the field and the reason
    # still running: a good version afterwards applies
    assert report_of(agent.handle(TOPIC, encode(signed(key, "n1", 2, good.doc, seq=5)), T0_MS)).status == "applied"


def test_agent_dead_letters_frames_that_are_not_desired_config(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    agent = agent_for(tmp_path, "n1", key)
    topic = topics.config(FLEET, "n1")
    for payload in (b"\xff garbage", encode(CommandAck(node="n1", id="c", status="ok", ts_ms=1))):
        frames = agent.handle(topic, payload, T0_MS)
        assert len(frames) == 1 and frames[0][0] == topics.up(FLEET, "n1", "deadletter")
    assert agent.counters.dead_letters == 2


def test_agent_reports_write_failed_and_keeps_state_when_the_file_cannot_be_written(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    (tmp_path / "etc").mkdir()
    agent = agent_for(tmp_path / "etc", "n1", key)
    agent.toml_path.unlink()
    (tmp_path / "etc").rmdir()  # the directory is gone: nothing can be written there
    report = report_of(agent.handle(TOPIC, encode(signed(key, "n1", 1, {"node": {"name": "n1"}})), T0_MS))
    assert report.reason == "write_failed" and agent.state.base_version == 0


def test_agent_still_answers_when_it_cannot_save_a_refusal(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    agent = agent_for(tmp_path, "n1", key)
    agent.state_path = tmp_path / "gone" / "n1.state"
    bad = signed(key, "n1", 1, {"node": {"name": "n1"}, "clock": {"speed": -1.0}})
    assert report_of(agent.handle(TOPIC, encode(bad), T0_MS)).reason == "invalid"
    assert agent.state.last_rejection is not None


def test_agent_starts_fresh_on_a_corrupt_state_file_and_refuses_a_broken_toml(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    (tmp_path / "n1.state").write_bytes(b"\x00not cbor")
    agent = agent_for(tmp_path, "n1", key)
    assert agent.counters.state_reset == 1 and agent.state.base_version == 0
    (tmp_path / "bad.toml").write_text("[node\n")
    with pytest.raises(ConfigSyncError, match="not valid TOML"):
        ConfigAgent(tmp_path / "bad.toml", tmp_path / "s", {})
    with pytest.raises(ConfigSyncError, match="cannot read"):
        ConfigAgent(tmp_path / "missing.toml", tmp_path / "s", {})


def test_agent_remembers_a_refusal_across_restarts(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    agent = agent_for(tmp_path, "n1", key)
    bad = signed(key, "n1", 1, {"node": {"name": "n1"}, "clock": {"speed": -1.0}})
    agent.handle(TOPIC, encode(bad), T0_MS)
    restarted = ConfigAgent(agent.toml_path, agent.state_path, agent.trusted)
    again = report_of(restarted.handle(TOPIC, encode(bad), T0_MS))
    assert again.reason == "invalid"  # the same answer, not "replayed"


def test_agent_adds_failing_health_checks_to_the_applied_report(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    def health(config: NodeConfig) -> list[str]:
        return ["clock sane"] if config.clock.speed > 2 else []

    agent = agent_for(tmp_path, "n1", key, health=health)
    ok = report_of(agent.handle(TOPIC, encode(signed(key, "n1", 1, {"node": {"name": "n1"}})), T0_MS))
    assert ok.failed_checks == []
    doc = {"node": {"name": "n1"}, "clock": {"speed": 3.0}}
    sick = report_of(agent.handle(TOPIC, encode(signed(key, "n1", 2, doc, seq=2)), T0_MS))
    assert sick.status == "applied" and sick.failed_checks == ["clock sane"]


# -- the actors without a broker


def test_the_actors_answer_commands_and_frames(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    clock = RealClock()
    sup = Supervisor(clock)
    hub_out, node_out = Published(), []
    seen: list[NodeConfig] = []
    hub = HubConfigActor.start(sup, HubConfigSettings(FLEET, tmp_path / "c.db", key), clock, hub_out)
    settings = NodeConfigSettings(
        write_node_toml(tmp_path / "n1.toml", "n1"), tmp_path / "n1.state", trusted_keys([key.public_key()]),
        on_config=seen.append,
    )  # fmt: skip
    node = NodeConfigActor.start(sup, settings, clock, lambda t, p: node_out.append((t, p)))
    try:
        hub.ask(SetGroups("n1", ["g"]))
        hub.ask(PatchGroup("g", [s("clock.speed", 2.0)]))
        sent = hub.ask(PatchNode("n1", [s("broker.url", "mqtt://h:1883")]))
        assert sent[0].state.version == 3
        for topic, payload, _ in hub_out:
            node.ask(Inbound(topic, payload))
        assert seen[-1].broker.url == "mqtt://h:1883" and node.ask(GetNodeConfig())[1]["applied"] == 3
        for topic, payload in node_out:
            hub.ask(Inbound(topic, payload))
        stale = ConfigReport(node="n1", version=3, hash="h", status="rejected", reason="stale", ts_ms=T0_MS)
        hub.ask(Inbound(topics.up(FLEET, "n1", "ack"), encode(stale)))
        hub.ask(Inbound(topics.up(FLEET, "n1", "ack"), b"junk"))
        hub.ask(Inbound(topics.up(FLEET, "n1", "ack"), encode(CommandAck(node="n1", id="c", status="ok", ts_ms=1))))
        assert hub.ask(Rollback("n1", 2)).state.restores == 2
        stats = hub.ask(GetConfigStats())
        assert stats["counters"]["applied"] == 3 and stats["counters"]["dead_letters"] == 1
        assert stats["counters"]["ignored"] == 1 and stats["lagging"] == ["n1"]
        assert stats["counters"]["resigned"] == 1 and stats["counters"]["rejected"] == 1
        assert hub.ask("unknown") is None and node.ask("unknown") is None
    finally:
        hub.stop()
        node.stop()
        clock.stop()


# -- over a real mosquitto


class Site:
    """A hub and some nodes, each with its own MQTT session, on one broker."""

    def __init__(self, address: BrokerAddress, tmp_path: Path, key: Ed25519PrivateKey) -> None:
        self.address, self.tmp, self.key = address, tmp_path, key
        self.clock = RealClock()
        self.supervisor = Supervisor(self.clock)
        self.fleet = f"t{key_id(key.public_key())[:8]}"  # tests share the session broker: own fleet
        self.hub = HubConfigRole(
            HubConfigSettings(self.fleet, tmp_path / "config.db", key), node="hub",
            address=address, clock=self.clock, supervisor=self.supervisor,
        ).start()  # fmt: skip
        self.nodes: dict[str, NodeConfigRole] = {}

    def node(self, name: str, health: Any = None, *, supervisor: Supervisor | None = None) -> NodeConfigRole:
        toml = self.tmp / f"{name}.toml"
        if not toml.exists():
            toml.write_text(f'[node]\nname = "{name}"\nfleet = "{self.fleet}"\n')
        settings = NodeConfigSettings(
            toml, self.tmp / f"{name}.state", trusted_keys([self.key.public_key()]), health=health
        )
        role = NodeConfigRole(
            settings, address=self.address, clock=self.clock, supervisor=supervisor or Supervisor(self.clock)
        )
        self.nodes[name] = role.start()
        return role

    def runs(self, name: str) -> dict[str, Any]:
        return tomllib.loads((self.tmp / f"{name}.toml").read_text())

    def stats(self) -> dict[str, Any]:
        return self.hub.ask(GetConfigStats())  # type: ignore[no-any-return]

    def close(self) -> None:
        for role in self.nodes.values():
            role.stop()
        self.hub.stop()
        self.clock.stop()


@pytest.fixture
def site(broker_address: BrokerAddress, tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[Site]:
    site = Site(broker_address, tmp_path, key)
    assert site.hub.bridge.wait_connected(10)
    yield site
    site.close()


@pytest.mark.needs_mosquitto
def test_a_node_applies_the_retained_desired_state_and_the_hub_hears_it(site: Site) -> None:
    site.hub.ask(PatchNode("n1", [s("clock.speed", 2.0)]))  # published before the node ever connected
    site.node("n1")
    wait_for(lambda: site.runs("n1").get("clock") == {"speed": 2.0}, what="the node to write its TOML")
    wait_for(lambda: site.stats()["counters"]["applied"] == 1, what="the hub to hear the report")
    assert site.stats()["lagging"] == []
    assert site.nodes["n1"].current()[0].clock.speed == 2.0


@pytest.mark.needs_mosquitto
def test_a_partial_update_queued_while_offline_is_applied_after_reconnect(site: Site) -> None:
    site.node("n1")
    site.hub.ask(PatchNode("n1", [s("clock.speed", 2.0)]))
    wait_for(lambda: site.stats()["counters"]["applied"] == 1, what="the first apply")
    site.nodes.pop("n1").stop()
    site.hub.ask(PatchNode("n1", [s("broker.url", "mqtt://10.1.1.1:1883")]))
    site.hub.ask(PatchNode("n1", [s("clock.speed", 3.0)]))
    assert site.stats()["lagging"] == ["n1"]
    site.node("n1")
    wait_for(lambda: site.stats()["lagging"] == [], what="the node to catch up")
    runs = site.runs("n1")
    assert runs["clock"] == {"speed": 3.0} and runs["broker"] == {"url": "mqtt://10.1.1.1:1883"}


@pytest.mark.needs_mosquitto
def test_failing_health_after_an_apply_rolls_the_node_back_automatically(site: Site) -> None:
    site.node("n1", health=lambda c: ["clock sane"] if c.clock.speed > 2 else [])
    site.hub.ask(PatchNode("n1", [s("clock.speed", 2.0)]))
    wait_for(lambda: site.stats()["counters"]["applied"] == 1, what="the first apply")
    site.hub.ask(PatchNode("n1", [s("clock.speed", 5.0)]))
    wait_for(lambda: site.stats()["counters"]["rollbacks"] == 1, what="the automatic rollback")
    wait_for(lambda: site.stats()["lagging"] == [], what="the node to apply the rollback")
    assert site.runs("n1")["clock"] == {"speed": 2.0}
    store = ConfigStore(site.tmp / "config.db")
    history = store.history("sent:n1")
    assert [(h.version, h.restores) for h in history] == [(1, 0), (2, 0), (3, 1)]
    assert [r.version for r in store.reports("n1")][:1] == [3]
    store.close()


@pytest.mark.needs_mosquitto
def test_a_forged_retained_message_is_refused_and_reported_and_the_node_keeps_its_config(site: Site) -> None:
    site.node("n1")
    site.hub.ask(PatchNode("n1", [s("clock.speed", 2.0)]))
    wait_for(lambda: site.stats()["counters"]["applied"] == 1, what="the first apply")
    before = site.runs("n1")
    forged = signed(generate_key(), "n1", 9, {"node": {"name": "n1"}, "clock": {"speed": 9.0}})
    site.hub.bridge.publish(topics.config(site.fleet, "n1"), encode(forged), retain=True)
    wait_for(lambda: site.stats()["counters"]["rejected"] == 1, what="the refusal to reach the hub")
    store = ConfigStore(site.tmp / "config.db")
    refusal = store.reports("n1")[0]
    store.close()
    assert refusal.status == "rejected" and refusal.reason == "unknown_key" and refusal.version == 9
    assert site.runs("n1") == before
    site.hub.ask(PatchNode("n1", [s("clock.speed", 1.5)]))  # the hub's next version still applies
    wait_for(lambda: site.runs("n1").get("clock") == {"speed": 1.5}, what="the next good version")
