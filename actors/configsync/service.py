"""The hub's config service: edit layers, plan and sign what each node runs, history, rollback, publish.

Synchronous and single-threaded, so the hub actor and the CLI share it: the actor owns one on
its thread, the CLI opens one against the config DB (and a broker when asked to publish).
Layers live in the :class:`~pymonitor.store.config_store.ConfigStore` as versioned targets:
``group:<g>`` and ``node:<n>`` (what operators edit), ``members:<n>`` (the groups of a node,
lowest precedence first) and ``sent:<n>`` (the effective documents sent, what nodes report on).
"""

from __future__ import annotations

import contextlib
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, topics
from pymonitor.messages import encode
from pymonitor.messages.config import ConfigDesired, ConfigReport
from pymonitor.store.config_store import ConfigStore

from .canonical import content_hash
from .desired import (
    DesiredState,
    Doc,
    PendingDesired,
    desired_message,
    effective,
    group_target,
    node_target,
    sent_target,
    successor,
)
from .errors import ConfigSyncError, ConfigValidationError
from .history import RollbackDecision, decide_rollback, find_version, rollback
from .hub import DESIRED_TTL_MS, plan_desired, signed_for_node
from .patch import PatchOp, apply_patch, diff
from .signing import key_id

Publisher = Callable[[str, bytes, bool], None]
"""Publish ``(topic, payload, retain)``; the service publishes desired state retained, QoS 1."""

PUBACK_WAIT_S = 10.0
REPORTS_LOOKED_AT = 20
"""After a restart, a node's latest version counts as reported on if one of its last reports settles it."""


def members_target(node: str) -> str:
    return f"members:{node}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """A version planned for a node and, when a key and a publisher are set, the signed message sent."""

    node: str
    state: DesiredState
    message: ConfigDesired | None = None


class ConfigService:
    """Layers -> effective documents -> signed retained messages, over one :class:`ConfigStore`."""

    def __init__(
        self,
        store: ConfigStore,
        *,
        fleet: str,
        now_ms: Callable[[], int],
        key: Ed25519PrivateKey | None = None,
        publish: Publisher | None = None,
        author: str = "",
        ttl_ms: int = DESIRED_TTL_MS,
    ) -> None:
        self.store = store
        self.fleet = topics.check_name(fleet, "fleet")
        self.now_ms = now_ms
        self.key = key
        self.publisher = publish
        self.author = author
        self.ttl_ms = ttl_ms
        self.pending = PendingDesired()

    # -- reading

    def groups_of(self, node: str) -> list[str]:
        state = self.store.latest(members_target(node))
        return list(state.doc.get("groups", [])) if state is not None else []

    def members(self, group: str) -> list[str]:
        """Nodes whose latest membership lists ``group``."""
        prefix = members_target("")
        nodes = [t[len(prefix) :] for t in self.store.targets() if t.startswith(prefix)]
        return [n for n in nodes if group in self.groups_of(n)]

    def layer(self, target: str) -> Doc:
        state = self.store.latest(target)
        return state.doc if state is not None else {}

    def node_layer(self, node: str) -> Doc:
        """The node's own overrides; a new node starts with just its name (the schema requires it)."""
        return self.layer(node_target(node)) or {"node": {"name": node}}

    def effective(self, node: str) -> Doc:
        return effective([self.layer(group_target(g)) for g in self.groups_of(node)], self.node_layer(node))

    def history(self, node: str) -> list[DesiredState]:
        """Every version sent to ``node``, oldest first."""
        return self.store.history(sent_target(node))

    def version(self, node: str, version: int) -> DesiredState:
        found = find_version(self.history(node), version)
        if found is None:
            raise ConfigSyncError(f"{node}: no sent version {version}")
        return found

    def diff(self, node: str, from_version: int | None = None, to_version: int | None = None) -> list[PatchOp]:
        """Operations from one sent version to another (default: the one before the latest, to the latest)."""
        history = self.history(node)
        if not history:
            raise ConfigSyncError(f"{node}: nothing was ever sent to this node")
        to_state = history[-1] if to_version is None else self.version(node, to_version)
        if from_version is None:
            before = find_version(history, to_state.version - 1)
            from_doc = before.doc if before is not None else {}
        else:
            from_doc = self.version(node, from_version).doc
        return diff(from_doc, to_state.doc)

    # -- editing: every change is validated for every node it reaches before anything is stored

    def set_groups(self, node: str, groups: Sequence[str]) -> list[Sent]:
        for g in groups:
            topics.check_name(g, "group")
        doc = {"groups": list(dict.fromkeys(groups))}
        plan = self._plan(node, groups=doc["groups"])
        self._append_layer(members_target(node), doc)
        return self._commit([plan])

    def patch_node(self, node: str, ops: Sequence[PatchOp], *, note: str = "") -> list[Sent]:
        """Apply ``ops`` to the node's overrides and send the result; PatchError/ConfigValidationError: nothing."""
        topics.check_name(node, "node")
        layer = apply_patch(self.node_layer(node), ops)
        plan = self._plan(node, overrides=layer, note=note)
        self._append_layer(node_target(node), layer, note=note)
        return self._commit([plan])

    def patch_group(self, group: str, ops: Sequence[PatchOp], *, note: str = "") -> list[Sent]:
        """Apply ``ops`` to a group layer and send the result to each member whose config changes."""
        topics.check_name(group, "group")
        layer = apply_patch(self.layer(group_target(group)), ops)
        plans = [self._plan(n, layers={group: layer}, note=note) for n in self.members(group)]
        self._append_layer(group_target(group), layer, note=note)
        return self._commit(plans)

    def rollback(self, node: str, to_version: int, *, note: str = "", author: str = "") -> Sent:
        """A new sent version with the content of ``to_version``; the node's overrides follow it, so
        the next edit of another key does not bring the rolled-back values back."""
        history = self.history(node)
        if not history:
            raise ConfigSyncError(f"{node}: nothing was ever sent to this node, so there is nothing to roll back")
        state = rollback(history, to_version, created_ms=self.now_ms(), author=author or self.author, note=note)
        layer = self.node_layer(node)
        for op in diff(self.effective(node), state.doc):
            if op.op == "set":
                layer = apply_patch(layer, [op])
            else:
                with contextlib.suppress(ConfigSyncError):  # a key from a group: the rollback doc still lacks it
                    layer = apply_patch(layer, [op])
        self._append_layer(node_target(node), layer, note=state.note)
        self.store.append(state)
        return self._send(node, state)

    def on_report(self, report: ConfigReport) -> Sent | None:
        """Record a node's report; re-sign a version it found expired; roll it back when its health fails."""
        self.store.record_report(report)
        history = self.history(report.node)
        if report.reason == "stale" and history and report.version == history[-1].version:
            # offline past the signature's validity (or a clock far off): the same version, signed afresh
            return self._send(report.node, history[-1])
        if self._settles(report, history):
            self.pending.confirm(report.node, report.version)
        decision: RollbackDecision | None = decide_rollback(report, history)
        if decision is None:
            return None
        return self.rollback(decision.node, decision.to_version, note=decision.reason, author="auto-rollback")

    def publish(self, node: str) -> Sent:
        """(Re)send the latest sent version of ``node``: signed, retained."""
        latest = self.store.latest(sent_target(node))
        if latest is None:
            raise ConfigSyncError(f"{node}: nothing was ever planned for this node")
        return self._send(node, latest)

    def lagging(self) -> list[str]:
        return self.pending.lagging()

    def unreported(self, node: str) -> DesiredState | None:
        """The latest version sent to ``node`` if the node has not reported on it (or a newer one) yet."""
        history = self.history(node)
        if not history:
            return None
        latest = history[-1]
        reports = self.store.reports(node, limit=REPORTS_LOOKED_AT)
        settled = any(r.version >= latest.version and self._settles(r, history) for r in reports)
        return None if settled else latest

    @staticmethod
    def _settles(report: ConfigReport, history: Sequence[DesiredState]) -> bool:
        """A report on a version the hub sent: a refusal of someone else's message (a forged one with
        a high version, say) must not mark the node as up to date."""
        sent = find_version(history, report.version)
        return sent is not None and (report.status == "applied" or report.hash == sent.hash)

    def restore_pending(self) -> None:
        """After a hub restart: every node with an unreported latest version lags again (from the DB)."""
        prefix = sent_target("")
        for target in self.store.targets():
            if target.startswith(prefix) and (state := self.unreported(target[len(prefix) :])) is not None:
                self.pending.enqueue(desired_message(target[len(prefix) :], state.version, state.doc))

    # -- internals

    def _plan(
        self,
        node: str,
        *,
        groups: Sequence[str] | None = None,
        layers: Mapping[str, Doc] | None = None,
        overrides: Doc | None = None,
        note: str = "",
    ) -> tuple[str, DesiredState | None]:
        names = self.groups_of(node) if groups is None else groups
        docs = [(layers or {}).get(g, self.layer(group_target(g))) for g in names]
        last = self.store.latest(sent_target(node))
        layer = self.node_layer(node) if overrides is None else overrides
        try:
            state = plan_desired(node, docs, layer, last, created_ms=self.now_ms(), author=self.author, note=note)
        except ConfigValidationError as exc:
            raise ConfigValidationError(exc.field, f"{exc.reason} (in the config of node {node})") from None
        return node, state

    def _append_layer(self, target: str, doc: Doc, *, note: str = "") -> None:
        latest = self.store.latest(target)
        now = self.now_ms()
        if latest is None:
            self.store.append(DesiredState.initial(target, doc, created_ms=now, author=self.author))
        elif latest.hash != content_hash(doc):
            self.store.append(successor(latest, doc, created_ms=now, author=self.author, note=note))

    def _commit(self, plans: Sequence[tuple[str, DesiredState | None]]) -> list[Sent]:
        sent = []
        for node, state in plans:
            if state is not None:
                self.store.append(state)
                sent.append(self._send(node, state))
        return sent

    def _send(self, node: str, state: DesiredState) -> Sent:
        if self.key is None or self.publisher is None:
            return Sent(node=node, state=state)
        now = self.now_ms()
        seq = self.store.next_seq(key_id(self.key.public_key()))
        msg = signed_for_node(state, node, self.key, now_ms=now, ttl_ms=self.ttl_ms, seq=seq)
        self.publisher(topics.config(self.fleet, node), encode(msg), True)
        self.pending.enqueue(msg)
        return Sent(node=node, state=state, message=msg)


@contextlib.contextmanager
def broker_publisher(address: BrokerAddress, client_id: str, *, timeout_s: float | None = None) -> Iterator[Publisher]:
    """A short-lived connection for the CLI: publish, then wait for every PUBACK before disconnecting."""
    timeout_s = PUBACK_WAIT_S if timeout_s is None else timeout_s
    acked: set[int] = set()
    sent: list[int] = []
    changed = threading.Condition()

    def on_puback(mid: int) -> None:
        with changed:
            acked.add(mid)
            changed.notify_all()

    bridge = MqttBridge(address, BridgeOptions(client_id=client_id, clean_session=True, on_puback=on_puback), _ignore)
    bridge.start()
    try:
        if not bridge.wait_connected(timeout_s):
            raise ConfigSyncError(f"broker {address.host}:{address.port}: no connection within {timeout_s:.0f} s")

        def publish(topic: str, payload: bytes, retain: bool) -> None:
            sent.append(bridge.publish(topic, payload, retain=retain))

        yield publish
        with changed:
            if not changed.wait_for(lambda: acked.issuperset(sent), timeout_s):
                raise ConfigSyncError(f"broker {address.host}:{address.port}: not every publish was acknowledged")
    finally:
        bridge.stop()


def _ignore(topic: str, payload: bytes) -> None:
    """The CLI's connection subscribes to nothing."""


def parse_assignment(text: str) -> PatchOp:
    """``KEY=VALUE`` -> a set operation; VALUE is a TOML value (``5``, ``true``, ``"x"``, ``[1, 2]``), else text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigSyncError(f"{text!r}: expected KEY=VALUE with a dotted key, like hub.raw_days=14")
    value: Any
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word or URL: mqtt://host:1883 reads as the text it is
    return PatchOp(op="set", path=key, value=value)
