"""``pymonitor config``: remote configuration of nodes from the hub's config DB.

``set`` edits a node's overrides (or, with ``--group``, a group layer), validates the result for
every node it reaches with the node's own schema, stores a new version and, with ``--broker``
and ``--key``, signs it and publishes it retained so an offline node gets it on reconnect.
``history``/``diff`` read the versions sent; ``rollback`` sends an old version's content again
as a new version. Exit codes: 0 done, 2 refused (the message names the field and the reason).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer

from pymonitor.actors.configsync import (
    ConfigSyncError,
    PatchOp,
    generate_key,
    key_id,
    load_private_key,
    save_private_key,
    save_public_key,
    to_toml,
)
from pymonitor.actors.configsync.desired import DesiredState
from pymonitor.actors.configsync.service import ConfigService, Sent, broker_publisher, parse_assignment
from pymonitor.broker import BrokerUrlError, TopicError, parse_broker_url
from pymonitor.store.config_store import ConfigStore
from pymonitor.store.database import StoreError

app = typer.Typer(
    help="Remote node configuration: set, diff, history, rollback; signed, retained.", no_args_is_help=True
)

DEFAULT_DB = Path("pymonitor-config.db")
DbOpt = Annotated[Path, typer.Option("--db", help="The hub's config DB (SQLite): every version and report.")]
BrokerOpt = Annotated[
    str | None, typer.Option("--broker", help="Publish to this broker (mqtt://host:port); without it, only store.")
]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="The hub's signing key (see `config keygen`).")]
FleetOpt = Annotated[str, typer.Option("--fleet", help="The fleet the nodes belong to (topic prefix).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object (last line of stdout).")]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _out(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
    sys.stdout.flush()


def _error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _author() -> str:
    return os.environ.get("USER", "cli")


@contextlib.contextmanager
def _service(
    db: Path, fleet: str, broker: str | None = None, key_path: Path | None = None, *, must_exist: bool = True
) -> Iterator[ConfigService]:
    """The service over the DB; publishing when a broker is given (which then needs the key)."""
    if must_exist and not db.exists():
        _error(f"{db}: no such config DB (create it with `config set`)")
    if broker is not None and key_path is None:
        _error("--broker needs --key: nodes only accept signed desired state")
    try:
        key = load_private_key(key_path) if key_path is not None else None
        store = ConfigStore(db)
    except (ConfigSyncError, StoreError) as exc:
        _error(str(exc))
    try:
        with contextlib.ExitStack() as stack:
            publish = None
            if broker is not None:
                address = parse_broker_url(broker)
                publish = stack.enter_context(broker_publisher(address, f"{fleet}.config-cli.{os.getpid()}"))
            yield ConfigService(store, fleet=fleet, now_ms=_now_ms, key=key, publish=publish, author=_author())
    except (ConfigSyncError, TopicError, BrokerUrlError, StoreError) as exc:
        _error(str(exc))
    finally:
        store.close()


def _version_row(state: DesiredState) -> dict[str, Any]:
    return {
        "version": state.version,
        "hash": state.hash,
        "created_ms": state.created_ms,
        "author": state.author,
        "note": state.note,
        "restores": state.restores,
    }


def _sent_rows(sent: list[Sent]) -> list[dict[str, Any]]:
    return [{"node": x.node, **_version_row(x.state), "published": x.message is not None} for x in sent]


def _report_sent(sent: list[Sent], json: bool, *, nothing: str = "no node's config changed") -> None:
    rows = _sent_rows(sent)
    if json:
        _out({"sent": rows})
        return
    if not rows:
        typer.echo(nothing)
    for row in rows:
        how = "signed and published (retained)" if row["published"] else "stored; not published (no --broker)"
        typer.echo(f"{row['node']}: version {row['version']} ({row['hash'][:12]}) {how}")


@app.command()
def keygen(
    key: Annotated[Path, typer.Option("--key", help="Where to write the private key (0600).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing key.")] = False,
    json: Json = False,
) -> None:
    """Create the hub's signing key and its public key (``<key>.pub.pem``, for the nodes' trusted_keys/)."""
    if key.exists() and not force:
        _error(f"{key}: exists; nodes trust its public key (use --force to replace it)")
    private = generate_key()
    public_path = key.with_name(key.name + ".pub.pem")
    try:
        save_private_key(private, key)
        save_public_key(private.public_key(), public_path)
    except ConfigSyncError as exc:
        _error(str(exc))
    kid = key_id(private.public_key())
    if json:
        _out({"key": str(key), "public_key": str(public_path), "key_id": kid})
    else:
        typer.echo(f"key {kid}: private {key}, public {public_path} (copy it into each node's trusted keys)")


@app.command()
def get(node: str, db: DbOpt = DEFAULT_DB, fleet: FleetOpt = "default", json: Json = False) -> None:
    """The config sent to a node last, its layers and its latest report."""
    with _service(db, fleet) as svc:
        history = svc.history(node)
        reports = svc.store.reports(node, limit=1)
        data: dict[str, Any] = {
            "node": node,
            "groups": svc.groups_of(node),
            "overrides": svc.node_layer(node),
            "sent": {**_version_row(history[-1]), "doc": history[-1].doc} if history else None,
            "report": None if not reports else _report_row(reports[0]),
            "lagging": svc.unreported(node) is not None,
        }
    if json:
        _out(data)
        return
    sent = data["sent"]
    typer.echo(f"node {node}, groups: {', '.join(data['groups']) or '(none)'}")
    if sent is None:
        typer.echo("nothing sent yet")
    else:
        typer.echo(f"version {sent['version']} ({sent['hash'][:12]}), by {sent['author'] or '?'}")
        typer.echo(to_toml(sent["doc"]).rstrip())
    report = data["report"]
    if report is not None:
        why = f": {report['reason']}: {report['detail']}" if report["status"] == "rejected" else ""
        checks = f" (failing: {', '.join(report['failed_checks'])})" if report["failed_checks"] else ""
        typer.echo(f"last report: version {report['version']} {report['status']}{why}{checks}")
    if data["lagging"]:
        typer.echo("lagging: the node has not reported on the latest version yet")


def _report_row(report: Any) -> dict[str, Any]:
    keys = ("version", "status", "reason", "detail", "ts_ms", "failed_checks")
    return {k: getattr(report, k) for k in keys}


@app.command("set")
def set_(
    target: Annotated[str, typer.Argument(help="The node (or, with --group, the group) to change.")],
    assignments: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE, dotted keys, TOML values (clock.speed=2.0).")
    ] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="A dotted key to remove (repeatable).")] = None,
    group: Annotated[bool, typer.Option("--group", help="TARGET is a group: change every member.")] = False,
    note: Annotated[str, typer.Option("--note", help="Why, kept in the history.")] = "",
    db: DbOpt = DEFAULT_DB,
    broker: BrokerOpt = None,
    key: KeyOpt = None,
    fleet: FleetOpt = "default",
    json: Json = False,
) -> None:
    """Change keys of a node or group; validated for every node it reaches before anything is stored."""
    try:
        ops = [parse_assignment(a) for a in assignments or []]
    except ConfigSyncError as exc:
        _error(str(exc))
    ops += [PatchOp(op="remove", path=path) for path in remove or []]
    if not ops:
        _error("nothing to change: give KEY=VALUE or --remove KEY")
    with _service(db, fleet, broker, key, must_exist=False) as svc:
        sent = svc.patch_group(target, ops, note=note) if group else svc.patch_node(target, ops, note=note)
    _report_sent(sent, json, nothing=f"group {target} stored; no member's config changed" if group else "no change")


@app.command()
def groups(
    node: str,
    names: Annotated[list[str] | None, typer.Argument(help="The node's groups, lowest precedence first.")] = None,
    db: DbOpt = DEFAULT_DB,
    broker: BrokerOpt = None,
    key: KeyOpt = None,
    fleet: FleetOpt = "default",
    json: Json = False,
) -> None:
    """Show a node's groups, or set them (which may change its config)."""
    with _service(db, fleet, broker, key, must_exist=not names) as svc:
        sent = svc.set_groups(node, names) if names else []
        current = svc.groups_of(node)
    if json:
        _out({"node": node, "groups": current, "sent": _sent_rows(sent)})
        return
    typer.echo(f"{node}: {', '.join(current) or '(no groups)'}")
    if names:
        _report_sent(sent, json)


@app.command()
def history(node: str, db: DbOpt = DEFAULT_DB, fleet: FleetOpt = "default", json: Json = False) -> None:
    """Every version sent to a node, oldest first."""
    with _service(db, fleet) as svc:
        rows = [_version_row(s) for s in svc.history(node)]
    if json:
        _out({"node": node, "versions": rows})
        return
    if not rows:
        typer.echo(f"{node}: nothing sent yet")
    for row in rows:
        what = f"rollback to {row['restores']}" if row["restores"] else row["note"]
        typer.echo(f"{row['version']:>4}  {row['hash'][:12]}  {row['author'] or '?':<12} {what}".rstrip())


@app.command()
def diff(
    node: str,
    from_version: Annotated[int | None, typer.Option("--from", help="Default: the version before --to.")] = None,
    to_version: Annotated[int | None, typer.Option("--to", help="Default: the latest version.")] = None,
    db: DbOpt = DEFAULT_DB,
    fleet: FleetOpt = "default",
    json: Json = False,
) -> None:
    """What changed between two versions sent to a node."""
    with _service(db, fleet) as svc:
        ops = svc.diff(node, from_version, to_version)
    if json:
        _out({"node": node, "ops": [{"op": o.op, "path": o.path, "value": o.value} for o in ops]})
        return
    if not ops:
        typer.echo("no difference")
    for o in ops:
        typer.echo(f"- {o.path}" if o.op == "remove" else f"~ {o.path} = {orjson.dumps(o.value).decode()}")


@app.command()
def rollback(
    node: str,
    version: int,
    note: Annotated[str, typer.Option("--note", help="Why, kept in the history.")] = "",
    db: DbOpt = DEFAULT_DB,
    broker: BrokerOpt = None,
    key: KeyOpt = None,
    fleet: FleetOpt = "default",
    json: Json = False,
) -> None:
    """Send the content of an old version again, as a new version."""
    with _service(db, fleet, broker, key) as svc:
        sent = svc.rollback(node, version, note=note)
    _report_sent([sent], json)


@app.command()
def publish(
    node: str, db: DbOpt = DEFAULT_DB, broker: BrokerOpt = None, key: KeyOpt = None, fleet: FleetOpt = "default",
    json: Json = False,
) -> None:  # fmt: skip
    """Sign and publish (retained) the latest version of a node again, e.g. after `set` without --broker."""
    if broker is None:
        _error("publish needs --broker and --key")
    with _service(db, fleet, broker, key) as svc:
        sent = svc.publish(node)
    _report_sent([sent], json)
