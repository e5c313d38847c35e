"""Brokers PyMonitor can start itself: amqtt in-process (always there) or a mosquitto subprocess.

The embedded default needs nothing beyond ``pip install pymonitor``. Both bind 127.0.0.1 by
default, take port 1883 when it is free and a free port otherwise, and say which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
START_TIMEOUT_S = 10.0


class BrokerStartError(RuntimeError):
    """A broker could not be started; the message says why."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def choose_port(host: str, preferred: int | None) -> int:
    """``preferred`` if given (must be free), else 1883 if free, else any free port."""
    if preferred is not None:
        if not port_is_free(host, preferred):
            raise BrokerStartError(f"port {preferred} on {host} is already in use")
        return preferred
    return DEFAULT_PORT if port_is_free(host, DEFAULT_PORT) else free_port(host)


def wait_listening(host: str, port: int, timeout_s: float = START_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def end_process(proc: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL), then wait; a process that ignores SIGTERM is killed after the timeout."""
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RunningBroker(Protocol):
    """A broker this process started."""

    host: str
    port: int

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...

    def restart(self) -> None: ...


class _SnapshotDict(dict):  # type: ignore[type-arg]
    """A dict whose iteration walks a snapshot.

    amqtt 0.12 iterates its subscription table with ``await`` inside the loop (on every client
    connect and every broadcast); a subscribe that lands meanwhile raises "dictionary changed size
    during iteration" and drops the connecting client. With hundreds of gateways connecting at
    once that happens dozens of times. Iterating a copy is what the loop meant.
    """

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(super().keys()))

    def items(self):  # type: ignore[no-untyped-def]
        return list(super().items())


class EmbeddedBroker:
    """amqtt (pure Python, MQTT 3.1.1) on its own asyncio loop in a daemon thread."""

    kind = "embedded"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = choose_port(host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: object | None = None
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        from amqtt.broker import Broker

        ready = threading.Event()
        failure: list[BaseException] = []
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            broker = Broker(config, loop=loop)
            broker._subscriptions = _SnapshotDict(broker._subscriptions)
            self._broker = broker
            try:
                loop.run_until_complete(broker.start())
            except BaseException as exc:  # noqa: BLE001 - surfaced to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(broker.shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"amqtt-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(START_TIMEOUT_S)
        if failure or not wait_listening(self.host, self.port):
            raise BrokerStartError(f"embedded broker did not start on {self.host}:{self.port}: {failure}")
        log.info("embedded MQTT broker listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)
        self._loop = None
        self._thread = None

    def restart(self) -> None:
        """Stop and start again on the same port (amqtt keeps no sessions across this)."""
        self.stop()
        self.start()


class MosquittoBroker:
    """A mosquitto subprocess with its own config, persistence and port."""

    kind = "mosquitto"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        workdir: Path | None = None,
        *,
        listener_options: str = "",
        anonymous: bool = True,
        password_file: Path | None = None,
    ) -> None:
        """``listener_options`` are mosquitto.conf lines for the listener (``certfile ...`` for TLS)."""
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
        if binary is None:
            raise BrokerStartError("mosquitto is not installed (apt-get install mosquitto), use the embedded broker")
        self.binary = binary
        self.host = host
        self.port = choose_port(host, port)
        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(prefix="pm-mosquitto-")
        self.workdir = workdir if workdir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self.listener_options = listener_options
        self.anonymous = anonymous
        self.password_file = password_file

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _write_config(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        # Started as root, mosquitto would drop to the "mosquitto" user and lose access to workdir.
        user = f"user {pwd.getpwuid(os.getuid()).pw_name}\n" if os.getuid() == 0 else ""
        listener = self.listener_options.strip()
        auth = f"password_file {self.password_file}\n" if self.password_file else ""
        conf.write_text(
            user + f"listener {self.port} {self.host}\n"
            + (listener + "\n" if listener else "")
            + f"allow_anonymous {'true' if self.anonymous else 'false'}\n"
            + auth
            + "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            "max_inflight_messages 200\n"
            "max_queued_messages 100000\n"
            "max_packet_size 8388608\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
        )
        return conf

    def start(self) -> MosquittoBroker:
        conf = self._write_config()
        log_file = (self.workdir / "mosquitto.log").open("ab")
        self._proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log_file, stderr=log_file)
        log_file.close()
        if not wait_listening(self.host, self.port):
            self.stop()
            tail = (self.workdir / "mosquitto.log").read_text(errors="replace")[-500:]
            raise BrokerStartError(f"mosquitto did not listen on {self.host}:{self.port}: {tail}")
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stop (SIGTERM saves persistence; ``kill=True`` sends SIGKILL)."""
        if self._proc is not None:
            end_process(self._proc, kill=kill)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


class EmbeddedBrokerProcess:
    """amqtt in a child process: its own interpreter (and core), so a busy fleet does not starve it."""

    kind = "embedded"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = choose_port(host, port)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> EmbeddedBrokerProcess:
        cmd = [sys.executable, "-m", "pymonitor.broker.embedded", self.host, str(self.port)]
        # Its stderr goes to ours: amqtt's warnings and errors stay visible, and nothing can fill a pipe.
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        if not wait_listening(self.host, self.port):
            self.stop()
            raise BrokerStartError(f"embedded broker process did not listen on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        if self._proc is not None:
            end_process(self._proc)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def mosquitto_installed() -> bool:
    return bool(shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists())


def start_broker(kind: str = "embedded", *, host: str = "127.0.0.1", port: int | None = None) -> RunningBroker:
    """Start ``embedded`` (amqtt), ``mosquitto``, or ``auto`` (mosquitto when installed, else embedded)."""
    if kind == "auto":
        kind = "mosquitto" if mosquitto_installed() else "embedded"
    if kind == "embedded":
        return EmbeddedBrokerProcess(host, port).start()
    if kind == "embedded-thread":
        return EmbeddedBroker(host, port).start()
    if kind == "mosquitto":
        return MosquittoBroker(host, port).start()
    raise BrokerStartError(f"unknown broker kind {kind!r}: expected embedded, mosquitto or auto")


def _serve_forever(host: str, port: int) -> None:  # pragma: no cover - runs in the child process
    import signal

    broker = EmbeddedBroker(host, port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    broker.stop()


if __name__ == "__main__":  # pragma: no cover - child process entry
    _serve_forever(sys.argv[1], int(sys.argv[2]))
