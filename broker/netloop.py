"""One network thread for many paho clients (epoll via ``selectors``).

paho's own ``loop_start`` costs a thread per client and uses ``select()``, which cannot watch
file descriptors past 1023: a process stops at about 340 clients. A simulator hosting
hundreds of gateways, each with its own MQTT session, drives them all from this loop instead.
The loop also owns reconnection: exponential backoff with full jitter per client.
"""

from __future__ import annotations

import contextlib
import logging
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

MISC_INTERVAL_S = 1.0
"""How often keepalive pings are looked at."""
SELECT_TIMEOUT_S = 0.1
CONNECTS_PER_PASS = 10
"""New connections per loop pass (about 100/s): hundreds of clients coming back after a broker
restart arrive as a stream, not a thundering herd the broker must absorb at once."""


@dataclass
class _Entry:
    client: mqtt.Client
    host: str
    port: int
    keepalive_s: int
    backoff_min_s: float
    backoff_max_s: float
    attempts: int = 0
    reconnect_at: float | None = 0.0  # None: do not connect (stopped)
    sock: Any = None
    on_lost: Callable[[], None] | None = field(default=None)


class NetworkLoop:
    """Drives the sockets of many paho clients from one daemon thread."""

    def __init__(self, name: str = "mqtt-netloop") -> None:
        self._sel = selectors.DefaultSelector()
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()
        self._calls: list[Callable[[], None]] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopped = False
        self.failures = 0  # client steps that raised (each one dropped and reconnected its client)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # called from any thread

    def add(self, client: mqtt.Client, host: str, port: int, keepalive_s: int, backoff: tuple[float, float]) -> None:
        """Take over a client's socket; the loop connects it (and reconnects it when lost)."""
        entry = _Entry(client, host, port, keepalive_s, backoff[0], backoff[1])
        client.on_socket_open = lambda c, u, s: self._opened(entry, s)
        client.on_socket_close = lambda c, u, s: self._closed(entry, s)
        client.on_socket_register_write = lambda c, u, s: self._want_write(entry)
        client.on_socket_unregister_write = lambda c, u, s: self._no_write(entry)
        with self._lock:
            self._entries[id(client)] = entry
        self._wake()

    def remove(self, client: mqtt.Client, *, disconnect: bool = True) -> None:
        """Stop driving a client; with ``disconnect`` it sends DISCONNECT first (no Will)."""
        done = threading.Event()

        def call() -> None:
            entry = self._entries.pop(id(client), None)
            if entry is not None:
                entry.reconnect_at = None
                sock = entry.sock
                if disconnect and sock is not None:
                    client.disconnect()
                    client.loop_write()
                self._drop_socket(entry)
                if sock is not None and not disconnect:
                    sock.close()  # a hard cut: no DISCONNECT, so the broker publishes the Will
            done.set()

        self.call_soon(call)
        if threading.current_thread() is not self._thread:
            done.wait(5)

    def call_soon(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._calls.append(fn)
        self._wake()

    def stop(self) -> None:
        self._stopped = True
        self._wake()
        self._thread.join(5)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"x")

    # paho socket callbacks (want_write may come from any thread)

    def _opened(self, entry: _Entry, sock: Any) -> None:
        entry.sock = sock
        self._sel.register(sock, selectors.EVENT_READ, entry)

    def _closed(self, entry: _Entry, sock: Any) -> None:
        self._drop_socket(entry)
        if entry.reconnect_at is not None and not self._stopped:
            self._schedule_reconnect(entry)

    def _want_write(self, entry: _Entry) -> None:
        self._wake()  # the loop asks paho (want_write) on its next pass

    def _no_write(self, entry: _Entry) -> None:
        if entry.sock is not None and threading.current_thread() is self._thread:
            self._sel.modify(entry.sock, selectors.EVENT_READ, entry)

    # the loop

    def _drop_socket(self, entry: _Entry) -> None:
        if entry.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(entry.sock)
            entry.sock = None

    def _schedule_reconnect(self, entry: _Entry) -> None:
        delay = min(entry.backoff_max_s, entry.backoff_min_s * 2**entry.attempts)
        entry.reconnect_at = time.monotonic() + random.uniform(0, delay)
        entry.attempts += 1

    def _connect(self, entry: _Entry) -> None:
        try:
            if entry.attempts == 0 and entry.sock is None and not entry.client.is_connected():
                entry.client.connect(entry.host, entry.port, keepalive=entry.keepalive_s)
            else:
                entry.client.reconnect()
            entry.reconnect_at = -1.0  # connected (or connecting): no timer
            entry.attempts = max(entry.attempts, 1)
        except (OSError, ValueError) as exc:
            log.debug("connect to %s:%d failed: %s", entry.host, entry.port, exc)
            self._schedule_reconnect(entry)

    def _guard(self, entry: _Entry, step: Callable[[], object]) -> None:
        """Run one client's network step; a failure drops that connection, never the loop."""
        try:
            step()
        except Exception:
            self.failures += 1
            log.exception("network step failed for %s:%d; reconnecting that client", entry.host, entry.port)
            sock = entry.sock
            self._drop_socket(entry)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
            if entry.reconnect_at is not None:
                self._schedule_reconnect(entry)

    def _run(self) -> None:
        next_misc = 0.0
        while not self._stopped:
            for key, mask in self._sel.select(timeout=SELECT_TIMEOUT_S):
                entry = key.data
                if entry is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                if mask & selectors.EVENT_READ and entry.sock is not None:
                    self._guard(entry, entry.client.loop_read)
                if mask & selectors.EVENT_WRITE and entry.sock is not None:
                    self._guard(entry, entry.client.loop_write)
            with self._lock:
                calls, self._calls = self._calls, []
                entries = list(self._entries.values())
            for fn in calls:
                fn()
            for entry in entries:
                # Ask paho itself: a flag of our own could be cleared by one thread while another
                # queues a packet, leaving that packet unsent.
                if entry.sock is not None and entry.client.want_write():
                    self._guard(entry, entry.client.loop_write)
                    if entry.sock is not None and entry.client.want_write():
                        self._sel.modify(entry.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, entry)
            now = time.monotonic()
            budget = CONNECTS_PER_PASS
            for entry in entries:
                if entry.sock is None and entry.reconnect_at is not None and 0 <= entry.reconnect_at <= now:
                    if budget == 0:
                        break
                    budget -= 1
                    self._connect(entry)
            if now >= next_misc:
                next_misc = now + MISC_INTERVAL_S
                for entry in entries:
                    if entry.sock is not None:
                        self._guard(entry, entry.client.loop_misc)
                        if entry.client.is_connected():
                            entry.attempts = 0
                    elif entry.reconnect_at == -1.0:
                        self._schedule_reconnect(entry)
