"""The alerting actor: feeds the pipeline core, records its effects, hands messages to channels.

Fed like the hub: frames from the fleet's ``readings`` and ``events`` topics (``Inbound``), or
already decoded observations, check results, anomaly events and ``event.v1`` messages. A timer
drives ``tick`` (absence rules, group flushes, digests, escalation) at least every ``tick_s`` and
exactly when the core says something is due. Delivery (with retries and backoff) runs in worker
threads so a slow SMTP server never holds up alert evaluation; attempts and failures come back
as messages, so only the actor's thread touches the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pykka

from pymonitor.actors.runtime.clock import Clock, TimerHandle
from pymonitor.actors.runtime.intake import Accepted, Inbound, accept
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor, tell_if_alive
from pymonitor.messages import Event, ReadingBatch
from pymonitor.store.alert_store import AlertStore, NotificationRecord, Suppression

from .alert import AnomalyEvent, CheckResult, Observation
from .channels.base import Channel
from .channels.config import build_channel
from .channels.gammu import GammuConfig, GammuInbox
from .channels.retry import AttemptRecord, Deliverer
from .channels.sms_http import StatusUpdate
from .config import AlertingConfig
from .effects import Deferred, Effect, Muted, RecordAck, RecordAlerts, RecordEscalation, RecordSilence, Send
from .errors import AlertConfigError
from .inputs import observations
from .pipeline import AlertPipeline
from .silences import Silence

log = logging.getLogger(__name__)

STORE_WRITERS = ("cli", "api")
"""Who acknowledges through the alert store (the running actor picks their rows up on its tick)."""
ALERTING_ACTOR = "alerting"
MAX_FRAME_BYTES = 16 * 1024 * 1024
TICK_S = 1.0

Deliver = Callable[[Send, int], None]


@dataclass(frozen=True, slots=True)
class Tick:
    """The regular timer: poll the store for CLI acks and silences, run what is due, re-arm."""


@dataclass(frozen=True, slots=True)
class Wake:
    """A one-off timer at the instant the core said something is due (a 1 ms group_wait)."""


@dataclass(frozen=True, slots=True)
class AckAlert:
    fingerprint: str
    by: str
    via: str = "api"


@dataclass(frozen=True, slots=True)
class SmsReply:
    """An SMS that came in (gammu inbox, SMS gateway callback): maybe ACK / SILENCE / STATUS."""

    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class LinkReply:
    """An email reply link was followed; ``ask`` returns ``(accepted, detail)``."""

    token: str


@dataclass(frozen=True, slots=True)
class ApiReply:
    """An API call; ``ask`` returns ``(accepted, detail)``."""

    user: str
    api_key: str
    request: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class CarrierStatus:
    """A delivery status callback from an SMS gateway (already verified by ``StatusCallbacks``)."""

    update: StatusUpdate


@dataclass(frozen=True, slots=True)
class AttemptDone:
    notification_id: int
    record: AttemptRecord


@dataclass(frozen=True, slots=True)
class DeliveryFailed:
    fingerprint: str
    receiver: str


@dataclass(frozen=True, slots=True)
class GetAlertStats:
    """Ask for the pipeline's counters."""


class EffectRunner:
    """Carries out pipeline effects: records into the store and hands sends to ``deliver``."""

    def __init__(self, store: AlertStore, deliver: Deliver) -> None:
        self.store = store
        self.deliver = deliver

    def run(self, effects: Sequence[Effect]) -> None:
        quiet: list[Suppression] = []  # recorded in one batch: a silenced storm is thousands
        at_ms = 0
        for effect in effects:
            if isinstance(effect, Muted | Deferred):
                quiet.append(suppression(effect))
                at_ms = effect.at_ms
            elif isinstance(effect, RecordAlerts):
                self.store.record_alerts(effect.alerts, effect.at_ms)
            elif isinstance(effect, Send):
                self._send(effect)
            elif isinstance(effect, RecordEscalation):
                s = effect.step
                self.store.record_escalation(s.fingerprint, s.chain, s.level, s.receivers, s.reason, s.at_ms)
            elif isinstance(effect, RecordAck):
                e = effect
                self.store.record_acknowledgement(e.fingerprint, e.action, e.by, e.via, e.accepted, e.detail, e.at_ms)
            elif isinstance(effect, RecordSilence):
                m = effect.silence
                matchers = [str(x) for x in m.matchers]
                self.store.add_silence(matchers, m.starts_ms, m.ends_ms, m.created_by, m.comment, m.starts_ms)
        self.store.record_suppressions(quiet, at_ms)

    def _send(self, send: Send) -> None:
        message = send.message
        record = NotificationRecord(
            receiver=send.receiver,
            channel=send.channel,
            recipient=message.recipient,
            group_key=send.group_key,
            fingerprints=message.fingerprints,
            text=message.text,
            created_ms=send.at_ms,
        )
        notification_id = self.store.record_notification(record)
        if send.rate_limited:
            detail = "rate limited: too many SMS to this recipient"
            self.store.record_attempt(notification_id, 0, "rate_limited", detail, None, send.at_ms)
            return
        self.deliver(send, notification_id)


class AlertingActor(SupervisedActor):
    """Owns the alert store; nothing else writes alerts, notifications or escalations."""

    def __init__(
        self,
        supervisor: Supervisor | None,
        config: AlertingConfig,
        db_path: str | Path,
        clock: Clock,
        *,
        channels: Mapping[str, Channel] | None = None,
        tick_s: float = TICK_S,
        workers: int = 4,
    ) -> None:
        super().__init__(supervisor, ALERTING_ACTOR)
        self.config = config
        self.db_path = Path(db_path)
        self.clock = clock
        self.tick_s = tick_s
        self.pipeline = AlertPipeline(config)
        self.channels: dict[str, Channel] = dict(channels or {})
        self.store: AlertStore | None = None
        self.runner: EffectRunner | None = None
        self.dead_letters = 0
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._tick_timer: TimerHandle | None = None
        self._wake: tuple[int, TimerHandle] | None = None
        self._last_ack_id = 0
        self._last_silence_id = 0
        self.carrier_unknown = 0  # status callbacks about messages we have no record of
        self._inboxes = [
            GammuInbox(spec.config.inbox) for spec in config.channels.values() if isinstance(spec.config, GammuConfig)
        ]

    def start_role(self) -> None:
        for name, spec in self.config.channels.items():
            self.channels.setdefault(name, build_channel(spec, links=self.pipeline.replies))
        self.store = AlertStore(self.db_path)
        self.runner = EffectRunner(self.store, self._deliver)
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="alert-send")
        self._last_ack_id = self.store.last_acknowledgement_id()
        self._poll_store(self.clock.now_ms())
        self._schedule_tick()

    def on_stop(self) -> None:
        for timer in (self._tick_timer, self._wake[1] if self._wake else None):
            if timer is not None:
                timer.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.store is not None:
            self.store.close()

    def on_receive(self, message: Any) -> Any:
        now = self.clock.now_ms()
        pipeline = self.pipeline
        if isinstance(message, Inbound):
            self._on_frame(message, now)
        elif isinstance(message, Observation):
            self._run(pipeline.observe([message], now))
        elif isinstance(message, list):
            self._run(pipeline.observe([m for m in message if isinstance(m, Observation)], now))
        elif isinstance(message, CheckResult):
            self._run(pipeline.check(message, now))
        elif isinstance(message, AnomalyEvent):
            self._run(pipeline.anomaly(message, now))
        elif isinstance(message, Event):
            self._run(pipeline.event(message, now))
        elif isinstance(message, Tick):
            self._poll_store(now)
            self._poll_inboxes(now)
            self._run(pipeline.tick(now))
            self._schedule_tick()
        elif isinstance(message, Wake):
            self._wake = None
            self._run(pipeline.tick(now))
        elif isinstance(message, AckAlert):
            self._run(pipeline.ack(message.fingerprint, by=message.by, via=message.via, now_ms=now))
        elif isinstance(message, SmsReply):
            self._run(pipeline.reply_sms(message.sender, message.text, now))
        elif isinstance(message, LinkReply | ApiReply):
            if isinstance(message, LinkReply):
                effects = pipeline.reply_token(message.token, now)
            else:
                effects = pipeline.reply_api(message.user, message.api_key, message.request, now)
            self._run(effects)
            self._schedule_wake(now)
            audit = effects[0]
            assert isinstance(audit, RecordAck)
            return audit.accepted, audit.detail
        elif isinstance(message, AttemptDone):
            r = message.record
            assert self.store is not None
            self.store.record_attempt(message.notification_id, r.attempt, r.status, r.detail, r.provider_id, r.at_ms)
        elif isinstance(message, CarrierStatus):
            self._carrier_status(message.update, now)
        elif isinstance(message, DeliveryFailed):
            self._run(pipeline.delivery_failed(message.fingerprint, message.receiver, now))
        elif isinstance(message, GetAlertStats):
            return {
                **asdict(pipeline.counters),
                "dead_letters": self.dead_letters,
                "carrier_unknown": self.carrier_unknown,
                "tracked": pipeline.engine.tracked,
                "silences": len(pipeline.muter.silences),
            }
        self._schedule_wake(now)
        return None

    # -- inputs

    def _on_frame(self, inbound: Inbound, now_ms: int) -> None:
        got = accept(ALERTING_ACTOR, inbound, now_ms, MAX_FRAME_BYTES)
        if not isinstance(got, Accepted):
            self.dead_letters += 1
            log.warning("alerting refused a frame on %s: %s", got.topic, got.reason)
            return
        msg = got.message
        if isinstance(msg, ReadingBatch):
            self._run(self.pipeline.observe(observations(msg), now_ms))
        elif isinstance(msg, Event):
            self._run(self.pipeline.event(msg, now_ms))

    def _poll_store(self, now_ms: int) -> None:
        """Acks and silences the CLI and the REST API wrote into the store since the last look.

        The actor's own rows (SMS and email replies it handled) are skipped: it applied them already.
        """
        assert self.store is not None
        for row in self.store.acknowledgements_after(self._last_ack_id):
            self._last_ack_id = row["id"]
            if row["via"] in STORE_WRITERS and row["action"] == "ack" and row["fingerprint"]:
                self.pipeline.ack(row["fingerprint"], by=row["by"], via=row["via"], now_ms=now_ms, record=False)
        for row in self.store.silences_after(self._last_silence_id):
            self._last_silence_id = row["id"]
            try:
                self.pipeline.silence(silence_of(row, now_ms))
            except AlertConfigError as exc:
                log.error("silence %s in the store is not usable: %s", row["id"], exc)

    def _poll_inboxes(self, now_ms: int) -> None:
        """SMS replies a GSM modem (gammu-smsd) put in its inbox."""
        for inbox in self._inboxes:
            try:
                received = inbox.collect()
            except OSError as exc:
                log.warning("cannot read the gammu inbox %s: %s", inbox.inbox, exc)
                continue
            for sms in received:
                self._run(self.pipeline.reply_sms(sms.sender, sms.text, now_ms))

    def _carrier_status(self, update: StatusUpdate, now_ms: int) -> None:
        """Record what the carrier says became of a message; a failure escalates like a failed send."""
        assert self.store is not None
        note = self.store.notification_by_provider_id(update.provider_id)
        if note is None:
            self.carrier_unknown += 1
            return
        detail = f"carrier: {update.carrier_status}" + (f" ({update.error})" if update.error else "")
        self.store.record_attempt(note["id"], 0, update.status, detail, update.provider_id, now_ms)
        if update.status == "failed":
            for fp in note["fingerprints"]:
                self._run(self.pipeline.delivery_failed(fp, note["receiver"], now_ms))

    # -- effects

    def _run(self, effects: Sequence[Effect]) -> None:
        assert self.runner is not None
        self.runner.run(effects)

    def _deliver(self, send: Send, notification_id: int) -> None:
        assert self._pool is not None
        channel = self.channels.get(send.channel)
        spec = self.config.channels[send.channel]
        ref = self.actor_ref
        if channel is None:  # pragma: no cover - every configured channel is built in start_role
            return

        def attempted(record: AttemptRecord) -> None:
            tell_if_alive(ref, AttemptDone(notification_id, record))

        deliverer = Deliverer(
            spec.retry,
            clock=self.clock.now_ms,
            sleep=lambda ms: time.sleep(ms / 1000),
            on_attempt=attempted,
            on_failure=lambda fp, receiver, _now: tell_if_alive(ref, DeliveryFailed(fp, receiver)),
        )
        self._pool.submit(deliverer.deliver, send.receiver, channel, send.message)

    # -- timers

    def _schedule_tick(self) -> None:
        ref = self.actor_ref
        self._tick_timer = self.clock.call_later(self.tick_s, lambda: tell_if_alive(ref, Tick()))

    def _schedule_wake(self, now_ms: int) -> None:
        """A timer for the next due instant when it comes before the regular tick (group_wait of 1 ms)."""
        due = self.pipeline.next_due_ms()
        if due is None or due >= now_ms + self.tick_s * 1000:
            return
        if self._wake is not None:
            if self._wake[0] <= due:
                return
            self._wake[1].cancel()
        ref = self.actor_ref
        self._wake = (due, self.clock.call_later(max(0, due - now_ms) / 1000, lambda: tell_if_alive(ref, Wake())))


def suppression(effect: Muted | Deferred) -> Suppression:
    if isinstance(effect, Muted):
        return Suppression(fingerprint=effect.alert.fingerprint, kind="muted", reason=effect.reason)
    reason = "off hours, not an emergency: waits for the digest"
    return Suppression(fingerprint=effect.alert.fingerprint, kind="deferred", reason=reason, until_ms=effect.until_ms)


def silence_of(row: Mapping[str, Any], now_ms: int) -> Silence:
    """A silence row of the store as the muter's ``Silence``."""
    raw = {k: row[k] for k in ("matchers", "starts_ms", "ends_ms", "created_by", "comment")}
    return Silence.parse({**raw, "id": f"store-{row['id']}"}, f"silences(store id {row['id']})", now_ms=now_ms)


def start_alerting(
    config: AlertingConfig, db_path: str | Path, clock: Clock, **kwargs: Any
) -> pykka.ActorRef[AlertingActor]:
    """Start an unsupervised alerting actor (the CLI's and the bench's way)."""
    return AlertingActor.start(None, config, db_path, clock, **kwargs)
