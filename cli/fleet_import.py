"""``pymonitor import``: load readings history and a device inventory from CSV into the hub store.

Bad rows never stop an import: they are counted by reason and written, with their line number,
to a rejects CSV. A wrong header stops it before anything is stored (exit 2). See docs/import.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pymonitor.store.database import StoreError
from pymonitor.store.fleet_import import ImportFormatError, ImportReport, import_inventory, import_readings
from pymonitor.store.hub_store import HubStore

from .output import fail, now_ms, print_json

app = typer.Typer(help="Import readings history and a device inventory (CSV) into the hub store.", no_args_is_help=True)

DbOpt = Annotated[Path, typer.Option("--db", help="The hub store (SQLite) to import into.")]
FileArg = Annotated[Path, typer.Argument(help="The CSV file to import.")]
RejectsOpt = Annotated[
    Path | None, typer.Option("--rejects", help="Where to write rejected rows (default: next to the store).")
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object (last line of stdout).")]


def _show(report: ImportReport, json: bool) -> None:
    if json:
        print_json(report.to_dict())
        return
    seconds = max(report.finished_ms - report.started_ms, 1) / 1000
    total = report.rows_ok + report.rows_bad + report.duplicates
    typer.echo(f"import {report.kind} #{report.run_id} from {report.file}")
    typer.echo(f"  stored      {report.rows_ok:>12,}")
    if report.kind == "inventory":
        typer.echo(f"  updated     {report.updated:>12,}  (devices already in the inventory)")
    else:
        typer.echo(f"  duplicates  {report.duplicates:>12,}  (same device, metric and ts: kept once)")
    typer.echo(f"  new devices {report.created_devices:>12,}")
    typer.echo(f"  rejected    {report.rows_bad:>12,}")
    for code, count in sorted(report.rejected.items(), key=lambda item: (-item[1], item[0])):
        typer.echo(f"    {code:<18} {count:>10,}")
    if report.rejects_path:
        typer.echo(f"  rejected rows (line, reason, row): {report.rejects_path}")
    typer.echo(f"  {total:,} rows in {seconds:.1f} s ({total / seconds:,.0f} rows/s)")


def _run(db: Path, work: Callable[[HubStore], ImportReport]) -> ImportReport:
    try:
        store = HubStore(db)
    except StoreError as exc:
        fail(str(exc))
    try:
        return work(store)
    except ImportFormatError as exc:
        fail(str(exc))
    finally:
        store.close()


@app.command("readings")
def readings(
    file: FileArg,
    db: DbOpt,
    allow_unknown: Annotated[
        bool, typer.Option("--allow-unknown", help="Create devices the inventory does not list instead of rejecting.")
    ] = False,
    rejects: RejectsOpt = None,
    json: Json = False,
) -> None:
    """Readings as ``device,ts,metric,value`` rows (ts: ISO 8601, or epoch seconds/milliseconds)."""
    report = _run(
        db,
        lambda store: import_readings(store, file, clock=now_ms, allow_unknown=allow_unknown, rejects_path=rejects),
    )
    _show(report, json)


@app.command("inventory")
def inventory(file: FileArg, db: DbOpt, rejects: RejectsOpt = None, json: Json = False) -> None:
    """Devices as ``device,gateway,site,location,battery_type,model,firmware[,label...]`` rows (upserted)."""
    report = _run(db, lambda store: import_inventory(store, file, clock=now_ms, rejects_path=rejects))
    _show(report, json)
