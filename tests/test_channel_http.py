"""HTTP channels (SMS gateway, webhook, ntfy, Gotify) against a real HTTP server on 127.0.0.1.

The server plays the carrier / receiver: it records every request and answers what the test
queued (200 with an id by default), so each test checks the bytes on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.channels import (
    CallbackError,
    GotifyChannel,
    GotifyConfig,
    NtfyChannel,
    NtfyConfig,
    OutgoingMessage,
    Secret,
    SmsHttpChannel,
    SmsHttpConfig,
    StatusCallbacks,
    WebhookChannel,
    WebhookConfig,
)
from pymonitor.actors.alerting.channels.sms_http import sms_text
from pymonitor.actors.alerting.sms import encoding, segments
from pymonitor.broker import free_port

NOW_MS = 1_764_806_400_000


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Carrier:
    """What the fake carrier saw, and what it will answer next."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    answers: list[tuple[int, bytes]] = field(default_factory=list)


@pytest.fixture
def carrier() -> Iterator[Carrier]:
    state = Carrier(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
            code, answer = state.answers.pop(0) if state.answers else (200, b'{"id": "msg-1"}')
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _message(**changes: Any) -> OutgoingMessage:
    fields: dict[str, Any] = {
        "id": "n-42",
        "recipient": "+447700900123",
        "subject": "CRIT temp high",
        "text": "CRIT temp high: 95 °C on gw1/t1 – “rack 3”",
        "fingerprints": ("a1b2c3d4e5f60718",),
        "severity": "critical",
    }
    return OutgoingMessage(**(fields | changes))


def _sms(carrier: Carrier, **extra: object) -> SmsHttpChannel:
    raw: dict[str, object] = {"url": f"{carrier.url}/v1/messages", "token": "tok-123", "from": "PyMonitor"}
    return SmsHttpChannel(SmsHttpConfig.parse(raw | extra, "channels.sms"))


# --- SMS gateway ---------------------------------------------------------------------------------


def test_sms_gateway_posts_gsm7_text_with_bearer_token_and_returns_carrier_id(carrier: Carrier) -> None:
    result = _sms(carrier).send(_message(), NOW_MS)
    assert (result.status, result.provider_id) == ("sent", "msg-1")
    [request] = carrier.requests
    assert request.path == "/v1/messages"
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["Idempotency-Key"] == "n-42"
    body = orjson.loads(request.body)
    assert body["to"] == "+447700900123" and body["from"] == "PyMonitor" and body["reference"] == "n-42"
    assert encoding(body["text"]) == "GSM-7"
    assert body["text"] == 'CRIT temp high: 95 C on gw1/t1 - "rack 3"'


def test_sms_text_is_cut_to_the_segment_budget() -> None:
    long = _message(text="battery low " * 100)
    assert segments(sms_text(long, 2)) == 2
    assert sms_text(long, 1).endswith("...") and segments(sms_text(long, 1)) == 1


@pytest.mark.parametrize(
    ("code", "status"), [(500, "retry"), (503, "retry"), (429, "retry"), (400, "failed"), (401, "failed")]
)
def test_sms_gateway_errors_retry_on_5xx_and_429_and_fail_on_other_4xx(
    carrier: Carrier, code: int, status: str
) -> None:
    carrier.answers.append((code, b'{"error": "nope"}'))
    result = _sms(carrier).send(_message(), NOW_MS)
    assert result.status == status and str(code) in result.detail
    assert "tok-123" not in result.detail


def test_sms_gateway_answer_without_id_is_still_sent(carrier: Carrier) -> None:
    carrier.answers.append((202, b"accepted"))
    result = _sms(carrier).send(_message(), NOW_MS)
    assert result.status == "sent" and result.provider_id == "" and "no message id" in result.detail


def test_sms_gateway_down_is_worth_a_retry() -> None:
    raw = {"url": f"http://127.0.0.1:{free_port()}/send", "token": "t", "from": "PM", "timeout": 2}
    channel = SmsHttpChannel(SmsHttpConfig.parse(raw, "channels.sms"))
    result = channel.send(_message(), NOW_MS)
    channel.close()
    assert result.status == "retry" and "ConnectError" in result.detail


def test_timeout_is_worth_a_retry() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    raw = {"url": "http://carrier.invalid/send", "token": "t", "from": "PM"}
    channel = SmsHttpChannel(SmsHttpConfig.parse(raw, "c"), transport=httpx.MockTransport(slow))
    result = channel.send(_message(), NOW_MS)
    assert result.status == "retry" and "timed out" in result.detail


def _signed(secret: str, body: bytes, stamp: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"sha256={mac}", "X-Signature-Timestamp": str(stamp)}


@pytest.mark.parametrize(
    ("state", "status"),
    [("delivered", "delivered"), ("DELIVRD", "delivered"), ("undelivered", "failed"), ("queued", "sent")],
)
def test_signed_delivery_callback_maps_carrier_states(state: str, status: str) -> None:
    callbacks = StatusCallbacks(Secret("cb-secret"))
    body = orjson.dumps({"id": "msg-1", "status": state, "error": "absent subscriber" if status == "failed" else ""})
    update = callbacks.handle(body, _signed("cb-secret", body, NOW_MS // 1000), NOW_MS)
    assert not isinstance(update, CallbackError)
    assert (update.provider_id, update.status, update.carrier_status) == ("msg-1", status, state)
    assert callbacks.accepted == 1


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b'{"id":"m","status":"delivered"}', {}, "unsigned"),
        (b'{"id":"m","status":"delivered"}', {"X-Signature": "sha256=00", "X-Signature-Timestamp": "x"}, "stale"),
        (b'{"id":"m","status":"delivered"}', {"X-Signature": "sha256=00", "X-Signature-Timestamp": "1"}, "stale"),
        (b'{"id":"m","status":"delivered"}', {"X-Signature": "sha256=00"}, "unsigned"),
        (b"x" * 20_000, None, "too large"),
        (b"not json", None, "malformed"),
        (b"[1, 2]", None, "malformed"),
        (b'{"status":"delivered"}', None, "malformed"),
        (b'{"id":"m","status":"teleported"}', None, "malformed"),
    ],
)
def test_bad_callbacks_are_refused_with_a_reason_and_counted(
    body: bytes, headers: dict[str, str] | None, reason: str
) -> None:
    callbacks = StatusCallbacks(Secret("cb-secret"))
    sent_headers = headers if headers is not None else _signed("cb-secret", body, NOW_MS // 1000)
    outcome = callbacks.handle(body, sent_headers, NOW_MS)
    assert isinstance(outcome, CallbackError) and str(outcome).startswith(reason)
    assert callbacks.rejected[reason] == 1 and callbacks.accepted == 0


def test_callback_signed_with_another_key_is_spoofed() -> None:
    callbacks = StatusCallbacks(Secret("cb-secret"))
    body = b'{"id":"m","status":"delivered"}'
    outcome = callbacks.handle(body, _signed("guess", body, NOW_MS // 1000), NOW_MS)
    assert isinstance(outcome, CallbackError) and str(outcome) == "bad signature"
    tampered = b'{"id":"m","status":"failed"}'
    assert isinstance(callbacks.handle(tampered, _signed("cb-secret", body, NOW_MS // 1000), NOW_MS), CallbackError)


@given(body=st.binary(max_size=300), sig=st.text(max_size=80), stamp=st.text(max_size=20))
def test_arbitrary_callbacks_never_raise(body: bytes, sig: str, stamp: str) -> None:
    callbacks = StatusCallbacks(Secret("k"))
    outcome = callbacks.handle(body, {"X-Signature": sig, "X-Signature-Timestamp": stamp}, NOW_MS)
    assert isinstance(outcome, CallbackError)


def test_sms_config_errors_name_the_path_and_hide_the_token() -> None:
    with pytest.raises(AlertConfigError, match=r"^channels.sms.url: expected an http:// or https:// URL"):
        SmsHttpConfig.parse({"url": "ftp://x", "token": "t", "from": "PM"}, "channels.sms")
    with pytest.raises(AlertConfigError, match=r"^channels.sms.token: expected a non-empty string, got int"):
        SmsHttpConfig.parse({"url": "https://x", "token": 12345678, "from": "PM"}, "channels.sms")
    with pytest.raises(AlertConfigError, match=r"^channels.sms.max_segments"):
        SmsHttpConfig.parse({"url": "https://x", "token": "t", "from": "PM", "max_segments": 99}, "channels.sms")
    cfg = SmsHttpConfig.parse(
        {"url": "https://x/", "token": "sekrit", "from": "PM", "callback_secret": "cbs", "max_segments": 0}, "c"
    )
    assert "sekrit" not in repr(cfg) and "cbs" not in repr(cfg) and "sekrit" not in str(cfg)
    assert cfg.url == "https://x" and cfg.max_segments == 1


# --- webhook -------------------------------------------------------------------------------------


def test_webhook_posts_signed_json_the_receiver_can_verify(carrier: Carrier) -> None:
    channel = WebhookChannel(WebhookConfig.parse({"url": f"{carrier.url}/hook", "secret": "wh"}, "channels.hook"))
    assert channel.send(_message(), NOW_MS).status == "sent"
    channel.close()
    [request] = carrier.requests
    body = orjson.loads(request.body)
    assert body["id"] == "n-42" and body["alerts"] == ["a1b2c3d4e5f60718"] and body["severity"] == "critical"
    stamp = request.headers["X-PyMonitor-Timestamp"]
    assert stamp == str(NOW_MS // 1000)
    expected = hmac.new(b"wh", stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-PyMonitor-Signature"] == f"sha256={expected}"
    assert request.headers["Idempotency-Key"] == "n-42"


def test_unsigned_webhook_has_no_signature_header(carrier: Carrier) -> None:
    channel = WebhookChannel(WebhookConfig.parse({"url": carrier.url, "timeout": 3}, "channels.hook"))
    channel.send(_message(), NOW_MS)
    assert "X-PyMonitor-Signature" not in carrier.requests[0].headers


# --- ntfy and Gotify -----------------------------------------------------------------------------


def test_ntfy_posts_text_with_title_priority_and_tags(carrier: Carrier) -> None:
    raw = {"server": carrier.url, "topic": "ops-alerts", "token": "tk_abc", "priorities": {"warning": 1}}
    channel = NtfyChannel(NtfyConfig.parse(raw, "channels.phone"))
    carrier.answers.append((200, b'{"id":"nt-9","event":"message"}'))
    result = channel.send(_message(subject="CRIT 95 °C\nrack"), NOW_MS)
    assert (result.status, result.provider_id) == ("sent", "nt-9")
    channel.send(_message(severity="warning"), NOW_MS)
    channel.close()
    first, second = carrier.requests
    assert first.path == "/ops-alerts"
    assert first.body.decode() == _message().text
    title = first.headers["Title"]
    assert title.startswith("=?UTF-8?B?") and base64.b64decode(title[10:-2]).decode() == "CRIT 95 °C rack"
    assert (first.headers["Priority"], first.headers["Tags"]) == ("4", "rotating_light")
    assert first.headers["Authorization"] == "Bearer tk_abc"
    assert second.headers["Priority"] == "1"


def test_ntfy_answer_without_json_has_no_id(carrier: Carrier) -> None:
    carrier.answers.append((200, b"ok"))
    channel = NtfyChannel(NtfyConfig.parse({"server": carrier.url, "topic": "t"}, "c"))
    assert channel.send(_message(), NOW_MS).provider_id == ""
    assert "Authorization" not in carrier.requests[0].headers


def test_gotify_posts_json_with_token_header_not_in_url(carrier: Carrier) -> None:
    carrier.answers.append((200, b'{"id": 17, "appid": 1}'))
    channel = GotifyChannel(GotifyConfig.parse({"server": carrier.url, "token": "AppTok"}, "channels.gotify"))
    result = channel.send(_message(severity="emergency"), NOW_MS)
    channel.close()
    assert (result.status, result.provider_id) == ("sent", "17")
    [request] = carrier.requests
    assert request.path == "/message" and "AppTok" not in request.path
    assert request.headers["X-Gotify-Key"] == "AppTok"
    assert orjson.loads(request.body) == {"title": "CRIT temp high", "message": _message().text, "priority": 10}


def test_gotify_refused_token_fails_for_good(carrier: Carrier) -> None:
    carrier.answers.append((401, b'{"error":"Unauthorized"}'))
    channel = GotifyChannel(GotifyConfig.parse({"server": carrier.url, "token": "bad"}, "c"))
    assert channel.send(_message(), NOW_MS).status == "failed"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"server": "https://n", "topic": "a/b"}, "channels.p.topic: expected a topic name"),
        ({"server": "https://n", "topic": "t", "priorities": {"loud": 3}}, "channels.p.priorities.loud: unknown"),
        ({"server": "https://n", "topic": "t", "priorities": {"info": 9}}, "channels.p.priorities.info: expected 1-5"),
        ({"server": "https://n", "topic": "t", "priorities": [1]}, "channels.p.priorities: expected a table"),
    ],
)
def test_ntfy_config_errors_name_the_path(raw: dict[str, object], error: str) -> None:
    with pytest.raises(AlertConfigError, match="^" + error):
        NtfyConfig.parse(raw, "channels.p")


def test_carrier_callback_over_real_http_confirms_delivery_of_the_sent_message(carrier: Carrier) -> None:
    """Send through the carrier, then let the carrier POST a signed callback to our endpoint."""
    callbacks = StatusCallbacks(Secret("cb-secret"))
    updates: list[object] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            outcome = callbacks.handle(body, dict(self.headers.items()), NOW_MS)
            updates.append(outcome)
            self.send_response(400 if isinstance(outcome, CallbackError) else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        sent = _sms(carrier).send(_message(), NOW_MS)
        body = orjson.dumps({"id": sent.provider_id, "status": "delivered"})
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/sms/status"
        good = httpx.post(endpoint, content=body, headers=_signed("cb-secret", body, NOW_MS // 1000))
        spoofed = httpx.post(endpoint, content=body, headers=_signed("guessed", body, NOW_MS // 1000))
    finally:
        server.shutdown()
        server.server_close()
    assert (good.status_code, spoofed.status_code) == (204, 400)
    first = updates[0]
    assert not isinstance(first, CallbackError) and (first.provider_id, first.status) == ("msg-1", "delivered")  # type: ignore[union-attr]
    assert callbacks.rejected == {"bad signature": 1}
