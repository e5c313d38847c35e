"""Fleet queries served from the role actors' stored answers: the same rows as computing them, only faster.

A real hub store (bench fleet's writer), the roles' real query functions (``store_roles``), and the
CLI; the answers file is a real SQLite file beside the store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_api_support import make_api
from typer.testing import CliRunner

from pymonitor.actors.fleet_roles import BatteryOptions, FleetQueryError, FleetService, GatewayOptions, store_roles
from pymonitor.actors.fleet_roles.answers import CUTS, ask, limited, options_key
from pymonitor.actors.fleet_roles.service import ROLE_OPTIONS
from pymonitor.bench.fleet import build_store
from pymonitor.cli.fleet import fleet_app
from pymonitor.store.fleet_answers import AnswerStore, answers_path


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A 300-device store whose five roles have each run one analysis (so each has a stored answer)."""
    path = tmp_path_factory.mktemp("answers") / "hub.db"
    now = int(build_store(path, seed=5, devices=300, days=10)["now_ms"])
    for make in store_roles(path, "hub").values():
        role = make()
        role.analyse(now)
    return path, now


def _without_source(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "source"}


@pytest.mark.parametrize("role", sorted(CUTS))
@pytest.mark.parametrize("limit", [1, 3, 20])
def test_a_stored_answer_cut_to_a_limit_is_the_answer_computed_with_that_limit(
    analysed: tuple[Path, int], role: str, limit: int
) -> None:
    path, now = analysed
    served = ask(path, role, ROLE_OPTIONS[role](limit=limit))
    assert served["source"]["kind"] == "role"
    with FleetService(path) as service:
        computed = service.ask(role, now, ROLE_OPTIONS[role](limit=limit))
    # Through JSON both: what the CLI prints (tuples become lists, as they do on disk).
    assert orjson.loads(orjson.dumps(_without_source(served))) == orjson.loads(orjson.dumps(computed))


def test_the_roles_keep_every_row_and_a_limit_cuts_only_the_lists_it_names(analysed: tuple[Path, int]) -> None:
    path, _ = analysed
    store = AnswerStore.reader(answers_path(path))
    assert store is not None
    full = store.get("battery", options_key(BatteryOptions()))
    store.close()
    assert full is not None and full.answer["alerts_total"] == len(full.answer["alerts"]) > 3
    cut = limited("battery", full.answer, 3)
    assert len(cut["alerts"]) == 3 and len(cut["rates"]["location"]) == 3
    assert cut["rates"]["site"] == full.answer["rates"]["site"]  # not a list the limit applies to
    assert len(full.answer["alerts"]) == full.answer["alerts_total"]  # the stored answer is not touched
    tail = limited(
        "firmware",
        {**dict.fromkeys(("outdated", "vulnerable", "inconsistent_groups"), []), "unauthorised": [1, 2, 3]},
        2,
    )
    assert tail["unauthorised"] == [2, 3]  # the newest changes


def test_what_the_roles_do_not_precompute_is_computed_from_the_store(analysed: tuple[Path, int]) -> None:
    path, now = analysed
    assert ask(path, "battery", BatteryOptions(), fresh=True)["source"]["kind"] == "store"
    assert ask(path, "battery", BatteryOptions(), now=str(now))["source"]["kind"] == "store"
    assert ask(path, "battery", BatteryOptions(device="bat-000003"))["source"]["kind"] == "store"
    assert ask(path, "battery", BatteryOptions(site="site-001"))["source"]["kind"] == "store"
    assert ask(path, "battery", BatteryOptions(window_days=30))["source"]["kind"] == "store"  # other analysis
    assert ask(path, "battery", BatteryOptions(), max_age_s=0.0)["source"]["kind"] == "store"  # too old


def test_without_an_answers_file_or_with_a_broken_one_the_store_answers(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    build_store(path, seed=6, devices=40, days=3)
    assert ask(path, "gateways", GatewayOptions())["source"]["kind"] == "store"
    answers_path(path).write_bytes(b"this is not a database" * 100)
    assert ask(path, "gateways", GatewayOptions())["source"]["kind"] == "store"


def test_a_new_analysis_replaces_the_stored_answer(tmp_path: Path) -> None:
    store = AnswerStore(tmp_path / "a.db")
    store.put("gateways", "{}", 1, 2.5, {"n": 1})
    store.put("gateways", "{}", 2, 3.5, {"n": 2})
    found = store.get("gateways", "{}")
    assert found is not None and found.answer == {"n": 2} and found.now_ms == 2 and found.elapsed_ms == 3.5
    assert store.get("gateways", '{"hours":1}') is None
    count = sqlite3.connect(tmp_path / "a.db").execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    assert count == 1
    store.close()


def test_the_cli_says_where_an_answer_came_from(analysed: tuple[Path, int]) -> None:
    path, _ = analysed
    result = CliRunner().invoke(fleet_app, ["gateways", "--db", str(path)])
    assert result.exit_code == 0 and "the hub's gateways role answered" in result.stdout
    result = CliRunner().invoke(fleet_app, ["gateways", "--db", str(path), "--json", "--fresh"])
    assert result.exit_code == 0
    assert orjson.loads(result.stdout.strip().splitlines()[-1])["source"]["kind"] == "store"


def test_the_api_serves_each_roles_stored_answer_and_never_computes_one(
    analysed: tuple[Path, int], tmp_path: Path
) -> None:
    path, _ = analysed
    api = make_api(tmp_path / "api", hub_db=path)
    got = api.client.get("/v1/fleet/battery?limit=2", headers=api.auth())
    assert got.status_code == 200, got.json()
    body = got.json()
    assert body["source"]["kind"] == "role" and len(body["alerts"]) == 2 and body["alerts_total"] > 2
    assert api.client.get("/v1/fleet/weather", headers=api.auth()).json()["field"] == "role"
    assert api.client.get("/v1/fleet/battery?limit=0", headers=api.auth()).json()["field"] == "limit"
    assert api.client.get("/v1/fleet/battery").status_code == 401
    bare = tmp_path / "bare" / "hub.db"
    bare.parent.mkdir()
    build_store(bare, seed=6, devices=20, days=2)
    none = make_api(tmp_path / "api2", hub_db=bare)
    got = none.client.get("/v1/fleet/gateways", headers=none.auth())
    assert got.status_code == 503 and "fleet_roles" in got.json()["error"]
    nohub = make_api(tmp_path / "api3")
    assert nohub.client.get("/v1/fleet/gateways", headers=nohub.auth()).json()["field"] == "hub_db"


def test_an_unknown_role_is_refused_by_name(analysed: tuple[Path, int]) -> None:
    path, now = analysed
    with FleetService(path) as service, pytest.raises(FleetQueryError, match="role: expected one of battery"):
        service.ask("weather", now, GatewayOptions())
    with pytest.raises(FleetQueryError, match="got 'weather'"):
        ask(path, "weather", GatewayOptions())
