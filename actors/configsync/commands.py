"""Signed control commands: the hub signs a ``raw.request.v1`` or ``command.v1`` frame, a node opens it.

The frame is signed as its exact bytes inside the body map ``{"command.signed.v1": frame}``, with
the scheme of :mod:`.signing` (key id, issue/expiry, per-key sequence): the map key keeps a
signature made for a config or a rollout body from ever verifying as a command. A node that trusts
keys acts only on what :func:`open_command` returns and answers everything else with the reason
of the :class:`SignatureError` (unsigned, unknown_key, forged, stale, replayed).

Pure apart from :func:`next_command_seq` (a small state file): no clock reads, no MQTT.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pymonitor.messages import Command, MessageError, RawRequest, SignedCommand, decode

from .errors import ConfigSyncError, KeyFileError, SignatureError
from .signing import CLOCK_SKEW_MS, ReplayGuard, SignedEnvelope, sign, verify

BODY_KEY = "command.signed.v1"
"""The one key of the signed body map: the command frame's bytes sit under it."""

COMMAND_TTL_MS = 10 * 60_000
"""How long a signed control command stays acceptable: an operator's request is wanted now, not next week."""

SEQ_FILE_SUFFIX = ".seq"
"""``<key file>.seq`` beside a private key holds the last sequence its commands were signed with."""

ControlCommand = RawRequest | Command
"""What a signed command may carry."""


SIGNATURE_FIELDS = ("key_id", "issued_ms", "expires_ms", "seq", "signature")
"""What a ``command.signed.v1`` and a :class:`SignedEnvelope` share: all but the body."""


def _signature_fields(source: SignedEnvelope | SignedCommand) -> dict[str, Any]:
    return {name: getattr(source, name) for name in SIGNATURE_FIELDS}


def _control(frame: bytes, where: str) -> ControlCommand:
    msg = decode(frame)
    if not isinstance(msg, RawRequest | Command):
        raise MessageError(f"{where}: expected raw.request.v1 or command.v1, got {type(msg).__name__}", path="$.body")
    return msg


def sign_command(
    inner_frame: bytes, key: Ed25519PrivateKey, now_ms: int, seq: int, ttl_ms: int = COMMAND_TTL_MS
) -> SignedCommand:
    """``inner_frame`` (an encoded control command) signed for delivery within ``ttl_ms``; ``seq`` must grow per key.

    Raises :class:`ConfigSyncError` naming the problem if the frame is not a control command
    or ``ttl_ms`` is not positive.
    """
    try:
        _control(inner_frame, "inner_frame")
    except MessageError as exc:
        raise ConfigSyncError(f"inner_frame: {exc}") from None
    if ttl_ms <= 0:
        raise ConfigSyncError(f"ttl_ms: expected a positive duration, got {ttl_ms}")
    env = sign({BODY_KEY: inner_frame}, key, issued_ms=now_ms, expires_ms=now_ms + ttl_ms, seq=seq)
    return SignedCommand(body=inner_frame, **_signature_fields(env))


def open_command(
    frame: bytes | object,
    trusted: Mapping[str, Ed25519PublicKey],
    guard: ReplayGuard,
    now_ms: int,
    *,
    skew_ms: int = CLOCK_SKEW_MS,
) -> ControlCommand:
    """The command inside a verified ``command.signed.v1`` (a frame or a decoded message); its seq is recorded.

    Raises :class:`SignatureError` (anything but a valid signed command, with the reason) or
    :class:`MessageError` (a frame that does not decode, or a verified body that is no control command).
    """
    msg = decode(frame) if isinstance(frame, bytes) else frame
    if not isinstance(msg, SignedCommand):
        raise SignatureError("unsigned", f"{type(msg).__name__} is not a command.signed.v1 (signed ones only)")
    envelope = SignedEnvelope(body={BODY_KEY: msg.body}, **_signature_fields(msg))
    verify(envelope, trusted, guard, now_ms, skew_ms=skew_ms)
    return _control(msg.body, "command.signed.v1")


def command_id(msg: object) -> str:
    """The id to answer with: the command's own, or the one inside a signed frame (unverified, only to correlate)."""
    if isinstance(msg, SignedCommand):
        try:
            msg = decode(msg.body)
        except MessageError:
            return ""
    return msg.id if isinstance(msg, RawRequest | Command) else ""


def next_command_seq(key_path: str | Path, now_ms: int) -> int:
    """The next sequence for commands signed with the key at ``key_path``, kept in ``<key_path>.seq``.

    ``max(last + 1, now_ms)``, reserved under a file lock before it is used: the floor at the clock
    keeps sequences growing if the file is lost or damaged, or two machines hold copies of the key.
    """
    path = Path(f"{key_path}{SEQ_FILE_SUFFIX}")
    try:
        with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as state:
            fcntl.flock(state, fcntl.LOCK_EX)
            text = state.read().strip()
            seq = max((int(text) if text.isdigit() else 0) + 1, now_ms)
            state.seek(0)
            state.truncate()
            state.write(b"%d\n" % seq)
            state.flush()
            os.fsync(state.fileno())
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot keep the command sequence: {exc.strerror}") from None
    return seq
