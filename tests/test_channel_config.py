"""Channel configs by type (errors name the path, secrets stay hidden), the log channel, Secret."""

from __future__ import annotations

import logging
import random

import orjson
import pytest

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.channels import (
    EmailChannel,
    GammuChannel,
    GotifyChannel,
    LogChannel,
    NtfyChannel,
    OutgoingMessage,
    Secret,
    SmsHttpChannel,
    WebhookChannel,
    build_channel,
    parse_channels,
)
from pymonitor.actors.alerting.channels.base import severity_map, signature, signature_matches

CONFIG = {
    "ops-mail": {
        "type": "email",
        "host": "smtp.example.org",
        "from": "pm@example.org",
        "username": "u",
        "password": "mail-pass",
        "retry": {"max_attempts": 3},
    },
    "ops-sms": {"type": "sms_http", "url": "https://sms.example/v1/messages", "token": "sms-token", "from": "PM"},
    "modem": {
        "type": "gammu",
        "outbox": "/var/spool/gammu/outbox",
        "sent": "/var/spool/gammu/sent",
        "error": "/var/spool/gammu/error",
        "inbox": "/var/spool/gammu/inbox",
    },
    "hook": {"type": "webhook", "url": "https://hooks.example/pm", "secret": "hook-secret"},
    "phone": {"type": "ntfy", "server": "https://ntfy.example", "topic": "ops"},
    "gotify": {"type": "gotify", "server": "https://gotify.example", "token": "gotify-token"},
    "audit": {"type": "log"},
}


def test_every_channel_type_parses_and_builds() -> None:
    specs = parse_channels(CONFIG, rng=random.Random(1))
    assert specs["ops-mail"].retry.max_attempts == 3 and specs["hook"].retry.max_attempts == 5
    built = {name: type(build_channel(spec)) for name, spec in specs.items()}
    assert built == {
        "ops-mail": EmailChannel,
        "ops-sms": SmsHttpChannel,
        "modem": GammuChannel,
        "hook": WebhookChannel,
        "phone": NtfyChannel,
        "gotify": GotifyChannel,
        "audit": LogChannel,
    }


def test_no_secret_appears_in_any_repr() -> None:
    shown = repr(parse_channels(CONFIG)) + str(parse_channels(CONFIG))
    for word in ("mail-pass", "sms-token", "hook-secret", "gotify-token"):
        assert word not in shown
    assert "Secret('***')" in shown


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (
            {"ops-mail": {"type": "email", "host": "h", "from": "a@b", "port": 0}},
            "channels.ops-mail.port: expected 1-65535, got 0",
        ),
        ({"x": {"type": "pigeon"}}, "channels.x.type: expected one of email, sms_http"),
        ({"x": {"host": "h"}}, "channels.x.type: expected one of"),
        ({"x": "email"}, "channels.x: expected a table, got str"),
        ({"x": {"type": "log", "retry": {"max_attempts": 99}}}, "channels.x.retry.max_attempts: expected 1-20"),
        ({"x": {"type": "log", "level": "loud"}}, "channels.x.level: expected one of debug"),
        ({"x": {"type": "webhook", "url": "hooks.example"}}, "channels.x.url: expected an http"),
        ({"x": {"type": "gotify", "server": "https://g", "token": "t", "timeout": 0}}, "channels.x.timeout"),
    ],
)
def test_config_errors_name_the_path(raw: dict[str, object], error: str) -> None:
    with pytest.raises(AlertConfigError, match="^" + error):
        parse_channels(raw)


def test_secret_compares_without_showing_itself() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))
    assert str(Secret("pw")) == repr(Secret("pw")) == "Secret('***')"


def test_signature_checks_accept_bare_or_prefixed_hex_and_refuse_garbage() -> None:
    key = Secret("k")
    good = signature(key, "100", b"body")
    assert signature_matches(key, "100", b"body", good)
    assert signature_matches(key, "100", b"body", "sha256=" + good.upper())
    assert not signature_matches(key, "101", b"body", good)
    assert not signature_matches(key, "100", b"body", "ß" * 64)


def test_severity_map_defaults_fill_gaps() -> None:
    assert severity_map({"info": 1}, "p", {"info": 2, "warning": 3}, 1, 5) == {"info": 1, "warning": 3}
    with pytest.raises(AlertConfigError, match="^p.info: expected 1-5, got True"):
        severity_map({"info": True}, "p", {}, 1, 5)


def test_log_channel_writes_one_json_line_and_never_fails(caplog: pytest.LogCaptureFixture) -> None:
    channel = build_channel(parse_channels({"audit": {"type": "log", "logger": "pm.test", "level": "error"}})["audit"])
    message = OutgoingMessage(id="n-1", recipient="ops", subject="CRIT x", text="x on y", fingerprints=("fp",))
    with caplog.at_level(logging.DEBUG, logger="pm.test"):
        result = channel.send(message, 123)
    assert result.status == "delivered" and result.provider_id == "n-1"
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.name == "pm.test"
    line = orjson.loads(record.getMessage())
    assert line["event"] == "alert_notification" and line["alerts"] == ["fp"] and line["at_ms"] == 123
