"""The wheel a user installs: built from this tree, installed in a scratch venv, every module imported."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = ("package", "actors", "messages", "broker", "deploy", "simulators", "store", "cli", "bench", "api")


def _source_modules() -> set[str]:
    """Every module the source tree should ship, by its installed name."""
    names = set()
    for folder in MAPPED:
        prefix = "pymonitor" if folder == "package" else f"pymonitor.{folder}"
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            names.add(".".join((prefix, *rel)))
    return names


@pytest.mark.timeout(600)
def test_wheel_installs_in_a_scratch_venv_and_every_module_imports(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(wheels.glob("pymonitor-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # Install before the dependencies' path is added, or pip would see the test env's copy as installed.
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    # Dependencies come from the test environment (no download); its .pth hooks are not run, so an
    # editable install of the checkout cannot shadow the wheel.
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site_dir) / "test-deps.pth").write_text("\n".join(deps) + "\n")
    expected = sorted(_source_modules())
    script = (
        "import importlib, sys\n"
        f"names = {expected!r}\n"
        "for n in names:\n"
        "    m = importlib.import_module(n)\n"
        f"    assert m.__file__ and m.__file__.startswith({str(env_dir)!r}), (n, m.__file__)\n"
        "print(len(names))\n"
    )
    out = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip()) == len(expected)
    cli = subprocess.run([str(env_dir / "bin" / "pymonitor"), "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "broker", "hub", "simulate", "node", "pub", "sub", "stats", "bench"):
        assert command in cli.stdout
