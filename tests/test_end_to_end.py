"""A hub and a simulated fleet over a real mosquitto: every reading accounted for from the database.

Scenarios: a plain run, a gateway link cut and restored, QoS 1 redelivery of one frame, bad
input over MQTT, a broker restart mid-stream, and the packaged demo on the embedded broker.
All waiting is polling with a deadline; nothing asserts how long it took.
"""

from __future__ import annotations

import contextlib
import math
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as mqtt
import pytest
from conftest import wait_for
from paho.mqtt.enums import CallbackAPIVersion

from pymonitor.actors.hub import HubRole
from pymonitor.actors.runtime.clock import RealClock
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BrokerAddress, MosquittoBroker, parse_broker_url, topics
from pymonitor.broker.embedded import free_port
from pymonitor.messages import MAX_FRAME_BYTES, DeadLetter, DeliveryAck, ReadingBatch, decode, encode
from pymonitor.simulators.fleet import FleetSimulator
from pymonitor.store import HubStore

pytestmark = pytest.mark.needs_mosquitto

WAIT_S = 20.0
DRAIN_S = 30.0


# ---------------------------------------------------------------- helpers


@dataclass
class Node:
    """A hub, optionally a fleet, one clock and one supervisor: what a test runs."""

    fleet_name: str
    db_path: Path
    address: BrokerAddress
    clock: RealClock
    supervisor: Supervisor
    hub: HubRole
    fleet: FleetSimulator | None = None

    def start_fleet(self, *, devices: int, gateways: int, interval_s: float = 0.5) -> FleetSimulator:
        self.fleet = FleetSimulator(
            fleet=self.fleet_name,
            devices=devices,
            gateways=gateways,
            address=self.address,
            clock=self.clock,
            supervisor=self.supervisor,
            interval_s=interval_s,
            ack_timeout_s=2.0,  # a lost ack costs a resend after 2 s, not 10
        ).start()
        return self.fleet

    def hub_counters(self) -> dict[str, int]:
        counters: dict[str, int] = self.hub.stats()["counters"]
        return counters

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the hub's database while the hub runs (WAL: readers never block the writer).

        Before the hub actor has created its schema there is nothing to read: an empty answer.
        """
        try:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        except sqlite3.OperationalError:
            return []
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.hub.stop()
        self.supervisor.stop_all()
        self.clock.stop()


@contextlib.contextmanager
def running_hub(address: BrokerAddress, tmp_path: Path, fleet: str) -> Iterator[Node]:
    clock = RealClock()
    supervisor = Supervisor(clock, restart_min_s=0.05)
    db_path = tmp_path / "hub.db"
    hub = HubRole(fleet=fleet, node="hub", db_path=db_path, address=address, clock=clock, supervisor=supervisor)
    node = Node(fleet, db_path, address, clock, supervisor, hub)
    hub.start()
    try:
        assert hub.bridge.wait_connected(WAIT_S), "the hub did not connect"
        yield node
    finally:
        node.stop()


def accounting(db_path: Path) -> dict[str, int]:
    store = HubStore(db_path)
    try:
        return store.reading_accounting()
    finally:
        store.close()


def drain(node: Node) -> None:
    """Stop sampling and wait until every frame of every gateway was acknowledged."""
    assert node.fleet is not None
    fleet = node.fleet
    fleet.stop_sampling()
    wait_for(lambda: fleet.pending_frames() == 0, timeout_s=DRAIN_S, what="every frame to be acknowledged")


class RawClient:
    """A bare paho client (no PyMonitor policy) that records what it receives."""

    def __init__(self, address: BrokerAddress, client_id: str, subscriptions: tuple[str, ...] = ()) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()
        self._pending_subs = len(subscriptions)
        self._connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, bytes(m.payload)))
        self.subscriptions = subscriptions
        self.client.connect(address.host, address.port, keepalive=30)
        self.client.loop_start()
        assert self._connected.wait(WAIT_S), "raw client did not connect"
        if subscriptions:
            assert self._subscribed.wait(WAIT_S), "raw client was not subscribed"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        self._pending_subs -= 1
        if self._pending_subs <= 0:
            self._subscribed.set()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(WAIT_S)

    def take(self, count: int, decode_as: type, *, what: str) -> list[Any]:
        """The next ``count`` received messages of one class (others are skipped)."""
        out: list[Any] = []

        def more() -> bool:
            with contextlib.suppress(queue.Empty):
                while True:
                    _, payload = self.received.get_nowait()
                    msg = decode(payload)
                    if isinstance(msg, decode_as):
                        out.append(msg)
            return len(out) >= count

        wait_for(more, what=what)
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def raw_clients() -> Iterator[Callable[..., RawClient]]:
    made: list[RawClient] = []

    def make(address: BrokerAddress, client_id: str, *subscriptions: str) -> RawClient:
        client = RawClient(address, client_id, subscriptions)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def batch(node: str, seq: int, session: int = 42, rows: int = 3) -> ReadingBatch:
    return ReadingBatch.build(
        node=node,
        session=session,
        seq=seq,
        devices=[f"{node}-dev-{i}" for i in range(rows)],
        metrics=["temp", "volt"],
        device_index=list(range(rows)),
        device_seq=[seq % 2**32] * rows,
        ts_ms=[1_767_225_600_000 + seq % 2**32] * rows,
        values=[[20.5] * rows, [3.3] * (rows - 1) + [math.nan]],
    )


# ---------------------------------------------------------------- a fleet, end to end


def test_a_fleet_run_stores_every_generated_reading_exactly_once(broker_address: BrokerAddress, tmp_path: Path) -> None:
    with running_hub(broker_address, tmp_path, "e2e-plain") as node:
        fleet = node.start_fleet(devices=200, gateways=4)
        wait_for(lambda: fleet.generated() >= 3_000, what="the fleet to generate readings")
        drain(node)
        generated = fleet.generated()
        counters = node.hub_counters()
    assert generated > 0
    assert accounting(node.db_path) == {"rows": generated, "duplicates": 0, "distinct": generated}
    assert counters["readings"] == generated
    assert counters["dead_letters"] == 0
    assert fleet.totals()["evicted_readings"] == 0


def test_a_cut_link_loses_nothing_and_the_hub_sees_the_will_and_the_rebirth(
    broker_address: BrokerAddress, tmp_path: Path
) -> None:
    with running_hub(broker_address, tmp_path, "e2e-cut") as node:
        fleet = node.start_fleet(devices=200, gateways=4)
        cut = fleet.gateways[0]
        cut_settings = fleet.settings[0]
        ref = node.supervisor.ref(cut)
        assert ref is not None
        session = ref.proxy().session.get(timeout=WAIT_S)
        wait_for(lambda: node.query("SELECT online FROM nodes WHERE name = ?", cut) == [(1,)], what="the birth")

        fleet.set_link(cut, False)
        wait_for(
            lambda: (
                node.query("SELECT online, last_death_reason, session FROM nodes WHERE name = ?", cut)
                == [(0, "connection lost", session)]
            ),
            what="the hub to record the Will",
        )
        frames_at_cut = cut_settings.outbox.counters.frames
        wait_for(lambda: cut_settings.outbox.counters.frames >= frames_at_cut + 3, what="frames to pile up")
        assert len(cut_settings.outbox) >= 3

        fleet.set_link(cut, True)
        wait_for(lambda: node.query("SELECT online FROM nodes WHERE name = ?", cut) == [(1,)], what="the rebirth")
        rows = node.query("SELECT role, session, connects, last_death_reason FROM nodes WHERE name = ?", cut)
        assert rows[0][:2] == ("gateway", session)  # same process, same session: a reconnect, not a restart
        assert rows[0][2] >= 1
        assert rows[0][3] == "connection lost"
        drain(node)
        generated = fleet.generated()
        counters = node.hub_counters()
    assert accounting(node.db_path) == {"rows": generated, "duplicates": 0, "distinct": generated}
    assert counters["deaths"] >= 1
    assert counters["births"] >= 1 + 4 + 1  # the hub, each gateway, the rebirth


def test_a_birth_after_a_restored_link_counts_the_reconnect(broker_address: BrokerAddress, tmp_path: Path) -> None:
    fleet_name = "e2e-connects"
    with running_hub(broker_address, tmp_path, fleet_name) as node:
        fleet = node.start_fleet(devices=4, gateways=1)
        gateway = fleet.gateways[0]
        wait_for(lambda: node.query("SELECT connects FROM nodes WHERE name = ?", gateway) == [(1,)], what="the birth")
        fleet.set_link(gateway, False)
        wait_for(lambda: node.query("SELECT online FROM nodes WHERE name = ?", gateway) == [(0,)], what="the Will")
        fleet.set_link(gateway, True)
        wait_for(lambda: node.query("SELECT online FROM nodes WHERE name = ?", gateway) == [(1,)], what="the rebirth")
        assert node.query("SELECT connects FROM nodes WHERE name = ?", gateway) == [(2,)]


# ---------------------------------------------------------------- QoS 1 redelivery and bad input


def test_a_frame_delivered_three_times_is_stored_once_and_acknowledged(
    broker_address: BrokerAddress, tmp_path: Path, raw_clients: Callable[..., RawClient]
) -> None:
    fleet_name, sender = "e2e-redelivery", "raw-gw"
    with running_hub(broker_address, tmp_path, fleet_name) as node:
        raw = raw_clients(broker_address, f"{fleet_name}.{sender}", topics.delivery_ack(fleet_name, sender))
        frame = batch(sender, seq=9)
        payload = encode(frame)
        for _ in range(3):
            raw.publish(topics.up(fleet_name, sender, "readings"), payload)
        wait_for(
            lambda: (c := node.hub_counters())["frames_stored"] + c["duplicates"] == 3,
            what="the hub to write all three deliveries",
        )
        counters = node.hub_counters()
        acks = raw.take(1, DeliveryAck, what="a delivery ack")
        assert node.query("SELECT seq, session, rows, readings FROM frames") == [(9, 42, 3, 5)]
    assert counters["frames_stored"] == 1
    assert counters["duplicates"] == 2
    assert counters["readings"] == frame.reading_count() == 5
    assert accounting(node.db_path) == {"rows": 5, "duplicates": 0, "distinct": 5}
    assert all((a.node, a.session, a.ranges) == (sender, 42, [[9, 9]]) for a in acks)


def test_bad_frames_over_mqtt_become_dead_letters_and_the_hub_keeps_storing(
    broker_address: BrokerAddress, tmp_path: Path, raw_clients: Callable[..., RawClient]
) -> None:
    fleet_name, sender = "e2e-bad", "bad-gw"
    with running_hub(broker_address, tmp_path, fleet_name) as node:
        watcher = raw_clients(broker_address, f"{fleet_name}.watcher", topics.up(fleet_name, "hub", "deadletter"))
        raw = raw_clients(broker_address, f"{fleet_name}.{sender}")
        readings = topics.up(fleet_name, sender, "readings")
        raw.publish(readings, b"\xff\xfe\x00 definitely not CBOR")
        raw.publish(readings, cbor2.dumps({"t": "no.such.message.v1", "node": sender}))
        raw.publish(topics.up(fleet_name, sender, "backfill"), b"\xa0" * (MAX_FRAME_BYTES + 1))
        raw.publish(readings, encode(batch(sender, seq=1)))

        wait_for(lambda: node.query("SELECT COUNT(*) FROM frames") == [(1,)], what="the good frame after the bad ones")
        letters = watcher.take(3, DeadLetter, what="three dead letters on the hub's dead-letter topic")
        stored = node.query("SELECT node, topic, reason, payload_size FROM dead_letters ORDER BY id")
        counters = node.hub_counters()
        ref = node.supervisor.ref("hub")
        assert ref is not None and ref.is_alive()
    assert node.supervisor.stats()["hub"].failures == 0
    assert counters["dead_letters"] == 3
    assert len(stored) == 3
    assert all(row[0] == "hub" for row in stored)
    assert "not a CBOR frame" in stored[0][2]
    assert "at $.t" in stored[1][2] and "unknown message tag 'no.such.message.v1'" in stored[1][2]
    assert f"exceeds the limit of {MAX_FRAME_BYTES} bytes" in stored[2][2]
    assert stored[2][1].endswith("/up/backfill")
    assert stored[2][3] == MAX_FRAME_BYTES + 1
    assert sorted(letter.reason for letter in letters) == sorted(row[2] for row in stored)
    assert all(len(letter.payload) <= 256 for letter in letters)


def test_a_frame_whose_seq_does_not_fit_the_store_is_refused_without_crashing_the_hub(
    broker_address: BrokerAddress, tmp_path: Path, raw_clients: Callable[..., RawClient]
) -> None:
    fleet_name, sender = "e2e-seq", "big-gw"
    with running_hub(broker_address, tmp_path, fleet_name) as node:
        raw = raw_clients(broker_address, f"{fleet_name}.{sender}")
        wire = cbor2.loads(encode(batch(sender, seq=5)))
        wire["seq"] = 2**63  # fits the CBOR uint64 but not SQLite's INTEGER: the codec must refuse it
        raw.publish(topics.up(fleet_name, sender, "readings"), cbor2.dumps(wire))
        raw.publish(topics.up(fleet_name, sender, "readings"), encode(batch(sender, seq=1)))
        wait_for(
            lambda: node.query("SELECT COUNT(*) FROM frames") == [(1,)] or node.supervisor.stats()["hub"].failures,
            what="the good frame to be stored or the hub to fail",
        )
        assert node.supervisor.stats()["hub"].failures == 0
        wait_for(lambda: node.query("SELECT COUNT(*) FROM dead_letters") == [(1,)], what="a dead letter")
    assert node.query("SELECT seq FROM frames") == [(1,)]


# ---------------------------------------------------------------- broker restart


def test_the_hub_and_fleet_survive_a_broker_restart_without_loss(
    fresh_mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    address = parse_broker_url(fresh_mosquitto.url)
    with running_hub(address, tmp_path, "e2e-restart") as node:
        fleet = node.start_fleet(devices=200, gateways=4)
        wait_for(lambda: fleet.generated() >= 2_000, what="readings before the restart")
        connects_before = node.hub.bridge.counters.connects
        fresh_mosquitto.restart()
        wait_for(lambda: node.hub.bridge.counters.connects > connects_before, what="the hub to reconnect")
        at_restart = fleet.generated()
        wait_for(lambda: fleet.generated() >= at_restart + 1_500, what="readings after the restart")
        drain(node)
        generated = fleet.generated()
    assert accounting(node.db_path) == {"rows": generated, "duplicates": 0, "distinct": generated}


# ---------------------------------------------------------------- the demo on the embedded broker


def test_the_demo_on_the_embedded_broker_loses_and_duplicates_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from pymonitor.broker import embedded
    from pymonitor.simulators.demo import DemoOptions, run_demo

    monkeypatch.setattr(embedded, "DEFAULT_PORT", free_port())  # never 1883: the machine's own broker lives there
    summary = run_demo(DemoOptions(devices=300, gateways=3, seconds=6, broker="embedded"))
    assert "embedded" in summary.broker
    assert summary.ok, summary
    assert summary.lost == 0
    assert summary.duplicates == 0
    assert summary.stored == summary.generated > 0
    assert summary.cut_gateway is not None


def test_without_a_hub_the_gateway_breaker_opens_and_closes_when_the_hub_comes(
    broker_address: BrokerAddress, tmp_path: Path
) -> None:
    clock = RealClock()
    supervisor = Supervisor(clock)
    fleet = FleetSimulator(
        fleet="e2e-breaker",
        devices=20,
        gateways=1,
        address=broker_address,
        clock=clock,
        supervisor=supervisor,
        interval_s=0.25,
        ack_timeout_s=0.5,
    ).start()

    def breaker_state() -> str:
        ref = supervisor.ref("gw-0000")
        assert ref is not None
        return str(ref.proxy().status().get(timeout=10)["breaker"])

    try:
        wait_for(lambda: breaker_state() != "closed", what="the breaker to open with nobody acknowledging")
        assert fleet.pending_frames() > 0  # frames wait in the outbox, nothing is dropped
        with running_hub(broker_address, tmp_path, "e2e-breaker") as node:
            wait_for(lambda: breaker_state() == "closed", timeout_s=60, what="a probe to be acknowledged")
            fleet.stop_sampling()
            wait_for(lambda: fleet.pending_frames() == 0, timeout_s=60, what="every frame acknowledged")
        generated = fleet.generated()
    finally:
        fleet.stop()
        supervisor.stop_all()
        clock.stop()
    counts = accounting(node.db_path)
    assert counts["distinct"] == generated and counts["duplicates"] == 0
