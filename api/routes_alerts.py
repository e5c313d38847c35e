"""``/v1/alerts``: what fires, what happened, acknowledge, silence. Writes go to the store as the CLI's do."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from pymonitor.actors.alerting.alert import SEVERITIES
from pymonitor.actors.alerting.errors import AlertConfigError
from pymonitor.actors.alerting.fields import duration_ms
from pymonitor.actors.alerting.silences import Silence

from .app import ApiError, State, Store, User, config_error, json_object, read_body

router = APIRouter(prefix="/v1/alerts")
HISTORY_LIMIT_MAX = 500
COMMENT_CHARS = 500
VIA = "api"


@router.get("")
def firing(
    store: Store,
    _user: User,
    severity: Annotated[str | None, Query()] = None,
    site: Annotated[str | None, Query()] = None,
    label: Annotated[list[str] | None, Query(description="name=value; repeat for several")] = None,
) -> dict[str, Any]:
    """Alerts firing now, newest first, filtered by severity, site and labels."""
    if severity is not None and severity not in SEVERITIES:
        raise ApiError(422, f"expected one of {', '.join(SEVERITIES)}", "severity")
    wanted = _label_pairs(label or [])
    if site is not None:
        wanted["site"] = site
    rows = [
        row
        for row in store.active()
        if (severity is None or row["severity"] == severity)
        and all(row["labels"].get(name) == value for name, value in wanted.items())
    ]
    return {"firing": rows, "count": len(rows)}


def _label_pairs(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ApiError(422, f"expected name=value, got {pair[:60]!r}", "label")
        labels[name] = value
    return labels


@router.get("/history")
def history(
    store: Store,
    state: State,
    _user: User,
    since: Annotated[str | None, Query(description='e.g. "24h", "7d"')] = None,
    fingerprint: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query()] = 20,
) -> dict[str, Any]:
    """Alert transitions, newest first, each with its notifications, attempts, acks and escalations."""
    if not 1 <= limit <= HISTORY_LIMIT_MAX:
        raise ApiError(422, f"expected 1 to {HISTORY_LIMIT_MAX}, got {limit}", "limit")
    since_ms = None
    if since is not None:
        try:
            since_ms = state.settings.now_ms() - duration_ms(since, "since")
        except AlertConfigError as exc:
            raise config_error(exc, "since") from None
    return {"history": store.history(since_ms=since_ms, fingerprint=fingerprint, limit=limit)}


@router.post("/{fingerprint}/ack")
async def ack(fingerprint: str, request: Request, store: Store, state: State, user: User) -> dict[str, Any]:
    """Acknowledge an alert (its fingerprint or a unique prefix): its escalation stops at the actor's next tick."""
    body = json_object(await read_body(request), {"comment": str}, set())
    comment = str(body.get("comment") or "acknowledged through the API")[:COMMENT_CHARS]
    matches = sorted(fp for fp in store.fingerprints_recorded() if fp.startswith(fingerprint))
    if len(matches) != 1:
        found = "no alert" if not matches else f"{len(matches)} alerts"
        raise ApiError(404 if not matches else 409, f"{fingerprint[:40]!r} matches {found}", "fingerprint")
    now = state.settings.now_ms()
    store.record_acknowledgement(matches[0], "ack", user, VIA, True, comment, now)
    return {"acknowledged": matches[0], "by": user, "at_ms": now}


@router.get("/silences")
def silences(store: Store, state: State, _user: User) -> dict[str, Any]:
    """Silences not yet expired."""
    return {"silences": store.silences(state.settings.now_ms())}


@router.post("/silences", status_code=201)
async def silence(request: Request, store: Store, state: State, user: User) -> dict[str, Any]:
    """Mute alerts matching every matcher for ``duration``; the running actor applies it at its next tick."""
    body = json_object(await read_body(request), {"matchers": list, "duration": str, "comment": str}, {"matchers",
                       "duration", "comment"})  # fmt: skip
    now = state.settings.now_ms()
    spec = {**body, "id": "api", "created_by": user}
    try:
        parsed = Silence.parse(spec, "silence", now_ms=now)
    except AlertConfigError as exc:
        raise config_error(exc, "silence") from None
    matchers = [str(m) for m in parsed.matchers]
    comment = parsed.comment[:COMMENT_CHARS]
    silence_id = store.add_silence(matchers, parsed.starts_ms, parsed.ends_ms, user, comment, now)
    detail = f"silence {silence_id}: {', '.join(matchers)} for {body['duration']}: {comment}"
    store.record_acknowledgement("", "silence", user, VIA, True, detail[:COMMENT_CHARS], now)
    return {"silence": silence_id, "matchers": matchers, "starts_ms": parsed.starts_ms, "ends_ms": parsed.ends_ms}
