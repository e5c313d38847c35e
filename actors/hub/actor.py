"""The hub actor: feeds frames to :class:`HubCore`, carries out its effects on the store and MQTT."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pymonitor.actors.runtime.clock import Clock, TimerHandle
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor, tell_if_alive
from pymonitor.messages import DeadLetter, Event, NodeBirth, NodeDeath
from pymonitor.store import HubStore

from .core import Effect, HubCore, HubCounters, Publish, Record, WriteFrames

log = logging.getLogger(__name__)

Publisher = Callable[[str, bytes, bool], None]


@dataclass(frozen=True, slots=True)
class Flush:
    """Timer tick: write what is pending."""


@dataclass(frozen=True, slots=True)
class GetStats:
    """Ask for counters and store figures."""


@dataclass
class HubSettings:
    fleet: str
    node: str
    db_path: Path
    flush_interval_ms: int = 200
    flush_max_frames: int = 256
    counters: HubCounters = field(default_factory=HubCounters)  # survives actor restarts


class HubActor(SupervisedActor):
    """Owns the hub store; nothing else writes to it."""

    def __init__(self, supervisor: Supervisor | None, settings: HubSettings, clock: Clock, publish: Publisher) -> None:
        super().__init__(supervisor, "hub")
        self.settings = settings
        self.clock = clock
        self.publish = publish
        self.core = HubCore(
            settings.fleet,
            settings.node,
            settings.flush_max_frames,
            counters=settings.counters,
            flush_interval_ms=settings.flush_interval_ms,
        )
        self.store: HubStore | None = None
        self._timer: TimerHandle | None = None

    def start_role(self) -> None:
        self.store = HubStore(self.settings.db_path)
        if self.store.set_aside is not None:
            log.error("hub store was corrupt; kept the old file at %s", self.store.set_aside)
        self._schedule_flush()

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.store is not None:
            self._run(self.core.on_flush(self.clock.now_ms()))
            self.store.close()

    def on_failure(self, *args: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.store is not None:
            self.store.close()
        super().on_failure(*args)

    def on_receive(self, message: Any) -> Any:
        now = self.clock.now_ms()
        if isinstance(message, Inbound):
            self._run(self.core.on_frame(message, now))
        elif isinstance(message, Flush):
            self._run(self.core.on_flush(now))
            self._schedule_flush()
        elif isinstance(message, GetStats):
            assert self.store is not None
            clocks = {"devices": self.core.clocks.devices, "resets": self.core.clocks.resets}
            return {"counters": vars(self.core.counters).copy(), "clocks": clocks, "store": self.store.stats()}
        return None

    def _schedule_flush(self) -> None:
        ref = self.actor_ref
        self._timer = self.clock.call_later(self.settings.flush_interval_ms / 1000, lambda: tell_if_alive(ref, Flush()))

    def _run(self, effects: list[Effect]) -> None:
        assert self.store is not None
        store = self.store
        for effect in effects:
            if isinstance(effect, WriteFrames):
                now = self.clock.now_ms()
                result = store.write_frames(effect.frames, now, effect.traffic, partial(self.core.stamp, now_ms=now))
                self._run(self.core.on_written(result.stored, result.duplicates, result.readings, now))
            elif isinstance(effect, Publish):
                self.publish(effect.topic, effect.payload, effect.retain)
            elif isinstance(effect, Record):
                self._record(effect.message)

    def _record(self, message: NodeBirth | NodeDeath | Event | DeadLetter) -> None:
        assert self.store is not None
        now = self.clock.now_ms()
        if isinstance(message, NodeBirth):
            self.store.record_birth(message)
        elif isinstance(message, NodeDeath):
            self.store.record_death(message, now)
        elif isinstance(message, Event):
            self.store.insert_event(message, now)
        else:
            log.warning("dead letter on %s: %s", message.topic, message.reason)
            self.store.insert_dead_letter(message)
