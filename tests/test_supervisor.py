"""Supervisor: restarts with backoff, failures counted and reported, bounded mailboxes.

Backoff is checked from the delays the supervisor asks its clock for (a recording wrapper
around a RealClock), never from how long anything took.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest
from conftest import wait_for

from pymonitor.actors.runtime.clock import RealClock, SimClock, TimerHandle
from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor, tell_if_alive

WAIT_S = 20.0


class Boom(RuntimeError):
    """What the test actor raises on 'boom'."""


@dataclass
class Probe:
    """Shared between the test and every incarnation of the test actor."""

    received: list[tuple[str, Any]] = field(default_factory=list)  # (actor urn, message)
    blocking: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, urn: str) -> list[Any]:
        with self.lock:
            return [m for u, m in self.received if u == urn]


class Worker(SupervisedActor):
    """Raises on 'boom'; parks on 'block' until released; records everything else."""

    def __init__(self, supervisor: Supervisor | None, name: str, probe: Probe) -> None:
        super().__init__(supervisor, name)
        self.probe = probe

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise Boom("boom on purpose")
        if message == "block":
            self.probe.threads.append(threading.current_thread())
            self.probe.blocking.set()
            self.probe.release.wait(WAIT_S)
            return None
        with self.probe.lock:
            self.probe.received.append((self.actor_urn, message))
        return None


def worker_factory(name: str, probe: Probe) -> Callable[[Supervisor], pykka.ActorRef[Any]]:
    return lambda sup: Worker.start(sup, name, probe)


class RecordingClock:
    """A RealClock that remembers every delay it was asked to wait."""

    def __init__(self) -> None:
        self.inner = RealClock()
        self.delays: list[float] = []

    @property
    def speed(self) -> float:
        return self.inner.speed

    def now_ms(self) -> int:
        return self.inner.now_ms()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> TimerHandle:
        self.delays.append(delay_s)
        return self.inner.call_later(delay_s, fn)


@dataclass
class Reports:
    calls: list[tuple[str, BaseException, int]] = field(default_factory=list)

    def __call__(self, name: str, error: BaseException, consecutive: int) -> None:
        self.calls.append((name, error, consecutive))


@pytest.fixture
def clock() -> Iterator[RecordingClock]:
    c = RecordingClock()
    yield c
    c.inner.stop()


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    """Supervisors created by a test; all their actors are stopped afterwards."""
    made: list[Supervisor] = []
    yield made
    for sup in made:
        sup.stop_all(timeout_s=5)


def make_supervisor(supervisors: list[Supervisor], clock: Any, reports: Reports | None = None, **kw: Any) -> Supervisor:
    sup = Supervisor(clock, reporter=reports, **kw)
    supervisors.append(sup)
    return sup


def restarted(sup: Supervisor, name: str, old: pykka.ActorRef[Any] | None) -> Callable[[], bool]:
    def check() -> bool:
        ref = sup.ref(name)
        return ref is not None and ref is not old and ref.is_alive()

    return check


# ---------------------------------------------------------------- restart, report, backoff


def test_an_actor_that_raises_is_restarted_and_its_failure_reported(
    clock: RecordingClock, reports: Reports, supervisors: list[Supervisor]
) -> None:
    probe = Probe()
    sup = make_supervisor(supervisors, clock, reports, restart_min_s=0.01)
    first = sup.start("worker", worker_factory("worker", probe))
    assert sup.tell("worker", "boom")
    wait_for(restarted(sup, "worker", first), what="the restart")

    assert not first.is_alive()
    stats = sup.stats()["worker"]
    assert (stats.failures, stats.restarts, stats.consecutive_failures) == (1, 1, 1)
    assert stats.last_error == "Boom: boom on purpose"
    assert len(reports.calls) == 1
    name, error, consecutive = reports.calls[0]
    assert (name, consecutive) == ("worker", 1)
    assert isinstance(error, Boom)
    assert str(error) == "boom on purpose"

    second = sup.ref("worker")
    assert second is not None
    assert sup.tell("worker", "hello")
    wait_for(lambda: probe.of(second.actor_urn) == ["hello"], what="the new actor to take messages")


def test_backoff_doubles_for_consecutive_failures_up_to_the_maximum(
    clock: RecordingClock, reports: Reports, supervisors: list[Supervisor]
) -> None:
    sup = make_supervisor(supervisors, clock, reports, restart_min_s=0.01, restart_max_s=0.04)
    ref = sup.start("worker", worker_factory("worker", Probe()))
    for n in range(1, 5):
        assert sup.tell("worker", "boom")
        wait_for(restarted(sup, "worker", ref), what=f"restart {n}")
        ref = sup.ref("worker")
    assert [c for _, _, c in reports.calls] == [1, 2, 3, 4]
    assert clock.delays == pytest.approx([0.01, 0.02, 0.04, 0.04])
    stats = sup.stats()["worker"]
    assert (stats.failures, stats.restarts, stats.consecutive_failures) == (4, 4, 4)


def test_backoff_starts_over_after_an_actor_ran_stable(
    clock: RecordingClock, reports: Reports, supervisors: list[Supervisor]
) -> None:
    sup = make_supervisor(supervisors, clock, reports, restart_min_s=0.01, stable_s=0.0)  # every run counts as stable
    ref = sup.start("worker", worker_factory("worker", Probe()))
    for n in range(3):
        assert sup.tell("worker", "boom")
        wait_for(restarted(sup, "worker", ref), what=f"restart {n}")
        ref = sup.ref("worker")
    assert [c for _, _, c in reports.calls] == [1, 1, 1]
    assert clock.delays == pytest.approx([0.01, 0.01, 0.01])
    assert sup.stats()["worker"].failures == 3


def test_a_reporter_that_raises_does_not_stop_the_restart(clock: RecordingClock, supervisors: list[Supervisor]) -> None:
    def broken_reporter(name: str, error: BaseException, consecutive: int) -> None:
        raise ValueError("reporter down")

    sup = Supervisor(clock, restart_min_s=0.01, reporter=broken_reporter)
    supervisors.append(sup)
    first = sup.start("worker", worker_factory("worker", Probe()))
    sup.tell("worker", "boom")
    wait_for(restarted(sup, "worker", first), what="the restart")
    assert sup.stats()["worker"].restarts == 1


def test_messages_waiting_in_a_failed_actors_mailbox_go_to_its_successor(supervisors: list[Supervisor]) -> None:
    # A SimClock makes the restart happen exactly when the test says: after the dead actor's thread ended,
    # as it always has with the default 0.5 s backoff.
    clock = SimClock()
    probe = Probe()
    sup = make_supervisor(supervisors, clock, restart_min_s=0.01)
    first = sup.start("worker", worker_factory("worker", probe))
    assert sup.tell("worker", "block")
    assert probe.blocking.wait(WAIT_S)
    for message in ("boom", "a", "b", "c"):
        assert sup.tell("worker", message)
    probe.release.set()
    wait_for(lambda: sup.stats()["worker"].failures == 1, what="the failure")
    probe.threads[0].join(WAIT_S)
    clock.advance(1_000)
    second = sup.ref("worker")
    assert second is not None and second is not first
    second.ask("sync", timeout=WAIT_S)  # whatever was moved was told before this, so it is handled first
    assert probe.of(second.actor_urn) == ["a", "b", "c", "sync"]


# ---------------------------------------------------------------- mailboxes and telling


def test_a_full_mailbox_refuses_and_counts_what_it_drops(clock: RecordingClock, supervisors: list[Supervisor]) -> None:
    probe = Probe()
    sup = make_supervisor(supervisors, clock, mailbox_limit=2)
    ref = sup.start("worker", worker_factory("worker", probe))
    assert sup.tell("worker", "block")
    assert probe.blocking.wait(WAIT_S)  # the actor is busy; what follows waits in its mailbox
    assert sup.tell("worker", 1)
    assert sup.tell("worker", 2)
    assert not sup.tell("worker", 3)
    assert not sup.tell("worker", 4)
    assert sup.stats()["worker"].dropped == 2
    probe.release.set()
    wait_for(lambda: probe.of(ref.actor_urn) == [1, 2], what="the accepted messages")
    assert sup.tell("worker", 5)  # room again once the mailbox drained
    wait_for(lambda: probe.of(ref.actor_urn) == [1, 2, 5], what="the later message")


def test_telling_an_unknown_name_returns_false(clock: RecordingClock, supervisors: list[Supervisor]) -> None:
    sup = make_supervisor(supervisors, clock)
    assert sup.tell("nobody", "hello") is False
    assert sup.ref("nobody") is None
    assert sup.stats() == {}


def test_telling_an_actor_that_is_down_is_refused_and_counted(
    clock: RecordingClock, supervisors: list[Supervisor]
) -> None:
    sup = make_supervisor(supervisors, clock, restart_min_s=30.0)  # stays down for the whole test
    sup.start("worker", worker_factory("worker", Probe()))
    sup.tell("worker", "boom")
    wait_for(lambda: sup.stats()["worker"].failures == 1, what="the failure")
    wait_for(lambda: not sup.ref("worker").is_alive(), what="the actor to be down")  # type: ignore[union-attr]
    assert sup.tell("worker", "lost") is False
    assert sup.stats()["worker"].dropped == 1


def test_a_name_is_supervised_only_once(clock: RecordingClock, supervisors: list[Supervisor]) -> None:
    sup = make_supervisor(supervisors, clock)
    sup.start("worker", worker_factory("worker", Probe()))
    with pytest.raises(ValueError, match="already supervised"):
        sup.start("worker", worker_factory("worker", Probe()))


def test_stop_all_stops_every_actor_and_prevents_restarts(clock: RecordingClock, supervisors: list[Supervisor]) -> None:
    probe = Probe()
    sup = make_supervisor(supervisors, clock, restart_min_s=0.01)
    refs = [sup.start(f"w{n}", worker_factory(f"w{n}", probe)) for n in range(3)]
    sup.stop_all()
    assert not any(ref.is_alive() for ref in refs)
    assert all(sup.tell(f"w{n}", "x") is False for n in range(3))
    sup.actor_failed("w0", RuntimeError("late failure"))  # a failure reported while stopping restarts nothing
    assert sup.stats()["w0"].failures == 0
    assert clock.delays == []


def test_tell_if_alive_says_false_for_a_stopped_actor() -> None:
    probe = Probe()
    ref = Worker.start(None, "lonely", probe)
    assert tell_if_alive(ref, "first") is True
    wait_for(lambda: probe.of(ref.actor_urn) == ["first"], what="the message")
    ref.stop()
    assert tell_if_alive(ref, "second") is False


def test_an_actor_whose_start_fails_is_reported_and_restarted() -> None:
    from pymonitor.actors.runtime.clock import RealClock
    from pymonitor.actors.runtime.supervisor import SupervisedActor, Supervisor

    attempts: list[int] = []
    reported: list[str] = []

    class FlakyStart(SupervisedActor):
        def start_role(self) -> None:
            attempts.append(1)
            if len(attempts) == 1:
                raise OSError("store file locked")

        def on_receive(self, message: object) -> object:
            return message

    clock = RealClock()
    sup = Supervisor(clock, restart_min_s=0.01, reporter=lambda name, exc, n: reported.append(f"{name}: {exc}"))
    try:
        sup.start("flaky", lambda s: FlakyStart.start(s, "flaky"))
        wait_for(lambda: sup.stats()["flaky"].restarts == 1, what="a restart after the failed start")
        ref = sup.ref("flaky")
        assert ref is not None and ref.ask("ping", timeout=10) == "ping"
        assert reported == ["flaky: store file locked"]
        assert sup.stats()["flaky"].failures == 1
    finally:
        sup.stop_all()
        clock.stop()
