"""Email channel against a real aiosmtpd server on 127.0.0.1: plain, login, STARTTLS, implicit TLS."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.channels import EmailChannel, EmailConfig, OutgoingMessage
from pymonitor.actors.alerting.replies import AlertCodebook, RepliesConfig, ReplyHandler
from pymonitor.broker import free_port

NOW_MS = 1_764_806_400_000


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


class Rejector:
    def __init__(self, code: str) -> None:
        self.code = code

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return self.code


class DataRejector:
    def __init__(self, code: str) -> None:
        self.code = code

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.code


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"ops" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made here with cryptography."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _server_ctx(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*map(str, tls_files))
    return ctx


def _client_ctx(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[tuple[Controller, Recorder]]:
    options: dict[str, Any] = getattr(request, "param", {})
    handler = options.pop("handler", None) or Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def _message(**changes: Any) -> OutgoingMessage:
    fields: dict[str, Any] = {
        "id": "n-1",
        "recipient": "ann@example.org",
        "subject": "CRIT battery low",
        "text": "battery low: 11.2 V on gw-7/bms",
        "fingerprints": ("a1b2c3d4e5f60718",),
        "severity": "critical",
    }
    return OutgoingMessage(**(fields | changes))


def _config(port: int, **extra: object) -> EmailConfig:
    raw: dict[str, object] = {"host": "127.0.0.1", "port": port, "security": "plain", "from": "pm@example.org"}
    return EmailConfig.parse(raw | extra, "channels.ops-mail")


def test_plain_email_arrives_with_subject_and_message_id(smtp_server: tuple[Controller, Recorder]) -> None:
    controller, recorder = smtp_server
    result = EmailChannel(_config(controller.port)).send(_message(), NOW_MS)
    assert result.status == "sent"
    [envelope] = recorder.messages
    assert envelope.rcpt_tos == ["ann@example.org"]
    mail = message_from_bytes(envelope.content)
    assert mail["Subject"] == "CRIT battery low"
    assert mail["Message-ID"] == result.provider_id
    assert "11.2 V" in mail.get_payload()


@pytest.mark.parametrize("smtp_server", [{"authenticator": _authenticator, "auth_require_tls": False}], indirect=True)
def test_login_with_right_password_sends_and_wrong_password_fails_for_good(
    smtp_server: tuple[Controller, Recorder],
) -> None:
    controller, recorder = smtp_server
    good = EmailChannel(_config(controller.port, username="ops", password="s3cret"))
    assert good.send(_message(), NOW_MS).status == "sent"
    bad = EmailChannel(_config(controller.port, username="ops", password="nope"))
    result = bad.send(_message(), NOW_MS)
    assert result.status == "failed" and "login refused" in result.detail
    assert "nope" not in repr(bad.config) and "nope" not in result.detail
    assert len(recorder.messages) == 1


def test_starttls_with_self_signed_certificate(tls_files: tuple[Path, Path]) -> None:
    recorder = Recorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=_server_ctx(tls_files),
        require_starttls=True,
        authenticator=_authenticator,
    )
    controller.start()
    try:
        channel = EmailChannel(
            _config(controller.port, security="starttls", username="ops", password="s3cret"),
            ssl_context=_client_ctx(tls_files),
        )
        assert channel.send(_message(), NOW_MS).status == "sent"
        assert len(recorder.messages) == 1
        untrusting = EmailChannel(_config(controller.port, security="starttls"))  # system CAs: self-signed refused
        result = untrusting.send(_message(), NOW_MS)
        assert result.status == "retry" and "SSL" in result.detail
    finally:
        controller.stop()


def test_starttls_refused_when_server_does_not_offer_it(smtp_server: tuple[Controller, Recorder]) -> None:
    controller, recorder = smtp_server
    result = EmailChannel(_config(controller.port, security="starttls")).send(_message(), NOW_MS)
    assert result.status == "failed" and "STARTTLS" in result.detail
    assert recorder.messages == []


def test_implicit_tls(tls_files: tuple[Path, Path]) -> None:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), ssl_context=_server_ctx(tls_files))
    controller.start()
    try:
        channel = EmailChannel(_config(controller.port, security="ssl"), ssl_context=_client_ctx(tls_files))
        assert channel.send(_message(), NOW_MS).status == "sent"
        assert len(recorder.messages) == 1
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("smtp_server", "status"),
    [
        ({"handler": Rejector("450 mailbox busy")}, "retry"),
        ({"handler": Rejector("550 no such user")}, "failed"),
        ({"handler": DataRejector("451 try later")}, "retry"),
        ({"handler": DataRejector("554 spam")}, "failed"),
    ],
    indirect=["smtp_server"],
)
def test_smtp_refusals_retry_on_4xx_and_fail_on_5xx(smtp_server: tuple[Controller, Recorder], status: str) -> None:
    controller, _ = smtp_server
    assert EmailChannel(_config(controller.port)).send(_message(), NOW_MS).status == status


def test_unreachable_server_is_worth_a_retry() -> None:
    result = EmailChannel(_config(free_port(), timeout=2)).send(_message(), NOW_MS)
    assert result.status == "retry" and "ConnectionRefused" in result.detail


def test_email_carries_signed_reply_links_that_acknowledge(smtp_server: tuple[Controller, Recorder]) -> None:
    controller, recorder = smtp_server
    handler = ReplyHandler(config=RepliesConfig.parse({"secret": "k" * 32, "responders": []}), codebook=AlertCodebook())
    channel = EmailChannel(_config(controller.port, reply_url="https://pm.example.org/reply/"), links=handler)
    assert channel.send(_message(), NOW_MS).status == "sent"
    body = message_from_bytes(recorder.messages[0].content).get_payload(decode=True).decode()
    links = [word for word in body.split() if word.startswith("https://pm.example.org/reply?t=")]
    assert len(links) == 2
    from urllib.parse import parse_qs, urlsplit

    token = parse_qs(urlsplit(links[0]).query)["t"][0]
    outcome = handler.handle_token(token, NOW_MS + 60_000)
    assert outcome.accepted and outcome.action is not None
    assert outcome.action.by == "ann@example.org"  # type: ignore[union-attr]
    silence_token = parse_qs(urlsplit(links[1]).query)["t"][0]
    silenced = handler.handle_token(silence_token, NOW_MS + 60_000).action
    assert getattr(silenced, "duration_ms", None) == 2 * 3_600_000


def test_message_without_fingerprints_has_no_links(smtp_server: tuple[Controller, Recorder]) -> None:
    controller, recorder = smtp_server
    handler = ReplyHandler(config=RepliesConfig.parse({"secret": "k" * 32}), codebook=AlertCodebook())
    channel = EmailChannel(_config(controller.port, reply_url="https://pm.example.org/reply"), links=handler)
    channel.send(_message(fingerprints=()), NOW_MS)
    assert "reply?t=" not in message_from_bytes(recorder.messages[0].content).get_payload()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"port": 0}, "channels.ops-mail.port: expected 1-65535, got 0"),
        ({"security": "tls"}, "channels.ops-mail.security: expected one of plain, starttls, ssl, got 'tls'"),
        ({"username": "ops"}, "channels.ops-mail.password: username and password go together"),
        ({"from": "nobody"}, "channels.ops-mail.from: expected an address"),
        ({"colour": "red"}, "channels.ops-mail.colour: unknown key"),
        ({"timeout": -1}, "channels.ops-mail.timeout: expected seconds"),
        ({"host": ""}, "channels.ops-mail.host: expected a non-empty string"),
    ],
)
def test_bad_email_config_names_the_path(change: dict[str, object], error: str) -> None:
    with pytest.raises(AlertConfigError, match="^" + error.replace("(", r"\(").replace(")", r"\)")):
        raw = {"host": "127.0.0.1", "port": 25, "security": "plain", "from": "pm@example.org"}
        EmailConfig.parse(raw | change, "channels.ops-mail")


def test_default_ports_follow_security() -> None:
    raw = {"host": "mx", "from": "a@b"}
    assert EmailConfig.parse(raw | {"security": "ssl"}, "c").port == 465
    assert EmailConfig.parse(raw, "c").port == 587
    assert EmailConfig.parse(raw | {"security": "plain"}, "c").port == 25


def test_password_never_in_repr() -> None:
    cfg = _config(25, username="ops", password="hunter2")
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg)
    assert cfg.password is not None and cfg.password.reveal() == "hunter2"
