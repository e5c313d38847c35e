"""The benchmarks' machinery at toy size: every key is there and every reading is accounted for.

These runs measure nothing worth recording (a few hundred devices for a second or two); they prove
the bench runs end to end so a real run does not fail after minutes. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from pymonitor.cli.main import app

TOY = [
    "--devices", "400", "--gateways", "2", "--seconds", "2", "--interval", "0.5",
    "--baseline-messages", "2000", "--baseline-seconds", "1", "--drain-timeout", "60", "--json",
]  # fmt: skip
KEYS = {
    "bench", "readings_per_s", "baseline_msgs_per_s", "ratio", "lost", "duplicates", "generated", "stored",
    "cpu_percent", "peak_rss_mb", "sim_peak_rss_mb", "devices", "gateways", "seconds", "broker_restarts", "python",
}  # fmt: skip


@pytest.mark.needs_mosquitto
@pytest.mark.parametrize("restart", [False, True], ids=["steady", "broker-restart"])
def test_ingest_bench_accounts_for_every_reading(restart: bool) -> None:
    args = ["bench", "ingest", *TOY, *(["--restart-broker"] if restart else [])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert KEYS <= set(report), KEYS - set(report)
    assert report["bench"] == "ingest"
    assert report["lost"] == 0 and report["duplicates"] == 0
    assert report["stored"] == report["generated"] > 0
    assert report["broker_restarts"] == (1 if restart else 0)
    assert report["baseline_msgs_per_s"] > 0 and report["ratio"] > 0


def test_ingest_bench_refuses_nonsense_arguments() -> None:
    result = CliRunner().invoke(app, ["bench", "ingest", "--devices", "1", "--gateways", "2"])
    assert result.exit_code == 2
    assert "--gateways must not exceed --devices" in result.output
