"""Notification texts per receiver style: one SMS that fits, a short push, or the full text.

A storm must reach a phone as one readable SMS, so the SMS style lists alerts one per line while
they fit the receiver's segment budget and otherwise summarises ("14 alerts at 3 sites: 9x
battery low (Site A, Site B), ..."); email, webhooks and logs get every alert in full.
"""

from __future__ import annotations

from collections.abc import Sequence

from .alert import Alert, Severity, severity_rank
from .config import Receiver
from .sms import GSM_PART_SEPTETS, GSM_SINGLE_SEPTETS, alert_line, batch, fit, segments, summarize_storm, transliterate

PUSH_LINES = 10
"""A push shows this many alerts, then "and N more": a lock screen shows a few lines at most."""
_TAG = {"info": "INFO", "warning": "WARN", "critical": "CRIT", "emergency": "EMERG"}


def worst(alerts: Sequence[Alert]) -> Severity:
    """The most urgent severity among ``alerts`` (``info`` for none)."""
    return max((a.severity for a in alerts), key=severity_rank, default="info")


def subject(firing: Sequence[Alert], resolved: Sequence[Alert], prefix: str = "") -> str:
    """``[CRIT] 14 firing, 2 resolved: battery low`` (the rule of the first firing alert names it)."""
    parts = [f"{len(firing)} firing"] if firing else []
    parts += [f"{len(resolved)} resolved"] if resolved else []
    first = (firing or resolved)[0] if (firing or resolved) else None
    name = f": {first.rule.replace('_', ' ')}" if first is not None else ""
    tag = _TAG[worst(firing)] if firing else "OK"
    return f"{prefix}[{tag}] {', '.join(parts) or 'nothing'}{name}"


def full_text(firing: Sequence[Alert], resolved: Sequence[Alert], header: str = "") -> str:
    """Every alert on its own line with its labels: what an email or a webhook carries."""
    lines = [header] if header else []
    for title, alerts in (("Firing", firing), ("Resolved", resolved)):
        if alerts:
            lines.append(f"{title} ({len(alerts)}):")
            for alert in alerts:
                labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
                lines.append(f"- [{alert.severity}] {alert.summary} ({labels}) id={alert.fingerprint}")
    return "\n".join(lines)


def push_text(firing: Sequence[Alert], resolved: Sequence[Alert], header: str = "") -> str:
    lines = [header] if header else []
    shown = [*firing, *resolved]
    lines += [alert_line(a) for a in shown[:PUSH_LINES]]
    if len(shown) > PUSH_LINES:
        lines.append(f"... and {len(shown) - PUSH_LINES} more")
    return "\n".join(lines)


def sms_text(firing: Sequence[Alert], resolved: Sequence[Alert], max_segments: int = 1, header: str = "") -> str:
    """GSM-7 text within ``max_segments`` parts: the alerts one per line if they fit, else a storm summary."""
    head = transliterate(header + " ") if header else ""
    alerts = [*firing, *resolved]
    packed = batch(alerts, max_segments)
    if len(packed) == 1 and segments(head + packed[0]) <= max_segments:
        return head + packed[0]
    budget = GSM_SINGLE_SEPTETS if max_segments == 1 else GSM_PART_SEPTETS * max_segments
    tail = f", {len(resolved)} resolved" if firing and resolved else ""
    summary = summarize_storm(firing or resolved, max_chars=max(budget - len(head) - len(tail), 20))
    if not firing:
        summary = "OK " + summary
    return fit(head + summary + tail, max_segments)


def render(receiver: Receiver, firing: Sequence[Alert], resolved: Sequence[Alert], header: str = "") -> str:
    """The text ``receiver`` gets about these alerts, in its channel's style."""
    if receiver.style == "sms":
        return sms_text(firing, resolved, receiver.max_segments, header)
    if receiver.style == "push":
        return push_text(firing, resolved, header)
    return full_text(firing, resolved, header)
