"""One MQTT connection per node, on paho-mqtt 2.x (callback API v2).

QoS 1, a persistent session, reconnect with exponential backoff, the node's death as the
Will and its birth published on every connect. Paho's callbacks only hand frames over
(``on_frame(topic, payload)``) to whoever owns the bridge; they never block.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from .netloop import NetworkLoop
from .url import BrokerAddress

log = logging.getLogger(__name__)

QOS_DATA = 1
KEEPALIVE_S = 30
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30
MAX_INFLIGHT = 200

FrameHandler = Callable[[str, bytes], object]


@dataclass
class BridgeCounters:
    """What the connection did; read by stats and tests."""

    connects: int = 0
    disconnects: int = 0
    published: int = 0
    puback: int = 0
    received: int = 0
    refused: int = 0  # CONNACKs that said no (bad credentials, not authorised, ...)
    handler_errors: int = 0  # frames whose handler raised (logged; the connection goes on)
    last_refusal: str = ""


@dataclass
class BridgeOptions:
    """How one node connects. ``birth`` is called on every connect for (topic, payload)."""

    client_id: str
    subscriptions: Sequence[str] = ()
    will: tuple[str, bytes] | None = None
    birth: Callable[[int], tuple[str, bytes]] | None = None
    clean_session: bool = False
    keepalive_s: int = KEEPALIVE_S
    ca_file: str | None = None
    max_inflight: int = MAX_INFLIGHT
    reconnect_min_s: float = RECONNECT_MIN_S
    reconnect_max_s: float = RECONNECT_MAX_S
    extra_subscriptions_qos: int = QOS_DATA
    on_connected: Callable[[int], object] | None = None
    on_disconnected: Callable[[], object] | None = None
    on_puback: Callable[[int], object] | None = None
    userdata: Any = field(default=None)
    loop: NetworkLoop | None = None  # share one network thread among many clients


class MqttBridge:
    """A paho client with PyMonitor's connection policy; thread-safe ``publish``."""

    def __init__(self, address: BrokerAddress, options: BridgeOptions, on_frame: FrameHandler) -> None:
        self.address = address
        self.options = options
        self.counters = BridgeCounters()
        self._on_frame = on_frame
        self._connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=options.clean_session,
            protocol=mqtt.MQTTv311,
        )
        client = self._client
        client.max_inflight_messages_set(options.max_inflight)
        client.reconnect_delay_set(max(1, int(options.reconnect_min_s)), int(options.reconnect_max_s))
        if address.username:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            context = ssl.create_default_context(cafile=options.ca_file)
            client.tls_set_context(context)
        if options.will is not None:
            client.will_set(options.will[0], options.will[1], qos=QOS_DATA, retain=True)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background; retried with backoff until the broker answers."""
        opts = self.options
        if opts.loop is not None:
            backoff = (opts.reconnect_min_s, opts.reconnect_max_s)
            opts.loop.add(self._client, self.address.host, self.address.port, opts.keepalive_s, backoff)
            return
        self._client.connect_async(self.address.host, self.address.port, keepalive=opts.keepalive_s)
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def publish(self, topic: str, payload: bytes, *, qos: int = QOS_DATA, retain: bool = False) -> int:
        """Queue a frame (paho keeps QoS 1 frames across reconnects); returns the message id."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        self.counters.published += 1
        return info.mid

    def subscribe(self, topic_filter: str, qos: int = QOS_DATA) -> None:
        self._client.subscribe(topic_filter, qos)

    def cut(self) -> None:
        """Drop the TCP connection without a DISCONNECT (the broker publishes the Will) and stop."""
        if self.options.loop is not None:
            self.options.loop.remove(self._client, disconnect=False)
        else:
            sock = self._client.socket()
            if sock is not None:
                sock.close()
            self._client.loop_stop()
        self._connected.clear()

    def stop(self, goodbye: tuple[str, bytes] | None = None, timeout_s: float = 5.0) -> None:
        """Publish a last retained state (a clean death), disconnect and stop the network thread."""
        if goodbye is not None and self.connected:
            info = self._client.publish(goodbye[0], goodbye[1], qos=QOS_DATA, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                log.warning("%s: could not publish the goodbye state", self.options.client_id)
        if self.options.loop is not None:
            self.options.loop.remove(self._client, disconnect=True)
        else:
            self._client.disconnect()
            self._client.loop_stop()
        self._connected.clear()

    # paho callbacks: convert and hand over, never block

    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self.counters.refused += 1
            self.counters.last_refusal = str(reason)
            log.warning("%s: broker refused the connection: %s", self.options.client_id, reason)
            return
        self.counters.connects += 1
        for topic_filter in self.options.subscriptions:
            client.subscribe(topic_filter, self.options.extra_subscriptions_qos)
        if self.options.birth is not None:
            topic, payload = self.options.birth(self.counters.connects)
            client.publish(topic, payload, qos=QOS_DATA, retain=True)
        self._connected.set()
        if self.options.on_connected is not None:
            self.options.on_connected(self.counters.connects)

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self.counters.disconnects += 1
        self._connected.clear()
        if self.options.on_disconnected is not None:
            self.options.on_disconnected()

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.counters.received += 1
        payload = msg.payload
        try:
            self._on_frame(msg.topic, payload if isinstance(payload, bytes) else bytes(payload))
        except Exception:  # an exception here would end paho's network thread: the node would go deaf
            self.counters.handler_errors += 1
            log.exception("%s: frame handler failed on %s", self.options.client_id, msg.topic)

    def _handle_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        self.counters.puback += 1
        if self.options.on_puback is not None:
            self.options.on_puback(mid)
