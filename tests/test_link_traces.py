"""Delivery schedules: mahimahi traces, the token bucket and a direction's delay, jitter and loss.

All pure arithmetic, checked exactly; the recorded traces in ../shared/data are used when present.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.simulators.link import DeliveryTrace, LinkDirection, LinkError, TokenBucket, TraceShaper
from pymonitor.simulators.link.traces import OPPORTUNITY_BYTES, retransmit_timeout_s

TINY = DeliveryTrace((1, 1, 3, 6))  # period 6 ms: opportunities at 1, 1, 3, 6, 7, 7, 9, 12, 13, ...


def shared_links() -> Path:
    """The recorded traces, or a skip saying why (a user's clone has no shared data)."""
    root = Path(os.environ.get("PM_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    links = root / "links"
    if not links.is_dir():
        pytest.skip(f"no shared link traces at {links} (set PM_SHARED_DATA to a folder holding links/)")
    return links


def test_trace_opportunities_repeat_after_the_last_offset() -> None:
    assert [TINY.time_ms(i) for i in range(9)] == [1, 1, 3, 6, 7, 7, 9, 12, 13]
    assert TINY.first_index_at(0) == 0
    assert TINY.first_index_at(4) == 3
    assert TINY.first_index_at(6) == 3  # the first repeat's last offset, not the second's first
    assert TINY.first_index_at(12) == 7
    assert TINY.first_index_at(12.5) == 8
    assert TINY.mean_rate_bps == 4 * 1500 * 8 * 1000 / 6


@pytest.mark.parametrize(
    ("start_ms", "nbytes", "finish_ms"),
    [
        (0, 1, 1),
        (0, 1500, 1),
        (0, 1501, 1),  # two packets in the same millisecond
        (0, 3001, 3),
        (0, 4501, 6),
        (0, 6001, 7),  # into the second repeat
        (2, 1, 3),
        (6, 1, 6),
        (6.5, 1, 7),
        (12, 1, 12),
        (10, 0, 10),
    ],
)
def test_trace_finish_time_is_exact(start_ms: float, nbytes: int, finish_ms: float) -> None:
    assert TINY.finish_ms(start_ms, nbytes) == finish_ms


def test_small_writes_share_an_opportunity_and_an_unused_one_is_lost() -> None:
    shaper = TraceShaper(TINY)
    assert shaper.reserve(0, 1000) == 0.001
    assert shaper.reserve(0, 500) == 0.001  # the rest of the same 1500-byte opportunity
    assert shaper.reserve(0, 1) == 0.001  # the second opportunity at 1 ms
    assert shaper.reserve(0.0045, 1) == 0.006  # the one at 3 ms went by unused


def _oracle(offsets: list[int], requests: list[tuple[int, int]]) -> list[int]:
    """Byte by byte over the expanded opportunities: the slow, obvious model of a trace link."""
    period = offsets[-1]
    opportunities = [r * period + o for r in range(200) for o in offsets]
    room = [OPPORTUNITY_BYTES] * len(opportunities)
    cursor, finishes = 0, []
    for now, nbytes in requests:
        while opportunities[cursor] < now:
            cursor += 1  # FIFO: never go back before what earlier bytes used
        last = cursor
        for _ in range(nbytes):
            while room[cursor] == 0:
                cursor += 1
            room[cursor] -= 1
            last = cursor
        finishes.append(max(now, opportunities[last]) if nbytes else now)
    return finishes


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 20), min_size=1, max_size=8).map(sorted).filter(lambda o: o[-1] > 0),
    steps=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4000)), min_size=1, max_size=8),
)
def test_trace_shaper_agrees_with_a_byte_by_byte_model(offsets: list[int], steps: list[tuple[int, int]]) -> None:
    now, requests = 0, []
    for gap, nbytes in steps:
        now += gap
        requests.append((now, nbytes))
    shaper = TraceShaper(DeliveryTrace(tuple(offsets)))
    got = [shaper.reserve(t / 1000, n) * 1000 for t, n in requests]
    assert got == pytest.approx(_oracle(offsets, requests))


@settings(max_examples=50, deadline=None)
@given(offsets=st.lists(st.integers(0, 10**6), min_size=1, max_size=30).map(sorted).filter(lambda o: o[-1] > 0))
def test_a_trace_file_reads_back_what_was_written(tmp_path_factory: pytest.TempPathFactory, offsets: list[int]) -> None:
    path = tmp_path_factory.mktemp("trace") / "link.up"
    path.write_text("".join(f"{o}\n" for o in offsets))
    assert DeliveryTrace.from_file(path).offsets_ms == tuple(offsets)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\n2\nabc\n", r"line 3: expected a millisecond offset \(integer\), got 'abc'"),
        ("1\n2.5\n", r"line 2: expected a millisecond offset"),
        ("1\n-4\n", r"line 2: expected a millisecond offset"),
        ("5\n3\n", r"line 2: offset 3 is before the previous one \(5\)"),
        ("", r"at least one delivery opportunity"),
        ("0\n0\n", r"the last offset must be > 0"),
    ],
)
def test_a_bad_trace_file_is_refused_with_the_line_number(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.up"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        DeliveryTrace.from_file(path)


def test_recorded_cellular_traces_load_and_have_3g_capacity() -> None:
    links = shared_links()
    up = DeliveryTrace.from_file(links / "TMobile-UMTS-driving.up")
    down = DeliveryTrace.from_file(links / "Verizon-EVDO-driving.down")
    assert len(up.offsets_ms) == len((links / "TMobile-UMTS-driving.up").read_text().split())
    for trace in (up, down):
        assert 100_000 < trace.mean_rate_bps < 5_000_000  # a 3G-era link, not a LAN
    # driving through a cell edge: some gaps between opportunities last seconds
    assert max(b - a for a, b in zip(up.offsets_ms, up.offsets_ms[1:])) > 2000
    # 1 MB crosses after the trace's opportunities for 667 packets, not by a mean rate
    assert up.finish_ms(0, 1_000_000) == up.time_ms(math.ceil(1_000_000 / 1500) - 1)


def test_token_bucket_books_bytes_in_order_at_its_rate() -> None:
    bucket = TokenBucket(10_000, burst_bytes=1500)  # 10 kB/s
    assert bucket.reserve(0, 1500) == 0  # the burst goes at once
    assert bucket.reserve(0, 10_000) == pytest.approx(1.0)
    assert bucket.reserve(0.5, 5000) == pytest.approx(1.5)  # behind what is already booked
    assert bucket.reserve(10, 1000) == 10  # idle long enough: the burst is back
    with pytest.raises(LinkError, match="at rate_bytes_s"):
        TokenBucket(0)


def test_a_rate_limited_direction_releases_50_kb_over_485_seconds() -> None:
    direction = LinkDirection(shaper=TokenBucket(10_000, burst_bytes=1500), packet_bytes=1460)
    pieces = direction.plan(0.0, 50_000)
    assert sum(size for _, size in pieces) == 50_000
    assert all(size <= 1460 for _, size in pieces)
    sent = 0
    for arrival, size in pieces:
        sent += size
        assert arrival == pytest.approx(max(0.0, (sent - 1500) / 10_000))
    assert pieces[-1][0] == pytest.approx(4.85)
    assert sum(size for arrival, size in pieces if arrival <= 1.0) <= 1500 + 10_000


def test_jitter_never_reorders_bytes_of_a_connection() -> None:
    direction = LinkDirection(delay_s=0.25, jitter_s=0.15, rng=random.Random(7))
    last, arrivals = 0.0, []
    for i in range(500):
        for arrival, _ in direction.plan(i * 0.01, 100, last):
            arrivals.append(arrival)
            last = arrival
    assert arrivals == sorted(arrivals)
    assert all(i * 0.01 + 0.1 <= a for i, a in enumerate(arrivals))
    gaps = {round(a - i * 0.01, 6) for i, a in enumerate(arrivals)}
    assert len(gaps) > 100  # delays really vary
    assert max(gaps) <= 0.4 + 1e-9


def test_loss_costs_whole_retransmission_timeouts_with_backoff() -> None:
    direction = LinkDirection(delay_s=0.1, loss=0.5, packet_bytes=1000, rng=random.Random(3))
    rto = retransmit_timeout_s(0.1, 0.0)
    assert rto == pytest.approx(0.4)  # 200 ms RTT + the 200 ms minimum
    extras = [direction.plan(0.0, 1000)[0][0] - 0.1 for _ in range(400)]
    # k losses in a row cost rto * (1 + 2 + ... + 2^(k-1)) = rto * (2^k - 1)
    losses = [round(math.log2(e / rto + 1), 6) for e in extras]
    assert all(k == int(k) for k in losses)
    assert direction.retransmits == sum(losses)
    assert 150 < losses.count(0) < 250  # about half the packets got through first time
    assert LinkDirection(delay_s=0.1, loss=0).plan(0.0, 5000) == [(0.1, 5000)]
