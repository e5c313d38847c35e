"""PyMonitor: monitoring for things that are far away, numerous and badly connected.

Sub-packages: ``messages`` (typed CBOR messages), ``broker`` (MQTT), ``actors`` (roles),
``store`` (SQLite), ``simulators`` (fleet models), ``deploy`` (config), ``cli``, ``bench``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pymonitor")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
