"""The ``pymonitor`` command: one sub-command per job, ``--json`` for scripts."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from pymonitor import __version__

from .config import app as config_app
from .extras import ANY_ARGUMENTS, missing_extra
from .fleet import fleet_app
from .fleet_import import app as import_app
from .output import fail, print_json
from .rollout import app as rollout_app

app = typer.Typer(
    help="PyMonitor: monitoring for things that are far away, numerous and badly connected.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object (last line of stdout).")]
BrokerOpt = Annotated[str, typer.Option(help="mqtt://host:port URL, or auto / embedded / mosquitto to start one.")]


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log more.")] = False) -> None:
    _logging(verbose)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1)] = 500,
    gateways: Annotated[int, typer.Option(min=1)] = 10,
    seconds: Annotated[float, typer.Option(min=1.0)] = 20.0,
    interval: Annotated[float, typer.Option(help="Seconds between samples of one device; 0 = auto.")] = 0.0,
    broker: BrokerOpt = "auto",
    db: Annotated[Path | None, typer.Option(help="Keep the hub database here (default: temporary).")] = None,
    seed: int = 1,
    cut_link: Annotated[bool, typer.Option(help="Cut one gateway's link partway.")] = True,
    json: JsonFlag = False,
) -> None:
    """Broker + hub + simulated fleet in one go, with a link cut; every reading accounted for."""
    from pymonitor.simulators.demo import DemoOptions, run_demo

    if gateways > devices:
        fail("--gateways must not exceed --devices")
    interval_s = interval if interval > 0 else max(1.0, devices / 10_000)
    options = DemoOptions(
        devices=devices,
        gateways=gateways,
        seconds=seconds,
        interval_s=interval_s,
        broker=broker,
        db=db,
        seed=seed,
        cut_link=cut_link,
    )
    progress = (lambda line: typer.echo(line, err=True)) if json else typer.echo
    summary = run_demo(options, progress)
    if json:
        print_json(summary.as_dict())
    else:
        s = summary
        typer.echo("")
        typer.echo(f"generated  {s.generated:>12,} readings by {s.devices:,} devices behind {s.gateways} gateways")
        typer.echo(f"stored     {s.stored:>12,} readings in the hub's SQLite store ({s.readings_per_s:,.0f}/s)")
        typer.echo(f"lost       {s.lost:>12,}")
        dropped = s.duplicate_frames_dropped
        typer.echo(f"duplicated {s.duplicates:>12,}   ({dropped} redelivered frames dropped by dedup)")
        if s.cut_gateway:
            cut = f"{s.cut_gateway} for {s.cut_s:.0f} s"
            typer.echo(f"link cut   {cut}; worst catch-up delay {s.worst_catch_up_s:.1f} s")
        typer.echo(f"broker     {s.broker}; fleet started in {s.startup_s:.1f} s; run took {s.wall_s:.1f} s")
        typer.echo(f"memory     peak RSS {s.peak_rss_mb:,.0f} MB (fleet and hub in this process)")
        typer.echo("result     " + ("OK: nothing lost, nothing duplicated" if s.ok else "FAILED: see the counts above"))
    if not summary.ok:
        raise typer.Exit(1)


@app.command()
def broker(
    kind: Annotated[str, typer.Option(help="embedded (amqtt) or mosquitto.")] = "embedded",
    port: Annotated[int | None, typer.Option(help="Default: 1883 if free, else a free port.")] = None,
    host: str = "127.0.0.1",
) -> None:
    """Run an MQTT broker in the foreground until Ctrl-C."""
    import threading

    from pymonitor.broker import BrokerStartError, start_broker

    try:
        running = start_broker("embedded-thread" if kind == "embedded" else kind, host=host, port=port)
    except BrokerStartError as exc:
        fail(str(exc))
        return
    typer.echo(f"{kind} broker listening on {running.url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


def _run_config(config: Any, seconds: float | None, json: bool, path: Path | None = None) -> None:
    from pymonitor.actors.runtime.node import RunningNode, run_until_signal, start_node
    from pymonitor.deploy import ConfigError

    try:
        node = start_node(config, path)
    except ConfigError as exc:  # files the config names (signing key, alerting rules) are checked at start
        fail(str(exc))
    typer.echo(f"node {config.node.name} connected to {node.broker_url} (Ctrl-C or SIGTERM to stop)", err=True)

    def report(n: RunningNode) -> None:
        typer.echo(orjson.dumps(n.status()).decode(), err=True)

    run_until_signal(node, seconds=seconds, report=report)
    if json:
        print_json({"node": config.node.name, "stopped": True})


def _run_options(data: dict[str, Any], seconds: float | None) -> None:
    """Run a node described by command-line options, checked like a config file."""
    from pymonitor.deploy import ConfigError, parse_config

    try:
        cfg = parse_config(data, "command line")
    except ConfigError as exc:
        fail(str(exc))
        return
    _run_config(cfg, seconds, False)


@app.command()
def node(
    config: Annotated[Path, typer.Option("--config", "-c", help="The node's TOML file.")],
    seconds: Annotated[float | None, typer.Option(help="Stop after this long (default: run until a signal).")] = None,
    json: JsonFlag = False,
) -> None:
    """Run a node from its TOML config until SIGTERM/SIGINT."""
    from pymonitor.deploy import ConfigError, load_config

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
        return
    _run_config(cfg, seconds, json, config)


@app.command()
def hub(
    broker: BrokerOpt = "auto",
    db: Path = Path("pymonitor.db"),
    fleet: str = "default",
    name: str = "hub",
    seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
) -> None:
    """Run a hub: subscribe to a fleet and store its readings in SQLite."""
    data = {"node": {"name": name, "fleet": fleet}, "broker": {"url": broker}, "hub": {"db": str(db)}}
    _run_options(data, seconds)


@app.command()
def simulate(
    broker: Annotated[str, typer.Option(help="mqtt://host:port of the broker the hub listens on.")],
    devices: Annotated[int, typer.Option(min=1)] = 500,
    gateways: Annotated[int, typer.Option(min=1)] = 10,
    interval: Annotated[float, typer.Option(help="Seconds between samples of one device.")] = 1.0,
    speed: Annotated[float, typer.Option(help="Clock speed: 60 = one simulated minute per second.")] = 1.0,
    seed: int = 1,
    fleet: str = "default",
    outbox_dir: Annotated[
        Path | None, typer.Option(help="Keep each gateway's outbox in a file here (survives kill -9).")
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
) -> None:
    """Run a simulated fleet (N devices behind G gateways) against a broker."""
    simulator: dict[str, object] = {"devices": devices, "gateways": gateways, "interval_s": interval, "seed": seed}
    if outbox_dir is not None:
        simulator["outbox_dir"] = str(outbox_dir)
    data = {
        "node": {"name": "simulator", "fleet": fleet},
        "broker": {"url": broker},
        "clock": {"speed": speed},
        "simulator": simulator,
    }
    _run_options(data, seconds)


@app.command()
def pub(
    topic: Annotated[str, typer.Option(help="Topic to publish on.")],
    broker: Annotated[str, typer.Option(help="mqtt://host:port")] = "mqtt://127.0.0.1:1883",
    tag: Annotated[str | None, typer.Option(help="Message tag, e.g. event.v1 (with --data).")] = None,
    data: Annotated[str | None, typer.Option(help="The message fields as a JSON object.")] = None,
    raw: Annotated[Path | None, typer.Option(help="Publish this file's bytes as they are (- for stdin).")] = None,
    retain: bool = False,
    sign_key: Annotated[
        Path | None,
        typer.Option(
            help="Sign the command with this ed25519 key (PEM) and publish it as command.signed.v1; "
            "the sequence is kept in KEY.seq beside the key."
        ),
    ] = None,
) -> None:
    """Publish one message (validated by the codec) or raw bytes."""
    from pymonitor.messages import MessageError

    from .mqtt_tools import build_frame, publish

    if raw is not None:
        frame = sys.stdin.buffer.read() if str(raw) == "-" else raw.read_bytes()
    elif tag is not None and data is not None:
        try:
            frame = build_frame(tag, data)
        except (MessageError, ValueError) as exc:
            fail(str(exc))
            return
    else:
        fail("give --tag and --data, or --raw FILE")
        return
    if sign_key is not None:
        frame = _signed_frame(frame, sign_key)
    try:
        publish(broker, topic, frame, retain=retain)
    except (ConnectionError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"published {len(frame)} bytes to {topic}", err=True)


def _signed_frame(frame: bytes, key_path: Path) -> bytes:
    """``frame`` (a control command) as a command.signed.v1 signed with the key file, on the next sequence."""
    import time

    from pymonitor.actors.configsync.commands import next_command_seq, sign_command
    from pymonitor.actors.configsync.errors import ConfigSyncError
    from pymonitor.actors.configsync.signing import load_private_key
    from pymonitor.messages import encode

    now_ms = time.time_ns() // 1_000_000
    try:
        key = load_private_key(key_path)
        signed = sign_command(frame, key, now_ms, next_command_seq(key_path, now_ms))
    except ConfigSyncError as exc:
        fail(f"--sign-key: {exc}")
    typer.echo(f"signed as command.signed.v1 by key {signed.key_id}, seq {signed.seq}", err=True)
    return encode(signed)


@app.command()
def sub(
    topic: Annotated[str, typer.Option(help="Topic filter, e.g. 'pm/v1/+/+/up/#'.")] = "pm/v1/#",
    broker: Annotated[str, typer.Option(help="mqtt://host:port")] = "mqtt://127.0.0.1:1883",
    count: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Print every frame as a JSON line (decoded CBOR; bad frames show the codec's error)."""
    from .mqtt_tools import subscribe

    try:
        subscribe(broker, topic, count=count, timeout_s=timeout)
    except ValueError as exc:
        fail(str(exc))


@app.command()
def stats(
    db: Annotated[Path, typer.Option(help="The hub's SQLite file.")] = Path("pymonitor.db"),
    json: JsonFlag = False,
) -> None:
    """What the hub store holds: nodes, devices, frames, readings, dead letters."""
    from pymonitor.store import HubStore

    if not db.exists():
        fail(f"{db}: no such store")
    store = HubStore(db)
    try:
        data = store.stats()
        data["per_node"] = store.per_node()
        data["accounting"] = store.reading_accounting()
        data["recent_events"] = store.recent_events(5)
        latest = store.conn.execute("SELECT MAX(day) FROM traffic").fetchone()[0]
        data["traffic"] = store.traffic(latest) if latest else []
        from pymonitor.actors.hub.retention import RetentionSettings
        from pymonitor.store.hub_retention import HubRetention

        tiers = HubRetention(db, RetentionSettings())
        try:
            data["retention"] = tiers.tier_stats()  # rows per tier, watermarks, drops, bytes
        finally:
            tiers.close()
    finally:
        store.close()
    if json:
        print_json(data)
        return
    typer.echo(f"store     {data['path']}")
    for key in ("nodes", "nodes_online", "devices", "metrics", "frames", "readings", "events", "dead_letters"):
        typer.echo(f"{key:<13} {data[key]:>12,}")
    typer.echo(f"duplicates    {data['accounting']['duplicates']:>12,}")
    if data["traffic"]:
        day = data["traffic"][0]["day"]
        for direction in ("up", "down"):
            total = sum(row["bytes"] for row in data["traffic"] if row["direction"] == direction)
            typer.echo(f"{direction + ' ' + day:<13} {total:>12,} bytes")
    tiers = data["retention"]
    typer.echo("tiers         " + ", ".join(f"{name} {rows:,}" for name, rows in tiers["rows"].items()))
    typer.echo(f"file          {tiers['file_bytes']:>12,} bytes ({tiers['used_bytes']:,} in use)")
    if tiers["dropped"]:
        typer.echo("dropped       " + ", ".join(f"{key} {rows:,}" for key, rows in sorted(tiers["dropped"].items())))
    for row in data["per_node"][:20]:
        state = "online " if row["online"] else "offline"
        typer.echo(f"  {row['node']:<20} {state} frames {row['frames']:>8,} readings {row['readings']:>10,}")


outbox_app = typer.Typer(help="A node's durable outbox (store-and-forward).", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("status")
def outbox_status(
    path: Annotated[Path, typer.Option("--path", help="The node's outbox file.")],
    json: JsonFlag = False,
) -> None:
    """Frames, readings and bytes waiting per priority; lifetime tallies (acks, resends, evictions)."""
    import sqlite3

    from pymonitor.store.outbox import read_status

    if not path.exists():
        fail(f"{path}: no such outbox")
    try:
        data = read_status(path)  # read-only: the node that owns the file may be running
    except sqlite3.DatabaseError as exc:
        fail(f"{path}: not a readable outbox ({exc})")
        return
    if json:
        print_json(data)
        return
    typer.echo(f"outbox    {data['path']}  {data['size_bytes']:,} bytes waiting (schema {data['schema_version']})")
    for priority, row in data["pending"].items():
        frames, readings, size = row["frames"], row["readings"] or 0, row["bytes"] or 0
        typer.echo(f"  {priority:<9} frames {frames:>8,}  readings {readings:>10,}  bytes {size:>12,}")
    for name, value in sorted(data["tallies"].items()):
        typer.echo(f"  {name:<28} {value:>12,}")


anomaly_app = typer.Typer(help="Streaming anomaly scores of one series (see docs/anomaly.md).", no_args_is_help=True)
app.add_typer(anomaly_app, name="anomaly")


@anomaly_app.command("score")
def anomaly_score(
    in_path: Annotated[Path, typer.Option("--in", help="NAB-format CSV: header 'timestamp,value'.")],
    out_path: Annotated[Path, typer.Option("--out", help="Write 'timestamp,value,anomaly_score' here.")],
    learn: Annotated[
        int | None, typer.Option(min=0, help="Rows scored 0 while learning; default NAB's 15%, at most 750.")
    ] = None,
    strict_order: Annotated[
        bool, typer.Option("--strict-order", help="Refuse repeated or earlier timestamps instead of noting them.")
    ] = False,
) -> None:
    """Score every row of a series in file order, one value at a time (no look-ahead)."""
    import csv

    from pymonitor.actors.anomaly import AnomalyError, read_series_csv
    from pymonitor.actors.anomaly.detector import DetectorParams, StreamDetector
    from pymonitor.actors.anomaly.nab_score import probation_rows

    try:
        stamps, _, values, notes = read_series_csv(in_path, strict_order=strict_order)
    except AnomalyError as exc:
        fail(str(exc))
        return
    if notes:
        typer.echo(f"warning: {len(notes)} row(s) out of time order, scored in file order; first: {notes[0]}", err=True)
    rows = len(values)
    detector = StreamDetector(DetectorParams(learning_points=probation_rows(rows) if learn is None else learn))
    try:
        with out_path.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["timestamp", "value", "anomaly_score"])
            for stamp, value in zip(stamps, values.tolist(), strict=True):
                writer.writerow([stamp, repr(value), f"{detector.update(value):.6f}"])
    except OSError as exc:
        fail(f"{out_path}: cannot write ({exc.strerror})")
    typer.echo(f"scored {rows:,} rows -> {out_path}", err=True)


storage_app = typer.Typer(help="Retention tiers and disk use on a node (see docs/summaries.md).", no_args_is_help=True)
app.add_typer(storage_app, name="storage")


@storage_app.command("plan")
def storage_plan(
    metrics_per_min: Annotated[float, typer.Option(min=0.001, help="Readings per minute, all series together.")],
    days: Annotated[float, typer.Option(min=0.001, help="Days of operation to project.")] = 90.0,
    series: Annotated[
        int | None, typer.Option(min=1, help="Distinct series (default: one reading a minute each).")
    ] = None,
    raw_days: Annotated[float, typer.Option(min=0)] = 7.0,
    minute_days: Annotated[float, typer.Option(min=0)] = 90.0,
    hour_days: Annotated[float, typer.Option(min=0)] = 365.0,
    day_days: Annotated[float, typer.Option(min=0)] = 1825.0,
    json: JsonFlag = False,
) -> None:
    """Rows and bytes per retention tier, from row sizes measured in a real SQLite file."""
    from pymonitor.actors.summary.retention import plan_storage, tiers_with

    plan = plan_storage(metrics_per_min, days, tiers_with(raw_days, minute_days, hour_days, day_days), series)
    if json:
        print_json(plan.as_dict())
        return
    typer.echo(f"{plan.metrics_per_min:,.0f} readings/min over {plan.series:,} series, after {plan.days:g} days")
    for t in plan.tiers:
        typer.echo(
            f"  {t.tier:<4} {t.keep_days:>6g} d {t.rows:>14,} rows x {t.bytes_per_row:>7.1f} B = {t.bytes:>15,} B"
        )
    typer.echo(f"  total {plan.total_bytes:>44,} B ({plan.total_bytes / 1e9:.2f} GB)")
    typer.echo(f"  row sizes {plan.basis}")


app.add_typer(rollout_app, name="rollout")
app.add_typer(import_app, name="import")
app.add_typer(fleet_app, name="fleet")
app.add_typer(config_app, name="config")
try:
    from .alerts import alerts_app, notify_app
    from .api import api_app
except ImportError as missing:  # the core install: these say which extra to add, the rest of the CLI works
    for group in ("alerts", "notify", "api"):
        missing_extra(app, group, "alerts,api" if group == "api" else "alerts", missing)
else:
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(notify_app, name="notify")
    app.add_typer(api_app, name="api")


@app.command(context_settings=ANY_ARGUMENTS)
def bench(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Benchmark: ingest.")]) -> None:
    """Run a benchmark; it prints one JSON object as its last line (see docs/benchmarks.md)."""
    from pymonitor.bench import BENCHMARKS

    runner = BENCHMARKS.get(name)
    if runner is None:
        fail(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
        return
    try:
        code = runner(list(ctx.args))
    except ImportError as exc:  # a bench of an extra's feature on the core install
        fail(f"bench {name} needs {exc.name or exc}, which is in an extra: pip install 'pymonitor[dev]' has them all")
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
