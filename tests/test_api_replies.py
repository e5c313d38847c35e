"""Replies without an API key: email reply links (signed tokens) and the SMS gateway's signed callbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_support import CALLBACK_SECRET, COLD_FP, HOT, HOT_FP, NOW, Api, alerting_config, make_api, signed

from pymonitor.actors.alerting.replies import AlertCodebook, ReplyHandler
from pymonitor.api.app import create_app
from pymonitor.store.alert_store import NotificationRecord

HOUR_MS = 3_600_000


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return make_api(tmp_path, alerting=alerting_config())


def link(api: Api, fingerprint: str = HOT_FP, action: str = "ack", at_ms: int = NOW, duration_ms: int = 0) -> str:
    """A token as the email channel puts it in a reply link."""
    assert api.settings.alerting is not None and api.settings.alerting.replies is not None
    handler = ReplyHandler(config=api.settings.alerting.replies, codebook=AlertCodebook())
    return handler.link_token(fingerprint, "alice", at_ms, action=action, duration_ms=duration_ms)  # type: ignore[arg-type]


def accepted(api: Api) -> list[dict[str, object]]:
    return [row for row in api.acks() if row["accepted"]]


# --- email reply links ---------------------------------------------------------------------------


def test_reply_link_acknowledges_and_is_audited_as_email(api: Api) -> None:
    got = api.client.get("/v1/reply", params={"token": link(api)})
    assert got.status_code == 200 and "acknowledged by alice" in got.text
    assert got.headers["content-type"].startswith("text/html") and "viewport" in got.text
    [row] = api.acks()
    assert (row["fingerprint"], row["action"], row["by"], row["via"], row["accepted"]) == (
        HOT_FP, "ack", "alice", "email", 1)  # fmt: skip
    assert str(row["detail"]).endswith(".***")  # the signature is never stored


def test_reply_link_as_the_email_channel_writes_it_uses_t(api: Api) -> None:
    from urllib.parse import quote

    got = api.client.get(f"/v1/reply?t={quote(link(api))}")
    assert got.status_code == 200 and "acknowledged by alice" in got.text


def test_reply_link_works_once(api: Api) -> None:
    token = link(api)
    assert api.client.get("/v1/reply", params={"token": token}).status_code == 200
    again = api.client.get("/v1/reply", params={"token": token})
    assert again.status_code == 400 and "token already used" in again.text
    assert len(accepted(api)) == 1


def test_reply_link_works_once_across_a_restart(api: Api) -> None:
    token = link(api)
    assert api.client.get("/v1/reply", params={"token": token}).status_code == 200
    restarted = TestClient(create_app(api.settings))  # a new process: its used-token memory is empty
    again = restarted.get("/v1/reply", params={"token": token})
    assert again.status_code == 400 and "token already used" in again.text
    assert len(accepted(api)) == 1


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"), "bad token signature"),
        (lambda t: "garbage", "malformed token"),
        (lambda t: "", "malformed token"),
    ],
)
def test_forged_reply_link_is_refused_audited_and_applies_nothing(api: Api, tamper: object, reason: str) -> None:
    token = tamper(link(api))  # type: ignore[operator]
    got = api.client.get("/v1/reply", params={"token": token})
    assert got.status_code == 400 and reason in got.text
    [row] = api.acks()
    assert (row["accepted"], row["action"], row["detail"]) == (0, "refused", reason)
    assert api.counts()["silences"] == 0


def test_expired_reply_link_is_refused(api: Api) -> None:
    got = api.client.get("/v1/reply", params={"token": link(api, at_ms=NOW - 2 * 86_400_000)})
    assert got.status_code == 400 and "token expired" in got.text and accepted(api) == []


def test_silence_link_silences_exactly_that_alert(api: Api) -> None:
    got = api.client.get("/v1/reply", params={"token": link(api, action="silence", duration_ms=2 * HOUR_MS)})
    assert got.status_code == 200 and "silenced by alice for 120 min" in got.text
    store = api.store()
    [row] = store.silences_after(0)
    store.close()
    assert row["matchers"] == sorted(f'{k}="{v}"' for k, v in {"rule": "temp_high", **HOT}.items())
    assert (row["starts_ms"], row["ends_ms"], row["created_by"]) == (NOW, NOW + 2 * HOUR_MS, "alice")
    assert [(r["action"], r["via"]) for r in accepted(api)] == [("silence", "email")]


def test_silence_link_of_an_alert_no_longer_firing_silences_nothing(api: Api) -> None:
    token = link(api, fingerprint="0123456789abcdef", action="silence", duration_ms=HOUR_MS)
    got = api.client.get("/v1/reply", params={"token": token})
    assert got.status_code == 200 and "not firing" in got.text
    assert api.counts()["silences"] == 0


def test_reply_link_without_replies_configured_is_a_404_naming_replies(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    got = api.client.get("/v1/reply", params={"token": "a.b"})
    assert got.status_code == 404 and got.json()["field"] == "replies"


# --- delivery status callbacks -------------------------------------------------------------------


def sent_sms(api: Api, provider_id: str = "msg-1") -> int:
    store = api.store()
    note = NotificationRecord(receiver="oncall", channel="sms-gw", recipient="+447700900123", group_key="g",
                              fingerprints=(HOT_FP,), text="temp high", created_ms=NOW - 5000)  # fmt: skip
    nid = store.record_notification(note)
    store.record_attempt(nid, 1, "sent", "carrier took it", provider_id, NOW - 4000)
    store.close()
    return nid


def attempts(api: Api, nid: int) -> list[tuple[object, ...]]:
    store = api.store()
    try:
        [note] = [n for n in store.notifications_of(HOT_FP) if n["id"] == nid]
        return [(a["attempt"], a["status"], a["detail"]) for a in note["attempts"]]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("status", "error", "recorded", "detail"),
    [
        ("DELIVRD", None, "delivered", "carrier: DELIVRD"),
        ("undelivered", "handset off", "failed", "carrier: undelivered (handset off)"),
    ],
)
def test_delivery_callback_is_recorded_as_an_attempt_like_the_actor_does(
    api: Api, status: str, error: str | None, recorded: str, detail: str
) -> None:
    nid = sent_sms(api)
    body, headers = signed({"id": "msg-1", "status": status, **({"error": error} if error else {})})
    got = api.client.post("/v1/sms/callback", content=body, headers=headers)
    assert got.status_code == 200 and got.json() == {"recorded": True, "notification": nid, "status": recorded}
    assert attempts(api, nid)[-1] == (0, recorded, detail)


@pytest.mark.parametrize(
    ("mangle", "field", "reason"),
    [
        (lambda b, h: (b, {**h, "X-Signature": "sha256=" + "0" * 64}), "X-Signature", "bad signature"),
        (lambda b, h: (b + b" ", h), "X-Signature", "bad signature"),
        (lambda b, h: (b, {"Content-Type": "application/json"}), "X-Signature", "unsigned"),
        (lambda b, h: signed(b, at_ms=NOW - 3_600_000), "X-Signature-Timestamp", "stale"),
        (lambda b, h: signed(b, secret="not-the-secret"), "X-Signature", "bad signature"),
        (lambda b, h: signed(b"not json"), "body", "malformed"),
        (lambda b, h: signed({"id": "msg-1", "status": "teleported"}), "body", "malformed: $.status"),
    ],
)
def test_bad_delivery_callback_is_a_400_with_the_reason_and_writes_nothing(
    api: Api, mangle: object, field: str, reason: str
) -> None:
    nid = sent_sms(api)
    before = api.counts()
    body, headers = mangle(*signed({"id": "msg-1", "status": "delivered"}))  # type: ignore[operator]
    got = api.client.post("/v1/sms/callback", content=body, headers=headers)
    assert got.status_code == 400, got.json()
    assert got.json()["field"] == field and got.json()["error"].startswith(reason)
    assert api.counts() == before and len(attempts(api, nid)) == 1


def test_callback_about_an_unknown_message_is_taken_but_not_recorded(api: Api) -> None:
    before = api.counts()
    got = api.client.post("/v1/sms/callback", content=(s := signed({"id": "nope", "status": "delivered"}))[0],
                          headers=s[1])  # fmt: skip
    assert got.status_code == 200 and got.json()["recorded"] is False
    assert api.counts() == before


def test_callback_names_the_channel_when_it_cannot_tell_which(tmp_path: Path) -> None:
    second = '\n[alerting.channels.sms-2]\ntype = "sms_http"\nurl = "https://b.example.org/"\ntoken = "t"\n'
    second += f'from = "PM"\ncallback_secret = "{CALLBACK_SECRET}-2"\n'
    from test_api_support import ALERTING

    api = make_api(tmp_path, alerting=alerting_config(ALERTING + second))
    body, headers = signed({"id": "x", "status": "delivered"})
    unnamed = api.client.post("/v1/sms/callback", content=body, headers=headers)
    assert unnamed.status_code == 400 and unnamed.json()["field"] == "channel" and "sms-2" in unnamed.json()["error"]
    named = api.client.post("/v1/sms/callback?channel=sms-gw", content=body, headers=headers)
    assert named.status_code == 200
    unknown = api.client.post("/v1/sms/callback?channel=email", content=body, headers=headers)
    assert unknown.status_code == 404 and unknown.json()["field"] == "channel"


def test_callback_without_a_signed_sms_channel_is_a_404(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    body, headers = signed({"id": "x", "status": "delivered"})
    got = api.client.post("/v1/sms/callback", content=body, headers=headers)
    assert got.status_code == 404 and got.json()["field"] == "channel"


# --- forwarded SMS replies -----------------------------------------------------------------------


def code_of(fingerprint: str) -> str:
    """The SMS code of a firing alert: the codebook met them oldest first (HOT, then COLD)."""
    book = AlertCodebook()
    book.code_for(HOT_FP)
    book.code_for(COLD_FP)
    return book.code_for(fingerprint)


def sms(api: Api, text: str, sender: str = "+447700900123") -> dict[str, object]:
    body, headers = signed({"from": sender, "text": text})
    got = api.client.post("/v1/sms/inbound", content=body, headers=headers)
    assert got.status_code == 200, got.json()
    reply: dict[str, object] = got.json()
    return reply


def test_sms_ack_with_the_right_pin_acknowledges_by_code(api: Api) -> None:
    got = sms(api, f"ACK {code_of(COLD_FP)} 2468", sender="07700 900123")
    assert got == {"accepted": True, "reply": "acknowledged by alice"}
    [row] = api.acks()
    assert (row["fingerprint"], row["action"], row["by"], row["via"]) == (COLD_FP, "ack", "alice", "sms")
    assert str(row["detail"]).endswith("****")  # the PIN is never stored


def test_sms_with_a_wrong_pin_or_unknown_sender_is_refused_and_audited(api: Api) -> None:
    assert sms(api, f"ACK {code_of(HOT_FP)} 1111") == {"accepted": False, "reply": "wrong PIN"}
    assert sms(api, f"ACK {code_of(HOT_FP)} 2468", sender="+15550100999")["reply"] == "unknown sender"
    rows = api.acks()
    assert [(r["accepted"], r["detail"]) for r in rows] == [(0, "wrong PIN"), (0, "unknown sender")]


def test_sms_silence_silences_the_alert_for_the_duration(api: Api) -> None:
    assert sms(api, f"silence {code_of(HOT_FP)} 2h 2468")["reply"] == "silenced by alice for 120 min"
    store = api.store()
    [row] = store.silences_after(0)
    store.close()
    assert row["ends_ms"] - row["starts_ms"] == 2 * HOUR_MS and 'site="Site A"' in row["matchers"]


def test_sms_status_answers_with_what_fires(api: Api) -> None:
    got = sms(api, "STATUS 2468")
    assert got["accepted"] is True
    assert str(got["reply"]).startswith("2 firing. ") and f"{code_of(HOT_FP)} critical" in str(got["reply"])
    assert api.acks()[0]["action"] == "status"


def test_sms_status_with_nothing_firing_and_with_many_firing(api: Api) -> None:
    from pymonitor.actors.alerting.alert import Alert

    store = api.store()
    store.record_alerts([Alert(fingerprint=fp, rule="r", labels={}, severity="info", state="resolved", summary="s",
                               starts_ms=NOW) for fp in (HOT_FP, COLD_FP)], NOW)  # fmt: skip
    store.close()
    assert sms(api, "STATUS 2468")["reply"] == "No alerts firing."
    store = api.store()
    store.record_alerts([Alert(fingerprint=f"{i:016x}", rule="r", labels={}, severity="info", state="firing",
                               summary=f"s{i}", starts_ms=NOW + i) for i in range(7)], NOW)  # fmt: skip
    store.close()
    assert str(sms(api, "STATUS 2468")["reply"]).startswith("7 firing (+2 more). ")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{nope", 400, "body"),
        (b'"ACK 1 2"', 400, "body"),
        (b'{"from": "+447700900123"}', 422, "text"),
        (b'{"from": 447700900123, "text": "STATUS 2468"}', 422, "from"),
    ],
)
def test_bad_inbound_sms_is_refused_naming_the_field(api: Api, body: bytes, status: int, field: str) -> None:
    got = api.client.post("/v1/sms/inbound", content=body, headers=signed(body)[1])
    assert got.status_code == status and got.json()["field"] == field
    assert api.acks() == []


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"X-Signature": "0" * 64, "X-Signature-Timestamp": str(NOW // 1000)}, "X-Signature"),
        ({}, "X-Signature"),
        ({"X-Signature": "0" * 64, "X-Signature-Timestamp": "yesterday"}, "X-Signature-Timestamp"),
    ],
)
def test_inbound_sms_with_a_bad_signature_writes_nothing(api: Api, headers: dict[str, str], field: str) -> None:
    got = api.client.post("/v1/sms/inbound", content=b'{"from": "+447700900123", "text": "STATUS 2468"}',
                          headers=headers)  # fmt: skip
    assert got.status_code == 400 and got.json()["field"] == field
    assert api.acks() == []


def test_inbound_sms_larger_than_a_callback_may_be_is_refused(api: Api) -> None:
    body, headers = signed({"from": "+447700900123", "text": "x" * 20_000})
    got = api.client.post("/v1/sms/inbound", content=body, headers=headers)
    assert got.status_code == 413 and got.json() == {"error": "body larger than 16384 bytes", "field": "body"}
    assert api.acks() == []
    callback = api.client.post("/v1/sms/callback", content=body, headers=headers)
    assert callback.status_code == 413 and api.counts()["attempts"] == 0


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=600), sender=st.text(min_size=1, max_size=30))
def test_any_signed_sms_is_answered_without_a_server_error(api: Api, text: str, sender: str) -> None:
    body, headers = signed({"from": sender, "text": text or "x"})
    got = api.client.post("/v1/sms/inbound", content=body, headers=headers)
    assert got.status_code in (200, 422)
