"""``pymonitor alerts`` and ``pymonitor notify``: what fires, what happened, ack, silence, dry-run routes.

Reads and writes the alerting actor's history file (``--db``). ``ack`` and ``silence`` write
rows the running actor picks up at its next tick (it polls the store), so the CLI never needs
the actor to be reachable. ``test-route`` and ``notify test`` read the ``[alerting]`` config
(``--config``): the first says where an alert with given labels would go and why, the second
sends a real test message through one channel, with its retries.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, cast

import typer

from pymonitor.actors.alerting.alert import SEVERITIES, Alert, Severity, fingerprint, is_severity
from pymonitor.actors.alerting.channels import AttemptRecord, Deliverer, OutgoingMessage, build_channel
from pymonitor.actors.alerting.config import AlertingConfig, load_config
from pymonitor.actors.alerting.errors import AlertConfigError
from pymonitor.actors.alerting.fields import duration_ms
from pymonitor.actors.alerting.render import render
from pymonitor.actors.alerting.schedule import is_emergency
from pymonitor.actors.alerting.silences import Muter, Silence
from pymonitor.store.alert_store import AlertStore, NotificationRecord
from pymonitor.store.database import StoreError

from .output import fail, now_ms, print_json

alerts_app = typer.Typer(
    help="Alerts: list firing ones, history, acknowledge, silence, test routes.", no_args_is_help=True
)
notify_app = typer.Typer(help="Notification channels: send a test message.", no_args_is_help=True)

DbOpt = Annotated[Path, typer.Option("--db", help="The alerting actor's history file (SQLite).")]
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The TOML file with the [alerting] config.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object (last line of stdout).")]


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _open(db: Path) -> AlertStore:
    if not db.exists():
        fail(f"{db}: no such alert history file")
    try:
        return AlertStore(db)
    except StoreError as exc:
        fail(str(exc))


def _config(path: Path) -> AlertingConfig:
    try:
        return load_config(path, now_ms=now_ms())
    except AlertConfigError as exc:
        fail(str(exc))


def _duration(raw: str, what: str) -> int:
    try:
        return duration_ms(raw, what)
    except AlertConfigError as exc:
        fail(str(exc))


# --- alerts --------------------------------------------------------------------------------------


@alerts_app.command("list")
def list_alerts(db: DbOpt = Path("alerts.db"), json: Json = False) -> None:
    """Alerts firing now (their latest transition is ``firing``), newest first."""
    store = _open(db)
    rows = store.active()
    store.close()
    if json:
        print_json({"firing": rows})
        return
    if not rows:
        typer.echo("no alerts firing")
        return
    for row in rows:
        typer.echo(f"{row['severity']:<9} {_when(row['starts_ms'])}  {row['fingerprint']}  {row['summary']}")
    typer.echo(f"{len(rows)} firing")


@alerts_app.command("history")
def history(
    db: DbOpt = Path("alerts.db"),
    fingerprint_: Annotated[str | None, typer.Option("--fingerprint", help="Only this alert.")] = None,
    since: Annotated[str | None, typer.Option(help='Only the last so long, e.g. "24h", "7d".')] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many transitions.")] = 50,
    json: Json = False,
) -> None:
    """Alert transitions, newest first, each with its notifications, delivery attempts, acks and escalations."""
    since_ms = None if since is None else now_ms() - _duration(since, "--since")
    store = _open(db)
    rows = store.history(since_ms=since_ms, fingerprint=fingerprint_, limit=limit)
    store.close()
    if json:
        print_json({"history": rows})
        return
    if not rows:
        typer.echo("no alert history")
        return
    for row in rows:
        typer.echo(f"{_when(row['recorded_ms'])}  {row['state']:<8} {row['severity']:<9} {row['fingerprint']}  "
                   f"{row['summary']}")  # fmt: skip
        for note in row["notifications"]:
            tries = ", ".join(f"#{a['attempt']} {a['status']}" for a in note["attempts"]) or "no attempt yet"
            typer.echo(f"    notified {note['receiver']} via {note['channel']} to {note['recipient']}: {tries}")
        for ack in row["acknowledgements"]:
            typer.echo(f"    {ack['action']} by {ack['by']} via {ack['via']} at {_when(ack['ts_ms'])}: {ack['detail']}")
        for step in row["escalations"]:
            typer.echo(f"    escalation {step['chain']} level {step['level'] + 1}: {step['reason']}")
        for quiet in row["suppressions"]:
            typer.echo(f"    {quiet['kind']} at {_when(quiet['ts_ms'])}: {quiet['reason']}")


@alerts_app.command("ack")
def ack(
    alert: Annotated[str, typer.Argument(help="The alert's fingerprint (or a unique prefix of it).")],
    by: Annotated[str, typer.Option(help="Who takes it.")],
    db: DbOpt = Path("alerts.db"),
    comment: Annotated[str, typer.Option(help="Why, or what is being done.")] = "acknowledged from the CLI",
    json: Json = False,
) -> None:
    """Acknowledge an alert: its escalation stops at the actor's next tick; the ack is in the history."""
    store = _open(db)
    matches = sorted(fp for fp in store.fingerprints_recorded() if fp.startswith(alert))
    if len(matches) != 1:
        store.close()
        fail(f"{alert!r} matches {'no alert' if not matches else f'{len(matches)} alerts'} in {db}")
    now = now_ms()
    store.record_acknowledgement(matches[0], "ack", by, "cli", True, comment, now)
    store.close()
    if json:
        print_json({"acknowledged": matches[0], "by": by, "at_ms": now})
    else:
        typer.echo(f"acknowledged {matches[0]} as {by}")


@alerts_app.command("silence")
def silence(
    matcher: Annotated[list[str], typer.Option("--matcher", "-m", help='A label matcher, e.g. site="Site A".')],
    duration: Annotated[str, typer.Option(help='How long, e.g. "2h".')],
    by: Annotated[str, typer.Option(help="Who sets it.")],
    comment: Annotated[str, typer.Option(help="Why (shown when an alert is muted by it).")],
    db: DbOpt = Path("alerts.db"),
    json: Json = False,
) -> None:
    """Mute alerts matching every matcher for a while; the running actor applies it at its next tick."""
    now = now_ms()
    spec = {"id": "cli", "matchers": matcher, "duration": duration, "created_by": by, "comment": comment}
    try:
        parsed = Silence.parse(spec, "silence", now_ms=now)
    except AlertConfigError as exc:
        fail(str(exc))
    store = _open(db)
    matchers = [str(m) for m in parsed.matchers]
    silence_id = store.add_silence(matchers, parsed.starts_ms, parsed.ends_ms, by, comment, now)
    store.close()
    if json:
        print_json(
            {"silence": silence_id, "matchers": matchers, "starts_ms": parsed.starts_ms, "ends_ms": parsed.ends_ms}
        )
    else:
        typer.echo(f"silence {silence_id}: {', '.join(matchers)} until {_when(parsed.ends_ms)} UTC")


def _labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--label: expected name=value, got {pair!r}")
        labels[name] = value
    return labels


@alerts_app.command("test-route")
def test_route(
    config: ConfigOpt,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="An alert label, name=value.")] = None,
    rule: Annotated[str, typer.Option(help="The alert's rule name.")] = "test",
    severity: Annotated[str, typer.Option(help=f"One of {', '.join(SEVERITIES)}.")] = "warning",
    json: Json = False,
) -> None:
    """Where an alert with these labels would go now: receivers, channels, recipients, grouping, hours."""
    if not is_severity(severity):
        fail(f"--severity: expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    cfg = _config(config)
    labels = _labels(label or [])
    now = now_ms()
    alert = Alert(fingerprint=fingerprint(rule, labels), rule=rule, labels=labels, severity=cast(Severity, severity),
                  state="firing", summary=f"{rule} (test)", starts_ms=now)  # fmt: skip
    muter = Muter(silences=cfg.silences, maintenance=cfg.maintenance, inhibit=cfg.inhibit)
    profile = cfg.profile_for(labels)
    open_now = profile is None or profile.in_hours(now)
    emergency = is_emergency(alert, cfg.emergency)
    matches = cfg.routing.route(alert)
    muted = muter.is_muted(alert, now)
    deferred_until = None if open_now or emergency or profile is None else profile.next_opening(now)
    if json:
        routes = [
            {"route": m.path, "receiver": m.receiver, "channel": cfg.receivers[m.receiver].channel,
             "recipients": list(cfg.receivers[m.receiver].recipients), "group_by": list(m.group_by),
             "group_wait_ms": m.timings.group_wait_ms, "group_interval_ms": m.timings.group_interval_ms,
             "repeat_interval_ms": m.timings.repeat_interval_ms,
             "preview": render(cfg.receivers[m.receiver], [alert], [])}
            for m in matches
        ]  # fmt: skip
        print_json({
            "alert": {"rule": rule, "severity": severity, "labels": labels, "fingerprint": alert.fingerprint},
            "routes": routes, "muted": muted, "hours": None if profile is None else profile.name,
            "in_hours": open_now, "emergency": emergency, "deferred_until_ms": deferred_until,
        })  # fmt: skip
        return
    typer.echo(f"alert {rule} [{severity}] {labels or '{}'}")
    for m in matches:
        receiver = cfg.receivers[m.receiver]
        typer.echo(f"  -> {receiver.name} via {receiver.channel} to {', '.join(receiver.recipients)}  ({m.path}, "
                   f"group_by {list(m.group_by)}, group_wait {m.timings.group_wait_ms / 1000:g} s)")  # fmt: skip
    if muted:
        typer.echo(f"  muted now: {muted}")
    if profile is not None and deferred_until is not None:
        typer.echo(f"  off hours ({profile.name}): waits for the digest at {_when(deferred_until)} UTC")
    elif profile is not None and not open_now:
        typer.echo(f"  off hours ({profile.name}), but {severity} is an emergency: pages now")


# --- notify --------------------------------------------------------------------------------------


@notify_app.callback()
def _notify() -> None:
    """Notification channels (a group, so ``notify test`` stays a subcommand)."""


@notify_app.command("test")
def notify_test(
    channel: Annotated[str, typer.Argument(help="The channel name, as in [channels.<name>].")],
    config: ConfigOpt,
    recipient: Annotated[str | None, typer.Option(help="Default: the first recipient of a receiver using it.")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="Also record the test in this history file.")] = None,
    json: Json = False,
) -> None:
    """Send one test message through a channel, with its retries, and report each attempt."""
    cfg = _config(config)
    spec = cfg.channels.get(channel)
    if spec is None:
        fail(f"unknown channel {channel!r} (known: {', '.join(sorted(cfg.channels)) or 'none'})")
    receiver = next((r for r in cfg.receivers.values() if r.channel == channel), None)
    to = recipient or (receiver.recipients[0] if receiver is not None else "test")
    now = now_ms()
    alert = Alert(fingerprint=fingerprint("notify_test", {"channel": channel}), rule="notify_test",
                  labels={"channel": channel}, severity="info", state="firing",
                  summary=f"PyMonitor test message through {channel}", starts_ms=now)  # fmt: skip
    text = render(receiver, [alert], []) if receiver is not None else alert.summary
    message = OutgoingMessage(id=f"test-{now:x}", recipient=to, subject=f"[TEST] PyMonitor: {channel}", text=text,
                              fingerprints=(alert.fingerprint,), severity="info")  # fmt: skip
    attempts: list[AttemptRecord] = []
    deliverer = Deliverer(spec.retry, clock=now_ms, sleep=lambda ms: time.sleep(ms / 1000), on_attempt=attempts.append)
    result = deliverer.deliver(channel, build_channel(spec), message)
    if db is not None:
        store = AlertStore(db)
        record = NotificationRecord(receiver=receiver.name if receiver else "-", channel=channel, recipient=to,
                                    group_key="notify test", fingerprints=(alert.fingerprint,), text=text,
                                    created_ms=now)  # fmt: skip
        nid = store.record_notification(record)
        for a in attempts:
            store.record_attempt(nid, a.attempt, a.status, a.detail, a.provider_id, a.at_ms)
        store.close()
    ok = result.status in ("sent", "delivered")
    if json:
        tries = [{"attempt": a.attempt, "status": a.status, "detail": a.detail} for a in attempts]
        print_json(
            {"channel": channel, "recipient": to, "status": result.status, "detail": result.detail, "attempts": tries}
        )
    else:
        for a in attempts:
            typer.echo(f"attempt {a.attempt}: {a.status} {a.detail}")
        typer.echo(f"{channel} -> {to}: {result.status}")
    if not ok:
        raise typer.Exit(1)
