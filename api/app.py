"""The REST API application: settings, the error shape, auth, and a store per request.

Every error is ``{"error": "<reason>", "field": "<what was wrong>"}`` with a 4xx status, so a
phone app can show the reason beside the field. Writes go into the alerting actor's history
file exactly as ``pymonitor alerts ack|silence`` write them; the running actor applies them at
its next tick. The API never needs the actor to be reachable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from pymonitor.actors.alerting.config import AlertingConfig
from pymonitor.actors.alerting.errors import AlertConfigError
from pymonitor.store.alert_store import AlertStore
from pymonitor.store.database import StoreError

from .auth import ApiKeys, bearer

MAX_BODY_BYTES = 16_384
StoreT = TypeVar("StoreT")
GZIP_MIN_BYTES = 1_024


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    """What one API server serves: the alert history file, optionally the hub's, the alerting config, the keys."""

    alerts_db: Path
    keys: ApiKeys
    alerting: AlertingConfig | None = None
    hub_db: Path | None = None
    now_ms: Callable[[], int] = field(default=wall_clock_ms)


class ApiError(Exception):
    """A 4xx answer: the status, the reason and the field it is about."""

    def __init__(self, status: int, error: str, field: str = "") -> None:
        super().__init__(error)
        self.status, self.error, self.field = status, error, field


class JsonResponse(Response):
    """orjson bodies (small, fast, and the project's one JSON library for views)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def config_error(exc: AlertConfigError, where: str, status: int = 422) -> ApiError:
    """``silence.duration: expected ...`` as an ``ApiError`` naming ``duration``."""
    path, _, reason = str(exc).partition(": ")
    return ApiError(status, reason or str(exc), path.removeprefix(where).lstrip(".") or where)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (never held whole when it is huge)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body larger than {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(raw: bytes, allowed: Mapping[str, type | tuple[type, ...]], required: set[str]) -> dict[str, Any]:
    """A request body that must be a JSON object with only ``allowed`` keys, each of its type."""
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc}", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"expected a JSON object, got {type(data).__name__}", "body")
    for key, value in data.items():
        if key not in allowed:
            raise ApiError(422, f"unknown field (expected one of {', '.join(sorted(allowed))})", key)
        if not isinstance(value, allowed[key]) or isinstance(value, bool):
            raise ApiError(422, f"wrong type {type(value).__name__}", key)
    missing = sorted(required - data.keys())
    if missing:
        raise ApiError(422, "missing", missing[0])
    return data


class ApiState:
    """What lives as long as the app: settings, keys, and the reply state (used tokens, PIN strikes)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()  # sync routes run in a thread pool; reply state is not thread-safe
        self.replies: Any = None  # set by routes_replies: the ReplyHandler, created on first use
        self.callbacks: dict[str, Any] = {}  # channel name -> StatusCallbacks


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(state_of)]


def open_existing(path: Path, opener: Callable[[Path], StoreT], field: str, what: str) -> StoreT:
    """A store the API reads or appends to but never creates (an empty one would hide a wrong path): 503 if
    it is missing or unusable."""
    if not path.exists():
        raise ApiError(503, f"{path}: no such {what}", field)
    try:
        return opener(path)
    except StoreError as exc:
        raise ApiError(503, f"{what} unavailable: {exc}", field) from None


def open_alert_store(state: State) -> Iterator[AlertStore]:
    """One connection per request (SQLite connections belong to a thread; WAL lets readers overlap)."""
    store = open_existing(state.settings.alerts_db, AlertStore, "alerts_db", "alert history file")
    try:
        yield store
    finally:
        store.close()


Store = Annotated[AlertStore, Depends(open_alert_store)]


def api_user(request: Request, state: State) -> str:
    """The user of the request's bearer key; 401 without a known one."""
    user = state.settings.keys.user_for(bearer(request.headers.get("authorization")))
    if user is None:
        raise ApiError(401, "missing or unknown API key", "Authorization")
    return user


User = Annotated[str, Depends(api_user)]


def _error(status: int, error: str, field: str, headers: Mapping[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"error": error, "field": field}, status_code=status, headers=headers)


def create_app(settings: ApiSettings) -> FastAPI:
    """The API for these settings (``pymonitor api serve`` runs it under uvicorn)."""
    from . import routes_alerts, routes_fleet, routes_replies

    app = FastAPI(title="PyMonitor", version="1", default_response_class=JsonResponse, docs_url=None, redoc_url=None)
    app.state.api = ApiState(settings)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)  # history pages shrink ~10x on a phone link

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.error, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        return _error(422, str(first.get("msg", "invalid")), str(first.get("loc", ("", ""))[-1]))

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail).lower(), "path")

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        """No auth: for load balancers and uptime checks."""
        return {"ok": True, "alerting": settings.alerting is not None, "fleet": settings.hub_db is not None}

    app.include_router(routes_alerts.router)
    app.include_router(routes_replies.router)
    app.include_router(routes_fleet.router)
    return app
