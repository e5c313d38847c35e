"""The alerting pipeline: readings, checks, anomalies and events in; what to record and send out.

Pure, like every core here: time is passed in and nothing is done, only decided. Each input
returns a list of effects the shell carries out in order (record, send, record an escalation).
The path of one alert:

1. the rule engine turns inputs into transitions (``firing`` / ``resolved``); every one is
   recorded (:class:`RecordAlerts`), so a storm is in the history even when it notifies once;
2. silences, maintenance windows and inhibition may mute a firing alert (:class:`Muted`, why);
3. off hours a non-emergency waits for the next business morning (:class:`Deferred`) and goes
   out in one digest per receiver; emergencies go on;
4. the routing tree and the grouping scheduler turn alerts into few notifications, rendered per
   receiver style (one SMS that fits, a push, the full text) into :class:`Send` effects;
5. a paging alert that was notified starts its escalation chain; nobody acknowledging in time,
   or a channel failing, tells the next level (:class:`Send` with ``kind="escalation"``).

An alert muted when it fired is notified at the first tick after its mute ends, if it still
fires; ``ack`` stops its escalation.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pymonitor.messages import Event

from .alert import Alert, AnomalyEvent, CheckResult, Observation
from .channels.base import OutgoingMessage
from .config import AlertingConfig
from .effects import Deferred, Effect, Muted, RecordAck, RecordAlerts, RecordEscalation, RecordSilence, Send, SendKind
from .escalation import EXHAUSTED, EscalationStep, Escalator
from .grouping import Notification, NotificationScheduler
from .inputs import event_alert
from .matchers import Matcher
from .render import render, sms_text, subject, worst
from .replies import Ack, AlertCodebook, ReplyHandler, ReplyOutcome, StatusRequest
from .replies import Silence as SilenceRequest
from .rules import RuleEngine
from .schedule import BusinessHours, Deferral, is_emergency
from .silences import Muter, Silence
from .sms import SmsRateLimiter


@dataclass(slots=True, kw_only=True)
class PipelineCounters:
    alerts: int = 0
    muted: int = 0
    deferred: int = 0
    notifications: int = 0
    messages: int = 0
    rate_limited: int = 0
    escalation_steps: int = 0
    ignored_events: int = 0


class AlertPipeline:
    """All alerting cores wired together; see the module docstring."""

    def __init__(self, config: AlertingConfig) -> None:
        self.config = config
        self.counters = PipelineCounters()
        self.engine = RuleEngine(config.rules, in_hours=config.in_hours, sites=config.sites)
        self.muter = Muter(silences=config.silences, maintenance=config.maintenance, inhibit=config.inhibit)
        self.scheduler = NotificationScheduler(config.routing)
        self._deferrals = {name: Deferral(profile, config.emergency) for name, profile in config.hours.items()}
        self.escalator = None if config.escalation is None else Escalator(config.escalation, self._default_hours())
        self._sms = SmsRateLimiter(config.notify.sms_per_hour, config.notify.sms_burst)
        self._scheduled: set[str] = set()  # fingerprints of firing alerts the scheduler holds
        self._deferred: set[str] = set()  # fingerprints waiting in a digest
        self._firing: dict[str, Alert] = {}  # latest firing alert per fingerprint, for escalation texts
        self._muted: dict[str, Alert] = {}  # firing but muted: notified when the mute ends
        self._told: dict[str, set[str]] = {}  # receivers the first notification reached, per escalating alert
        self._ids = itertools.count(1)
        self.codebook = AlertCodebook()  # short codes SMS replies name alerts by
        self.replies = None if config.replies is None else ReplyHandler(config=config.replies, codebook=self.codebook)

    # -- inputs

    def observe(self, observations: Iterable[Observation], now_ms: int) -> list[Effect]:
        return self._admit([a for obs in observations for a in self.engine.observe(obs)], now_ms)

    def check(self, result: CheckResult, now_ms: int) -> list[Effect]:
        return self._admit(self.engine.check(result), now_ms)

    def anomaly(self, event: AnomalyEvent, now_ms: int) -> list[Effect]:
        return self._admit(self.engine.anomaly(event), now_ms)

    def event(self, event: Event, now_ms: int) -> list[Effect]:
        """A node's ``event.v1``: an alert of rule ``event.<kind>``; ``debug`` events are counted and dropped."""
        alert = event_alert(event, self.config.sites.get(event.node))
        if alert is None:
            self.counters.ignored_events += 1
            return []
        return self._admit([alert], now_ms)

    def alerts(self, alerts: Sequence[Alert], now_ms: int) -> list[Effect]:
        """Alerts made elsewhere (another engine, a test-route, the API), through the same path."""
        return self._admit(list(alerts), now_ms)

    def tick(self, now_ms: int) -> list[Effect]:
        """Absence rules, then everything due: group flushes, morning digests, escalation steps."""
        effects = self._admit(self.engine.tick(now_ms), now_ms)
        unmuted = self._unmute(now_ms) if self._muted else []
        return effects + unmuted + self._flush(now_ms) + self._digests(now_ms) + self._escalations(now_ms)

    def ack(
        self, fingerprint: str, *, by: str, via: str, now_ms: int, detail: str = "", record: bool = True
    ) -> list[Effect]:
        """Someone took the alert: stop its escalation. An ack of nothing escalating is still recorded
        (``record=False``: it is in the store already, written by the CLI)."""
        stopped = self.escalator is not None and self.escalator.ack(fingerprint, by, now_ms)
        self._told.pop(fingerprint, None)
        if not record:
            return []
        note = detail or ("escalation stopped" if stopped else "nothing was escalating")
        ack = RecordAck(fingerprint=fingerprint, action="ack", by=by, via=via, accepted=True, detail=note, at_ms=now_ms)
        return [ack]

    def silence(self, silence: Silence) -> None:
        self.muter.add_silence(silence)

    def reply_sms(self, sender: str, text: str, now_ms: int) -> list[Effect]:
        """An SMS reply (ACK / SILENCE / STATUS with a PIN); refused ones are recorded too."""
        if self.replies is None:
            return [_refused("sms", sender, "replies are not configured", now_ms)]
        return self._reply(self.replies.handle_sms(sender, text, now_ms), now_ms)

    def reply_token(self, token: str, now_ms: int) -> list[Effect]:
        """An email reply link was followed."""
        if self.replies is None:
            return [_refused("email", "token", "replies are not configured", now_ms)]
        return self._reply(self.replies.handle_token(token, now_ms), now_ms)

    def reply_api(self, user: str, api_key: str, request: Mapping[str, object], now_ms: int) -> list[Effect]:
        if self.replies is None:
            return [_refused("api", user[:64], "replies are not configured", now_ms)]
        return self._reply(self.replies.handle_api(user, api_key, request, now_ms), now_ms)

    def delivery_failed(self, fingerprint: str, receiver: str, now_ms: int) -> list[Effect]:
        """A channel gave up on a message: the escalation falls back or moves on at once."""
        if self.escalator is None or not self.escalator.delivery_failed(fingerprint, receiver, now_ms):
            return []
        return self._escalations(now_ms)

    def next_due_ms(self) -> int | None:
        """When ``tick`` next has something to do (absence rules aside: tick at least every few seconds)."""
        times = [self.scheduler.next_due_ms(), *(d.next_due_ms() for d in self._deferrals.values())]
        if self.escalator is not None:
            times.append(self.escalator.next_due_ms())
        return min((t for t in times if t is not None), default=None)

    def _reply(self, outcome: ReplyOutcome, now_ms: int) -> list[Effect]:
        audit, action = outcome.audit, outcome.action
        if action is None:
            return [_refused(audit.via, audit.sender, audit.reason, now_ms)]
        fp = "" if isinstance(action, StatusRequest) else action.fingerprint or ""
        verb = "ack" if isinstance(action, Ack) else "silence" if isinstance(action, SilenceRequest) else "status"
        effects: list[Effect] = [
            RecordAck(fingerprint=fp, action=verb, by=action.by, via=audit.via, accepted=True, detail=audit.text,
                      at_ms=now_ms)
        ]  # fmt: skip
        if isinstance(action, Ack):
            return effects + self.ack(fp, by=action.by, via=audit.via, now_ms=now_ms, record=False)
        if isinstance(action, SilenceRequest):
            alert = self._firing.get(fp)
            if alert is not None:
                silence = _silence_for(alert, action, now_ms)
                self.muter.add_silence(silence)
                if self.escalator is not None:
                    self.escalator.stop(fp)
                effects.append(RecordSilence(silence=silence))
            return effects
        return effects + self._status(audit.sender, now_ms)

    def _status(self, phone: str, now_ms: int) -> list[Effect]:
        """What fires now, as one SMS back to whoever asked (on the SMS receiver that knows them)."""
        sms = [r for r in self.config.receivers.values() if r.style == "sms"]
        receiver = next((r for r in sms if phone in r.recipients), sms[0] if sms else None)
        if receiver is None:
            return []
        firing = sorted(self._firing.values(), key=lambda a: (a.starts_ms, a.fingerprint))
        text = sms_text(firing, [], receiver.max_segments) if firing else "No alerts firing."
        message = OutgoingMessage(
            id=f"{now_ms:x}-{next(self._ids)}",
            recipient=phone,
            subject="status",
            text=text,
            fingerprints=tuple(a.fingerprint for a in firing),
            severity=worst(firing),
        )
        send = Send(
            message=message, receiver=receiver.name, channel=receiver.channel, group_key="status", kind="status",
            at_ms=now_ms,
        )  # fmt: skip
        return [send]

    # -- the path of an alert

    def _admit(self, alerts: list[Alert], now_ms: int) -> list[Effect]:
        if not alerts:
            return self._flush(now_ms)
        self.counters.alerts += len(alerts)
        effects: list[Effect] = [RecordAlerts(alerts=tuple(alerts), at_ms=now_ms)]
        for alert in alerts:
            self.muter.observe(alert)
            if alert.state == "resolved":
                self._firing.pop(alert.fingerprint, None)
                self._muted.pop(alert.fingerprint, None)
                self.codebook.forget(alert.fingerprint)
                self._told.pop(alert.fingerprint, None)
                if self.escalator is not None:
                    self.escalator.stop(alert.fingerprint)
            else:
                reason = self.muter.is_muted(alert, now_ms)
                if reason is not None:
                    self.counters.muted += 1
                    self._muted[alert.fingerprint] = alert
                    effects.append(Muted(alert=alert, reason=reason, at_ms=now_ms))
                    continue
                self._muted.pop(alert.fingerprint, None)
                self._firing[alert.fingerprint] = alert
            self._route(alert, now_ms, effects)
        return effects + self._flush(now_ms)

    def _route(self, alert: Alert, now_ms: int, effects: list[Effect]) -> None:
        """Into the digest (off hours, not an emergency) or the routing tree's groups."""
        if alert.state == "resolved" and alert.fingerprint in self._scheduled:
            self._scheduled.discard(alert.fingerprint)
            self.scheduler.add(alert, now_ms)
            return
        if alert.state == "resolved" and alert.fingerprint not in self._deferred:
            return  # its firing was muted: nothing was said, nothing to take back
        deferral = self._deferral_for(alert)
        until = now_ms if deferral is None else deferral.defer(alert, now_ms)
        if until > now_ms:
            self.counters.deferred += 1
            self._deferred.add(alert.fingerprint)
            effects.append(Deferred(alert=alert, until_ms=until, at_ms=now_ms))
            return
        self._deferred.discard(alert.fingerprint)
        if alert.state == "firing":
            self._scheduled.add(alert.fingerprint)
        self.scheduler.add(alert, now_ms)

    def _unmute(self, now_ms: int) -> list[Effect]:
        """Alerts muted when they fired whose silence or window has ended and that still fire: notify now."""
        effects: list[Effect] = []
        for fp, alert in list(self._muted.items()):
            if self.muter.is_muted(alert, now_ms) is None:
                del self._muted[fp]
                self._firing[fp] = alert
                self._route(alert, now_ms, effects)
        return effects

    def _flush(self, now_ms: int) -> list[Effect]:
        due = self.scheduler.next_due_ms()
        if due is None or due > now_ms:
            return []
        effects: list[Effect] = []
        for note in self.scheduler.due(now_ms):
            effects += self._notify(note, "notification", now_ms)
            self._start_escalations(note, now_ms)
        return effects + self._escalations(now_ms)

    def _start_escalations(self, note: Notification, now_ms: int) -> None:
        if self.escalator is None:
            return
        for alert in note.firing:
            if alert.severity in self.config.notify.escalate and is_emergency(alert, self.config.emergency):
                if self.escalator.start(alert.fingerprint, now_ms):
                    self._told[alert.fingerprint] = set()
                self._told.get(alert.fingerprint, set()).add(note.receiver)

    def _digests(self, now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for name, deferral in self._deferrals.items():
            ready = deferral.digest_due(now_ms)
            if not ready:
                continue
            by_receiver: defaultdict[str, list[Alert]] = defaultdict(list)
            for alert in ready:
                for receiver in dict.fromkeys(m.receiver for m in self.config.routing.route(alert)):
                    by_receiver[receiver].append(alert)
            for receiver, alerts in sorted(by_receiver.items()):
                note = Notification(
                    receiver=receiver,
                    group_labels={"digest": name},
                    firing=tuple(a for a in alerts if a.state == "firing"),
                    resolved=tuple(a for a in alerts if a.state == "resolved"),
                    count=len(alerts),
                    at_ms=now_ms,
                    route="digest",
                )
                effects += self._notify(note, "digest", now_ms, header=f"Overnight digest ({name}):")
            for alert in ready:
                self._deferred.discard(alert.fingerprint)
                if alert.state == "firing" and alert.fingerprint in self._firing:
                    self._scheduled.add(alert.fingerprint)
                    self.scheduler.add(alert, now_ms)  # it still fires: its group reminds and resolves as usual
        return effects

    def _escalations(self, now_ms: int) -> list[Effect]:
        if self.escalator is None:
            return []
        steps = self.escalator.due(now_ms)
        effects: list[Effect] = [RecordEscalation(step=step) for step in steps]
        self.counters.escalation_steps += len(steps)
        # Steps due together go out as one message per receiver, so an escalating storm stays a few messages.
        by_receiver: defaultdict[str, list[EscalationStep]] = defaultdict(list)
        for step in steps:
            if step.reason == EXHAUSTED:
                self._told.pop(step.fingerprint, None)
                continue
            told = self._told.pop(step.fingerprint, set()) if step.reason == "start" else set()
            for receiver in step.receivers:
                if receiver not in told:  # level 1 receivers the routed notification reached are not told twice
                    by_receiver[receiver].append(step)
        for receiver, group in sorted(by_receiver.items()):
            alerts = [self._firing[s.fingerprint] for s in group if s.fingerprint in self._firing]
            if not alerts:  # pragma: no cover - a resolution or an ack stops its escalation first
                continue
            first = group[0]
            header = f"ESCALATED (level {first.level + 1} of {first.chain}: {first.reason})"
            note = Notification(
                receiver=receiver,
                group_labels={"escalation": first.chain},
                firing=tuple(alerts),
                resolved=(),
                count=len(alerts),
                at_ms=now_ms,
                route=f"escalation.chains.{first.chain}",
            )
            effects += self._notify(note, "escalation", now_ms, header=header)
        return effects

    def _deferral_for(self, alert: Alert) -> Deferral | None:
        name = self.config.notify.site_hours.get(alert.labels.get("site", ""), self.config.notify.hours)
        return None if name is None else self._deferrals[name]

    def _default_hours(self) -> BusinessHours | None:
        name = self.config.notify.hours
        return None if name is None else self.config.hours[name]

    # -- rendering

    def _notify(self, note: Notification, kind: SendKind, now_ms: int, header: str = "") -> list[Effect]:
        receiver = self.config.receivers[note.receiver]
        self.counters.notifications += 1
        group_key = f"{note.route}|" + ",".join(f"{k}={v}" for k, v in sorted(note.group_labels.items()))
        if receiver.style == "sms" and self.replies is not None and len(note.firing) == 1:
            header = f"{header} #{self.codebook.code_for(note.firing[0].fingerprint)}".strip()  # "ACK <code> <PIN>"
        text = render(receiver, note.firing, note.resolved, header)
        effects: list[Effect] = []
        for recipient in receiver.recipients:
            message = OutgoingMessage(
                id=f"{now_ms:x}-{next(self._ids)}",
                recipient=recipient,
                subject=subject(note.firing, note.resolved, f"{header} " if header else ""),
                text=text,
                fingerprints=tuple(a.fingerprint for a in (*note.firing, *note.resolved)),
                severity=worst(note.firing or note.resolved),
            )
            limited = receiver.style == "sms" and not self._sms.allow(recipient, now_ms)
            self.counters.messages += 1
            self.counters.rate_limited += limited
            effects.append(
                Send(
                    message=message,
                    receiver=receiver.name,
                    channel=receiver.channel,
                    group_key=group_key,
                    kind=kind,
                    at_ms=now_ms,
                    rate_limited=limited,
                )
            )
        return effects


def _refused(via: str, sender: str, reason: str, now_ms: int) -> RecordAck:
    return RecordAck(fingerprint="", action="refused", by=sender, via=via, accepted=False, detail=reason, at_ms=now_ms)


def _silence_for(alert: Alert, request: SilenceRequest, now_ms: int) -> Silence:
    """A silence of exactly this alert (its rule and every label) for the asked duration."""
    labels = {"rule": alert.rule, **alert.labels}
    return Silence(
        id=f"reply-{alert.fingerprint}-{now_ms}",
        matchers=tuple(Matcher(label=k, op="=", value=v) for k, v in sorted(labels.items())),
        starts_ms=now_ms,
        ends_ms=now_ms + request.duration_ms,
        created_by=request.by,
        comment=f"silenced by reply for {request.duration_ms // 60_000} min",
    )
