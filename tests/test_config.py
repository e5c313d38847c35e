"""Node configuration files: defaults, and errors that name the file, the TOML key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymonitor.deploy import ConfigError, NodeConfig, load_config, parse_config


def write(tmp_path: Path, text: str, name: str = "node.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_a_minimal_file_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[node]\nname = "gw-1"\n'))
    assert isinstance(config, NodeConfig)
    assert config.node.name == "gw-1"
    assert config.node.fleet == "default"
    assert config.broker.url in ("auto", "embedded", "mosquitto")  # a broker started here, not a URL
    assert config.broker.ca_file is None
    assert config.clock.speed == 1.0
    assert config.hub is None  # a role is on only when its section is present
    assert config.simulator is None


def test_a_present_section_turns_its_role_on_with_its_defaults(tmp_path: Path) -> None:
    text = (
        '[node]\nname = "hub"\nfleet = "farm"\n[broker]\nurl = "mqtt://user:pw@broker.lan:1884"\n[hub]\n[simulator]\n'
    )
    config = load_config(write(tmp_path, text))
    assert config.hub is not None
    assert (config.hub.db, config.hub.flush_interval_ms, config.hub.flush_max_frames) == ("pymonitor.db", 200, 256)
    assert config.hub.share_group is None
    assert config.simulator is not None
    assert (config.simulator.devices, config.simulator.gateways, config.simulator.interval_s) == (500, 10, 1.0)
    assert config.broker.url == "mqtt://user:pw@broker.lan:1884"


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ('[node]\nname = "h"\n[hub]\nflush_interval_ms = "fast"\n', "[hub].flush_interval_ms", "expected int, got str"),
        ('[node]\nname = "h"\n[hub]\nflush_max_frames = true\n', "[hub].flush_max_frames", "expected int, got bool"),
        ('[node]\nname = "h"\n[clock]\nspeed = "x"\n', "[clock].speed", "expected float, got str"),
        ('[node]\nname = "h"\ncolour = "red"\n', "[node]", "unknown key 'colour'"),
        ('[node]\nname = "h"\n[hub]\nflush_ms = 5\n', "[hub]", "unknown key 'flush_ms'"),
        ('[node]\nname = "h"\n[extras]\na = 1\n', "the top level", "unknown key 'extras'"),
        ("[hub]\n", "the top level", "missing required key 'node'"),
        ('[node]\nfleet = "farm"\n', "[node]", "missing required key 'name'"),
        ('[node]\nname = "site/gw-1"\n', "[node].name", "expected str matching regex"),
        ('[node]\nname = "gw-1"\nfleet = "farm+"\n', "[node].fleet", "expected str matching regex"),
        ('[node]\nname = "h"\n[hub]\nshare_group = "a b"\n', "[hub].share_group", "expected str matching regex"),
        ('[node]\nname = "h"\n[broker]\nurl = "http://broker.lan"\n', "[broker].url", "scheme must be mqtt://"),
        ('[node]\nname = "h"\n[broker]\nurl = "mqtt://h:99999"\n', "[broker].url", "port is not a number"),
        ('[node]\nname = "h"\n[broker]\nurl = "mqtt://"\n', "[broker].url", "no host"),
        ('[node]\nname = "h"\n[hub]\nflush_max_frames = 0\n', "[hub].flush_max_frames", "expected int >= 1"),
        ('[node]\nname = "h"\n[hub]\nflush_interval_ms = -5\n', "[hub].flush_interval_ms", "expected int >= 1"),
        ('[node]\nname = "h"\n[simulator]\ndevices = 0\n', "[simulator].devices", "expected int >= 1"),
        ('[node]\nname = "h"\n[simulator]\ninterval_s = -1.0\n', "[simulator].interval_s", "expected float > 0.0"),
        ('[node]\nname = "h"\n[simulator]\nack_timeout_s = 0.0\n', "[simulator].ack_timeout_s", "expected float > 0.0"),
        ('[node]\nname = "h"\n[clock]\nspeed = 0\n', "[clock].speed", "expected float > 0.0"),
        ('[node]\nname = "h"\n[simulator]\ncompression = "lz4"\n', "[simulator].compression", "expected one of"),
        (
            '[node]\nname = "h"\n[simulator]\ndevices = 2\ngateways = 3\n',
            "[simulator].gateways",
            "more gateways than devices",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_a_bad_value_names_the_file_the_key_and_the_reason(tmp_path: Path, text: str, where: str, reason: str) -> None:
    message = refused(write(tmp_path, text, "gateway.toml"))
    assert message.startswith(f"gateway.toml at {where}: ")
    assert reason in message


def test_invalid_toml_syntax_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nname = "h"\n[hub\n')
    message = refused(path)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "line 3" in message


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert refused(path) == f"{path}: cannot read: No such file or directory"


def test_an_unreadable_path_is_a_config_error_naming_it(tmp_path: Path) -> None:
    directory = tmp_path / "node.toml"  # a directory cannot be read as a file, even by root
    directory.mkdir()
    message = refused(directory)
    assert message.startswith(f"{directory}: cannot read: ")


def test_a_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_bytes('[node]\nname = "caf\xe9"\n'.encode("latin-1"))
    assert refused(path) == f"{path}: not UTF-8 text"


def test_parse_config_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^wizard at \[node\]: missing required key 'name'$"):
        parse_config({"node": {}}, source="wizard")


def test_a_negative_simulator_seed_is_refused_by_the_config(tmp_path: Path) -> None:
    message = refused(write(tmp_path, '[node]\nname = "h"\n[simulator]\nseed = -1\n'))
    assert "[simulator].seed" in message
