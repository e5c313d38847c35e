"""``pymonitor config``: set, get, diff, history, rollback against a config DB, and over a real broker."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import wait_for
from typer.testing import CliRunner

from pymonitor.actors.configsync import load_private_key, load_public_key, service, trusted_keys
from pymonitor.actors.configsync.node_actor import NodeConfigRole, NodeConfigSettings
from pymonitor.actors.runtime.clock import RealClock
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BrokerAddress, MosquittoBroker
from pymonitor.cli.config import app
from pymonitor.store.config_store import ConfigStore

runner = CliRunner()


def cli(*args: str | Path) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    return result


def ok_json(*args: str | Path) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "config.db"


def test_set_stores_a_version_and_get_history_diff_show_it(db: Path) -> None:
    first = ok_json("set", "n1", "clock.speed=2.0", "--db", db)
    assert first["sent"][0]["version"] == 1 and first["sent"][0]["published"] is False
    ok_json("set", "n1", "broker.url=mqtt://10.0.0.1:1883", "--note", "new broker", "--db", db)
    got = ok_json("get", "n1", "--db", db)
    assert got["sent"]["version"] == 2 and got["sent"]["doc"]["broker"] == {"url": "mqtt://10.0.0.1:1883"}
    assert got["report"] is None and got["overrides"]["clock"] == {"speed": 2.0} and got["lagging"] is True
    history = ok_json("history", "n1", "--db", db)
    assert [v["version"] for v in history["versions"]] == [1, 2] and history["versions"][1]["note"] == "new broker"
    assert ok_json("diff", "n1", "--db", db)["ops"] == [
        {"op": "set", "path": "broker", "value": {"url": "mqtt://10.0.0.1:1883"}}
    ]
    assert ok_json("diff", "n1", "--from", "2", "--to", "1", "--db", db)["ops"] == [
        {"op": "remove", "path": "broker", "value": None}
    ]
    human = cli("get", "n1", "--db", db)
    assert "version 2" in human.stdout and 'url = "mqtt://10.0.0.1:1883"' in human.stdout
    assert "lagging: the node has not reported" in human.stdout
    assert "rollback" not in cli("history", "n1", "--db", db).stdout
    assert "~ broker" in cli("diff", "n1", "--db", db).stdout


def test_rollback_adds_a_version_with_the_old_content(db: Path) -> None:
    cli("set", "n1", "clock.speed=2.0", "--db", db)
    cli("set", "n1", "clock.speed=3.0", "--db", db)
    back = ok_json("rollback", "n1", "1", "--db", db)
    assert back["sent"][0]["version"] == 3 and back["sent"][0]["restores"] == 1
    assert ok_json("get", "n1", "--db", db)["sent"]["doc"]["clock"] == {"speed": 2.0}
    assert "rollback to 1" in cli("history", "n1", "--db", db).stdout
    assert "no difference" in cli("diff", "n1", "--from", "1", "--to", "3", "--db", db).stdout
    assert "n1: version 4" in cli("rollback", "n1", "2", "--db", db).stdout


def test_groups_and_group_layers_reach_every_member(db: Path) -> None:
    cli("set", "n1", "clock.speed=1.5", "--db", db)
    joined = ok_json("groups", "n1", "field", "--db", db)
    assert joined["groups"] == ["field"] and joined["sent"] == []  # an empty group changes nothing
    ok_json("groups", "n2", "field", "--db", db)
    sent = ok_json("set", "field", "clock.speed=2.5", "broker.url=mqtt://g:1883", "--group", "--db", db)["sent"]
    assert sorted(r["node"] for r in sent) == ["n1", "n2"]
    assert ok_json("get", "n1", "--db", db)["sent"]["doc"]["clock"] == {"speed": 1.5}  # its own override wins
    assert ok_json("get", "n2", "--db", db)["sent"]["doc"]["clock"] == {"speed": 2.5}
    assert "n2: field" in cli("groups", "n2", "--db", db).stdout
    assert "(none)" not in cli("get", "n2", "--db", db).stdout
    removed = ok_json("set", "n1", "--remove", "clock", "--db", db)["sent"][0]
    assert removed["version"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "n1", "clock.speed=-1"), "clock.speed"),
        (("set", "n1", "clock.warp=1"), "clock.warp"),
        (("set", "n1", "novalue"), "KEY=VALUE"),
        (("set", "n1"), "nothing to change"),
        (("set", "bad/name", "clock.speed=2.0"), "node name"),
        (("set", "n1", "--remove", "hub.db"), "hub"),
        (("get", "n1", "--db", "/nonexistent/c.db"), "no such config DB"),
        (("rollback", "n1", "7"), "nothing to roll back"),
        (("diff", "n1"), "nothing was ever sent"),
        (("set", "n1", "clock.speed=2.0", "--broker", "mqtt://127.0.0.1:1"), "--broker needs --key"),
        (("publish", "n1"), "needs --broker"),
    ],
)
def test_refusals_name_the_field_and_reason_and_store_nothing(db: Path, args: tuple[str, ...], message: str) -> None:
    ConfigStore(db).close()
    result = cli(*args, *([] if "--db" in args else ["--db", db]))
    assert result.exit_code == 2 and message in result.stderr
    store = ConfigStore(db)
    assert store.targets() == []
    store.close()


def test_keygen_writes_a_private_key_only_the_owner_reads_and_its_public_key(tmp_path: Path) -> None:
    key = tmp_path / "hub.key"
    made = ok_json("keygen", "--key", key)
    assert key.stat().st_mode & 0o777 == 0o600
    assert trusted_keys([load_public_key(made["public_key"])]) == {made["key_id"]: load_public_key(made["public_key"])}
    assert load_private_key(key).public_key() == load_public_key(made["public_key"])
    again = cli("keygen", "--key", key)
    assert again.exit_code == 2 and "exists" in again.stderr
    assert "copy it" in cli("keygen", "--key", key, "--force").stdout
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    bad.chmod(0o600)
    result = cli("set", "n1", "clock.speed=2.0", "--key", bad, "--db", tmp_path / "c.db")
    assert result.exit_code == 2 and "not a PEM private key" in result.stderr


def test_human_output_without_changes_and_empty_history(db: Path) -> None:
    cli("set", "n1", "clock.speed=2.0", "--db", db)
    assert "no change" in cli("set", "n1", "clock.speed=2.0", "--db", db).stdout
    assert "no member's config changed" in cli("set", "empty", "clock.speed=2.0", "--group", "--db", db).stdout
    assert "nothing sent yet" in cli("history", "n9", "--db", db).stdout
    assert "nothing sent yet" in cli("get", "n9", "--db", db).stdout
    assert "not published" in cli("set", "n1", "clock.speed=3.0", "--db", db).stdout
    assert "(no groups)" in cli("groups", "n1", "--db", db).stdout


# -- over a real broker: the CLI publishes, a node actor applies


class Node:
    def __init__(self, address: BrokerAddress, tmp: Path, public_key: Path, fleet: str) -> None:
        self.toml = tmp / "n1.toml"
        self.toml.write_text(f'[node]\nname = "n1"\nfleet = "{fleet}"\n')
        self.clock = RealClock()
        settings = NodeConfigSettings(
            self.toml, tmp / "n1.state", trusted_keys([load_public_key(public_key)]),
            health=lambda c: ["clock sane"] if c.clock.speed > 4 else [],
        )  # fmt: skip
        self.role = NodeConfigRole(settings, address=address, clock=self.clock, supervisor=Supervisor(self.clock))
        self.role.start()

    def runs(self) -> dict[str, Any]:
        return tomllib.loads(self.toml.read_text())

    def close(self) -> None:
        self.role.stop()
        self.clock.stop()


@pytest.fixture
def node_and_key(broker_address: BrokerAddress, tmp_path: Path) -> Iterator[tuple[Node, Path, str]]:
    key = tmp_path / "hub.key"
    fleet = f"cli{ok_json('keygen', '--key', key)['key_id'][:8]}"
    node = Node(broker_address, tmp_path, key.with_name("hub.key.pub.pem"), fleet)
    yield node, key, fleet
    node.close()


@pytest.mark.needs_mosquitto
def test_cli_set_and_rollback_over_the_broker_change_the_nodes_file(
    mosquitto: MosquittoBroker, node_and_key: tuple[Node, Path, str], db: Path
) -> None:
    node, key, fleet = node_and_key
    common = ("--db", db, "--broker", mosquitto.url, "--key", key, "--fleet", fleet)
    assert "published (retained)" in cli("set", "n1", "clock.speed=2.0", *common).stdout
    wait_for(lambda: node.runs().get("clock") == {"speed": 2.0}, what="the node to apply version 1")
    assert ok_json("set", "n1", "clock.speed=3.0", *common)["sent"][0]["published"] is True
    wait_for(lambda: node.runs().get("clock") == {"speed": 3.0}, what="the node to apply version 2")
    assert ok_json("rollback", "n1", "1", *common)["sent"][0]["version"] == 3
    wait_for(lambda: node.runs().get("clock") == {"speed": 2.0}, what="the node to apply the rollback")
    assert node.role.current()[1]["applied"] == 3
    assert ok_json("publish", "n1", *common)["sent"][0]["version"] == 3  # the same version again: unchanged
    wait_for(lambda: node.role.current()[1]["unchanged"] >= 1, what="the node to see it again")


def test_cli_refuses_an_unreachable_broker(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "hub.key"
    cli("keygen", "--key", key)
    monkeypatch.setattr(service, "PUBACK_WAIT_S", 0.3)
    result = cli("set", "n1", "clock.speed=2.0", "--db", db, "--broker", "mqtt://127.0.0.1:1", "--key", key)
    assert result.exit_code == 2 and "no connection" in result.stderr
