"""One validator for config documents, used by the hub before sending and by the node before applying.

It is the node's own TOML schema (:func:`pymonitor.deploy.config.parse_config`) applied to the
document, plus the checks that keep a node reachable after a remote change: a broker URL that
parses, a non-empty node name, and no remote rename (the hub addresses a node by its name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pymonitor.deploy.config import ConfigError, NodeConfig, parse_config

from .errors import ConfigValidationError

SOURCE = "config"
_WHERE = re.compile(r"^config at (?P<where>the top level|\[(?P<section>[^\]]+)\](?P<rest>(?:\.[^:\s]+)*)): ")
_NAMED_KEY = re.compile(r"^(?:unknown|missing required) key '([^']+)'")


def _field(message: str) -> tuple[str, str]:
    """Split a ``ConfigError`` text into (dotted field, reason)."""
    match = _WHERE.match(message)
    if match is None:
        return "", message
    field = "" if match["section"] is None else match["section"] + match["rest"]
    reason = message[match.end() :]
    named = _NAMED_KEY.match(reason)
    if named:  # name the unknown or missing key itself, not the table holding it
        field = f"{field}.{named[1]}" if field else named[1]
    return field, reason


def validate(doc: Mapping[str, Any]) -> NodeConfig:
    """The typed config of ``doc``, or :class:`ConfigValidationError` naming the field and the reason."""
    if not isinstance(doc, Mapping):
        raise ConfigValidationError("", f"expected a table of sections, got {type(doc).__name__}")
    node = doc.get("node")
    if isinstance(node, Mapping) and node.get("name") == "":
        raise ConfigValidationError("node.name", "empty: the node would have no topic and be unreachable")
    try:
        return parse_config(dict(doc), SOURCE)
    except ConfigError as exc:
        field, reason = _field(str(exc))
        raise ConfigValidationError(field, reason) from None


def validate_change(current: Mapping[str, Any], new: Mapping[str, Any]) -> NodeConfig:
    """Validate ``new`` as a replacement of ``current``; refuses a rename of the node."""
    config = validate(new)
    old_name = current.get("node", {}).get("name") if isinstance(current.get("node"), Mapping) else None
    if old_name is not None and config.node.name != old_name:
        raise ConfigValidationError(
            "node.name",
            f"renaming {old_name!r} to {config.node.name!r} remotely would make the node unreachable on its topic",
        )
    return config
