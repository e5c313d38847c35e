"""What to summarise per metric, declared in the node's TOML as ``[summary.metrics.<name>]``.

Kept here rather than in ``deploy/config.py`` so the summary core stays usable on its own; the
node config can embed :class:`SummarySection` as its ``summary`` field. Errors name the TOML key:
``[summary.metrics.temperature_c].window: expected one of tumbling, ..., got 'hourly'``.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal

import msgspec

from .errors import SummaryError
from .sketch import DEFAULT_ALPHA
from .summary import parse_function
from .windows import CountWindow, Sliding, StateSeries, Tumbling, WhileState, Window, above, below

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
WindowKind = Literal["tumbling", "sliding", "count", "above", "below", "while"]


class MetricSummary(msgspec.Struct, forbid_unknown_fields=True):
    """One metric: its window, the functions to report, what counts as a gap."""

    window: WindowKind = "tumbling"
    size_s: PositiveFloat | None = 60.0  # tumbling and sliding
    step_s: PositiveFloat | None = None  # sliding
    count: Annotated[int, msgspec.Meta(gt=0)] | None = None  # count windows
    threshold: float | None = None  # above / below
    state: str | None = None  # while: the boolean metric that must be on ("pump_on")
    functions: list[str] = msgspec.field(default_factory=lambda: ["min", "max", "avg", "count"])
    max_gap_s: PositiveFloat | None = None

    @property
    def quantiles(self) -> bool:
        return any(parse_function(f) is not None for f in self.functions)

    def window_spec(self, state: StateSeries | None = None) -> Window:
        """The engine's window for this config (``state`` is the series named by ``state``, for while)."""
        ms = round((self.size_s or 0.0) * 1000)
        if self.window == "tumbling":
            return Tumbling(ms)
        if self.window == "sliding":
            return Sliding(ms, round((self.step_s or 0.0) * 1000))
        if self.window == "count":
            return CountWindow(self.count or 0)
        if self.window in ("above", "below"):
            return (above if self.window == "above" else below)(self.threshold or 0.0)
        if state is None:
            raise SummaryError(f"window 'while' needs the {self.state!r} series")
        return WhileState(state, f"while {self.state}")


class SummarySection(msgspec.Struct, forbid_unknown_fields=True):
    alpha: Annotated[float, msgspec.Meta(gt=0, lt=1)] = DEFAULT_ALPHA  # quantile relative accuracy
    metrics: dict[str, MetricSummary] = msgspec.field(default_factory=dict)


_NEEDS: dict[str, str] = {
    "sliding": "step_s",
    "count": "count",
    "above": "threshold",
    "below": "threshold",
    "while": "state",
}
_PATH = re.compile(r" - at `\$((?:\.[A-Za-z0-9_]+|\[\d+\])*)`$")


def _convert(data: Any, kind: type[msgspec.Struct], where: str) -> Any:
    """msgspec.convert with its ``$.a.b`` path rewritten under ``where`` (dict keys are not in msgspec's paths)."""
    try:
        return msgspec.convert(data, kind, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        reason = (text[: match.start()] if match else text).replace("`", "")
        reason = re.sub(r"^Object contains unknown field (\S+)", r"unknown key '\1'", reason)
        kinds = ", ".join(typing.get_args(WindowKind))
        reason = re.sub(r"^Invalid enum value (\S+)", rf"expected one of {kinds}, got \1", reason)
        reason = reason[:1].lower() + reason[1:]
        raise SummaryError(f"{where}{match.group(1) if match else ''}: {reason}") from None


def parse_summary_config(data: dict[str, Any]) -> SummarySection:
    """Validate the ``[summary]`` table; every error names its key."""
    if not isinstance(data, dict):
        raise SummaryError(f"[summary]: expected a table, got {type(data).__name__}")
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        raise SummaryError(f"[summary].metrics: expected a table, got {type(metrics).__name__}")
    section: SummarySection = _convert({k: v for k, v in data.items() if k != "metrics"}, SummarySection, "[summary]")
    for name, raw in metrics.items():
        section.metrics[name] = _convert(raw, MetricSummary, f"[summary.metrics.{name}]")
    for name, metric in section.metrics.items():
        where = f"[summary.metrics.{name}]"
        needed = _NEEDS.get(metric.window)
        if needed and getattr(metric, needed) is None:
            raise SummaryError(f"{where}.{needed}: required for window {metric.window!r}")
        for i, function in enumerate(metric.functions):
            parse_function(function, f"{where}.functions[{i}]")
        if metric.window in ("tumbling", "sliding"):
            try:
                metric.window_spec()
            except SummaryError as exc:
                field = "step_s" if "step_ms" in str(exc) else "size_s"
                raise SummaryError(f"{where}.{field}: {str(exc).split(': ', 1)[1]}") from None
    return section
