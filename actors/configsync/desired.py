"""Desired state: versioned config documents per node and per group, and a node's effective config.

Precedence of the effective config, lowest first: the groups in the order given (a later group
overrides an earlier one), then the node's own overrides. Tables merge key by key; any other
value (scalar, list) replaces the one below it whole. A layer cannot delete a key set below it:
move the key out of the lower layer instead.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pymonitor.messages.config import ConfigDesired

from .canonical import content_hash
from .patch import PatchOp, apply_patch
from .signing import SignedEnvelope, sign

Doc = dict[str, Any]

DESIRED_TAG = "config.desired.v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredState:
    """One version of the desired document of a target, as kept in the history.

    Targets are opaque names; by convention ``group:<g>`` and ``node:<n>`` hold the layers an
    operator edits and ``sent:<n>`` the effective documents sent to node ``n`` (the versions the
    node sees and reports on). ``restores`` is the version a rollback copied (0: not a rollback).
    """

    target: str
    version: int
    doc: Doc
    hash: str
    created_ms: int = 0
    author: str = ""
    note: str = ""
    restores: int = 0

    @classmethod
    def initial(cls, target: str, doc: Mapping[str, Any], *, created_ms: int = 0, author: str = "") -> DesiredState:
        """Version 1 of a target."""
        return cls(
            target=target,
            version=1,
            doc=copy.deepcopy(dict(doc)),
            hash=content_hash(doc),
            created_ms=created_ms,
            author=author,
        )


def node_target(node: str) -> str:
    return f"node:{node}"


def group_target(group: str) -> str:
    return f"group:{group}"


def sent_target(node: str) -> str:
    return f"sent:{node}"


def successor(
    state: DesiredState,
    doc: Mapping[str, Any],
    *,
    created_ms: int = 0,
    author: str = "",
    note: str = "",
    restores: int = 0,
) -> DesiredState:
    """The next version of ``state`` with content ``doc`` (also how a rollback is made)."""
    return DesiredState(
        target=state.target,
        version=state.version + 1,
        doc=copy.deepcopy(dict(doc)),
        hash=content_hash(doc),
        created_ms=created_ms,
        author=author,
        note=note,
        restores=restores,
    )


def update(
    state: DesiredState, ops: Sequence[PatchOp], *, created_ms: int = 0, author: str = "", note: str = ""
) -> DesiredState:
    """Apply a partial update: version + 1, or :class:`PatchError` and no new version."""
    return successor(state, apply_patch(state.doc, ops), created_ms=created_ms, author=author, note=note)


def overlay(lower: Mapping[str, Any], upper: Mapping[str, Any]) -> Doc:
    """``upper`` over ``lower``: tables merged recursively, other values replaced."""
    out: Doc = copy.deepcopy(dict(lower))
    for key, value in upper.items():
        below = out.get(key)
        if isinstance(below, dict) and isinstance(value, dict):
            out[key] = overlay(below, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def effective(groups: Iterable[Mapping[str, Any]], node_overrides: Mapping[str, Any]) -> Doc:
    """The config a node should run: group layers (lowest first), then its own overrides."""
    doc: Doc = {}
    for layer in (*groups, node_overrides):
        doc = overlay(doc, layer)
    return doc


def desired_message(node: str, version: int, doc: Mapping[str, Any]) -> ConfigDesired:
    """An unsigned desired message for ``node`` (sign it with :func:`sign_desired`)."""
    return ConfigDesired(node=node, version=version, hash=content_hash(doc), doc=copy.deepcopy(dict(doc)))


def desired_body(msg: ConfigDesired) -> Doc:
    """What the signature covers: tag, node, version, hash and document (not the envelope fields)."""
    return {"t": DESIRED_TAG, "node": msg.node, "version": msg.version, "hash": msg.hash, "doc": msg.doc}


def sign_desired(
    msg: ConfigDesired, private_key: Ed25519PrivateKey, *, issued_ms: int, expires_ms: int, seq: int
) -> ConfigDesired:
    """The message with its signature fields filled in."""
    env = sign(desired_body(msg), private_key, issued_ms=issued_ms, expires_ms=expires_ms, seq=seq)
    return dataclasses.replace(
        msg,
        key_id=env.key_id,
        issued_ms=env.issued_ms,
        expires_ms=env.expires_ms,
        seq=env.seq,
        signature=env.signature,
    )


def envelope_of(msg: ConfigDesired) -> SignedEnvelope:
    """The signing envelope carried by a desired message, for :func:`~.signing.verify`."""
    return SignedEnvelope(
        body=desired_body(msg),
        key_id=msg.key_id,
        issued_ms=msg.issued_ms,
        expires_ms=msg.expires_ms,
        seq=msg.seq,
        signature=msg.signature,
    )


class PendingDesired:
    """The latest desired message per node not yet confirmed; a newer one supersedes an older one.

    Config is state, not a stream of edits: an offline node only needs the newest version when it
    comes back (the retained topic carries it; this tells the hub whom to re-send to and who lags).
    """

    __slots__ = ("_by_node",)

    def __init__(self) -> None:
        self._by_node: dict[str, ConfigDesired] = {}

    def enqueue(self, msg: ConfigDesired) -> None:
        held = self._by_node.get(msg.node)
        if held is None or msg.version > held.version:
            self._by_node[msg.node] = msg

    def confirm(self, node: str, version: int) -> None:
        """A report for ``version`` (applied or rejected) settles that version and older ones."""
        held = self._by_node.get(node)
        if held is not None and held.version <= version:
            del self._by_node[node]

    def due(self, online: Iterable[str]) -> list[ConfigDesired]:
        """The pending messages of the nodes now online, by node name."""
        return [self._by_node[n] for n in sorted(set(online)) if n in self._by_node]

    def lagging(self) -> list[str]:
        """Nodes with a desired version they have not reported on."""
        return sorted(self._by_node)
