"""Broker addresses: ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...`` for TLS."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used; the message says which part is wrong."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where to connect and how; the password is never shown by ``str()``."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse a broker URL, refusing anything that would leave a node unable to connect."""
    if not isinstance(url, str) or not url:
        raise BrokerUrlError("broker URL is empty")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BrokerUrlError(f"broker URL {url!r}: {exc}") from None
    try:
        port = parts.port
    except ValueError:
        raise BrokerUrlError(f"broker URL {url!r}: port is not a number from 1 to 65535") from None
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise BrokerUrlError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    if not parts.hostname:
        raise BrokerUrlError(f"broker URL {url!r}: no host")
    if port == 0:
        raise BrokerUrlError(f"broker URL {url!r}: port is not a number from 1 to 65535")
    if parts.path not in ("", "/"):
        raise BrokerUrlError(f"broker URL {url!r}: unexpected path {parts.path!r}")
    return BrokerAddress(
        host=parts.hostname,
        port=port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
