"""The hub actor: feeds frames to :class:`HubCore`, carries out its effects on the store and MQTT."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymonitor.actors.runtime.clock import Clock, TimerHandle
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor, tell_if_alive
from pymonitor.messages import DeadLetter, Event, NodeBirth, NodeDeath
from pymonitor.store import HubStore

from .core import Effect, HubCore, HubCounters, Publish, Record, WriteFrames
from .retention import RetentionCounters, RetentionSettings

if TYPE_CHECKING:  # store.hub_retention imports the pure core from this package
    from pymonitor.store.hub_retention import HubRetention

log = logging.getLogger(__name__)

Publisher = Callable[[str, bytes, bool], None]


@dataclass(frozen=True, slots=True)
class Flush:
    """Timer tick: write what is pending."""


@dataclass(frozen=True, slots=True)
class RetentionTick:
    """Timer tick: start a retention pass (in its own thread, on its own connection)."""


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
    retention: RetentionSettings | None = None  # None: keep everything (no rollups, no budget)
    retention_counters: RetentionCounters = field(default_factory=RetentionCounters)


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
        self._retention_timer: TimerHandle | None = None
        self._retention_thread: threading.Thread | None = None
        self.retention: HubRetention | None = None

    def start_role(self) -> None:
        self.store = HubStore(self.settings.db_path)
        if self.store.set_aside is not None:
            log.error("hub store was corrupt; kept the old file at %s", self.store.set_aside)
        self._schedule_flush()
        if self.settings.retention is not None:
            from pymonitor.store.hub_retention import HubRetention  # here: an import cycle

            self.retention = HubRetention(self.settings.db_path, self.settings.retention)
            self._schedule_retention()

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._stop_retention()
        if self.store is not None:
            self._run(self.core.on_flush(self.clock.now_ms()))
            self.store.close()

    def on_failure(self, *args: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._stop_retention()
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
        elif isinstance(message, RetentionTick):
            self._start_retention_pass(now)
            self._schedule_retention()
        elif isinstance(message, GetStats):
            assert self.store is not None
            clocks = {"devices": self.core.clocks.devices, "resets": self.core.clocks.resets}
            return {
                "counters": vars(self.core.counters).copy(),
                "clocks": clocks,
                "store": self.store.stats(),
                "retention": vars(self.settings.retention_counters).copy(),
            }
        return None

    # -- retention: a pass in its own thread, off the ingest path; a failure is logged and counted

    def _schedule_retention(self) -> None:
        assert self.settings.retention is not None
        ref = self.actor_ref
        self._retention_timer = self.clock.call_later(
            self.settings.retention.interval_s, lambda: tell_if_alive(ref, RetentionTick())
        )

    def _start_retention_pass(self, now_ms: int) -> None:
        if self.retention is None:
            return
        if self._retention_thread is not None and self._retention_thread.is_alive():
            self.settings.retention_counters.skipped += 1
            return
        self._retention_thread = threading.Thread(
            target=_retention_pass, args=(self.retention, now_ms, self.settings.retention_counters),
            name="hub-retention", daemon=True,
        )  # fmt: skip
        self._retention_thread.start()

    def _stop_retention(self) -> None:
        if self._retention_timer is not None:
            self._retention_timer.cancel()
        if self._retention_thread is not None:
            self._retention_thread.join(timeout=60)  # a pass is a series of short transactions
        if self.retention is not None:
            self.retention.close()
            self.retention = None

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


def _retention_pass(retention: HubRetention, now_ms: int, counters: RetentionCounters) -> None:
    t0 = time.perf_counter()
    try:
        report = retention.run(now_ms)
    except Exception:
        counters.failures += 1
        log.exception("hub retention pass failed (%d so far); ingest goes on", counters.failures)
        return
    counters.passes += 1
    counters.rolled += sum(report.rolled.values())
    counters.late += report.late
    counters.dropped += sum(report.dropped.values())
    counters.last_pass_ms = now_ms
    counters.last_pass_s = round(time.perf_counter() - t0, 3)
    counters.used_bytes, counters.file_bytes = report.used_bytes, report.file_bytes
