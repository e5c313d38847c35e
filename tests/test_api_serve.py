"""API keys (hashed at rest), ``pymonitor api`` commands, ``/v1/fleet``, and the real uvicorn server."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_api_support import ALERTING, HOT_FP, NOW, make_api
from typer.testing import CliRunner

from pymonitor.actors.alerting.replies import RepliesConfig
from pymonitor.api import server
from pymonitor.api.app import ApiSettings
from pymonitor.api.auth import ApiKeys, KeyFileError, add_key, bearer, digest, read_keys
from pymonitor.api.server import BackgroundServer
from pymonitor.cli.api import api_app
from pymonitor.messages import Event, NodeBirth, NodeDeath
from pymonitor.store.hub_store import HubStore

runner = CliRunner()


# --- keys ----------------------------------------------------------------------------------------


def test_added_key_is_kept_only_as_a_digest_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = add_key(path, "ana", NOW)
    second = add_key(path, "ana", NOW + 1)
    text = path.read_text()
    assert key not in text and second not in text and digest(key) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = ApiKeys.load(path)
    assert keys.user_for(key) == "ana" and keys.user_for(second) == "ana"
    assert keys.user_for(key + "x") is None and keys.user_for(None) is None and keys.user_for("") is None


def test_responders_api_keys_from_the_config_are_keys_too(tmp_path: Path) -> None:
    replies = RepliesConfig.parse({"secret": "s", "responders": [{"name": "bob", "api_key": "bob-key"},
                                                                 {"name": "cy"}]})  # fmt: skip
    keys = ApiKeys.load(None, replies.responders)
    assert keys.user_for("bob-key") == "bob" and len(keys.keys) == 1


@pytest.mark.parametrize(
    ("header", "key"),
    [(None, None), ("", None), ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None)],
)
def test_bearer_reads_only_bearer_headers(header: str | None, key: str | None) -> None:
    assert bearer(header) == key


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{", "cannot read the keys file"),
        (b"[]", "expected"),
        (b'{"keys": [1]}', "keys[0]: expected an object"),
        (b'{"keys": [{"user": "", "sha256": "' + b"0" * 64 + b'"}]}', "keys[0].user"),
        (b'{"keys": [{"user": "ana", "sha256": "xyz"}]}', "keys[0].sha256"),
        (b'{"keys": [{"user": "ana", "sha256": "' + b"0" * 64 + b'", "created_ms": "now"}]}', "keys[0].created_ms"),
    ],
)
def test_a_bad_keys_file_is_refused_naming_the_entry(tmp_path: Path, content: bytes, error: str) -> None:
    path = tmp_path / "keys.json"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match=r"keys\.json: .*" + error.replace("[", r"\[").replace("]", r"\]")):
        read_keys(path)


ENTRY = st.dictionaries(
    st.sampled_from(["user", "sha256", "created_ms"]), st.text(max_size=70) | st.integers(-(2**63), 2**63 - 1)
)


@given(content=st.binary(max_size=300) | st.builds(lambda v: orjson.dumps({"keys": v}), st.lists(ENTRY, max_size=3)))
def test_any_keys_file_is_read_or_refused_with_a_key_file_error(tmp_path_factory: pytest.TempPathFactory,
                                                                content: bytes) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("k") / "keys.json"
    path.write_bytes(content)
    try:
        keys = read_keys(path)
    except KeyFileError as exc:
        assert str(exc).startswith(str(path))
    else:
        assert all(len(k.sha256) == 64 for k in keys)


def test_a_missing_keys_file_is_no_keys_and_a_bad_user_name_is_refused(tmp_path: Path) -> None:
    assert read_keys(tmp_path / "none.json") == []
    with pytest.raises(KeyFileError, match="user: expected"):
        add_key(tmp_path / "k.json", "ana smith", NOW)
    assert not (tmp_path / "k.json").exists()


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_add_key_prints_the_key_once_and_it_authenticates(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    result = runner.invoke(api_app, ["add-key", "ana", "--keys", str(keys)])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("pm_") and ApiKeys.load(keys).user_for(key) == "ana"
    as_json = runner.invoke(api_app, ["add-key", "bo", "--keys", str(keys), "--json"])
    got = orjson.loads(as_json.output.strip().splitlines()[-1])
    assert got["user"] == "bo" and ApiKeys.load(keys).user_for(got["key"]) == "bo"


def test_cli_refuses_bad_users_keys_files_and_configs(tmp_path: Path) -> None:
    bad_user = runner.invoke(api_app, ["add-key", "no spaces", "--keys", str(tmp_path / "k.json")])
    assert bad_user.exit_code == 2 and "user: expected" in bad_user.output
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert runner.invoke(api_app, ["add-key", "ana", "--keys", str(broken)]).exit_code == 2
    served = runner.invoke(api_app, ["serve", "--keys", str(broken)])
    assert served.exit_code == 2 and "broken.json" in served.output
    config = tmp_path / "alerts.toml"
    config.write_text("[alerting]\nbogus = 1\n")
    served = runner.invoke(api_app, ["serve", "--config", str(config)])
    assert served.exit_code == 2 and "alerting.bogus" in served.output


def test_cli_serve_without_the_api_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymonitor.api.app", None)  # as if fastapi were missing
    result = runner.invoke(api_app, ["serve"])
    assert result.exit_code == 2 and "needs pymonitor[api]" in result.output


def test_cli_serve_passes_the_settings_to_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[ApiSettings, str, int]] = []
    monkeypatch.setattr(server, "serve", lambda settings, host, port: seen.append((settings, host, port)))
    config = tmp_path / "alerts.toml"
    config.write_text(ALERTING)
    keys = tmp_path / "keys.json"
    args = ["serve", "--alerts-db", str(tmp_path / "a.db"), "--hub-db", str(tmp_path / "h.db"), "--config",
            str(config), "--port", "9099", "--keys", str(keys)]  # fmt: skip
    result = runner.invoke(api_app, args)
    assert result.exit_code == 0, result.output
    [(settings, host, port)] = seen
    assert (host, port, settings.alerts_db, settings.hub_db) == ("127.0.0.1", 9099, tmp_path / "a.db",
                                                                 tmp_path / "h.db")  # fmt: skip
    assert settings.keys.user_for("alice-config-key") == "alice" and settings.alerting is not None
    assert "no API keys" not in result.output
    bare = runner.invoke(api_app, ["serve", "--keys", str(keys)])
    assert bare.exit_code == 0 and "no API keys" in bare.output


# --- fleet ---------------------------------------------------------------------------------------


def hub(path: Path) -> Path:
    store = HubStore(path)
    for name in ("gw-1", "gw-2", "gw-3"):
        store.record_birth(NodeBirth(node=name, session=1, ts_ms=NOW - 60_000, role="gateway", version="1.0"))
    store.record_death(NodeDeath(node="gw-3", session=1, ts_ms=NOW - 1000, reason="lost"), NOW)
    for i in range(3):
        store.insert_event(Event(node="gw-1", ts_ms=NOW + i, kind="battery.low", severity="warning",
                                 message=f"low {i}"), NOW + i)  # fmt: skip
    store.conn.commit()
    store.close()
    return path


def test_fleet_summarises_nodes_readings_and_recent_events(tmp_path: Path) -> None:
    api = make_api(tmp_path, hub_db=hub(tmp_path / "hub.db"))
    got = api.client.get("/v1/fleet?events=2", headers=api.auth())
    assert got.status_code == 200, got.json()
    body = got.json()
    assert body["nodes"] == {"online": 2, "offline": 1, "total": 3} and body["readings"] == 0
    assert [e["message"] for e in body["events"]] == ["low 2", "low 1"]
    assert [n["node"] for n in body["per_node"]] == ["gw-1", "gw-2", "gw-3"]


def test_fleet_without_a_hub_db_or_with_bad_arguments_names_the_field(tmp_path: Path) -> None:
    none = make_api(tmp_path / "a")
    assert none.client.get("/v1/fleet", headers=none.auth()).json()["field"] == "hub_db"
    gone = make_api(tmp_path / "b", hub_db=tmp_path / "missing.db")
    got = gone.client.get("/v1/fleet", headers=gone.auth())
    assert got.status_code == 503 and not (tmp_path / "missing.db").exists()
    api = make_api(tmp_path / "c", hub_db=hub(tmp_path / "hub.db"))
    assert api.client.get("/v1/fleet?events=101", headers=api.auth()).json()["field"] == "events"
    assert api.client.get("/v1/fleet?events=x", headers=api.auth()).json()["field"] == "events"
    assert api.client.get("/v1/fleet").status_code == 401


def test_fleet_of_a_newer_hub_schema_is_a_503(tmp_path: Path) -> None:
    path = hub(tmp_path / "hub.db")
    store = HubStore(path)
    store.conn.execute("PRAGMA user_version = 999")
    store.close()
    api = make_api(tmp_path, hub_db=path)
    got = api.client.get("/v1/fleet", headers=api.auth())
    assert got.status_code == 503 and got.json()["field"] == "hub_db"


# --- the real server -----------------------------------------------------------------------------


def test_real_uvicorn_server_serves_alerts_and_acks_over_http(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    running = BackgroundServer(api.settings, port=0).start()
    try:
        base = f"http://127.0.0.1:{running.port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/v1/health").json()["ok"] is True
            assert client.get("/v1/alerts").status_code == 401
            listed = client.get("/v1/alerts", headers=api.auth())
            assert listed.headers["content-type"] == "application/json" and listed.json()["count"] == 2
            acked = client.post(f"/v1/alerts/{HOT_FP}/ack", json={"comment": "from a phone"}, headers=api.auth())
            assert acked.status_code == 200
    finally:
        running.stop()
    assert not running.thread.is_alive()
    assert [(r["fingerprint"], r["via"], r["by"]) for r in api.acks()] == [(HOT_FP, "api", "ops-phone")]


def test_background_server_says_when_it_cannot_bind(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    first = BackgroundServer(api.settings, port=0).start()
    try:
        with pytest.raises(RuntimeError, match=r"did not start on 127.0.0.1:\d+: .*port in use"):
            BackgroundServer(api.settings, port=first.port).start()
    finally:
        first.stop()


def test_serve_runs_uvicorn_with_the_app_on_the_given_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[str, int]] = []
    monkeypatch.setattr(server.uvicorn.Server, "run", lambda self: ran.append((self.config.host, self.config.port)))
    api = make_api(tmp_path)
    server.serve(api.settings, "127.0.0.1", 9123)
    assert ran == [("127.0.0.1", 9123)]


def test_settings_default_to_the_wall_clock(tmp_path: Path) -> None:
    import time

    settings = ApiSettings(alerts_db=tmp_path / "a.db", keys=ApiKeys())
    assert abs(settings.now_ms() - time.time() * 1000) < 60_000
