"""Injected time: a real (optionally accelerated) clock and a simulated one.

Cores never read time themselves; they get ``now_ms`` from a clock. Timers call back on the
clock's own thread (real) or inside :meth:`SimClock.advance` (simulated), so a callback
should only hand work to an actor (``ref.tell(...)``), never do it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Timer:
    due: float
    order: int
    fn: Callable[[], object] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class TimerHandle(Protocol):
    """What ``call_later`` returns."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall time in ms since the Unix epoch (UTC) and timers in clock seconds."""

    def now_ms(self) -> int: ...

    def call_later(self, delay_s: float, fn: Callable[[], object]) -> TimerHandle: ...

    @property
    def speed(self) -> float: ...


class RealClock:
    """Real time, or real time sped up by ``speed`` from ``start_ms`` (an accelerated run).

    One daemon thread serves every timer of the clock.
    """

    def __init__(self, *, speed: float = 1.0, start_ms: int | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._t0 = time.monotonic()
        self._start_ms = start_ms if start_ms is not None else time.time_ns() // 1_000_000
        self._heap: list[_Timer] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        if self._speed == 1.0:
            return time.time_ns() // 1_000_000
        return self._start_ms + int((time.monotonic() - self._t0) * self._speed * 1000)

    def call_later(self, delay_s: float, fn: Callable[[], object]) -> TimerHandle:
        timer = _Timer(time.monotonic() + max(0.0, delay_s) / self._speed, next(self._order), fn)
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="clock-timers", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, timer)
            self._cv.notify()
        return timer

    def stop(self) -> None:
        """Stop the timer thread; pending timers never fire."""
        with self._cv:
            self._stopped = True
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0].due > time.monotonic()):
                    wait = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cv.wait(wait)
                if self._stopped:
                    return
                timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                try:
                    timer.fn()
                except Exception:  # a timer callback must not kill every other timer
                    log.exception("timer callback failed")


class SimClock:
    """Simulated time that moves only when :meth:`advance` is called: 90 days run in seconds."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now_ms = start_ms
        self._heap: list[_Timer] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return 0.0

    def now_ms(self) -> int:
        return self._now_ms

    def call_later(self, delay_s: float, fn: Callable[[], object]) -> TimerHandle:
        timer = _Timer(self._now_ms + round(max(0.0, delay_s) * 1000), next(self._order), fn)
        with self._lock:
            heapq.heappush(self._heap, timer)
        return timer

    def advance(self, ms: int) -> int:
        """Move time forward by ``ms``, firing due timers in order; returns how many fired."""
        if ms < 0:
            raise ValueError(f"simulated time cannot go backwards (advance by {ms} ms)")
        end = self._now_ms + ms
        fired = 0
        while True:
            with self._lock:
                if not self._heap or self._heap[0].due > end:
                    break
                timer = heapq.heappop(self._heap)
            self._now_ms = max(self._now_ms, int(timer.due))
            if not timer.cancelled:
                timer.fn()
                fired += 1
        self._now_ms = end
        return fired
