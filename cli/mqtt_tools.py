"""``pymonitor pub`` and ``pymonitor sub``: mosquitto_pub/_sub that speak PyMonitor's CBOR."""

from __future__ import annotations

import queue
import sys
import time
from typing import Any

import cbor2
import orjson

from pymonitor.broker import BridgeOptions, MqttBridge, parse_broker_url
from pymonitor.messages import MessageError, decode, decode_unpacked, to_view


def build_frame(tag: str, data: str) -> bytes:
    """Encode ``{"t": tag, **json}`` and validate it with the codec, so a bad field is named."""
    try:
        fields = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--data is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ValueError("--data must be a JSON object of message fields")
    frame = cbor2.dumps({"t": tag, **fields})
    decode(frame)  # raises MessageError naming the field
    return frame


def publish(url: str, topic: str, frame: bytes, *, retain: bool = False, timeout_s: float = 10.0) -> None:
    bridge = MqttBridge(parse_broker_url(url), BridgeOptions(client_id="", clean_session=True), lambda t, p: None)
    bridge.start()
    try:
        if not bridge.wait_connected(timeout_s):
            raise ConnectionError(f"could not connect to {url} within {timeout_s:.0f} s")
        bridge.publish(topic, frame, retain=retain)
        deadline = time.monotonic() + timeout_s
        while bridge.counters.puback < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        bridge.stop()


def frame_line(topic: str, payload: bytes) -> dict[str, Any]:
    """One output line of ``sub``: the decoded message, or the codec's error for a bad frame."""
    try:
        return {"topic": topic, **to_view(decode_unpacked(payload))}
    except MessageError as exc:
        return {"topic": topic, "error": str(exc), "size": len(payload)}


def subscribe(url: str, topic_filter: str, *, count: int | None, timeout_s: float | None) -> int:
    """Print each frame as a JSON line; returns how many were printed."""
    frames: queue.Queue[tuple[str, bytes]] = queue.Queue()
    options = BridgeOptions(client_id="", clean_session=True, subscriptions=[topic_filter])
    bridge = MqttBridge(parse_broker_url(url), options, lambda t, p: frames.put((t, p)))
    bridge.start()
    printed = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while count is None or printed < count:
            wait = 0.5 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            try:
                topic, payload = frames.get(timeout=min(wait, 0.5))
            except queue.Empty:
                continue
            sys.stdout.buffer.write(orjson.dumps(frame_line(topic, payload)) + b"\n")
            sys.stdout.flush()
            printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()
    return printed
