"""The exception tree of the configsync package: one base, one subclass per kind of refusal."""

from __future__ import annotations

from typing import Literal

RefusalReason = Literal["unsigned", "unknown_key", "forged", "stale", "replayed"]
"""Why a signed envelope was refused; a node reports this word back to the hub."""


class ConfigSyncError(ValueError):
    """Anything configsync refuses; the message names the field (or envelope part) and the reason."""


class SignatureError(ConfigSyncError):
    """A signed envelope that must not be acted on; ``reason`` says which check failed."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        self.reason: RefusalReason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class KeyFileError(ConfigSyncError):
    """A key file that cannot be read, written or parsed; names the file and why."""


class ConfigValidationError(ConfigSyncError):
    """A config document refused by the node schema; ``field`` is the dotted path (``broker.url``)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class PatchError(ConfigSyncError):
    """A patch operation that cannot apply; names the operation index, the path and why."""
