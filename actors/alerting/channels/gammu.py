"""SMS through a GSM modem run by gammu-smsd with its FILES backend (spool directories).

Outbox file names (gammu-smsd-files(7)): ``OUT<priority>_<recipient>_<serial>.txt``, e.g.
``OUTA_+447700900123_00042517.txt``. ``<priority>`` is a letter, A first; we use A for critical
and emergency, B for warning, C for info. ``<recipient>`` is the E.164 number; ``<serial>`` is
derived from the message id, so a retried message rewrites the same file instead of sending twice.
The text is written UTF-16 with a BOM (gammu reads that as Unicode) after transliteration to
GSM-7 and cutting to ``max_segments`` parts. Files are written to a dot-named temporary file in
the outbox and renamed into place: gammu never reads a half-written message.

gammu moves a sent file to the sent directory and a failed one to the error directory under the
same name; :meth:`GammuChannel.check` looks there. "delivered" from ``check`` means the modem
handed the message to the network: without delivery reports gammu knows no more than that.

Received messages land in the inbox as ``IN<YYYYMMDD>_<HHMMSS>_<serial>_<sender>_<part>.txt``;
:class:`GammuInbox` joins the parts, decodes them and moves the files into ``inbox/processed`` so
no reply is read twice.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..fields import count, fail, table, text
from ..sms import fit, transliterate
from .base import DeliveryResult, DeliveryStatus, OutgoingMessage

PRIORITY = {"emergency": "A", "critical": "A", "warning": "B", "info": "C"}
_RECIPIENT = re.compile(r"\+?[0-9]{3,20}")
_INBOX = re.compile(r"IN([0-9]{8})_([0-9]{6})_([0-9]{2})_([^_/]{1,40})_([0-9]{2})\.(txt|bin|smsbackup)")


@dataclass(frozen=True, slots=True, kw_only=True)
class GammuConfig:
    outbox: Path
    sent: Path
    error: Path
    inbox: Path
    max_segments: int = 2

    @classmethod
    def parse(cls, raw: object, where: str) -> GammuConfig:
        cfg = table(raw, where, {"type", "outbox", "sent", "error", "inbox", "max_segments", "retry"})
        segments = count(cfg.get("max_segments", 2), f"{where}.max_segments", maximum=10)
        paths = {key: Path(text(cfg.get(key), f"{where}.{key}")) for key in ("outbox", "sent", "error", "inbox")}
        for key, path in paths.items():
            if not path.is_absolute():
                raise fail(f"{where}.{key}", f"expected an absolute path (gammu-smsdrc uses them), got {str(path)!r}")
        return cls(max_segments=max(segments, 1), **paths)


def outbox_name(message: OutgoingMessage) -> str | None:
    """The spool file name for ``message``; None when the recipient is not a phone number."""
    recipient = message.recipient.replace(" ", "")
    if not _RECIPIENT.fullmatch(recipient):
        return None
    serial = int.from_bytes(hashlib.blake2b(message.id.encode(), digest_size=4).digest(), "big") % 100_000_000
    return f"OUT{PRIORITY[message.severity]}_{recipient}_{serial:08d}.txt"


class GammuChannel:
    """Queues SMS in gammu-smsd's outbox; "sent" means queued, :meth:`check` says what became of it."""

    def __init__(self, config: GammuConfig) -> None:
        self.config = config

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        name = outbox_name(message)
        if name is None:
            return DeliveryResult(status="failed", detail=f"recipient {message.recipient[:30]!r} is not a phone number")
        body = fit(transliterate(message.text), self.config.max_segments)
        tmp = self.config.outbox / f".{name}.{os.getpid()}.tmp"  # gammu only reads names starting with OUT
        try:
            with tmp.open("wb") as handle:
                handle.write(body.encode("utf-16"))  # with BOM
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self.config.outbox / name)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return DeliveryResult(status="retry", detail=f"outbox not writable: {type(exc).__name__}: {exc}"[:200])
        return DeliveryResult(status="sent", provider_id=name, detail="queued in gammu outbox")

    def check(self, provider_id: str) -> DeliveryResult:
        """Where gammu has put the spool file ``provider_id`` (as ``send`` returned it)."""
        places: tuple[tuple[Path, DeliveryStatus, str], ...] = (
            (self.config.sent, "delivered", "sent by the modem"),
            (self.config.error, "failed", "gammu could not send it (see the smsd log)"),
            (self.config.outbox, "sent", "still waiting in the outbox"),
        )
        for folder, status, detail in places:
            if (folder / provider_id).exists():
                return DeliveryResult(status=status, provider_id=provider_id, detail=detail)
        return DeliveryResult(status="failed", provider_id=provider_id, detail="spool file vanished")


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundSms:
    """One received SMS, its parts joined."""

    sender: str
    text: str
    received_ms: int  # from the file name, read as UTC (the modem's clock)
    files: tuple[str, ...]


class GammuInbox:
    """Reads replies from gammu's inbox; files it cannot read are counted in ``skipped`` and left alone."""

    def __init__(self, inbox: Path) -> None:
        self.inbox = inbox
        self.processed = inbox / "processed"
        self.skipped: Counter[str] = Counter()

    def collect(self) -> list[InboundSms]:
        """Every complete message now in the inbox, oldest first; their files move to ``processed``."""
        groups: dict[tuple[str, str, str, str], list[tuple[str, Path]]] = {}
        for path in sorted(self.inbox.iterdir()):
            if not path.is_file() or not path.name.startswith("IN"):
                continue
            match = _INBOX.fullmatch(path.name)
            if match is None:
                self.skipped["bad name"] += 1
                continue
            day, clock, serial, sender, part, ext = match.groups()
            if ext != "txt":
                self.skipped[f"not text ({ext})"] += 1
                continue
            groups.setdefault((day, clock, serial, sender), []).append((part, path))
        messages = []
        for (day, clock, _serial, sender), parts in sorted(groups.items()):
            received = _file_time_ms(day, clock)
            if received is None:
                self.skipped["bad date"] += len(parts)
                continue
            paths = [path for _, path in sorted(parts)]
            body = "".join(_decode(path.read_bytes()) for path in paths)
            messages.append(
                InboundSms(sender=sender, text=body, received_ms=received, files=tuple(p.name for p in paths))
            )
            self.processed.mkdir(exist_ok=True)
            for path in paths:
                path.replace(self.processed / path.name)
        return messages


def _file_time_ms(day: str, clock: str) -> int | None:
    try:
        parsed = time.strptime(day + clock, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return calendar.timegm(parsed) * 1000


def _decode(raw: bytes) -> str:
    """gammu writes Unicode inbox files as UTF-16 with a BOM (InboxFormat=unicode); else UTF-8/8-bit."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8", errors="replace")
