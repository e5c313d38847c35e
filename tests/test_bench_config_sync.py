"""``bench config_sync``: offline nodes apply what changed meanwhile after reconnecting (small N, real mosquitto)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pymonitor.bench.config_sync import main, run
from pymonitor.broker import MosquittoBroker

KEYS = {
    "apply_after_reconnect_p50_s",
    "apply_after_reconnect_p99_s",
    "nodes",
    "applied",
    "rejected",
    "online_apply_p99_s",
    "within_target",
}


@pytest.mark.needs_mosquitto
def test_every_offline_node_applies_the_change_after_reconnect(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    result = run(10, mosquitto.url, workers=3, workdir=tmp_path)
    assert KEYS <= set(result) and result["bench"] == "config_sync"
    assert result["applied"] == result["nodes"] == result["configs_on_disk_ok"] == 10
    assert result["rejected"] == 0 and result["handler_errors"] == 0
    assert result["lagging_while_offline"] == 10 and result["lagging_after"] == 0
    assert 0 < result["apply_after_reconnect_p50_s"] <= result["apply_after_reconnect_p99_s"]


@pytest.mark.needs_mosquitto
def test_main_starts_its_own_mosquitto_and_prints_one_json_object_last(
    mosquitto: MosquittoBroker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    assert main(["--nodes", "4", "--workers", "2", "--out", str(out)]) == 0
    last = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == orjson.loads(out.read_bytes()) and last["applied"] == 4 and last["within_target"] is True


def test_an_unreachable_broker_is_an_error_not_a_hang(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no connection"):
        run(2, "mqtt://127.0.0.1:1", timeout_s=0.3, workdir=tmp_path)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--nodes", "0"])
    assert exit_.value.code == 2
