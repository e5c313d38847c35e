"""Shared fixtures: a real mosquitto broker on a free port, and waiting with a deadline.

Tests that need a broker take ``mosquitto`` (one per session) or ``fresh_mosquitto`` (one per
test, for tests that restart or kill it). Neither ever uses port 1883, which belongs to the
machine's own broker. Waiting is polling with a generous deadline; no test asserts how long
anything took.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from pymonitor.broker import BrokerAddress, MosquittoBroker, free_port, parse_broker_url

MOSQUITTO_PATHS = "/usr/sbin:/usr/local/sbin"
WAIT_S = 20.0
POLL_S = 0.05

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long run (soak, benchmark); not part of CI")
    config.addinivalue_line("markers", "needs_mosquitto: uses a real mosquitto broker (skipped when not installed)")


def wait_for(
    condition: Callable[[], T], *, timeout_s: float = WAIT_S, poll_s: float = POLL_S, what: str = "condition"
) -> T:
    """Poll ``condition`` until it returns something truthy (which is returned); fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"gave up after {timeout_s:.0f} s waiting for {what} (last value {value!r})")
        time.sleep(poll_s)


def _mosquitto_installed() -> bool:
    return bool(shutil.which("mosquitto") or shutil.which("mosquitto", path=MOSQUITTO_PATHS))


def _start_mosquitto(workdir: Path) -> MosquittoBroker:
    if not _mosquitto_installed():
        pytest.skip("mosquitto not installed: apt-get install mosquitto")
    port = free_port()  # never the default 1883: the machine's own broker lives there
    return MosquittoBroker(port=port, workdir=workdir).start()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """One mosquitto for the whole session, with its own workdir (config, persistence, log)."""
    broker = _start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def fresh_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A mosquitto of this test alone, free to be restarted or killed."""
    broker = _start_mosquitto(tmp_path_factory.mktemp("fresh-mosquitto"))
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def broker_address(mosquitto: MosquittoBroker) -> BrokerAddress:
    return parse_broker_url(mosquitto.url)


def product_tags() -> list[str]:
    """Message tags registered by the package itself (not throwaway classes of tests)."""
    from pymonitor.messages import registered_tags
    from pymonitor.messages.registry import spec_for_tag

    tags = []
    for tag in registered_tags():
        spec = spec_for_tag(tag)
        assert spec is not None
        if spec.cls.__module__.startswith("pymonitor."):
            tags.append(tag)
    return tags


def written(effects: list[object]) -> list[object]:
    """The frames of the single WriteFrames effect a hub core returned (traffic rows aside)."""
    from pymonitor.actors.hub.core import WriteFrames

    writes = [e for e in effects if isinstance(e, WriteFrames)]
    assert len(writes) == 1 and len(writes) == len(effects), effects
    return list(writes[0].frames)
