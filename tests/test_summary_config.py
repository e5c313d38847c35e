"""The [summary] table: defaults, the engine window it gives, and errors that name the key."""

from __future__ import annotations

import numpy as np
import pytest

from pymonitor.actors.summary import Sliding, StateSeries, SummaryError, Tumbling, WhileState, summarise
from pymonitor.actors.summary.config import parse_summary_config


def test_a_metric_with_defaults_is_a_one_minute_tumbling_window() -> None:
    section = parse_summary_config({"metrics": {"temperature_c": {}}})
    metric = section.metrics["temperature_c"]
    assert metric.window_spec() == Tumbling(60_000)
    assert not metric.quantiles


def test_sliding_and_while_configs_build_working_windows() -> None:
    section = parse_summary_config(
        {
            "alpha": 0.02,
            "metrics": {
                "flow": {"window": "sliding", "size_s": 300, "step_s": 60, "functions": ["avg", "p95"]},
                "pressure": {"window": "while", "state": "pump_on"},
            },
        }
    )
    assert section.metrics["flow"].window_spec() == Sliding(300_000, 60_000)
    assert section.metrics["flow"].quantiles
    pump = StateSeries(np.array([0]), np.array([True]))
    window = section.metrics["pressure"].window_spec(pump)
    assert isinstance(window, WhileState)
    assert summarise([1, 2], [1.0, 2.0], window)[0].count == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"metrics": {"temperature_c": {"window": "hourly"}}},
            r"\[summary.metrics.temperature_c\].window: expected one of",
        ),
        ({"metrics": {"t": {"size_s": "1m"}}}, r"\[summary.metrics.t\].size_s: expected float"),
        ({"metrics": {"t": {"colour": 1}}}, r"\[summary.metrics.t\]: unknown key 'colour'"),
        ({"metrics": {"t": {"window": "sliding"}}}, r"\[summary.metrics.t\].step_s: required"),
        ({"metrics": {"t": {"window": "sliding", "size_s": 60, "step_s": 120}}}, r"\[summary.metrics.t\].step_s: "),
        ({"metrics": {"t": {"window": "above"}}}, r"\[summary.metrics.t\].threshold: required"),
        ({"metrics": {"t": {"functions": ["avg", "mode"]}}}, r"\[summary.metrics.t\].functions\[1\]: unknown function"),
        ({"metrics": {"t": {"size_s": -1.0}}}, r"\[summary.metrics.t\].size_s: expected float >"),
        ({"alpha": 1.5}, r"\[summary\].alpha"),
        ({"metrics": []}, r"\[summary\].metrics: expected a table"),
    ],
)
def test_bad_config_is_refused_naming_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(SummaryError, match=message):
        parse_summary_config(data)
