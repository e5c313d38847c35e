"""Remote configuration: signed desired state, validation, three-way merge, history, node-side apply.

Pure cores (no clock reads, no MQTT); the actors that carry messages and files live elsewhere.
Hub side: :func:`plan_desired` -> ``ConfigStore.append`` -> :func:`signed_for_node` -> publish
retained; on a report, :func:`decide_rollback`. Node side: :func:`apply` -> write the file with
:func:`write_config_file` -> :func:`save_node_state` -> publish ``result.report``.

Every error here is a :class:`ConfigSyncError`: :class:`SignatureError` (with a ``reason``),
:class:`KeyFileError`, :class:`ConfigValidationError` (with ``field``) and :class:`PatchError`.
"""

from pymonitor.actors.configsync.apply import ApplyResult, NodeConfigState, Rejection, apply, rejected
from pymonitor.actors.configsync.canonical import content_hash
from pymonitor.actors.configsync.commands import command_id, next_command_seq, open_command, sign_command
from pymonitor.actors.configsync.desired import (
    DesiredState,
    PendingDesired,
    effective,
    group_target,
    node_target,
    sent_target,
    update,
)
from pymonitor.actors.configsync.errors import (
    ConfigSyncError,
    ConfigValidationError,
    KeyFileError,
    PatchError,
    RefusalReason,
    SignatureError,
)
from pymonitor.actors.configsync.history import RollbackDecision, decide_rollback, rollback
from pymonitor.actors.configsync.hub import DESIRED_TTL_MS, plan_desired, signed_for_node
from pymonitor.actors.configsync.merge import MERGE_POLICIES, Conflict, MergePolicy, MergeResult, three_way_merge
from pymonitor.actors.configsync.node_state import load_node_state, save_node_state
from pymonitor.actors.configsync.patch import PatchOp, apply_patch, diff, parse_patch
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
from pymonitor.actors.configsync.tomlfile import to_toml, write_config_file
from pymonitor.actors.configsync.validate import validate, validate_change

__all__ = [
    "DESIRED_TTL_MS",
    "MERGE_POLICIES",
    "ApplyResult",
    "ConfigSyncError",
    "ConfigValidationError",
    "Conflict",
    "DesiredState",
    "KeyFileError",
    "MergePolicy",
    "MergeResult",
    "NodeConfigState",
    "PatchError",
    "PatchOp",
    "PendingDesired",
    "RefusalReason",
    "Rejection",
    "ReplayGuard",
    "RollbackDecision",
    "SignatureError",
    "SignedEnvelope",
    "apply",
    "apply_patch",
    "command_id",
    "content_hash",
    "decide_rollback",
    "diff",
    "effective",
    "generate_key",
    "group_target",
    "key_id",
    "load_node_state",
    "load_private_key",
    "load_public_key",
    "load_trusted_keys",
    "next_command_seq",
    "node_target",
    "open_command",
    "parse_patch",
    "plan_desired",
    "rejected",
    "rollback",
    "save_node_state",
    "save_private_key",
    "save_public_key",
    "sent_target",
    "sign",
    "sign_command",
    "signed_for_node",
    "three_way_merge",
    "to_toml",
    "trusted_keys",
    "update",
    "validate",
    "validate_change",
    "verify",
    "write_config_file",
]
