"""``pymonitor fleet battery|firmware|calibration|environment|gateways``: the fleet-health roles' answers.

Each command serves the answer the hub's role actor keeps beside the store (computed over the whole
fleet at most ``--max-age`` seconds ago), or else opens the hub store read-only (a running hub keeps
writing) and runs its role's cores over the readings and inventory (see docs/fleet.md for what each
reads); it prints a human-readable summary or, with ``--json``, one JSON object whose ``source``
says which. ``--now`` sets the moment the answer is for: epoch ms, an ISO time, or ``latest`` (the
newest reading, for imported history); it, ``--device``, ``--site`` and ``--fresh`` always compute.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

fleet_app = typer.Typer(
    help="Fleet health: battery, firmware, calibration, environment, gateways.", no_args_is_help=True
)
app = fleet_app

DbOpt = Annotated[Path, typer.Option("--db", help="The hub store (SQLite) to read.")]
NowOpt = Annotated[str | None, typer.Option("--now", help="Epoch ms, ISO time or 'latest' (default: the clock).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (last line of stdout).")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, help="Rows shown per list.")]
FreshOpt = Annotated[
    bool, typer.Option("--fresh", help="Compute from the store now, not the hub's role answer of the last minutes.")
]
MaxAgeOpt = Annotated[
    float | None,
    typer.Option("--max-age", min=0, help="Serve a role's stored answer only if it is this recent (s; default 900)."),
]


def _answer(db: Path, role: str, options: Any, now: str | None, fresh: bool, max_age: float | None, json: bool) -> Any:
    """The role's answer for the text view; None when it was printed as JSON (or exit 2 with the reason)."""
    from pymonitor.actors.fleet_roles import FleetQueryError
    from pymonitor.actors.fleet_roles.answers import ask

    try:
        answer = ask(db, role, options, now=now, fresh=fresh, max_age_s=max_age)
    except FleetQueryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not json:
        source = answer["source"]
        if source["kind"] == "role":
            typer.echo(f"(the hub's {role} role answered {source['age_s']:.0f} s ago; --fresh recomputes)")
        return answer
    sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
    sys.stdout.flush()
    return None


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _counts(counts: dict[str, int]) -> str:
    shown = [f"{k} {v:,}" for k, v in counts.items() if v]
    return ", ".join(shown) if shown else "none"


@fleet_app.command("battery")
def battery(
    db: DbOpt,
    now: NowOpt = None,
    window_days: Annotated[float, typer.Option(min=1, help="History a forecast looks at.")] = 42.0,
    threshold: Annotated[list[float] | None, typer.Option(help="Days-to-empty alert thresholds (repeat).")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device (its forecast in full).")] = None,
    site: Annotated[str | None, typer.Option(help="Only this site's devices.")] = None,
    limit: LimitOpt = 20,
    json: JsonOpt = False,
    fresh: FreshOpt = False,
    max_age: MaxAgeOpt = None,
) -> None:
    """Depletion forecasts, discharge rates by battery type and site, alerts and the technician's trips."""
    from pymonitor.actors.fleet_roles import BatteryOptions

    options = BatteryOptions(
        window_days=window_days,
        thresholds_days=tuple(threshold) if threshold else (30.0, 14.0, 7.0),
        device=device,
        site=site,
        limit=limit,
    )
    a = _answer(db, "battery", options, now, fresh, max_age, json)
    if a is None:
        return
    typer.echo(f"battery at {_day(a['now_ms'])}: {a['devices']:,} devices; {_counts(a['statuses'])}")
    typer.echo(f"  quarantined readings: {_counts(a['quarantined'])}; skipped devices: {_counts(a['skipped'])}")
    for group in ("battery_type", "site"):
        for g in a["rates"][group][:limit]:
            days = "-" if g["median_days_to_empty"] is None else f"{g['median_days_to_empty']:.0f} d"
            typer.echo(
                f"  {group:<12} {g['group']:<20} {g['devices']:>6,} devices  "
                f"{100 * g['median_rate_soc_per_day']:.3f} %/day (p90 {100 * g['p90_rate_soc_per_day']:.3f})  "
                f"median empty in {days}"
            )
    typer.echo(f"alerts ({a['alerts_total']:,}):")
    for x in a["alerts"]:
        typer.echo(
            f"  {x['device']:<16} {x['site']:<12} under {x['threshold_days']:g} d: "
            f"p10 {x['days_to_empty_p10']} d, p50 {x['days_to_empty_p50']} d (criticality {x['criticality']})"
        )
    typer.echo(f"trips ({a['trips_total']:,}):")
    for trip in a["trips"]:
        typer.echo(
            f"  visit {trip['site']} by {_day(trip['visit_by_ms'])}: {len(trip['replacements'])} batteries, "
            f"criticality up to {trip['max_criticality']}"
        )
    for f in a["forecasts"]:
        typer.echo(
            f"  {f['device']} ({f['battery_type']}): {f['status']}, empty in {f['days_to_empty_p50']} d "
            f"[{f['days_to_empty_p10']}, {f['days_to_empty_p90']}], {f['points_used']} readings used, "
            f"{f['quarantined']} quarantined"
        )


@fleet_app.command("firmware")
def firmware(
    db: DbOpt,
    now: NowOpt = None,
    advisories: Annotated[Path | None, typer.Option(help="Advisory file (TOML or JSON) of vulnerable ranges.")] = None,
    approved: Annotated[Path | None, typer.Option(help="Approved images and rollouts (TOML).")] = None,
    limit: LimitOpt = 20,
    json: JsonOpt = False,
    fresh: FreshOpt = False,
    max_age: MaxAgeOpt = None,
) -> None:
    """Versions per model and site, outdated and vulnerable devices, rollouts, unauthorised changes."""
    from pymonitor.actors.fleet_roles import FirmwareOptions

    options = FirmwareOptions(advisories=advisories, approved=approved, limit=limit)
    a = _answer(db, "firmware", options, now, fresh, max_age, json)
    if a is None:
        return
    typer.echo("firmware versions per model and site:")
    for row in a["versions"][:limit]:
        versions = ", ".join(f"{v} x{n:,}" for v, n in row["versions"].items())
        typer.echo(f"  {row['model']:<10} {row['site']:<14} {versions}")
    typer.echo(f"outdated: {a['outdated_total']:,}  vulnerable: {a['vulnerable_total']:,}")
    for v in a["vulnerable"]:
        typer.echo(f"  {v['device']:<16} {', '.join(v['advisories'])}")
    for r in a["rollouts"]:
        typer.echo(f"rollout {r['rollout']}: done {r['done']:,}, pending {r['pending']:,}, failed {r['failed']:,}")
    for g in a["inconsistent_groups"]:
        typer.echo(
            f"  group {g['group']} ({g['model']}): {100 * g['majority_share']:.0f}% of {g['devices']:,} "
            f"on {g['majority_version']}"
        )
    typer.echo(f"unauthorised changes: {a['unauthorised_total']:,}")
    for c in a["unauthorised"]:
        typer.echo(f"  {c['device']:<16} {_day(c['ts_ms'])} {c['previous']} -> {c['current']}: {c['reason']}")
    if a["rejected"]:
        typer.echo(f"rejected reports: {_counts(a['rejected'])}")


@fleet_app.command("calibration")
def calibration(
    db: DbOpt,
    now: NowOpt = None,
    days: Annotated[float, typer.Option(min=1, help="Days of readings judged.")] = 30.0,
    interval_days: Annotated[float, typer.Option(min=1, help="Recalibrate at least this often.")] = 365.0,
    device: Annotated[str | None, typer.Option(help="Show this device's sensors and history.")] = None,
    limit: LimitOpt = 20,
    json: JsonOpt = False,
    fresh: FreshOpt = False,
    max_age: MaxAgeOpt = None,
) -> None:
    """Sensors drifting from their co-located neighbours, and the recalibration schedule."""
    from pymonitor.actors.fleet_roles import CalibrationOptions

    options = CalibrationOptions(days=days, interval_days=interval_days, device=device, limit=limit)
    a = _answer(db, "calibration", options, now, fresh, max_age, json)
    if a is None:
        return
    typer.echo(f"calibration at {_day(a['now_ms'])}: {a['sensors']:,} sensors; {_counts(a['statuses'])}")
    typer.echo(f"  quarantined readings: {a['quarantined']:,}; skipped: {_counts(a['skipped'])}")
    typer.echo(f"drifting ({a['drifting_total']:,}):")
    for d in a["drifting"]:
        typer.echo(
            f"  {d['device']:<16} {d['metric']:<14} {d['deviation_pct']:+.2f}% at {d['location']} "
            f"since {_day(d['since_ms'])}"
        )
    typer.echo("schedule:")
    for d in a["schedule"]:
        typer.echo(f"  {_day(d['due_ms'])} {d['device']:<16} {d['metric']:<14} ({d['reason']})")
    for s in a["sensor"]:
        history = ", ".join(_day(t) for t in s["calibrated_ms"]) or "never"
        typer.echo(f"  {s['device']} {s['metric']}: {s['status']}, {s['deviation_pct']}%; calibrated {history}")


@fleet_app.command("environment")
def environment(
    db: DbOpt,
    now: NowOpt = None,
    days: Annotated[float, typer.Option(min=1, help="Days of readings and failures analysed.")] = 90.0,
    bin_hours: Annotated[float, typer.Option(min=0.1, help="Readings are averaged per bin of this length.")] = 1.0,
    limit: LimitOpt = 20,
    json: JsonOpt = False,
    fresh: FreshOpt = False,
    max_age: MaxAgeOpt = None,
) -> None:
    """Failure rate ratios for heat, humidity and vibration, with 95% intervals, and recommendations."""
    from pymonitor.actors.fleet_roles import EnvironmentOptions

    options = EnvironmentOptions(days=days, bin_hours=bin_hours, limit=limit)
    a = _answer(db, "environment", options, now, fresh, max_age, json)
    if a is None:
        return
    typer.echo(f"environment at {_day(a['now_ms'])}: {a['devices_analysed']:,} devices analysed")
    for name, r in a["fleet"].items():
        if r["ratio"] is None:
            typer.echo(f"  {name:<10} no estimate ({r['method']})")
            continue
        mark = " *" if r["significant"] else ""
        typer.echo(f"  {name:<10} rate ratio {r['ratio']:.2f} (95% CI {r['low']}-{r['high']}, {r['method']}){mark}")
    typer.echo("recommendations:")
    for text in a["recommendations"] or ["none: no exposure clearly raises failures"]:
        typer.echo(f"  {text}")
    if a["quarantined"]:
        typer.echo(f"quarantined: {_counts(a['quarantined'])}")


@fleet_app.command("gateways")
def gateways(
    db: DbOpt,
    now: NowOpt = None,
    hours: Annotated[float, typer.Option(min=0.01, help="Traffic is measured over this many hours.")] = 24.0,
    capacity: Annotated[float, typer.Option(help="Messages/s a gateway forwards (default for all).")] = 2.0,
    min_quality: Annotated[float, typer.Option(help="Only move a device to a link at least this good.")] = 0.5,
    target_util: Annotated[float, typer.Option(help="Stop moving once the worst gateway is under this.")] = 0.8,
    limit: LimitOpt = 20,
    json: JsonOpt = False,
    fresh: FreshOpt = False,
    max_age: MaxAgeOpt = None,
) -> None:
    """Devices and traffic per gateway, imbalance, bottlenecks and a rebalancing plan."""
    from pymonitor.actors.fleet_roles import FleetQueryError, GatewayOptions

    try:
        options = GatewayOptions(
            hours=hours, capacity_msgs_s=capacity, min_quality=min_quality, target_util=target_util, limit=limit
        )
    except FleetQueryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    a = _answer(db, "gateways", options, now, fresh, max_age, json)
    if a is None:
        return
    if a["plan"] is None:
        typer.echo("gateways: the inventory is empty")
        return
    typer.echo(
        f"gateways: {a['gateways_total']:,} serving {a['devices_total']:,} devices; "
        f"max/mean utilisation {a['max_over_mean']}, gini {a['gini']}"
    )
    for g in a["gateways"]:
        typer.echo(
            f"  {g['gateway']:<18} {g['devices']:>6,} devices {g['traffic_msgs_s']:>9.4f} msg/s "
            f"utilisation {g['utilisation']:.2f}"
        )
    typer.echo(f"bottlenecks ({a['bottlenecks_total']:,}):")
    for b in a["bottlenecks"]:
        typer.echo(f"  {b['gateway']:<18} {b['utilisation']:.2f}: {', '.join(b['reasons'])}")
    p = a["plan"]
    typer.echo(
        f"plan: {p['moves_total']:,} moves, worst {p['worst_util_before']} -> {p['worst_util_after']} "
        f"(bound {p['fluid_bound_util']}; {p['stopped']})"
    )
    for m in a["moves"]:
        typer.echo(f"  {m['device']:<16} {m['from']} -> {m['to']} (link {m['quality']})")
