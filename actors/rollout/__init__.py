"""Fleet rollouts of a configuration or firmware version: targeting, waves, health gates, rollback.

Pure cores (no paho, no clock reads; ``now_ms`` is passed in): :func:`select_targets` picks devices
by label matchers, :class:`WavePlan` splits them into a canary and growing waves,
:mod:`.gates` judges each wave, :class:`RolloutEngine` is the state machine that turns reports
into commands, :class:`RolloutStore` keeps its state in SQLite across hub restarts, and
:mod:`.wire` batches commands (optionally ed25519-signed) and reports per node.

Errors: every refusal is a :class:`RolloutError` (a ``ValueError``): :class:`RolloutSpecError`
(a bad spec or inventory, naming the field), :class:`NoTargetError` (the selector matched no
device), :class:`RolloutStateError` (a command that does not fit the state, e.g. resume a running
rollout) and :class:`RolloutStoreError` (no such rollout, or a saved state that does not load).
"""

from .engine import (
    OUTCOMES,
    ROLLOUT_STATES,
    Command,
    DeviceState,
    RolloutEngine,
    RolloutStatus,
    WaveStatus,
)
from .errors import NoTargetError, RolloutError, RolloutSpecError, RolloutStateError, RolloutStoreError
from .gates import GatePolicy, Tally, abort_reason, gate_reason
from .host import HostCounters, RolloutHost
from .plan import Inventory, LabelMatcher, WavePlan, parse_matcher, parse_selector, select_targets
from .spec import RolloutSpec, spec_from_dict
from .state_store import ControlRequest, RolloutStore, apply_controls
from .wire import NodeCommands, Signer, decode_commands, decode_reports, encode_commands, encode_reports

__all__ = [
    "OUTCOMES",
    "ROLLOUT_STATES",
    "Command",
    "ControlRequest",
    "DeviceState",
    "GatePolicy",
    "HostCounters",
    "Inventory",
    "LabelMatcher",
    "NoTargetError",
    "NodeCommands",
    "RolloutEngine",
    "RolloutError",
    "RolloutHost",
    "RolloutSpec",
    "RolloutSpecError",
    "RolloutStateError",
    "RolloutStatus",
    "RolloutStore",
    "RolloutStoreError",
    "Signer",
    "Tally",
    "WavePlan",
    "WaveStatus",
    "abort_reason",
    "apply_controls",
    "decode_commands",
    "decode_reports",
    "encode_commands",
    "encode_reports",
    "gate_reason",
    "parse_matcher",
    "parse_selector",
    "select_targets",
    "spec_from_dict",
]
