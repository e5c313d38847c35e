"""Lists the sub-packages of every top-level folder mapped in pyproject's package-dir.

pyproject.toml holds the metadata; this file exists only because setuptools cannot
discover sub-packages under several mapped roots by itself.
"""

import tomllib
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
PACKAGE_DIR: dict[str, str] = tomllib.loads((HERE / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-dir"
]


def _packages() -> list[str]:
    found = []
    for name, folder in PACKAGE_DIR.items():
        root = HERE / folder
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root).parts
            if "__pycache__" in rel:
                continue
            found.append(".".join((name, *rel)))
    return found


setup(packages=_packages())
