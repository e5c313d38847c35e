"""plan_uplink: slower or lossier links get smaller, compressed frames; an unknown link still sends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.uplink import LinkEstimate, UplinkError, UplinkPlan, plan_uplink
from pymonitor.actors.uplink.policy import (
    BROADBAND_BYTES_PER_S,
    IN_FLIGHT_MAX_S,
    MAX_ROWS,
    MIN_ROWS,
    PROBE_BYTES,
)

ROW_BYTES = 32.0


def link(goodput: float | None, loss: float = 0.0, in_flight: int = 0) -> LinkEstimate:
    return LinkEstimate(
        rtt_ms=None if goodput is None else 600.0,
        rttvar_ms=None if goodput is None else 100.0,
        goodput_bytes_per_s=goodput,
        loss=loss,
        ack_timeout_ms=4_000,
        in_flight_bytes=in_flight,
    )


def plan(estimate: LinkEstimate, backlog: int = 0, tick_s: float = 1.0, **kw: bool) -> UplinkPlan:
    return plan_uplink(estimate, backlog_bytes=backlog, tick_s=tick_s, bytes_per_row=ROW_BYTES, **kw)


goodputs = st.floats(100, 50_000_000)
losses = st.floats(0, 0.5)


@given(a=goodputs, b=goodputs, loss=losses)
def test_a_slower_link_never_gets_bigger_frames(a: float, b: float, loss: float) -> None:
    slow, fast = sorted((a, b))
    assert plan(link(slow, loss)).max_rows_per_frame <= plan(link(fast, loss)).max_rows_per_frame


@given(goodput=goodputs, a=losses, b=losses)
def test_a_lossier_link_never_gets_bigger_frames(goodput: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert plan(link(goodput, high)).max_rows_per_frame <= plan(link(goodput, low)).max_rows_per_frame


@given(goodput=st.one_of(st.none(), goodputs), loss=losses, backlog=st.integers(0, 10**10), tick_s=st.floats(0.1, 60))
def test_rows_stay_within_the_frame_format(goodput: float | None, loss: float, backlog: int, tick_s: float) -> None:
    p = plan(link(goodput, loss), backlog, tick_s)
    assert MIN_ROWS <= p.max_rows_per_frame <= MAX_ROWS
    assert p.send_budget_bytes >= p.max_rows_per_frame * ROW_BYTES  # an empty window always takes a whole frame
    assert p.codec in ("zstd", None)


def test_the_profiles_get_what_they_can_carry() -> None:
    edge = plan(link(6_000, 0.03))
    satellite = plan(link(32_000, 0.005))
    broadband = plan(link(1_250_000 * 4, 0.0))
    assert edge.max_rows_per_frame < satellite.max_rows_per_frame < broadband.max_rows_per_frame == MAX_ROWS
    assert edge.max_rows_per_frame * ROW_BYTES <= 2 * 6_000  # at most ~2 s of airtime
    assert (edge.codec, satellite.codec, broadband.codec) == ("zstd", "zstd", None)
    assert "goodput 6000 B/s" in edge.reason and "zstd" in edge.reason


@pytest.mark.parametrize("goodput", [6_000, 48_000, BROADBAND_BYTES_PER_S * 0.99])
def test_anything_slower_than_broadband_compresses(goodput: float) -> None:
    assert plan(link(goodput)).codec == "zstd"


def test_a_fast_link_compresses_when_metered_or_far_behind() -> None:
    fast = link(BROADBAND_BYTES_PER_S * 2)
    assert plan(fast).codec is None
    assert plan(fast, metered=True).codec == "zstd"
    assert plan(fast, backlog=int(BROADBAND_BYTES_PER_S * 2 * 3600)).codec == "zstd"  # an hour to drain


def test_an_unknown_link_still_sends_and_probes() -> None:
    p = plan(link(None))
    assert p.codec == "zstd"
    assert p.send_budget_bytes >= PROBE_BYTES - p.max_rows_per_frame * ROW_BYTES
    assert p.send_budget_bytes > 0
    assert "not measured" in p.reason
    assert p.ack_timeout_ms == 4_000


def test_an_unknown_link_keeps_one_probe_in_flight_at_most() -> None:
    assert plan(link(None, in_flight=PROBE_BYTES)).send_budget_bytes == 0


def test_budget_follows_goodput_times_tick_with_headroom() -> None:
    p = plan(link(10_000), tick_s=1.0)
    assert 10_000 < p.send_budget_bytes <= 2 * 10_000


def test_a_full_window_waits_and_a_nearly_full_one_still_takes_a_frame() -> None:
    window = int(10_000 * IN_FLIGHT_MAX_S)
    assert plan(link(10_000, in_flight=window)).send_budget_bytes == 0
    nearly = plan(link(10_000, in_flight=window - 1))
    assert nearly.send_budget_bytes == nearly.max_rows_per_frame * ROW_BYTES


def test_a_bad_tick_is_refused() -> None:
    with pytest.raises(UplinkError, match="tick_s"):
        plan(link(1_000), tick_s=0)
