"""The only place MQTT topics are built or parsed.

Layout: ``pm/v1/{fleet}/{node}/{direction}/{kind}[/{name}]`` plus ``pm/v1/{fleet}/{node}/state``.
Names (fleet, node, command) are validated: no wildcards, no slashes, no empty levels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "pm/v1"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")

UP_KINDS = ("readings", "backfill", "events", "ack", "deadletter", "summaries")
DOWN_KINDS = ("cmd", "config", "ack")


class TopicError(ValueError):
    """A topic or a name in it is not valid; the message says which part and why."""


def check_name(value: str, what: str) -> str:
    """A fleet, node or command name: 1-64 of letters, digits, ``_ . : -``; no wildcards."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise TopicError(
            f"{what} name {value!r} is invalid: use 1-64 letters, digits or _ . : - "
            "(no '/', '+', '#', spaces, and not starting with a symbol)"
        )
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic. ``direction`` is "up", "down" or "state"; ``name`` only for commands."""

    fleet: str
    node: str
    direction: str
    kind: str
    name: str = ""


def _node_base(fleet: str, node: str) -> str:
    return f"{ROOT}/{check_name(fleet, 'fleet')}/{check_name(node, 'node')}"


def up(fleet: str, node: str, kind: str) -> str:
    """Node-to-hub topic of one kind (readings, backfill, events, ack, deadletter)."""
    if kind not in UP_KINDS:
        raise TopicError(f"unknown up kind {kind!r}; expected one of {', '.join(UP_KINDS)}")
    return f"{_node_base(fleet, node)}/up/{kind}"


def state(fleet: str, node: str) -> str:
    """Retained birth/death of a node; the death is the MQTT Will."""
    return f"{_node_base(fleet, node)}/state"


def command(fleet: str, node: str, name: str) -> str:
    """A command to a node."""
    return f"{_node_base(fleet, node)}/down/cmd/{check_name(name, 'command')}"


def config(fleet: str, node: str) -> str:
    """Retained desired configuration of a node."""
    return f"{_node_base(fleet, node)}/down/config"


def delivery_ack(fleet: str, node: str) -> str:
    """Hub-to-node acknowledgement of stored frames."""
    return f"{_node_base(fleet, node)}/down/ack"


def node_inbox(fleet: str, node: str) -> str:
    """Filter for everything sent down to one node."""
    return f"{_node_base(fleet, node)}/down/#"


def fleet_filter(fleet: str, kind: str, *, share_group: str | None = None) -> str:
    """Subscription filter for one up kind (or "state") from every node of a fleet.

    With ``share_group``, an MQTT shared subscription so several hub processes split the load.
    """
    check_name(fleet, "fleet")
    if kind == "state":
        topic = f"{ROOT}/{fleet}/+/state"
    elif kind in UP_KINDS:
        topic = f"{ROOT}/{fleet}/+/up/{kind}"
    else:
        raise TopicError(f"unknown kind {kind!r} for a fleet filter")
    if share_group is not None:
        topic = f"$share/{check_name(share_group, 'share group')}/{topic}"
    return topic


def parse(topic: str) -> Topic:
    """Split a PyMonitor topic into its parts, validating each."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
        raise TopicError(f"topic {topic!r} is not under {ROOT}/<fleet>/<node>/")
    fleet = check_name(parts[2], "fleet")
    node = check_name(parts[3], "node")
    rest = parts[4:]
    if rest == ["state"]:
        return Topic(fleet, node, "state", "state")
    if len(rest) == 2 and rest[0] == "up" and rest[1] in UP_KINDS:
        return Topic(fleet, node, "up", rest[1])
    if len(rest) == 2 and rest[0] == "down" and rest[1] in ("config", "ack"):
        return Topic(fleet, node, "down", rest[1])
    if len(rest) == 3 and rest[:2] == ["down", "cmd"]:
        return Topic(fleet, node, "down", "cmd", check_name(rest[2], "command"))
    raise TopicError(f"topic {topic!r}: unknown kind {'/'.join(rest)!r}")
