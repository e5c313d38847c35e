"""A simulated gateway: one actor hosting the models of all its devices, with its own MQTT link.

Each tick samples every device that is due (vectorised in :class:`DeviceBank`), packs the
samples into frames, keeps each frame in the outbox until the hub acknowledges it, and
publishes. A cut link (``SetLink(False)``) drops the TCP connection the hard way (the broker
publishes the Will) and stays down until restored; the outbox then catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pymonitor import __version__
from pymonitor.actors.configsync.commands import command_id, open_command
from pymonitor.actors.configsync.errors import SignatureError
from pymonitor.actors.configsync.signing import ReplayGuard
from pymonitor.actors.rollout.wire import COMMAND_NAME as ROLLOUT_COMMAND
from pymonitor.actors.runtime.breaker import BreakerState, CircuitBreaker
from pymonitor.actors.runtime.clock import Clock, TimerHandle
from pymonitor.actors.runtime.intake import Inbound, accept
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor, tell_if_alive
from pymonitor.actors.summary.config import SummarySection
from pymonitor.actors.uplink import DailyBudget, LinkEstimator, UplinkPlan, plan_uplink
from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge, NetworkLoop, topics
from pymonitor.messages import (
    Command,
    CommandAck,
    DeadLetter,
    DeliveryAck,
    MessageError,
    NodeBirth,
    NodeDeath,
    SignedCommand,
    encode,
)
from pymonitor.messages.requests import RawRequest
from pymonitor.messages.thinning import thin_frame
from pymonitor.store.outbox import DurableOutbox, Priority
from pymonitor.store.raw_tier import SUMMARY_CAP_BYTES, SUMMARY_KEEP_DAYS, RawTier

from .outbox import Outbox
from .rollout_agent import RolloutAgent
from .sampler import OutFrame, SamplerSpec, SiteSampler, saved_spec_fields

log = logging.getLogger(__name__)

DOWN_FRAME_MAX_BYTES = 1024 * 1024
"""Acks and commands are small; a bigger frame on the way down is refused unread."""
MIN_TICK_REAL_S = 0.5
"""Ticks never come faster than this in real time, whatever the clock speed."""
SEND_TICK_S = 1.0
RESEND_FLOOR_MS = 30_000
"""A durable gateway resends an unacknowledged frame after at least this long. Over one TCP
connection a frame is not lost in transit (TCP retransmits it); a missing ack means the hub or the
broker lost it, which is rare, so waiting costs little. Resending sooner is what hurts: on 2G an
ack can wait behind seconds of queued frames, a resend joins that queue, acks come later still
(congestion collapse, seen in ``bench offline`` with the estimator's 2 s floor: 884 resends for
601 frames). A reconnect resends at once whatever this says."""
BUDGET_STATE_KEY = "budget"
DURABLE_CAP_BYTES = 256 * 1024 * 1024
LIVE_WINDOW_S = 60.0
"""When the link comes back, frames older than this go on the backfill stream, behind live data."""
SAMPLER_STATE_KEY = "sampler"
COMMAND_GUARD_STATE_KEY = "command_guard"
"""A durable gateway keeps the highest signed-command sequence per key, so a restart reopens no replay."""
LOSS_TALLIES = ("evicted_readings_", "downsampled_readings_")
LOSS_REPORT_EVERY_MS = 10 * 60 * 1000


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
    alerts: bool = True  # raise threshold alerts (battery low, vibration high) as events
    outbox_path: str | None = None  # a file: frames and sampling state on disk (survive kill -9)
    outbox_cap_bytes: int = DURABLE_CAP_BYTES
    durability: str = "normal"  # "full": fsync per commit (power loss), see store.outbox
    live_window_s: float = LIVE_WINDOW_S
    daily_budget_bytes: int | None = None  # durable gateways: past its pace, sampling thins out
    uplink: str = "raw"  # "summaries": window summaries go up, raw batches stay in the raw tier until asked for
    summary_window_s: float = 3600.0
    summary: SummarySection | None = None  # the node's [summary]: per-metric windows and functions
    raw_keep_days: float = 7.0
    summary_keep_days: float = SUMMARY_KEEP_DAYS
    outbox: Outbox = field(default_factory=Outbox)  # in memory (when no outbox_path); survives actor restarts
    generated: list[int] = field(default_factory=lambda: [0])  # readings buffered, survives restarts
    rollout: RolloutAgent | None = None  # answers signed rollout commands (survives restarts); None: ignored
    # Set: control commands (raw.request.v1, command.v1) count only inside a valid command.signed.v1 by one of
    # these keys (configsync.commands); anything else is refused with an ack naming the reason. None: unsigned.
    trusted_keys: Mapping[str, Ed25519PublicKey] | None = None
    command_guard: ReplayGuard = field(default_factory=ReplayGuard)  # signed commands' replay window; survives restarts


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
        self.outbox: Outbox | DurableOutbox = settings.outbox
        self.sampler: SiteSampler | None = None
        self.session = clock.now_ms()
        self.connects = 0
        self.breaker = CircuitBreaker(probe_timeout_ms=int(settings.ack_timeout_s * 1000))
        self.link_wanted = True
        self.sampling = True
        self.dead_letters = 0
        self.refused_commands = 0  # control commands refused for their signature (trusted_keys set)
        self.bridge: MqttBridge | None = None
        self._timer: TimerHandle | None = None
        self._reported_losses = 0
        self._last_loss_report_ms: int | None = None
        self.raw_tier: RawTier | None = None
        self.summary_tier: RawTier | None = None  # the summaries sent, kept on the node (same store, own file)
        self.estimator = LinkEstimator(
            initial_ack_timeout_ms=int(settings.ack_timeout_s * 1000), min_ack_timeout_ms=RESEND_FLOOR_MS
        )
        self.budget = DailyBudget(settings.daily_budget_bytes)
        self.plan: UplinkPlan | None = None
        self._next_sample_ms = 0
        # A durable gateway (a remote site) sends on a short tick, clocked by acks in between; it samples
        # once per interval, so frames stay full. A simulated fleet's in-memory gateways do both per interval.
        tick = SEND_TICK_S if settings.outbox_path else settings.interval_s
        self.tick_s = max(min(tick, settings.interval_s), MIN_TICK_REAL_S * clock.speed)

    # lifecycle

    def start_role(self) -> None:
        self.sampler = self._open_outbox()
        self.bridge = self._new_bridge()
        self.bridge.start()
        self._schedule()

    def _spec(self, start_ms: int) -> SamplerSpec:
        s = self.settings
        return SamplerSpec(s.fleet, s.node, s.devices, s.seed, s.site_index, s.interval_s, start_ms)

    def _open_outbox(self) -> SiteSampler:
        """The in-memory outbox, or the file: then carry on from the state saved with its last frame."""
        s = self.settings
        options = {
            "max_rows_per_frame": s.max_rows_per_frame,
            "compression": s.compression,
            "alerts": s.alerts,
            "anomalies": s.outbox_path is not None,  # remote sites score every point; big simulated fleets do not
            "summary_window_s": s.summary_window_s if s.uplink == "summaries" and s.outbox_path else None,
            "summary": s.summary,
        }
        if s.outbox_path is None:
            return SiteSampler(self._spec(s.start_ms), session=self.session, **options)  # type: ignore[arg-type]
        box = DurableOutbox(s.outbox_path, cap_bytes=s.outbox_cap_bytes, durability=s.durability, thinner=thin_frame)
        self.outbox = box
        if s.uplink == "summaries":
            self.raw_tier = RawTier(f"{s.outbox_path}.raw", keep_days=s.raw_keep_days)
            self.summary_tier = RawTier(
                f"{s.outbox_path}.summaries", keep_days=s.summary_keep_days, cap_bytes=SUMMARY_CAP_BYTES
            )
        saved = box.state().get(SAMPLER_STATE_KEY)
        start_ms, last_session = saved_spec_fields(saved) if saved else (s.start_ms, 0)
        self.session = max(self.session, last_session + 1)  # a restart is a new session, even within a ms
        sampler = SiteSampler(self._spec(start_ms), session=self.session, **options)  # type: ignore[arg-type]
        if saved:
            sampler.restore(saved)
        if budget := box.state().get(BUDGET_STATE_KEY):
            self.budget = DailyBudget.from_state(cbor2.loads(budget), s.daily_budget_bytes)
        guard = box.state().get(COMMAND_GUARD_STATE_KEY)
        if guard and not s.command_guard.snapshot():  # a new process: the in-memory window is gone
            s.command_guard = ReplayGuard.restore(cbor2.loads(guard))
        box.save_state({SAMPLER_STATE_KEY: sampler.snapshot()})
        self.settings.generated[0] = box.tallies().get("readings", 0)
        self._reported_losses = self._losses()
        if box.set_aside is not None:
            log.error("%s: outbox file was corrupt; kept aside as %s, started a fresh one", s.node, box.set_aside)
            self._buffer(
                sampler.event(
                    self.clock.now_ms(),
                    "outbox.corrupt",
                    "error",
                    f"outbox file was corrupt and was set aside as {box.set_aside.name}; started empty",
                    {},
                ),
                None,
            )
        return sampler

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.bridge is not None:
            now = self.clock.now_ms()
            death = NodeDeath(node=self.settings.node, session=self.session, reason="shutdown", ts_ms=now)
            self.bridge.stop(goodbye=(topics.state(self.settings.fleet, self.settings.node), encode(death)))
        self._close_outbox()

    def on_failure(self, *args: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.bridge is not None:
            self.bridge.stop()
        self._close_outbox()
        super().on_failure(*args)

    def _close_outbox(self) -> None:
        if isinstance(self.outbox, DurableOutbox):
            self.outbox.close()
        for tier in (self.raw_tier, self.summary_tier):
            if tier is not None:
                tier.close()

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
            now = self.clock.now_ms()
            if self.sampling and now >= self._next_sample_ms:
                self._next_sample_ms = now + int(self.settings.interval_s * 1000)
                self._sample()
            self._send()
            self._save_budget()
            self._schedule()
        elif isinstance(message, Inbound):
            self._inbound(message)
        elif isinstance(message, LinkChanged):
            if message.connected:
                self._on_reconnect(message.connection)
            else:
                self.estimator.link_lost()
        elif isinstance(message, SetLink):
            self._set_link(message.up)
        elif isinstance(message, StopSampling):
            self.sampling = False
        return None

    def _on_reconnect(self, connection: int) -> None:
        self.outbox.mark_unsent(before_connection=connection)
        if isinstance(self.outbox, DurableOutbox):
            # What waited out the outage is history now: it drains on the backfill stream, behind live data.
            self.outbox.demote_live(self.clock.now_ms() - int(self.settings.live_window_s * 1000))
        self._send()

    def _buffer(self, frame: OutFrame, state: bytes | None) -> None:
        now = self.clock.now_ms()
        if isinstance(self.outbox, DurableOutbox):
            saved = None if state is None else {SAMPLER_STATE_KEY: state}
            self.outbox.add(
                self.session,
                frame.seq,
                frame.payload,
                frame.readings,
                now,
                frame.priority,
                state=saved,
                urgent=frame.urgent,
                stream=frame.stream,
            )
        else:
            self.outbox.add(self.session, frame.seq, frame.payload, frame.readings, now, frame.priority)
        self.settings.generated[0] += frame.readings

    def _sample(self) -> None:
        assert self.sampler is not None
        now = self.clock.now_ms()
        if isinstance(self.outbox, DurableOutbox):
            self._adapt(now)
        for group, state in self.sampler.frames_until(now):
            self._buffer_group(group, state)
        for frame in self.sampler.tick(now):
            self._buffer(frame, None)  # seq numbers need no saving: a restart is a new session
            self._keep(frame, now)
        for tier in (self.raw_tier, self.summary_tier):
            if tier is not None:
                tier.expire(now)
        self._report_losses(now)

    def _buffer_group(self, group: list[OutFrame], state: bytes) -> None:
        """The group's frames for the uplink, the state with the last of them, then the raw tier.

        The raw tier is another file, so it commits after the state: a crash between the two
        leaves that one block out of the raw tier (a gap), never in it twice.
        """
        sent = [frame for frame in group if not frame.local]
        for i, frame in enumerate(sent):
            self._buffer(frame, state if i == len(sent) - 1 else None)
        if not sent and isinstance(self.outbox, DurableOutbox):
            self.outbox.save_state({SAMPLER_STATE_KEY: state})
        now = self.clock.now_ms()
        for frame in group:
            self._keep(frame, now)

    def _keep(self, frame: OutFrame, now: int) -> None:
        """Reading batches into the raw tier, summary frames into the summary tier (when the node keeps them)."""
        tier = self.summary_tier if frame.stream == "summaries" else self.raw_tier
        if tier is not None and frame.span is not None:
            tier.add(frame.payload, *frame.span, rows=frame.rows, readings=frame.readings, now_ms=now)

    def _losses(self) -> int:
        if not isinstance(self.outbox, DurableOutbox):
            return 0
        return sum(v for k, v in self.outbox.tallies().items() if k.startswith(LOSS_TALLIES))

    def _report_losses(self, now: int) -> None:
        """Evicted or downsampled data is reported upstream as an event (at most every few minutes)."""
        if self.sampler is None or not isinstance(self.outbox, DurableOutbox):
            return
        last = self._last_loss_report_ms
        if last is not None and now - last < LOSS_REPORT_EVERY_MS:
            return
        losses = self._losses()
        if losses == self._reported_losses:
            return
        tallies = {k: v for k, v in self.outbox.tallies().items() if k.startswith(LOSS_TALLIES)}
        self._reported_losses, self._last_loss_report_ms = losses, now
        text = ", ".join(f"{k}={v}" for k, v in sorted(tallies.items()))
        event = self.sampler.event(now, "outbox.evicted", "warning", f"outbox over its cap: {text}", tallies)
        self._buffer(event, self.sampler.snapshot())

    def _adapt(self, now: int) -> None:
        """Frame size, codec and sampling stride follow the link and the day's byte budget."""
        assert self.sampler is not None
        self.plan = self._plan(now)
        self.sampler.max_rows_per_frame = min(self.settings.max_rows_per_frame, self.plan.max_rows_per_frame)
        self.sampler.compression = self.plan.codec or self.settings.compression
        self.sampler.stride = self.budget.stride(now)

    def _plan(self, now: int) -> UplinkPlan:
        assert isinstance(self.outbox, DurableOutbox)
        measured = self.sampler.bytes_per_row if self.sampler is not None else None
        return plan_uplink(
            self.estimator.estimate(now),
            backlog_bytes=self.outbox.size_bytes,
            tick_s=self.tick_s,
            metered=self.budget.budget_bytes is not None,
            **({} if measured is None else {"bytes_per_row": measured}),
        )

    def _send(self) -> None:
        bridge = self.bridge
        if bridge is None or not self.link_wanted or not bridge.connected:
            return
        fleet, node = self.settings.fleet, self.settings.node
        now = self.clock.now_ms()
        if not self.breaker.allow(now):
            return  # the hub has not answered for a while: frames wait in the outbox
        probe = 1 if self.breaker.state is BreakerState.HALF_OPEN else None
        if isinstance(self.outbox, DurableOutbox):
            self.plan = plan = self._plan(now)
            if plan.send_budget_bytes <= 0:
                return  # the link has a few seconds of work in flight: more would only queue
            only_events = self.budget.essential_only(now)
            frames = self.outbox.to_send(
                now,
                plan.ack_timeout_ms,
                self.connects,
                budget_bytes=plan.send_budget_bytes,
                limit=probe,
                max_priority=Priority.EVENT if only_events else Priority.BACKFILL,
            )
        else:
            frames = self.outbox.to_send(now, int(self.settings.ack_timeout_s * 1000), self.connects, limit=probe)
        if any(frame.attempts > 1 for frame in frames):
            self.breaker.failure(now)  # something went unacknowledged for a whole ack timeout
        for frame in frames:
            bridge.publish(topics.up(fleet, node, frame.stream), frame.payload)
            self.estimator.sent((frame.session, frame.seq), len(frame.payload), now, frame.attempts)
            self.budget.add(frame.stream, len(frame.payload), now)

    def _save_budget(self) -> None:
        if isinstance(self.outbox, DurableOutbox):
            self.outbox.save_state({BUDGET_STATE_KEY: cbor2.dumps(self.budget.to_state())})

    def _inbound(self, inbound: Inbound) -> None:
        result = accept(self.settings.node, inbound, self.clock.now_ms(), DOWN_FRAME_MAX_BYTES)
        if isinstance(result, DeadLetter):
            self.dead_letters += 1
            log.warning("%s refused a frame on %s: %s", self.settings.node, result.topic, result.reason)
            return
        msg, payload = result.message, inbound.payload
        trusted = self.settings.trusted_keys
        is_rollout = isinstance(msg, Command) and msg.name == ROLLOUT_COMMAND  # carries its own envelope
        if trusted is not None and isinstance(msg, RawRequest | Command | SignedCommand) and not is_rollout:
            opened = self._open_signed(msg, trusted)
            if opened is None:
                return
            msg, payload = opened
        elif isinstance(msg, SignedCommand):
            return  # no trusted keys: nothing to verify it with, so it is not acted on
        if isinstance(msg, RawRequest):
            self._serve_raw(msg)
            return
        if isinstance(msg, Command) and msg.name == ROLLOUT_COMMAND:
            self._rollout(inbound.topic, payload)
            return
        if not isinstance(msg, DeliveryAck):
            return
        # Acks for frames of an earlier session (before a restart) count too.
        now, seqs = self.clock.now_ms(), msg.seqs()
        self.estimator.acked([(msg.session, seq) for seq in seqs], now)
        if self.outbox.ack(msg.session, seqs, now):
            self.breaker.success()
            if isinstance(self.outbox, DurableOutbox):
                self._send()  # ack-clocked: room in the window goes to the next frames at once

    def _open_signed(
        self, msg: RawRequest | Command | SignedCommand, trusted: Mapping[str, Ed25519PublicKey]
    ) -> tuple[RawRequest | Command, bytes] | None:
        """The verified command in ``msg`` and its frame, or None after refusing it with an ack naming the reason."""
        now = self.clock.now_ms()
        try:
            inner = open_command(msg, trusted, self.settings.command_guard, now)
        except (SignatureError, MessageError) as exc:
            self.refused_commands += 1
            detail = str(exc) if isinstance(exc, SignatureError) else f"invalid: {exc}"  # starts with the reason
            log.warning("%s refused a control command: %s", self.settings.node, detail)
            self._ack(command_id(msg), "refused", detail)
            return None
        assert isinstance(msg, SignedCommand)  # open_command opens nothing else
        if isinstance(self.outbox, DurableOutbox):
            self.outbox.save_state({COMMAND_GUARD_STATE_KEY: cbor2.dumps(self.settings.command_guard.snapshot())})
        return inner, msg.body

    def _ack(self, command: str, status: str, detail: str, result: dict[str, Any] | None = None) -> None:
        ack = CommandAck(
            node=self.settings.node,
            id=command,
            ts_ms=self.clock.now_ms(),
            status=status,
            detail=detail,
            result=result or {},
        )
        if self.bridge is not None:
            self.bridge.publish(topics.up(self.settings.fleet, self.settings.node, "ack"), encode(ack))

    def _rollout(self, topic: str, frame: bytes) -> None:
        """The devices' agent verifies and acts; its reports go straight up (a lost one times out at the hub)."""
        agent = self.settings.rollout
        if agent is None or self.bridge is None:
            return
        for up_topic, payload in agent.handle(topic, frame, self.clock.now_ms()):
            self.bridge.publish(up_topic, payload)

    def _serve_raw(self, request: RawRequest) -> None:
        """Progressive resolution: the raw readings (or the summaries) of a window, from its tier, as backfill."""
        frames = readings = 0
        tier = self.summary_tier if request.tier == "summaries" else self.raw_tier
        if tier is None or self.sampler is None:
            status, detail = "refused", f"this node sends raw readings already; it keeps no {request.tier} tier"
        else:
            for payload in tier.iter_window(request.from_ms, request.to_ms, set(request.devices) or None):
                frame = self.sampler.replay(payload)
                self._buffer(frame, None)
                frames, readings = frames + 1, readings + frame.readings
            oldest = tier.oldest_ms()
            status = "ok"
            detail = "" if frames else f"nothing kept for that window (the {request.tier} tier starts at {oldest})"
        self._ack(request.id, status, detail, {"frames": frames, "readings": readings})
        self._send()

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
        out: dict[str, Any] = {
            "node": self.settings.node,
            "session": self.session,
            "connected": bool(self.bridge and self.bridge.connected),
            "link_wanted": self.link_wanted,
            "pending_frames": len(self.outbox),
            "generated": self.settings.generated[0],
            "dead_letters": self.dead_letters,
            "refused_commands": self.refused_commands,
            "breaker": self.breaker.state.value,
        }
        if isinstance(self.outbox, DurableOutbox):
            box = self.outbox.status()
            tallies = box["tallies"]
            out["acked_readings"] = tallies.get("acked_readings", 0)
            out["resends"] = tallies.get("resends", 0)
            out["evicted_readings"] = sum(v for k, v in tallies.items() if k.startswith("evicted_readings_"))
            out["worst_delay_ms"] = tallies.get("worst_delay_ms", 0)
            out["outbox"] = box
            now = self.clock.now_ms()
            out["link"] = self.estimator.estimate(now).as_dict()
            out["budget"] = self.budget.status(now)
            out["plan"] = None if self.plan is None else self.plan.reason
            if self.sampler is not None:
                out["sampling_stride"] = self.sampler.stride
                out["skipped_samples"] = self.sampler.skipped
        else:
            c = self.outbox.counters
            out.update(
                acked_readings=c.acked_readings,
                resends=c.resends,
                evicted_readings=c.evicted_readings,
                worst_delay_ms=c.worst_delay_ms,
            )
        return out
