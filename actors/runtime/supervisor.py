"""Supervision for pykka actors: restart with backoff, failures counted and reported.

An actor that raises while handling a ``tell`` is stopped by pykka; its :meth:`on_failure`
tells the supervisor, which starts a fresh actor from the same factory after a backoff
(doubling per consecutive failure, reset once an actor has run for ``stable_s``) and moves
the messages still waiting in the dead actor's mailbox to the new one, so a crash loses at
most the message that caused it. Mailboxes are watched: past ``mailbox_limit`` a ``tell``
is refused and counted (a dropped frame is not acknowledged, so its sender resends it).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import pykka

from .clock import Clock

log = logging.getLogger(__name__)

RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 60.0
MAILBOX_LIMIT = 10_000

FailureReporter = Callable[[str, BaseException, int], None]
"""Called with (actor name, exception, consecutive failures) when an actor fails."""


def _drain(inbox: Any) -> list[Any]:
    """Take every plain ``tell`` waiting in a mailbox (asks are answered by pykka with ActorDeadError)."""
    kept: list[Any] = []
    others: list[Any] = []
    while True:
        try:
            envelope = cast("queue.Queue[Any]", inbox).get_nowait()
        except queue.Empty:
            break
        if envelope.reply_to is None and not isinstance(envelope.message, pykka.messages._ActorStop):
            kept.append(envelope.message)
        else:
            others.append(envelope)
    for envelope in others:  # pykka's teardown answers these
        inbox.put(envelope)
    return kept


def tell_if_alive(ref: pykka.ActorRef[Any], message: Any) -> bool:
    """Tell from a callback (timer, MQTT thread) that may outlive the actor; False if it is gone."""
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True


class SupervisedActor(pykka.ThreadingActor):
    """Base for every role actor: reports its failures to its supervisor."""

    def __init__(self, supervisor: Supervisor | None = None, name: str = "") -> None:
        super().__init__()
        self.supervisor = supervisor
        self.role_name = name or type(self).__name__

    def on_start(self) -> None:
        # pykka does not call on_failure when on_start raises: report it here so the role is restarted.
        try:
            self.start_role()
        except Exception as exc:
            if self.supervisor is not None:
                self.supervisor.actor_failed(self.role_name, exc, [])
            raise

    def start_role(self) -> None:
        """Open what the role needs (stores, connections); override instead of on_start."""

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.supervisor is not None and exception_value is not None:
            # Runs in the actor's thread before pykka's teardown discards the mailbox: take the
            # waiting messages now so the replacement actor gets them.
            self.supervisor.actor_failed(self.role_name, exception_value, _drain(self.actor_inbox))


@dataclass
class ChildStats:
    """Counters of one supervised actor, shown by stats."""

    failures: int = 0
    restarts: int = 0
    consecutive_failures: int = 0
    dropped: int = 0
    last_error: str = ""
    last_start_ms: int = 0


@dataclass
class _Child:
    factory: Callable[[Supervisor], pykka.ActorRef[Any]]
    ref: pykka.ActorRef[Any] | None
    stats: ChildStats


class Supervisor:
    """Starts named actors from factories and keeps them running."""

    def __init__(
        self,
        clock: Clock,
        *,
        restart_min_s: float = RESTART_MIN_S,
        restart_max_s: float = RESTART_MAX_S,
        stable_s: float = STABLE_S,
        mailbox_limit: int = MAILBOX_LIMIT,
        reporter: FailureReporter | None = None,
    ) -> None:
        self.clock = clock
        self.restart_min_s = restart_min_s
        self.restart_max_s = restart_max_s
        self.stable_s = stable_s
        self.mailbox_limit = mailbox_limit
        self.reporter = reporter
        self._children: dict[str, _Child] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def start(self, name: str, factory: Callable[[Supervisor], pykka.ActorRef[Any]]) -> pykka.ActorRef[Any]:
        """Start an actor under ``name``; ``factory(supervisor)`` must start and return it."""
        with self._lock:
            if name in self._children:
                raise ValueError(f"an actor named {name!r} is already supervised")
            # Registered before it starts: a failure inside on_start must find its entry.
            child = _Child(factory, None, ChildStats(last_start_ms=self.clock.now_ms()))
            self._children[name] = child
        ref = factory(self)
        with self._lock:
            if child.ref is None:
                child.ref = ref
        return ref

    def ref(self, name: str) -> pykka.ActorRef[Any] | None:
        child = self._children.get(name)
        return child.ref if child is not None else None

    def stats(self) -> dict[str, ChildStats]:
        return {name: child.stats for name, child in self._children.items()}

    def tell(self, name: str, message: Any) -> bool:
        """Hand a message to the named actor; False (and counted) when down or its mailbox is full."""
        child = self._children.get(name)
        ref = child.ref if child is not None else None
        if child is None or ref is None or not ref.is_alive():
            if child is not None:
                child.stats.dropped += 1
            return False
        if cast("queue.Queue[Any]", ref.actor_inbox).qsize() >= self.mailbox_limit:
            child.stats.dropped += 1
            return False
        ref.tell(message)
        return True

    def actor_failed(self, name: str, error: BaseException, waiting: list[Any] | None = None) -> None:
        """Called from the failing actor's thread; schedules its restart with the messages it left."""
        with self._lock:
            child = self._children.get(name)
            if child is None or self._stopping:
                return
            stats = child.stats
            now_ms = self.clock.now_ms()
            if now_ms - stats.last_start_ms >= self.stable_s * 1000:
                stats.consecutive_failures = 0
            stats.failures += 1
            stats.consecutive_failures += 1
            stats.last_error = f"{type(error).__name__}: {error}"
            delay = min(self.restart_max_s, self.restart_min_s * 2 ** (stats.consecutive_failures - 1))
            old = child.ref
        log.error("actor %s failed (%s); restarting in %.1f s", name, stats.last_error, delay)
        if self.reporter is not None:
            try:
                self.reporter(name, error, stats.consecutive_failures)
            except Exception:  # reporting must never stop the restart
                log.exception("failure reporter raised")
        left = waiting or []
        self.clock.call_later(delay, lambda: self._restart(name, old, left))

    def _restart(self, name: str, old: pykka.ActorRef[Any] | None, waiting: list[Any]) -> None:
        with self._lock:
            child = self._children.get(name)
            if child is None or self._stopping:
                return
            current = child.ref
            if current is not None and current is not old and current.is_alive():
                return  # already replaced
        new = child.factory(self)
        for message in waiting:
            new.tell(message)
        moved = len(waiting)
        with self._lock:
            child.ref = new
            child.stats.restarts += 1
            child.stats.last_start_ms = self.clock.now_ms()
        log.info("actor %s restarted (%d waiting messages moved)", name, moved)

    def stop_all(self, timeout_s: float = 10.0) -> None:
        """Stop every actor in reverse start order, letting each finish (and flush) first."""
        with self._lock:
            self._stopping = True
            children = list(self._children.items())
        for name, child in reversed(children):
            if child.ref is not None and child.ref.is_alive():
                try:
                    child.ref.stop(block=True, timeout=timeout_s)
                except pykka.Timeout:
                    log.error("actor %s did not stop within %.0f s", name, timeout_s)
