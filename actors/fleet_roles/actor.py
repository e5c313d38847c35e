"""The role actor: a thin pykka shell that feeds a :class:`~.roles.LiveRole` and carries its events out.

One actor per role, each under the supervisor: an analysis that takes a minute, or a role that
raises, holds up only its own inbox (which drops and counts past its cap); ingest and the other
roles go on. A crash loses at most the items being handled; the ones still waiting are kept in
the inbox (owned by the host, not the actor) for the restarted actor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymonitor.actors.runtime.clock import Clock, TimerHandle
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor, tell_if_alive
from pymonitor.messages import Event

from .inbox import RoleInbox
from .roles import LiveRole

log = logging.getLogger(__name__)

EventSink = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class Wake:
    """Items are waiting in the inbox."""


@dataclass(frozen=True, slots=True)
class Analyse:
    """Run the role's analysis now; ``scheduled``: a timer tick, which schedules the next one."""

    scheduled: bool = True


@dataclass(frozen=True, slots=True)
class GetRoleStats:
    pass


class RoleActor(SupervisedActor):
    def __init__(
        self,
        supervisor: Supervisor | None,
        name: str,
        make_role: Callable[[], LiveRole],
        inbox: RoleInbox,
        clock: Clock,
        sink: EventSink,
        analyse_every_s: float | None,
    ) -> None:
        super().__init__(supervisor, name)
        self.make_role = make_role
        self.inbox = inbox
        self.clock = clock
        self.sink = sink
        self.analyse_every_s = analyse_every_s
        self.role: LiveRole | None = None
        self._timer: TimerHandle | None = None
        self.analysis_failures = 0

    def start_role(self) -> None:
        self.role = self.make_role()
        if self.inbox.rearm():
            self.actor_ref.tell(Wake())
        self._schedule()

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def on_failure(self, *args: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().on_failure(*args)

    def _schedule(self) -> None:
        if self.analyse_every_s is None:
            return
        ref = self.actor_ref
        self._timer = self.clock.call_later(self.analyse_every_s, lambda: tell_if_alive(ref, Analyse()))

    def on_receive(self, message: Any) -> Any:
        assert self.role is not None
        now = self.clock.now_ms()
        if isinstance(message, Wake):
            self._emit(self.role.ingest(self.inbox.take(), now))
        elif isinstance(message, Analyse):
            raised = 0
            try:
                events = self.role.analyse(now)
                self._emit(events)
                raised = len(events)
            except Exception:
                # A failed analysis (a locked or half-migrated store) is retried next tick; the stream goes on.
                self.analysis_failures += 1
                log.exception("%s analysis failed (%d so far)", self.role_name, self.analysis_failures)
            if message.scheduled:
                self._schedule()
            return raised
        elif isinstance(message, GetRoleStats):
            stats = self.role.stats()
            stats["analysis_failures"] = self.analysis_failures
            return stats
        return None

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            self.sink(event)
