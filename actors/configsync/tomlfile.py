"""Writing a node's config document back to its TOML file, whole or not at all.

The standard library reads TOML but does not write it; config documents are plain tables of
scalars and lists, so a small writer suffices. The file is replaced by write-new-then-rename
(:func:`~.files.replace_file`), so a crash leaves the old file or the new one, never half of each.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigSyncError
from .files import replace_file

_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ConfigSyncError(f"{path}: integer {value} does not fit TOML's 64 bits")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, f"{path}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        items = (f"{_key(k)} = {_value(v, f'{path}.{k}')}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(items) + "}"
    raise ConfigSyncError(f"{path}: {type(value).__name__} cannot be written to TOML")


def _table(doc: Mapping[str, Any], header: tuple[str, ...], lines: list[str]) -> None:
    subtables = []
    if header:
        lines.append("[" + ".".join(_key(k) for k in header) + "]")
    for key, value in doc.items():
        if not isinstance(key, str):
            raise ConfigSyncError(f"{'.'.join(header) or 'top level'}: key {key!r} is not a string")
        if value is None:  # TOML has no null: an absent key reads back as the schema's default
            continue
        if isinstance(value, dict):
            subtables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value, '.'.join((*header, key)))}")
    for key, value in subtables:
        if lines:
            lines.append("")
        _table(value, (*header, key), lines)


def to_toml(doc: Mapping[str, Any]) -> str:
    """The TOML text of a config document (``None`` values are left out)."""
    lines: list[str] = []
    _table(doc, (), lines)
    return "\n".join(lines) + "\n"


def write_config_file(path: str | Path, doc: Mapping[str, Any]) -> None:
    """Replace ``path`` with the TOML of ``doc`` atomically (same mode as the old file, or 0644)."""
    replace_file(Path(path), to_toml(doc).encode("utf-8"))
