"""Control commands signed by the hub's key, for nodes that act only on commands they can verify.

A ``raw.request.v1`` or ``command.v1`` frame travels inside a ``command.signed.v1`` as its exact
bytes (``body``), so what was signed is what is acted on, never a re-encoding. The signature fields
follow ``pymonitor.actors.configsync.signing``; signing and opening live in
``pymonitor.actors.configsync.commands``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MessageError
from .registry import message


@message("command.signed.v1")
@dataclass(frozen=True, slots=True, kw_only=True)
class SignedCommand:
    """An encoded control command (``body``) with who signed it, when, until when, its sequence and the signature.

    ``seq`` grows per signing key (the node keeps a replay window per key); ``issued_ms`` and
    ``expires_ms`` are ms since the epoch, UTC. An empty ``signature`` means unsigned (refused).
    """

    body: bytes
    key_id: str
    issued_ms: int
    expires_ms: int
    seq: int
    signature: bytes = b""

    def __post_init__(self) -> None:
        if not self.body:
            raise MessageError("expected the encoded command frame, got no bytes", path="$.body")
