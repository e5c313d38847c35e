"""The impairment proxy with real sockets: an echo server, a sink, and mosquitto through paho.

No assertion on how long anything took: counters are read after a wait, and the schedules
themselves are checked exactly in test_link_traces.py.
"""

from __future__ import annotations

import hashlib
import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt
import pytest
from conftest import wait_for
from paho.mqtt.enums import CallbackAPIVersion

from pymonitor.actors.runtime import SimClock
from pymonitor.broker import BrokerAddress
from pymonitor.simulators.link import (
    DeliveryTrace,
    ImpairedLink,
    LinkError,
    LinkProfile,
    Outage,
    OutageSchedule,
)

NO_LIMIT = {"rate_bps_up": None, "rate_bps_down": None}


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass  # the link reset us: that is what some tests do


class _Sink(socketserver.BaseRequestHandler):
    """Reads to EOF, answers with the byte count and SHA-256 of what it got."""

    def handle(self) -> None:
        digest, total = hashlib.sha256(), 0
        try:
            while data := self.request.recv(65536):
                digest.update(data)
                total += len(data)
            self.request.sendall(f"{total} {digest.hexdigest()}".encode())
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 overflows with 50 connects at once (syncookies, then resets)


def _serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[tuple[str, int]]:
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address  # type: ignore[misc]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    yield from _serve(_Echo)


@pytest.fixture
def sink() -> Iterator[tuple[str, int]]:
    yield from _serve(_Sink)


def _recv_exactly(sock: socket.socket, nbytes: int) -> bytes:
    got = bytearray()
    while len(got) < nbytes:
        chunk = sock.recv(nbytes - len(got))
        if not chunk:
            raise ConnectionError(f"closed after {len(got)} of {nbytes} bytes")
        got += chunk
    return bytes(got)


def _echo_round_trip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        got = _recv_exactly(sock, len(payload))
        sender.join()
        return got


def test_bytes_cross_intact_both_ways_on_50_concurrent_connections(echo: tuple[str, int]) -> None:
    profile = LinkProfile(name="jittery", delay_ms=5, jitter_ms=4, **NO_LIMIT)  # type: ignore[arg-type]
    payloads = [os.urandom(64 * 1024) for _ in range(50)]
    with ImpairedLink(echo, profile=profile) as link, ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda p: _echo_round_trip(link.port, p), payloads))
        assert results == payloads
        total = 50 * 64 * 1024
        counters = wait_for(lambda: link.counters.bytes_down == total and link.counters, what="all bytes counted")
        assert counters.bytes_up == total
        assert counters.connections == 50


def test_a_trace_limited_link_carries_bytes_intact(echo: tuple[str, int]) -> None:
    fast = DeliveryTrace(tuple(range(1, 101)))  # 1500 bytes per ms: 12 Mbit/s
    payload = os.urandom(300_000)
    with ImpairedLink(echo, up_trace=fast, down_trace=fast) as link:
        assert _echo_round_trip(link.port, payload) == payload


def test_the_rate_limit_holds_bytes_back_then_delivers_them_in_order(sink: tuple[str, int]) -> None:
    profile = LinkProfile(name="10kB/s", rate_bps_up=80_000, rate_bps_down=None, delay_ms=0)
    payload = os.urandom(30_000)  # the schedule releases the last piece at 2.85 s
    with ImpairedLink(sink, profile=profile) as link, socket.create_connection(("127.0.0.1", link.port)) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        assert 0 < link.counters.bytes_up < len(payload)
        sock.settimeout(20)
        assert sock.recv(200).decode() == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"


def test_a_stalled_link_holds_data_and_delivers_it_when_back(echo: tuple[str, int]) -> None:
    with ImpairedLink(echo, outage_mode="stall") as link, socket.create_connection(("127.0.0.1", link.port)) as sock:
        sock.sendall(b"before")
        sock.settimeout(20)
        assert _recv_exactly(sock, 6) == b"before"
        link.set_offline(True)
        assert link.offline
        payload = os.urandom(10_000)
        sock.sendall(payload)
        late = socket.create_connection(("127.0.0.1", link.port))  # accepted by the kernel, held by the link
        late.sendall(b"late")
        time.sleep(0.3)
        assert link.counters.bytes_up == 6  # nothing crossed while down
        sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        link.set_offline(False)
        sock.settimeout(20)
        assert _recv_exactly(sock, len(payload)) == payload
        late.settimeout(20)
        assert _recv_exactly(late, 4) == b"late"
        late.close()
        assert link.counters.dropped == 0


class _Client:
    """A paho client through the link that records connects, disconnects and messages."""

    def __init__(self, address: BrokerAddress, client_id: str, subscribe: str | None = None) -> None:
        self.connects = self.disconnects = self.subscribed = 0
        self.messages: list[bytes] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: setattr(self, "disconnects", self.disconnects + 1)
        self.client.on_message = lambda c, u, msg: self.messages.append(bytes(msg.payload))
        self.client.on_subscribe = lambda *a: setattr(self, "subscribed", self.subscribed + 1)
        self._subscribe = subscribe
        self.client.connect_async(address.host, address.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if self._subscribe:
            client.subscribe(self._subscribe, qos=1)
        self.connects += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_crosses_the_link_both_ways(broker_address: BrokerAddress) -> None:
    profile = LinkProfile(name="slow", rate_bps_up=200_000, rate_bps_down=200_000, delay_ms=20, jitter_ms=10)
    with ImpairedLink(broker_address, profile=profile) as link:
        sub = _Client(link.address, "link-sub", subscribe="link/test/both")
        pub = _Client(link.address, "link-pub")
        try:
            wait_for(lambda: sub.subscribed and pub.connects, what="both clients connected through the link")
            payloads = [os.urandom(2000) for _ in range(10)]
            for payload in payloads:
                pub.client.publish("link/test/both", payload, qos=1)
            wait_for(lambda: len(sub.messages) == 10, what="10 messages through the link")
            assert sub.messages == payloads
        finally:
            sub.close()
            pub.close()


def test_a_drop_outage_disconnects_clients_and_they_reconnect_after(broker_address: BrokerAddress) -> None:
    with ImpairedLink(broker_address, outage_mode="drop") as link:
        sub = _Client(broker_address, "drop-sub", subscribe="link/test/drop")  # straight to the broker
        pub = _Client(link.address, "drop-pub")
        try:
            wait_for(lambda: sub.subscribed and pub.connects, what="both connected")
            link.set_offline(True)
            wait_for(lambda: pub.disconnects >= 1, what="the publisher to see the link drop")
            assert link.counters.dropped == 1
            with pytest.raises(ConnectionResetError):  # a new connection is reset while the link is down
                with socket.create_connection(("127.0.0.1", link.port), timeout=20) as probe:
                    probe.recv(1)  # (or already during connect, if the reset is that quick)
            assert link.counters.refused >= 1
            link.set_offline(False)
            wait_for(lambda: pub.connects >= 2, what="the publisher to reconnect")
            pub.client.publish("link/test/drop", b"after the outage", qos=1)
            wait_for(lambda: sub.messages == [b"after the outage"], what="a message after the outage")
        finally:
            sub.close()
            pub.close()


def test_an_outage_schedule_drives_the_link_on_a_simulated_clock(echo: tuple[str, int]) -> None:
    clock = SimClock(start_ms=0)
    with ImpairedLink(echo) as link:
        link.follow(OutageSchedule([Outage(10, 5), Outage(60, 30)]), clock)
        states = []
        for step_ms in (9_000, 2_000, 5_000, 50_000, 30_000):
            clock.advance(step_ms)
            states.append(link.offline)
        assert states == [False, True, False, True, False]


def test_the_link_address_keeps_tls_and_credentials_of_the_upstream() -> None:
    upstream = BrokerAddress("broker.example", 8883, tls=True, username="site", password="secret")
    with ImpairedLink(upstream) as link:
        assert link.address == BrokerAddress("127.0.0.1", link.port, tls=True, username="site", password="secret")
        assert link.port > 0


def test_misuse_is_refused_clearly(echo: tuple[str, int]) -> None:
    with pytest.raises(LinkError, match="outage_mode: expected 'stall' or 'drop', got 'cut'"):
        ImpairedLink(echo, outage_mode="cut")  # type: ignore[arg-type]
    link = ImpairedLink(echo)
    with pytest.raises(LinkError, match="not started"):
        link.set_offline(True)
    link.stop()  # stopping a link never started is harmless
