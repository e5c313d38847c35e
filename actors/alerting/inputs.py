"""Hub messages as alerting inputs: reading batches as observations, ``event.v1`` as alerts."""

from __future__ import annotations

import math
from collections.abc import Mapping

from pymonitor.messages import Event, ReadingBatch

from .alert import Alert, Observation, Severity, fingerprint

EVENT_SEVERITY: Mapping[str, Severity] = {
    "info": "info",
    "warning": "warning",
    "error": "critical",
    "critical": "critical",
}
"""An ``event.v1`` severity as an alert severity; ``debug`` events never alert."""
RESOLVING_EVENT_STATES = frozenset({"resolved", "ok", "cleared"})
"""An event with ``labels.state`` in these resolves the alert of the same kind and subject."""


def observations(batch: ReadingBatch) -> list[Observation]:
    """The measured values of a reading batch (NaN means not measured and is skipped)."""
    cols = batch.columns()
    out: list[Observation] = []
    for m, metric in enumerate(batch.metrics):
        column = cols.values[m]
        for row in range(batch.rows):
            value = float(column[row])
            if math.isnan(value):
                continue
            device = batch.devices[cols.device_index[row]]
            out.append(Observation(node=batch.node, device=device, metric=metric, ts_ms=cols.ts_ms[row], value=value))
    out.sort(key=lambda o: o.ts_ms)
    return out


def event_alert(event: Event, site: str | None = None) -> Alert | None:
    """``event.v1`` as an alert: rule ``event.<kind>``, subject node/source, resolved by ``labels.state``;
    ``site`` (the node's, from config) is a label unless the event names its own."""
    severity = EVENT_SEVERITY.get(event.severity)
    if severity is None:
        return None
    labels = {k: v for k, v in event.labels.items() if k != "state"}
    labels["node"] = event.node
    if site and "site" not in labels:
        labels["site"] = site
    if event.source:
        labels["device"] = event.source
    rule = f"event.{event.kind}"
    resolved = event.labels.get("state", "").lower() in RESOLVING_EVENT_STATES
    return Alert(
        fingerprint=fingerprint(rule, labels),
        rule=rule,
        labels=labels,
        severity=severity,
        state="resolved" if resolved else "firing",
        summary=event.message or event.kind,
        value=event.value,
        starts_ms=event.ts_ms,
        ends_ms=event.ts_ms if resolved else None,
    )
