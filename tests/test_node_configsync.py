"""Config sync from the node configs: a hub node with [hub].config_db and a field node with [configsync],
each started from its TOML file; `pymonitor config set` reaches the field node's file and its report the hub."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import MosquittoBroker, wait_for
from typer.testing import CliRunner

from pymonitor.actors.configsync.hub_actor import GetConfigStats
from pymonitor.actors.runtime.node import start_node
from pymonitor.cli.config import app as config_cli
from pymonitor.deploy.config import ConfigError, load_config


def cli(*args: str | Path) -> Any:
    result = CliRunner().invoke(config_cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.needs_mosquitto
def test_a_change_made_with_the_cli_reaches_the_field_nodes_file_and_the_hub_hears_it_applied(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    key = tmp_path / "hub.key"
    fleet = f"cs{cli('keygen', '--key', key, '--json')['key_id'][:8]}"
    (tmp_path / "trusted").mkdir()
    key.with_name("hub.key.pub.pem").rename(tmp_path / "trusted" / "hub.pem")
    hub_toml, field_toml = tmp_path / "hub.toml", tmp_path / "field.toml"
    hub_toml.write_text(
        f'[node]\nname = "hub"\nfleet = "{fleet}"\n[broker]\nurl = "{mosquitto.url}"\n'
        f'[hub]\ndb = "{tmp_path / "hub.db"}"\nconfig_db = "{tmp_path / "config.db"}"\nsigning_key = "{key}"\n'
    )
    field_toml.write_text(
        f'[node]\nname = "field-1"\nfleet = "{fleet}"\n[broker]\nurl = "{mosquitto.url}"\n'
        f'[configsync]\ntrusted_keys = "{tmp_path / "trusted"}"\nstate = "{tmp_path / "field.state"}"\n'
        "[simulator]\ndevices = 2\ngateways = 1\n"
    )
    hub = start_node(load_config(hub_toml), hub_toml)
    field = start_node(load_config(field_toml), field_toml)
    try:
        (gateway,) = field.fleet.settings  # its gateways take control commands only signed by the trusted keys
        assert gateway.trusted_keys is not None and len(gateway.trusted_keys) == 1
        common = ("--db", tmp_path / "config.db", "--broker", mosquitto.url, "--key", key, "--fleet", fleet)
        cli("set", "field-1", "clock.speed=2.0", *common, "--json")
        wait_for(lambda: tomllib.loads(field_toml.read_text()).get("clock") == {"speed": 2.0}, what="the new file")
        assert tomllib.loads(field_toml.read_text())["configsync"]["trusted_keys"] == str(tmp_path / "trusted")
        wait_for(lambda: hub.config_hub.ask(GetConfigStats())["counters"]["applied"] >= 1, what="the report")
    finally:
        field.stop()
        hub.stop()


def test_configsync_without_a_trusted_key_or_a_file_to_rewrite_is_refused_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    toml = tmp_path / "field.toml"
    toml.write_text(
        f'[node]\nname = "f"\n[broker]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[configsync]\ntrusted_keys = "{tmp_path / "empty"}"\n'
    )
    config = load_config(toml)
    with pytest.raises(ConfigError, match=r"\[configsync\].trusted_keys: no public key"):
        start_node(config, toml)
    with pytest.raises(ConfigError, match=r"\[configsync\]: needs the node's TOML file"):
        start_node(config)
    missing = tmp_path / "nowhere"
    toml.write_text(toml.read_text().replace(str(tmp_path / "empty"), str(missing)))
    with pytest.raises(ConfigError, match=r"\[configsync\].trusted_keys: "):
        start_node(load_config(toml), toml)
