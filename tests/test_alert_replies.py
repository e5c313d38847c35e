"""Two-way alerting: SMS commands with allow-list + PIN, signed email tokens, API calls, audit records."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.channels import GammuInbox, Secret
from pymonitor.actors.alerting.replies import (
    Ack,
    AlertCodebook,
    RepliesConfig,
    ReplyHandler,
    ReplyRefusedError,
    ReplySigner,
    Silence,
    StatusRequest,
    TokenClaims,
    normalise_phone,
    parse_command,
)

NOW_MS = 1_764_806_400_000
HOUR_MS = 3_600_000
FP = "a1b2c3d4e5f60718"
CONFIG = {
    "secret": "reply-signing-key-0123456789",
    "default_country": "44",
    "pin_attempts": 3,
    "lockout": "15m",
    "max_silence": "1d",
    "responders": [
        {"name": "ann", "phone": "07700 900123", "pin": "1234", "api_key": "ann-key"},
        {"name": "bob", "phone": "+1 (555) 010-0999", "pin": "987654"},
        {"name": "bot", "api_key": "bot-key"},
    ],
}


@pytest.fixture
def handler() -> ReplyHandler:
    return ReplyHandler(config=RepliesConfig.parse(CONFIG), codebook=AlertCodebook())


def _code(handler: ReplyHandler) -> str:
    return handler.codebook.code_for(FP)


# --- SMS -----------------------------------------------------------------------------------------


def test_ack_from_allow_listed_number_with_pin_is_accepted(handler: ReplyHandler) -> None:
    code = _code(handler)
    outcome = handler.handle_sms("+447700900123", f"ack {code} 1234", NOW_MS)
    assert outcome.action == Ack(alert_code=code, by="ann", fingerprint=FP)
    assert outcome.accepted and outcome.audit.accepted and outcome.audit.sender == "+447700900123"
    assert outcome.audit.text == f"ack {code} ****" and "1234" not in repr(outcome.audit)


def test_silence_and_status_commands(handler: ReplyHandler) -> None:
    code = _code(handler)
    silence = handler.handle_sms("0044 7700 900123", f"SILENCE {code} 2h 1234", NOW_MS).action
    assert silence == Silence(alert_code=code, duration_ms=2 * HOUR_MS, by="ann", fingerprint=FP)
    status = handler.handle_sms("+15550100999", "  Status   987654 ", NOW_MS).action
    assert status == StatusRequest(by="bob")


@pytest.mark.parametrize(
    ("sender", "text", "reason"),
    [
        ("+447700900999", "ACK {code} 1234", "unknown sender"),
        ("+447700900123", "ACK {code} 9999", "wrong PIN"),
        ("+447700900123", "ACK 0000 1234", "unknown alert code 0000"),
        ("+447700900123", "ACK {code}", "malformed: expected 'ACK <code> <pin>'"),
        ("+447700900123", "", "malformed: empty message"),
        ("+447700900123", "REBOOT {code} 1234", "malformed: unknown command 'REBOOT'"),
        ("+447700900123", "ACK {code} 12", "malformed: the PIN must be 4 to 8 digits"),
        ("+447700900123", "ACK 48x1 1234", "malformed: alert code '48x1'"),
        ("+447700900123", "SILENCE {code} forever 1234", "malformed: duration 'forever'"),
        ("+447700900123", "SILENCE {code} 2d 1234", "silence of 2880 min is longer than the 1440 min allowed"),
        ("+447700900123", "ACK " * 200, "malformed: longer than 480 characters"),
        ("not a number", "STATUS 1234", "unknown sender"),
    ],
)
def test_refused_sms_say_why_and_are_audited(handler: ReplyHandler, sender: str, text: str, reason: str) -> None:
    code = _code(handler)
    outcome = handler.handle_sms(sender, text.format(code=code), NOW_MS)
    assert outcome.action is None and not outcome.accepted
    assert outcome.audit.reason.startswith(reason) and not outcome.audit.accepted
    assert "1234" not in outcome.audit.text.replace(code, "")  # the PIN is never recorded
    assert sum(handler.refused.values()) == 1


def test_wrong_pins_lock_the_sender_out_then_let_them_back(handler: ReplyHandler) -> None:
    for _ in range(3):
        assert handler.handle_sms("+447700900123", "STATUS 0000", NOW_MS).audit.reason == "wrong PIN"
    locked = handler.handle_sms("+447700900123", "STATUS 1234", NOW_MS + 60_000)
    assert locked.audit.reason == "sender locked out after too many wrong PINs"
    assert handler.handle_sms("+447700900123", "STATUS 1234", NOW_MS + 16 * 60_000).accepted
    other = handler.handle_sms("+15550100999", "STATUS 987654", NOW_MS + 60_000)
    assert other.accepted  # one sender's lockout is not everyone's


def test_right_pin_resets_the_strike_count(handler: ReplyHandler) -> None:
    for _ in range(2):
        handler.handle_sms("+447700900123", "STATUS 0000", NOW_MS)
    assert handler.handle_sms("+447700900123", "STATUS 1234", NOW_MS).accepted
    for _ in range(2):
        handler.handle_sms("+447700900123", "STATUS 0000", NOW_MS)
    assert handler.handle_sms("+447700900123", "STATUS 1234", NOW_MS).accepted


@given(sender=st.text(max_size=40), text=st.text(max_size=600))
def test_arbitrary_sms_never_crash_the_handler(sender: str, text: str) -> None:
    handler = ReplyHandler(config=RepliesConfig.parse(CONFIG), codebook=AlertCodebook())
    outcome = handler.handle_sms(sender, text, NOW_MS)
    assert outcome.audit.at_ms == NOW_MS and len(outcome.audit.text) <= 160
    assert outcome.accepted == (outcome.audit.reason == "")


@given(text=st.text(max_size=600))
def test_arbitrary_text_either_parses_or_is_refused(text: str) -> None:
    try:
        command = parse_command(text, 86_400_000)
    except ReplyRefusedError as refusal:
        assert str(refusal)
    else:
        assert command.verb in ("ACK", "SILENCE", "STATUS") and command.pin.isdigit()


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+44 7700 900123", "", "+447700900123"),
        ("07700-900-123", "44", "+447700900123"),
        ("07700900123", "", None),
        ("0044 (7700) 900.123", "", "+447700900123"),
        ("+0 123", "", None),
        ("hello", "44", None),
        ("+４４7700900123", "", None),  # full-width digits are not a phone number
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, country: str, expected: str | None) -> None:
    assert normalise_phone(raw, country) == expected


# --- email tokens --------------------------------------------------------------------------------


def test_link_token_acks_once_then_is_refused_as_replay(handler: ReplyHandler) -> None:
    token = handler.link_token(FP, "ann@example.org", NOW_MS)
    first = handler.handle_token(token, NOW_MS + 1000)
    assert first.action == Ack(alert_code=_code(handler), by="ann@example.org", fingerprint=FP)
    assert first.audit.via == "email" and first.audit.text.endswith(".***")
    again = handler.handle_token(token, NOW_MS + 2000)
    assert again.audit.reason == "token already used"


def test_expired_token_is_refused(handler: ReplyHandler) -> None:
    token = handler.link_token(FP, "ann@example.org", NOW_MS)
    assert handler.handle_token(token, NOW_MS + 24 * HOUR_MS).audit.reason == "token expired"


def test_silence_token_carries_its_duration(handler: ReplyHandler) -> None:
    token = handler.link_token(FP, "bob@example.org", NOW_MS, "silence", 2 * HOUR_MS)
    action = handler.handle_token(token, NOW_MS).action
    assert isinstance(action, Silence) and action.duration_ms == 2 * HOUR_MS and action.by == "bob@example.org"


def test_forged_and_tampered_tokens_are_refused(handler: ReplyHandler) -> None:
    genuine = handler.link_token(FP, "ann@example.org", NOW_MS)
    payload, mac = genuine.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["b"] = "mallory@example.org"
    forged_payload = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    assert handler.handle_token(f"{forged_payload}.{mac}", NOW_MS).audit.reason == "bad token signature"
    other_key = ReplySigner(Secret("another key")).sign(
        TokenClaims(fingerprint=FP, code="1", action="ack", by="m", expires_ms=NOW_MS + HOUR_MS)
    )
    assert handler.handle_token(other_key, NOW_MS).audit.reason == "bad token signature"
    for junk in ("", "nodot", ".", "a.", ".b", "x" * 3000 + ".y"):
        assert handler.handle_token(junk, NOW_MS).audit.reason == "malformed token"
    assert handler.refused["bad token signature"] == 2


def test_genuinely_signed_but_unreadable_claims_are_refused() -> None:
    signer = ReplySigner(Secret("k"))
    payload = base64.urlsafe_b64encode(b'{"f": "x"}').rstrip(b"=").decode()
    token = f"{payload}.{signer._mac(payload)}"
    with pytest.raises(ReplyRefusedError, match="malformed token claims"):
        signer.verify(token, NOW_MS)
    bad_action = base64.urlsafe_b64encode(orjson.dumps({"f": "x", "c": "1", "a": "reboot", "b": "m", "e": NOW_MS + 1}))
    text = bad_action.rstrip(b"=").decode()
    with pytest.raises(ReplyRefusedError, match="token action 'reboot'"):
        signer.verify(f"{text}.{signer._mac(text)}", NOW_MS)


@given(token=st.text(max_size=300))
def test_arbitrary_tokens_never_crash(token: str) -> None:
    handler = ReplyHandler(config=RepliesConfig.parse(CONFIG), codebook=AlertCodebook())
    assert not handler.handle_token(token, NOW_MS).accepted


# --- API -----------------------------------------------------------------------------------------


def test_api_calls_with_the_users_key_act(handler: ReplyHandler) -> None:
    code = _code(handler)
    ack = handler.handle_api("ann", "ann-key", {"action": "ack", "alert": code}, NOW_MS)
    assert ack.action == Ack(alert_code=code, by="ann", fingerprint=FP) and ack.audit.via == "api"
    mute = handler.handle_api("bot", "bot-key", {"action": "silence", "alert": code, "duration": "30m"}, NOW_MS)
    assert mute.action == Silence(alert_code=code, duration_ms=1_800_000, by="bot", fingerprint=FP)
    assert handler.handle_api("bot", "bot-key", {"action": "STATUS"}, NOW_MS).action == StatusRequest(by="bot")
    assert "bot-key" not in repr(mute.audit)


@pytest.mark.parametrize(
    ("user", "key", "request_", "reason"),
    [
        ("eve", "x", {"action": "ack", "alert": "1"}, "unknown API user"),
        ("bob", "x", {"action": "ack", "alert": "1"}, "unknown API user"),  # bob has no API key
        ("ann", "wrong", {"action": "ack", "alert": "1"}, "bad API key"),
        ("ann", "ann-key", {"action": "reboot"}, "malformed: action 'REBOOT'"),
        ("ann", "ann-key", {"action": "ack", "alert": "x"}, "malformed: alert code 'x'"),
        ("ann", "ann-key", {"action": "silence", "alert": "1234", "duration": 5}, "unknown alert code 1234"),
        ("ann", "ann-key", {"action": "silence", "alert": "1234", "duration": None}, "malformed: duration"),
    ],
)
def test_refused_api_calls_say_why(
    handler: ReplyHandler, user: str, key: str, request_: dict[str, object], reason: str
) -> None:
    outcome = handler.handle_api(user, key, request_, NOW_MS)
    assert not outcome.accepted and outcome.audit.reason.startswith(reason)


# --- codebook and config -------------------------------------------------------------------------


def test_codebook_codes_are_stable_unique_and_reusable() -> None:
    book = AlertCodebook(digits=1)
    codes = [book.code_for(f"fp{i}") for i in range(10)]
    assert len(set(codes)) == 10 and book.code_for("fp3") == codes[3]
    assert book.fingerprint_of(codes[3]) == "fp3"
    with pytest.raises(AlertConfigError, match="all 10 codes in use"):
        book.code_for("fp-new")
    book.forget("fp3")
    book.forget("never-seen")
    assert book.fingerprint_of(codes[3]) is None
    assert book.code_for("fp-new") == codes[3]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"secret": ""}, "replies.secret: expected a non-empty string"),
        ({"default_country": "+44"}, "replies.default_country: expected a calling code"),
        ({"responders": [{"name": "x", "phone": "123"}]}, r"replies.responders\[0\].phone: expected a phone number"),
        ({"responders": [{"name": "x", "phone": "+447700900123"}]}, r"replies.responders\[0\].pin: a responder"),
        ({"responders": [{"name": "x", "pin": "12ab"}]}, r"replies.responders\[0\].pin: expected 4 to 8 digits"),
        ({"responders": [{"phone": "+447700900123", "pin": "1234"}]}, r"replies.responders\[0\].name"),
        ({"responders": [{"name": "x", "pin": "1234"}, {"name": "x"}]}, r"replies.responders\[1\]: same name"),
        (
            {
                "responders": [
                    {"name": "x", "phone": "+447700900123", "pin": "1234"},
                    {"name": "y", "phone": "07700900123", "pin": "9999"},
                ]
            },
            r"replies.responders\[1\]: same name or phone as 'x'",
        ),
        ({"colour": 1}, "replies.colour: unknown key"),
    ],
)
def test_bad_replies_config_names_the_path(change: dict[str, object], error: str) -> None:
    with pytest.raises(AlertConfigError, match="^" + error):
        RepliesConfig.parse(CONFIG | change)


def test_config_defaults_and_hidden_secrets() -> None:
    cfg = RepliesConfig.parse({"secret": "s3", "pin_attempts": 0})
    assert (cfg.token_ttl_ms, cfg.pin_attempts, cfg.responders) == (86_400_000, 1, ())
    shown = repr(RepliesConfig.parse(CONFIG))
    assert "1234" not in shown and "ann-key" not in shown and "reply-signing-key" not in shown


def test_reply_read_from_gammu_inbox_acknowledges(tmp_path: Path, handler: ReplyHandler) -> None:
    code = _code(handler)
    (tmp_path / "IN20261204_101500_00_07700900123_00.txt").write_bytes(f"Ack {code} 1234".encode("utf-16"))
    [sms] = GammuInbox(tmp_path).collect()
    outcome = handler.handle_sms(sms.sender, sms.text, sms.received_ms)
    assert outcome.action == Ack(alert_code=code, by="ann", fingerprint=FP)
    assert outcome.audit.sender == "+447700900123"  # national number, normalised with default_country
