"""Hub side: turn edited layers into the next version a node should run, and sign it for sending.

The hub validates with the very validator the node applies (:mod:`.validate`), so a document the
node would refuse never leaves the hub. Typical flow of the actor/CLI layer::

    layers = [store.latest(group_target(g)).doc for g in groups] ; overrides = store.latest(node_target(n)).doc
    state = plan_desired(n, layers, overrides, store.latest(sent_target(n)), created_ms=now, author=who)
    if state is not None:
        store.append(state)
        msg = signed_for_node(state, n, key, now_ms=now, ttl_ms=DESIRED_TTL_MS, seq=store.next_seq(key_id))
        publish retained on the node's config topic: encode(msg)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pymonitor.messages.config import ConfigDesired

from .desired import DesiredState, desired_message, effective, sent_target, sign_desired, successor
from .validate import validate_change

DESIRED_TTL_MS = 30 * 86_400_000
"""How long a signed desired config stays valid: long enough for a node offline for weeks."""


def plan_desired(
    node: str,
    groups: Iterable[Mapping[str, Any]],
    overrides: Mapping[str, Any],
    last_sent: DesiredState | None,
    *,
    created_ms: int,
    author: str = "",
    note: str = "",
) -> DesiredState | None:
    """The next ``sent:<node>`` version, or None when the effective document did not change.

    Raises :class:`~.errors.ConfigValidationError` (field and reason) if the node would refuse it.
    """
    doc = effective(groups, overrides)
    validate_change(last_sent.doc if last_sent is not None else {}, doc)
    if last_sent is None:
        return DesiredState.initial(sent_target(node), doc, created_ms=created_ms, author=author)
    candidate = successor(last_sent, doc, created_ms=created_ms, author=author, note=note)
    return None if candidate.hash == last_sent.hash else candidate


def signed_for_node(
    state: DesiredState, node: str, private_key: Ed25519PrivateKey, *, now_ms: int, ttl_ms: int, seq: int
) -> ConfigDesired:
    """The signed ``config.desired.v1`` of a sent version (also how a rollback version is sent)."""
    msg = desired_message(node, state.version, state.doc)
    return sign_desired(msg, private_key, issued_ms=now_ms, expires_ms=now_ms + ttl_ms, seq=seq)
