"""NetworkLoop: one epoll thread drives hundreds of MqttBridge clients against a real mosquitto.

paho's own loop uses select(), which cannot watch a file descriptor numbered 1024 or more. The
big test first occupies the low descriptor numbers, so every client socket lands above 1023:
if anything in the path used select(), those clients could not work.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from conftest import wait_for

from pymonitor.actors.runtime.limits import raise_open_file_limit
from pymonitor.broker import (
    BridgeOptions,
    BrokerAddress,
    MosquittoBroker,
    MqttBridge,
    NetworkLoop,
    parse_broker_url,
    topics,
)
from pymonitor.messages import NodeBirth, NodeDeath, decode, encode

pytestmark = pytest.mark.needs_mosquitto

CLIENTS = 400
SELECT_FD_LIMIT = 1024
FLEET = "netloop"


@dataclass
class Inbox:
    """What one bridge received, thread-safe."""

    frames: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.frames.append((topic, payload))

    def messages(self) -> list[object]:
        with self.lock:
            return [decode(p) for _, p in self.frames]


@dataclass
class Fleet:
    loop: NetworkLoop
    bridges: list[MqttBridge]
    inboxes: list[Inbox]

    def stop(self) -> None:
        for bridge in self.bridges:
            bridge.stop()
        self.loop.stop()


def start_bridges(
    address: BrokerAddress, count: int, prefix: str, *, subscribe: Callable[[int], list[str]] | None = None
) -> Fleet:
    loop = NetworkLoop(f"test-{prefix}")
    bridges, inboxes = [], []
    for n in range(count):
        inbox = Inbox()
        options = BridgeOptions(
            client_id=f"{prefix}-{n}",
            subscriptions=subscribe(n) if subscribe else [],
            clean_session=True,
            reconnect_min_s=0.2,
            reconnect_max_s=2.0,
            loop=loop,
        )
        bridge = MqttBridge(address, options, inbox)
        bridge.start()
        bridges.append(bridge)
        inboxes.append(inbox)
    return Fleet(loop, bridges, inboxes)


def all_connected(fleet: Fleet) -> Callable[[], bool]:
    return lambda: all(b.connected for b in fleet.bridges)


@pytest.fixture(scope="module")
def crowd(mosquitto: MosquittoBroker) -> Iterator[Fleet]:
    """CLIENTS bridges on one loop, their sockets numbered above select()'s limit."""
    raise_open_file_limit(CLIENTS + SELECT_FD_LIMIT)
    gc.collect()  # close what earlier tests left for the collector, so fewer low numbers free up later
    filler = []
    while True:  # occupy every free number below the limit, so the clients' sockets cannot use one
        fd = os.open(os.devnull, os.O_RDONLY)
        filler.append(fd)
        if fd >= SELECT_FD_LIMIT:
            break
    address = parse_broker_url(mosquitto.url)
    fleet = start_bridges(address, CLIENTS, "crowd", subscribe=lambda n: [topics.command(FLEET, f"node-{n}", "ping")])
    try:
        yield fleet
    finally:
        fleet.stop()
        for fd in filler:
            os.close(fd)


def test_one_loop_connects_hundreds_of_clients_above_the_select_fd_limit(crowd: Fleet) -> None:
    wait_for(all_connected(crowd), what=f"all {CLIENTS} clients to connect")
    numbers = [b._client.socket().fileno() for b in crowd.bridges]  # noqa: SLF001 - the socket is the point
    # A descriptor closed late by an earlier test's thread may hand a few clients a low number; select()
    # fails on any single one above the limit, so most of them being up there is the proof.
    assert sum(n >= SELECT_FD_LIMIT for n in numbers) >= CLIENTS * 9 // 10
    assert all(b.counters.connects == 1 for b in crowd.bridges)


def test_a_publish_from_another_thread_reaches_a_subscriber_on_the_loop(crowd: Fleet) -> None:
    wait_for(all_connected(crowd), what="the clients to connect")
    target = CLIENTS - 1
    wait_for(lambda: crowd.bridges[target].counters.connects >= 1, what="the subscriber")
    birth = NodeBirth(node="node-0", session=1, ts_ms=1, role="test", version="0")
    done = threading.Event()

    def publish() -> None:
        crowd.bridges[0].publish(topics.command(FLEET, f"node-{target}", "ping"), encode(birth))
        done.set()

    threading.Thread(target=publish, name="publisher").start()
    assert done.wait(20)
    wait_for(lambda: crowd.inboxes[target].messages() == [birth], what="the frame at the subscriber")
    assert all(not inbox.frames for inbox in crowd.inboxes[1:target])  # only the subscriber got it


def test_a_cut_makes_the_broker_publish_the_will(mosquitto: MosquittoBroker) -> None:
    address = parse_broker_url(mosquitto.url)
    loop = NetworkLoop("test-will")
    state = topics.state(FLEET, "doomed")
    watcher_inbox = Inbox()
    watcher = MqttBridge(
        address, BridgeOptions(client_id="will-watcher", subscriptions=[state], loop=loop), watcher_inbox
    )
    will = NodeDeath(node="doomed", session=77, reason="connection lost")
    birth = NodeBirth(node="doomed", session=77, ts_ms=1, role="gateway", version="0")
    doomed = MqttBridge(
        address,
        BridgeOptions(
            client_id="doomed", will=(state, encode(will)), birth=lambda _n: (state, encode(birth)), loop=loop
        ),
        lambda t, p: None,
    )
    try:
        watcher.start()
        assert watcher.wait_connected(20)
        doomed.start()
        assert doomed.wait_connected(20)
        wait_for(lambda: birth in watcher_inbox.messages(), what="the birth")
        doomed.cut()
        assert not doomed.connected
        deaths = wait_for(
            lambda: [m for m in watcher_inbox.messages() if isinstance(m, NodeDeath)],
            what="the Will on the state topic",
        )
        assert deaths == [will]
        assert deaths[0].reason == "connection lost"
    finally:
        doomed.stop()
        watcher.stop()
        loop.stop()


def test_clients_reconnect_by_themselves_after_a_broker_restart(fresh_mosquitto: MosquittoBroker) -> None:
    address = parse_broker_url(fresh_mosquitto.url)
    fleet = start_bridges(address, 30, "phoenix")
    try:
        wait_for(all_connected(fleet), what="the clients to connect")
        fresh_mosquitto.restart()
        wait_for(
            lambda: all(b.counters.connects >= 2 and b.connected for b in fleet.bridges),
            what="every client to reconnect after the restart",
        )
        assert all(b.counters.disconnects >= 1 for b in fleet.bridges)
    finally:
        fleet.stop()


def test_a_client_whose_network_step_raises_is_reconnected_and_the_loop_keeps_serving_others(
    broker_address: BrokerAddress,
) -> None:
    loop = NetworkLoop("test-guard")
    got: list[str] = []
    bad = MqttBridge(
        broker_address,
        BridgeOptions(client_id="guard-bad", subscriptions=["pm/v1/guard/#"], loop=loop),
        lambda t, p: got.append(t),
    )
    other = MqttBridge(broker_address, BridgeOptions(client_id="guard-other", loop=loop), lambda t, p: None)
    try:
        bad.start()
        other.start()
        wait_for(lambda: bad.connected and other.connected, what="both clients connected")
        real_read = bad._client.loop_read
        armed = [True]

        def read_once_broken(*args: object) -> object:
            if armed[0]:
                armed[0] = False
                raise RuntimeError("a bug in one client's network step")
            return real_read()

        bad._client.loop_read = read_once_broken  # type: ignore[method-assign]
        other.publish("pm/v1/guard/a", b"1")
        wait_for(lambda: loop.failures == 1, what="the failing step to be counted")

        def delivered() -> bool:
            other.publish("pm/v1/guard/b", b"2")
            return "pm/v1/guard/b" in got

        wait_for(delivered, what="frames again after the reconnect")
        assert bad.counters.connects >= 2
    finally:
        bad.stop()
        other.stop()
        loop.stop()

