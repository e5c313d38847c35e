"""API keys: one or more per user, kept as SHA-256 digests so a leaked keys file opens nothing.

A key is 32 random bytes (``pm_`` + base64url), shown once by ``pymonitor api add-key``. With
that much entropy a plain SHA-256 is enough (a slow hash protects guessable passwords, not
random keys). Lookup compares the digest of the presented key with every stored digest in
constant time, so the time taken says nothing about which user or how much matched.

Keys file (JSON, mode 0600)::

    {"version": 1, "keys": [{"user": "ana", "sha256": "<hex>", "created_ms": 1764806400000}]}

Responders of the alerting config's ``[replies]`` that carry an ``api_key`` are keys too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from pymonitor.actors.alerting.replies import Responder

KEY_PREFIX = "pm_"
KEY_BYTES = 32
USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class KeyFileError(ValueError):
    """A keys file that cannot be read or written; the message names the file and the entry."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredKey:
    user: str
    sha256: str  # hex digest of the key
    created_ms: int = 0


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def bearer(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


class ApiKeys:
    """Who a presented key belongs to."""

    def __init__(self, keys: Iterable[StoredKey] = ()) -> None:
        self.keys = tuple(keys)

    @classmethod
    def load(cls, path: Path | None, responders: Iterable[Responder] = ()) -> ApiKeys:
        """The keys of ``path`` (when given) and of the responders that have an ``api_key``."""
        stored = list(read_keys(path)) if path is not None else []
        stored += [StoredKey(user=r.name, sha256=digest(r.api_key.reveal())) for r in responders if r.api_key]
        return cls(stored)

    def user_for(self, key: str | None) -> str | None:
        if not key:
            return None
        given = digest(key).encode()
        found: str | None = None
        for stored in self.keys:  # no early exit: every key costs the same
            if hmac.compare_digest(stored.sha256.encode(), given):
                found = stored.user
        return found


def read_keys(path: Path) -> list[StoredKey]:
    """The entries of a keys file; a missing file is no keys."""
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, orjson.JSONDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the keys file ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("keys"), list):
        raise KeyFileError(f'{path}: expected {{"version": 1, "keys": [...]}}')
    out: list[StoredKey] = []
    for i, entry in enumerate(raw["keys"]):
        where = f"{path}: keys[{i}]"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where}: expected an object")
        user, sha, created = entry.get("user"), entry.get("sha256"), entry.get("created_ms", 0)
        if not isinstance(user, str) or not USER.fullmatch(user):
            raise KeyFileError(f"{where}.user: expected a user name, got {user!r}")
        if not isinstance(sha, str) or not _DIGEST.fullmatch(sha):
            raise KeyFileError(f"{where}.sha256: expected 64 hex digits")
        if not isinstance(created, int):
            raise KeyFileError(f"{where}.created_ms: expected an integer")
        out.append(StoredKey(user=user, sha256=sha, created_ms=created))
    return out


def add_key(path: Path, user: str, now_ms: int) -> str:
    """A new key for ``user``, its digest appended to ``path`` (created 0600); the key itself is not kept."""
    if not USER.fullmatch(user):
        raise KeyFileError(f"user: expected letters, digits and _.@- (up to 64), got {user!r}")
    entries = read_keys(path)
    key = new_key()
    entries.append(StoredKey(user=user, sha256=digest(key), created_ms=now_ms))
    body = {"version": 1, "keys": [{"user": e.user, "sha256": e.sha256, "created_ms": e.created_ms} for e in entries]}
    scratch = path.with_name(path.name + ".tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
    scratch.replace(path)
    return key
