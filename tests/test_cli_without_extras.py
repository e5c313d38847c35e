"""The core install (no ``[alerts]``/``[api]`` extras) still runs the CLI; the extra-only commands name what to install.

CI installs every extra, so the missing packages are hidden from a child interpreter by an import hook
that refuses them, the way a Raspberry Pi with only ``pip install pymonitor`` would.
"""

from __future__ import annotations

import subprocess
import sys

EXTRAS_ONLY = ("holidays", "httpx", "fastapi", "starlette", "uvicorn")

HIDE_EXTRAS = f"""
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
from pymonitor.cli.main import app
app(sys.argv[1:], prog_name="pymonitor")
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE_EXTRAS, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_core_commands_run_without_the_extras() -> None:
    listed = _cli("--help")
    assert listed.returncode == 0, listed.stderr
    assert "demo" in listed.stdout and "fleet" in listed.stdout
    assert "pip install 'pymonitor[alerts]'" in listed.stdout
    assert _cli("demo", "--help").returncode == 0
    version = _cli("version")
    assert version.returncode == 0 and version.stdout.strip()


def test_an_extra_only_command_says_which_extra_to_install() -> None:
    alerts = _cli("alerts", "list", "--db", "x.db")
    assert alerts.returncode == 2
    assert "pymonitor alerts needs pip install 'pymonitor[alerts]'" in alerts.stderr
    assert "holidays" in alerts.stderr
    api = _cli("api", "serve")
    assert api.returncode == 2 and "pymonitor[alerts,api]" in api.stderr
    bench = _cli("bench", "alerts")
    assert bench.returncode == 2 and "bench alerts needs holidays, which is in an extra" in bench.stderr


def test_with_the_extras_the_same_commands_are_the_real_ones() -> None:
    real = subprocess.run(
        [sys.executable, "-m", "pymonitor.cli.main", "alerts", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert real.returncode == 0 and "ack" in real.stdout and "silence" in real.stdout
