"""The exception tree of the rollout package."""

from __future__ import annotations


class RolloutError(ValueError):
    """Anything the rollout cores refuse; the message names the field or the device and the reason."""


class RolloutSpecError(RolloutError):
    """A rollout spec or inventory that cannot be run, e.g. ``waves.percentages[2]: expected ... got ...``."""


class NoTargetError(RolloutSpecError):
    """The selector matched no device of the inventory: a rollout to nobody is refused, never a silent no-op."""


class RolloutStateError(RolloutError):
    """A command that does not fit the rollout's state (resume a running rollout, abort a completed one)."""


class RolloutStoreError(RolloutError):
    """The state file holds no such rollout, or a saved state that does not load."""
