"""A userspace TCP proxy that makes a loopback connection behave like a bad remote link.

Delay, jitter, a rate (fixed or a recorded trace) and outages are applied per direction by
one asyncio loop on a background thread, so 50 connections cost 4 tasks each, not threads.
Packet loss cannot be shown to TCP from userspace (the kernel retransmits before we see
anything); its *effect* is emulated as a retransmission timeout added to a packet with
probability ``loss``. Real loss, seen by the kernel's TCP, is the job of :mod:`.netns`.

Time on the link stops while it is offline: bytes in flight when a stall begins arrive the
remaining part of their delay after it ends, and a trace resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import socket
import struct
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Literal, Self

from pymonitor.broker.url import BrokerAddress

from .profiles import Cancellable, LinkError, LinkProfile, OutageSchedule, TimerClock
from .traces import DeliveryTrace, LinkDirection, direction_for

OutageMode = Literal["stall", "drop"]
CHUNK_BYTES = 64 * 1024
BUFFER_BYTES = 256 * 1024  # per direction and connection; past it the sender's socket fills up
START_TIMEOUT_S = 10.0
_Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True, slots=True)
class LinkCounters:
    """What crossed the link. ``bytes_*`` count bytes delivered to the far side."""

    bytes_up: int = 0
    bytes_down: int = 0
    connections: int = 0  # forwarded to the upstream
    active: int = 0
    dropped: int = 0  # open connections cut by a "drop" outage
    refused: int = 0  # reset while the link was down ("drop"), or the upstream refused
    retransmits: int = 0  # emulated packet losses (each added one retransmission timeout)


@dataclass
class _Pipe:
    """One direction of one connection: pieces waiting for their arrival time, in order."""

    items: deque[tuple[float, bytes]] = field(default_factory=deque)
    pending_bytes: int = 0
    last_arrival_s: float = 0.0
    eof: bool = False
    has_data: asyncio.Event = field(default_factory=asyncio.Event)
    has_room: asyncio.Event = field(default_factory=asyncio.Event)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a dead link looks to a peer that finally notices."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed by the peer: nothing left to reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class ImpairedLink:
    """Listens on ``127.0.0.1:<port>`` and forwards to ``upstream`` through an impaired link."""

    def __init__(
        self,
        upstream: BrokerAddress | tuple[str, int],
        *,
        profile: LinkProfile | None = None,
        up_trace: DeliveryTrace | None = None,
        down_trace: DeliveryTrace | None = None,
        outage_mode: OutageMode = "stall",
        seed: int = 0,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        buffer_bytes: int = BUFFER_BYTES,
    ) -> None:
        if outage_mode not in ("stall", "drop"):
            raise LinkError(f"outage_mode: expected 'stall' or 'drop', got {outage_mode!r}")
        self.upstream = upstream if isinstance(upstream, BrokerAddress) else BrokerAddress(*upstream)
        self.profile, self.outage_mode, self.buffer_bytes = profile, outage_mode, buffer_bytes
        rng = random.Random(seed)
        self.up = direction_for(profile, "up", up_trace, rng)
        self.down = direction_for(profile, "down", down_trace, rng)
        self._listen = (listen_host, listen_port)
        self._counts: dict[str, int] = asdict(LinkCounters())
        self._conns: dict[object, tuple[list[asyncio.StreamWriter], list[asyncio.Task[None]]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False
        self._mode_now = outage_mode  # the mode of the outage in progress
        self._online = asyncio.Event()
        self._t0 = self._offline_since = self._offline_total = 0.0
        self.port = 0

    # --- control, from any thread; everything below ``follow`` runs inside the loop ---------------

    def start(self) -> Self:
        if self._loop is not None:
            raise LinkError("the link is already started")
        self._online, self._closing, self._offline_total = asyncio.Event(), False, 0.0
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="impaired-link", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(START_TIMEOUT_S)
        return self

    def stop(self) -> None:
        """Close the listener and every connection (with a reset) and end the thread."""
        loop, self._loop = self._loop, None
        if loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(START_TIMEOUT_S)
        loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> BrokerAddress:
        """The upstream's address (TLS flag, credentials) with the proxy's host and port."""
        return replace(self.upstream, host=self._listen[0], port=self.port)

    @property
    def offline(self) -> bool:
        return not self._online.is_set()

    @property
    def counters(self) -> LinkCounters:
        return LinkCounters(**{**self._counts, "retransmits": self.up.retransmits + self.down.retransmits})

    def set_offline(self, offline: bool, mode: OutageMode | None = None) -> None:
        """Take the link down or bring it back; "drop" also resets every open connection now."""
        if self._loop is None:
            raise LinkError("the link is not started")
        change = self._go_offline(mode or self.outage_mode) if offline else self._go_online()
        asyncio.run_coroutine_threadsafe(change, self._loop).result(START_TIMEOUT_S)

    def follow(self, schedule: OutageSchedule, clock: TimerClock, mode: OutageMode | None = None) -> list[Cancellable]:
        """Apply an outage schedule on ``clock``, its time 0 being now; cancel the handles to stop."""
        return [
            clock.call_later(t_s, functools.partial(self.set_offline, offline, mode))
            for t_s, offline in schedule.transitions()
        ]

    def _link_time(self) -> float:
        """Seconds of link time since start; it stands still while the link is down."""
        wall = asyncio.get_running_loop().time() if self._online.is_set() else self._offline_since
        return wall - self._t0 - self._offline_total

    async def _serve(self) -> None:
        self._online.set()
        self._t0 = asyncio.get_running_loop().time()
        self._server = await asyncio.start_server(self._on_client, *self._listen, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)  # a connection accepted just now: its handler runs, sees _closing, resets
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _go_offline(self, mode: OutageMode) -> None:
        self._mode_now = mode
        if self._online.is_set():
            self._offline_since = asyncio.get_running_loop().time()
            self._online.clear()
        if mode == "drop":
            for writers, tasks in list(self._conns.values()):
                self._counts["dropped"] += 1
                for writer in writers:
                    _reset(writer)
                for task in tasks:
                    task.cancel()

    async def _go_online(self) -> None:
        if not self._online.is_set():
            self._offline_total += asyncio.get_running_loop().time() - self._offline_since
            self._online.set()

    async def _on_client(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._closing or (self.offline and self._mode_now == "drop"):
            self._counts["refused"] += 1
            _reset(client_w)
            return
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        forwarded = False
        try:
            await self._online.wait()  # "stall": a connection made during an outage waits for the link
            upstream = await asyncio.open_connection(self.upstream.host, self.upstream.port)
            forwarded = True
            await self._forward((client_r, client_w), upstream)
        except OSError:
            self._counts["refused"] += 1  # the upstream is down: tell the client the same way
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio 3.11 logs a handler task that ends cancelled)
        finally:
            self._handlers.discard(handler)
            if not forwarded:
                _reset(client_w)

    async def _forward(self, client: _Streams, upstream: _Streams) -> None:
        (client_r, client_w), (up_r, up_w) = client, upstream
        up_pipe, down_pipe = _Pipe(), _Pipe()
        tasks = [
            asyncio.create_task(self._carry(client_r, up_pipe, self.up)),
            asyncio.create_task(self._deliver(up_pipe, up_w, "bytes_up")),
            asyncio.create_task(self._carry(up_r, down_pipe, self.down)),
            asyncio.create_task(self._deliver(down_pipe, client_w, "bytes_down")),
        ]
        key = object()
        self._conns[key] = ([client_w, up_w], tasks)
        self._counts["connections"] += 1
        self._counts["active"] += 1
        clean = False
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            # a cancelled task is a dropped connection (already reset); an exception is a reset peer
            clean = all(not t.cancelled() and t.exception() is None for t in done) and len(done) == len(tasks)
        finally:
            del self._conns[key]
            self._counts["active"] -= 1
            for task in tasks:
                task.cancel()
            for writer in (client_w, up_w):  # before any await: stop() may cancel us again
                if clean:
                    writer.close()
                else:
                    _reset(writer)  # one side reset or cut: the other side learns it the same way
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _carry(self, reader: asyncio.StreamReader, pipe: _Pipe, direction: LinkDirection) -> None:
        """Read from one socket and queue the bytes with their arrival times."""
        while True:
            await self._online.wait()  # a stalled link leaves the bytes in the sender's socket
            data = await reader.read(CHUNK_BYTES)
            if not data:
                pipe.eof = True
                pipe.has_data.set()
                return
            offset = 0
            for arrival_s, size in direction.plan(self._link_time(), len(data), pipe.last_arrival_s):
                pipe.items.append((arrival_s, data[offset : offset + size]))
                pipe.last_arrival_s, offset = arrival_s, offset + size
            pipe.pending_bytes += len(data)
            pipe.has_data.set()
            while pipe.pending_bytes > self.buffer_bytes:
                pipe.has_room.clear()
                await pipe.has_room.wait()

    async def _deliver(self, pipe: _Pipe, writer: asyncio.StreamWriter, counter: str) -> None:
        """Write queued bytes to the other socket once the link time reaches their arrival."""
        while True:
            while not pipe.items:
                if pipe.eof:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                pipe.has_data.clear()
                await pipe.has_data.wait()
            await self._until(pipe.items[0][0])
            now, batch = self._link_time(), []
            while pipe.items and pipe.items[0][0] <= now:
                batch.append(pipe.items.popleft()[1])
            data = b"".join(batch)
            pipe.pending_bytes -= len(data)
            pipe.has_room.set()
            writer.write(data)
            self._counts[counter] += len(data)  # counted once handed to the far socket
            await writer.drain()

    async def _until(self, link_time_s: float) -> None:
        while (lag := link_time_s - self._link_time()) > 0 or self.offline:  # an outage can start meanwhile
            await (self._online.wait() if self.offline else asyncio.sleep(lag))
