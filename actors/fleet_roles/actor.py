"""The role actor: a thin pykka shell that feeds a :class:`~.roles.LiveRole` and carries its events out.

One actor per role, each under the supervisor. A scheduled analysis (a store query that may take
seconds) runs in a worker thread, like the hub's retention pass, so the role keeps draining its
inbox meanwhile; its answer comes back as a message and becomes events in the actor. A role that
raises holds up only its own inbox (which drops and counts past its cap); ingest and the other
roles go on. A crash loses at most the items being handled; the ones still waiting are kept in
the inbox (owned by the host, not the actor) for the restarted actor.
"""

from __future__ import annotations

import logging
import threading
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
FIRST_ANALYSIS_S = 60.0
"""A (re)started role analyses this soon, not a whole period later: the CLI and the API serve its answer,
and a hub that restarted has the store's history to analyse. Not at once: a restart has a backlog to take in."""


@dataclass(frozen=True, slots=True)
class Wake:
    """Items are waiting in the inbox."""


@dataclass(frozen=True, slots=True)
class Analyse:
    """Run the role's analysis now; ``scheduled``: a timer tick, which schedules the next one."""

    scheduled: bool = True


@dataclass(frozen=True, slots=True)
class Analysed:
    """A scheduled analysis finished in its worker thread: its answer, to be turned into events here."""

    answer: dict[str, Any]
    now_ms: int


@dataclass(frozen=True, slots=True)
class AnalysisFailed:
    error: str


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
        self._worker: threading.Thread | None = None
        self.analysis_failures = 0
        self.analyses_skipped = 0  # a tick that came while the last analysis was still running
        self.last_analysis_error = ""

    def start_role(self) -> None:
        self.role = self.make_role()
        if self.inbox.rearm():
            self.actor_ref.tell(Wake())
        self._schedule(first=True)

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def on_failure(self, *args: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().on_failure(*args)

    def _schedule(self, first: bool = False) -> None:
        if self.analyse_every_s is None:
            return
        delay = min(self.analyse_every_s, FIRST_ANALYSIS_S) if first else self.analyse_every_s
        ref = self.actor_ref
        self._timer = self.clock.call_later(delay, lambda: tell_if_alive(ref, Analyse()))

    def on_receive(self, message: Any) -> Any:
        assert self.role is not None
        now = self.clock.now_ms()
        if isinstance(message, Wake):
            self._emit(self.role.ingest(self.inbox.take(), now))
        elif isinstance(message, Analyse) and message.scheduled:
            self._start_analysis(now)
            self._schedule()
        elif isinstance(message, Analyse):
            return self._analyse_here(now)
        elif isinstance(message, Analysed):
            self._emit(self.role.events(message.answer, message.now_ms))
        elif isinstance(message, AnalysisFailed):
            self._failed(message.error)
        elif isinstance(message, GetRoleStats):
            stats = self.role.stats()
            stats["analysis_failures"] = self.analysis_failures
            stats["analyses_skipped"] = self.analyses_skipped
            stats["last_analysis_error"] = self.last_analysis_error
            return stats
        return None

    def _start_analysis(self, now_ms: int) -> None:
        """Run the query in a worker thread, off the ingest path: the inbox keeps draining meanwhile."""
        assert self.role is not None
        query = self.role.query
        if query is None:
            return
        if self._worker is not None and self._worker.is_alive():
            self.analyses_skipped += 1
            return
        self.role.counts["analyses"] += 1
        ref, name = self.actor_ref, self.role_name

        def work() -> None:
            try:
                answer = query(now_ms)
            except Exception as exc:
                log.exception("%s analysis failed; retried at the next tick", name)
                tell_if_alive(ref, AnalysisFailed(f"{type(exc).__name__}: {exc}"))
                return
            tell_if_alive(ref, Analysed(answer, now_ms))

        self._worker = threading.Thread(target=work, name=f"{self.role_name}-analysis", daemon=True)
        self._worker.start()

    def _analyse_here(self, now_ms: int) -> int:
        """An analysis asked for on demand, in the actor; the number of events it raised."""
        assert self.role is not None
        try:
            events = self.role.analyse(now_ms)
        except Exception as exc:
            log.exception("%s analysis failed", self.role_name)
            self._failed(f"{type(exc).__name__}: {exc}")
            return 0
        self._emit(events)
        return len(events)

    def _failed(self, error: str) -> None:
        # A failed analysis (a locked or half-migrated store) is retried next tick; the stream goes on.
        self.analysis_failures += 1
        self.last_analysis_error = error

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            self.sink(event)
