"""A simulated gateway: one actor hosting the models of all its devices, with its own MQTT link.

Each tick samples every device that is due (vectorised in :class:`DeviceBank`), packs the
samples into frames, keeps each frame in the outbox until the hub acknowledges it, and
publishes. A cut link (``SetLink(False)``) drops the TCP connection the hard way (the broker
publishes the Will) and stays down until restored; the outbox then catches up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pymonitor import __version__
from pymonitor.actors.runtime.breaker import BreakerState, CircuitBreaker
from pymonitor.actors.runtime.clock import Clock, TimerHandle
from pymonitor.actors.runtime.intake import Inbound, accept
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor, tell_if_alive
from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, NetworkLoop, topics
from pymonitor.messages import DeadLetter, DeliveryAck, NodeBirth, NodeDeath, encode, encode_packed

from .frames import block_to_batch
from .models import DeviceBank
from .outbox import Outbox

log = logging.getLogger(__name__)

DOWN_FRAME_MAX_BYTES = 1024 * 1024
"""Acks and commands are small; a bigger frame on the way down is refused unread."""
MIN_TICK_REAL_S = 0.5
"""Ticks never come faster than this in real time, whatever the clock speed."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Sample what is due and send what is pending."""


@dataclass(frozen=True, slots=True)
class SetLink:
    """Cut (False) or restore (True) the gateway's link."""

    up: bool


@dataclass(frozen=True, slots=True)
class LinkChanged:
    connected: bool
    connection: int = 0  # the gateway's connection count when it happened


@dataclass(frozen=True, slots=True)
class StopSampling:
    """Stop producing new samples; keep sending and taking acks (used to drain at the end of a run)."""


@dataclass
class GatewaySettings:
    fleet: str
    node: str
    devices: list[str]
    seed: int
    site_index: int
    interval_s: float
    start_ms: int
    max_rows_per_frame: int = 4096
    ack_timeout_s: float = 10.0
    compression: str | None = None  # "zstd" or "zlib": frames go out as frame.packed.v1
    outbox: Outbox = field(default_factory=Outbox)  # survives actor restarts
    generated: list[int] = field(default_factory=lambda: [0])  # readings generated, survives restarts


class GatewayActor(SupervisedActor):
    """Hosts one gateway's devices; many devices per actor, never a thread per device."""

    def __init__(
        self,
        supervisor: Supervisor | None,
        settings: GatewaySettings,
        clock: Clock,
        address: BrokerAddress,
        netloop: NetworkLoop | None = None,
    ) -> None:
        super().__init__(supervisor, settings.node)
        self.settings = settings
        self.clock = clock
        self.address = address
        self.netloop = netloop
        self.outbox = settings.outbox
        self.bank = DeviceBank(
            settings.devices,
            seed=settings.seed,
            start_ms=settings.start_ms,
            interval_s=settings.interval_s,
            site_index=settings.site_index,
        )
        self.session = clock.now_ms()
        self.seq = 0
        self.connects = 0
        self.breaker = CircuitBreaker(probe_timeout_ms=int(settings.ack_timeout_s * 1000))
        self.link_wanted = True
        self.sampling = True
        self.dead_letters = 0
        self.bridge: MqttBridge | None = None
        self._timer: TimerHandle | None = None
        self.tick_s = max(settings.interval_s, MIN_TICK_REAL_S * clock.speed)

    # lifecycle

    def start_role(self) -> None:
        self.bridge = self._new_bridge()
        self.bridge.start()
        self._schedule()

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.bridge is not None:
            now = self.clock.now_ms()
            death = NodeDeath(node=self.settings.node, session=self.session, reason="shutdown", ts_ms=now)
            self.bridge.stop(goodbye=(topics.state(self.settings.fleet, self.settings.node), encode(death)))

    def on_failure(self, *args: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.bridge is not None:
            self.bridge.stop()
        super().on_failure(*args)

    def _new_bridge(self) -> MqttBridge:
        fleet, node = self.settings.fleet, self.settings.node
        ref = self.actor_ref
        will = NodeDeath(node=node, session=self.session, reason="connection lost")

        def birth(_bridge_connects: int) -> tuple[str, bytes]:
            self.connects += 1  # counted by the gateway: a restored link gets a new bridge
            msg = NodeBirth(
                node=node,
                session=self.session,
                ts_ms=self.clock.now_ms(),
                role="gateway",
                version=__version__,
                connects=self.connects,
                devices=len(self.settings.devices),
            )
            return topics.state(fleet, node), encode(msg)

        options = BridgeOptions(
            client_id=f"{fleet}.{node}",
            subscriptions=[topics.node_inbox(fleet, node)],
            will=(topics.state(fleet, node), encode(will)),
            birth=birth,
            on_connected=lambda _n: tell_if_alive(ref, LinkChanged(True, self.connects)),
            on_disconnected=lambda: tell_if_alive(ref, LinkChanged(False)),
            loop=self.netloop,
        )
        return MqttBridge(self.address, options, lambda t, p: tell_if_alive(ref, Inbound(t, p)))

    def _schedule(self) -> None:
        ref = self.actor_ref
        self._timer = self.clock.call_later(self.tick_s, lambda: tell_if_alive(ref, Tick()))

    # messages

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Tick):
            if self.sampling:
                self._sample()
            self._send()
            self._schedule()
        elif isinstance(message, Inbound):
            self._inbound(message)
        elif isinstance(message, LinkChanged):
            if message.connected:
                self.outbox.mark_unsent(before_connection=message.connection)
                self._send()
        elif isinstance(message, SetLink):
            self._set_link(message.up)
        elif isinstance(message, StopSampling):
            self.sampling = False
        return None

    def _sample(self) -> None:
        now = self.clock.now_ms()
        while True:
            block = self.bank.sample_until(now, self.settings.max_rows_per_frame)
            if block.rows == 0:
                return
            self.seq += 1
            batch, readings = block_to_batch(
                block, node=self.settings.node, session=self.session, seq=self.seq, devices=self.settings.devices
            )
            codec = self.settings.compression
            payload = encode_packed(batch, codec) if codec else encode(batch)
            self.outbox.add(self.session, self.seq, payload, readings, now)
            self.settings.generated[0] += readings
            if block.rows < self.settings.max_rows_per_frame:
                return

    def _send(self) -> None:
        bridge = self.bridge
        if bridge is None or not self.link_wanted or not bridge.connected:
            return
        fleet, node = self.settings.fleet, self.settings.node
        now, resend_ms = self.clock.now_ms(), int(self.settings.ack_timeout_s * 1000)
        if not self.breaker.allow(now):
            return  # the hub has not answered for a while: frames wait in the outbox
        probe = 1 if self.breaker.state is BreakerState.HALF_OPEN else None
        frames = self.outbox.to_send(now, resend_ms, self.connects, limit=probe)
        if any(frame.attempts > 1 for frame in frames):
            self.breaker.failure(now)  # something went unacknowledged for a whole ack timeout
        for frame in frames:
            bridge.publish(topics.up(fleet, node, frame.stream), frame.payload)

    def _inbound(self, inbound: Inbound) -> None:
        result = accept(self.settings.node, inbound, self.clock.now_ms(), DOWN_FRAME_MAX_BYTES)
        if isinstance(result, DeadLetter):
            self.dead_letters += 1
            log.warning("%s refused a frame on %s: %s", self.settings.node, result.topic, result.reason)
            return
        msg = result.message
        # Acks for frames of an earlier session (before a restart) count too.
        if isinstance(msg, DeliveryAck) and self.outbox.ack(msg.session, msg.seqs(), self.clock.now_ms()):
            self.breaker.success()

    def _set_link(self, up: bool) -> None:
        if up == self.link_wanted or self.bridge is None:
            return
        self.link_wanted = up
        if up:
            self.bridge = self._new_bridge()
            self.bridge.start()
        else:
            self.bridge.cut()

    # queries (ask)

    def status(self) -> dict[str, Any]:
        c = self.outbox.counters
        return {
            "node": self.settings.node,
            "connected": bool(self.bridge and self.bridge.connected),
            "link_wanted": self.link_wanted,
            "pending_frames": len(self.outbox),
            "generated": self.settings.generated[0],
            "acked_readings": c.acked_readings,
            "resends": c.resends,
            "evicted_readings": c.evicted_readings,
            "worst_delay_ms": c.worst_delay_ms,
            "dead_letters": self.dead_letters,
            "breaker": self.breaker.state.value,
        }
