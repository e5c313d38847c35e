"""The summarizers a node's uplink runs, from its ``[summary]`` config: one per window size.

A ``summary.batch.v1`` frame carries windows of one fixed size, so metrics configured with
different ``size_s`` get summarizers of their own; every metric not configured goes in the
default one (the ``[simulator].summary_window_s`` window, all functions including quantiles).
A configured metric whose ``functions`` ask no quantile sends no sketch, about half the bytes
of a window. Only tumbling windows go on the uplink: sliding, count and condition windows have
no fixed bounds to put in a frame (they are for ``pymonitor summarize`` and the hub's queries),
and a node config asking for one on the uplink is refused naming the key.
"""

from __future__ import annotations

from .config import SummarySection
from .errors import SummaryError
from .summarizer import Summarizer


def check_uplink(section: SummarySection) -> None:
    """Raise :class:`SummaryError` naming the first metric the uplink cannot summarise."""
    for name, metric in section.metrics.items():
        if metric.window != "tumbling":
            raise SummaryError(
                f"[summary.metrics.{name}].window: the uplink sends fixed windows, so only 'tumbling' works "
                f"on a node, got {metric.window!r}"
            )


def uplink_summarizers(
    section: SummarySection | None, *, node: str, session: int, default_window_ms: int, min_rows: int
) -> list[Summarizer]:
    """The summarizers for ``section`` (None: one, all metrics at the default window), default first."""
    section = section or SummarySection()
    check_uplink(section)
    by_window: dict[int, set[str]] = {}
    for name, metric in section.metrics.items():
        by_window.setdefault(round((metric.size_s or 0.0) * 1000), set()).add(name)
    unsketched = frozenset(name for name, metric in section.metrics.items() if not metric.quantiles)
    others = frozenset(name for window, names in by_window.items() if window != default_window_ms for name in names)

    def make(window_ms: int, include: frozenset[str] | None, exclude: frozenset[str]) -> Summarizer:
        return Summarizer(
            node=node, session=session, window_ms=window_ms, alpha=section.alpha, min_rows=min_rows,
            include=include, exclude=exclude, unsketched=unsketched,
        )  # fmt: skip

    made = [make(default_window_ms, None, others)]
    made += [make(w, frozenset(names), frozenset()) for w, names in sorted(by_window.items()) if w != default_window_ms]
    return made
