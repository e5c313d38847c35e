"""The ``pymonitor`` command as a user runs it: in-process via typer's runner and as real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import wait_for
from typer.testing import CliRunner

from pymonitor.actors.runtime.clock import RealClock
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BrokerAddress, MosquittoBroker
from pymonitor.cli.main import app
from pymonitor.simulators.fleet import FleetSimulator
from pymonitor.store import HubStore

runner = CliRunner()
PYMONITOR = [sys.executable, "-m", "pymonitor.cli.main"]


def _last_json(text: str) -> dict[str, object]:
    return orjson.loads(text.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "broker", "hub", "simulate", "node", "pub", "sub", "stats", "bench"):
        assert command in result.output


@pytest.mark.needs_mosquitto
def test_demo_json_accounts_for_every_reading(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    args = ["demo", "--devices", "120", "--gateways", "3", "--seconds", "4", "--broker", mosquitto.url]
    result = runner.invoke(app, [*args, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.stdout)
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["generated"] == summary["stored"]
    assert isinstance(summary["generated"], int) and summary["generated"] > 0
    stats = runner.invoke(app, ["stats", "--db", str(db), "--json"])
    assert stats.exit_code == 0
    figures = _last_json(stats.stdout)
    assert figures["readings"] == summary["stored"]
    assert figures["nodes"] == 4  # three gateways and the hub
    assert {row["direction"] for row in figures["traffic"]} == {"up", "down"}  # type: ignore[index, union-attr]
    human = runner.invoke(app, ["stats", "--db", str(db)])
    assert "readings" in human.stdout and "gw-0000" in human.stdout and "bytes" in human.stdout


def test_demo_refuses_more_gateways_than_devices() -> None:
    result = runner.invoke(app, ["demo", "--devices", "2", "--gateways", "3"])
    assert result.exit_code == 2
    assert "--gateways" in result.output


def test_stats_of_a_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stats", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 2
    assert "no such store" in result.output


def test_node_with_an_invalid_config_names_the_key_and_exits(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[node]\nname = "hub"\n[hub]\nflush_interval_ms = "soon"\n')
    result = runner.invoke(app, ["node", "--config", str(config)])
    assert result.exit_code == 2
    assert "node.toml at [hub].flush_interval_ms: expected int, got str" in result.output


def test_pub_refuses_a_message_with_a_wrong_field_and_names_it() -> None:
    data = '{"node": "n", "ts_ms": "yesterday", "kind": "x", "severity": "info", "message": "m"}'
    result = runner.invoke(app, ["pub", "--topic", "pm/v1/f/n/up/events", "--tag", "event.v1", "--data", data])
    assert result.exit_code == 2
    assert "event.v1 at $.ts_ms: expected int" in result.output


def test_unknown_benchmark_is_refused() -> None:
    result = runner.invoke(app, ["bench", "nope"])
    assert result.exit_code == 2
    assert "unknown benchmark" in result.output


@pytest.mark.needs_mosquitto
def test_sub_prints_published_frames_as_json_lines_and_bad_frames_with_their_error(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    sub = subprocess.Popen(
        [*PYMONITOR, "sub", "--broker", mosquitto.url, "--topic", "pm/v1/cli/#", "--count", "2", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        event = '{"node": "n1", "ts_ms": 1767225600000, "kind": "door.open", "severity": "warning", "message": "m"}'
        # The subscriber needs a moment to subscribe: publish until it has seen both frames.
        garbage = tmp_path / "garbage.bin"
        garbage.write_bytes(b"\xff\x00not cbor")

        def publish_both() -> bool:
            runner.invoke(
                app,
                ["pub", "--broker", mosquitto.url, "--topic", "pm/v1/cli/n1/up/events", "--tag", "event.v1", "--data",
                 event],
            )
            runner.invoke(app, ["pub", "--broker", mosquitto.url, "--topic", "pm/v1/cli/n1/up/readings", "--raw",
                                str(garbage)])
            try:
                sub.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                return False
            return True

        wait_for(publish_both, timeout_s=30, what="sub to print two frames")
        assert sub.stdout is not None
        lines = [orjson.loads(line) for line in sub.stdout.read().splitlines()]
    finally:
        sub.kill()
    kinds = {line.get("t", "error") for line in lines}
    assert "event.v1" in kinds or "error" in kinds
    errors = [line for line in lines if "error" in line]
    events = [line for line in lines if line.get("t") == "event.v1"]
    assert events and events[0]["kind"] == "door.open" and events[0]["topic"] == "pm/v1/cli/n1/up/events"
    assert errors and "not a CBOR frame" in str(errors[0]["error"])


def _node_config(tmp_path: Path, url: str, db: Path, *, simulator: bool) -> Path:
    text = f'[node]\nname = "hub"\nfleet = "clitest"\n[broker]\nurl = "{url}"\n[hub]\ndb = "{db}"\n'
    if simulator:
        text += '[simulator]\ndevices = 60\ngateways = 2\ninterval_s = 0.5\ncompression = "zstd"\n'
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


@pytest.mark.needs_mosquitto
def test_node_process_stops_cleanly_on_sigterm_and_keeps_what_it_took(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db = tmp_path / "hub.db"
    config = _node_config(tmp_path, mosquitto.url, db, simulator=True)
    proc = subprocess.Popen([*PYMONITOR, "node", "--config", str(config)], stderr=subprocess.PIPE)

    def stored() -> int:
        if not db.exists():
            return 0
        store = HubStore(db)
        try:
            return int(store.stats()["readings"])
        finally:
            store.close()

    try:
        wait_for(lambda: stored() > 500, timeout_s=30, what="the node to store readings")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    store = HubStore(db)
    accounting = store.reading_accounting()
    nodes = {row["node"]: row for row in store.per_node()}
    store.close()
    assert accounting["duplicates"] == 0
    assert nodes["gw-0000"]["online"] == 0  # clean death on the way out
    assert nodes["gw-0000"]["readings"] > 0


@pytest.mark.needs_mosquitto
def test_hub_killed_with_sigkill_mid_stream_loses_nothing_after_restart(
    mosquitto: MosquittoBroker, broker_address: BrokerAddress, tmp_path: Path
) -> None:
    db = tmp_path / "hub.db"
    config = _node_config(tmp_path, mosquitto.url, db, simulator=False)
    text = config.read_text().replace('fleet = "clitest"', 'fleet = "killtest"')
    config.write_text(text)
    clock = RealClock()
    supervisor = Supervisor(clock)
    fleet = FleetSimulator(
        fleet="killtest",
        devices=80,
        gateways=2,
        address=broker_address,
        clock=clock,
        supervisor=supervisor,
        interval_s=0.25,
        ack_timeout_s=2.0,
    ).start()
    hub = subprocess.Popen([*PYMONITOR, "node", "--config", str(config)], stderr=subprocess.DEVNULL)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: fleet.totals()["acked_readings"] > 1000, timeout_s=30, what="acks before the kill")
        os.kill(hub.pid, signal.SIGKILL)
        hub.wait(timeout=10)
        wait_for(lambda: fleet.pending_frames() > 2, timeout_s=30, what="frames to pile up while the hub is dead")
        second = subprocess.Popen([*PYMONITOR, "node", "--config", str(config)], stderr=subprocess.DEVNULL)
        wait_for(lambda: fleet.totals()["acked_readings"] > fleet.generated() * 0.5, timeout_s=30, what="catch-up")
        fleet.stop_sampling()
        wait_for(lambda: fleet.pending_frames() == 0, timeout_s=60, what="every frame acknowledged")
    finally:
        generated = fleet.generated()
        fleet.stop()
        supervisor.stop_all()
        clock.stop()
        for proc in (hub, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    store = HubStore(db)
    accounting = store.reading_accounting()
    store.close()
    assert accounting["duplicates"] == 0
    assert accounting["distinct"] == generated


@pytest.mark.needs_mosquitto
def test_hub_and_simulate_commands_run_for_the_given_seconds_and_store_data(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    db = tmp_path / "cmd.db"
    hub = subprocess.Popen(
        [*PYMONITOR, "hub", "--broker", mosquitto.url, "--db", str(db), "--fleet", "cmds", "--seconds", "12"],
        stderr=subprocess.PIPE,
    )
    sim = subprocess.Popen(
        [*PYMONITOR, "simulate", "--broker", mosquitto.url, "--fleet", "cmds", "--devices", "40", "--gateways", "2",
         "--interval", "0.5", "--seconds", "6"],
        stderr=subprocess.PIPE,
    )
    try:
        assert sim.wait(timeout=60) == 0
        assert hub.wait(timeout=60) == 0
    finally:
        for proc in (hub, sim):
            if proc.poll() is None:
                proc.kill()
    store = HubStore(db)
    accounting = store.reading_accounting()
    store.close()
    assert accounting["distinct"] > 0 and accounting["duplicates"] == 0


def test_broker_command_serves_until_interrupted() -> None:
    proc = subprocess.Popen([*PYMONITOR, "broker", "--kind", "embedded"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "embedded broker listening on mqtt://127.0.0.1:" in line
        url = line.split()[4]
        received: list[str] = []
        sub = subprocess.Popen(
            [*PYMONITOR, "sub", "--broker", url, "--topic", "pm/v1/#", "--count", "1", "--timeout", "30"],
            stdout=subprocess.PIPE,
            text=True,
        )
        data = '{"node": "n", "session": 1, "ranges": [[1, 3]], "hub_ts_ms": 5}'

        def delivered() -> bool:
            runner.invoke(app, ["pub", "--broker", url, "--topic", "pm/v1/f/n/down/ack", "--tag", "ack.delivery.v1",
                                "--data", data])
            try:
                out, _ = sub.communicate(timeout=1.0)
            except subprocess.TimeoutExpired:
                return False
            received.append(out)
            return True

        wait_for(delivered, timeout_s=30, what="a frame through the embedded broker")
        assert '"ranges":[[1,3]]' in received[0]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sub_shows_a_reading_batch_as_rows() -> None:
    from pymonitor.cli.mqtt_tools import frame_line
    from pymonitor.messages import ReadingBatch, encode

    batch = ReadingBatch.build(
        node="gw", session=1, seq=1, devices=["d1", "d2"], metrics=["t", "h"], device_index=[0, 1],
        device_seq=[1, 1], ts_ms=[10, 20], values=[[1.5, None], [40.0, 41.0]],
    )  # fmt: skip
    line = frame_line("pm/v1/f/gw/up/readings", encode(batch))
    assert line["rows"] == [["d1", 1, 10, 1.5, 40.0], ["d2", 1, 20, None, 41.0]]
    assert line["metrics"] == ["t", "h"]


def test_outbox_status_shows_what_waits_per_priority(tmp_path: Path) -> None:
    from pymonitor.store.outbox import DurableOutbox, Priority

    path = tmp_path / "gw.outbox"
    box = DurableOutbox(path)
    box.add(1, 1, b"e" * 10, readings=1, now_ms=5, priority=Priority.EVENT)
    box.add(1, 2, b"r" * 20, readings=8, now_ms=6)
    box.close()
    result = runner.invoke(app, ["outbox", "status", "--path", str(path), "--json"])
    assert result.exit_code == 0, result.output
    status = _last_json(result.stdout)
    assert status["pending"]["event"] == {"frames": 1, "readings": 1, "bytes": 10}  # type: ignore[index]
    assert status["pending"]["live"]["readings"] == 8  # type: ignore[index]
    human = runner.invoke(app, ["outbox", "status", "--path", str(path)])
    assert "event" in human.stdout and "frames" in human.stdout
    missing = runner.invoke(app, ["outbox", "status", "--path", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no such outbox" in missing.output
    # Looking never changes the file: a running node of another version owns it.
    before = path.read_bytes()
    runner.invoke(app, ["outbox", "status", "--path", str(path)])
    assert path.read_bytes() == before
    junk = tmp_path / "junk.outbox"
    junk.write_bytes(b"not sqlite at all" * 100)
    bad = runner.invoke(app, ["outbox", "status", "--path", str(junk)])
    assert bad.exit_code == 2 and "not a readable outbox" in bad.output
