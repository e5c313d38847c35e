"""``/v1/fleet``: the hub's summary (nodes, readings, recent events) and each fleet-health role's latest answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pymonitor.store.hub_store import HubStore

from .app import ApiError, State, User, open_existing

router = APIRouter(prefix="/v1")
EVENTS_MAX = 100
LIMIT_MAX = 1_000


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


@router.get("/fleet/{role}")
def fleet_role(state: State, _user: User, role: str, limit: Annotated[int, Query()] = 20) -> dict[str, Any]:
    """A fleet-health role's latest answer, as ``pymonitor fleet ROLE --json`` prints it, from the hub's role actor.

    Only stored answers are served (one row read): computing one from the store takes seconds for a
    large fleet, which is the CLI's ``--fresh``, not a phone's request.
    """
    from pymonitor.actors.fleet_roles.answers import CUTS, MAX_AGE_S, served, stored
    from pymonitor.actors.fleet_roles.service import ROLE_OPTIONS

    path = state.settings.hub_db
    if path is None:
        raise ApiError(404, "no hub database: start the API with --hub-db", "hub_db")
    if role not in CUTS:
        raise ApiError(404, f"expected one of {', '.join(CUTS)}, got {role!r}", "role")
    if not 1 <= limit <= LIMIT_MAX:
        raise ApiError(422, f"expected 1 to {LIMIT_MAX}, got {limit}", "limit")
    found = stored(path, role, ROLE_OPTIONS[role](), MAX_AGE_S)
    if found is None:
        raise ApiError(
            503,
            f"no answer of the hub's {role} role in the last {MAX_AGE_S:.0f} s (is [hub].fleet_roles on?)",
            "role",
        )
    return served(found, limit)
