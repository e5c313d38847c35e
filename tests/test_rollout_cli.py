"""``pymonitor rollout start|status|pause|resume|abort`` on a real state file."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from pymonitor.actors.rollout import RolloutStore, apply_controls
from pymonitor.cli.rollout import app

runner = CliRunner()

SPEC_TOML = """
rollout_id = "cfg-9"
target_version = "9"
kind = "config"
selector = ["site=north"]
concurrency = 5
[waves]
canary = 2
percentages = [50, 100]
[gates]
min_success_rate = 0.9
"""


def files(tmp_path: Path, spec: str = SPEC_TOML) -> tuple[Path, Path, Path]:
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(spec)
    inventory = {f"d{i}": {"site": "north" if i < 8 else "south", "version": "8"} for i in range(12)}
    inv_path = tmp_path / "inventory.json"
    inv_path.write_bytes(orjson.dumps(inventory))
    return spec_path, inv_path, tmp_path / "rollouts.db"


def test_start_stores_the_rollout_and_status_shows_its_waves(tmp_path: Path) -> None:
    spec, inv, db = files(tmp_path)
    result = runner.invoke(app, ["start", str(spec), "--inventory", str(inv), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "rollout cfg-9 stored: config 9 to 8 devices in 3 waves (2, 2, 4)" in result.output
    shown = runner.invoke(app, ["status", "cfg-9", "--db", str(db)])
    assert "[running]" in shown.output and ">wave 0" in shown.output and "gate open" in shown.output
    listed = runner.invoke(app, ["status", "--db", str(db), "--json"])
    assert orjson.loads(listed.output) == {"cfg-9": "running"}
    assert "cfg-9" in runner.invoke(app, ["status", "--db", str(db)]).output


def test_start_refuses_a_rollout_that_targets_nobody(tmp_path: Path) -> None:
    spec, inv, db = files(tmp_path, SPEC_TOML.replace("site=north", "site=moon"))
    result = runner.invoke(app, ["start", str(spec), "--inventory", str(inv), "--db", str(db)])
    assert result.exit_code == 2 and "site=moon" in result.output and "none of the 12 devices" in result.output


def test_start_refuses_bad_files_and_a_repeated_id(tmp_path: Path) -> None:
    spec, inv, db = files(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert "not valid JSON" in runner.invoke(app, ["start", str(bad), "--inventory", str(inv), "--db", str(db)]).output
    missing = runner.invoke(app, ["start", str(tmp_path / "none.toml"), "--inventory", str(inv), "--db", str(db)])
    assert "cannot read the spec" in missing.output
    bad.write_text('{"d1": {"version": 3}}')
    assert (
        "['d1']: expected an object of label -> text"
        in runner.invoke(app, ["start", str(spec), "--inventory", str(bad), "--db", str(db)]).output
    )
    bad.write_text("[1]")
    assert (
        "expected an object of device -> labels"
        in runner.invoke(app, ["start", str(spec), "--inventory", str(bad), "--db", str(db)]).output
    )
    assert runner.invoke(app, ["start", str(spec), "--inventory", str(inv), "--db", str(db)]).exit_code == 0
    again = runner.invoke(app, ["start", str(spec), "--inventory", str(inv), "--db", str(db)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_pause_resume_abort_are_queued_for_the_hub_and_checked_against_the_state(tmp_path: Path) -> None:
    spec, inv, db = files(tmp_path)
    runner.invoke(app, ["start", str(spec), "--inventory", str(inv), "--db", str(db), "--json"])
    refused = runner.invoke(app, ["resume", "cfg-9", "--db", str(db)])
    assert refused.exit_code == 2 and "resume: rollout cfg-9 is running; only a paused rollout can" in refused.output
    paused = runner.invoke(app, ["pause", "cfg-9", "--db", str(db)])
    assert "pause of cfg-9 queued (#1)" in paused.output
    assert "queued    pause #1" in runner.invoke(app, ["status", "cfg-9", "--db", str(db)]).output

    store = RolloutStore(db)  # what the hub does at its next tick
    engine = store.load("cfg-9")
    engine.tick(1)
    apply_controls(store, engine, 2)
    store.save(engine)
    assert orjson.loads(runner.invoke(app, ["status", "cfg-9", "--db", str(db), "--json"]).output)["state"] == "paused"
    assert orjson.loads(runner.invoke(app, ["resume", "cfg-9", "--db", str(db), "--json"]).output)["seq"] == 2
    aborted = runner.invoke(app, ["abort", "cfg-9", "--db", str(db), "--reason", "wrong file"])
    assert aborted.exit_code == 0
    apply_controls(store, engine, 3)
    for cmd in engine.tick(4):
        engine.on_report(cmd.device, "rolled_back", "8", 5)
    store.save(engine)
    shown = runner.invoke(app, ["status", "cfg-9", "--db", str(db)]).output
    assert "[aborting]" in shown and "reason    wrong file" in shown and "in flight 2" in shown


def test_status_shows_rollback_and_unconfirmed_devices(tmp_path: Path) -> None:
    spec, inv, db = files(tmp_path)
    runner.invoke(app, ["start", str(spec), "--inventory", str(inv), "--db", str(db)])
    store = RolloutStore(db)
    engine = store.load("cfg-9")
    for cmd in engine.tick(0):
        engine.on_report(cmd.device, "applied", "9", 1)
    engine.abort(2)
    engine.tick(3)
    engine.on_report("d0", "rolled_back", "8", 4)
    engine.tick(3 + 60_000)
    store.save(engine)
    shown = runner.invoke(app, ["status", "cfg-9", "--db", str(db)]).output
    assert "rollback  2 changed: 1 back on their version, 0 pending, 1 never confirmed" in shown
    assert "unconfirmed d1" in shown


def test_commands_on_missing_files_or_rollouts_say_so(tmp_path: Path) -> None:
    spec, inv, db = files(tmp_path)
    assert "no such rollout state file" in runner.invoke(app, ["status", "--db", str(db)]).output
    runner.invoke(app, ["start", str(spec), "--inventory", str(inv), "--db", str(db)])
    assert "no rollout 'x' (known: cfg-9)" in runner.invoke(app, ["pause", "x", "--db", str(db)]).output
    assert "no rollout 'x'" in runner.invoke(app, ["status", "x", "--db", str(db)]).output
    not_db = tmp_path / "junk.db"
    not_db.write_bytes(b"x" * 4096)
    result = runner.invoke(app, ["status", "--db", str(not_db)])
    assert result.exit_code == 0  # a corrupt file is set aside and a clean one started, as every store does
