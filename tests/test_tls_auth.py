"""TLS and username/password are configuration: a real mosquitto with a test CA and a password file."""

from __future__ import annotations

import queue
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_for

from pymonitor.broker import BridgeOptions, MosquittoBroker, MqttBridge, free_port, parse_broker_url

pytestmark = pytest.mark.needs_mosquitto

USER, PASSWORD = "node-7", "s3cret-pass"


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: cannot make a test CA")
    d = tmp_path_factory.mktemp("pki")
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=pymonitor-test-ca", cwd=d)  # fmt: skip
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=d)  # fmt: skip
    passwd = shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path="/usr/bin:/usr/sbin")
    if passwd is None:
        pytest.skip("mosquitto_passwd not installed")
    _run(passwd, "-b", "-c", "passwords", USER, PASSWORD, cwd=d)
    return d


@pytest.fixture(scope="module")
def tls_broker(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    options = f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}"
    broker = MosquittoBroker(
        port=free_port(),
        workdir=tmp_path_factory.mktemp("mosquitto-tls"),
        listener_options=options,
        anonymous=False,
        password_file=pki / "passwords",
    )
    broker.start()
    yield broker
    broker.close()


def _bridge(url: str, ca_file: Path | None, frames: queue.Queue[tuple[str, bytes]] | None = None) -> MqttBridge:
    options = BridgeOptions(
        client_id="", clean_session=True, subscriptions=["pm/v1/tls/#"], ca_file=str(ca_file) if ca_file else None
    )
    bridge = MqttBridge(parse_broker_url(url), options, lambda t, p: frames.put((t, p)) if frames else None)
    bridge.start()
    return bridge


def test_mqtts_with_the_right_password_connects_and_carries_frames(tls_broker: MosquittoBroker, pki: Path) -> None:
    frames: queue.Queue[tuple[str, bytes]] = queue.Queue()
    bridge = _bridge(f"mqtts://{USER}:{PASSWORD}@127.0.0.1:{tls_broker.port}", pki / "ca.crt", frames)
    try:
        assert bridge.wait_connected(20)
        bridge.publish("pm/v1/tls/n/up/events", b"over tls")
        assert frames.get(timeout=20) == ("pm/v1/tls/n/up/events", b"over tls")
    finally:
        bridge.stop()


def test_a_wrong_password_is_refused_and_counted(tls_broker: MosquittoBroker, pki: Path) -> None:
    bridge = _bridge(f"mqtts://{USER}:wrong@127.0.0.1:{tls_broker.port}", pki / "ca.crt")
    try:
        wait_for(lambda: bridge.counters.refused >= 1, what="a refused CONNACK")
        assert not bridge.connected
        assert "authori" in bridge.counters.last_refusal.lower() or "password" in bridge.counters.last_refusal.lower()
    finally:
        bridge.stop()


def test_a_broker_whose_certificate_is_not_trusted_is_never_connected(tls_broker: MosquittoBroker) -> None:
    bridge = _bridge(f"mqtts://{USER}:{PASSWORD}@127.0.0.1:{tls_broker.port}", None)  # system CAs only
    try:
        assert not bridge.wait_connected(3)
        assert bridge.counters.connects == 0
    finally:
        bridge.stop()


def test_anonymous_clients_are_refused_when_the_broker_wants_a_password(tls_broker: MosquittoBroker, pki: Path) -> None:
    bridge = _bridge(f"mqtts://127.0.0.1:{tls_broker.port}", pki / "ca.crt")
    try:
        wait_for(lambda: bridge.counters.refused >= 1, what="a refused CONNACK")
        assert not bridge.connected
    finally:
        bridge.stop()
