"""Edge summaries: windows over a series, mergeable summaries, quantile sketches, retention tiers.

Pure cores (no pykka, no clock reads; time comes in as int ms): :func:`summarise` turns sorted
``(ts_ms, value)`` arrays into one :class:`Summary` per window (tumbling, sliding, by count, or
while a condition holds); summaries merge exactly (moments, extremes, gaps, :class:`DDSketch`), so
:func:`rollup` of 1-minute summaries equals the hour summarised directly.

Errors: every bad input (out-of-order timestamps, an impossible window, an unknown function, a
malformed serialised sketch) raises the one :class:`SummaryError`, a ``ValueError``, saying where.
"""

from .aggregate import rollup, summarise
from .errors import SummaryError
from .sketch import DDSketch, sketch_of
from .summary import BASIC_FUNCTIONS, Summary, merge_all, parse_function
from .windows import Condition, CountWindow, Sliding, StateSeries, Tumbling, WhileState, Window, above, below

__all__ = [
    "BASIC_FUNCTIONS",
    "Condition",
    "CountWindow",
    "DDSketch",
    "Sliding",
    "StateSeries",
    "Summary",
    "SummaryError",
    "Tumbling",
    "WhileState",
    "Window",
    "above",
    "below",
    "merge_all",
    "parse_function",
    "rollup",
    "sketch_of",
    "summarise",
]
