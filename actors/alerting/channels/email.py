"""Email over SMTP: plain, STARTTLS or implicit TLS (SMTPS), optional login, optional reply links.

Security is explicit in the config (``security = "starttls"``): a server that does not offer
STARTTLS when asked to fails the send rather than silently falling back to plain text. SMTP
replies 4xx are worth a retry, 5xx are not (RFC 5321).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal, Protocol
from urllib.parse import quote

from ..fields import fail, table, text
from .base import SECURITIES, DeliveryResult, DeliveryStatus, OutgoingMessage, Secret, choice, port, secret, timeout_s

Security = Literal["plain", "starttls", "ssl"]
_DEFAULT_PORTS = {"plain": 25, "starttls": 587, "ssl": 465}
SILENCE_LINK_MS = 2 * 3_600_000


class ReplyLinks(Protocol):
    """What the email channel needs of ``replies.ReplyHandler`` to sign links."""

    def link_token(
        self, fingerprint: str, by: str, now_ms: int, action: Literal["ack", "silence"] = ..., duration_ms: int = ...
    ) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailConfig:
    host: str
    port: int
    security: Security
    sender: str
    username: str | None = None
    password: Secret | None = None
    timeout_s: float = 10.0
    reply_url: str = ""  # base URL of the reply endpoint; "" sends no links

    @classmethod
    def parse(cls, raw: object, where: str) -> EmailConfig:
        cfg = table(
            raw,
            where,
            {"type", "host", "port", "security", "from", "username", "password", "timeout", "reply_url", "retry"},
        )
        security = choice(cfg.get("security", "starttls"), f"{where}.security", SECURITIES)
        username = text(cfg["username"], f"{where}.username") if "username" in cfg else None
        password = secret(cfg["password"], f"{where}.password") if "password" in cfg else None
        if (username is None) != (password is None):
            raise fail(f"{where}.password", "username and password go together")
        sender = text(cfg.get("from"), f"{where}.from")
        if "@" not in sender:
            raise fail(f"{where}.from", f"expected an address like alerts@example.org, got {sender!r}")
        return cls(
            host=text(cfg.get("host"), f"{where}.host"),
            port=port(cfg.get("port", _DEFAULT_PORTS[security]), f"{where}.port"),
            security=security,  # type: ignore[arg-type]  # checked by choice()
            sender=sender,
            username=username,
            password=password,
            timeout_s=timeout_s(cfg.get("timeout"), f"{where}.timeout"),
            reply_url=text(cfg["reply_url"], f"{where}.reply_url").rstrip("/") if "reply_url" in cfg else "",
        )


class EmailChannel:
    """Sends each message as one email; ``provider_id`` is its Message-ID."""

    def __init__(
        self, config: EmailConfig, *, links: ReplyLinks | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        self._links = links
        self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()

    def compose(self, message: OutgoingMessage, now_ms: int) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(now_ms / 1000, usegmt=True)
        mail["Message-ID"] = make_msgid(idstring=message.id[:64], domain="pymonitor")
        mail["X-PyMonitor-Message-Id"] = message.id
        mail.set_content(message.text + self._link_block(message, now_ms))
        return mail

    def _link_block(self, message: OutgoingMessage, now_ms: int) -> str:
        if self._links is None or not self.config.reply_url or not message.fingerprints:
            return ""
        lines = ["", "", "-- ", "Reply:"]
        for fingerprint in message.fingerprints:
            ack = self._links.link_token(fingerprint, message.recipient, now_ms, "ack")
            mute = self._links.link_token(fingerprint, message.recipient, now_ms, "silence", SILENCE_LINK_MS)
            lines.append(f"{fingerprint}: acknowledge {self.config.reply_url}?t={quote(ack)}")
            lines.append(f"{fingerprint}: silence 2h  {self.config.reply_url}?t={quote(mute)}")
        return "\n".join(lines) + "\n"

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        mail = self.compose(message, now_ms)
        try:
            with self._connect() as smtp:
                if self.config.security == "starttls":
                    smtp.starttls(context=self._ssl)
                if self.config.username is not None and self.config.password is not None:
                    smtp.login(self.config.username, self.config.password.reveal())
                smtp.send_message(mail)
        except smtplib.SMTPNotSupportedError:
            return DeliveryResult(status="failed", detail="server does not offer STARTTLS (or AUTH); refusing plain")
        except smtplib.SMTPAuthenticationError as exc:
            return DeliveryResult(status="failed", detail=f"login refused: {exc.smtp_code}")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            return DeliveryResult(
                status="retry" if all(c < 500 for c in codes) else "failed", detail=f"recipient refused: {codes}"
            )
        except smtplib.SMTPResponseException as exc:
            status: DeliveryStatus = "retry" if 400 <= exc.smtp_code < 500 else "failed"
            return DeliveryResult(status=status, detail=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:200])
        except (smtplib.SMTPException, OSError) as exc:
            return DeliveryResult(status="retry", detail=f"{type(exc).__name__}: {exc}"[:200])
        return DeliveryResult(status="sent", provider_id=str(mail["Message-ID"]), detail="accepted by SMTP server")

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        if cfg.security == "ssl":
            return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=self._ssl)
        return smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
