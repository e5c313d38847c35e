"""The paho bridge on its own thread: handler failures never end the connection."""

from __future__ import annotations

from conftest import wait_for

from pymonitor.broker import BridgeOptions, BrokerAddress, MqttBridge


def test_a_raising_frame_handler_is_counted_and_the_connection_keeps_receiving(broker_address: BrokerAddress) -> None:
    got: list[bytes] = []

    def handler(topic: str, payload: bytes) -> None:
        if payload == b"bad":
            raise ValueError("handler bug")
        got.append(payload)

    receiver = MqttBridge(broker_address, BridgeOptions(client_id="h-recv", subscriptions=["pm/v1/h/#"]), handler)
    sender = MqttBridge(broker_address, BridgeOptions(client_id="h-send"), lambda t, p: None)
    try:
        receiver.start()
        sender.start()
        wait_for(lambda: receiver.connected and sender.connected, what="both connected")
        sender.publish("pm/v1/h/x", b"bad")
        wait_for(lambda: receiver.counters.handler_errors == 1, what="the handler error to be counted")
        sender.publish("pm/v1/h/x", b"good")
        wait_for(lambda: got == [b"good"], what="the next frame")
    finally:
        receiver.stop()
        sender.stop()
