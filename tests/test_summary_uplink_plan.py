"""The node's [summary] config on the uplink: per-metric windows, no sketch without quantiles, a summary tier."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_summary_message import FLEET, HUB, T0_MS, frame

from pymonitor.actors.hub.core import HubCore, WriteFrames
from pymonitor.actors.runtime.intake import Inbound
from pymonitor.actors.summary.config import MetricSummary, SummarySection, parse_summary_config
from pymonitor.actors.summary.errors import SummaryError
from pymonitor.actors.summary.summarizer import to_summaries
from pymonitor.actors.summary.uplink_plan import uplink_summarizers
from pymonitor.broker import topics
from pymonitor.deploy.config import ConfigError, parse_config
from pymonitor.messages import ReadingBatch, SummaryBatch, decode, encode
from pymonitor.store import HubStore
from pymonitor.store.raw_tier import DAY_MS, RawTier

HOUR_MS = 3_600_000


def two_hours() -> ReadingBatch:
    """Two devices, three metrics, a sample a minute for two hours."""
    ts, index, seqs = [], [], []
    for k in range(120):
        for d in (0, 1):
            ts.append(T0_MS + k * 60_000 + d)
            index.append(d)
            seqs.append(k)
    n = len(ts)
    return ReadingBatch.build(
        node="gw-1", session=7, seq=1, devices=["a", "b"], metrics=["temp", "volts", "hum"],
        device_index=index, device_seq=seqs, ts_ms=ts,
        values=[[20 + 0.01 * (i % 50) for i in range(n)], [3.3 - 0.001 * (i % 7) for i in range(n)],
                [50 + 0.1 * (i % 9) for i in range(n)]],
        value_scale=[0.01, 0.001, 0.1],
    )  # fmt: skip


def frames_of(section: SummarySection | None) -> list[SummaryBatch]:
    """One frame per summarizer, holding every window of the two hours (closed with a huge min_rows)."""
    made = uplink_summarizers(section, node="gw-1", session=7, default_window_ms=HOUR_MS, min_rows=10**6)
    out = []
    for summarizer in made:
        assert summarizer.add(two_hours(), 2**62) is None
        last = summarizer.flush()
        assert last is not None
        out.append(last)
    return out


def test_without_config_one_summarizer_sends_every_metric_hourly_with_sketches() -> None:
    (only,) = frames_of(None)
    assert only.window_ms == HOUR_MS and sorted(only.metrics) == ["hum", "temp", "volts"]
    assert all(only.sketches) and only.rows == 2 * 3 * 2


def test_each_window_size_gets_its_own_frames_and_a_metric_without_quantiles_sends_no_sketch() -> None:
    section = SummarySection(
        metrics={
            "volts": MetricSummary(size_s=1800.0, functions=["min", "last"]),
            "temp": MetricSummary(size_s=3600.0, functions=["avg", "p90"]),
        }
    )
    hourly, half_hourly = frames_of(section)
    assert hourly.window_ms == HOUR_MS and sorted(hourly.metrics) == ["hum", "temp"]
    assert all(hourly.sketches)  # temp asks p90; hum is not configured: everything
    assert half_hourly.window_ms == HOUR_MS // 2 and half_hourly.metrics == ["volts"]
    assert half_hourly.rows == 2 * 4 and not any(half_hourly.sketches)
    back = decode(encode(half_hourly))
    assert isinstance(back, SummaryBatch)
    summaries = to_summaries(back)
    assert all(s.sketch is None for _, _, s in summaries)
    device, metric, first = summaries[0]
    assert (device, metric, first.count, first.value("min")) == ("a", "volts", 30, pytest.approx(3.294))
    with pytest.raises(SummaryError, match="p50 needs a sketch"):
        first.value("p50")


def test_a_window_without_sketch_costs_fewer_bytes() -> None:
    with_sketch = frames_of(SummarySection(metrics={"temp": MetricSummary(size_s=3600.0, functions=["avg", "p50"])}))[0]
    without = frames_of(SummarySection(metrics={"temp": MetricSummary(size_s=3600.0, functions=["avg"])}))[0]
    assert len(encode(without)) < len(encode(with_sketch))


@pytest.mark.parametrize("window", ["sliding", "count", "above"])
def test_only_tumbling_windows_go_on_the_uplink(window: str) -> None:
    section = parse_summary_config({"metrics": {"temp": {"window": window, "step_s": 60, "count": 5, "threshold": 1}}})
    with pytest.raises(SummaryError, match=r"\[summary.metrics.temp\].window: .*only 'tumbling'"):
        uplink_summarizers(section, node="gw", session=1, default_window_ms=HOUR_MS, min_rows=1)


def test_the_node_config_carries_the_summary_table_and_names_a_bad_key() -> None:
    config = parse_config(
        {"node": {"name": "gw"}, "summary": {"metrics": {"temp": {"size_s": 600, "functions": ["max"]}}}}, "node.toml"
    )
    assert config.summary is not None and config.summary.metrics["temp"].size_s == 600.0
    with pytest.raises(ConfigError, match=r"node.toml at \[summary.metrics.temp\].functions\[0\]"):
        parse_config({"node": {"name": "gw"}, "summary": {"metrics": {"temp": {"functions": ["median"]}}}}, "node.toml")
    with pytest.raises(ConfigError, match=r"node.toml at \[summary.metrics.temp\].window: .*tumbling"):
        parse_config(
            {"node": {"name": "gw"}, "summary": {"metrics": {"temp": {"window": "count", "count": 3}}}}, "node.toml"
        )


def test_the_summary_tier_keeps_summary_frames_serves_overlapping_windows_whole_and_expires(tmp_path: Path) -> None:
    tier = RawTier(tmp_path / "node.summaries", keep_days=90)
    (hourly,) = frames_of(None)  # windows T0 and T0 + 1 h
    payload = encode(hourly)
    tier.add(payload, T0_MS, T0_MS + 2 * HOUR_MS - 1, rows=hourly.rows, readings=0, now_ms=T0_MS)
    assert tier.window(T0_MS + HOUR_MS + 5, T0_MS + HOUR_MS + 10) == [payload]  # overlaps the second window
    assert tier.window(T0_MS + 2 * HOUR_MS, T0_MS + 3 * HOUR_MS) == []
    assert tier.window(T0_MS, T0_MS + HOUR_MS, {"nobody"}) == []
    with pytest.raises(ValueError, match="outside"):
        tier.add(payload, T0_MS, T0_MS + HOUR_MS, rows=hourly.rows, readings=0, now_ms=T0_MS)
    assert tier.expire(T0_MS + 89 * DAY_MS) == 0 and len(tier) == 1
    assert tier.expire(T0_MS + 91 * DAY_MS) == 1 and len(tier) == 0
    tier.close()


def test_the_hub_keeps_a_window_once_when_a_node_sends_it_again_in_a_new_frame(tmp_path: Path) -> None:
    hub = HubCore(FLEET, HUB, flush_max_frames=1)
    store = HubStore(tmp_path / "hub.db")
    first = frame(seq=5)
    for now, msg in ((T0_MS, first), (T0_MS + 1, dataclasses.replace(first, seq=9))):
        inbound = Inbound(topics.up(FLEET, "gw-1", "summaries"), encode(msg))
        [write] = [e for e in hub.on_frame(inbound, now) if isinstance(e, WriteFrames)]
        store.write_frames(write.frames, now, write.traffic)
    assert hub.counters.summary_frames == 2  # two frames...
    assert len(store.summaries()) == first.rows  # ...one copy of each window
    store.close()
