"""Rollout commands and reports on the wire, batched per node (the gateway hosting the devices).

Down: one ``command.v1`` named ``rollout`` per node and tick on ``.../down/cmd/rollout``, its
``args`` holding ``apply`` and ``rollback`` lists of ``[device, version]``; with a signing key,
``args`` is instead the ed25519 envelope of that body (``configsync.signing``), which the node
verifies before acting. Up: one ``event.v1`` of kind ``rollout.report`` per batch of answers on
``.../up/events``, ``details.reports`` holding ``[device, outcome, version]`` rows.
One MQTT message per device would not carry a 100,000-device fleet; one per node and tick does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pymonitor.actors.configsync.errors import SignatureError
from pymonitor.actors.configsync.signing import ReplayGuard, SignedEnvelope, sign, verify
from pymonitor.broker import topics
from pymonitor.messages import Command as CommandMessage
from pymonitor.messages import Event, MessageError, decode, encode

from .engine import OUTCOMES, Command
from .errors import RolloutError

COMMAND_NAME = "rollout"
REPORT_KIND = "rollout.report"
SIGNED_VALID_MS = 10 * 60_000
"""How long a signed rollout command stays acceptable to a node (it is also replay-guarded)."""

MAX_BATCH = 5000
"""Devices per command frame: about 200 kB, well under the codec's and the broker's frame limits."""

Report = tuple[str, str, str]
"""(device, outcome, version)."""


@dataclass(slots=True)
class Signer:
    """The hub's signing key and where its sequence numbers come from (they must only grow)."""

    key: Ed25519PrivateKey
    next_seq: Callable[[], int]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeCommands:
    """What one node was asked to do in one frame."""

    rollout_id: str
    apply: list[tuple[str, str]]
    rollback: list[tuple[str, str]]


def encode_commands(
    commands: Iterable[Command],
    node_of: Callable[[str], str],
    *,
    fleet: str,
    now_ms: int,
    signer: Signer | None = None,
    max_batch: int = MAX_BATCH,
) -> list[tuple[str, bytes]]:
    """(topic, frame) per node for one tick's commands, at most ``max_batch`` devices a frame."""
    if max_batch < 1:
        raise RolloutError(f"max_batch: expected a positive device count, got {max_batch}")
    bodies: dict[tuple[str, str, int], dict[str, Any]] = {}
    sizes: dict[tuple[str, str], int] = {}
    for cmd in commands:
        node = node_of(cmd.device)
        n = sizes.get((node, cmd.rollout_id), 0)
        sizes[node, cmd.rollout_id] = n + 1
        body = bodies.setdefault(
            (node, cmd.rollout_id, n // max_batch), {"rollout": cmd.rollout_id, "apply": [], "rollback": []}
        )
        body[cmd.action].append([cmd.device, cmd.version])
    frames = []
    for (node, rollout_id, part), body in bodies.items():
        args: dict[str, Any] = body
        issuer = ""
        if signer is not None:
            seq = signer.next_seq()
            env = sign(body, signer.key, issued_ms=now_ms, expires_ms=now_ms + SIGNED_VALID_MS, seq=seq)
            args = {
                "envelope": {
                    "body": env.body,
                    "key_id": env.key_id,
                    "issued_ms": env.issued_ms,
                    "expires_ms": env.expires_ms,
                    "seq": env.seq,
                    "signature": env.signature,
                }
            }
            issuer = env.key_id
        msg = CommandMessage(
            id=f"{rollout_id}:{node}:{now_ms}:{part}", name=COMMAND_NAME, ts_ms=now_ms, args=args, issuer=issuer
        )
        frames.append((topics.command(fleet, node, COMMAND_NAME), encode(msg)))
    return frames


def _pairs(value: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
    ):
        raise RolloutError(f"{where}: expected a list of [device, version]")
    return [(p[0], p[1]) for p in value]


def decode_commands(
    frame: bytes,
    *,
    trusted: Mapping[str, Ed25519PublicKey] | None = None,
    replay: ReplayGuard | None = None,
    now_ms: int = 0,
) -> NodeCommands:
    """A node's view of one command frame; with ``trusted`` keys, unsigned or bad envelopes are refused.

    Raises :class:`RolloutError` (bad frame) or ``SignatureError`` (with its reason).
    """
    try:
        msg = decode(frame)
    except MessageError as exc:
        raise RolloutError(f"rollout command: {exc}") from None
    if not isinstance(msg, CommandMessage) or msg.name != COMMAND_NAME:
        raise RolloutError(f"rollout command: expected command.v1 named {COMMAND_NAME!r}, got {type(msg).__name__}")
    body: Any = msg.args
    if trusted is not None:
        env = body.get("envelope")
        if not isinstance(env, dict):
            raise SignatureError("unsigned", "rollout command carries no envelope")
        try:
            envelope = SignedEnvelope(
                body=env["body"],
                key_id=env["key_id"],
                issued_ms=env["issued_ms"],
                expires_ms=env["expires_ms"],
                seq=env["seq"],
                signature=env["signature"],
            )
        except KeyError as exc:
            raise RolloutError(f"rollout command: envelope.{exc.args[0]}: missing") from None
        verify(envelope, trusted, replay if replay is not None else ReplayGuard(), now_ms)
        body = envelope.body
    rollout_id = body.get("rollout")
    if not isinstance(rollout_id, str):
        raise RolloutError("rollout command: args.rollout: expected the rollout id")
    return NodeCommands(
        rollout_id=rollout_id,
        apply=_pairs(body.get("apply", []), "args.apply"),
        rollback=_pairs(body.get("rollback", []), "args.rollback"),
    )


def encode_reports(node: str, rollout_id: str, reports: list[Report], *, fleet: str, now_ms: int) -> tuple[str, bytes]:
    """One node's batch of device answers."""
    event = Event(
        node=node,
        ts_ms=now_ms,
        kind=REPORT_KIND,
        severity="info",
        message=f"{len(reports)} rollout reports",
        source=rollout_id,
        details={"rollout": rollout_id, "reports": [list(r) for r in reports]},
    )
    return topics.up(fleet, node, "events"), encode(event)


def decode_reports(frame: bytes) -> tuple[str, list[Report]] | None:
    """(rollout id, reports) of a report frame; None for an event of another kind. Bad frames raise RolloutError."""
    try:
        msg = decode(frame)
    except MessageError as exc:
        raise RolloutError(f"rollout report: {exc}") from None
    if not isinstance(msg, Event) or msg.kind != REPORT_KIND:
        return None
    rows = msg.details.get("reports")
    rollout_id = msg.details.get("rollout")
    if not isinstance(rollout_id, str) or not isinstance(rows, list):
        raise RolloutError("rollout report: details: expected 'rollout' and a 'reports' list")
    out: list[Report] = []
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) for x in row)):
            raise RolloutError(f"rollout report: details.reports[{i}]: expected [device, outcome, version]")
        if row[1] not in OUTCOMES:
            raise RolloutError(f"rollout report: details.reports[{i}]: outcome {row[1]!r} unknown")
        out.append((row[0], row[1], row[2]))
    return rollout_id, out
