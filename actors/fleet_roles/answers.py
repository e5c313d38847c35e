"""How a fleet query is answered: the role actor's latest answer when it is fresh enough, else computed now.

A role actor analyses the whole fleet every few minutes with its default options and every list in
full; :func:`ask` takes that stored answer and cuts it to the caller's ``limit`` the same way a
query computed from the store would (:func:`limited`, used by both, so the two agree row for row).
Anything the roles do not precompute (``--now``, ``--device``, ``--site``, other options, no hub
running its roles, an answer older than ``max_age_s``) is computed from the store, as before.
Every answer says which it was in ``source``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pymonitor.store.fleet_answers import AnswerStore, StoredAnswer, answers_path, wall_ms

from .errors import FleetQueryError

MAX_AGE_S = 900.0
"""A stored answer older than this is not served (the roles analyse every 300 s by default)."""

PER_QUERY = frozenset({"limit", "device", "site"})
"""Options that do not change the fleet-wide analysis: a stored answer serves any ``limit``; a device or
site query reads only that part of the store, which is fast anyway."""

Cut = tuple[tuple[str, ...], bool]  # the path to a list in the answer; True: keep its last items, not its first

CUTS: dict[str, tuple[Cut, ...]] = {
    "battery": (
        (("rates", "location"), False),
        (("alerts",), False),
        (("cannot_forecast",), False),
        (("trips",), False),
    ),
    "firmware": (
        (("outdated",), False),
        (("vulnerable",), False),
        (("inconsistent_groups",), False),
        (("unauthorised",), True),
    ),
    "calibration": ((("drifting",), False), (("schedule",), False)),
    "environment": ((("recommendations",), False), (("site_effects",), False)),
    "gateways": ((("gateways",), False), (("bottlenecks",), False), (("moves",), False)),
}
EPOCH_MS = re.compile(r"-?[0-9]+")  # ASCII digits only: int() also takes '٣' and refuses '²', both digits to isdigit


def limited(role: str, answer: dict[str, Any], limit: int) -> dict[str, Any]:
    """``answer`` with each of the role's lists cut to ``limit`` items (a copy; the lists' elements are shared)."""
    out = dict(answer)
    for path, from_end in CUTS[role]:
        parent = out
        for key in path[:-1]:
            parent[key] = dict(parent[key])
            parent = parent[key]
        items = parent[path[-1]]
        parent[path[-1]] = items[-limit:] if from_end else items[:limit]
    return out


def options_key(options: Any) -> str:
    """The options that decide a fleet-wide answer, as canonical JSON (what a stored answer is kept under)."""
    decisive = {f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.name not in PER_QUERY}
    return orjson.dumps(decisive, default=str, option=orjson.OPT_SORT_KEYS).decode()


def fleet_wide(options: Any) -> bool:
    """True when ``options`` ask about the whole fleet (no device or site), which is what the roles precompute."""
    return not getattr(options, "device", None) and not getattr(options, "site", None)


def parse_now(text: str | None, latest: Callable[[], int | None], clock: Callable[[], int]) -> int:
    """``--now``: None -> the clock, 'latest' -> the newest reading, else epoch ms or an ISO time."""
    if text is None:
        return clock()
    if text == "latest":
        found = latest()
        if found is None:
            raise FleetQueryError("--now latest: the store holds no readings")
        return found
    if EPOCH_MS.fullmatch(text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FleetQueryError(f"--now: expected epoch ms, an ISO time or 'latest', got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def stored(db: Path, role: str, options: Any, max_age_s: float = MAX_AGE_S) -> StoredAnswer | None:
    """The role actor's latest answer for ``options`` if it has one no older than ``max_age_s``."""
    store = AnswerStore.reader(answers_path(db))
    if store is None:
        return None
    try:
        found = store.get(role, options_key(options))
    finally:
        store.close()
    if found is None or found.age_s() > max_age_s:
        return None
    return found


def served(found: StoredAnswer, limit: int) -> dict[str, Any]:
    """A stored answer cut to ``limit``, with its ``source``: how old it is and how long it took to compute."""
    out = limited(found.role, found.answer, limit)
    out["source"] = {
        "kind": "role",
        "computed_ms": found.computed_ms,
        "age_s": round(found.age_s(), 1),
        "elapsed_ms": round(found.elapsed_ms, 1),
    }
    return out


def ask(
    db: Path,
    role: str,
    options: Any,
    *,
    now: str | None = None,
    fresh: bool = False,
    max_age_s: float | None = None,
    clock: Callable[[], int] = wall_ms,
) -> dict[str, Any]:
    """What ``pymonitor fleet ROLE`` answers (see the module docstring); a :class:`FleetQueryError` if it cannot."""
    from .service import FleetService  # here, not at the top: the service's queries import this module

    if not fresh and now is None and role in CUTS and fleet_wide(options):
        found = stored(db, role, options, MAX_AGE_S if max_age_s is None else max_age_s)
        if found is not None:
            return served(found, options.limit)
    start = time.perf_counter()
    with FleetService(db) as service:
        out = service.ask(role, parse_now(now, service.latest_ms, clock), options)
    out["source"] = {"kind": "store", "elapsed_ms": round((time.perf_counter() - start) * 1000, 1)}
    return out
