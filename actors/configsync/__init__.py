"""Remote configuration: signed desired state, validation, three-way merge, history, node-side apply.

Pure cores; the actors that carry messages and files live elsewhere. Every error here is a
:class:`ConfigSyncError`: :class:`SignatureError` (with a ``reason``), :class:`KeyFileError`,
:class:`ConfigValidationError` (with ``field``) and :class:`PatchError`.
"""

from pymonitor.actors.configsync.errors import (
    ConfigSyncError,
    ConfigValidationError,
    KeyFileError,
    PatchError,
    RefusalReason,
    SignatureError,
)
from pymonitor.actors.configsync.signing import (
    ReplayGuard,
    SignedEnvelope,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    load_trusted_keys,
    save_private_key,
    save_public_key,
    sign,
    trusted_keys,
    verify,
)

__all__ = [
    "ConfigSyncError",
    "ConfigValidationError",
    "KeyFileError",
    "PatchError",
    "RefusalReason",
    "ReplayGuard",
    "SignatureError",
    "SignedEnvelope",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_trusted_keys",
    "save_private_key",
    "save_public_key",
    "sign",
    "trusted_keys",
    "verify",
]
