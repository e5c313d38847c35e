"""LinkEstimator against its rules and against a simulated link (simulated ms, no wall clock)."""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.uplink import LinkEstimator, UplinkError, plan_uplink
from pymonitor.actors.uplink.estimator import ACK_TIMEOUT_MAX_MS, ACK_TIMEOUT_MIN_MS, IN_FLIGHT_CAP
from pymonitor.actors.uplink.policy import IN_FLIGHT_MAX_S


@dataclass
class SimLink:
    """A serial link: frames queue for airtime at ``rate``, then a one-way delay each way; the hub acks in batches."""

    rate_bytes_per_s: float
    one_way_ms: float
    jitter_ms: float = 0.0
    loss: float = 0.0
    ack_every_ms: int = 200
    seed: int = 1
    free_at_ms: float = 0.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def deliver(self, nbytes: int, now_ms: int) -> int | None:
        """When the ack for a frame sent now reaches the gateway; None if the frame is lost (its airtime is spent)."""
        done = max(now_ms, self.free_at_ms) + nbytes * 1000 / self.rate_bytes_per_s
        self.free_at_ms = done
        if self.rng.random() < self.loss:
            return None
        at_hub = done + self.one_way_ms + self.rng.uniform(0, self.jitter_ms)
        ack_sent = math.ceil(at_hub / self.ack_every_ms) * self.ack_every_ms
        return math.ceil(ack_sent + self.one_way_ms + self.rng.uniform(0, self.jitter_ms))


@dataclass
class Gateway:
    """Just enough of a gateway: an outbox of (key -> sent_ms, attempt), resends after the estimator's timeout."""

    link: SimLink
    est: LinkEstimator = field(default_factory=LinkEstimator)
    pending: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # key -> (nbytes, sent_ms, attempt)
    acks: list[tuple[int, int]] = field(default_factory=list)  # heap of (ack_ms, key)
    seq: int = 0
    now_ms: int = 0
    frames_acked: int = 0
    frames_resent: int = 0  # acked frames that needed more than one attempt
    resends: int = 0

    def send(self, key: int, nbytes: int, now_ms: int, attempt: int) -> None:
        self.pending[key] = (nbytes, now_ms, attempt)
        self.est.sent(key, nbytes, now_ms, attempt)
        ack_ms = self.link.deliver(nbytes, now_ms)
        if ack_ms is not None:
            heapq.heappush(self.acks, (ack_ms, key))

    def new_frame(self, nbytes: int, now_ms: int) -> None:
        self.seq += 1
        self.send(self.seq, nbytes, now_ms, 1)

    def run_until(self, now_ms: int, timeout_ms: int | None = None) -> None:
        """Take the acks due by ``now_ms`` (one ``acked`` call per arrival time), then resend what timed out."""
        self.now_ms = now_ms
        while self.acks and self.acks[0][0] <= now_ms:
            at = self.acks[0][0]
            keys = []
            while self.acks and self.acks[0][0] == at:
                keys.append(heapq.heappop(self.acks)[1])
            self.est.acked(keys, at)
            for key in keys:
                entry = self.pending.pop(key, None)
                if entry is not None:
                    self.frames_acked += 1
                    self.frames_resent += entry[2] > 1
        timeout = timeout_ms if timeout_ms is not None else self.est.ack_timeout_ms()
        for key, (nbytes, sent_ms, attempt) in list(self.pending.items()):
            if now_ms - sent_ms >= timeout:
                self.resends += 1
                self.send(key, nbytes, now_ms, attempt + 1)


# round trip


@settings(max_examples=40, deadline=None)
@given(one_way_ms=st.integers(5, 1000), jitter_frac=st.floats(0, 0.25), seed=st.integers(0, 2**16))
def test_rtt_converges_on_the_link_round_trip(one_way_ms: int, jitter_frac: float, seed: int) -> None:
    jitter = one_way_ms * jitter_frac
    gw = Gateway(SimLink(rate_bytes_per_s=1e7, one_way_ms=one_way_ms, jitter_ms=jitter, ack_every_ms=1, seed=seed))
    for t in range(0, 300_000, 1000):
        gw.run_until(t)
        gw.new_frame(200, t)
    gw.run_until(10**9)
    expected = 2 * one_way_ms + jitter  # two uniform jitters of mean jitter/2
    e = gw.est.estimate(gw.now_ms)
    assert e.rtt_ms is not None
    assert abs(e.rtt_ms - expected) <= 0.12 * expected + 2
    assert e.ack_timeout_ms >= min(max(expected, ACK_TIMEOUT_MIN_MS), ACK_TIMEOUT_MAX_MS)
    assert gw.resends == 0  # the timeout never fired on a lossless link


def test_first_sample_sets_srtt_and_half_rttvar() -> None:
    est = LinkEstimator()
    est.sent("a", 100, 1_000)
    est.acked(["a"], 1_800)
    e = est.estimate(1_800)
    assert (e.rtt_ms, e.rttvar_ms, e.rtt_samples) == (800, 400, 1)
    assert e.ack_timeout_ms == 800 + 4 * 400


def test_ack_timeout_is_clamped() -> None:
    fast, slow = LinkEstimator(), LinkEstimator()
    fast.sent(1, 10, 0)
    fast.acked([1], 5)
    slow.sent(1, 10, 0)
    slow.acked([1], 500_000)
    assert fast.ack_timeout_ms() == ACK_TIMEOUT_MIN_MS
    assert slow.ack_timeout_ms() == ACK_TIMEOUT_MAX_MS


def test_karn_a_resent_frame_gives_no_rtt_sample() -> None:
    est = LinkEstimator()
    est.sent("a", 100, 0, attempt=1)
    est.sent("a", 100, 10_000, attempt=2)
    est.acked(["a"], 10_050)  # the ack of the first copy or of the second? Unknowable: no sample.
    e = est.estimate(10_050)
    assert e.rtt_ms is None
    assert e.rtt_samples == 0
    assert e.loss_samples == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 5_000)), min_size=1, max_size=60))
def test_karn_only_first_attempt_frames_are_sampled(frames: list[tuple[int, int]]) -> None:
    est = LinkEstimator()
    for key, (attempts, rtt) in enumerate(frames):
        for attempt in range(1, attempts + 1):
            est.sent(key, 100, key * 100_000 + attempt * 10, attempt)
        est.acked([key], key * 100_000 + attempts * 10 + rtt)
    assert est.estimate(0).rtt_samples == sum(1 for attempts, _ in frames if attempts == 1)


def test_timeout_backs_off_until_a_slower_link_is_measured() -> None:
    """RTT jumps from 0.5 s to 30 s: every frame times out, Karn gives no sample, so only backoff can learn it."""
    link = SimLink(rate_bytes_per_s=1e6, one_way_ms=250, ack_every_ms=1)
    gw = Gateway(link)
    t = 0
    for t in range(0, 120_000, 1000):
        gw.run_until(t)
        gw.new_frame(500, t)
    assert gw.est.estimate(gw.now_ms).ack_timeout_ms < 5_000
    link.one_way_ms = 15_000
    for t in range(t, t + 900_000, 1000):
        gw.run_until(t)
        gw.new_frame(500, t)
    e = gw.est.estimate(gw.now_ms)
    assert e.rtt_ms is not None and e.rtt_ms > 20_000
    assert e.ack_timeout_ms > 30_000
    resent_before = gw.resends
    for t in range(t, t + 300_000, 1000):
        gw.run_until(t)
        gw.new_frame(500, t)
    assert gw.resends - resent_before < 10  # settled: frames wait for their acks instead of going twice


# goodput


@pytest.mark.parametrize(
    ("rate", "one_way_ms"),
    [(6_000, 300), (32_000, 300), (48_000, 75), (1_250_000, 10)],
    ids=["2g_edge", "satellite", "3g", "broadband"],
)
def test_goodput_within_20_percent_of_a_saturated_link(rate: float, one_way_ms: int) -> None:
    gw = Gateway(SimLink(rate_bytes_per_s=rate, one_way_ms=one_way_ms, jitter_ms=one_way_ms / 5))
    frame = max(500, int(rate / 10))
    for t in range(0, 300_000, 1000):
        gw.run_until(t, timeout_ms=10**9)
        if gw.link.free_at_ms < t + 5_000:  # keep about 5 s queued: the link never idles
            for _ in range(int(3 * rate / frame)):
                gw.new_frame(frame, t)
    goodput = gw.est.estimate(gw.now_ms).goodput_bytes_per_s
    assert goodput is not None
    assert abs(goodput - rate) <= 0.2 * rate


def test_goodput_is_not_diluted_by_an_idle_day() -> None:
    rate = 6_000
    gw = Gateway(SimLink(rate_bytes_per_s=rate, one_way_ms=300))
    for t in range(0, 120_000, 1000):
        gw.run_until(t, timeout_ms=10**9)
        for _ in range(12):
            gw.new_frame(1_000, t)
    gw.run_until(10**7, timeout_ms=10**9)
    before = gw.est.estimate(gw.now_ms).goodput_bytes_per_s
    start = 86_400_000
    for t in range(start, start + 30_000, 1000):  # a day later, a short saturated burst
        gw.run_until(t, timeout_ms=10**9)
        for _ in range(12):
            gw.new_frame(1_000, t)
    after = gw.est.estimate(gw.now_ms).goodput_bytes_per_s
    assert before is not None and after is not None
    assert abs(after - rate) <= 0.2 * rate
    assert abs(before - rate) <= 0.2 * rate


def test_goodput_is_unknown_before_any_ack() -> None:
    est = LinkEstimator()
    est.sent(1, 1000, 0)
    e = est.estimate(0)
    assert e.goodput_bytes_per_s is None and not e.known
    assert e.in_flight_bytes == 1000


# loss


@pytest.mark.parametrize("loss", [0.0, 0.02, 0.05, 0.2])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_loss_tracks_the_resend_fraction(loss: float, seed: int) -> None:
    gw = Gateway(SimLink(rate_bytes_per_s=50_000, one_way_ms=300, jitter_ms=100, loss=loss, seed=seed))
    readings = []
    for t in range(0, 3_000_000, 1000):
        gw.run_until(t)
        gw.new_frame(400, t)
        if t >= 300_000:
            readings.append(gw.est.estimate(gw.now_ms).loss)
    mean_estimate = sum(readings) / len(readings)
    observed = gw.frames_resent / gw.frames_acked
    assert abs(observed - loss) <= 0.01 + 0.2 * loss  # the link did what it was told (no spurious resends)
    assert abs(mean_estimate - observed) <= 0.005 + 0.1 * observed


def test_loss_follows_a_step_change() -> None:
    est = LinkEstimator()
    for key in range(200):  # clean
        est.sent(key, 100, key * 1000)
        est.acked([key], key * 1000 + 500)
    assert est.estimate(0).loss < 0.01
    for key in range(200, 300):  # every other frame needs a resend
        est.sent(key, 100, key * 1000)
        if key % 2:
            est.sent(key, 100, key * 1000 + 400, attempt=2)
        est.acked([key], key * 1000 + 500)
    assert 0.35 < est.estimate(0).loss < 0.65


# outages, restarts, memory


def test_frames_interrupted_by_an_outage_give_no_loss_or_rtt_sample() -> None:
    est = LinkEstimator()
    est.sent(1, 100, 0)
    est.sent(2, 100, 0)
    est.link_lost()
    assert est.in_flight_bytes(1) == 0
    est.sent(1, 100, 3_600_000, attempt=2)  # resent at reconnect, an hour later
    est.sent(2, 100, 3_600_000, attempt=2)
    est.acked([1, 2], 3_600_800)
    e = est.estimate(3_600_800)
    assert (e.rtt_samples, e.loss_samples, e.loss) == (0, 0, 0.0)
    assert e.goodput_bytes_per_s == pytest.approx(200 / 0.8)  # the outage is not counted as busy time


def test_a_late_ack_of_a_frame_sent_before_the_outage_is_ignored() -> None:
    est = LinkEstimator()
    est.sent(1, 100, 0)
    est.link_lost()
    assert est.acked([1], 3_600_000) == 0
    assert est.estimate(3_600_000).goodput_bytes_per_s is None


def test_a_resend_first_seen_after_a_restart_is_not_counted_as_loss() -> None:
    est = LinkEstimator()
    est.sent((7, 41), 100, 0, attempt=3)
    assert est.acked([(7, 41)], 700) == 1
    e = est.estimate(700)
    assert (e.rtt_samples, e.loss_samples) == (0, 0)


def test_unknown_acks_are_ignored_and_counted() -> None:
    est = LinkEstimator()
    est.sent((1, 1), 100, 0)
    assert est.acked([(1, 1), (1, 2), (9, 9)], 300) == 1
    assert est.unknown_acks == 2
    assert est.estimate(300).rtt_samples == 1


def test_in_flight_table_is_bounded() -> None:
    est = LinkEstimator()
    for key in range(IN_FLIGHT_CAP + 1000):
        est.sent(key, 10, key)
    now = IN_FLIGHT_CAP + 1000
    assert est.forgotten == 1000
    assert est.estimate(now).in_flight_bytes == IN_FLIGHT_CAP * 10
    assert est.acked([0], 10**6) == 0  # the oldest went first
    assert est.acked([IN_FLIGHT_CAP + 999], 10**6) == 1


def test_bad_input_is_refused_with_context() -> None:
    est = LinkEstimator()
    with pytest.raises(UplinkError, match="nbytes"):
        est.sent("k", -1, 0)
    with pytest.raises(UplinkError, match="attempt"):
        est.sent("k", 1, 0, attempt=0)


# the loop the gateway runs: estimator -> plan -> send budget


@pytest.mark.parametrize(
    ("rate", "one_way_ms", "loss"),
    [(6_000, 300, 0.03), (32_000, 300, 0.005), (48_000, 75, 0.01), (1_250_000, 10, 0.0)],
    ids=["2g_edge", "satellite", "3g", "broadband"],
)
def test_closed_loop_fills_the_link_without_a_standing_queue(rate: float, one_way_ms: int, loss: float) -> None:
    gw = Gateway(SimLink(rate_bytes_per_s=rate, one_way_ms=one_way_ms, jitter_ms=one_way_ms / 2, loss=loss))
    backlog = 10**12  # an endless backlog: the plan alone decides how much goes
    row_bytes, tick_s, max_in_flight = 32, 1.0, 0
    sent_bytes = 0
    for t in range(0, 600_000, 1000):
        gw.run_until(t)
        plan = plan_uplink(gw.est.estimate(gw.now_ms), backlog_bytes=backlog, tick_s=tick_s, bytes_per_row=row_bytes)
        frame = plan.max_rows_per_frame * row_bytes
        spent = 0  # the outbox's rule: with a budget, at least one frame goes, then up to the budget
        while plan.send_budget_bytes > 0 and (spent == 0 or spent + frame <= plan.send_budget_bytes):
            gw.new_frame(frame, t)
            spent += frame
        sent_bytes += spent
        if t > 120_000:
            max_in_flight = max(max_in_flight, gw.est.estimate(gw.now_ms).in_flight_bytes)
    e = gw.est.estimate(gw.now_ms)
    assert e.goodput_bytes_per_s is not None
    assert abs(e.goodput_bytes_per_s - rate) <= 0.2 * rate
    assert sent_bytes >= 0.8 * rate * 600  # the link was kept busy
    assert max_in_flight <= IN_FLIGHT_MAX_S * 1.2 * rate + 4096 * row_bytes  # the window (estimated) + one frame
    assert gw.frames_resent / gw.frames_acked <= loss + 0.02  # few spurious resends


def test_a_floor_on_the_ack_timeout_holds_however_fast_the_acks_come() -> None:
    est = LinkEstimator(min_ack_timeout_ms=30_000)
    for i in range(50):
        est.sent(i, 100, i * 1_000)
        est.acked([i], i * 1_000 + 300)
    assert est.estimate(60_000).ack_timeout_ms == 30_000
    est.sent("late", 100, 60_000)
    assert est.in_flight_bytes(85_000) == 100  # still counted as in flight inside the floor
