"""``/v1/fleet``: the hub's summary, read-only: nodes online and offline, readings stored, recent events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pymonitor.store.hub_store import HubStore

from .app import ApiError, State, User, open_existing

router = APIRouter(prefix="/v1")
EVENTS_MAX = 100


@router.get("/fleet")
def fleet(state: State, _user: User, events: Annotated[int, Query()] = 10) -> dict[str, Any]:
    """Small enough for a phone: counts, one line per node, the latest events."""
    path = state.settings.hub_db
    if path is None:
        raise ApiError(404, "no hub database: start the API with --hub-db", "hub_db")
    if not 0 <= events <= EVENTS_MAX:
        raise ApiError(422, f"expected 0 to {EVENTS_MAX}, got {events}", "events")
    store = open_existing(path, HubStore, "hub_db", "hub database")
    try:
        stats, nodes, recent = store.stats(), store.per_node(), store.recent_events(events)
    finally:
        store.close()
    online = sum(1 for n in nodes if n["online"])
    return {
        "nodes": {"online": online, "offline": len(nodes) - online, "total": len(nodes)},
        "readings": stats["readings"],
        "devices": stats["devices"],
        "last_ts_ms": stats["last_ts_ms"],
        "per_node": [{k: n[k] for k in ("node", "role", "online", "last_seen_ms", "readings")} for n in nodes],
        "events": recent,
    }
