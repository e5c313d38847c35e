"""What a node keeps between restarts about remote config: merge base, replay window, last refusal.

One small CBOR file next to the node's TOML, replaced whole like the config file. A missing
file means "never configured remotely"; a corrupt one is refused with the reason, never guessed
at (the node then keeps its TOML and reports). ``local`` is not in it: it is the TOML file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2

from .apply import NodeConfigState, Rejection
from .canonical import canonical_bytes
from .errors import ConfigSyncError
from .files import replace_file
from .signing import REPLAY_WINDOW, ReplayGuard

STATE_FORMAT = 1


def save_node_state(path: str | Path, state: NodeConfigState, replay: ReplayGuard) -> None:
    """Write the merge base, the replay window and the last refusal; whole or not at all."""
    memo = state.last_rejection
    data: dict[str, Any] = {
        "format": STATE_FORMAT,
        "base": state.base,
        "base_version": state.base_version,
        "replay": replay.snapshot(),
        "rejection": None if memo is None else [memo.version, memo.hash, memo.reason, memo.detail],
    }
    replace_file(Path(path), canonical_bytes(data))


def _rejection(raw: object, path: Path) -> Rejection | None:
    if raw is None:
        return None
    if isinstance(raw, list) and len(raw) == 4 and isinstance(raw[0], int) and all(isinstance(x, str) for x in raw[1:]):
        return Rejection(version=raw[0], hash=raw[1], reason=raw[2], detail=raw[3])
    raise ConfigSyncError(f"{path}: rejection: expected [version, hash, reason, detail]")


def load_node_state(
    path: str | Path, local: Mapping[str, Any], *, window: int = REPLAY_WINDOW
) -> tuple[NodeConfigState, ReplayGuard]:
    """The state and replay guard :func:`save_node_state` wrote, with ``local`` (the TOML's data).

    An absent file gives the never-configured state and an empty guard.
    """
    path = Path(path)
    if not path.exists():
        return NodeConfigState(local=dict(local)), ReplayGuard(window=window)
    try:
        data = cbor2.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigSyncError(f"{path}: cannot read: {exc.strerror}") from None
    except Exception as exc:  # noqa: BLE001 - cbor2 raises many types on garbage; all mean "corrupt"
        raise ConfigSyncError(f"{path}: not a node config state file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise ConfigSyncError(f"{path}: not a node config state file of format {STATE_FORMAT}")
    base, version, replay = data.get("base"), data.get("base_version"), data.get("replay")
    if not isinstance(base, dict) or not isinstance(version, int) or not isinstance(replay, dict):
        raise ConfigSyncError(f"{path}: base, base_version or replay has the wrong type")
    if not all(isinstance(k, str) and isinstance(v, int) for k, v in replay.items()):
        raise ConfigSyncError(f"{path}: replay: expected key ids mapped to sequences")
    state = NodeConfigState(
        local=dict(local), base=base, base_version=version, last_rejection=_rejection(data.get("rejection"), path)
    )
    return state, ReplayGuard.restore(replay, window=window)
