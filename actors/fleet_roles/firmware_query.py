"""``fleet firmware``: versions per model and site, outdated and vulnerable devices, rollouts, unauthorised changes.

What a device runs comes from ``firmware.report`` events in the hub store (an ``event.v1`` whose
``source`` is the device and whose details hold ``version`` and ``image_hash``), in time order; a
device without any is taken at the inventory's ``firmware`` column (hash: label ``image_hash``).
Approved images and rollouts come from an optional TOML file (see docs/fleet.md); a model it does
not mention is judged against its devices' first reports (the baseline), so every later change of
such a model is reported as unexplained.
"""

from __future__ import annotations

import sqlite3
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pymonitor.actors.firmware import (
    Advisory,
    AdvisoryError,
    Device,
    FirmwareError,
    FirmwareInventory,
    FirmwareReport,
    Image,
    Rollout,
    UnauthorisedChange,
    load_advisories,
)
from pymonitor.store.fleet_data import FleetData

from .answers import limited
from .errors import FleetQueryError

REPORT_KIND = "firmware.report"
NO_HASH = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Approved:
    images: tuple[Image, ...] = ()
    rollouts: tuple[Rollout, ...] = ()
    schemes: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareOptions:
    advisories: Path | None = None
    approved: Path | None = None
    limit: int = 20


def load_approved(path: Path) -> Approved:
    """``[[image]]`` (model, version, image_hash), ``[[rollout]]`` (id, model, from, to, image_hash, start_ms,
    end_ms) and ``[schemes]`` (model = scheme); a ``FleetQueryError`` naming the entry and field otherwise."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetQueryError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise FleetQueryError(f"{path}: not valid TOML: {exc}") from None
    try:
        images = tuple(
            Image(model=str(e["model"]), version=str(e["version"]), image_hash=str(e["image_hash"]))
            for e in doc.get("image", [])
        )
        rollouts = tuple(
            Rollout(
                id=str(e["id"]),
                model=str(e["model"]),
                from_versions=frozenset(str(v) for v in e["from"]),
                to_version=str(e["to"]),
                image_hash=str(e["image_hash"]),
                start_ms=int(e["start_ms"]),
                end_ms=int(e["end_ms"]),
            )
            for e in doc.get("rollout", [])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FleetQueryError(f"{path}: an [[image]] or [[rollout]] entry lacks or mistypes field {exc}") from None
    schemes = doc.get("schemes", {})
    if not isinstance(schemes, dict):
        raise FleetQueryError(f"{path}: [schemes]: expected a table of model = scheme")
    return Approved(images=images, rollouts=rollouts, schemes={str(k): str(v) for k, v in schemes.items()})


def reports(conn: sqlite3.Connection) -> Iterator[tuple[FirmwareReport, bool]]:
    """Every stored firmware report in time order; the flag is False for one with unreadable details."""
    sql = "SELECT source, ts_ms, details FROM events WHERE kind = ? ORDER BY ts_ms, id"
    for source, ts_ms, details in conn.execute(sql, (REPORT_KIND,)):
        try:
            d = orjson.loads(details)
            yield (
                FirmwareReport(
                    device=source,
                    version=str(d["version"]),
                    image_hash=str(d.get("image_hash") or ""),
                    ts_ms=int(ts_ms),
                    update_failed=d.get("update_failed"),
                ),
                True,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError):
            yield FirmwareReport(device=source, version="", image_hash="", ts_ms=int(ts_ms)), False


def build(data: FleetData, approved: Approved) -> tuple[FirmwareInventory, list[UnauthorisedChange], int]:
    """The inventory folded over every report, the unauthorised changes found, and the bad reports skipped."""
    inv = data.inventory()
    devices = [
        Device(id=d, model=m or "unknown", site=s, group=inv.labels[i].get("group", ""))
        for i, (d, m, s) in enumerate(zip(inv.device, inv.model, inv.site, strict=True))
    ]
    stored = list(reports(data.conn))
    seen = {r.device for r, ok in stored if ok}
    baseline = [
        FirmwareReport(device=d, version=fw, image_hash=inv.labels[i].get("image_hash", NO_HASH), ts_ms=int(ts))
        for i, (d, fw, ts) in enumerate(zip(inv.device, inv.firmware, inv.updated_ms.tolist(), strict=True))
        if fw and d not in seen
    ]
    first: dict[str, FirmwareReport] = {}
    for r, ok in stored:
        if ok:
            first.setdefault(r.device, r)
    model_of = {d.id: d.model for d in devices}
    covered = {i.model for i in approved.images} | {r.model for r in approved.rollouts}
    base = []
    for r in [*baseline, *first.values()]:
        model = model_of.get(r.device)
        if model is not None and model not in covered:
            base.append(Image(model=model, version=r.version, image_hash=r.image_hash))
    images = [*approved.images, *_parseable(base, approved.schemes)]
    try:
        inventory = FirmwareInventory(devices, approved=images, rollouts=approved.rollouts, schemes=approved.schemes)
    except FirmwareError as exc:  # an approved version its scheme cannot read, an empty rollout window
        raise FleetQueryError(f"approved images and rollouts: {exc}") from None
    changes = []
    bad = 0
    for r, ok in [*((b, True) for b in baseline), *stored]:
        if not ok:
            bad += 1
            continue
        event = inventory.observe(r)
        if event is not None:
            changes.append(event)
    return inventory, changes, bad


def _parseable(images: list[Image], schemes: dict[str, str] | None) -> list[Image]:
    """Baseline images whose version the model's scheme reads (the others are rejected when observed)."""
    probe = FirmwareInventory([], approved=[], schemes=schemes)
    out = []
    for image in images:
        try:
            probe.version_of(image.model, image.version)
        except ValueError:
            continue
        out.append(image)
    return out


def query(data: FleetData, now_ms: int, options: FirmwareOptions) -> dict[str, Any]:
    approved = load_approved(options.approved) if options.approved else Approved()
    advisories: tuple[Advisory, ...] = ()
    if options.advisories is not None:
        try:
            advisories = load_advisories(options.advisories)
        except OSError as exc:
            raise FleetQueryError(f"{options.advisories}: cannot read ({exc.strerror})") from None
        except AdvisoryError as exc:
            raise FleetQueryError(str(exc)) from None
    inventory, changes, bad = build(data, approved)
    outdated = inventory.outdated()
    vulnerable = inventory.vulnerable(advisories)
    rejected = dict(inventory.rejected)
    if bad:
        rejected["bad_details"] = bad
    answer: dict[str, Any] = {
        "role": "firmware",
        "now_ms": now_ms,
        "versions": [
            {"model": model, "site": site, "versions": dict(sorted(counts.items()))}
            for (model, site), counts in sorted(inventory.versions().items())
        ],
        "outdated_total": len(outdated),
        "outdated": outdated,
        "vulnerable_total": len(vulnerable),
        "vulnerable": [{"device": d, "advisories": list(ids)} for d, ids in sorted(vulnerable.items())],
        "rollouts": [
            {"rollout": p.rollout, "done": p.done, "pending": p.pending, "failed": p.failed}
            for p in inventory.rollout_progress()
        ],
        "inconsistent_groups": [
            {
                "group": g.group,
                "model": g.model,
                "devices": g.devices,
                "majority_version": g.majority_version,
                "majority_share": round(g.majority_share, 3),
            }
            for g in inventory.consistency()
            if g.majority_share < 1.0
        ],
        "unauthorised_total": len(changes),
        "unauthorised": [
            {
                "device": c.device,
                "model": c.model,
                "site": c.site,
                "ts_ms": c.ts_ms,
                "previous": c.previous,
                "current": c.current,
                "reason": c.reason,
            }
            for c in changes
        ],
        "rejected": rejected,
        "approved_file": str(options.approved) if options.approved else None,
    }
    return limited("firmware", answer, options.limit)
