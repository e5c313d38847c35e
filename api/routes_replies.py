"""Replies from outside without an API key: email reply links (signed tokens) and the SMS gateway's
signed callbacks (delivery status, forwarded SMS replies).

Each is authenticated by its own signature, not a key: the token by the ``[replies]`` secret,
the callbacks by the ``sms_http`` channel's ``callback_secret``. Every reply, taken or refused,
leaves an acknowledgement row (the audit trail); an accepted one is applied through the store
as the CLI's writes are. A refused callback writes nothing (a forger must not fill the disk).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from pymonitor.actors.alerting.channels.base import signature_matches
from pymonitor.actors.alerting.channels.sms_http import (
    MAX_CALLBACK_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackError,
    SmsHttpConfig,
    StatusCallbacks,
)
from pymonitor.actors.alerting.matchers import Matcher
from pymonitor.actors.alerting.replies import (
    Ack,
    AlertCodebook,
    ReplyAudit,
    ReplyHandler,
    ReplyOutcome,
    Silence,
    StatusRequest,
)
from pymonitor.store.alert_store import AlertStore

from .app import ApiError, ApiState, State, Store, read_body

router = APIRouter(prefix="/v1")
SMS_TEXT_CHARS = 480
STATUS_LINES = 5


def _handler(state: ApiState) -> ReplyHandler:
    """The one ReplyHandler of the app (it remembers used tokens and wrong PINs); call under ``state.lock``."""
    alerting = state.settings.alerting
    if alerting is None or alerting.replies is None:
        raise ApiError(404, "replies are not configured ([alerting] has no [replies])", "replies")
    if state.replies is None:
        state.replies = ReplyHandler(config=alerting.replies, codebook=AlertCodebook())
    handler: ReplyHandler = state.replies
    return handler


def _page(title: str, line: str, status: int) -> HTMLResponse:
    body = (
        '<!doctype html><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><p>{html.escape(line)}</p>"
    )
    return HTMLResponse(body, status_code=status)


@router.get("/reply", response_class=HTMLResponse)
def reply_link(
    store: Store,
    state: State,
    t: Annotated[str, Query(max_length=2048)] = "",
    token: Annotated[str, Query(max_length=2048)] = "",
) -> HTMLResponse:
    """An email reply link was followed (``?t=`` as the email channel writes it, or ``?token=``): a genuine,
    unexpired, unused token acts once."""
    now = state.settings.now_ms()
    with state.lock:
        outcome = _handler(state).handle_token(t or token, now)
        if outcome.accepted and _token_used(store, outcome.audit.text):  # used before a restart
            outcome = _refused(outcome, "token already used")
        detail = apply(store, outcome, now)
    if not outcome.accepted:
        return _page("Not done", f"Not done: {detail}", 400)
    return _page("Done", detail, 200)


def _token_used(store: AlertStore, shown: str) -> bool:
    """Tokens are single use; the in-memory set forgets on restart, the audit rows do not."""
    return any(row["detail"] == shown for row in store.acknowledgements_after(0, via="email"))


def _refused(outcome: ReplyOutcome, reason: str) -> ReplyOutcome:
    audit = outcome.audit
    refused = ReplyAudit(at_ms=audit.at_ms, via=audit.via, sender="token", text=audit.text, accepted=False,
                          reason=reason, action=None)  # fmt: skip
    return ReplyOutcome(action=None, audit=refused)


def apply(store: AlertStore, outcome: ReplyOutcome, now_ms: int) -> str:
    """Record the reply (taken or refused) and carry out its ack or silence; returns what a person is told."""
    audit, action = outcome.audit, outcome.action
    if action is None:
        store.record_acknowledgement("", "refused", audit.sender, audit.via, False, audit.reason, now_ms)
        return audit.reason
    if isinstance(action, StatusRequest):
        store.record_acknowledgement("", "status", action.by, audit.via, True, audit.text, now_ms)
        return status_text(store)
    fp = action.fingerprint or ""
    if isinstance(action, Ack):
        store.record_acknowledgement(fp, "ack", action.by, audit.via, True, audit.text, now_ms)
        return f"acknowledged by {action.by}"
    store.record_acknowledgement(fp, "silence", action.by, audit.via, True, audit.text, now_ms)
    return _silence_alert(store, action, fp, now_ms)


def _silence_alert(store: AlertStore, action: Silence, fp: str, now_ms: int) -> str:
    """A silence of exactly this alert (its rule and every label), as the actor makes for a reply."""
    alert = next((row for row in store.active() if row["fingerprint"] == fp), None)
    if alert is None:
        return f"alert {action.alert_code} is not firing: nothing to silence"
    labels = {"rule": alert["rule"], **alert["labels"]}
    matchers = [str(Matcher(label=k, op="=", value=v)) for k, v in sorted(labels.items())]
    minutes = action.duration_ms // 60_000
    comment = f"silenced by reply for {minutes} min"
    store.add_silence(matchers, now_ms, now_ms + action.duration_ms, action.by, comment, now_ms)
    return f"silenced by {action.by} for {minutes} min"


def status_text(store: AlertStore) -> str:
    """What fires now, short enough for one or two SMS."""
    rows = sorted(store.active(), key=lambda r: (r["starts_ms"], r["fingerprint"]))
    if not rows:
        return "No alerts firing."
    book = codebook(rows)
    lines = [f"{book.code_for(r['fingerprint'])} {r['severity']}: {r['summary']}" for r in rows[:STATUS_LINES]]
    more = f" (+{len(rows) - STATUS_LINES} more)" if len(rows) > STATUS_LINES else ""
    return (f"{len(rows)} firing{more}. " + "; ".join(lines))[:SMS_TEXT_CHARS]


def codebook(rows: list[dict[str, Any]]) -> AlertCodebook:
    """Short codes for the firing alerts, given oldest first as the actor first met them."""
    book = AlertCodebook()
    for row in sorted(rows, key=lambda r: (r["starts_ms"], r["fingerprint"])):
        book.code_for(row["fingerprint"])
    return book


# --- the SMS gateway -----------------------------------------------------------------------------


def _callbacks(state: ApiState, channel: str | None) -> tuple[SmsHttpConfig, StatusCallbacks]:
    """The checker of the named ``sms_http`` channel, or of the only one with a ``callback_secret``."""
    alerting = state.settings.alerting
    signed = {} if alerting is None else {
        name: spec.config for name, spec in alerting.channels.items()
        if isinstance(spec.config, SmsHttpConfig) and spec.config.callback_secret is not None
    }  # fmt: skip
    if channel is None:
        if len(signed) != 1:
            found = "none" if not signed else ", ".join(sorted(signed))
            raise ApiError(404 if not signed else 400, f"name the sms_http channel (with callback_secret): {found}",
                           "channel")  # fmt: skip
        channel = next(iter(signed))
    config = signed.get(channel)
    if config is None:
        raise ApiError(404, f"no sms_http channel {channel[:40]!r} with a callback_secret", "channel")
    if channel not in state.callbacks:
        assert config.callback_secret is not None
        state.callbacks[channel] = StatusCallbacks(config.callback_secret, config.callback_tolerance_ms)
    callbacks: StatusCallbacks = state.callbacks[channel]
    return config, callbacks


def _refusal(exc: CallbackError) -> ApiError:
    reason = str(exc)
    kind = reason.partition(":")[0]
    where = {"unsigned": SIGNATURE_HEADER, "bad signature": SIGNATURE_HEADER, "stale": TIMESTAMP_HEADER}
    return ApiError(400, reason, where.get(kind, "body"))


async def _from_carrier(
    request: Request, state: ApiState, channel: str | None
) -> tuple[bytes, int, SmsHttpConfig, StatusCallbacks]:
    """The body (16 KiB at most), the time it came, and the channel whose secret must have signed it."""
    body = await read_body(request, MAX_CALLBACK_BYTES)
    with state.lock:
        config, callbacks = _callbacks(state, channel)
    return body, state.settings.now_ms(), config, callbacks


@router.post("/sms/callback")
async def sms_status(request: Request, store: Store, state: State, channel: str | None = None) -> dict[str, Any]:
    """The carrier says what became of a message: recorded as a delivery attempt, as the actor records it."""
    body, now, _, callbacks = await _from_carrier(request, state, channel)
    with state.lock:
        update = callbacks.handle(body, request.headers, now)
    if isinstance(update, CallbackError):
        raise _refusal(update)
    note = store.notification_by_provider_id(update.provider_id)
    if note is None:  # 2xx all the same: a carrier retries non-2xx, and it will never match
        return {"recorded": False, "reason": "unknown message id", "id": update.provider_id}
    detail = f"carrier: {update.carrier_status}" + (f" ({update.error})" if update.error else "")
    store.record_attempt(note["id"], 0, update.status, detail, update.provider_id, now)
    return {"recorded": True, "notification": note["id"], "status": update.status}


@router.post("/sms/inbound")
async def sms_inbound(request: Request, store: Store, state: State, channel: str | None = None) -> dict[str, Any]:
    """An SMS reply the carrier forwards (``{"from", "text"}``, signed): ACK / SILENCE / STATUS with a PIN."""
    body, now, config, callbacks = await _from_carrier(request, state, channel)
    with state.lock:
        _verify(config, callbacks, body, request.headers, now)
        sender, text = _inbound_fields(body)
        handler = _handler(state)
        handler.codebook = codebook(store.active())
        outcome = handler.handle_sms(sender, text, now)
        detail = apply(store, outcome, now)
    return {"accepted": outcome.accepted, "reply": detail}


def _verify(
    config: SmsHttpConfig, callbacks: StatusCallbacks, body: bytes, headers: Mapping[str, str], now_ms: int
) -> None:
    """The carrier's signature over a forwarded SMS, checked as ``StatusCallbacks.parse`` checks a status."""
    assert config.callback_secret is not None
    lower = {key.lower(): value for key, value in headers.items()}
    given, stamp = lower.get(SIGNATURE_HEADER.lower()), lower.get(TIMESTAMP_HEADER.lower())
    try:
        if not given or not stamp:
            raise CallbackError(f"unsigned: missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
        if not (stamp.isascii() and stamp.isdigit()) or abs(now_ms - int(stamp) * 1000) > config.callback_tolerance_ms:
            raise CallbackError(f"stale: timestamp {stamp[:20]!r} is not within tolerance of now")
        if not signature_matches(config.callback_secret, stamp, body, given):
            raise CallbackError("bad signature")
    except CallbackError as exc:
        callbacks.rejected[str(exc).partition(":")[0]] += 1
        raise _refusal(exc) from None


def _inbound_fields(body: bytes) -> tuple[str, str]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed JSON", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object", "body")
    for key in ("from", "text"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ApiError(422, "expected a non-empty string", key)
    return str(data["from"])[:40], str(data["text"])[: SMS_TEXT_CHARS + 1]
