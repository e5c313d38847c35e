"""``pymonitor rollout``: start a fleet rollout, watch it, pause, resume or abort it.

The CLI writes to the rollout state file; the hub process that runs the engine sends the
commands. ``start`` stores a new rollout (refusing one that targets no device); ``pause``,
``resume`` and ``abort`` queue an operator command that the hub applies at its next tick
(``apply_controls``), so the CLI never races the engine for its state.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from pymonitor.actors.rollout import (
    RolloutEngine,
    RolloutError,
    RolloutStatus,
    RolloutStore,
    spec_from_dict,
)
from pymonitor.store.database import StoreError

from .output import fail, now_ms, print_json

app = typer.Typer(
    help="Fleet rollouts of a config or firmware version: waves, health gates, rollback.", no_args_is_help=True
)

DbOpt = Annotated[Path, typer.Option("--db", help="The rollout state file (SQLite) the hub runs rollouts from.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object (last line of stdout).")]
ACCEPTS = {"pause": ("running",), "resume": ("paused",), "abort": ("pending", "running", "paused")}


def _read_table(path: Path, what: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read the {what}: {exc.strerror}")
    try:
        return tomllib.loads(raw.decode()) if path.suffix == ".toml" else orjson.loads(raw)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        fail(f"{path}: the {what} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}")


def _open(db: Path, *, must_exist: bool = True) -> RolloutStore:
    if must_exist and not db.exists():
        fail(f"{db}: no such rollout state file")
    try:
        return RolloutStore(db)
    except StoreError as exc:
        fail(str(exc))


def _inventory(data: Any, path: Path) -> dict[str, dict[str, str]]:
    if not isinstance(data, dict):
        fail(f"{path}: expected an object of device -> labels")
    for device, labels in data.items():
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            fail(f"{path}: [{device!r}]: expected an object of label -> text, got {labels!r}")
    return {str(device): dict(labels) for device, labels in data.items()}


@app.command("start")
def start(
    spec_path: Annotated[Path, typer.Argument(help="The rollout spec, JSON or TOML.", metavar="SPEC")],
    inventory_path: Annotated[Path, typer.Option("--inventory", help="JSON object: device -> {label: value}.")],
    db: DbOpt = Path("rollouts.db"),
    json: Json = False,
) -> None:
    """Store a new rollout; the hub starts sending its canary at its next tick."""
    spec_data, inv_data = _read_table(spec_path, "spec"), _read_table(inventory_path, "inventory")
    try:
        spec = spec_from_dict(spec_data)
        engine = RolloutEngine.start(spec, _inventory(inv_data, inventory_path), now_ms())
    except RolloutError as exc:
        fail(str(exc))
    store = _open(db, must_exist=False)
    if spec.rollout_id in store.states():
        fail(f"rollout {spec.rollout_id!r} already exists in {db}; pick another rollout_id")
    store.save(engine)
    status = engine.status()
    if json:
        print_json(status.to_dict())
        return
    sizes = ", ".join(f"{w.size:,}" for w in status.waves)
    typer.echo(
        f"rollout {spec.rollout_id} stored: {spec.kind} {spec.target_version} to {status.targets:,} devices "
        f"in {len(status.waves)} waves ({sizes})"
    )


def _show(status: RolloutStatus) -> None:
    typer.echo(f"rollout   {status.rollout_id}  {status.kind} -> {status.target_version}  [{status.state}]")
    if status.reason:
        typer.echo(f"reason    {status.reason}")
    typer.echo(
        f"devices   {status.targets:,}: applied {status.applied:,}, failed {status.failed:,}, "
        f"health failed {status.health_failed:,}, timed out {status.timed_out:,}, in flight {status.in_flight:,}, "
        f"pending {status.pending:,}"
    )
    for w in status.waves:
        mark = ">" if w.index == status.wave and status.state in ("running", "paused") else " "
        typer.echo(
            f" {mark}wave {w.index}  {w.size:>8,}  applied {w.applied:>8,}  failed {w.failed + w.health_failed:>6,}  "
            f"timed out {w.timed_out:>6,}  in flight {w.in_flight:>6,}  gate {w.gate}"
        )
    if status.changed:
        typer.echo(
            f"rollback  {status.changed:,} changed: {status.rolled_back:,} back on their version, "
            f"{status.rollback_pending:,} pending, {status.rollback_unconfirmed:,} never confirmed"
        )
    if status.unconfirmed_devices:
        typer.echo("unconfirmed " + ", ".join(status.unconfirmed_devices))


@app.command("status")
def status(
    rollout_id: Annotated[str | None, typer.Argument(help="One rollout; all of them when left out.")] = None,
    db: DbOpt = Path("rollouts.db"),
    json: Json = False,
) -> None:
    """Progress per wave, counts and rollback state of one rollout, or the state of every rollout."""
    store = _open(db)
    if rollout_id is None:
        states = store.states()
        if json:
            print_json(states)
        else:
            for rid, state in states.items():
                typer.echo(f"{rid:<32} {state}")
        return
    try:
        current = store.load(rollout_id).status()
    except RolloutError as exc:
        fail(str(exc))
    pending = [f"{c.action} #{c.seq}" for c in store.pending_controls(rollout_id)]
    if json:
        print_json({**current.to_dict(), "pending_controls": pending})
        return
    _show(current)
    if pending:
        typer.echo("queued    " + ", ".join(pending) + " (applied by the hub at its next tick)")


def _control(action: str, rollout_id: str, db: Path, reason: str, json: bool) -> None:
    store = _open(db)
    state = store.states().get(rollout_id)
    if state is None:
        fail(f"{db}: no rollout {rollout_id!r} (known: {', '.join(store.ids()) or 'none'})")
    elif state not in ACCEPTS[action]:
        fail(f"{action}: rollout {rollout_id} is {state}; only a {' or '.join(ACCEPTS[action])} rollout can")
    seq = store.request(rollout_id, action, now_ms(), reason)
    if json:
        print_json({"rollout_id": rollout_id, "action": action, "seq": seq, "state": state})
        return
    typer.echo(f"{action} of {rollout_id} queued (#{seq}); the hub applies it at its next tick")


@app.command("pause")
def pause(rollout_id: str, db: DbOpt = Path("rollouts.db"), json: Json = False) -> None:
    """Stop sending applies (answers and abort thresholds still count)."""
    _control("pause", rollout_id, db, "", json)


@app.command("resume")
def resume(rollout_id: str, db: DbOpt = Path("rollouts.db"), json: Json = False) -> None:
    """Carry on a paused rollout."""
    _control("resume", rollout_id, db, "", json)


@app.command("abort")
def abort(
    rollout_id: str,
    db: DbOpt = Path("rollouts.db"),
    reason: Annotated[str, typer.Option(help="Why; shown in the status.")] = "aborted by the operator",
    json: Json = False,
) -> None:
    """Stop the rollout and roll back every device it changed."""
    _control("abort", rollout_id, db, reason, json)
