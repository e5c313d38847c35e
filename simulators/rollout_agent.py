"""The device side of a fleet rollout for one gateway: signed commands in, versions changed, reports out.

Pure (no paho, no clock reads): :meth:`RolloutAgent.handle` takes one command frame from
``.../down/cmd/rollout`` and returns the frames to publish. A frame that is unsigned, forged,
stale, replayed or malformed changes nothing and is answered with a dead letter saying why.
Each hosted device keeps its current version and the one before it, so a rollback needs nothing
from the hub but the command. Health after an apply comes from a :class:`HealthModel`: a
configurable share of devices fails on a "bad" version, deterministically, for demos and tests.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pymonitor.actors.configsync.errors import SignatureError
from pymonitor.actors.configsync.signing import ReplayGuard
from pymonitor.actors.rollout.errors import RolloutError
from pymonitor.actors.rollout.wire import Report, decode_commands, encode_reports
from pymonitor.actors.runtime.intake import dead_letter
from pymonitor.broker import topics
from pymonitor.messages import encode

Frame = tuple[str, bytes]
INITIAL_VERSION = "1.0.0"
BAD_VERSION_SUFFIX = "-bad"
"""A version ending in this is "bad" for the default :class:`HealthModel` (``2.0.0-bad``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthModel:
    """Which devices fail their health checks after applying which version.

    A version is bad when it is in ``bad_versions`` or ends in ``bad_suffix``; on a bad version a
    device fails when a hash of (seed, device, version) falls under ``fail_share``, so the same
    devices fail on every run and ``fail_share=1.0`` fails all of them.
    """

    bad_versions: frozenset[str] = frozenset()
    bad_suffix: str = BAD_VERSION_SUFFIX
    fail_share: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.fail_share <= 1:
            raise ValueError(f"fail_share: expected a share 0..1, got {self.fail_share!r}")

    def is_bad(self, version: str) -> bool:
        return version in self.bad_versions or (bool(self.bad_suffix) and version.endswith(self.bad_suffix))

    def fails(self, device: str, version: str) -> bool:
        if not self.is_bad(version):
            return False
        draw = zlib.crc32(f"{self.seed}:{device}:{version}".encode()) / 2**32
        return draw < self.fail_share


@dataclass
class AgentCounters:
    commands: int = 0  # frames verified and acted on
    refused: int = 0  # unsigned, forged, stale, replayed or malformed frames
    applied: int = 0
    health_failed: int = 0
    rolled_back: int = 0
    unknown_devices: int = 0  # named in a command but not hosted here: answered "failed"
    last_refusal: str = ""


@dataclass
class RolloutAgent:
    """The versions of the devices one gateway hosts, and what a rollout command does to them.

    Not thread-safe: one caller at a time (the gateway's actor). Kept in the gateway's settings,
    so versions and the replay window survive an actor restart.
    """

    fleet: str
    node: str
    trusted: Mapping[str, Ed25519PublicKey]
    versions: dict[str, str]
    health: HealthModel = field(default_factory=HealthModel)
    previous: dict[str, str] = field(default_factory=dict)
    guard: ReplayGuard = field(default_factory=ReplayGuard)
    counters: AgentCounters = field(default_factory=AgentCounters)

    @classmethod
    def for_devices(
        cls,
        *,
        fleet: str,
        node: str,
        devices: Iterable[str],
        trusted: Mapping[str, Ed25519PublicKey],
        initial_version: str = INITIAL_VERSION,
        health: HealthModel | None = None,
    ) -> RolloutAgent:
        """An agent whose devices all run ``initial_version``."""
        return cls(
            fleet=fleet,
            node=node,
            trusted=dict(trusted),
            versions=dict.fromkeys(devices, initial_version),
            health=health if health is not None else HealthModel(),
        )

    def handle(self, topic: str, payload: bytes, now_ms: int) -> list[Frame]:
        """The frames to publish in answer to one rollout command frame (reports, or a dead letter)."""
        try:
            cmds = decode_commands(payload, trusted=self.trusted, replay=self.guard, now_ms=now_ms)
        except (RolloutError, SignatureError) as exc:
            self.counters.refused += 1
            self.counters.last_refusal = f"{type(exc).__name__}: {exc}"
            letter = dead_letter(self.node, topic, payload, self.counters.last_refusal, now_ms)
            return [(topics.up(self.fleet, self.node, "deadletter"), encode(letter))]
        self.counters.commands += 1
        reports = [self._apply(device, version) for device, version in cmds.apply]
        reports += [self._rollback(device, version) for device, version in cmds.rollback]
        if not reports:
            return []
        return [encode_reports(self.node, cmds.rollout_id, reports, fleet=self.fleet, now_ms=now_ms)]

    def _apply(self, device: str, version: str) -> Report:
        current = self.versions.get(device)
        if current is None:
            self.counters.unknown_devices += 1
            return device, "failed", ""
        if current != version:  # a repeated command must not lose the version to go back to
            self.previous[device] = current
            self.versions[device] = version
        if self.health.fails(device, version):
            self.counters.health_failed += 1
            return device, "health_failed", version
        self.counters.applied += 1
        return device, "applied", version

    def _rollback(self, device: str, version: str) -> Report:
        """Back to ``version`` (the hub's record of the device's version before the rollout), else the kept one."""
        current = self.versions.get(device)
        if current is None:
            self.counters.unknown_devices += 1
            return device, "failed", ""
        version = version or self.previous.get(device, current)
        self.versions[device] = version
        self.previous.pop(device, None)
        self.counters.rolled_back += 1
        return device, "rolled_back", version


class GatewayLike(Protocol):
    """What :func:`equip_gateways` needs of a gateway's settings (``simulators.gateway.GatewaySettings``)."""

    fleet: str
    node: str
    devices: list[str]
    rollout: RolloutAgent | None


def equip_gateways(
    gateways: Iterable[GatewayLike],
    trusted: Mapping[str, Ed25519PublicKey],
    *,
    initial_version: str = INITIAL_VERSION,
    health: HealthModel | None = None,
) -> dict[str, str]:
    """Give each simulated gateway (before it starts) an agent for its devices; returns device -> gateway."""
    hosts: dict[str, str] = {}
    for settings in gateways:
        settings.rollout = RolloutAgent.for_devices(
            fleet=settings.fleet,
            node=settings.node,
            devices=settings.devices,
            trusted=trusted,
            initial_version=initial_version,
            health=health,
        )
        hosts.update(dict.fromkeys(settings.devices, settings.node))
    return hosts
