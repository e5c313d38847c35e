"""JSON views of messages for people and scripts (CLI, logs, REST); never the wire format.

A reading batch is shown as rows (device name, seq, ts, one value per metric; NaN as null),
bytes as hex.
"""

from __future__ import annotations

import math
from typing import Any

from .readings import ReadingBatch
from .registry import spec_for_class


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_view(msg: object) -> dict[str, Any]:
    """A JSON-ready dict: ``{"t": tag, ...fields}``; batches expanded into readable rows."""
    spec = spec_for_class(type(msg))
    if spec is None:
        raise TypeError(f"{type(msg).__name__} is not a registered message")
    view: dict[str, Any] = {"t": spec.tag}
    if isinstance(msg, ReadingBatch):
        cols = msg.columns()
        view.update(node=msg.node, session=msg.session, seq=msg.seq, backfill=msg.backfill, metrics=msg.metrics)
        view["rows"] = [
            [msg.devices[d], s, ts, *(_plain(col[i]) for col in cols.values)]
            for i, (d, s, ts) in enumerate(zip(cols.device_index, cols.device_seq, cols.ts_ms, strict=True))
        ]
        return view
    for field in spec.fields:
        view[field.name] = _plain(getattr(msg, field.name))
    return view
